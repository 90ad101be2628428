//! Apply and read the ACL, group-key and key-provisioning state (trees `acl`, `groups`,
//! `key_provisioning`). ACL and KMS-managed group keys are **our extension**; key provisioning
//! is TS 33.434 cl. 5.8 (pushed by VAL servers, stored sealed).
//!
//! Trees: `acl` (principal → bincode [`AclEntry`]), `groups` (group id → bincode [`Group`], every
//! version with its sealed GMK), `key_provisioning` (principal ‖ 0x00 ‖ key id → bincode
//! [`KeyProvisioning`]; principals hold no control characters, so the key is unambiguous;
//! keys starting with 0x00 are the VAL service index of [`super::key_records`]).
//!
//! The rules live in `kms::{acl, group, key_provisioning}`; this module only loads, checks with
//! them, stores, and emits the outbox event of each group key change in the same transaction.

use super::machine::{dec, dec_tx, enc, reject, StateError, StateMachine, Tx, TxResult};
use super::outbox::emit;
use crate::kms::acl::{Acl, AclEntry, Role};
use crate::kms::events::{EventKind, EventSubject};
use crate::kms::group::{Group, GroupKeyVersion};
use crate::kms::key_provisioning::{
    validate_key_id, KeyProvisioning, KeyProvisioningError, MAX_SEALED_INFO_BYTES,
};

/// What the leader's expiry sweeper needs at a time `now`
/// ([`StateMachine::group_key_expiries`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryScan {
    /// Versions expired at `now`, neither revoked nor noted expired yet: to note now.
    pub due: Vec<(String, u32)>,
    /// The earliest expiry after `now` of a version not revoked: when to look again.
    pub next: Option<u64>,
}

fn key_provisioning_key(principal: &str, key_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(principal.len() + 1 + key_id.len());
    k.extend_from_slice(principal.as_bytes());
    k.push(0);
    k.extend_from_slice(key_id.as_bytes());
    k
}

pub(super) fn acl_entry_tx(tx: &Tx, principal: &str) -> TxResult<Option<AclEntry>> {
    tx.acl
        .get(principal.as_bytes())?
        .map(|v| dec_tx("acl entry", &v))
        .transpose()
}

fn group_tx(tx: &Tx, group_id: &str) -> TxResult<Option<Group>> {
    tx.groups
        .get(group_id.as_bytes())?
        .map(|v| dec_tx("group", &v))
        .transpose()
}

pub(super) fn put_acl_entry(
    tx: &Tx,
    principal: &str,
    role: Role,
    groups: &[String],
) -> TxResult<()> {
    let entry = match AclEntry::new(principal, role, groups) {
        Ok(e) => e,
        Err(e) => return reject(e.to_string()),
    };
    tx.acl.insert(principal.as_bytes(), enc(&entry)?)?;
    Ok(())
}

pub(super) fn remove_acl_entry(tx: &Tx, principal: &str) -> TxResult<()> {
    if tx.acl.remove(principal.as_bytes())?.is_none() {
        return reject(format!("no ACL entry for {principal}"));
    }
    Ok(())
}

/// Creation (version 1 of a new group) or rotation (the next version of an existing one).
pub(super) fn create_group_key(tx: &Tx, group_id: &str, version: &GroupKeyVersion) -> TxResult<()> {
    let mut group = match group_tx(tx, group_id)? {
        Some(g) => g,
        None if version.version == 1 => match Group::new(group_id) {
            Ok(g) => g,
            Err(e) => return reject(e.to_string()),
        },
        None => return reject(format!("unknown group {group_id}")),
    };
    if let Err(e) = group.add_version(version.clone()) {
        return reject(e.to_string());
    }
    tx.groups.insert(group_id.as_bytes(), enc(&group)?)?;
    let kind = if version.version == 1 {
        EventKind::GroupKeyCreated
    } else {
        EventKind::GroupKeyRotated
    };
    emit(
        tx,
        kind,
        EventSubject::GroupKey {
            group_id: group_id.to_owned(),
            version: version.version,
        },
        Some(version.created_unix),
    )
}

