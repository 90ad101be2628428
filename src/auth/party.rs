//! Who is a *party* (the group management server, a VAL server) rather than a KM client user,
//! and what a party's access token must say (`[auth.party]`).
//!
//! A party gets key material only on the service listener, where its client certificate and its
//! token must name the same principal. KM-UU refuses every party identity (403), so a stolen
//! party token without the certificate is worth nothing there. A party identity is:
//!
//! - a principal of the replicated ACL (checked by the API after its read barrier), or
//! - a name in the configured party name space ([`PartyPolicy::is_party_name`]): a DNS name
//!   under one of `dns_suffixes` (case-insensitive, on a label boundary), or a URI starting with
//!   one of `uri_prefixes` (exact). This keeps a party refused on KM-UU even after its ACL grant
//!   is removed.
//!
//! Tokens are told apart too: KM-UU requires `[auth.token] required_scope` and refuses a token
//! that carries the party scope; the service listener requires the party scope ([`scope`]) and,
//! when configured, the party audience ([`audience`]).
//!
//! [`scope`]: PartyPolicy::scope
//! [`audience`]: PartyPolicy::audience

use serde::Deserialize;

use super::jwt::{PolicyError, TokenPolicy};

/// The party scope when `[auth.party] scope` is not set.
pub const DEFAULT_PARTY_SCOPE: &str = "3gpp:seal:km:party";

fn default_party_scope() -> String {
    DEFAULT_PARTY_SCOPE.to_owned()
}

/// `[auth.party]`: the party name space and the party tokens' scope and audience.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyPolicy {
    /// The scope a token must grant on the service listener; a KM-UU token must not carry it.
    #[serde(default = "default_party_scope")]
    pub scope: String,
    /// The `aud` a party token must name on the service listener (default: `[auth.token]
    /// audience`).
    #[serde(default)]
    pub audience: Option<String>,
    /// DNS names under these suffixes are party names (e.g. `svc.example.org` makes
    /// `gms.svc.example.org` a party).
    #[serde(default)]
    pub dns_suffixes: Vec<String>,
    /// URIs starting with these prefixes are party names (e.g. `https://svc.example.org/`).
    #[serde(default)]
    pub uri_prefixes: Vec<String>,
}

impl Default for PartyPolicy {
    fn default() -> Self {
        Self {
            scope: default_party_scope(),
            audience: None,
            dns_suffixes: Vec::new(),
            uri_prefixes: Vec::new(),
        }
    }
}

impl PartyPolicy {
    /// The party scope must be one scope token, different from the KM-UU scope; prefixes and
    /// suffixes must not be empty (an empty one would make everybody a party).
    pub fn validate(&self, user: &TokenPolicy) -> Result<(), PolicyError> {
        if self.scope.is_empty() {
            return Err(PolicyError::Empty("party scope"));
        }
        if self.scope.contains(' ') {
            return Err(PolicyError::ScopeHasSpace);
        }
        if self.scope == user.required_scope {
            return Err(PolicyError::SameScope);
        }
        if self.audience.as_deref() == Some("") {
            return Err(PolicyError::Empty("party audience"));
        }
        let suffix_empty = |s: &String| s.trim_matches('.').is_empty();
        if self.dns_suffixes.iter().any(suffix_empty)
            || self.uri_prefixes.iter().any(String::is_empty)
        {
            return Err(PolicyError::Empty("party name space entry"));
        }
        Ok(())
    }

    /// The audience a party token must name.
    pub fn audience<'a>(&'a self, user: &'a TokenPolicy) -> &'a str {
        self.audience.as_deref().unwrap_or(&user.audience)
    }

    /// Whether `identity` is in the configured party name space.
    pub fn is_party_name(&self, identity: &str) -> bool {
        if self.uri_prefixes.iter().any(|p| identity.starts_with(p)) {
            return true;
        }
        if identity.contains(':') {
            // A URI: only the prefixes decide.
            return false;
        }
        let name = identity.trim_end_matches('.');
        self.dns_suffixes.iter().any(|s| {
            let s = s.trim_matches('.');
            name.eq_ignore_ascii_case(s)
                || (name.len() > s.len()
                    && name.as_bytes()[name.len() - s.len() - 1] == b'.'
                    && name[name.len() - s.len()..].eq_ignore_ascii_case(s))
        })
    }

    /// The policy a token for `identity` is minted under (development identity provider): the
    /// party one for a name in the party name space, else `user`.
    pub fn policy_for(&self, user: &TokenPolicy, identity: &str) -> TokenPolicy {
        if self.is_party_name(identity) {
            self.token_policy(user)
        } else {
            user.clone()
        }
    }

    /// The token policy a party token is verified under: the party audience and scope.
    pub fn token_policy(&self, user: &TokenPolicy) -> TokenPolicy {
        TokenPolicy {
            audience: self.audience(user).to_owned(),
            required_scope: self.scope.clone(),
            ..user.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> TokenPolicy {
        TokenPolicy {
            issuer: "i".into(),
            audience: "kms".into(),
            leeway_s: 0,
            identity_claim: "uid".into(),
            scope_claim: "scope".into(),
            required_scope: "km".into(),
        }
    }

    #[test]
    fn name_space() {
        let p = PartyPolicy {
            dns_suffixes: vec!["svc.example.org".into()],
            uri_prefixes: vec!["https://svc.example.org/".into()],
            ..PartyPolicy::default()
        };
        assert!(p.is_party_name("gms.svc.example.org"));
        assert!(p.is_party_name("GMS.Svc.Example.org."));
        assert!(p.is_party_name("svc.example.org"));
        assert!(p.is_party_name("https://svc.example.org/gms"));
        assert!(!p.is_party_name("evilsvc.example.org"));
        assert!(!p.is_party_name("sip:alice@svc.example.org"));
        assert!(!p.is_party_name("https://svc.example.org.evil/"));
        assert!(!PartyPolicy::default().is_party_name("gms.svc.example.org"));
    }

    #[test]
    fn validation() {
        assert!(PartyPolicy::default().validate(&user()).is_ok());
        let same = PartyPolicy {
            scope: "km".into(),
            ..PartyPolicy::default()
        };
        assert_eq!(same.validate(&user()), Err(PolicyError::SameScope));
        let everybody = PartyPolicy {
            dns_suffixes: vec![".".into()],
            ..PartyPolicy::default()
        };
        assert!(everybody.validate(&user()).is_err());
        let p = PartyPolicy {
            audience: Some("kms-parties".into()),
            ..PartyPolicy::default()
        };
        let tp = p.token_policy(&user());
        assert_eq!(tp.audience, "kms-parties");
        assert_eq!(tp.required_scope, DEFAULT_PARTY_SCOPE);
        assert_eq!(tp.issuer, "i");
    }
}
