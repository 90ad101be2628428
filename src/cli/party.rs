//! `sealkm client gms …` and `sealkm client val …`: play the group management server (SEAL-X1)
//! or a VAL server (KM-S) by hand, with a client certificate, its key and an access token
//! (by default the dev environment's GMS / VAL server certificate and a dev token for its
//! name). Includes building a GMK I_MESSAGE to a member; a member opens it with
//! `sealkm client imessage open` (the KM-UU side, in the binary).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::client::gmk::{build_gmk_message_to, generate_gmk, member_certificate};
use crate::client::party::{group_key_of, PartyClient};
use crate::client::{validate_key_set, KmClient};
use crate::crypto::kdf;
use crate::dev;
use crate::kms::acl::Role;
use crate::kms::xml::certificate::{CertRole, KmsCertificateDoc};
use crate::kms::xml::keyset::KmsKeySetDoc;
use crate::kms::xml::response::{KmsMessageDoc, KmsResponseBody};

/// Who the party is and how it connects.
#[derive(clap::Args, Debug, Clone)]
pub struct PartyArgs {
    /// The party's name (certificate SAN and token identity); default: the dev GMS / VAL server.
    #[arg(long)]
    pub name: Option<String>,
    /// Client certificate (PEM); default: DIR/gms-cert.pem or DIR/val-cert.pem.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM); default: DIR/gms-key.pem or DIR/val-key.pem.
    #[arg(long)]
    pub key: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum GroupKeyOp {
    /// GMS: create version 1, or rotate to the next version.
    Create {
        group: String,
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// The group's versions (no keys).
    List { group: String },
    /// One version with its GMK (default: the current one).
    Get {
        group: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// GMS: revoke a version.
    Revoke { group: String, version: u32 },
    /// GMS: set (or with --clear, clear) a version's expiry.
    Expiry {
        group: String,
        version: u32,
        #[arg(long)]
        at: Option<u64>,
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum PartyOp {
    /// The KMS certificate (TS 33.180 KmsInit).
    Init,
    /// The party's own key set (TS 33.180 KmsKeyProv), validated.
    Keyprov,
    /// The KMS certificate cache.
    Certcache,
    /// KMS-managed group keys (our extension).
    GroupKey {
        #[command(subcommand)]
        op: GroupKeyOp,
    },
    /// GMS: a GMK I_MESSAGE to a member, signed with the GMS's own key set.
    Imessage {
        /// The member's URI.
        #[arg(long)]
        to: String,
        /// Send this group's current KMS-managed key (default: generate a fresh GMK).
        #[arg(long)]
        group: Option<String>,
        /// Where to write the message.
        #[arg(long)]
        out: PathBuf,
    },
    /// VAL server: SEAL key provisioning (TS 33.434 5.8) of the bytes in FILE under KEY_ID
    /// (the token gets the SKeyProv claim).
    Push {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        file: PathBuf,
    },
}

/// Connection settings shared with the other client commands.
pub struct Conn<'a> {
    pub dir: &'a Path,
    /// Service listener URL (default: node 1's from the dev cluster.json).
    pub url: Option<&'a str>,
    pub ca: PathBuf,
    pub token: Option<&'a str>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `op` as a party with `role` (`Gms` or `ValServer`).
pub async fn run(role: Role, conn: Conn<'_>, who: PartyArgs, op: PartyOp) -> Result<(), String> {
    let (stem, default_name, root) = match role {
        Role::Gms => ("gms", dev::DEV_GMS, "/seal-x1/v1"),
        _ => ("val", dev::DEV_VAL, "/km-s/v1"),
    };
    let name = who.name.clone().unwrap_or_else(|| default_name.to_owned());
    let (dcert, dkey) = dev::party_files(conn.dir, stem);
    let cert = who.cert.clone().unwrap_or(dcert);
    let key = who.key.clone().unwrap_or(dkey);
    let url = match conn.url {
        Some(u) => u.to_owned(),
        None => dev::service_url(conn.dir, 1)?,
    };
    let skeyprov = matches!(op, PartyOp::Push { .. });
    let token = match conn.token {
        Some(t) => t.to_owned(),
        None => {
            let extra = [(crate::api::km_s::SKEYPROV_CLAIM, serde_json::json!(true))];
            dev::mint_token(conn.dir, &name, 600, if skeyprov { &extra } else { &[] })?
        }
    };
    let identity = Some((cert.as_path(), key.as_path()));
    let km = || {
        KmClient::party(
            &url,
            &format!("{root}/keymanagement"),
            &conn.ca,
            identity,
            Some(token.clone()),
        )
        .map_err(err)
    };
    let json = PartyClient::new(&url, &conn.ca, identity, Some(token.clone())).map_err(err)?;
    let show = |r: crate::client::party::PartyReply| -> Result<(), String> {
        println!("{}", serde_json::to_string_pretty(&r.json).map_err(err)?);
        if (200..300).contains(&r.status) {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status))
        }
    };
    match op {
        PartyOp::Init | PartyOp::Keyprov | PartyOp::Certcache => {
            let doc = match op {
                PartyOp::Init => "init",
                PartyOp::Keyprov => "keyprov",
                _ => "certcache",
            };
            let reply = km()?.post(doc, None).await.map_err(err)?;
            match reply.doc.body {
                KmsResponseBody::Error(e) => Err(format!(
                    "HTTP {}: KmsError {} {}",
                    reply.status,
                    e.code.code(),
                    e.message
                )),
                KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) => {
                    let cert = fetch_cert(&km()?).await?;
                    for ks in &sets {
                        validate_key_set(&cert, ks).map_err(err)?;
                        println!(
                            "KmsKeySet for {} period {} (UID {}): validated",
                            ks.user_uri,
                            ks.key_period_no,
                            hex::encode(ks.user_id)
                        );
                    }
                    Ok(())
                }
                KmsResponseBody::Message(m) => {
                    println!("{m:#?}");
                    Ok(())
                }
            }
        }
        PartyOp::GroupKey { op } => {
            let g = |group: &str| format!("{root}/groups/{group}/keys");
            let r = match op {
                GroupKeyOp::Create { group, ttl } => {
                    let body = serde_json::json!({ "ttl_s": ttl });
                    json.call("POST", &g(&group), Some(&body)).await
                }
                GroupKeyOp::List { group } => json.call("GET", &g(&group), None).await,
                GroupKeyOp::Get { group, version } => {
                    let v = version.map_or("current".to_owned(), |v| v.to_string());
                    json.call("GET", &format!("{}/{v}", g(&group)), None).await
                }
                GroupKeyOp::Revoke { group, version } => {
                    json.call("POST", &format!("{}/{version}/revoke", g(&group)), None)
                        .await
                }
                GroupKeyOp::Expiry {
                    group,
                    version,
                    at,
                    clear,
                } => {
                    if at.is_none() && !clear {
                        return Err("give --at UNIX_TIME or --clear".into());
                    }
                    let body = serde_json::json!({ "expires_unix": at });
                    json.call(
                        "PUT",
                        &format!("{}/{version}/expiry", g(&group)),
                        Some(&body),
                    )
                    .await
                }
            };
            show(r.map_err(err)?)
        }
        PartyOp::Imessage { to, group, out } => {
            let km = km()?;
            let cert = fetch_cert(&km).await?;
            let ks = fetch_key_set(&km).await?;
            validate_key_set(&cert, &ks).map_err(err)?;
            let (gmk, gmk_id) = match &group {
                Some(group) => {
                    let r = json
                        .call("GET", &format!("{root}/groups/{group}/keys/current"), None)
                        .await
                        .map_err(err)?;
                    if r.status != 200 {
                        return show(r);
                    }
                    group_key_of(&r.json).map_err(err)?
                }
                None => generate_gmk(&ring::rand::SystemRandom::new()).map_err(err)?,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(err)?
                .as_secs();
            let ntp = crate::kms::period::unix_to_ntp64(now);
            let rng = ring::rand::SystemRandom::new();
            // The member's domain: our certificate, or a partner's from our CertCache.
            let cache = fetch_cert_cache(&km).await?;
            let member_cert = member_certificate(&cert, &cache, &to, now);
            let msg = build_gmk_message_to(&cert, member_cert, &ks, &to, &gmk, gmk_id, ntp, &rng)
                .map_err(err)?;
            std::fs::write(&out, &msg).map_err(err)?;
            println!(
                "I_MESSAGE from {} ({}) to {to} ({}): {} bytes in {}; GMK-ID {gmk_id:08x}, \
                 GUK-ID {:08x}, GMK fingerprint {}",
                ks.user_uri,
                cert.kms_uri,
                member_cert.kms_uri,
                msg.len(),
                out.display(),
                kdf::guk_id(gmk.expose(), gmk_id, &to),
                gmk_fingerprint(gmk.expose())
            );
            Ok(())
        }
        PartyOp::Push { key_id, file } => {
            use base64::Engine;
            let info = zeroize::Zeroizing::new(std::fs::read(&file).map_err(err)?);
            let body = serde_json::json!({
                "key_id": key_id,
                "key_info": base64::engine::general_purpose::STANDARD.encode(&*info),
            });
            show(
                json.call("POST", &format!("{root}/key-provisioning"), Some(&body))
                    .await
                    .map_err(err)?,
            )
        }
    }
}

/// The KMS certificate (KmsInit) from `km`.
pub async fn fetch_cert(km: &KmClient) -> Result<KmsCertificateDoc, String> {
    let r = km.post("init", None).await.map_err(err)?;
    match r.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::Init(c)) => Ok(*c),
        other => Err(format!("HTTP {}: no KmsInit: {other:?}", r.status)),
    }
}

/// The certificates of the KMS certificate cache (KmsCertCache) from `km`.
pub async fn fetch_cert_cache(km: &KmClient) -> Result<Vec<KmsCertificateDoc>, String> {
    let r = km.post("certcache", None).await.map_err(err)?;
    match r.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::CertCache { certificates, .. }) => Ok(certificates),
        other => Err(format!("HTTP {}: no KmsCertCache: {other:?}", r.status)),
    }
}

