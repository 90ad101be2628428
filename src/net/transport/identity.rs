//! Who speaks on a peer connection: the node ids a client certificate names
//! ([`PeerNames`]), and the middleware that refuses a connection whose certificate names none
//! ([`require_node_identity`]) before any route of the peer listener runs.

use actix_web::{web, HttpMessage, HttpResponse};

use crate::tls::PeerCert;

/// How a node id is named in peer certificates: node `N` presents a certificate whose DNS
/// subject alternative names include `node<N>.<domain>` literally (a wildcard names no node).
/// `None`: no names are checked (the CA check alone; tests only — a node config must set
/// `peer_name_domain`).
#[derive(Debug, Clone, Default)]
pub struct PeerNames(pub Option<String>);

/// The node ids a peer connection's certificate names, found before anything is read
/// ([`require_node_identity`]); kept in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNodes(pub Vec<u64>);

impl PeerNames {
    /// The node ids `cert` names: every literal DNS name `node<N>.<domain>` (N > 0, no
    /// leading zero) among its subject alternative names that it is valid for.
    pub fn node_ids(&self, cert: &PeerCert) -> Vec<u64> {
        let Some(domain) = &self.0 else {
            return Vec::new();
        };
        let Ok(ee) = webpki::EndEntityCert::try_from(&cert.0) else {
            return Vec::new();
        };
        let suffix = format!(".{}", domain.to_ascii_lowercase());
        let mut ids = Vec::new();
        for name in crate::tls::certificate_names(&cert.0) {
            let lower = name.to_ascii_lowercase();
            let Some(digits) = lower
                .strip_suffix(suffix.as_str())
                .and_then(|h| h.strip_prefix("node"))
            else {
                continue;
            };
            if digits.is_empty()
                || digits.starts_with('0')
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(id) = digits.parse::<u64>() else {
                continue;
            };
            let Ok(server_name) =
                rustls::pki_types::ServerName::try_from(format!("node{id}.{domain}"))
            else {
                continue;
            };
            if ee.verify_is_valid_for_subject_name(&server_name).is_ok() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// The nodes the connection of `req` speaks for; empty when it names none (or when no
    /// domain is set).
    pub(super) fn nodes_of(&self, req: &actix_web::HttpRequest) -> Vec<u64> {
        if let Some(known) = req.extensions().get::<PeerNodes>() {
            return known.0.clone();
        }
        req.conn_data::<PeerCert>()
            .map(|c| self.node_ids(c))
            .unwrap_or_default()
    }
}

/// The body of a refusal for a connection whose certificate names no node.
pub(super) const NOT_A_NODE: &str = "the client certificate does not name a node of this cluster";

/// Middleware for the whole peer listener (`App::wrap(from_fn(require_node_identity))`):
/// before any route runs, its extractors included (so before a body is read or any state is
/// touched), the connection's client certificate must name a node (`node<N>.<domain>`, with
/// the [`PeerNames`] of the app's data); otherwise 403. The ids it names are kept in the
/// request's extensions as [`PeerNodes`]. Without a `PeerNames` domain, every request is
/// refused: the listener never serves on the CA check alone.
pub async fn require_node_identity(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let ids = req
        .app_data::<web::Data<PeerNames>>()
        .map(|n| n.get_ref())
        .filter(|n| n.0.is_some())
        .map(|n| n.nodes_of(req.request()))
        .unwrap_or_default();
    if ids.is_empty() {
        tracing::warn!(path = %req.path(), "peer request refused: the certificate names no node");
        return Ok(req.into_response(HttpResponse::Forbidden().body(NOT_A_NODE)));
    }
    req.extensions_mut().insert(PeerNodes(ids));
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_come_from_literal_node_names_of_the_domain() {
        let ca = crate::tls::DevCa::generate("t").unwrap();
        let names = PeerNames(Some("cluster.test".into()));
        let ids = |sans: &[&str]| {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let (pem, _) = ca.issue(&sans).unwrap();
            let der = rustls_pemfile::certs(&mut pem.as_bytes())
                .next()
                .unwrap()
                .unwrap();
            names.node_ids(&PeerCert(der))
        };
        assert_eq!(ids(&["node3.cluster.test", "127.0.0.1"]), vec![3]);
        assert_eq!(ids(&["NODE12.Cluster.Test"]), vec![12]);
        assert!(ids(&["*.cluster.test"]).is_empty());
        assert!(ids(&[
            "node.cluster.test",
            "node0.cluster.test",
            "node01.cluster.test"
        ])
        .is_empty());
        assert!(ids(&[
            "node1.other.test",
            "val.cluster.test",
            "sip:node1.cluster.test"
        ])
        .is_empty());
        assert!(PeerNames(None)
            .node_ids(&PeerCert(rustls::pki_types::CertificateDer::from(vec![
                1u8, 2
            ])))
            .is_empty());
    }
}
