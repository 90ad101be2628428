//! Visiting users (TS 33.180 5.1.4.2 migration; `../spec/FEDERATION.md` §6): a user of a
//! partner domain authenticates with the **partner's** identity management server, and this KMS
//! (the migration KMS) then issues key material of **its own** domain to it. The primary IdMS
//! certificates reach the partner out of band: here, a `[[auth.visiting]]` entry per trusted
//! partner identity provider names its issuer, its JWKS and the user URI domains it may speak
//! for (and, optionally, which of our communities its users may get keys from).
//!
//! A visiting token is checked exactly like ours (signature, `aud`, `exp`/`nbf`/`iat` with
//! leeway, identity claim, the KM-UU scope, never the party scope) except for `iss`, and then
//! its identity must be a URI whose domain is one of the provider's domains or under one. It is
//! accepted on KM-UU only: parties never visit. Pure: no I/O, the time is a parameter.

use std::path::PathBuf;

use serde::Deserialize;

use super::jwt::{PolicyError, TokenPolicy, TokenUse, TokenVerifier, VerifiedToken, Visiting};
use super::party::PartyPolicy;
use super::{base64url_decode, AuthError, Jwks};
use crate::kms::domains::uri_domain;

/// `[[auth.visiting]]`: one trusted partner identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitingIdpConfig {
    /// Its `iss`.
    pub issuer: String,
    /// Its public keys (JWKS), exchanged with the partner operator.
    pub jwks_file: PathBuf,
    /// The user URI domains it may authenticate (a user's domain must be one or under one).
    pub domains: Vec<String>,
    /// Our communities (KMS URIs) its users may get key material from; empty: all.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// A trusted partner identity provider, ready to verify.
#[derive(Debug, Clone)]
pub struct VisitingIdp {
    verifier: TokenVerifier,
    domains: Vec<String>,
    communities: Vec<String>,
}

impl VisitingIdp {
    /// Our KM-UU policy with the partner's issuer, over the partner's keys.
    pub fn new(
        cfg: &VisitingIdpConfig,
        jwks: Jwks,
        ours: &TokenPolicy,
        party: &PartyPolicy,
    ) -> Result<Self, PolicyError> {
        if cfg.issuer == ours.issuer {
            return Err(PolicyError::Invalid(
                "a visiting identity provider must not have our own issuer",
            ));
        }
        if cfg.domains.is_empty() {
            return Err(PolicyError::Invalid(
                "a visiting identity provider needs at least one domain",
            ));
        }
        crate::kms::domains::validate_domains(&cfg.domains)
            .map_err(|_| PolicyError::Invalid("a visiting domain is not a DNS name"))?;
        let policy = TokenPolicy {
            issuer: cfg.issuer.clone(),
            ..ours.clone()
        };
        let verifier = TokenVerifier::new(jwks, policy)?.with_party(party.clone())?;
        Ok(Self {
            verifier,
            domains: cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            communities: cfg.communities.clone(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.verifier.policy().issuer
    }

    /// Verifies a KM-UU token of this provider at `now`; its identity must be in our domains.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<VerifiedToken, AuthError> {
        let mut t = self
            .verifier
            .verify_for(token, now_unix_s, TokenUse::KmUu)?;
        let inside = uri_domain(&t.identity).is_some_and(|d| {
            self.domains.iter().any(|allowed| {
                d == *allowed
                    || (d.len() > allowed.len()
                        && d.ends_with(allowed.as_str())
                        && d.as_bytes()[d.len() - allowed.len() - 1] == b'.')
            })
        });
        if !inside {
            return Err(AuthError::OutsideVisitingDomains);
        }
        t.visiting = Some(Visiting {
            issuer: self.issuer().to_owned(),
            communities: self.communities.clone(),
        });
        Ok(t)
    }
}

/// The `iss` of a compact JWS, read WITHOUT verifying anything: only to choose which
/// provider's keys verify it (a lie only selects keys that then fail).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests;
