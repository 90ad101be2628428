//! Apply and read partner KMS certificates (tree `partners`; TS 33.180 `Role="External"`
//! certificates of other security domains, imported by an operator: see [`crate::kms::partner`]).
//!
//! Tree `partners`: one key, `set` → bincode [`PartnerSet`]: every partner certificate (at most
//! [`crate::kms::partner::MAX_PARTNER_CERTIFICATES`]) and an `epoch` bumped by every change. A community's CertCache
//! `CacheNum` is its own certificate counter plus this epoch, so a partner change moves every
//! community's `CacheNum` forward without rewriting the communities (sled transactions cannot
//! iterate a tree). The rules are `kms::partner`'s; apply runs them again on the committed
//! command, so two racing imports cannot both pass.

use serde::{Deserialize, Serialize};

use super::machine::{dec, dec_tx, enc, reject, StateError, StateMachine, Tx, TxResult};
use super::outbox::emit;
use crate::kms::events::{EventKind, EventSubject};
use crate::kms::partner::{
    check_approval, check_import, ImportPlan, PartnerCertificate, MAX_PARTNER_CERTIFICATES,
};

const SET_KEY: &[u8] = b"set";

/// Every partner certificate and the change counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerSet {
    /// Bumped by every import, revocation and removal.
    pub epoch: u64,
    /// In import order.
    pub certificates: Vec<PartnerCertificate>,
    /// Fetched over KM-E and waiting for an operator's approval (one per id).
    pub pending: Vec<PartnerCertificate>,
    /// KM-E federated groups: the highest group key version each partner acknowledged, per
    /// (partner KMS URI, group id).
    pub delivered: Vec<Delivered>,
}

/// How far a federated group's versions reached one partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub partner: String,
    pub group_id: String,
    pub version: u32,
}

impl PartnerSet {
    /// The highest version of `group_id` that `partner` acknowledged (0: none).
    pub fn delivered(&self, partner: &str, group_id: &str) -> u32 {
        self.delivered
            .iter()
            .find(|d| d.partner == partner && d.group_id == group_id)
            .map_or(0, |d| d.version)
    }
}

fn load(tx: &Tx) -> TxResult<PartnerSet> {
    match tx.partners.get(SET_KEY)? {
        None => Ok(PartnerSet::default()),
        Some(v) => dec_tx("partner set", &v),
    }
}

/// The key event of a partner certificate change (metadata only: KMS URI and id).
fn event(tx: &Tx, kind: EventKind, cert: &PartnerCertificate, at: Option<u64>) -> TxResult<()> {
    emit(
        tx,
        kind,
        EventSubject::Certificate {
            kms_uri: cert.kms_uri.clone(),
            cert_uri: cert.id.clone(),
        },
        at,
    )
}

fn store(tx: &Tx, mut set: PartnerSet) -> TxResult<()> {
    set.epoch += 1;
    tx.partners.insert(SET_KEY, enc(&set)?)?;
    Ok(())
}

/// Refuses a certificate for one of our own communities' KMS URIs.
fn refuse_ours(tx: &Tx, certificate: &PartnerCertificate) -> TxResult<()> {
    if tx
        .communities
        .get(certificate.kms_uri.as_bytes())?
        .is_some()
    {
        return reject(format!(
            "{} is a community of this cluster",
            certificate.kms_uri
        ));
    }
    Ok(())
}

pub(super) fn import(
    tx: &Tx,
    certificate: &PartnerCertificate,
    rotate: bool,
    at_unix: u64,
) -> TxResult<()> {
    refuse_ours(tx, certificate)?;
    let mut set = load(tx)?;
    match check_import(&set.certificates, certificate, rotate, at_unix) {
        Err(e) => reject(e.to_string()),
        Ok(ImportPlan::Add) => {
            set.certificates.push(certificate.clone());
            store(tx, set)?;
            event(
                tx,
                EventKind::PartnerCertificateImported,
                certificate,
                Some(at_unix),
            )
        }
        Ok(ImportPlan::Reshare) => {
            let Some(old) = set.certificates.iter_mut().find(|c| c.id == certificate.id) else {
                return reject("partner certificate vanished");
            };
            if old.communities == certificate.communities {
                return Ok(());
            }
            old.communities = certificate.communities.clone();
            store(tx, set)
        }
    }
}

/// Stages a certificate fetched over KM-E (replacing a pending one with its id).
pub(super) fn stage(tx: &Tx, certificate: &PartnerCertificate) -> TxResult<()> {
    refuse_ours(tx, certificate)?;
    let mut set = load(tx)?;
    if set.certificates.iter().any(|c| c.id == certificate.id) {
        return reject(format!("{} is already imported", certificate.id));
    }
    set.pending.retain(|c| c.id != certificate.id);
    if set.pending.len() >= MAX_PARTNER_CERTIFICATES {
        return reject("too many pending partner certificates");
    }
    set.pending.push(certificate.clone());
    store(tx, set)?;
    event(
        tx,
        EventKind::PartnerCertificateStaged,
        certificate,
        Some(certificate.imported_unix),
    )
}

