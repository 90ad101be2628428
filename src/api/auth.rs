//! Authentication at the edge, before anything else: actix extractors that run before a handler
//! reads a body or makes a read barrier, so a caller without a valid credential gets 401 and
//! costs no Raft round, no body read and no parsing.
//!
//! - [`UserToken`]: a KM-UU access token ([`TokenUse::KmUu`]);
//! - [`PartyAuth`]: the service listener's client certificate and a party token
//!   ([`TokenUse::Party`]) naming the same principal (the ACL role is checked later, after the
//!   request's one read barrier: [`super::service::authorize`]);
//! - [`AdminAuth`]: the admin bearer credential.
//!
//! [`Authenticator`] holds the verifier and the cache of verified tokens. Its key set is
//! reloaded from `jwks_file` on SIGHUP and every `jwks_reload_s` ([`spawn_jwks_reloader`]); a
//! changed key set empties the cache, so a token whose key left is refused at once.

use std::collections::hash_map::RandomState;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::{ready, Ready};

use super::error::ApiError;
use super::AppState;
use crate::auth::jwt::{TokenUse, TokenVerifier, VerifiedToken};
use crate::auth::visiting::{unverified_issuer, VisitingIdp};
use crate::auth::{bearer_token, AuthError, Jwks};
use crate::node::core::Actor;
use crate::tls::PeerCert;

/// The verifier in force (replaced when the JWKS file changes) and the verified-token cache.
pub struct Authenticator {
    verifier: RwLock<Arc<TokenVerifier>>,
    /// SHA-256 of the JWKS document in force (a reload that reads the same text changes nothing).
    jwks_digest: Mutex<[u8; 32]>,
    jwks_file: Option<PathBuf>,
    /// Tokens already verified, by SHA-256 of (use, token text). A hit is re-checked against
    /// the clock (expiry with leeway), so a cached token is never accepted longer than a fresh
    /// verification would accept it. Saves one ES256/RS256 verification per warm request.
    cache: Mutex<lru::LruCache<(u64, u64), Arc<VerifiedToken>>>,
    /// Trusted partner identity providers (visiting users on KM-UU).
    visiting: Vec<VisitingIdp>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl Authenticator {
    /// `jwks_file`, when given, is where [`Authenticator::reload`] reads the key set again.
    pub fn new(verifier: TokenVerifier, jwks_file: Option<PathBuf>, cache_entries: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(cache_entries.max(1))
            .unwrap_or(std::num::NonZeroUsize::MIN);
        let digest = jwks_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|t| sha256(&[&t]))
            .unwrap_or_default();
        Self {
            verifier: RwLock::new(Arc::new(verifier)),
            jwks_digest: Mutex::new(digest),
            jwks_file,
            cache: Mutex::new(lru::LruCache::new(cap)),
            visiting: Vec::new(),
        }
    }

    /// The same authenticator also accepting KM-UU tokens of these partner identity providers.
    pub fn with_visiting(mut self, visiting: Vec<VisitingIdp>) -> Self {
        self.visiting = visiting;
        self
    }

    /// The verifier in force.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        self.verifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Verifies the `Authorization` header value for `use_` at `now` (cache first).
    pub fn verify(
        &self,
        header: Option<&str>,
        use_: TokenUse,
        now: u64,
    ) -> Result<Arc<VerifiedToken>, AuthError> {
        let token = bearer_token(header.ok_or(AuthError::MissingToken)?)?;
        let tag: &[u8] = match use_ {
            TokenUse::KmUu => b"km-uu\0",
            TokenUse::Party => b"party\0",
        };
        let key = cache_key(tag, token);
        let verifier = self.verifier();
        let leeway = verifier.policy().leeway_s;
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = cache.get(&key) {
                if now < t.expires_at.saturating_add(leeway) {
                    return Ok(t.clone());
                }
                cache.pop(&key);
            }
        }
        // A KM-UU token naming a trusted partner's issuer is verified with that partner's keys
        // (the unverified `iss` only chooses the keys; every check then runs).
        let visiting = match use_ {
            TokenUse::KmUu if !self.visiting.is_empty() => unverified_issuer(token)
                .and_then(|iss| self.visiting.iter().find(|v| v.issuer() == iss)),
            _ => None,
        };
        let verified = Arc::new(match visiting {
            Some(v) => v.verify(token, now)?,
            None => verifier.verify_for(token, now, use_)?,
        });
        // A reload between the verification and here empties the cache after this insert or
        // verified against the old keys before it: either way no stale entry survives a reload
        // for longer than one request.
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, verified.clone());
        Ok(verified)
    }

    /// Puts `jwks` in force and drops every cached token (a token whose key left is then
    /// refused on its next use).
    pub fn replace_jwks(&self, jwks: Jwks) {
        let next = Arc::new(self.verifier().with_jwks(jwks));
        *self.verifier.write().unwrap_or_else(|p| p.into_inner()) = next;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Reads the JWKS file again; puts it in force if it changed. `Ok(true)`: replaced. A file
    /// that cannot be read or parsed leaves the keys in force (and is reported).
    pub fn reload(&self) -> Result<bool, String> {
        let Some(path) = &self.jwks_file else {
            return Ok(false);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let digest = sha256(&[text.as_bytes()]);
        if *self.jwks_digest.lock().unwrap_or_else(|p| p.into_inner()) == digest {
            return Ok(false);
        }
        let jwks = Jwks::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        self.replace_jwks(jwks);
        *self.jwks_digest.lock().unwrap_or_else(|p| p.into_inner()) = digest;
        Ok(true)
    }
}

/// Reloads the key set of `auth` on SIGHUP and, if `every_s > 0`, every `every_s` seconds.
/// Spawn the returned future on the node's runtime.
pub fn spawn_jwks_reloader(
    auth: Arc<Authenticator>,
    every_s: u64,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        let period = std::time::Duration::from_secs(every_s.max(1));
        loop {
            let why = tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = tokio::time::sleep(period), if every_s > 0 => "timer",
            };
            match auth.reload() {
                Ok(true) => tracing::info!(trigger = why, "JWKS reloaded; token cache emptied"),
                Ok(false) => tracing::debug!(trigger = why, "JWKS unchanged"),
                Err(e) => {
                    tracing::error!(trigger = why, error = %e, "JWKS reload failed; keeping the keys in force")
                }
            }
        }
    })
}