/// A federated group key version imported from `partner` (KM-E): added like
/// [`create_group_key`] (same checks, same created/rotated event), then the
/// `federated-key-imported` event naming the partner and the GMK-ID, in the same transaction.
pub(super) fn import_federated_group_key(
    tx: &Tx,
    partner: &str,
    group_id: &str,
    version: &GroupKeyVersion,
) -> TxResult<()> {
    create_group_key(tx, group_id, version)?;
    emit(
        tx,
        EventKind::FederatedKeyImported,
        EventSubject::FederatedGroupKey {
            group_id: group_id.to_owned(),
            version: version.version,
            gmk_id: version.gmk_id,
            partner_kms_uri: partner.to_owned(),
        },
        Some(version.created_unix),
    )
}

pub(super) fn revoke_group_key(
    tx: &Tx,
    group_id: &str,
    version: u32,
    at_unix: u64,
) -> TxResult<()> {
    let Some(mut group) = group_tx(tx, group_id)? else {
        return reject(format!("unknown group {group_id}"));
    };
    if let Err(e) = group.revoke(version) {
        return reject(e.to_string());
    }
    tx.groups.insert(group_id.as_bytes(), enc(&group)?)?;
    emit(
        tx,
        EventKind::GroupKeyRevoked,
        EventSubject::GroupKey {
            group_id: group_id.to_owned(),
            version,
        },
        Some(at_unix),
    )
}

pub(super) fn set_group_key_expiry(
    tx: &Tx,
    group_id: &str,
    version: u32,
    expires_unix: Option<u64>,
    at_unix: u64,
) -> TxResult<()> {
    let Some(mut group) = group_tx(tx, group_id)? else {
        return reject(format!("unknown group {group_id}"));
    };
    if let Err(e) = group.set_expiry(version, expires_unix, at_unix) {
        return reject(e.to_string());
    }
    tx.groups.insert(group_id.as_bytes(), enc(&group)?)?;
    emit(
        tx,
        EventKind::GroupKeyExpirySet,
        EventSubject::GroupKey {
            group_id: group_id.to_owned(),
            version,
        },
        Some(at_unix),
    )
}

