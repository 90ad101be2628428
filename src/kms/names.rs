//! The rules for names that reach the replicated state from outside (the admin API and the
//! service interfaces): user identities (URIs), KMS URIs and revocation reasons. Group ids, key
//! ids, subscription ids and ACL principals have their own rules beside their records
//! ([`super::group::validate_group_id`], [`super::key_provisioning::validate_key_id`],
//! [`super::events`], [`super::acl::validate_principal`]); every one of them refuses control
//! characters and bounds the length.
//!
//! Pure. The node checks these *before* proposing, so a refused name never reaches the Raft
//! log; the state machine does not re-check them (a rule added later must not change how an
//! old log entry applies).

use thiserror::Error;

/// Longest user identity (a URI such as `sip:alice@example.org`), in bytes.
pub const MAX_IDENTITY_BYTES: usize = 2048;
/// Longest KMS URI (a DNS name), in bytes.
pub const MAX_KMS_URI_BYTES: usize = 255;
/// Longest revocation reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// Why a name was refused. Never echoes the name (it may hold control characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid {what}: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub reason: &'static str,
}

fn refuse(what: &'static str, reason: &'static str) -> Result<(), NameError> {
    Err(NameError { what, reason })
}

/// A user identity: 1 to [`MAX_IDENTITY_BYTES`] bytes, no control characters (C0, DEL, C1),
/// no surrounding whitespace (an identity is compared exactly; " sip:a" is not "sip:a").
pub fn validate_identity(identity: &str) -> Result<(), NameError> {
    const WHAT: &str = "identity";
    if identity.is_empty() {
        return refuse(WHAT, "empty");
    }
    if identity.len() > MAX_IDENTITY_BYTES {
        return refuse(WHAT, "longer than 2048 bytes");
    }
    if identity.chars().any(char::is_control) {
        return refuse(WHAT, "contains control characters");
    }
    if identity.trim() != identity {
        return refuse(WHAT, "begins or ends with whitespace");
    }
    Ok(())
}

/// A bare KMS URI (a host name): 1 to [`MAX_KMS_URI_BYTES`] bytes, no control characters, no
/// whitespace, no '/'.
pub fn validate_kms_uri(kms_uri: &str) -> Result<(), NameError> {
    const WHAT: &str = "KMS URI";
    if kms_uri.is_empty() {
        return refuse(WHAT, "empty");
    }
    if kms_uri.len() > MAX_KMS_URI_BYTES {
        return refuse(WHAT, "longer than 255 bytes");
    }
    if kms_uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '/')
    {
        return refuse(WHAT, "not a bare host name");
    }
    Ok(())
}

/// A revocation reason: free text of at most [`MAX_REASON_BYTES`] bytes (empty allowed), no
/// control characters (it goes to the audit trail and to operators' terminals).
pub fn validate_reason(reason: &str) -> Result<(), NameError> {
    const WHAT: &str = "reason";
    if reason.len() > MAX_REASON_BYTES {
        return refuse(WHAT, "longer than 1024 bytes");
    }
    if reason.chars().any(char::is_control) {
        return refuse(WHAT, "contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROLS: [&str; 6] = ["\u{0}", "\n", "\r", "\u{1b}[31m", "\u{7f}", "\u{85}"];

    #[test]
    fn identities() {
        for ok in [
            "sip:alice@example.org",
            "tel:+33123456789",
            "sip:bürger@example.org",
            &"a".repeat(MAX_IDENTITY_BYTES),
        ] {
            assert_eq!(validate_identity(ok), Ok(()), "{ok}");
        }
        assert!(validate_identity("").is_err());
        assert!(validate_identity(&"a".repeat(MAX_IDENTITY_BYTES + 1)).is_err());
        assert!(validate_identity(" sip:a@x").is_err());
        assert!(validate_identity("sip:a@x ").is_err());
        for c in CONTROLS {
            let bad = format!("sip:a{c}@x");
            assert_eq!(
                validate_identity(&bad),
                Err(NameError {
                    what: "identity",
                    reason: "contains control characters"
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn kms_uris() {
        assert_eq!(validate_kms_uri("kms.example.org"), Ok(()));
        assert_eq!(validate_kms_uri("localhost:8080"), Ok(()));
        for bad in [
            "",
            "kms example.org",
            "https://kms.example.org",
            "kms.example.org/x",
            &"k".repeat(MAX_KMS_URI_BYTES + 1),
        ] {
            assert!(validate_kms_uri(bad).is_err(), "{bad:?}");
        }
        for c in CONTROLS {
            assert!(validate_kms_uri(&format!("kms{c}.org")).is_err(), "{c:?}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(validate_reason(""), Ok(()));
        assert_eq!(validate_reason("lost device, ticket 42"), Ok(()));
        assert!(validate_reason(&"r".repeat(MAX_REASON_BYTES + 1)).is_err());
        for c in CONTROLS {
            assert!(validate_reason(&format!("lost{c}")).is_err(), "{c:?}");
        }
    }
}
