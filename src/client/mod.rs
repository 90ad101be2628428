//! A KM client (TS 33.180 Annex D, client side): fetches init / keyprov / certcache over TLS
//! with an access token and validates everything it receives — the UID is recomputed (F.2.1),
//! the ECCSI pair checked against the KPAK (RFC 6507 §5.1.2), the RSK checked with a pairing
//! (RFC 6508 §6.1.2). Used by `sealkm client`, the integration tests and the load tool.

use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

use crate::crypto::eccsi::{EccsiSigner, Kpak, Pvt, Ssk};
use crate::crypto::sakke::{self, Rsk, SakkePublicKey};
use crate::crypto::{kdf, CryptoError};
use crate::kms::xml::certificate::KmsCertificateDoc;
use crate::kms::xml::keyset::KmsKeySetDoc;
use crate::kms::xml::response::{parse_kms_response, KmsResponseDoc};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("unparseable response (HTTP {status}): {reason}")]
    Response { status: u16, reason: String },
    #[error("key material does not validate: {0}")]
    Invalid(String),
}

impl From<CryptoError> for ClientError {
    fn from(e: CryptoError) -> Self {
        ClientError::Invalid(e.to_string())
    }
}

/// A response: the HTTP status, selected headers and the parsed document.
#[derive(Debug)]
pub struct KmReply {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub doc: KmsResponseDoc,
    /// The document as received (it may hold private keys: zeroized on drop).
    pub raw: zeroize::Zeroizing<Vec<u8>>,
}

pub mod gmk;
pub mod party;

pub struct KmClient {
    client: awc::Client,
    base: String,
    /// The interface root the documents are under ([`ROOT`] for KM-UU).
    root: String,
    token: Option<String>,
}

pub const ROOT: &str = "/keymanagement/identity/v1";

impl KmClient {
    /// `base` is `https://host:port`; `ca` the PEM of the server's CA.
    pub fn new(base: &str, ca: &Path, token: Option<String>) -> Result<Self, ClientError> {
        let tls = crate::tls::client_config(ca).map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Self::with_tls(base, ROOT, tls, token))
    }

    /// A party of the service listener (GMS over SEAL-X1, VAL server over KM-S): documents
    /// under `root`, with the client certificate `identity` = (cert PEM, key PEM) if given.
    pub fn party(
        base: &str,
        root: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        Ok(Self::with_tls(base, root, party_tls(ca, identity)?, token))
    }

    fn with_tls(base: &str, root: &str, tls: rustls::ClientConfig, token: Option<String>) -> Self {
        Self {
            client: http_client(tls),
            base: base.trim_end_matches('/').to_owned(),
            root: root.to_owned(),
            token,
        }
    }

    /// POSTs `body` to `path` (relative to the interface root, e.g. `keyprov`).
    pub async fn post(&self, path: &str, body: Option<String>) -> Result<KmReply, ClientError> {
        self.post_with(path, body, &[]).await
    }

    /// Like [`KmClient::post`] with extra headers (e.g. `Host`).
    pub async fn post_with(
        &self,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<KmReply, ClientError> {
        let mut req = self
            .client
            .post(format!("{}{}/{path}", self.base, self.root));
        if let Some(t) = &self.token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut resp = match body {
            Some(b) => req.content_type("application/xml").send_body(b).await,
            None => req.send().await,
        }
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let www_authenticate = header("www-authenticate");
        let retry_after = header("retry-after");
        let raw = read_body(&mut resp).await?;
        let doc = parse_kms_response(&raw).map_err(|e| ClientError::Response {
            status,
            reason: e.to_string(),
        })?;
        Ok(KmReply {
            status,
            www_authenticate,
            retry_after,
            doc,
            raw,
        })
    }
}

/// Reads a response body (at most 1 MiB) into a buffer zeroized on drop (it may hold keys).
pub(crate) async fn read_body<S>(
    resp: &mut awc::ClientResponse<S>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ClientError>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let bytes = resp
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    Ok(zeroize::Zeroizing::new(bytes.to_vec()))
}

/// TLS towards the service listener: trusts `ca`; presents `identity` (cert, key) if given.
pub fn party_tls(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, ClientError> {
    match identity {
        Some((cert, key)) => crate::tls::peer_client_config(cert, key, ca),
        None => crate::tls::client_config(ca),
    }
    .map_err(|e| ClientError::Tls(e.to_string()))
}

/// An HTTP client over `tls` (30 s timeout).
pub fn http_client(tls: rustls::ClientConfig) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(std::time::Duration::from_secs(30))
        .finish()
}

/// Validates a key set against the certificate it names: UID, ECCSI pair, SAKKE RSK.
pub fn validate_key_set(cert: &KmsCertificateDoc, ks: &KmsKeySetDoc) -> Result<(), ClientError> {
    let uid = kdf::uid(
        &ks.user_uri,
        &cert.kms_uri,
        cert.user_key_period,
        cert.user_key_offset,
        ks.key_period_no,
    );
    if uid != ks.user_id {
        return Err(ClientError::Invalid(
            "UserID is not the F.2.1 UID of UserUri for KeyPeriodNo".into(),
        ));
    }
    let kpak = Kpak::from_bytes(&cert.pub_auth_key)?;
    let ssk = Ssk::from_bytes(ks.user_signing_key_ssk.expose())?;
    let pvt = Pvt::from_bytes(&ks.user_pub_token_pvt)?;
    EccsiSigner::new(&kpak, &uid, &ssk, &pvt)?;
    let z = SakkePublicKey::from_bytes(&cert.pub_enc_key)?;
    let rsk = Rsk::from_bytes(ks.user_decrypt_key.expose())?;
    sakke::validate_rsk(&z, &uid, &rsk)?;
    Ok(())
}
