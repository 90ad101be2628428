//! Node-local, append-only, hash-chained audit log (ARCHITECTURE §7).
//!
//! Every delivery of key material (TS 33.434 5.3 SEAL KM responses, TS 33.180 Annex D key sets)
//! and every key lifecycle change is recorded here: who asked, what happened, when, on which
//! node. The log is per node and never goes through the replicated log. **No secret ever
//! appears in it**: events carry identities, key periods and community names only, and callers
//! must not put key material, tokens or passwords in `detail`.
//!
//! # File format
//!
//! UTF-8, one record per line, each line a JSON object terminated by `\n`:
//!
//! ```text
//! {"seq":1,"ts_ms":1700000000000,"node":"n1","prev":"00…00","event":{…},"hash":"<64 hex>"}
//! ```
//!
//! - `seq` starts at 1 and increases by one per line, so record `seq` is line `seq` of the file;
//! - `ts_ms` is the writer's clock in Unix milliseconds, never decreasing within a file;
//! - `prev` is the `hash` of the previous line (64 zeros for the first line);
//! - `hash` = lowercase hex of SHA-256(`prev` as 32 raw bytes ‖ *body*).
//!
//! The *body* (the canonical bytes) is the line without its hash member: the exact bytes of the
//! line up to, not including, the final `,"hash":"<64 hex>"}`, followed by `}`. The writer
//! produces the body with `serde_json::to_vec` of the record struct (fields in declaration
//! order, compact, no whitespace) and appends the hash member; the verifier hashes the bytes as
//! they are in the file, so any changed byte — including formatting — breaks the line's hash,
//! and a deleted or reordered line breaks `seq` and `prev`.
//!
//! A crash can leave a final line without its `\n`: [`verify_file`] reports it as
//! [`AuditError::Truncated`]; [`AuditLog::open`] cuts it off (it was never acknowledged by
//! [`AuditLog::record`] or [`AuditLog::flush`], which sync whole lines only) and reports the
//! number of bytes removed. The file is created with mode 0600.

pub mod exposure;
mod writer;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ring::digest;
use serde::{Deserialize, Serialize};

pub use writer::{
    flush_open_logs, AuditLog, Durable, SyncHook, AUDIT_BATCH_MAX, AUDIT_QUEUE_CAPACITY,
    EXIT_FLUSH_TIMEOUT,
};

/// Longest accepted line, in bytes (including the newline). Event text fields are cut to
/// [`MAX_FIELD_BYTES`] and the node id to [`MAX_NODE_ID_BYTES`], so a record always fits even
/// if JSON escaping makes every byte six (4 × 1024 × 6 + 128 × 6 + fixed members < 27 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Longest kept value of an event's text field; longer values are cut at a character
/// boundary and marked with `…`.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Longest accepted node id.
pub const MAX_NODE_ID_BYTES: usize = 128;

/// The `prev` of the first record.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A user key set (SSK/PVT/RSK) was delivered (TS 33.180 D.3.3 KeyProv response).
    KeySetDelivered,
    /// A key set whose delivery was recorded (`KeySetDelivered`) was not delivered after all:
    /// its issuance, or the rendering of its answer, failed after the record was synced.
    KeySetWithheld,
    /// Key information was pushed by a VAL server (TS 33.434 5.8 SEAL key provisioning).
    KeyProvisioned,
    CertificateCreated,
    CertificateRotated,
    CertificateRevoked,
    IdentityRevoked,
    IdentityReinstated,
    GroupKeyCreated,
    GroupKeyRotated,
    GroupKeyDelivered,
    GroupKeyRevoked,
    GroupKeyExpirySet,
    /// A subscription to key events was created, changed or removed.
    SubscriptionChanged,
    /// An administrative change to access control (principals, roles).
    AdminAclChanged,
    /// An administrative change to a KMS community or its configuration.
    AdminConfigChanged,
    /// The node's secrets were unsealed or sealed.
    AdminSealChanged,
    /// A partner KMS certificate was imported (or its sharing changed), revoked or removed
    /// (federation, TS 33.180 Annex L.3.2).
    PartnerCertificateImported,
    PartnerCertificateRevoked,
    PartnerCertificateRemoved,
    /// A partner certificate fetched over KM-E was staged for approval.
    PartnerCertificateStaged,
    /// KM-E: a federated group key version was imported from a partner, or delivered to one.
    FederatedKeyImported,
    FederatedKeyDelivered,
    /// Pushed key information was handed to a VAL server (TS 29.549 `SS_KeyInfoRetrieval`).
    KeyInfoRetrieved,
}

