//! Idempotent writes (our extension): a client that got no answer to a write (a 503, a cut
//! connection) cannot know whether it committed, so it may send the write again with the same
//! `Idempotency-Key`. The proposer wraps the command in [`Command::Idempotent`] with the key
//! (scoped to the principal) and a fingerprint of the request; apply runs the inner command
//! only the first time and records key → [`IdempotencyRecord`] in the same transaction. A
//! repeat with the same fingerprint writes nothing (the proposer answers from the record); the
//! same key with another fingerprint is refused. A refused inner command records nothing, so
//! its retry runs again.
//!
//! Tree `idempotency` (only non-empty once a key was used, so older digests are unchanged):
//! `k` ‖ key → bincode [`IdempotencyRecord`]; `s` ‖ seq (u64 big endian) → key; `n` → the next
//! seq. Bounded: the record of seq `n - MAX_KEYS` is dropped when seq `n` is written, so the
//! newest [`MAX_KEYS`] keys are remembered.

use serde::{Deserialize, Serialize};

use super::command::Command;
use super::machine::{
    apply_in_tx, dec, dec_tx, enc, reject, Abort, StateError, StateMachine, Tx, TxResult,
};

/// How many keys are remembered (the oldest is forgotten first).
pub const MAX_KEYS: u64 = 10_000;
/// Longest scoped key (principal and the client's key).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest request fingerprint.
pub const MAX_FINGERPRINT_BYTES: usize = 64;

const RECORD_PREFIX: u8 = b'k';
const ORDER_PREFIX: u8 = b's';
const NEXT_SEQ_KEY: &[u8] = b"n";

/// What the first application of a keyed command produced: enough for a repeat to give the
/// same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdempotentResult {
    /// The command changed the state; nothing more to report.
    Done,
    /// `CreateGroupKey` added this version.
    GroupKeyVersion { group_id: String, version: u32 },
    /// `AddCertificate` added this certificate.
    Certificate { kms_uri: String, cert_uri: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub fingerprint: Vec<u8>,
    pub seq: u64,
    pub result: IdempotentResult,
}

fn record_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(RECORD_PREFIX);
    k.extend_from_slice(key);
    k
}

fn order_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = ORDER_PREFIX;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn result_of(command: &Command) -> IdempotentResult {
    match command {
        Command::CreateGroupKey { group_id, version } => IdempotentResult::GroupKeyVersion {
            group_id: group_id.clone(),
            version: version.version,
        },
        Command::AddCertificate {
            kms_uri,
            certificate,
        } => IdempotentResult::Certificate {
            kms_uri: kms_uri.clone(),
            cert_uri: certificate.cert_uri.clone(),
        },
        _ => IdempotentResult::Done,
    }
}

/// Applies `command` once per `key`.
pub(super) fn apply(
    tx: &Tx,
    key: &str,
    fingerprint: &[u8],
    command: &Command,
    envelope_version: u16,
) -> TxResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return reject(format!("an idempotency key has 1 to {MAX_KEY_BYTES} bytes"));
    }
    if fingerprint.len() > MAX_FINGERPRINT_BYTES {
        return reject("request fingerprint too long");
    }
    if matches!(command, Command::Idempotent { .. }) {
        return reject("nested idempotent command");
    }
    let t = tx.idempotency;
    if let Some(v) = t.get(record_key(key.as_bytes()))? {
        let rec: IdempotencyRecord = dec_tx("idempotency record", &v)?;
        if rec.fingerprint != fingerprint {
            return reject("the idempotency key was used for another request");
        }
        // A repeat: the first application stands, nothing is written.
        return Ok(());
    }
    apply_in_tx(tx, command, envelope_version)?;
    let seq = match t.get(NEXT_SEQ_KEY)? {
        None => 0,
        Some(v) => {
            let arr: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| Abort::fail(StateError::Corrupt("idempotency sequence".into())))?;
            u64::from_be_bytes(arr)
        }
    };
    let rec = IdempotencyRecord {
        fingerprint: fingerprint.to_vec(),
        seq,
        result: result_of(command),
    };
    t.insert(record_key(key.as_bytes()), enc(&rec)?)?;
    t.insert(&order_key(seq), key.as_bytes())?;
    t.insert(NEXT_SEQ_KEY, &(seq + 1).to_be_bytes())?;
    if let Some(old) = seq.checked_sub(MAX_KEYS) {
        if let Some(old_key) = t.remove(&order_key(old))? {
            t.remove(record_key(&old_key))?;
        }
    }
    Ok(())
}

impl StateMachine {
    /// The record of a scoped idempotency key, if it is remembered.
    pub fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StateError> {
        self.read()
            .idempotency
            .get(record_key(key.as_bytes()))?
            .map(|v| dec("idempotency record", &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
