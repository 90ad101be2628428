//! Commands of the state machine: every change to replicated state is one of these, encoded with
//! serde + bincode inside a versioned [`Envelope`].
//!
//! Upgrade rule: a node that meets an envelope version it does not know stops instead of applying
//! it (never diverge). New command kinds get a new version and are only proposed once every node
//! runs a binary that knows it.
//!
//! Versions: 1 = the community commands (`CreateCommunity` … `SetBarrierCheck`); 2 = ACL, group
//! keys, key provisioning, subscriptions and acknowledgements; 3 = `NoteGroupKeyExpired`; 4 =
//! `Idempotent` (a command with a client's idempotency key); 5 = the partner certificate commands,
//! `NoteFederatedDelivery` and `PutServiceKeyProvisioning`; 6 = `ImportFederatedGroupKey`; 7 =
//! the CAPIF commands (`SetCapifPublication`, `RevokeCapifInvoker`,
//! `ReinstateCapifInvoker`); 8 = `PutSubscription` under the outbox layout that holds up to
//! 10,000 subscriptions (in an envelope below 8 it may make at most 1,000, as the binaries
//! before it did, so an old log replays as it was applied). An envelope carries the version its
//! command is proposed with ([`Command::proposed_version`], set by [`Envelope::new`]: the
//! smallest it needs, [`Command::min_version`], except `PutSubscription`, proposed at 8), not
//! the binary's newest, so a version-1 command proposed by a newer binary still applies on an
//! older one during a rolling upgrade, and an older node meeting a version-8 subscription stops
//! instead of applying it with a lower limit. New variants are only ever appended at the END of [`Command`]:
//! bincode encodes the variant index, so existing encodings stay byte-for-byte the same. An
//! envelope whose version is below its command's minimum is refused (deterministically) by apply.
//!
//! Commands carry everything non-deterministic already decided by the proposer: times, generated
//! and sealed master secrets and GMKs. `apply` never calls a clock or an RNG.

use serde::{Deserialize, Serialize};

use crate::kms::acl::Role;
use crate::kms::community::Certificate;
use crate::kms::events::EventKind;
use crate::kms::group::GroupKeyVersion;
use crate::kms::partner::PartnerCertificate;
use crate::kms::period::PeriodParams;

/// The newest envelope version this binary understands.
pub const COMMAND_VERSION: u16 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    /// Proposer-chosen id that lets the proposer match the applied outcome to its request.
    pub request_id: u64,
    pub command: Command,
}

