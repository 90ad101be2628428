//! The HTTP edge (actix-web over rustls): one file per reference point. This module holds the
//! shared [`AppState`] and assembles the listeners' routes; the route modules import only the
//! shared ones ([`error`], [`problem`], [`body`], [`auth`], [`service`], [`group_keys`],
//! [`documents`], [`forwarded`]) and
//! this one, never each other. JSON handlers
//! return `Result<_, ApiError>`: errors are rendered by [`error::ApiError`]'s
//! `ResponseError`.
//!
//! | file | serves |
//! |------|--------|
//! | [`documents`] | the TS 33.180 Annex D documents (init, keyprov, certcache) for every caller, KmsResponse / KmsError rendering |
//! | [`forwarded`] | the host and scheme a KM-UU request was addressed to (forwarding headers of trusted proxies only) |
//! | [`km_uu`] | KM-UU, those documents under `/keymanagement/identity/v1` for a user's access token |
//! | [`admin`] | JSON admin API under `/admin/v1` (admin bearer credential) |
//! | [`auth`] | the extractors that authenticate every caller before any other work |
//! | [`body`] | request bodies (read after authentication, bounded in size and time), the `Idempotency-Key` header, the zeroizing response body |
//! | [`acl`] | the replicated ACL of the service interfaces under `/admin/v1/acl` |
//! | [`km_e`] | KM-E, our partner link: its own mTLS listener (partners' pinned CAs and names) |
//! | [`federation`] | partner KMS certificates under `/admin/v1/federation`, the domain lookup for parties |
//! | [`cluster`] | cluster status and membership under `/admin/v1/cluster` |
//! | [`health`] | `/healthz`, `/readyz`, `/metrics` |
//! | [`capif`] | CAPIF on the service listener: who invokes `ss-kir` (a party, or a CAPIF invoker by PKI or OAUTH), `revoke-authorization` for the CCF, and the CAPIF admin routes |
//! | [`service`] | the service listener: mTLS + token authentication of parties |
//! | [`seal_x1`] | SEAL-X1 for the group management server under `/seal-x1/v1` |
//! | [`km_s`] | KM-S for VAL servers under `/km-s/v1` (our SEAL KM-S JSON interface) |
//! | [`ss_kir`] | TS 29.549 `SS_KeyInfoRetrieval` under `/ss-kir/v1` (VAL servers) |
//! | [`problem`] | TS 29.122 `ProblemDetails`: the error bodies of the 3GPP-defined APIs |
//! | [`group_keys`] | KMS-managed group key JSON shared by SEAL-X1 and KM-S |
//! | [`subscriptions`] | key event subscriptions on SEAL-X1 and KM-S |
//! | [`openapi`] | the generated OpenAPI document |
//! | [`error`] | the one error → HTTP status mapping and the JSON error body |

pub mod acl;
pub mod admin;
pub mod auth;
pub mod body;
pub mod capif;
pub mod cluster;
pub mod documents;
pub mod error;
pub mod federation;
pub mod forwarded;
pub mod group_keys;
pub mod health;
pub mod km_e;
pub mod km_s;
pub mod km_uu;
pub mod openapi;
pub mod problem;
pub mod revocation_query;
pub mod seal_x1;
pub mod service;
pub mod ss_kir;
pub mod subscriptions;

use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use self::auth::Authenticator;
use self::body::BodyLimits;
use crate::kms::acl::Role;
use crate::node::KmsNode;

/// Shared by every handler.
pub struct AppState {
    pub node: Arc<KmsNode>,
    /// Access token verification (reloadable key set, cache of verified tokens).
    pub auth: Arc<Authenticator>,
    /// Request bodies: the size limit of KM-UU documents and the read timeout of every body.
    pub body: BodyLimits,
    /// SHA-256 of the admin bearer credential; `None` disables the admin API.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// mTLS towards peers (cluster status); `None` for a cluster of one.
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// Peer addresses from the config (members added later are in the replicated state).
    pub static_peers: Vec<(u64, String)>,
    /// KM-E (`[federation]`), if configured.
    pub federation: Option<Arc<crate::config::FederationConfig>>,
    /// The Federator (KM-E), if configured.
    pub federator: Option<actix::Addr<crate::actors::federator::Federator>>,
    /// The HTTP proxies in front of KM-UU whose forwarding headers count ([`forwarded`]).
    pub trusted_proxies: Vec<crate::config::trusted_proxies::IpCidr>,
    /// Admission of TS 29.549 `ss-kir` retrievals (per caller, and in flight): 429 beyond.
    pub retrieval: crate::node::admission::Admission,
    /// The origin of the monotonic time `retrieval` runs on.
    pub started: std::time::Instant,
    /// The CAPIF links (`[capif]`), if configured.
    pub capif: Option<Arc<crate::actors::capif::Capif>>,
}

