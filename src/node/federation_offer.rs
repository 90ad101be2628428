//! KM-E offers (our extension, `../spec/FEDERATION.md` §4): what this KMS offers its partners
//! at `GET /km-e/v1/certificates`, with its newer certificates signed under its older ones
//! (`kms::partner::rotation`), and what it takes from a partner's offer: new or changed
//! certificates staged for an operator, revocations applied, and, under a partner's
//! `rotation = "signed"` policy, rotations that verify under a certificate approved here
//! taken at once.

use super::core::{Actor, NodeError};
use super::federation::{Federation, OfferTaken};
use crate::audit::AuditKind;
use crate::config::{PartnerConfig, RotationPolicy};
use crate::crypto::eccsi::{EccsiSigner, Kpak};
use crate::kms::community::{root_certificate_doc, Certificate, Community};
use crate::kms::gmk_message::km_e_identity;
use crate::kms::partner::rotation::{sign_rotation, verify_rotation, Offer, RotationSignature};
use crate::kms::partner::{certificate_id, reconcile, Ours, PartnerCertificate, Reconcile};
use crate::kms::xml::{parse_certificate_document, render_certificate_document, KmsCertificateDoc};
use crate::state::Command;

impl Federation {
    /// Our certificates as KM-E offers them to partners: the live ones of `kms_uri` (default:
    /// the default community), revoked ones included so partners learn of the revocation, each
    /// rendered once; every unrevoked one signed as a rotation under each older certificate
    /// still valid (by our KM-E federation identity's key set of the current period).
    pub async fn offer(&self, kms_uri: Option<&str>) -> Result<Offer, NodeError> {
        let community = match kms_uri {
            Some(k) => self.community(k).await?,
            None => self.community_for_host(None).await?,
        };
        let now = self.now();
        let domains = self.kms_domains(&community.kms_uri);
        let live: Vec<&Certificate> = community.live_certificates(now).collect();
        let certificates = live
            .iter()
            .map(|c| {
                render_certificate_document(&root_certificate_doc(&community, c, domains))
                    .map(|x| x.as_str().to_owned())
                    .map_err(|e| NodeError::Internal(format!("render: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rotations = Vec::new();
        for (i, new) in live.iter().enumerate().filter(|(_, c)| !c.revoked) {
            for prev in live[..i].iter().filter(|p| p.is_valid_at(now)) {
                match self
                    .sign_under(&community, prev, new, &certificates[i], now)
                    .await
                {
                    Ok(r) => rotations.push(r),
                    // The offer still goes out: the partner's operator approves by hand.
                    Err(e) => tracing::warn!(
                        certificate = %new.cert_uri, previous = %prev.cert_uri, error = %e,
                        "KM-E: rotation not signed"
                    ),
                }
            }
        }
        Ok(Offer {
            kms_uri: community.kms_uri.clone(),
            certificates,
            rotations,
        })
    }

    /// `document` (of `new`) signed as a rotation by our KM-E identity under `prev`.
    async fn sign_under(
        &self,
        community: &Community,
        prev: &Certificate,
        new: &Certificate,
        document: &str,
        now: u64,
    ) -> Result<RotationSignature, NodeError> {
        let identity = km_e_identity(&community.kms_uri);
        let set = self
            .key_sets
            .key_set_under(community, prev, &identity, now)
            .await?;
        let crypto = |e: crate::crypto::CryptoError| NodeError::Internal(e.to_string());
        let kpak = Kpak::from_bytes(&prev.pub_auth_key).map_err(crypto)?;
        let signer = EccsiSigner::new(&kpak, &set.uid, &set.ssk, &set.pvt).map_err(crypto)?;
        sign_rotation(
            &signer,
            &new.cert_uri,
            &prev.cert_uri,
            set.period_no,
            document,
            &self.core.rng,
        )
        .map_err(crypto)
    }

    /// Takes what `partner` offers over KM-E: each certificate must be for its KMS URI and
    /// pass the import checks; new or changed ones are staged for an operator's approval, the
    /// ones it revoked are revoked here. Refusals write nothing.
    pub async fn take_offer(
        &self,
        partner: &PartnerConfig,
        offer: &Offer,
        actor: &Actor,
    ) -> Result<OfferTaken, NodeError> {
        let docs = offer
            .certificates
            .iter()
            .map(|x| {
                parse_certificate_document(x.as_bytes())
                    .map(|d| (certificate_id(&d), d))
                    .map_err(|e| NodeError::Invalid(format!("certificate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (kms_uris, our_domains) = self.ours().await?;
        let now = self.now();
        let mut taken = OfferTaken::default();
        let (mut offered, mut revoked_ids) = (Vec::new(), Vec::new());
        for (_, doc) in &docs {
            if doc.kms_uri != partner.kms_uri {
                taken.refused.push(format!(
                    "a certificate for {} offered by partner {}",
                    doc.kms_uri, partner.kms_uri
                ));
                continue;
            }
            if doc.revoked == Some(true) {
                revoked_ids.push(certificate_id(doc));
                continue;
            }
            let checked = PartnerCertificate::from_document(
                doc,
                &Ours {
                    kms_uris: &kms_uris,
                    domains: &our_domains,
                },
                partner.communities.clone(),
                now,
            );
            match checked {
                Ok(c) => offered.push(c),
                Err(e) => taken.refused.push(format!("{}: {e}", certificate_id(doc))),
            }
        }
        let set = self.state().partners()?;
        let (actions, refused) = reconcile(&set.certificates, &set.pending, &offered, &revoked_ids);
        taken
            .refused
            .extend(refused.iter().map(ToString::to_string));
        for action in actions {
            match action {
                Reconcile::Stage(cert) => {
                    let id = cert.id.clone();
                    self.propose_ok(Command::StagePartnerCertificate { certificate: *cert })
                        .await?;
                    self.audit_admin(
                        AuditKind::PartnerCertificateStaged,
                        actor,
                        None,
                        &partner.kms_uri,
                        Some(id.clone()),
                    );
                    taken.staged.push(id);
                }
                Reconcile::Revoke(id) => {
                    self.propose_ok(Command::RevokePartnerCertificate { id: id.clone() })
                        .await?;
                    self.audit_admin(
                        AuditKind::PartnerCertificateRevoked,
                        actor,
                        None,
                        &partner.kms_uri,
                        Some(format!("{id} (revoked by the partner)")),
                    );
                    taken.revoked.push(id);
                }
            }
        }
        if partner.rotation == RotationPolicy::Signed && !offer.rotations.is_empty() {
            self.take_signed_rotations(partner, offer, &docs, actor, &mut taken)
                .await?;
        }
        Ok(taken)
    }

    /// Under `rotation = "signed"`: approves each of `partner`'s pending certificates that the
    /// offer vouches for with a rotation signature verifying under a previous certificate
    /// approved here (`kms::partner::rotation`). One that does not verify stays pending, with
    /// the reason among the refusals.
    async fn take_signed_rotations(
        &self,
        partner: &PartnerConfig,
        offer: &Offer,
        docs: &[(String, KmsCertificateDoc)],
        actor: &Actor,
        taken: &mut OfferTaken,
    ) -> Result<(), NodeError> {
        let set = self.partners().await?;
        let now = self.now();
        for cert in set.pending.iter().filter(|c| c.kms_uri == partner.kms_uri) {
            let Some(doc) = docs
                .iter()
                .zip(&offer.certificates)
                .find(|((id, _), _)| *id == cert.id)
                .map(|(_, raw)| raw)
            else {
                continue;
            };
            let mut why = None;
            let verified = offer
                .rotations
                .iter()
                .filter(|r| r.certificate == cert.id)
                .find(|r| {
                    verify_rotation(&set.certificates, &partner.kms_uri, r, doc, now)
                        .map_err(|e| why = Some(e))
                        .is_ok()
                });
            match (verified, why) {
                (Some(r), _) => {
                    let detail = format!("{} (rotation signed under {})", cert.id, r.previous);
                    self.approve_as(&cert.id, actor, detail).await?;
                    taken.staged.retain(|id| *id != cert.id);
                    taken.approved.push(cert.id.clone());
                }
                (None, Some(e)) => taken
                    .refused
                    .push(format!("{}: staged for approval: {e}", cert.id)),
                (None, None) => {}
            }
        }
        Ok(())
    }
}