impl Envelope {
    /// An envelope with the version `command` is proposed with: what a proposer should send.
    pub fn new(request_id: u64, command: Command) -> Self {
        Self {
            version: command.proposed_version(),
            request_id,
            command,
        }
    }
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
    RevokeCertificate {
        kms_uri: String,
        cert_uri: String,
    },
    /// Revokes an identity in a community: it gets no key set.
    RevokeIdentity {
        kms_uri: String,
        identity: String,
        at_unix: u64,
        reason: String,
    },
    /// Lifts an identity revocation.
    ReinstateIdentity {
        kms_uri: String,
        identity: String,
    },
    /// Stores the sealed barrier-check blob (written once, when the state is created).
    SetBarrierCheck {
        sealed: Vec<u8>,
    },
    // ---- version 2 (append only below this line) ----
    /// Creates or replaces a principal's ACL entry (our extension).
    PutAclEntry {
        principal: String,
        role: Role,
        groups: Vec<String>,
    },
    RemoveAclEntry {
        principal: String,
    },
    /// Adds a group key version: version 1 creates the group, any other must be exactly the
    /// next one (rotation). The GMK arrives sealed (our extension).
    CreateGroupKey {
        group_id: String,
        version: GroupKeyVersion,
    },
    /// Revokes one version of a group key; `at_unix` is the proposer's time (event time).
    RevokeGroupKey {
        group_id: String,
        version: u32,
        at_unix: u64,
    },
    /// Sets (`None`: clears) a version's expiry, decided at `at_unix`: a version already
    /// expired or revoked then is refused.
    SetGroupKeyExpiry {
        group_id: String,
        version: u32,
        expires_unix: Option<u64>,
        at_unix: u64,
    },
    /// TS 33.434 5.8 SEAL key provisioning: key information pushed by a VAL server, sealed.
    PutKeyProvisioning {
        principal: String,
        key_id: String,
        sealed_info: Vec<u8>,
        at_unix: u64,
    },
    /// Creates or updates a subscription to key events (our extension).
    PutSubscription {
        id: String,
        principal: String,
        callback_url: String,
        kinds: Vec<EventKind>,
        group_filter: Option<Vec<String>>,
    },
    RemoveSubscription {
        id: String,
    },
    /// Acknowledges every event up to `up_to_event_id` for one subscription.
    AckEvents {
        subscription_id: String,
        up_to_event_id: u64,
    },
    // ---- version 3 (append only below this line) ----
    /// Records that a version's expiry time has passed (proposed by the leader's expiry
    /// sweeper, `at_unix` its time): emits one `group-key-expired` event per version.
    NoteGroupKeyExpired {
        group_id: String,
        version: u32,
        at_unix: u64,
    },
    // ---- version 4 (append only below this line) ----
    /// `command`, applied at most once per `key` (a client's `Idempotency-Key` scoped to its
    /// principal); `fingerprint` identifies the request the key was first used for (see
    /// `state::idempotency`).
    Idempotent {
        key: String,
        fingerprint: Vec<u8>,
        command: Box<Command>,
    },
    // ---- version 5 (append only below this line) ----
    /// Imports a partner KMS certificate (`Role="External"`, TS 33.180 Annex L.3.2), checked
    /// again at apply against the partners known then (`kms::partner::check_import` at
    /// `at_unix`, the proposer's time); `rotate`: the partner's keys may change.
    ImportPartnerCertificate {
        certificate: PartnerCertificate,
        rotate: bool,
        at_unix: u64,
    },
    /// Marks a partner certificate revoked (served `Revoked=true` until its ValidTo).
    RevokePartnerCertificate {
        id: String,
    },
    /// Forgets a partner certificate (imported or pending).
    RemovePartnerCertificate {
        id: String,
    },
    /// Stages a partner certificate fetched over KM-E until an operator approves it.
    StagePartnerCertificate {
        certificate: PartnerCertificate,
    },
    /// An operator's approval of a staged certificate (`kms::partner::check_approval` at
    /// `at_unix`, the proposer's time).
    ApprovePartnerCertificate {
        id: String,
        at_unix: u64,
    },
    /// KM-E: `partner` acknowledged `version` of the federated group `group_id`.
    NoteFederatedDelivery {
        partner: String,
        group_id: String,
        version: u32,
    },
    /// TS 33.434 5.8 key provisioning for a VAL service (and target VAL user or UE): stored as
    /// `PutKeyProvisioning` is, and the newest push of `principal` for (service, target) that
    /// `SS_KeyInfoRetrieval` (TS 29.549) answers (see `state::key_records`).
    PutServiceKeyProvisioning {
        principal: String,
        key_id: String,
        sealed_info: Vec<u8>,
        at_unix: u64,
        val_service_id: String,
        val_tgt_ue: Option<String>,
    },
    // ---- version 6 (append only below this line) ----
    /// KM-E: a version of a federated group received from `partner` (its KMS URI), its GMK
    /// sealed here: added as `CreateGroupKey` adds a version (same rules and event), plus a
    /// `federated-key-imported` event naming the partner.
    ImportFederatedGroupKey {
        partner: String,
        group_id: String,
        version: GroupKeyVersion,
    },
    // ---- version 7 (append only below this line) ----
    /// CAPIF (TS 29.222 `Publish_Service_API`): the CCF's `apiId` of our publication of
    /// `api_name`; `None`: not published (unpublished).
    SetCapifPublication {
        api_name: String,
        api_id: Option<String>,
    },
    /// CAPIF (TS 29.222 `AEF_Security_API` revoke-authorization): the CCF revoked
    /// `api_invoker_id` at `at_unix` (the proposer's time); it is refused from then on.
    RevokeCapifInvoker {
        api_invoker_id: String,
        at_unix: u64,
    },
    /// CAPIF: an operator lifts the revocation of `api_invoker_id` (the CCF authorised it
    /// again).
    ReinstateCapifInvoker {
        api_invoker_id: String,
    },
}

