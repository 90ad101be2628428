//! A service-listener party for tests (the dev GMS or VAL server): mutual TLS with its client
//! certificate from the dev environment and an access token of the dev identity provider
//! naming the same party. Blocking JSON calls (each gets its own actix system).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sealkm::dev;

pub struct Party {
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

impl Party {
    /// Party `stem` (`gms`, `val`) of the environment in `dir`, named `name` in its token.
    pub fn new(dir: &Path, stem: &str, name: &str) -> Self {
        let (cert, key) = dev::party_files(dir, stem);
        let tls = sealkm::tls::peer_client_config(&cert, &key, &dir.join(dev::CA_CERT))
            .expect("party tls");
        let policy = sealkm::config::NodeConfig::load(&dev::node_config(dir, 1))
            .expect("config")
            .auth
            .token;
        let token = dev::load_idp(dir)
            .expect("idp")
            .mint_for(
                &policy,
                name,
                &policy.required_scope,
                super::unix_now(),
                3600,
            )
            .expect("mint");
        Self {
            tls: Arc::new(tls),
            token,
        }
    }

    /// The dev GMS.
    pub fn gms(dir: &Path) -> Self {
        Self::new(dir, "gms", dev::DEV_GMS)
    }

    pub fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let (status, bytes) = self.raw(method, url, body)?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// A GET answered as text (e.g. `/metrics`).
    pub fn text(&self, url: &str) -> Result<(u16, String), String> {
        let (status, bytes) = self.raw("GET", url, None)?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn raw(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), String> {
        let tls = self.tls.clone();
        let token = self.token.clone();
        let url = url.to_owned();
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let body = body.cloned();
        actix_rt::System::new().block_on(async move {
            let client = awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(tls))
                .timeout(Duration::from_secs(20))
                .finish();
            let req = client.request(method, &url).bearer_auth(&token);
            let mut resp = match &body {
                Some(b) => req.send_json(b).await,
                None => req.send().await,
            }
            .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = resp
                .body()
                .limit(1 << 20)
                .await
                .map_err(|e| e.to_string())?;
            Ok((status, bytes.to_vec()))
        })
    }

    pub fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value), String> {
        self.call("POST", url, Some(body))
    }

    pub fn get(&self, url: &str) -> Result<(u16, serde_json::Value), String> {
        self.call("GET", url, None)
    }

    pub fn delete(&self, url: &str) -> Result<(u16, serde_json::Value), String> {
        self.call("DELETE", url, None)
    }
}