/// One audited event. Holds no secret, by construction of its callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// Who asked: the token identity or the certificate principal.
    pub actor: String,
    /// The identity the event is about (a user URI, a group id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The key period number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_period: Option<u64>,
    /// The KMS community (KMS URI), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// Free text for humans; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` asked for by `actor`, with no other fields.
    pub fn new(kind: AuditKind, actor: impl Into<String>) -> Self {
        AuditEvent {
            kind,
            actor: actor.into(),
            identity: None,
            key_period: None,
            community: None,
            detail: None,
        }
    }

    /// Cuts text fields to [`MAX_FIELD_BYTES`].
    fn bounded(mut self) -> Self {
        cut(&mut self.actor);
        for text in [&mut self.identity, &mut self.community, &mut self.detail]
            .into_iter()
            .flatten()
        {
            cut(text);
        }
        self
    }
}

fn cut(text: &mut String) {
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// The body of a line: every member except `hash`, in this order.
#[derive(Serialize)]
struct RecordBody<'a> {
    seq: u64,
    ts_ms: u64,
    node: &'a str,
    prev: &'a str,
    event: &'a AuditEvent,
}

/// The members the chain check reads back from a line.
#[derive(Deserialize)]
struct ChainFields {
    seq: u64,
    ts_ms: u64,
    prev: String,
}

/// Result of a successful [`verify_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Number of records (= lines).
    pub records: u64,
    /// Lowercase hex `hash` of the last record (64 zeros for an empty file).
    pub last_hash: String,
}

/// Audit log failures. Line numbers are 1-based.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit file I/O failed while {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The line's content does not match its hash, or it is not a well-formed record.
    #[error("audit line {line} is corrupt: {reason}")]
    Corrupt { line: u64, reason: &'static str },
    /// The line is intact but does not follow the previous one (a line deleted, reordered or
    /// inserted).
    #[error("audit chain is broken at line {line}: {reason}")]
    ChainBroken { line: u64, reason: &'static str },
    /// The file ends with an incomplete line (a crash during a write).
    #[error("audit file ends with an incomplete line {line}")]
    Truncated { line: u64 },
    /// The last complete line (checked by [`AuditLog::open`]) is not a valid record.
    #[error("audit file tail is corrupt: {reason}")]
    CorruptTail { reason: &'static str },
    #[error("audit node id must be 1 to 128 bytes")]
    BadNodeId,
    /// The queue to the writer is full: the record was not taken (never waited for). A key
    /// delivery is refused.
    #[error("audit unavailable: its queue is full")]
    Unavailable,
    /// The writer stopped after a write or sync failure; nothing more can be recorded.
    #[error("audit writer failed while {op}: {kind}")]
    WriterFailed {
        op: &'static str,
        kind: std::io::ErrorKind,
    },
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> AuditError {
    move |source| AuditError::Io { op, source }
}

/// SHA-256(prev ‖ body).
fn chain_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Serialises one record as a complete line (with `\n`); returns the line and its hash.
fn encode_line(
    seq: u64,
    ts_ms: u64,
    node: &str,
    prev: &[u8; 32],
    event: &AuditEvent,
) -> Result<(Vec<u8>, [u8; 32]), serde_json::Error> {
    let prev_hex = hex::encode(prev);
    let body = serde_json::to_vec(&RecordBody {
        seq,
        ts_ms,
        node,
        prev: &prev_hex,
        event,
    })?;
    let hash = chain_hash(prev, &body);
    let mut line = body;
    line.pop(); // the body's closing '}'
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(hex::encode(hash).as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, hash))
}

/// A checked line: its own hash is right. Chain position is not checked here.
struct LineInfo {
    seq: u64,
    ts_ms: u64,
    prev: [u8; 32],
    hash: [u8; 32],
}

const HASH_SUFFIX_LEN: usize = ",\"hash\":\"".len() + 64 + "\"}".len();

/// Checks one line (without its `\n`) against its own hash.
fn check_line(line: &[u8]) -> Result<LineInfo, &'static str> {
    if line.len() < HASH_SUFFIX_LEN + 2 || line.first() != Some(&b'{') {
        return Err("not a record");
    }
    let split = line.len() - HASH_SUFFIX_LEN;
    let (head, suffix) = line.split_at(split);
    let hex_part = suffix
        .strip_prefix(b",\"hash\":\"")
        .and_then(|s| s.strip_suffix(b"\"}"))
        .ok_or("no hash member at the end")?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut hash).map_err(|_| "hash is not hex")?;
    if hex_part.iter().any(u8::is_ascii_uppercase) {
        return Err("hash is not lowercase hex");
    }
    let mut body = head.to_vec();
    body.push(b'}');
    let fields: ChainFields = serde_json::from_slice(&body).map_err(|_| "body is not a record")?;
    let mut prev = [0u8; 32];
    hex::decode_to_slice(fields.prev.as_bytes(), &mut prev).map_err(|_| "prev is not hex")?;
    if fields.prev.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("prev is not lowercase hex");
    }
    if chain_hash(&prev, &body) != hash {
        return Err("hash does not match the line");
    }
    Ok(LineInfo {
        seq: fields.seq,
        ts_ms: fields.ts_ms,
        prev,
        hash,
    })
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `Ok(None)` at end of file. The returned
/// line keeps its `\n` if it had one.
fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, AuditError> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
    let n = reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(io("reading the audit file"))?;
    Ok(if n == 0 { None } else { Some(()) })
}