/// Approves a pending certificate: imported (a key change allowed), no longer pending.
pub(super) fn approve(tx: &Tx, id: &str, at_unix: u64) -> TxResult<()> {
    let mut set = load(tx)?;
    let Some(at) = set.pending.iter().position(|c| c.id == id) else {
        return reject(format!("no pending partner certificate {id}"));
    };
    let cert = set.pending.remove(at);
    match check_approval(&set.certificates, &cert, at_unix) {
        Err(e) => reject(e.to_string()),
        Ok(ImportPlan::Reshare) => store(tx, set),
        Ok(ImportPlan::Add) => {
            set.certificates.push(cert.clone());
            store(tx, set)?;
            event(
                tx,
                EventKind::PartnerCertificateImported,
                &cert,
                Some(at_unix),
            )
        }
    }
}

pub(super) fn revoke(tx: &Tx, id: &str) -> TxResult<()> {
    let mut set = load(tx)?;
    let Some(cert) = set.certificates.iter_mut().find(|c| c.id == id) else {
        return reject(format!("unknown partner certificate {id}"));
    };
    if cert.revoked {
        return reject(format!("partner certificate {id} is already revoked"));
    }
    cert.revoked = true;
    let cert = cert.clone();
    store(tx, set)?;
    event(tx, EventKind::PartnerCertificateRevoked, &cert, None)
}

/// Records that `partner` acknowledged `version` of `group_id` (never moves backwards: a
/// late acknowledgement of an older version changes nothing).
pub(super) fn note_delivery(tx: &Tx, partner: &str, group_id: &str, version: u32) -> TxResult<()> {
    let mut set = load(tx)?;
    match set
        .delivered
        .iter_mut()
        .find(|d| d.partner == partner && d.group_id == group_id)
    {
        Some(d) if d.version >= version => return Ok(()),
        Some(d) => d.version = version,
        None => set.delivered.push(Delivered {
            partner: partner.to_owned(),
            group_id: group_id.to_owned(),
            version,
        }),
    }
    // Not a certificate change: the CertCache's CacheNum (the epoch) stays.
    tx.partners.insert(SET_KEY, enc(&set)?)?;
    Ok(())
}

/// Forgets a certificate, imported or pending.
pub(super) fn remove(tx: &Tx, id: &str) -> TxResult<()> {
    let mut set = load(tx)?;
    let Some(cert) = set
        .certificates
        .iter()
        .chain(&set.pending)
        .find(|c| c.id == id)
        .cloned()
    else {
        return reject(format!("unknown partner certificate {id}"));
    };
    set.certificates.retain(|c| c.id != id);
    set.pending.retain(|c| c.id != id);
    store(tx, set)?;
    event(tx, EventKind::PartnerCertificateRemoved, &cert, None)
}

