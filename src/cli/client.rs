//! `sealkm client`: a KM client over KM-UU (init, keyprov, certcache, opening a GMK
//! I_MESSAGE as a member), and the parties of the service listener (`gms`, `val`:
//! [`super::party`]). Shared connection flags: [`Conn`].

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::client::{validate_key_set, KmClient};
use crate::dev;
use crate::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

#[derive(clap::Args)]
pub struct Conn {
    /// Dev environment to take defaults from (URL, CA, token key, admin credential).
    #[arg(long, global = true, default_value = "sealkm-dev")]
    pub dir: PathBuf,
    /// Node URL (default: node 1 of the dev environment's cluster.json).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// CA certificate (PEM) to trust (default: the dev CA).
    #[arg(long, global = true, alias = "ca")]
    pub cacert: Option<PathBuf>,
    /// Save the fetched documents in this directory.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Bearer token (default: minted by the dev identity provider for --user, or the admin credential).
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// User identity to mint a dev token for.
    #[arg(long, global = true, default_value = "sip:alice@sealkm.test")]
    pub user: String,
}

#[derive(Subcommand)]
pub enum ClientReq {
    Init,
    Keyprov {
        /// Put the user URI in the path.
        #[arg(long)]
        uri: bool,
        /// NTP-UTC time (16 hex digits) for the key period.
        #[arg(long)]
        time: Option<String>,
    },
    Certcache {
        #[arg(long)]
        num: Option<u64>,
    },
    /// Play the group management server over SEAL-X1 (client certificate + token).
    Gms {
        #[command(flatten)]
        who: super::party::PartyArgs,
        #[command(subcommand)]
        op: super::party::PartyOp,
    },
    /// Play a VAL server over KM-S (client certificate + token).
    Val {
        #[command(flatten)]
        who: super::party::PartyArgs,
        #[command(subcommand)]
        op: super::party::PartyOp,
    },
    /// As the member --user: open a GMK I_MESSAGE (verify the GMS's signature, decrypt).
    Imessage {
        #[command(subcommand)]
        op: ImessageOp,
    },
}

#[derive(Subcommand)]
pub enum ImessageOp {
    Open {
        #[arg(long)]
        file: PathBuf,
        /// The expected sender (GMS URI), if known from signalling.
        #[arg(long)]
        from: Option<String>,
    },
}

pub fn mint(dir: &Path, user: &str, ttl: u64) -> Result<String, String> {
    dev::mint_token(dir, user, ttl, &[])
}

pub fn conn_parts(conn: &Conn) -> Result<(String, PathBuf), String> {
    let url = match &conn.url {
        Some(u) => u.clone(),
        None => dev::node_url(&conn.dir, 1)?,
    };
    let ca = conn
        .cacert
        .clone()
        .unwrap_or_else(|| conn.dir.join(dev::CA_CERT));
    Ok((url, ca))
}

pub async fn run_client(conn: Conn, req: ClientReq) -> Result<(), String> {
    use super::party;
    let ca = conn
        .cacert
        .clone()
        .unwrap_or_else(|| conn.dir.join(dev::CA_CERT));
    let as_party = match &req {
        ClientReq::Gms { who, op } => Some((crate::kms::acl::Role::Gms, who, op)),
        ClientReq::Val { who, op } => Some((crate::kms::acl::Role::ValServer, who, op)),
        _ => None,
    };
    if let Some((role, who, op)) = as_party {
        let c = party::Conn {
            dir: &conn.dir,
            url: conn.url.as_deref(),
            ca,
            token: conn.token.as_deref(),
        };
        return party::run(role, c, who.clone(), op.clone()).await;
    }
    let (url, ca) = conn_parts(&conn)?;
    let token = match conn.token.clone() {
        Some(t) => t,
        None => mint(&conn.dir, &conn.user, 600)?,
    };
    let client = KmClient::new(&url, &ca, Some(token)).map_err(|e| e.to_string())?;
    let path = match &req {
        ClientReq::Imessage {
            op: ImessageOp::Open { file, from },
        } => return party::open_as_member(&client, file, from.as_deref()).await,
        ClientReq::Gms { .. } | ClientReq::Val { .. } => {
            return Err("a party command reached the KM-UU client".into())
        }
        ClientReq::Init => "init".to_string(),
        ClientReq::Keyprov {
            uri: false,
            time: None,
        } => "keyprov".to_string(),
        ClientReq::Keyprov { time, .. } => {
            let enc = percent_encoding::utf8_percent_encode(
                &conn.user,
                percent_encoding::NON_ALPHANUMERIC,
            );
            match time {
                Some(t) => format!("keyprov/{enc}/{t}"),
                None => format!("keyprov/{enc}"),
            }
        }
        ClientReq::Certcache { num: Some(n) } => format!("certcache/{n}"),
        ClientReq::Certcache { num: None } => "certcache".to_string(),
    };
    let reply = client.post(&path, None).await.map_err(|e| e.to_string())?;
    if let Some(out) = &conn.out {
        let name = path.split('/').next().unwrap_or("reply");
        save_private(&out.join(format!("{name}.xml")), &reply.raw)?;
    }
    match &reply.doc.body {
        KmsResponseBody::Error(e) => Err(format!(
            "HTTP {}: KmsError {} {}",
            reply.status,
            e.code.code(),
            e.message
        )),
        KmsResponseBody::Message(KmsMessageDoc::Init(cert)) => {
            println!(
                "KmsInit: {} ({:?}), KmsUri {}, period {} s, offset {} s",
                cert.cert_uri.as_deref().unwrap_or("-"),
                cert.role,
                cert.kms_uri,
                cert.user_key_period,
                cert.user_key_offset
            );
            println!(
                "  PubAuthKey (KPAK) {}",
                hex::encode_upper(&cert.pub_auth_key)
            );
            Ok(())
        }
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => {
            let init = client.post("init", None).await.map_err(|e| e.to_string())?;
            let KmsResponseBody::Message(KmsMessageDoc::Init(cert)) = init.doc.body else {
                return Err("init failed".into());
            };
            for ks in sets {
                validate_key_set(&cert, ks).map_err(|e| e.to_string())?;
                println!(
                    "KmsKeySet for {} period {} (UID {}): SSK/PVT and RSK validated against {}",
                    ks.user_uri,
                    ks.key_period_no,
                    hex::encode(ks.user_id),
                    cert.cert_uri.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        KmsResponseBody::Message(KmsMessageDoc::CertCache {
            cache_num,
            certificates,
        }) => {
            println!(
                "KmsCertCache CacheNum {cache_num}: {} certificate(s)",
                certificates.len()
            );
            for c in certificates {
                println!(
                    "  {} revoked={:?} valid_to={:?}",
                    c.cert_uri.as_deref().unwrap_or("-"),
                    c.revoked,
                    c.valid_to
                );
            }
            Ok(())
        }
    }
}

/// Writes a fetched document (it may hold private keys) readable by the owner only.
pub fn save_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| e.to_string())
}
