//! Which KMS serves a user URI: the domain lookup over the `KmsDomainList`s of every known KMS
//! certificate (TS 33.180 D.3.2.2; TS 33.180 5.2.7.2 says the GMS needs each member's KMS URI,
//! and no 3GPP interface maps a user to its domain, so this lookup is our extension).
//!
//! Rule: the URI's domain is its host part (`sip:alice@example.org` → `example.org`,
//! `https://host:443/x` → `host`, `tel:` URIs have none). A KMS whose list holds that domain
//! exactly wins; otherwise the KMS with the longest listed domain of which the URI's domain is
//! a sub-domain (label boundary: `a.example.org` is under `example.org`, `badexample.org` is
//! not). Domains compare case-insensitively. Pure.

use thiserror::Error;

/// Longest domain in a `KmsDomainList`, in bytes (a DNS name).
pub const MAX_DOMAIN_BYTES: usize = 253;
/// Most domains one certificate may list.
pub const MAX_DOMAINS: usize = 64;

/// Why a domain list was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("invalid KMS domain: {0}")]
    Invalid(&'static str),
    #[error("a certificate may list at most {MAX_DOMAINS} domains")]
    TooMany,
}

/// A listed domain: a DNS name of 1 to [`MAX_DOMAIN_BYTES`] bytes of letters, digits, '-' and
/// '.', no empty label. (`KmsDomain` is an `anyURI` in the schema; a bare host is what every
/// implementation lists, and a scheme would make matching a guess.)
pub fn validate_domain(domain: &str) -> Result<(), DomainError> {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_BYTES {
        return Err(DomainError::Invalid("must be 1 to 253 bytes"));
    }
    if !domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(DomainError::Invalid(
            "only letters, digits, '-' and '.' are allowed",
        ));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(DomainError::Invalid("empty label"));
    }
    Ok(())
}

/// Checks a whole list (each domain, the count).
pub fn validate_domains(domains: &[String]) -> Result<(), DomainError> {
    if domains.len() > MAX_DOMAINS {
        return Err(DomainError::TooMany);
    }
    domains.iter().try_for_each(|d| validate_domain(d))
}

/// The domain (host part, lower case) of a user URI, if it has one.
pub fn uri_domain(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let host = match scheme.to_ascii_lowercase().as_str() {
        "sip" | "sips" | "mailto" => rest.rsplit_once('@').map_or(rest, |(_, h)| h),
        "http" | "https" => {
            let rest = rest.strip_prefix("//")?;
            let authority = rest.split(['/', '?', '#']).next()?;
            authority.rsplit_once('@').map_or(authority, |(_, h)| h)
        }
        _ => return None,
    };
    // Drop parameters, headers and a port.
    let host = host.split([';', '?', '>']).next()?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.to_ascii_lowercase();
    validate_domain(&host).ok()?;
    Some(host)
}

/// How a lookup matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Exact,
    Suffix,
}

/// The KMS (by `kms_uri`) serving `uri` among `candidates` (`(kms_uri, domains)`), with the
/// listed domain that matched. Ties (two KMSs listing the same domain) go to the first
/// candidate: callers list their own communities first.
pub fn lookup<'a, I>(uri: &str, candidates: I) -> Option<(&'a str, &'a str, Match)>
where
    I: IntoIterator<Item = (&'a str, &'a [String])> + Clone,
{
    let domain = uri_domain(uri)?;
    for (kms_uri, domains) in candidates.clone() {
        if let Some(d) = domains.iter().find(|d| d.eq_ignore_ascii_case(&domain)) {
            return Some((kms_uri, d.as_str(), Match::Exact));
        }
    }
    let mut best: Option<(&str, &str)> = None;
    for (kms_uri, domains) in candidates {
        for d in domains {
            let under = domain.len() > d.len()
                && domain
                    .get(domain.len() - d.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(d))
                && domain.as_bytes()[domain.len() - d.len() - 1] == b'.';
            if under && best.is_none_or(|(_, b)| d.len() > b.len()) {
                best = Some((kms_uri, d.as_str()));
            }
        }
    }
    best.map(|(k, d)| (k, d, Match::Suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn uri_domains() {
        assert_eq!(
            uri_domain("sip:alice@Example.ORG").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            uri_domain("sip:alice@example.org:5061;transport=tls").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            uri_domain("https://gms.b.test:8443/x?y").as_deref(),
            Some("gms.b.test")
        );
        assert_eq!(
            uri_domain("sip:example.org").as_deref(),
            Some("example.org")
        );
        assert_eq!(uri_domain("tel:+4912345"), None);
        assert_eq!(uri_domain("alice"), None);
        assert_eq!(uri_domain("sip:alice@exa mple.org"), None);
        assert_eq!(uri_domain("sip:alice@"), None);
    }

    #[test]
    fn exact_then_longest_suffix_on_label_boundaries() {
        let ours = s(&["a.test"]);
        let partner = s(&["b.test", "east.a.test"]);
        let other = s(&["x.east.a.test"]);
        let c = [
            ("kms.a.test", ours.as_slice()),
            ("kms.b.test", partner.as_slice()),
            ("kms.x.test", other.as_slice()),
        ];
        let l = |u: &str| lookup(u, c.iter().copied()).map(|(k, _, m)| (k, m));
        assert_eq!(l("sip:u@a.test"), Some(("kms.a.test", Match::Exact)));
        assert_eq!(l("sip:u@B.test"), Some(("kms.b.test", Match::Exact)));
        assert_eq!(
            l("sip:u@h.west.a.test"),
            Some(("kms.a.test", Match::Suffix))
        );
        assert_eq!(
            l("sip:u@h.east.a.test"),
            Some(("kms.b.test", Match::Suffix))
        );
        assert_eq!(l("sip:u@x.east.a.test"), Some(("kms.x.test", Match::Exact)));
        assert_eq!(
            l("sip:u@y.x.east.a.test"),
            Some(("kms.x.test", Match::Suffix))
        );
        // Not on a label boundary.
        assert_eq!(l("sip:u@bb.test"), None);
        assert_eq!(l("sip:u@c.test"), None);
        assert_eq!(l("tel:+1"), None);
    }

    #[test]
    fn domain_rules() {
        assert!(validate_domain("example.org").is_ok());
        for bad in ["", "a..b", ".a", "a b", "a/b", "sip:a", "é.org", "a\n"] {
            assert!(validate_domain(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_domains(&vec!["a.b".to_string(); MAX_DOMAINS + 1]),
            Err(DomainError::TooMany)
        );
    }
}