/// Verifies a whole audit file: every line's hash, `seq` continuity and the `prev` chain.
/// Reports the first bad line.
pub fn verify_file(path: impl AsRef<Path>) -> Result<AuditSummary, AuditError> {
    let file = File::open(path.as_ref()).map_err(io("opening the audit file"))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::with_capacity(1024);
    let mut prev = GENESIS_HASH;
    let mut records: u64 = 0;
    let mut last_ts_ms: u64 = 0;
    while read_bounded_line(&mut reader, &mut buf)?.is_some() {
        let line_no = records + 1;
        let Some(line) = buf.strip_suffix(b"\n") else {
            if buf.len() >= MAX_LINE_BYTES {
                return Err(AuditError::Corrupt {
                    line: line_no,
                    reason: "line is too long",
                });
            }
            return Err(AuditError::Truncated { line: line_no });
        };
        let info = check_line(line).map_err(|reason| AuditError::Corrupt {
            line: line_no,
            reason,
        })?;
        if info.seq != line_no {
            return Err(AuditError::ChainBroken {
                line: line_no,
                reason: "seq does not follow the previous line",
            });
        }
        if info.prev != prev {
            return Err(AuditError::ChainBroken {
                line: line_no,
                reason: "prev is not the previous line's hash",
            });
        }
        if info.ts_ms < last_ts_ms {
            return Err(AuditError::ChainBroken {
                line: line_no,
                reason: "ts_ms goes backwards",
            });
        }
        prev = info.hash;
        last_ts_ms = info.ts_ms;
        records = line_no;
    }
    Ok(AuditSummary {
        records,
        last_hash: hex::encode(prev),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_line_checks_and_has_fixed_member_order() {
        let mut event = AuditEvent::new(AuditKind::KeySetDelivered, "alice");
        event.key_period = Some(7);
        let (line, hash) = encode_line(1, 5, "n1", &GENESIS_HASH, &event).expect("encode");
        let text = std::str::from_utf8(&line).expect("utf8");
        assert!(text.starts_with(r#"{"seq":1,"ts_ms":5,"node":"n1","prev":"0000"#));
        assert!(
            text.contains(r#""event":{"kind":"key_set_delivered","actor":"alice","key_period":7}"#)
        );
        assert!(text.ends_with("\"}\n"));
        let info = check_line(&line[..line.len() - 1]).expect("valid line");
        assert_eq!((info.seq, info.prev, info.hash), (1, GENESIS_HASH, hash));
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let event = AuditEvent::new(AuditKind::IdentityRevoked, "admin");
        let (line, _) = encode_line(3, 9, "n1", &[7u8; 32], &event).expect("encode");
        let body = &line[..line.len() - 1];
        for i in 0..body.len() {
            let mut bad = body.to_vec();
            bad[i] ^= 0x01;
            assert!(check_line(&bad).is_err(), "flip at byte {i} not detected");
        }
    }

    #[test]
    fn long_fields_are_cut_on_char_boundaries() {
        let mut event = AuditEvent::new(AuditKind::AdminAclChanged, "é".repeat(MAX_FIELD_BYTES));
        event.detail = Some("x".repeat(MAX_FIELD_BYTES * 3));
        let event = event.bounded();
        assert!(event.actor.len() <= MAX_FIELD_BYTES && event.actor.ends_with('…'));
        assert!(event
            .detail
            .as_deref()
            .is_some_and(|d| d.len() <= MAX_FIELD_BYTES));
    }
}
