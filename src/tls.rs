//! TLS configuration (rustls 0.23 on the `ring` provider; TLS 1.2 and 1.3) and the development
//! PKI that `sealkm dev` and the tests use (a CA and server certificates made with rcgen).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = zeroize::Zeroizing::new(read(path)?);
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: path.display().to_string(),
            reason: "no private key found".into(),
        })
}

/// Server config for a listener: its chain and key; no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Client config trusting the CA(s) in `ca` (PEM).
pub fn client_config(ca: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client config that trusts nobody (a node without peers still owns a transport).
pub fn empty_client_config() -> Result<rustls::ClientConfig, TlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    Ok(roots)
}

/// Server config for the peer (Raft) listener: its chain and key, and a client certificate
/// signed by the cluster CA in `cluster_ca` (PEM) is required. This is what keeps
/// unauthenticated bytes away from the protobuf decoder (DEPENDENCIES: protobuf 2.28 advisory).
pub fn peer_server_config(
    cert: &Path,
    key: &Path,
    cluster_ca: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    client_verifying_server_config(cert, key, &[Some(cluster_ca)], false)
}

/// A server config that verifies client certificates against the CA(s) in `cas`; with
/// `optional`, a client may present none (the application decides what that means).
fn client_verifying_server_config(
    cert: &Path,
    key: &Path,
    cas: &[Option<&Path>],
    optional: bool,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let mut all = rustls::RootCertStore::empty();
    for ca in cas.iter().flatten() {
        for c in load_certs(ca)? {
            all.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
        }
    }
    let mut builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(all), provider());
    if optional {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Client config for talking to peers: trusts only the cluster CA and presents this node's
/// certificate chain and key.
pub fn peer_client_config(
    cert: &Path,
    key: &Path,
    cluster_ca: &Path,
) -> Result<rustls::ClientConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(cluster_ca)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// Server config for the service listener (KM-S, SEAL-X1): its chain and key; a client
/// certificate signed by a CA in `client_ca` (PEM) is checked when presented. A connection
/// without one is let through so the handler can refuse it with a clear reason (401); a
/// certificate that does not chain to `client_ca` fails the handshake. With `ccf_ca` (CAPIF),
/// certificates of the CAPIF core function's CA are accepted too (PKI invokers, the CCF):
/// which CA a certificate chains to is decided per request.
pub fn service_server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    ccf_ca: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    client_verifying_server_config(cert, key, &[Some(client_ca), ccf_ca], true)
}

/// Server config for the KM-E listener: its chain and key; a client certificate signed by one
/// of the partners' CAs (`partner_cas`, PEM files) is required. Which partner it is, and that
/// it names that partner, is decided per request ([`chains_to`]).
pub fn km_e_server_config(
    cert: &Path,
    key: &Path,
    partner_cas: &[std::path::PathBuf],
) -> Result<rustls::ServerConfig, TlsError> {
    let mut all = rustls::RootCertStore::empty();
    for ca in partner_cas {
        for c in load_certs(ca)? {
            all.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
        }
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(all), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Whether the client certificate `leaf` chains to a CA in `ca` (PEM) and is valid now.
pub fn chains_to(leaf: &CertificateDer<'_>, ca: &Path) -> bool {
    let Ok(roots) = roots(ca) else {
        return false;
    };
    let Ok(verifier) =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
    else {
        return false;
    };
    verifier
        .verify_client_cert(leaf, &[], rustls::pki_types::UnixTime::now())
        .is_ok()
}

/// The DNS and URI subject alternative names of a certificate (DER), in certificate order.
/// Empty when the certificate cannot be parsed or has no such names.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::URI(s) => Some((*s).to_owned()),
            _ => None,
        })
        .collect()
}

/// A development CA with PEM texts, able to sign leaf certificates. `sealkm dev` keeps its
/// key (mode 0600) beside the CA certificate so `sealkm dev issue` and tests can add parties.
pub struct DevCa {
    pub cert_pem: String,
    key_pem: zeroize::Zeroizing<String>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl DevCa {
    pub fn generate(name: &str) -> Result<Self, TlsError> {
        let e = |e: rcgen::Error| TlsError::Config(e.to_string());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().map_err(e)?;
        let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).map_err(e)?;
        let cert_pem = issuer.pem();
        Self::load(&cert_pem, &key_pem)
    }

    /// A CA from its certificate and private key (PEM).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let e = |e: rcgen::Error| TlsError::Config(e.to_string());
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(e)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(cert_pem, key).map_err(e)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: zeroize::Zeroizing::new(key_pem.to_owned()),
            issuer,
        })
    }

    /// The CA's private key (PEM).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A leaf certificate for `names`: DNS names, IP addresses, or URIs (a name with a ':'
    /// that is not an IP address, such as `sip:gms@example.org`). Returns (cert PEM, key PEM).
    pub fn issue(
        &self,
        names: &[String],
    ) -> Result<(String, zeroize::Zeroizing<String>), TlsError> {
        let e = |e: rcgen::Error| TlsError::Config(e.to_string());
        let (uris, plain): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|n| n.contains(':') && n.parse::<std::net::IpAddr>().is_err());
        let plain: Vec<String> = plain.into_iter().cloned().collect();
        let mut params = rcgen::CertificateParams::new(plain).map_err(e)?;
        for u in uris {
            let uri = rcgen::string::Ia5String::try_from(u.as_str()).map_err(e)?;
            params.subject_alt_names.push(rcgen::SanType::URI(uri));
        }
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().map_err(e)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(e)?;
        Ok((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())))
    }
}

impl DevCa {
    /// Signs a PKCS#10 request (PEM) as it asks: the development CA standing in for a CAPIF
    /// core function's in tests. Returns the certificate (PEM).
    pub fn sign_request(&self, csr_pem: &str) -> Result<String, TlsError> {
        let e = |e: rcgen::Error| TlsError::Config(e.to_string());
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(e)?;
        Ok(csr.signed_by(&self.issuer).map_err(e)?.pem())
    }
}

/// The client certificate (leaf) of a mutual-TLS connection, put into the connection's data
/// by `on_connect` ([`peer_certificate`]) on the peer and service listeners: what node and
/// party identities are read from.
#[derive(Clone)]
pub struct PeerCert(pub rustls::pki_types::CertificateDer<'static>);

/// For `HttpServer::on_connect`: keeps the client certificate of a rustls connection.
pub fn peer_certificate(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>() {
        if let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            ext.insert(PeerCert(leaf.clone().into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_ca_round_trips_and_names_dns_and_uri() {
        let ca = DevCa::generate("t").unwrap();
        let again = DevCa::load(&ca.cert_pem, ca.key_pem()).unwrap();
        let (pem, _) = again
            .issue(&["gms.example".into(), "sip:gms@example.org".into()])
            .unwrap();
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            certificate_names(&der),
            vec!["gms.example".to_string(), "sip:gms@example.org".to_string()]
        );
        assert!(certificate_names(b"not a certificate").is_empty());
    }
}
