//! The OpenAPI 3.1 document of the JSON (and XML) interfaces of the service listener (KM-S,
//! SEAL-X1, subscriptions) and of the admin API, generated from the handlers' annotations
//! (utoipa). Served at `GET /openapi.json` on the service listener; `sealkm openapi` prints
//! it, and `docs/openapi.json` is that output, checked by a test so it cannot drift.

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::problem::{InvalidParam, ProblemDetails};
use super::{
    acl, admin, capif, cluster, federation, group_keys, km_s, revocation_query, seal_x1, ss_kir,
    subscriptions,
};
use crate::actors::distribution;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "access_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token of the identity management server (TS 33.434 5.3.1). On \
                         the service listener the TLS client certificate must name the same \
                         party as the token's identity claim.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_credential",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin bearer credential (its SHA-256 is in the node config). The \
                         admin API is served on the client listener.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "mutual_tls",
            SecurityScheme::MutualTls {
                description: Some(
                    "Client certificate signed by the service listener's client CA; its DNS or \
                     URI subject alternative name names the party."
                        .into(),
                ),
                extensions: None,
            },
        );
    }
}

/// Statuses any operation of the service listener's JSON interfaces (KM-S, SEAL-X1 and their
/// subscriptions) may answer before or besides its own, with the `{"error": reason}` body:
/// added where an operation does not list them itself (ss-kir and the CAPIF route list their
/// ProblemDetails statuses themselves).
const SERVICE_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Malformed request: a path segment, query or body that does not parse",
    ),
    (
        "401",
        "No client certificate or no valid access token, or the two name different parties",
    ),
    ("403", "The party's role or grant does not allow this"),
    ("404", "Unknown resource"),
    (
        "408",
        "The body did not arrive within [limits] body_read_timeout_s",
    ),
    ("413", "Body over the limit"),
    (
        "429",
        "Admission control or a per-principal quota (Retry-After when waiting helps)",
    ),
    ("503", "No leader or no quorum reachable (Retry-After)"),
];

/// Added to the writes (POST, PUT, DELETE) of those interfaces.
const WRITE_ERRORS: &[(&str, &str)] = &[(
    "507",
    "This node is below its free-space reserve or its Raft log disk is full: nothing was written",
)];

struct ServiceErrors;

impl Modify for ServiceErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in doc.paths.paths.iter_mut() {
            if !(path.starts_with("/km-s/") || path.starts_with("/seal-x1/")) {
                continue;
            }
            // The TS 33.180 document routes answer errors as a KmsResponse with KmsError.
            let xml = path.contains("/keymanagement/");
            let error = || {
                let content = if xml {
                    ("application/xml", ContentBuilder::new().build())
                } else {
                    (
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                };
                ResponseBuilder::new().content(content.0, content.1)
            };
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.delete, true),
            ];
            for (op, write) in ops {
                let Some(op) = op.as_mut() else { continue };
                let extra = if write { WRITE_ERRORS } else { &[] };
                for (status, why) in SERVICE_ERRORS.iter().chain(extra) {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| error().description(*why).build().into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sealkm service and admin interfaces",
        description = "KM-S (VAL servers) and SEAL-X1 (group management server) per TS 33.434 / \
                       TS 33.180, TS 29.549 ss-kir (SS_KeyInfoRetrieval), with our extensions (KMS-managed group keys, key event \
                       subscriptions) marked as such, and the admin API.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security, &ServiceErrors),
    security(("mutual_tls" = [], "access_token" = [])),
    paths(
        seal_x1::key_management,
        seal_x1::create_key,
        seal_x1::list_versions,
        seal_x1::get_key,
        seal_x1::revoke_key,
        seal_x1::set_expiry,
        km_s::key_management,
        km_s::list_versions,
        km_s::get_key,
        km_s::key_provisioning,
        ss_kir::key_records,
        capif::revoke_authorization,
        subscriptions::seal_x1_subscribe,
        subscriptions::seal_x1_subscriptions,
        subscriptions::seal_x1_unsubscribe,
        subscriptions::km_s_subscribe,
        subscriptions::km_s_subscriptions,
        subscriptions::km_s_unsubscribe,
        admin::status,
        admin::communities,
        admin::rotate,
        admin::revoke_cert,
        admin::revoke_identity,
        admin::reinstate_identity,
        revocation_query::query,
        acl::list,
        acl::set,
        acl::remove,
        cluster::status,
        cluster::join,
        cluster::leave,
        federation::export,
        federation::list,
        federation::import,
        federation::revoke,
        federation::remove,
        federation::admin_lookup,
        federation::seal_x1_lookup,
        federation::km_s_lookup,
        federation::approve,
        federation::refresh,
        federation::status,
        capif::status,
        capif::publish,
        capif::unpublish,
        capif::reinstate,
    ),
    components(schemas(
        group_keys::VersionInfo,
        revocation_query::RevocationQuery,
        revocation_query::RevocationAnswer,
        group_keys::GroupInfo,
        group_keys::GroupKeyBody,
        seal_x1::CreateKey,
        seal_x1::SetExpiry,
        km_s::KeyProvisioningRequest,
        km_s::KeyProvisioningAck,
        subscriptions::SubscribeRequest,
        subscriptions::SubscriptionBody,
        subscriptions::SubscriptionList,
        distribution::Notification,
        distribution::NotificationEvent,
        distribution::NotificationSubject,
        federation::PartnerBody,
        federation::PartnerList,
        federation::ImportBody,
        federation::IdBody,
        federation::LookupAnswer,
        ErrorBody,
        ss_kir::ValKeyInfo,
        capif::RevokeBody,
        capif::RevokeInfo,
        capif::ReinstateBody,
        ProblemDetails,
        InvalidParam,
    )),
    tags(
        (name = "SEAL-X1", description = "TS 33.434 / TS 33.180: the group management server's key material"),
        (name = "SEAL-X1 (extension)", description = "Our extension: KMS-managed group keys"),
        (name = "KM-S", description = "TS 33.434 5.3, 5.8: VAL servers' key material and SEAL key provisioning. The /km-s/v1 JSON and document routes are our interface for these procedures (an extension in form: TS 29.549 defines only ss-kir); errors are {\"error\": reason}"),
        (name = "ss-kir", description = "TS 29.549 7.6.1 SS_KeyInfoRetrieval v1: key information pushed by SEAL key provisioning, for VAL servers; errors are TS 29.122 ProblemDetails (application/problem+json)"),
        (name = "capif", description = "TS 29.222 AEF_Security_API revoke-authorization, for the CAPIF core function only (its client certificate); served with [capif]. With [capif], ss-kir also accepts CAPIF invokers: a client certificate of the CCF's CA (PKI, authorised by the CCF's trustedInvokers) or, without a certificate, a CCF bearer token (OAUTH) whose scope names this AEF and ss-kir"),
        (name = "KM-S (extension)", description = "Our extension: group keys for entitled VAL servers"),
        (name = "Subscriptions (extension)", description = "Our extension: subscriptions to key events; the leader POSTs a Notification (metadata and event ids only) to the callback URL over mutual TLS, at least once, in id order"),
        (name = "Federation", description = "Partner KMS certificates (TS 33.180 Annex L.3.2 manual exchange; admin API) and the domain lookup (our extension)"),
        (name = "admin", description = "Operators: communities, certificates, revocations, ACL, cluster (client listener)"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON (what `/openapi.json` serves and `docs/openapi.json` holds).
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/openapi.json",
        web::get().to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(document_json())
        }),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk.trim_end() == super::document_json().trim_end(),
            "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
        );
    }
}
