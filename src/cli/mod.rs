//! Command-line operations that talk to running nodes (the binary's subcommands call these).

pub mod admin;
pub mod capif;
pub mod client;
pub mod cluster;
pub mod federation;
pub mod health;
pub mod party;

/// An HTTPS client that trusts the CA(s) in `ca` (PEM), with `timeout` per request.
pub fn https_client(
    ca: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<awc::Client, String> {
    let tls = crate::tls::client_config(ca).map_err(|e| e.to_string())?;
    Ok(awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(std::sync::Arc::new(tls)))
        .timeout(timeout)
        .finish())
}