impl StateMachine {
    /// Every partner certificate and the partner epoch.
    pub fn partners(&self) -> Result<PartnerSet, StateError> {
        self.read()
            .partners
            .get(SET_KEY)?
            .map(|v| dec("partner set", &v))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::period::PeriodParams;
    use crate::state::command::{Command, Outcome};
    use crate::state::test_util::Log;

    fn cert(id: &str, keys: u8) -> PartnerCertificate {
        PartnerCertificate {
            id: id.into(),
            cert_uri: Some(id.into()),
            kms_uri: "kms.b.test".into(),
            version: "1.1.0".into(),
            is_security_gateway: None,
            issuer: None,
            valid_from_unix: 0,
            valid_to_unix: 2_000,
            revoked: false,
            user_key_period: 100,
            user_key_offset: 0,
            pub_enc_key: vec![keys; 257],
            pub_auth_key: vec![keys; 65],
            kms_domains: vec!["b.test".into()],
            communities: Vec::new(),
            imported_unix: 10,
        }
    }

    fn import(c: PartnerCertificate, rotate: bool) -> Command {
        Command::ImportPartnerCertificate {
            certificate: c,
            rotate,
            at_unix: 100,
        }
    }

    #[test]
    fn imports_revocations_and_removals_move_the_epoch() {
        let mut log = Log::new();
        assert_eq!(log.s.partners().unwrap(), PartnerSet::default());
        log.ok(import(cert("b/1", 1), false));
        assert_eq!(log.s.partners().unwrap().epoch, 1);
        // The same certificate, same sharing: nothing changes.
        log.ok(import(cert("b/1", 1), false));
        assert_eq!(log.s.partners().unwrap().epoch, 1);
        // Shared with one community now.
        let mut shared = cert("b/1", 1);
        shared.communities = vec!["kms.a.test".into()];
        log.ok(import(shared, false));
        let set = log.s.partners().unwrap();
        assert_eq!(set.epoch, 2);
        assert_eq!(set.certificates[0].communities, vec!["kms.a.test"]);
        // New keys only as a rotation; other content under the same id never.
        assert!(matches!(
            log.apply(import(cert("b/2", 2), false)),
            Outcome::Rejected(_)
        ));
        assert!(matches!(
            log.apply(import(cert("b/1", 3), true)),
            Outcome::Rejected(_)
        ));
        log.ok(import(cert("b/2", 2), true));
        log.ok(Command::RevokePartnerCertificate { id: "b/1".into() });
        assert!(matches!(
            log.apply(Command::RevokePartnerCertificate { id: "b/1".into() }),
            Outcome::Rejected(_)
        ));
        let set = log.s.partners().unwrap();
        assert_eq!(set.epoch, 4);
        assert!(set.certificates[0].revoked);
        log.ok(Command::RemovePartnerCertificate { id: "b/1".into() });
        assert!(matches!(
            log.apply(Command::RemovePartnerCertificate { id: "b/1".into() }),
            Outcome::Rejected(_)
        ));
        let set = log.s.partners().unwrap();
        assert_eq!(set.epoch, 5);
        assert_eq!(set.certificates.len(), 1);
        assert_eq!(set.certificates[0].id, "b/2");
    }

    #[test]
    fn staged_certificates_wait_for_an_approval_that_may_change_the_keys() {
        let mut log = Log::new();
        log.ok(import(cert("b/1", 1), false));
        let stage = |c| Command::StagePartnerCertificate { certificate: c };
        log.ok(stage(cert("b/2", 2)));
        // Staged again (the next refresh): replaced, still one.
        log.ok(stage(cert("b/2", 2)));
        let set = log.s.partners().unwrap();
        assert_eq!(set.pending.len(), 1);
        assert_eq!(set.certificates.len(), 1);
        // An imported id is never staged.
        assert!(matches!(
            log.apply(stage(cert("b/1", 1))),
            Outcome::Rejected(_)
        ));
        let approve = |id: &str| Command::ApprovePartnerCertificate {
            id: id.into(),
            at_unix: 100,
        };
        assert!(matches!(log.apply(approve("b/9")), Outcome::Rejected(_)));
        // The approval is the explicit rotation: new keys are taken.
        log.ok(approve("b/2"));
        let set = log.s.partners().unwrap();
        assert!(set.pending.is_empty());
        assert_eq!(set.certificates.len(), 2);
        // Removing a pending one works too.
        log.ok(stage(cert("b/3", 3)));
        log.ok(Command::RemovePartnerCertificate { id: "b/3".into() });
        assert!(log.s.partners().unwrap().pending.is_empty());
    }

    #[test]
    fn partner_certificate_changes_reach_subscribers_as_events() {
        use crate::kms::events::EventKind as K;
        let mut log = Log::new();
        log.ok(Command::PutAclEntry {
            principal: "gms.a.test".into(),
            role: crate::kms::acl::Role::Gms,
            groups: vec!["*".into()],
        });
        log.ok(Command::PutSubscription {
            id: "s".into(),
            principal: "gms.a.test".into(),
            callback_url: "https://gms.a.test/events".into(),
            kinds: vec![
                K::PartnerCertificateImported,
                K::PartnerCertificateStaged,
                K::PartnerCertificateRevoked,
                K::PartnerCertificateRemoved,
            ],
            group_filter: None,
        });
        log.ok(import(cert("b/1", 1), false));
        log.ok(Command::StagePartnerCertificate {
            certificate: cert("b/2", 2),
        });
        log.ok(Command::ApprovePartnerCertificate {
            id: "b/2".into(),
            at_unix: 100,
        });
        log.ok(Command::RevokePartnerCertificate { id: "b/1".into() });
        log.ok(Command::RemovePartnerCertificate { id: "b/1".into() });
        let page = log.s.events_for("s", 0, 100).unwrap().unwrap();
        let seen: Vec<(K, String)> = page
            .events
            .iter()
            .map(|e| match &e.subject {
                EventSubject::Certificate { kms_uri, cert_uri } => {
                    assert_eq!(kms_uri, "kms.b.test");
                    (e.kind, cert_uri.clone())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (K::PartnerCertificateImported, "b/1".into()),
                (K::PartnerCertificateStaged, "b/2".into()),
                (K::PartnerCertificateImported, "b/2".into()),
                (K::PartnerCertificateRevoked, "b/1".into()),
                (K::PartnerCertificateRemoved, "b/1".into()),
            ]
        );
    }

    #[test]
    fn a_community_of_ours_is_never_a_partner() {
        let mut log = Log::new();
        log.ok(Command::CreateCommunity {
            kms_uri: "kms.b.test".into(),
            period: PeriodParams {
                period_s: 100,
                offset_s: 0,
            },
        });
        assert!(matches!(
            log.apply(import(cert("b/1", 1), false)),
            Outcome::Rejected(_)
        ));
        assert_eq!(log.s.partners().unwrap(), PartnerSet::default());
    }
}
