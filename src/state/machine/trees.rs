//! The state's sled trees as one generation, and how generations are named, recorded and
//! dropped. A snapshot restore fills a NEW generation while readers keep using the current
//! one, then switches (durably, then in memory) in one step: readers see either the old
//! state or the new one, never a cleared or half-refilled one.
//!
//! Naming: generation 0 is the trees under their plain names (every data directory written
//! before generations existed); generation `g > 0` is `__sealkm_g<g>/<name>`. Names starting
//! with `__sealkm_` are reserved: they are never state of generation 0 and a snapshot file
//! may not carry them. The current generation is recorded in the restore marker tree (key
//! `generation`, u64 big endian; absent = 0) and is not state.

use sled::IVec;

use super::{StateError, META_TREE};

/// Prefix of every tree name the state machine reserves for itself.
pub(crate) const RESERVED_PREFIX: &str = "__sealkm_";
/// The tree of the restore marker and the current generation; never state.
pub(crate) const CONTROL_TREE: &str = "__sealkm_restore";
/// Key of the current generation in [`CONTROL_TREE`].
pub(crate) const GENERATION_KEY: &[u8] = b"generation";
/// sled's default tree: not a named tree, always present, cannot be dropped.
pub(crate) const DEFAULT_TREE: &[u8] = b"__sled__default";

/// The physical name of state tree `logical` in generation `generation`.
pub(crate) fn physical_name(generation: u64, logical: &[u8]) -> Vec<u8> {
    if generation == 0 {
        return logical.to_vec();
    }
    let mut name = format!("{RESERVED_PREFIX}g{generation}/").into_bytes();
    name.extend_from_slice(logical);
    name
}

/// The logical name of `physical` if it is a tree of `generation`.
pub(crate) fn logical_name(generation: u64, physical: &[u8]) -> Option<&[u8]> {
    if generation == 0 {
        return (!physical.starts_with(RESERVED_PREFIX.as_bytes())).then_some(physical);
    }
    physical.strip_prefix(format!("{RESERVED_PREFIX}g{generation}/").as_bytes())
}

/// A handle on tree `physical`; sled's default tree through the db itself.
pub(crate) fn tree_handle(db: &sled::Db, physical: &[u8]) -> Result<sled::Tree, sled::Error> {
    if physical == DEFAULT_TREE {
        Ok((**db).clone())
    } else {
        db.open_tree(physical)
    }
}

/// The generation recorded in the control tree.
pub(crate) fn recorded_generation(db: &sled::Db) -> Result<u64, StateError> {
    match db.open_tree(CONTROL_TREE)?.get(GENERATION_KEY)? {
        None => Ok(0),
        Some(v) => {
            let arr: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| StateError::Corrupt("state generation".into()))?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

/// Drops every tree that is not state of `keep` (other generations, leftovers of a restore a
/// crash cut), and empties the default tree when it is not part of `keep`.
pub(crate) fn drop_other_generations(db: &sled::Db, keep: u64) -> Result<(), StateError> {
    for name in db.tree_names() {
        if name.as_ref() == DEFAULT_TREE || name.as_ref() == CONTROL_TREE.as_bytes() {
            continue;
        }
        if logical_name(keep, &name).is_none() {
            db.drop_tree(&name)?;
        }
    }
    if keep != 0 {
        db.clear()?;
    }
    Ok(())
}

/// Drops the trees of generation `generation` (never generation 0's, which share plain names).
pub(crate) fn drop_generation(db: &sled::Db, generation: u64) -> Result<(), StateError> {
    if generation == 0 {
        return Ok(());
    }
    for name in db.tree_names() {
        if logical_name(generation, &name).is_some() {
            db.drop_tree(&name)?;
        }
    }
    Ok(())
}

/// The state trees of one generation.
pub(crate) struct Trees {
    pub generation: u64,
    pub communities: sled::Tree,
    pub revocations: sled::Tree,
    pub meta: sled::Tree,
    pub members: sled::Tree,
    pub acl: sled::Tree,
    pub groups: sled::Tree,
    pub key_provisioning: sled::Tree,
    pub subscriptions: sled::Tree,
    pub outbox: sled::Tree,
    pub sub_offsets: sled::Tree,
    pub idempotency: sled::Tree,
    pub partners: sled::Tree,
    pub capif: sled::Tree,
}

impl Trees {
    /// Opens (creating what is missing) the trees of `generation`.
    pub fn open(db: &sled::Db, generation: u64) -> Result<Self, sled::Error> {
        let t = |name: &str| db.open_tree(physical_name(generation, name.as_bytes()));
        Ok(Self {
            generation,
            communities: t("communities")?,
            revocations: t("revocations")?,
            meta: t(META_TREE)?,
            members: t("members")?,
            acl: t("acl")?,
            groups: t("groups")?,
            key_provisioning: t("key_provisioning")?,
            subscriptions: t("subscriptions")?,
            outbox: t("outbox")?,
            sub_offsets: t("sub_offsets")?,
            idempotency: t("idempotency")?,
            partners: t("partners")?,
            capif: t("capif")?,
        })
    }

    /// Every tree of this generation as (logical, physical) names, sorted by logical name:
    /// what a snapshot holds (trees an older or newer binary wrote included).
    pub fn names(&self, db: &sled::Db) -> Vec<(IVec, IVec)> {
        let mut out: Vec<(IVec, IVec)> = db
            .tree_names()
            .into_iter()
            .filter_map(|physical| {
                logical_name(self.generation, &physical)
                    .map(IVec::from)
                    .map(|logical| (logical, physical.clone()))
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_and_generations_do_not_overlap() {
        for g in [0u64, 1, 2, 10, u64::MAX] {
            for logical in [&b"meta"[..], b"communities", DEFAULT_TREE] {
                let p = physical_name(g, logical);
                assert_eq!(logical_name(g, &p), Some(logical));
                for other in [0u64, 1, 2, 10, u64::MAX] {
                    if other != g {
                        assert_eq!(logical_name(other, &p), None, "{g} vs {other}");
                    }
                }
            }
        }
        assert_eq!(logical_name(0, CONTROL_TREE.as_bytes()), None);
        assert_eq!(logical_name(1, b"__sealkm_g10/meta"), None);
    }
}