impl Command {
    /// The envelope version a proposer sends: [`Command::min_version`], except
    /// `PutSubscription` (8: it may then make up to 10,000 subscriptions, see the module docs).
    ///
    /// The value goes through `black_box` for the reason given at [`Command::min_version`]:
    /// written as a plain `match`, the optimised build compared a 1 it returned unequal to 1.
    pub fn proposed_version(&self) -> u16 {
        let min = std::hint::black_box(self.min_version());
        let v = match self {
            Command::PutSubscription { .. } => 8,
            Command::Idempotent { command, .. } => command.proposed_version().max(min),
            _ => min,
        };
        std::hint::black_box(v)
    }

    /// The smallest envelope version that may carry this command.
    ///
    /// Written as a table lookup on a small variant number rather than one `match` returning
    /// the version directly: with 24 variants, the optimised build (rustc 1.95, opt-level 3)
    /// miscompiled that form (a result that printed as 1 compared unequal to 1), see the
    /// `min_version_is_exact_for_every_variant` test.
    pub fn min_version(&self) -> u16 {
        const BY_KIND: [u16; 7] = [1, 2, 3, 4, 5, 6, 7];
        let kind: usize = match self {
            Command::CreateCommunity { .. }
            | Command::AddCertificate { .. }
            | Command::RevokeCertificate { .. }
            | Command::RevokeIdentity { .. }
            | Command::ReinstateIdentity { .. }
            | Command::SetBarrierCheck { .. } => 0,
            Command::PutAclEntry { .. }
            | Command::RemoveAclEntry { .. }
            | Command::CreateGroupKey { .. }
            | Command::RevokeGroupKey { .. }
            | Command::SetGroupKeyExpiry { .. }
            | Command::PutKeyProvisioning { .. }
            | Command::PutSubscription { .. }
            | Command::RemoveSubscription { .. }
            | Command::AckEvents { .. } => 1,
            Command::NoteGroupKeyExpired { .. } => 2,
            Command::Idempotent { command, .. } => {
                return std::hint::black_box(command.min_version()).max(4)
            }
            Command::ImportPartnerCertificate { .. }
            | Command::RevokePartnerCertificate { .. }
            | Command::RemovePartnerCertificate { .. }
            | Command::StagePartnerCertificate { .. }
            | Command::ApprovePartnerCertificate { .. }
            | Command::NoteFederatedDelivery { .. }
            | Command::PutServiceKeyProvisioning { .. } => 4,
            Command::ImportFederatedGroupKey { .. } => 5,
            Command::SetCapifPublication { .. }
            | Command::RevokeCapifInvoker { .. }
            | Command::ReinstateCapifInvoker { .. } => 6,
        };
        BY_KIND[kind]
    }
}

/// What applying a command produced. Deterministic, so every replica computes the same outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    /// The command was valid to log but refused by the state (same on every node).
    Rejected(String),
}

/// Why an envelope could not be encoded (no command of this binary fails to; a proposer
/// refuses the request rather than log an empty entry, which Raft would apply as a no-op).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command cannot be encoded: {0}")]
pub struct EncodeError(String);

