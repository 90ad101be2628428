//! [`Admin`]: the administration of communities (TS 33.180 §5.1: KMS certificates and their
//! rotation, revocation of certificates and of user identities). Master secrets are generated
//! and sealed before proposing; every command is checked first (`admin_checks`) so that a
//! refused one never reaches the log; every committed change is audited.

use std::ops::Deref;
use std::sync::Arc;

use super::core::{Actor, NodeCore, NodeError};
use super::groups::Keyed;
use super::key_sets::KeySets;
use crate::audit::AuditKind;
use crate::kms::community::{master_aad, Certificate};
use crate::kms::master::MasterSecrets;
use crate::state::idempotency::{IdempotencyRecord, IdempotentResult};
use crate::state::Command;

/// The administration service of a node.
pub struct Admin {
    core: Arc<NodeCore>,
    key_sets: Arc<KeySets>,
}

impl Deref for Admin {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

/// The certificate the first rotation request with `keyed` created.
fn recorded_certificate(
    rec: &IdempotencyRecord,
    keyed: &Keyed,
    kms_uri: &str,
) -> Result<String, NodeError> {
    match &rec.result {
        IdempotentResult::Certificate {
            kms_uri: k,
            cert_uri,
        } if rec.fingerprint == keyed.fingerprint && k == kms_uri => Ok(cert_uri.clone()),
        _ => Err(keyed.reused()),
    }
}

impl Admin {
    pub(super) fn new(core: Arc<NodeCore>, key_sets: Arc<KeySets>) -> Self {
        Self { core, key_sets }
    }

    /// Creates a new certificate for `kms_uri` (first certificate or rotation): fresh master
    /// secrets, sealed before proposing. The previous certificate stays valid until its ValidTo.
    pub async fn rotate_certificate(
        &self,
        kms_uri: &str,
        validity_s: u64,
        actor: &Actor,
    ) -> Result<String, NodeError> {
        self.rotate_certificate_keyed(kms_uri, validity_s, actor, None)
            .await
    }

    /// A rotation (or first certificate); with an `idempotency_key`, a repeat of the same
    /// request answers the certificate the first one created.
    pub async fn rotate_certificate_keyed(
        &self,
        kms_uri: &str,
        validity_s: u64,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<String, NodeError> {
        let keyed = idempotency_key.map(|k| {
            Keyed::new(
                actor,
                k,
                &[
                    b"rotate-certificate",
                    kms_uri.as_bytes(),
                    &validity_s.to_be_bytes(),
                ],
            )
        });
        let community = self.community(kms_uri).await?;
        if let Some(k) = &keyed {
            if let Some(rec) = self.state().idempotency_record(&k.key)? {
                return recorded_certificate(&rec, k, kms_uri);
            }
        }
        let (serial, cert_uri) = community.next_cert_uri();
        let masters = MasterSecrets::generate(&self.rng)?;
        let sealed_master = masters.seal(&self.barrier, &master_aad(&cert_uri), &self.rng)?;
        let now = self.now();
        let certificate = Certificate {
            serial,
            cert_uri: cert_uri.clone(),
            valid_from_unix: now,
            valid_to_unix: now.saturating_add(validity_s),
            revoked: false,
            pub_enc_key: masters.z_pub.to_bytes(),
            pub_auth_key: masters.kpak.to_bytes().to_vec(),
            sealed_master,
        };
        let add = Command::AddCertificate {
            kms_uri: kms_uri.to_owned(),
            certificate,
        };
        self.propose_ok(Keyed::wrap(keyed.as_ref(), add)).await?;
        if let Some(k) = &keyed {
            // An earlier attempt with this key committed after all: this one wrote nothing.
            if let Some(rec) = self.state().idempotency_record(&k.key)? {
                let first = recorded_certificate(&rec, k, kms_uri)?;
                if first != cert_uri {
                    return Ok(first);
                }
            }
        }
        let kind = if serial == 1 {
            AuditKind::CertificateCreated
        } else {
            AuditKind::CertificateRotated
        };
        self.audit_admin(kind, actor, None, kms_uri, Some(cert_uri.clone()));
        Ok(cert_uri)
    }

    /// The template of the revocations and the reinstatement: an idempotency key (scoped to
    /// `actor`, fingerprinted over `parts`); a repeat of an applied request succeeds without a
    /// new check or write (`Ok(false)`); otherwise `check` runs (a refused command never
    /// reaches the log), then `command` is proposed (`Ok(true)` once applied here).
    async fn keyed_write(
        &self,
        actor: &Actor,
        idempotency_key: Option<&str>,
        parts: &[&[u8]],
        check: impl std::future::Future<Output = Result<(), NodeError>>,
        command: Command,
    ) -> Result<bool, NodeError> {
        let keyed = idempotency_key.map(|k| Keyed::new(actor, k, parts));
        if self.replayed(keyed.as_ref()).await? {
            return Ok(false);
        }
        check.await?;
        self.propose_keyed(keyed.as_ref(), command).await?;
        Ok(true)
    }

    pub async fn revoke_certificate(
        &self,
        kms_uri: &str,
        cert_uri: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let revoke = Command::RevokeCertificate {
            kms_uri: kms_uri.to_owned(),
            cert_uri: cert_uri.to_owned(),
        };
        let parts: [&[u8]; 3] = [
            b"revoke-certificate",
            kms_uri.as_bytes(),
            cert_uri.as_bytes(),
        ];
        let check = self.check_revoke_certificate(kms_uri, cert_uri);
        if self
            .keyed_write(actor, idempotency_key, &parts, check, revoke)
            .await?
        {
            self.key_sets.forget_certificate(cert_uri);
            self.audit_admin(
                AuditKind::CertificateRevoked,
                actor,
                None,
                kms_uri,
                Some(cert_uri.to_owned()),
            );
        }
        Ok(())
    }

    pub async fn revoke_identity(
        &self,
        kms_uri: &str,
        identity: &str,
        reason: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let revoke = Command::RevokeIdentity {
            kms_uri: kms_uri.to_owned(),
            identity: identity.to_owned(),
            at_unix: self.now(),
            reason: reason.to_owned(),
        };
        let parts: [&[u8]; 4] = [
            b"revoke-identity",
            kms_uri.as_bytes(),
            identity.as_bytes(),
            reason.as_bytes(),
        ];
        let check = self.check_revoke_identity(kms_uri, identity, reason);
        if self
            .keyed_write(actor, idempotency_key, &parts, check, revoke)
            .await?
        {
            self.key_sets.forget_identity(kms_uri, identity);
            self.audit_admin(
                AuditKind::IdentityRevoked,
                actor,
                Some(identity),
                kms_uri,
                Some(reason.to_owned()),
            );
        }
        Ok(())
    }

    pub async fn reinstate_identity(
        &self,
        kms_uri: &str,
        identity: &str,
        actor: &Actor,
        idempotency_key: Option<&str>,
    ) -> Result<(), NodeError> {
        let reinstate = Command::ReinstateIdentity {
            kms_uri: kms_uri.to_owned(),
            identity: identity.to_owned(),
        };
        let parts: [&[u8]; 3] = [
            b"reinstate-identity",
            kms_uri.as_bytes(),
            identity.as_bytes(),
        ];
        let check = self.check_reinstate_identity(kms_uri, identity);
        if self
            .keyed_write(actor, idempotency_key, &parts, check, reinstate)
            .await?
        {
            self.audit_admin(
                AuditKind::IdentityReinstated,
                actor,
                Some(identity),
                kms_uri,
                None,
            );
        }
        Ok(())
    }
}