pub(super) fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

pub(super) fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The token cache's key for `token` used as `tag`: 128 bits of two SipHash-1-3 functions
/// under random keys of this process. Nobody outside the process knows the keys, so no token
/// can be made to collide with a cached one; SHA-256 did the same at several times the cost on
/// every request (the raw token is not kept either way).
fn cache_key(tag: &[u8], token: &str) -> (u64, u64) {
    use std::hash::{BuildHasher, Hasher};
    static KEYS: std::sync::OnceLock<(RandomState, RandomState)> = std::sync::OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let hash = |keys: &RandomState| {
        let mut h = keys.build_hasher();
        h.write(tag);
        h.write(token.as_bytes());
        h.finish()
    };
    (hash(a), hash(b))
}

/// A verified KM-UU access token.
#[derive(Debug, Clone)]
pub struct UserToken(pub Arc<VerifiedToken>);

impl UserToken {
    fn extract(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = app_state(req)?;
        let now = state.node.now();
        Ok(UserToken(state.auth.verify(
            authorization(req),
            TokenUse::KmUu,
            now,
        )?))
    }
}

impl FromRequest for UserToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

/// A caller of the service listener whose client certificate and party token name the same
/// principal (not yet checked against the ACL).
#[derive(Debug, Clone)]
pub struct PartyAuth {
    /// The token's identity, which is one of the certificate's names.
    pub name: String,
    pub token: Arc<VerifiedToken>,
    /// The request's path as sent (percent-encoded), for the strict reading of path
    /// segments that actix's router decodes lossily (group ids).
    pub raw_path: String,
}

/// Whether the certificate `names` include the token's `identity`: URIs compare exactly, DNS
/// names without regard to ASCII case (RFC 5280 4.2.1.6).
pub fn names_match(names: &[String], identity: &str) -> bool {
    names.iter().any(|n| {
        if n.contains(':') {
            n == identity
        } else {
            n.eq_ignore_ascii_case(identity)
        }
    })
}

impl PartyAuth {
    pub(super) fn extract(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = app_state(req)?;
        let cert = req.conn_data::<PeerCert>().ok_or_else(|| {
            ApiError::Unauthorized("a client certificate is required on this interface".into())
        })?;
        let now = state.node.now();
        let token = state
            .auth
            .verify(authorization(req), TokenUse::Party, now)?;
        let names = crate::tls::certificate_names(&cert.0);
        if !names_match(&names, &token.identity) {
            return Err(ApiError::Forbidden(
                "the client certificate and the access token name different parties".into(),
            ));
        }
        Ok(PartyAuth {
            name: token.identity.clone(),
            token,
            raw_path: req.uri().path().to_owned(),
        })
    }
}

impl FromRequest for PartyAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

/// The admin bearer credential, compared in constant time with the configured SHA-256.
#[derive(Debug, Clone)]
pub struct AdminAuth(pub Actor);

impl AdminAuth {
    fn extract(req: &HttpRequest) -> Result<Self, ApiError> {
        use subtle::ConstantTimeEq;
        let state = app_state(req)?;
        let expected = state
            .admin_token_sha256
            .ok_or_else(|| ApiError::Forbidden("admin API disabled".into()))?;
        let token = authorization(req)
            .and_then(|v| bearer_token(v).ok())
            .ok_or_else(|| ApiError::Unauthorized("missing admin credential".into()))?;
        let got = sha256(&[token.as_bytes()]);
        if bool::from(got.as_ref().ct_eq(&expected)) {
            Ok(AdminAuth(Actor("admin".into())))
        } else {
            Err(ApiError::Unauthorized("invalid admin credential".into()))
        }
    }
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_include_the_token_identity() {
        let names = vec![
            "GMS.example.org".to_string(),
            "sip:gms@example.org".to_string(),
        ];
        assert!(names_match(&names, "gms.example.org"));
        assert!(names_match(&names, "sip:gms@example.org"));
        assert!(!names_match(&names, "SIP:gms@example.org"));
        assert!(!names_match(&names, "val.example.org"));
        assert!(!names_match(&[], "gms.example.org"));
    }
}
