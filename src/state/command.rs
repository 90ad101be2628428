//! Commands of the state machine: every change to replicated state is one of these, encoded with
//! serde + bincode inside a versioned [`Envelope`].
//!
//! Upgrade rule: a node that meets an envelope version it does not know stops instead of applying
//! it (never diverge). New command kinds get a new version and are only proposed once every node
//! runs a binary that knows it.
//!
//! Commands carry everything non-deterministic already decided by the proposer: times, generated
//! and sealed master secrets. `apply` never calls a clock or an RNG.

use serde::{Deserialize, Serialize};

use crate::kms::community::Certificate;
use crate::kms::period::PeriodParams;

/// The newest envelope version this binary understands.
pub const COMMAND_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    /// Proposer-chosen id that lets the proposer match the applied outcome to its request.
    pub request_id: u64,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a community (idempotent if it exists with the same parameters).
    CreateCommunity {
        kms_uri: String,
        period: PeriodParams,
    },
    /// Adds a certificate (creation or rotation); its master secrets arrive sealed.
    AddCertificate {
        kms_uri: String,
        certificate: Certificate,
    },
    /// Revokes a certificate: it issues nothing more and is reported `Revoked`.
    RevokeCertificate { kms_uri: String, cert_uri: String },
    /// Revokes an identity in a community: it gets no key set.
    RevokeIdentity {
        kms_uri: String,
        identity: String,
        at_unix: u64,
        reason: String,
    },
    /// Lifts an identity revocation.
    ReinstateIdentity { kms_uri: String, identity: String },
    /// Stores the sealed barrier-check blob (written once, when the state is created).
    SetBarrierCheck { sealed: Vec<u8> },
}

/// What applying a command produced. Deterministic, so every replica computes the same outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    /// The command was valid to log but refused by the state (same on every node).
    Rejected(String),
}

pub fn encode(envelope: &Envelope) -> Vec<u8> {
    // Encoding a plain struct into a Vec cannot fail.
    bincode::serde::encode_to_vec(envelope, bincode::config::standard()).unwrap_or_default()
}

/// Why a logged command could not be decoded. Both variants are fatal for the node: a
/// replica must never skip a committed entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("command version {found} is newer than this binary understands ({known}); upgrade this node before applying it")]
    UnknownVersion { found: u16, known: u16 },
    #[error("undecodable command: {0}")]
    Corrupt(String),
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let cfg = bincode::config::standard();
    // The version is the envelope's first field, so it can be read before the rest.
    let (version, _): (u16, usize) = bincode::serde::decode_from_slice(bytes, cfg)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if version > COMMAND_VERSION {
        return Err(DecodeError::UnknownVersion {
            found: version,
            known: COMMAND_VERSION,
        });
    }
    let (env, used): (Envelope, usize) = bincode::serde::decode_from_slice(bytes, cfg)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::Corrupt("trailing bytes after command".into()));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_version_is_refused() {
        let env = Envelope {
            version: COMMAND_VERSION,
            request_id: 7,
            command: Command::ReinstateIdentity {
                kms_uri: "k".into(),
                identity: "sip:a@b".into(),
            },
        };
        let bytes = encode(&env);
        assert_eq!(decode(&bytes).unwrap(), env);
        let future = Envelope {
            version: COMMAND_VERSION + 1,
            ..env
        };
        assert!(matches!(
            decode(&encode(&future)),
            Err(DecodeError::UnknownVersion { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(DecodeError::Corrupt(_))));
    }
}
