//! [`Federation`]: partner KMS certificates and the domain lookup (TS 33.180 3.1 external
//! KMS, D.3.2.2 `KmsCertCache`, Annex L.3.2 manual cross-signing; `../spec/FEDERATION.md`).
//!
//! - **Export**: our community's issuing certificate as a `KmsCertificate` document, with its
//!   `KmsDomainList`, for the partner operator to import.
//! - **Import / revoke / remove**: a partner's document is checked (`kms::partner`) against
//!   our communities and domains and the partners known, after a read barrier, then replicated
//!   (`ImportPartnerCertificate`, applied with the same checks); audited.
//! - **CertCache**: a community's own live certificates (`Root`) plus the partners shared with
//!   it (`External`, `Revoked=true` once revoked, until their ValidTo); `CacheNum` is the
//!   community's certificate counter plus the partner epoch, so any change moves it.
//! - **Lookup**: which KMS serves a user URI, over our communities' domains (first) and the
//!   valid partner certificates (`kms::domains`).

use std::ops::Deref;
use std::sync::Arc;

use super::core::{Actor, NodeCore, NodeError};
use super::key_sets::KeySets;
use crate::audit::AuditKind;
use crate::config::PartnerConfig;
use crate::crypto::seal;
use crate::kms::community::{root_certificate_doc, Community};
use crate::kms::domains::{self, Match};
use crate::kms::gmk_message::{build_gmk_message_to, km_e_identity, open_gmk_message_from};
use crate::kms::group::{gmk_aad, open_gmk, GroupKeyVersion};
use crate::kms::partner::{
    check_approval, check_import, partner_doc, ImportPlan, Ours, PartnerCertificate,
};
use crate::kms::period::unix_to_ntp64;
use crate::kms::xml::KmsKeySetDoc;
use crate::kms::xml::{parse_certificate_document, KmsCertificateDoc};
use crate::state::partners::PartnerSet;
use crate::state::Command;
use crate::state::Outcome;

/// The federation service of a node.
pub struct Federation {
    pub(super) core: Arc<NodeCore>,
    /// For this KMS's own federation identity's key set (KM-E group keys and rotations).
    pub(super) key_sets: Arc<KeySets>,
}

/// A federated group key version as KM-E carries it (`POST /km-e/v1/group-keys`): metadata
/// and the GMK in a MIKEY-SAKKE I_MESSAGE from the sending KMS's federation identity to the
/// receiving one's (SAKKE under the receiver domain's Z, ECCSI under the sender's). The GMK
/// itself never crosses in clear, not even inside TLS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedGroupKey {
    pub group_id: String,
    pub version: u32,
    pub gmk_id: u32,
    pub created_unix: u64,
    pub expires_unix: Option<u64>,
    /// Revoked here before its first delivery: imported revoked (absent: false). Carried on
    /// the mutually authenticated KM-E channel, like later status changes
    /// ([`super::federated_status`]).
    #[serde(default)]
    pub revoked: bool,
    /// The I_MESSAGE, base64.
    pub i_message: String,
}

impl Deref for Federation {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

/// What one KM-E refresh of a partner did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferTaken {
    /// Certificate ids staged for approval.
    pub staged: Vec<String>,
    /// Certificate ids approved because the partner signed them under a previous certificate
    /// approved here (its policy `rotation = "signed"`).
    pub approved: Vec<String>,
    /// Certificate ids revoked because the partner revoked them.
    pub revoked: Vec<String>,
    /// Why offered certificates were refused (nothing was written for them).
    pub refused: Vec<String>,
    /// Federated group key versions delivered to the partner (filled by the Federator).
    pub delivered: u64,
}

/// The answer of [`Federation::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainLookup {
    pub kms_uri: String,
    /// The listed domain that matched.
    pub domain: String,
    pub exact: bool,
    /// One of our communities (`true`) or a partner's KMS.
    pub ours: bool,
}

impl Federation {
    pub(super) fn new(core: Arc<NodeCore>, key_sets: Arc<KeySets>) -> Self {
        Self { core, key_sets }
    }

    /// Our issuing certificate of `kms_uri` (default: the default community) and the key set
    /// of this KMS's own federation identity in it (read after the caller's barrier).
    async fn federation_identity(
        &self,
        kms_uri: Option<&str>,
    ) -> Result<(KmsCertificateDoc, KmsKeySetDoc), NodeError> {
        let community = match kms_uri {
            Some(k) => self.community(k).await?,
            None => self.community_for_host(None).await?,
        };
        let now = self.now();
        let cert = community.issuing_certificate(now)?;
        let doc = root_certificate_doc(&community, cert, self.kms_domains(&community.kms_uri));
        let identity = km_e_identity(&community.kms_uri);
        let set = self
            .key_sets
            .key_set(&community, &identity, None, now)
            .await?;
        Ok((doc, set.to_doc()))
    }