/// The `meta` key that records that `version` of `group_id` was noted expired (group ids hold
/// no NUL, so the key is unambiguous).
fn expired_key(group_id: &str, version: u32) -> Vec<u8> {
    let mut k = b"group_expired\0".to_vec();
    k.extend_from_slice(group_id.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Notes, once, that a version's expiry has passed at `at_unix`, with its outbox event. A
/// version that is not expired at `at_unix`, is revoked, or was noted already is refused.
pub(super) fn note_group_key_expired(
    tx: &Tx,
    group_id: &str,
    version: u32,
    at_unix: u64,
) -> TxResult<()> {
    let Some(group) = group_tx(tx, group_id)? else {
        return reject(format!("unknown group {group_id}"));
    };
    let Some(v) = group.version(version) else {
        return reject(format!("group {group_id} has no key version {version}"));
    };
    if v.revoked || !v.is_expired_at(at_unix) {
        return reject(format!(
            "key version {version} of group {group_id} is not expired or is revoked"
        ));
    }
    let key = expired_key(group_id, version);
    if tx.meta.get(&key)?.is_some() {
        return reject(format!(
            "key version {version} of group {group_id} was noted expired already"
        ));
    }
    tx.meta.insert(key, &[1u8][..])?;
    emit(
        tx,
        EventKind::GroupKeyExpired,
        EventSubject::GroupKey {
            group_id: group_id.to_owned(),
            version,
        },
        Some(at_unix),
    )
}

/// Stores (or replaces) a push. Only a principal whose ACL role is `val-server` may push
/// (TS 33.434 5.8.1: "authorised for key provisioning"), checked here again so that an entry
/// removed between proposing and applying refuses the push on every replica.
pub(super) fn put_key_provisioning(
    tx: &Tx,
    principal: &str,
    key_id: &str,
    sealed_info: &[u8],
    at_unix: u64,
) -> TxResult<()> {
    match acl_entry_tx(tx, principal)? {
        Some(e) if e.role == Role::ValServer => {}
        _ => return reject(format!("{principal} is not a VAL server in the ACL")),
    }
    if let Err(e) = validate_key_id(key_id) {
        return reject(e.to_string());
    }
    if sealed_info.is_empty() || sealed_info.len() > MAX_SEALED_INFO_BYTES {
        return reject(KeyProvisioningError::BadSize.to_string());
    }
    let rec = KeyProvisioning {
        principal: principal.to_owned(),
        key_id: key_id.to_owned(),
        sealed_info: sealed_info.to_vec(),
        at_unix,
    };
    super::key_records::withdraw(tx, principal, key_id)?;
    tx.key_provisioning
        .insert(key_provisioning_key(principal, key_id), enc(&rec)?)?;
    Ok(())
}

impl StateMachine {
    pub fn acl_entry(&self, principal: &str) -> Result<Option<AclEntry>, StateError> {
        self.read()
            .acl
            .get(principal.as_bytes())?
            .map(|v| dec("acl entry", &v))
            .transpose()
    }

    /// The whole ACL (every entry), for decisions on many principals.
    pub fn acl(&self) -> Result<Acl, StateError> {
        let entries = self
            .read()
            .acl
            .iter()
            .values()
            .map(|v| dec::<AclEntry>("acl entry", &v?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Acl::from_entries(entries))
    }

    pub fn group(&self, group_id: &str) -> Result<Option<Group>, StateError> {
        self.read()
            .groups
            .get(group_id.as_bytes())?
            .map(|v| dec("group", &v))
            .transpose()
    }

    /// Every group, by id.
    pub fn groups(&self) -> Result<Vec<Group>, StateError> {
        self.read()
            .groups
            .iter()
            .values()
            .map(|v| dec("group", &v?))
            .collect()
    }

    /// Versions whose expiry has passed at `now` that are neither revoked nor noted expired
    /// yet: what the leader's sweeper proposes `NoteGroupKeyExpired` for.
    pub fn unnoted_expired_group_keys(&self, now: u64) -> Result<Vec<(String, u32)>, StateError> {
        Ok(self.group_key_expiries(now)?.due)
    }

    /// What the leader's expiry sweeper needs at `now`, from one pass over the groups.
    pub fn group_key_expiries(&self, now: u64) -> Result<ExpiryScan, StateError> {
        let t = self.read();
        let mut scan = ExpiryScan::default();
        for v in t.groups.iter().values() {
            let g: Group = dec("group", &v?)?;
            for v in &g.versions {
                if !v.revoked
                    && v.is_expired_at(now)
                    && t.meta.get(expired_key(&g.group_id, v.version))?.is_none()
                {
                    scan.due.push((g.group_id.clone(), v.version));
                }
            }
            scan.next = scan.next.into_iter().chain(g.next_expiry_after(now)).min();
        }
        Ok(scan)
    }

    /// How many key information records `principal` keeps, counting at most `cap`.
    pub fn key_provisioning_count(&self, principal: &str, cap: usize) -> Result<usize, StateError> {
        let mut prefix = principal.as_bytes().to_vec();
        prefix.push(0);
        let trees = self.read();
        let mut n = 0;
        for r in trees.key_provisioning.scan_prefix(prefix).take(cap) {
            r?;
            n += 1;
        }
        Ok(n)
    }

    pub fn key_provisioning(
        &self,
        principal: &str,
        key_id: &str,
    ) -> Result<Option<KeyProvisioning>, StateError> {
        self.read()
            .key_provisioning
            .get(key_provisioning_key(principal, key_id))?
            .map(|v| dec("key provisioning", &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
