//! Subscriptions to key events over the service listener (placeholder: filled in by the
//! distribution work).

use actix_web::web;

use crate::kms::acl::Role;

/// The subscription routes for parties with `role`, under the caller's scope.
pub fn configure_for(_role: Role) -> impl FnOnce(&mut web::ServiceConfig) {
    |_cfg| {}
}