/// The log bytes of `envelope`.
pub fn try_encode(envelope: &Envelope) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(envelope, bincode::config::standard())
        .map_err(|e| EncodeError(e.to_string()))
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
        let bytes = try_encode(&env).unwrap();
        assert_eq!(decode(&bytes).unwrap(), env);
        let future = Envelope {
            version: COMMAND_VERSION + 1,
            ..env
        };
        assert!(matches!(
            decode(&try_encode(&future).unwrap()),
            Err(DecodeError::UnknownVersion { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(DecodeError::Corrupt(_))));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The version-1 commands, and the bytes the binary BEFORE version 2 encoded them to
    /// (recorded from that binary): appending variants must not change a single byte, and a
    /// proposer sends them with version 1 still.
    #[test]
    fn version_1_encodings_are_unchanged() {
        let cases = [
            (
                Command::CreateCommunity {
                    kms_uri: "kms.example.org".into(),
                    period: PeriodParams {
                        period_s: 2_592_000,
                        offset_s: 0,
                    },
                },
                "012a000f6b6d732e6578616d706c652e6f7267fc008d270000",
            ),
            (
                Command::AddCertificate {
                    kms_uri: "k".into(),
                    certificate: Certificate {
                        serial: 2,
                        cert_uri: "k/cert/2".into(),
                        valid_from_unix: 1_700_000_000,
                        valid_to_unix: 1_800_000_000,
                        revoked: false,
                        pub_enc_key: vec![4, 5],
                        pub_auth_key: vec![6],
                        sealed_master: vec![7, 8, 9],
                    },
                },
                "012b01016b02086b2f636572742f32fc00f15365fc00d2496b00020405010603070809",
            ),
            (
                Command::RevokeCertificate {
                    kms_uri: "k".into(),
                    cert_uri: "k/cert/1".into(),
                },
                "012c02016b086b2f636572742f31",
            ),
            (
                Command::RevokeIdentity {
                    kms_uri: "k".into(),
                    identity: "sip:a@b".into(),
                    at_unix: 1_700_000_123,
                    reason: "lost".into(),
                },
                "012d03016b077369703a614062fc7bf15365046c6f7374",
            ),
            (
                Command::ReinstateIdentity {
                    kms_uri: "k".into(),
                    identity: "sip:a@b".into(),
                },
                "012e04016b077369703a614062",
            ),
            (
                Command::SetBarrierCheck {
                    sealed: vec![1, 2, 3],
                },
                "012f0503010203",
            ),
        ];
        for (i, (command, old_hex)) in cases.into_iter().enumerate() {
            assert_eq!(command.min_version(), 1);
            let env = Envelope::new(42 + i as u64, command);
            assert_eq!(env.version, 1);
            let bytes = try_encode(&env).unwrap();
            assert_eq!(hex(&bytes), old_hex);
            assert_eq!(decode(&bytes).unwrap(), env);
        }
    }

    #[test]
    fn version_2_commands_round_trip_with_version_2() {
        let cmds = [
            Command::PutAclEntry {
                principal: "val1.example.org".into(),
                role: Role::ValServer,
                groups: vec!["*".into()],
            },
            Command::RemoveAclEntry {
                principal: "p".into(),
            },
            Command::CreateGroupKey {
                group_id: "g".into(),
                version: GroupKeyVersion {
                    version: 1,
                    gmk_id: 0x0123_4567,
                    sealed_gmk: vec![1; 45],
                    created_unix: 5,
                    expires_unix: Some(9),
                    revoked: false,
                },
            },
            Command::RevokeGroupKey {
                group_id: "g".into(),
                version: 1,
                at_unix: 7,
            },
            Command::SetGroupKeyExpiry {
                group_id: "g".into(),
                version: 1,
                expires_unix: None,
                at_unix: 7,
            },
            Command::PutKeyProvisioning {
                principal: "p".into(),
                key_id: "k".into(),
                sealed_info: vec![3; 40],
                at_unix: 7,
            },
            Command::PutSubscription {
                id: "s".into(),
                principal: "p".into(),
                callback_url: "https://h/cb".into(),
                kinds: vec![EventKind::GroupKeyRotated],
                group_filter: Some(vec!["g".into()]),
            },
            Command::RemoveSubscription { id: "s".into() },
            Command::AckEvents {
                subscription_id: "s".into(),
                up_to_event_id: 3,
            },
        ];
        for (i, command) in cmds.into_iter().enumerate() {
            let put = matches!(command, Command::PutSubscription { .. });
            assert_eq!(command.min_version(), 2);
            let env = Envelope::new(i as u64, command);
            // A subscription is proposed at 8 (the 10,000-subscription limit).
            assert_eq!(env.version, if put { 8 } else { 2 });
            assert_eq!(decode(&try_encode(&env).unwrap()).unwrap(), env);
            // The variant index follows the six version-1 variants.
            assert_eq!(try_encode(&env).unwrap()[2], 6 + i as u8);
        }
    }

    #[test]
    fn version_5_commands_are_appended_after_idempotent() {
        let env = Envelope::new(
            1,
            Command::PutServiceKeyProvisioning {
                principal: "p".into(),
                key_id: "k".into(),
                sealed_info: vec![3; 40],
                at_unix: 7,
                val_service_id: "svc".into(),
                val_tgt_ue: Some("sip:a@b".into()),
            },
        );
        assert_eq!(env.version, 5);
        let bytes = try_encode(&env).unwrap();
        assert_eq!(decode(&bytes).unwrap(), env);
        // Variant index 23: after the 17 variants of versions 1 to 4 and the six partner
        // commands of version 5.
        assert_eq!(bytes[2], 23);
        let env = Envelope::new(1, Command::RevokePartnerCertificate { id: "b/1".into() });
        assert_eq!(env.version, 5);
        let bytes = try_encode(&env).unwrap();
        assert_eq!(decode(&bytes).unwrap(), env);
        assert_eq!(bytes[2], 18);
    }

    #[test]
    fn version_6_command_is_appended_after_version_5() {
        let env = Envelope::new(
            1,
            Command::ImportFederatedGroupKey {
                partner: "kms.partner.test".into(),
                group_id: "g".into(),
                version: GroupKeyVersion {
                    version: 2,
                    gmk_id: 9,
                    sealed_gmk: vec![4; 60],
                    created_unix: 5,
                    expires_unix: Some(6),
                    revoked: false,
                },
            },
        );
        assert_eq!(env.version, 6);
        let bytes = try_encode(&env).unwrap();
        assert_eq!(decode(&bytes).unwrap(), env);
        assert_eq!(bytes[2], 24, "after the 24 variants of versions 1 to 5");
    }

    #[test]
    fn min_version_is_exact_for_every_variant() {
        let one = || Command::RevokeCertificate {
            kms_uri: "k".into(),
            cert_uri: "c".into(),
        };
        let cases: Vec<(Command, u16)> = vec![
            (one(), 1),
            (
                Command::RemoveAclEntry {
                    principal: "p".into(),
                },
                2,
            ),
            (
                Command::NoteGroupKeyExpired {
                    group_id: "g".into(),
                    version: 1,
                    at_unix: 1,
                },
                3,
            ),
            (
                Command::Idempotent {
                    key: "k".into(),
                    fingerprint: vec![1],
                    command: Box::new(one()),
                },
                4,
            ),
            (Command::RevokePartnerCertificate { id: "b".into() }, 5),
            (
                Command::NoteFederatedDelivery {
                    partner: "b".into(),
                    group_id: "g".into(),
                    version: 2,
                },
                5,
            ),
            (
                Command::ImportFederatedGroupKey {
                    partner: "b".into(),
                    group_id: "g".into(),
                    version: GroupKeyVersion {
                        version: 1,
                        gmk_id: 1,
                        sealed_gmk: vec![1],
                        created_unix: 1,
                        expires_unix: None,
                        revoked: false,
                    },
                },
                6,
            ),
            (
                Command::RevokeCapifInvoker {
                    api_invoker_id: "i".into(),
                    at_unix: 1,
                },
                7,
            ),
        ];
        for (command, want) in cases {
            let got = command.min_version();
            // Both forms: the first one is what the miscompiled version got wrong.
            assert!(got == want, "{command:?}: {got} != {want}");
            assert_eq!(u32::from(got), u32::from(want));
            assert!(Envelope::new(1, command).version == want);
        }
        // A subscription is proposed at 8, also inside an idempotent command; it needs 2.
        let put = || Command::PutSubscription {
            id: "s".into(),
            principal: "p".into(),
            callback_url: "https://h/cb".into(),
            kinds: vec![EventKind::GroupKeyRotated],
            group_filter: None,
        };
        assert!(put().min_version() == 2);
        assert!(put().proposed_version() == 8);
        assert!(Envelope::new(1, put()).version == 8);
        let wrapped = Command::Idempotent {
            key: "k".into(),
            fingerprint: vec![1],
            command: Box::new(put()),
        };
        assert!(wrapped.min_version() == 4);
        assert!(wrapped.proposed_version() == 8);
        assert!(Envelope::new(1, one()).version == 1);
    }
}
