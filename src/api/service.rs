//! The service listener (KM-S for VAL servers, SEAL-X1 for the group management server) and
//! the one way a party is authenticated on it (TS 33.434 5.1, 5.3.1; SEAL-X1 per RFC 6749 /
//! RFC 6750):
//!
//! 1. the TLS client certificate, signed by the listener's `client_ca` (checked in the
//!    handshake), names the party in a DNS or URI subject alternative name;
//! 2. the request carries a *party* access token of the identity management server (bearer
//!    header): the party scope and audience of `[auth.party]`, not a KM-UU token; its
//!    identity claim names the party;
//! 3. both must name the **same** party: the token's identity must be one of the
//!    certificate's names. That name is the principal. Steps 1–3 are the [`PartyAuth`]
//!    extractor: they run before any body is read or any Raft work is done;
//! 4. the principal has an entry in the replicated ACL (our extension) with the role the
//!    interface requires (`gms` for SEAL-X1, `val-server` for KM-S), read after the request's
//!    one linearizable read barrier ([`authorize`]), so a revoked grant is never honoured by a
//!    lagging node.
//!
//! A missing certificate or token is 401, names that differ or a missing grant 403; nothing
//! changes on any refusal. The listener itself: [`serve`], with the client certificate kept per
//! connection by [`crate::tls::peer_certificate`].

use actix_web::web;

use super::auth::PartyAuth;
use super::error::ApiError;
use super::AppState;
use crate::auth::jwt::VerifiedToken;
use crate::kms::acl::{AclEntry, Role};
use crate::node::core::Actor;
use crate::tls::peer_certificate;

/// An authenticated party of the service listener.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The name both the certificate and the token give (the ACL key).
    pub name: String,
    pub acl: AclEntry,
    pub token: std::sync::Arc<VerifiedToken>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor(self.name.clone())
    }

    /// Whether the ACL lets this principal read (or, for a GMS, manage) `group_id`.
    pub fn may_use_group(&self, group_id: &str) -> bool {
        self.acl.allows_group(group_id)
    }

    /// 403 unless [`Principal::may_use_group`].
    pub fn check_group(&self, group_id: &str) -> Result<(), ApiError> {
        if self.may_use_group(group_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} is not entitled to group {group_id}",
                self.name
            )))
        }
    }
}

/// Authorises an authenticated party ([`PartyAuth`], from the extractor) for an interface that
/// requires `role`: the request's one read barrier, then its ACL entry (see module docs).
pub async fn authorize(
    state: &AppState,
    party: PartyAuth,
    role: Role,
) -> Result<Principal, ApiError> {
    state.node.read_barrier().await?;
    let acl = state
        .node
        .parties
        .acl_entry_local(&party.name)?
        .ok_or_else(|| {
            ApiError::Forbidden(format!("{} has no access on this interface", party.name))
        })?;
    if acl.role != role {
        return Err(ApiError::Forbidden(format!(
            "{} has the role {}; this interface requires {}",
            acl.principal, acl.role, role
        )));
    }
    Ok(Principal {
        name: acl.principal.clone(),
        acl,
        token: party.token,
    })
}

/// Binds and starts the service listener with the routes of [`super::service_routes`]; prints
/// `sealkm: service listening on https://ADDR` once bound.
pub fn serve(
    data: web::Data<AppState>,
    addr: &str,
    tls: rustls::ServerConfig,
    workers: Option<usize>,
) -> std::io::Result<actix_web::dev::Server> {
    super::listener(
        data,
        addr,
        tls,
        workers,
        "service",
        super::service_routes,
        peer_certificate,
    )
}