    /// Every version of the groups shared with `partner` that it has not acknowledged yet, in
    /// order per group, wrapped for it: each GMK unsealed here and put into an I_MESSAGE from
    /// our federation identity to the partner KMS's, under the partner's newest valid External
    /// certificate (one read barrier, one key set and one certificate for them all).
    /// `Conflict` when versions are due and we hold no valid certificate of the partner.
    pub async fn wrap_due(
        &self,
        community: Option<&str>,
        partner: &PartnerConfig,
    ) -> Result<Vec<FederatedGroupKey>, NodeError> {
        let set = self.partners().await?;
        let mut due = Vec::new();
        for g in &partner.share_groups {
            let Some(group) = self.state().group(g)? else {
                continue;
            };
            let done = set.delivered(&partner.kms_uri, g);
            due.extend(
                group
                    .versions
                    .into_iter()
                    .filter(|v| v.version > done)
                    .map(|v| (g.clone(), v)),
            );
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let theirs = set
            .certificates
            .iter()
            .rev()
            .find(|c| c.kms_uri == partner.kms_uri && c.is_valid_at(now))
            .map(partner_doc)
            .ok_or_else(|| {
                NodeError::Conflict(format!(
                    "no valid certificate of partner {} is approved here",
                    partner.kms_uri
                ))
            })?;
        let (own_cert, own_set) = self.federation_identity(community).await?;
        let to = km_e_identity(&partner.kms_uri);
        use base64::Engine;
        due.into_iter()
            .map(|(group_id, v)| {
                let gmk = open_gmk(&self.barrier, &group_id, &v).map_err(|e| {
                    NodeError::Internal(format!("opening a sealed GMK of {group_id}: {e}"))
                })?;
                let msg = build_gmk_message_to(
                    &own_cert,
                    &theirs,
                    &own_set,
                    &to,
                    &gmk,
                    v.gmk_id,
                    unix_to_ntp64(now),
                    &self.rng,
                )
                .map_err(|e| NodeError::Internal(format!("KM-E I_MESSAGE: {e}")))?;
                Ok(FederatedGroupKey {
                    group_id,
                    version: v.version,
                    gmk_id: v.gmk_id,
                    created_unix: v.created_unix,
                    expires_unix: v.expires_unix,
                    revoked: v.revoked,
                    i_message: base64::engine::general_purpose::STANDARD.encode(msg),
                })
            })
            .collect()
    }

    /// Records that `partner` acknowledged `version` of `group_id` (replicated: a new leader
    /// resumes after it).
    pub async fn note_delivered(
        &self,
        partner: &str,
        group_id: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<(), NodeError> {
        self.propose_ok(Command::NoteFederatedDelivery {
            partner: partner.to_owned(),
            group_id: group_id.to_owned(),
            version,
        })
        .await?;
        self.audit_admin(
            AuditKind::FederatedKeyDelivered,
            actor,
            Some(group_id),
            partner,
            Some(format!("version {version}")),
        );
        Ok(())
    }

    /// Imports a federated group key version sent by `partner` over KM-E: the group must be
    /// one we accept from it; the I_MESSAGE must verify under one of its approved, valid
    /// certificates (its KPAK) as its federation identity's and decrypt with ours; the GMK is
    /// then sealed under our barrier key and replicated as that version of the group, with a
    /// `federated-key-imported` event (`ImportFederatedGroupKey`). Idempotent by GMK-ID (`Ok(false)`: already here); versions only in order (`Conflict`).
    pub async fn import_version(
        &self,
        community: Option<&str>,
        partner: &PartnerConfig,
        key: &FederatedGroupKey,
        actor: &Actor,
    ) -> Result<bool, NodeError> {
        if !partner.accept_groups.iter().any(|g| g == &key.group_id) {
            return Err(NodeError::Forbidden(format!(
                "group {} is not accepted from {}",
                key.group_id, partner.kms_uri
            )));
        }
        let set = self.partners().await?;
        let now = self.now();
        let senders: Vec<KmsCertificateDoc> = set
            .certificates
            .iter()
            .filter(|c| c.kms_uri == partner.kms_uri && c.is_valid_at(now))
            .map(partner_doc)
            .collect();
        if senders.is_empty() {
            return Err(NodeError::Conflict(format!(
                "no valid certificate of partner {} is approved here",
                partner.kms_uri
            )));
        }
        if let Some(group) = self.state().group(&key.group_id)? {
            if let Some(have) = group.version(key.version) {
                return if have.gmk_id == key.gmk_id {
                    Ok(false)
                } else {
                    Err(NodeError::Conflict(format!(
                        "version {} of {} is here with another GMK-ID",
                        key.version, key.group_id
                    )))
                };
            }
        }
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key.i_message)
            .map_err(|_| NodeError::Invalid("i_message is not base64".into()))?;
        let (own_cert, own_set) = self.federation_identity(community).await?;
        let opened = open_gmk_message_from(
            &own_cert,
            &senders,
            &own_set,
            &bytes,
            Some(&km_e_identity(&partner.kms_uri)),
        )
        .map_err(|e| NodeError::Invalid(format!("KM-E I_MESSAGE: {e}")))?;
        if opened.gmk_id != Some(key.gmk_id) {
            return Err(NodeError::Invalid(
                "the I_MESSAGE carries another GMK-ID than announced".into(),
            ));
        }
        let sealed_gmk = seal::seal(
            &self.barrier,
            &gmk_aad(&key.group_id, key.version, key.gmk_id),
            opened.key.expose(),
            &self.rng,
        )?;
        let version = GroupKeyVersion {
            version: key.version,
            gmk_id: key.gmk_id,
            sealed_gmk,
            created_unix: key.created_unix,
            expires_unix: key.expires_unix,
            revoked: false,
        };
        match self
            .propose(Command::ImportFederatedGroupKey {
                partner: partner.kms_uri.clone(),
                group_id: key.group_id.clone(),
                version,
            })
            .await?
        {
            Outcome::Applied => {}
            Outcome::Rejected(r) => return Err(NodeError::Conflict(r)),
        }
        if key.revoked {
            // A new version cannot be created revoked: revoked right after, as the partner
            // would have (a crash in between is repaired by its next status report).
            self.propose_ok(Command::RevokeGroupKey {
                group_id: key.group_id.clone(),
                version: key.version,
                at_unix: now,
            })
            .await?;
        }
        self.audit_admin(
            AuditKind::FederatedKeyImported,
            actor,
            Some(&key.group_id),
            &partner.kms_uri,
            Some(format!("version {} GMK-ID {:08x}", key.version, key.gmk_id)),
        );
        Ok(true)
    }

    /// What a partner must not claim (read linearizably): our communities' KMS URIs and the
    /// user URI domains they serve.
    pub(super) async fn ours(&self) -> Result<(Vec<String>, Vec<String>), NodeError> {
        let kms_uris = self
            .communities()
            .await?
            .into_iter()
            .map(|c| c.kms_uri)
            .collect();
        let domains = self
            .all_kms_domains()
            .iter()
            .flat_map(|(_, d)| d.iter().cloned())
            .collect();
        Ok((kms_uris, domains))
    }

    /// Our issuing certificate of `kms_uri` (default: the default community) as the partner
    /// will import it.
    pub async fn export(&self, kms_uri: Option<&str>) -> Result<KmsCertificateDoc, NodeError> {
        let community = match kms_uri {
            Some(k) => self.community(k).await?,
            None => self.community_for_host(None).await?,
        };
        let cert = community.issuing_certificate(self.now())?;
        Ok(root_certificate_doc(
            &community,
            cert,
            self.kms_domains(&community.kms_uri),
        ))
    }

    /// Every partner certificate (read linearizably).
    pub async fn partners(&self) -> Result<PartnerSet, NodeError> {
        self.read_barrier().await?;
        Ok(self.state().partners()?)
    }

    /// Imports a partner's `KmsCertificate` document, shared with `communities` (empty: all);
    /// `rotate` allows the partner's keys to change. Returns the record as replicated.
    pub async fn import(
        &self,
        document: &[u8],
        communities: Vec<String>,
        rotate: bool,
        actor: &Actor,
    ) -> Result<PartnerCertificate, NodeError> {
        let doc = parse_certificate_document(document)
            .map_err(|e| NodeError::Invalid(format!("KmsCertificate document: {e}")))?;
        let (kms_uris, our_domains) = self.ours().await?;
        for c in &communities {
            if !kms_uris.contains(c) {
                return Err(NodeError::NotFound(format!("unknown community {c}")));
            }
        }
        let now = self.now();
        let cert = PartnerCertificate::from_document(
            &doc,
            &Ours {
                kms_uris: &kms_uris,
                domains: &our_domains,
            },
            communities,
            now,
        )
        .map_err(|e| NodeError::Invalid(e.to_string()))?;
        // Checked here so a refused import never reaches the log; apply checks again.
        let known = self.state().partners()?.certificates;
        let plan = check_import(&known, &cert, rotate, now)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        if plan == ImportPlan::Reshare {
            if let Some(same) = known
                .iter()
                .find(|c| c.id == cert.id && c.communities == cert.communities)
            {
                // The same certificate, shared the same way: nothing to write.
                return Ok(same.clone());
            }
        }
        self.propose_ok(Command::ImportPartnerCertificate {
            certificate: cert.clone(),
            rotate,
            at_unix: now,
        })
        .await?;
        self.audit_admin(
            AuditKind::PartnerCertificateImported,
            actor,
            None,
            &cert.kms_uri,
            Some(format!(
                "{}{}",
                cert.id,
                if rotate { " (rotation)" } else { "" }
            )),
        );
        Ok(cert)
    }

    /// An operator approves a staged certificate: imported (a key change allowed).
    pub async fn approve(&self, id: &str, actor: &Actor) -> Result<PartnerCertificate, NodeError> {
        self.approve_as(id, actor, format!("{id} (approved)")).await
    }

    /// Approves the staged certificate `id`, audited with `detail`.
    pub(super) async fn approve_as(
        &self,
        id: &str,
        actor: &Actor,
        detail: String,
    ) -> Result<PartnerCertificate, NodeError> {
        let set = self.partners().await?;
        let Some(cert) = set.pending.iter().find(|c| c.id == id).cloned() else {
            return Err(NodeError::NotFound(format!(
                "no pending partner certificate {id}"
            )));
        };
        let now = self.now();
        check_approval(&set.certificates, &cert, now)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.propose_ok(Command::ApprovePartnerCertificate {
            id: id.to_owned(),
            at_unix: now,
        })
        .await?;
        self.audit_admin(
            AuditKind::PartnerCertificateImported,
            actor,
            None,
            &cert.kms_uri,
            Some(detail),
        );
        Ok(cert)
    }

    /// Revokes (`remove == false`) or forgets a partner certificate.
    pub async fn retire(&self, id: &str, remove: bool, actor: &Actor) -> Result<(), NodeError> {
        let set = self.partners().await?;
        let found = set.certificates.iter().find(|c| c.id == id);
        let found = match found {
            None if remove => set.pending.iter().find(|c| c.id == id),
            other => other,
        };
        let Some(cert) = found else {
            return Err(NodeError::NotFound(format!(
                "unknown partner certificate {id}"
            )));
        };
        let (command, kind) = if remove {
            (
                Command::RemovePartnerCertificate { id: id.to_owned() },
                AuditKind::PartnerCertificateRemoved,
            )
        } else {
            if cert.revoked {
                return Err(NodeError::Invalid(format!(
                    "partner certificate {id} is already revoked"
                )));
            }
            (
                Command::RevokePartnerCertificate { id: id.to_owned() },
                AuditKind::PartnerCertificateRevoked,
            )
        };
        let kms_uri = cert.kms_uri.clone();
        self.propose_ok(command).await?;
        self.audit_admin(kind, actor, None, &kms_uri, Some(id.to_owned()));
        Ok(())
    }

    /// The CertCache of `community` at `now`: its `CacheNum` and certificates. Reads this
    /// node's applied state: the caller holds the request's read barrier.
    pub fn cert_cache(
        &self,
        community: &Community,
        now: u64,
    ) -> Result<(u64, Vec<KmsCertificateDoc>), NodeError> {
        let partners = self.state().partners()?;
        let domains = self.kms_domains(&community.kms_uri);
        let mut docs: Vec<KmsCertificateDoc> = community
            .live_certificates(now)
            .map(|c| root_certificate_doc(community, c, domains))
            .collect();
        docs.extend(
            partners
                .certificates
                .iter()
                .filter(|p| p.served_to(&community.kms_uri, now))
                .map(partner_doc),
        );
        Ok((community.cache_num.saturating_add(partners.epoch), docs))
    }

    /// Which KMS serves `uri`: our communities first, then the partners valid now.
    pub async fn lookup(&self, uri: &str) -> Result<Option<DomainLookup>, NodeError> {
        let partners = self.partners().await?;
        let now = self.now();
        let ours = self
            .all_kms_domains()
            .iter()
            .map(|(k, d)| (k.as_str(), d.as_slice(), true));
        let theirs = partners
            .certificates
            .iter()
            .filter(|p| p.is_valid_at(now))
            .map(|p| (p.kms_uri.as_str(), p.kms_domains.as_slice(), false));
        let all: Vec<(&str, &[String], bool)> = ours.chain(theirs).collect();
        let found = domains::lookup(uri, all.iter().map(|(k, d, _)| (*k, *d)));
        Ok(found.map(|(kms_uri, domain, m)| DomainLookup {
            kms_uri: kms_uri.to_owned(),
            domain: domain.to_owned(),
            exact: m == Match::Exact,
            ours: all.iter().any(|(k, _, o)| *o && *k == kms_uri),
        }))
    }
}
