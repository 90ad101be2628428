//! The subscription count, the lazy backlog rule and the residue index that gives the trim
//! point, each in O(1) records of the `meta` tree, so nothing in apply grows with the number
//! of subscriptions (see the module docs of [`super`] for the rules they implement).
//!
//! Lazy backlog rule: a subscriber's stored offset is the raw `a` it last acknowledged (or
//! started at) with the stored `must_resync` flag. With `L` the newest event id and
//! `P = MAX_BACKLOG + 1`, the eager rule (jump to the event that makes the backlog exceed
//! `MAX_BACKLOG`, set the flag, again every `P` events) has made `k = (L − a) / P` jumps, so
//! the effective offset is `a + k·P = L − (L − a) mod P` and `must_resync` is the flag or
//! `k > 0`. [`effective`] computes it wherever an offset is read.
//!
//! Trim point: the smallest effective offset is `L − max (L − a) mod P`, which depends only
//! on the residues `a mod P` of the stored offsets: the largest `(L − a) mod P` belongs to the
//! first residue after `L mod P`, cyclically. Meta key `sub_residues` is a bitmap of the
//! residues held (`P` bits), `sub_residue` ‖ residue (u16 big endian) counts the subscriptions
//! holding each one (u64 big endian); both are absent when zero. A query scans the bitmap
//! (`P / 8` bytes, whatever the number of subscriptions).

use sled::transaction::TransactionalTree;

use super::super::machine::{dec_tx, Abort, StateError, Tx, TxResult, META_TREE};
use super::{meta_u64_tx, u64_value, Offset, MAX_BACKLOG};

/// Period of the lazy backlog rule: a lagging subscriber jumps every `PERIOD` events.
pub(super) const PERIOD: u64 = MAX_BACKLOG + 1;
const _: () = assert!(PERIOD <= 1 << 16, "residues are stored as u16");
const BITMAP_BYTES: usize = PERIOD.div_ceil(8) as usize;

/// Number of subscriptions (absent: zero, or a state of the id-list layout, see [`count_tx`]).
pub(super) const COUNT_KEY: &[u8] = b"subscription_count";
/// The sorted id list of the layout before this one (migrated by [`count_tx`]).
pub(super) const LEGACY_IDS_KEY: &[u8] = b"subscription_ids";
const RESIDUES_KEY: &[u8] = b"sub_residues";
const RESIDUE_PREFIX: &[u8] = b"sub_residue";

/// The offset `stored` stands for once the newest event is `last` (the lazy backlog rule).
pub(super) fn effective(stored: Offset, last: u64) -> Offset {
    if stored.acked >= last {
        return stored;
    }
    let behind = last - stored.acked;
    Offset {
        acked: last - behind % PERIOD,
        must_resync: stored.must_resync || behind > MAX_BACKLOG,
    }
}

fn residue_key(residue: u16) -> Vec<u8> {
    let mut k = RESIDUE_PREFIX.to_vec();
    k.extend_from_slice(&residue.to_be_bytes());
    k
}

fn residue(acked: u64) -> u16 {
    // PERIOD <= 2^16 (asserted above).
    (acked % PERIOD) as u16
}

fn bitmap_tx(m: &TransactionalTree) -> TxResult<Option<Vec<u8>>> {
    match m.get(RESIDUES_KEY)? {
        None => Ok(None),
        Some(v) if v.len() == BITMAP_BYTES => Ok(Some(v.to_vec())),
        Some(_) => Err(Abort::fail(StateError::Corrupt(
            "subscription residues".into(),
        ))),
    }
}

fn set_bit(m: &TransactionalTree, r: u16, on: bool) -> TxResult<()> {
    let mut bits = bitmap_tx(m)?.unwrap_or_else(|| vec![0; BITMAP_BYTES]);
    let (byte, bit) = (usize::from(r) / 8, 1u8 << (r % 8));
    if on {
        bits[byte] |= bit;
    } else {
        bits[byte] &= !bit;
    }
    if bits.iter().all(|b| *b == 0) {
        m.remove(RESIDUES_KEY)?;
    } else {
        m.insert(RESIDUES_KEY, bits)?;
    }
    Ok(())
}