/// The caller's own key set (KmsKeyProv) from `km`.
pub async fn fetch_key_set(km: &KmClient) -> Result<KmsKeySetDoc, String> {
    let r = km.post("keyprov", None).await.map_err(err)?;
    match r.doc.body {
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(mut sets)) if !sets.is_empty() => {
            Ok(sets.remove(0))
        }
        KmsResponseBody::Error(e) => Err(format!("HTTP {}: KmsError {}", r.status, e.message)),
        _ => Err(format!("HTTP {}: no KmsKeySet", r.status)),
    }
}

/// A short public fingerprint of a GMK (first 8 octets of its SHA-256), so two parties can
/// compare keys without printing them.
pub fn gmk_fingerprint(gmk: &[u8]) -> String {
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, gmk).as_ref()[..8])
}

/// A member (KM-UU user) opens a GMK I_MESSAGE with its own key set from `km`.
pub async fn open_as_member(km: &KmClient, file: &Path, from: Option<&str>) -> Result<(), String> {
    let cert = fetch_cert(km).await?;
    let ks = fetch_key_set(km).await?;
    validate_key_set(&cert, &ks).map_err(|e| format!("own key set: {e}"))?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // The typed cause: the key set was validated above, so a refusal here is the message's.
    // Senders of other domains verify under their KMS's KPAK, from our CertCache.
    let mut senders = vec![cert.clone()];
    senders.extend(
        fetch_cert_cache(km)
            .await?
            .into_iter()
            .filter(|c| c.role == CertRole::External),
    );
    let o = crate::client::gmk::open_gmk_message_from(&cert, &senders, &ks, &bytes, from)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "I_MESSAGE from {} verified (ECCSI) and decrypted (SAKKE) for {}: GMK-ID {}, GUK-ID {}, \
         GMK fingerprint {}",
        o.initiator_uri,
        ks.user_uri,
        o.gmk_id.map_or("-".into(), |i| format!("{i:08x}")),
        o.guk_id.map_or("-".into(), |i| format!("{i:08x}")),
        gmk_fingerprint(o.key.expose())
    );
    Ok(())
}