/// The peer client TLS config of `cfg`, if it has a `[raft]` section.
pub fn peer_tls(
    cfg: &crate::config::NodeConfig,
) -> Result<Option<Arc<rustls::ClientConfig>>, crate::tls::TlsError> {
    cfg.raft
        .as_ref()
        .map(|r| {
            crate::tls::peer_client_config(
                &r.peer_listener.tls_cert,
                &r.peer_listener.tls_key,
                &r.cluster_ca,
            )
            .map(Arc::new)
        })
        .transpose()
}

/// The peers named in `cfg` (`[[raft.peer]]`).
pub fn static_peers(cfg: &crate::config::NodeConfig) -> Vec<(u64, String)> {
    cfg.raft
        .iter()
        .flat_map(|r| r.peers.iter().map(|p| (p.id, p.addr.clone())))
        .collect()
}

/// Registers every route of the client listener: KM-UU, the admin API (this module assembles
/// the `/admin/v1` scope from its route modules) and health.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(documents::documents_scope(km_uu::ROOT, km_uu::handle))
        .service(
            web::scope("/admin/v1")
                .configure(admin::configure)
                .configure(federation::configure)
                .configure(cluster::configure)
                .configure(acl::configure)
                .configure(capif::configure_admin)
                .configure(revocation_query::configure),
        )
        .configure(health::configure);
}

/// Registers every route of the service listener ([`service::serve`]): SEAL-X1 and KM-S, each
/// scope with its subscription routes, TS 29.549 `ss-kir`, the OpenAPI document and health.
pub fn service_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(seal_x1::ROOT)
            .configure(seal_x1::configure)
            .configure(subscriptions::configure_for(Role::Gms))
            .configure(federation::configure_lookup_for(Role::Gms)),
    )
    .service(
        web::scope(km_s::ROOT)
            .configure(km_s::configure)
            .configure(subscriptions::configure_for(Role::ValServer))
            .configure(federation::configure_lookup_for(Role::ValServer)),
    )
    .service(web::scope(ss_kir::ROOT).configure(ss_kir::configure))
    .configure(capif::configure_service)
    .configure(openapi::configure)
    .configure(health::configure);
}

/// Binds the client listener (KM-UU, admin, health) and starts it; the returned server runs
/// until stopped through its handle (it does not handle OS signals itself: see
/// [`stop_on_signals_later`]).
pub fn serve(
    data: web::Data<AppState>,
    addr: &str,
    tls: rustls::ServerConfig,
    workers: Option<usize>,
) -> std::io::Result<actix_web::dev::Server> {
    // The one line scripts and tests wait for: the listener is bound (port 0 gets resolved here).
    listener(data, addr, tls, workers, "KM-UU", configure, |_, _| {})
}

/// Binds an HTTPS listener serving the routes of `routes` with the shared state, prints
/// `sealkm: <label> listening on https://ADDR` once bound, and starts it. `on_connect` may keep
/// per-connection data (the client certificate). OS signals are left to
/// [`stop_on_signals_later`],
/// so that several listeners of one process stop together whenever the signal comes.
pub(crate) fn listener(
    data: web::Data<AppState>,
    addr: &str,
    tls: rustls::ServerConfig,
    workers: Option<usize>,
    label: &str,
    routes: fn(&mut web::ServiceConfig),
    on_connect: fn(&dyn std::any::Any, &mut actix_web::dev::Extensions),
) -> std::io::Result<actix_web::dev::Server> {
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // A query or path segment that does not parse is a 400 with our JSON error body,
            // like every other refusal (not actix's plain text).
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| {
                    error::ApiError::BadRequest(format!("query: {e}")).into()
                }),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| error::ApiError::BadRequest(format!("path: {e}")).into()),
            )
            // Every request makes at most one read barrier (`NodeCore::read_barrier`) and
            // knows whether it proposed anything (`NodeCore::propose`).
            .wrap(actix_web::middleware::from_fn(one_barrier_per_request))
            .wrap(actix_web::middleware::Logger::new("%a \"%r\" %s %b %Dms").exclude("/healthz"))
            .configure(routes)
    })
    .on_connect(on_connect)
    .disable_signals()
    .bind_rustls_0_23(addr, tls)?;
    if let Some(w) = workers {
        server = server.workers(w.max(1));
    }
    for a in server.addrs() {
        println!("sealkm: {label} listening on https://{a}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(server.run())
}

/// Runs the rest of the request inside [`crate::node::core::request_scope`].
async fn one_barrier_per_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    crate::node::core::request_scope(next.call(req)).await
}

/// Listens for SIGTERM and SIGINT (registered now, before any listener is announced) and then
/// stops gracefully every server whose handle arrives on `handles` (sent once they are bound).
/// A signal before the handles arrive stops them as soon as they do. Spawn the returned future.
pub fn stop_on_signals_later(
    handles: tokio::sync::oneshot::Receiver<Vec<actix_web::dev::ServerHandle>>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; stopping the listeners"),
            _ = int.recv() => tracing::info!("SIGINT received; stopping the listeners"),
        }
        if let Ok(handles) = handles.await {
            for h in handles {
                h.stop(true).await;
            }
        }
    })
}
