//! A node's peer PKI for the transport tests (`raft_transport`, `raft_stream`,
//! `peer_identity`): a certificate of a dev CA, its key and the CA, as files in a temporary
//! directory, and the peer client TLS config made of them.

use std::path::PathBuf;
use std::sync::Arc;

use sealkm::tls::{self, DevCa};

/// A node's PKI files in a temporary directory.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A node's PKI whose certificate carries 127.0.0.1, localhost and the DNS names `extra`.
pub fn pki_named(ca: &DevCa, extra: &[&str]) -> Pki {
    let mut names = vec!["127.0.0.1", "localhost"];
    names.extend_from_slice(extra);
    pki_exactly(ca, &names)
}

/// A PKI whose certificate carries exactly the subject alternative names `names`.
pub fn pki_exactly(ca: &DevCa, names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let (cert_pem, key_pem) = ca.issue(&names).expect("issue");
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), &ca.cert_pem).expect("write");
    std::fs::write(p("node.pem"), cert_pem).expect("write");
    std::fs::write(p("node.key"), key_pem.as_bytes()).expect("write");
    Pki {
        ca: p("ca.pem"),
        cert: p("node.pem"),
        key: p("node.key"),
        _dir: dir,
    }
}

/// The peer client TLS config (mutual TLS) of `pki`.
pub fn client_tls(pki: &Pki) -> Arc<rustls::ClientConfig> {
    Arc::new(tls::peer_client_config(&pki.cert, &pki.key, &pki.ca).expect("client tls"))
}