/// Counts one more (`add`) or one fewer subscription at offset `acked`.
fn count_residue(m: &TransactionalTree, acked: u64, add: bool) -> TxResult<()> {
    let r = residue(acked);
    let key = residue_key(r);
    let n = meta_u64_tx(m, &key)?;
    let n = if add {
        n + 1
    } else if n == 0 {
        return Err(Abort::fail(StateError::Corrupt(format!(
            "subscription residue {r} is not counted"
        ))));
    } else {
        n - 1
    };
    match n {
        0 => {
            m.remove(key)?;
            set_bit(m, r, false)
        }
        1 if add => {
            m.insert(key, &n.to_be_bytes())?;
            set_bit(m, r, true)
        }
        _ => {
            m.insert(key, &n.to_be_bytes())?;
            Ok(())
        }
    }
}

/// Records a subscription at `acked` (new: `None` before).
pub(super) fn add_offset(tx: &Tx, acked: u64) -> TxResult<()> {
    count_residue(tx.meta, acked, true)
}

/// Forgets a subscription's stored offset `acked`.
pub(super) fn remove_offset(tx: &Tx, acked: u64) -> TxResult<()> {
    count_residue(tx.meta, acked, false)
}

/// Moves a subscription's stored offset from `from` to `to`.
pub(super) fn move_offset(tx: &Tx, from: u64, to: u64) -> TxResult<()> {
    if residue(from) != residue(to) {
        count_residue(tx.meta, from, false)?;
        count_residue(tx.meta, to, true)?;
    }
    Ok(())
}

/// The first residue in `from..to` the bitmap holds.
fn first_held(bits: &[u8], from: u64, to: u64) -> Option<u64> {
    let mut r = from;
    while r < to {
        let byte = bits[(r / 8) as usize] >> (r % 8);
        if byte == 0 {
            r = (r / 8 + 1) * 8;
            continue;
        }
        let found = r + u64::from(byte.trailing_zeros());
        return (found < to).then_some(found);
    }
    None
}

/// The smallest effective offset of all subscriptions once the newest event is `last`
/// (`last` when there is none).
pub(super) fn min_effective(tx: &Tx, last: u64) -> TxResult<u64> {
    let Some(bits) = bitmap_tx(tx.meta)? else {
        return Ok(last);
    };
    let c = last % PERIOD;
    // The first residue after c, cyclically (c itself last: it is zero behind).
    let first = first_held(&bits, c + 1, PERIOD).or_else(|| first_held(&bits, 0, c + 1));
    let Some(r) = first else {
        return Err(Abort::fail(StateError::Corrupt(
            "empty subscription residues".into(),
        )));
    };
    let behind = (c + PERIOD - r) % PERIOD;
    Ok(last.saturating_sub(behind))
}

/// Number of subscriptions. A state written by the id-list layout (meta key
/// `subscription_ids`, offsets already jumped eagerly, so their effective value is the stored
/// one) is migrated here, in the transaction that first touches it: count and residues are
/// written, the list is removed.
pub(super) fn count_tx(tx: &Tx) -> TxResult<u64> {
    if let Some(v) = tx.meta.get(COUNT_KEY)? {
        return u64_value(META_TREE, &v).map_err(Abort::fail);
    }
    let Some(v) = tx.meta.get(LEGACY_IDS_KEY)? else {
        return Ok(0);
    };
    let ids: Vec<String> = dec_tx("subscription ids", &v)?;
    for id in &ids {
        let Some(off) = tx.sub_offsets.get(id.as_bytes())? else {
            return Err(Abort::fail(StateError::Corrupt(format!(
                "subscription {id} has no offset"
            ))));
        };
        let off: Offset = dec_tx("subscription offset", &off)?;
        add_offset(tx, off.acked)?;
    }
    tx.meta.remove(LEGACY_IDS_KEY)?;
    let n = ids.len() as u64;
    put_count(tx, n)?;
    Ok(n)
}

pub(super) fn put_count(tx: &Tx, n: u64) -> TxResult<()> {
    if n == 0 {
        tx.meta.remove(COUNT_KEY)?;
    } else {
        tx.meta.insert(COUNT_KEY, &n.to_be_bytes())?;
    }
    Ok(())
}

/// The id-list layout's record of `ids` (tests build a state of the old layout with it).
#[cfg(test)]
pub(super) fn legacy_ids_record(ids: &[String]) -> Vec<u8> {
    bincode::serde::encode_to_vec(ids, bincode::config::standard()).unwrap()
}
