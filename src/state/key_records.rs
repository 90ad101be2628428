//! Key provisioning pushes for a VAL service (TS 33.434 5.8), indexed for
//! `SS_KeyInfoRetrieval` (TS 29.549 7.6.1): apply of `PutServiceKeyProvisioning` (version 5)
//! and the read of the pushes for one (service, target).
//!
//! The record itself is stored as every push is, in the `key_provisioning` tree under
//! principal ‖ 0x00 ‖ key id ([`super::groups`]). The index lives in the same tree under keys
//! that start with 0x00, which no record key does (a principal is non-empty and holds no
//! control character), so record reads and counts never meet them:
//!
//! - 0x00 `svc` 0x00 service 0x00 target 0x00 principal → bincode [`ServiceKeyRef`]: the newest
//!   push of that VAL server for (service, target) (target empty: none);
//! - 0x00 `rev` 0x00 principal 0x00 key id → the index key that push wrote, so that a later push
//!   under the same key id (with another service, or none) withdraws it;
//! - 0x00 `seq` → the apply-order counter of service pushes (big endian), [`ServiceKeyRef::seq`].
//!
//! Index entries are at most the records (one `rev` per key id), so the per-principal record
//! quota bounds them too. Until the first version-5 command is applied nothing here is
//! written, and a version-2 push writes exactly what it did before.

use super::groups::put_key_provisioning;
use super::machine::{dec, dec_tx, enc, reject, Abort, StateError, StateMachine, Tx, TxResult};
use crate::kms::key_provisioning::{validate_val_id, ServiceKeyRef};

const SEQ_KEY: &[u8] = b"\0seq";

fn index_prefix(service: &str, target: Option<&str>) -> Vec<u8> {
    let mut k = b"\0svc\0".to_vec();
    k.extend_from_slice(service.as_bytes());
    k.push(0);
    k.extend_from_slice(target.unwrap_or("").as_bytes());
    k.push(0);
    k
}

fn index_key(service: &str, target: Option<&str>, principal: &str) -> Vec<u8> {
    let mut k = index_prefix(service, target);
    k.extend_from_slice(principal.as_bytes());
    k
}

fn reverse_key(principal: &str, key_id: &str) -> Vec<u8> {
    let mut k = b"\0rev\0".to_vec();
    k.extend_from_slice(principal.as_bytes());
    k.push(0);
    k.extend_from_slice(key_id.as_bytes());
    k
}

/// Called by every push of (principal, key id): if that key id last answered for a service,
/// and still does, it stops answering there.
pub(super) fn withdraw(tx: &Tx, principal: &str, key_id: &str) -> TxResult<()> {
    let Some(idx) = tx.key_provisioning.remove(reverse_key(principal, key_id))? else {
        return Ok(());
    };
    if let Some(v) = tx.key_provisioning.get(&idx)? {
        let r: ServiceKeyRef = dec_tx("service key ref", &v)?;
        if r.key_id == key_id {
            tx.key_provisioning.remove(idx)?;
        }
    }
    Ok(())
}

/// Apply of `PutServiceKeyProvisioning`: the push as `PutKeyProvisioning` stores it (same
/// checks), then the index entry of (service, target, principal) now names it.
#[allow(clippy::too_many_arguments)]
pub(super) fn put_service_key_provisioning(
    tx: &Tx,
    principal: &str,
    key_id: &str,
    sealed_info: &[u8],
    at_unix: u64,
    service: &str,
    target: Option<&str>,
) -> TxResult<()> {
    if let Err(e) = validate_val_id("val service id", service) {
        return reject(e.to_string());
    }
    if let Some(Err(e)) = target.map(|t| validate_val_id("val target", t)) {
        return reject(e.to_string());
    }
    put_key_provisioning(tx, principal, key_id, sealed_info, at_unix)?;
    let seq = match tx.key_provisioning.get(SEQ_KEY)? {
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| Abort::fail(StateError::Corrupt("service key seq".into())))?,
        None => 0,
    } + 1;
    tx.key_provisioning
        .insert(SEQ_KEY, &seq.to_be_bytes()[..])?;
    let idx = index_key(service, target, principal);
    let r = ServiceKeyRef {
        principal: principal.to_owned(),
        key_id: key_id.to_owned(),
        val_service_id: service.to_owned(),
        val_tgt_ue: target.map(str::to_owned),
        at_unix,
        seq,
    };
    tx.key_provisioning.insert(idx.clone(), enc(&r)?)?;
    tx.key_provisioning
        .insert(reverse_key(principal, key_id), idx)?;
    Ok(())
}

impl StateMachine {
    /// Every VAL server's newest push for (service, target) (no target: the pushes that named
    /// none).
    pub fn service_key_refs(
        &self,
        service: &str,
        target: Option<&str>,
    ) -> Result<Vec<ServiceKeyRef>, StateError> {
        self.read()
            .key_provisioning
            .scan_prefix(index_prefix(service, target))
            .values()
            .map(|v| dec("service key ref", &v?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::kms::acl::Role;
    use crate::state::command::{Command, Outcome};
    use crate::state::test_util::Log;

    fn push(key_id: &str, service: Option<&str>, target: Option<&str>) -> Command {
        let (principal, sealed_info, at_unix) = ("val1".to_owned(), vec![9; 40], 7);
        match service {
            Some(s) => Command::PutServiceKeyProvisioning {
                principal,
                key_id: key_id.into(),
                sealed_info,
                at_unix,
                val_service_id: s.into(),
                val_tgt_ue: target.map(str::to_owned),
            },
            None => Command::PutKeyProvisioning {
                principal,
                key_id: key_id.into(),
                sealed_info,
                at_unix,
            },
        }
    }

    #[test]
    fn newest_push_answers_and_a_replaced_key_id_withdraws() {
        let mut t = Log::new();
        t.acl("val1", Role::ValServer, &[]);
        assert_eq!(t.apply(push("k1", Some("svc"), None)), Outcome::Applied);
        assert_eq!(t.apply(push("k2", Some("svc"), None)), Outcome::Applied);
        assert_eq!(
            t.apply(push("k3", Some("svc"), Some("ue"))),
            Outcome::Applied
        );
        let refs = t.s.service_key_refs("svc", None).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0].key_id.as_str(), refs[0].seq), ("k2", 2));
        let with_target = t.s.service_key_refs("svc", Some("ue")).unwrap();
        assert_eq!(with_target[0].key_id, "k3");
        // k2 pushed again without a service: svc has no answer left; k1 was superseded.
        assert_eq!(t.apply(push("k2", None, None)), Outcome::Applied);
        assert!(t.s.service_key_refs("svc", None).unwrap().is_empty());
        // Records stay readable and are counted as before (index keys are not records).
        assert!(t.s.key_provisioning("val1", "k1").unwrap().is_some());
        assert_eq!(t.s.key_provisioning_count("val1", 100).unwrap(), 3);
        // Invalid ids are refused and store nothing.
        t.rejected(push("k4", Some("a\0b"), None));
        t.rejected(push("k4", Some("svc"), Some("")));
        // A principal that is not a VAL server is refused as for any push.
        let mut stranger = push("k5", Some("svc"), None);
        if let Command::PutServiceKeyProvisioning { principal, .. } = &mut stranger {
            *principal = "nobody".into();
        }
        t.rejected(stranger);
        assert!(t.s.key_provisioning("val1", "k4").unwrap().is_none());
        assert!(t.s.service_key_refs("svc", None).unwrap().is_empty());
        assert_eq!(t.s.key_provisioning_count("val1", 100).unwrap(), 3);
    }
}
