//! A party of the service listener — the group management server (SEAL-X1) or a VAL server
//! (KM-S) — calling its JSON interfaces with its client certificate and access token. Used by
//! `sealkm client gms|val`, the load tool and the tests. (The TS 33.180 documents of the same
//! interfaces go through [`super::KmClient::party`].)

use std::path::Path;

use super::{http_client, party_tls, ClientError};

pub struct PartyClient {
    client: awc::Client,
    base: String,
    token: Option<String>,
}

/// An answer: status and body (JSON when the body is JSON, else `Null`).
#[derive(Debug, Clone)]
pub struct PartyReply {
    pub status: u16,
    pub json: serde_json::Value,
    /// The raw body (it may hold a GMK: zeroized on drop).
    pub raw: zeroize::Zeroizing<Vec<u8>>,
}

impl PartyClient {
    /// `base` is the service listener's `https://host:port`; `identity` the client certificate
    /// and key (PEM files), `token` the access token.
    pub fn new(
        base: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            client: http_client(party_tls(ca, identity)?),
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `method` (GET, POST, PUT, DELETE) on `path` (from the root, e.g. `/km-s/v1/...`) with
    /// an optional raw body (sent as JSON).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<PartyReply, ClientError> {
        let method = awc::http::Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::Invalid(format!("bad method {method}")))?;
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = match body {
            Some(b) => req.content_type("application/json").send_body(b).await,
            None => req.send().await,
        }
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let raw = super::read_body(&mut resp).await?;
        let json = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
        Ok(PartyReply { status, json, raw })
    }

    /// Like [`PartyClient::call_raw`] with a JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<PartyReply, ClientError> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.call_raw(method, path, body).await
    }
}

/// The GMK of a group key answer (`gmk`, 32 hex digits) and its GMK-ID.
pub fn group_key_of(
    reply: &serde_json::Value,
) -> Result<(crate::crypto::secret::SecretBytes<16>, u32), ClientError> {
    let bad = || ClientError::Invalid("not a group key answer".into());
    let mut gmk = [0u8; 16];
    hex::decode_to_slice(reply["gmk"].as_str().ok_or_else(bad)?, &mut gmk).map_err(|_| bad())?;
    let id =
        u32::from_str_radix(reply["gmk_id"].as_str().ok_or_else(bad)?, 16).map_err(|_| bad())?;
    let key = crate::crypto::secret::SecretBytes::new(gmk);
    zeroize::Zeroize::zeroize(&mut gmk);
    Ok((key, id))
}
