//! KMS-managed group keys — **our extension**. In the TS 33.180 flow the group management server
//! generates GMKs itself and only fetches its own key set and the KMS certificates from the KMS;
//! that flow is untouched. Here the KMS can also hold a group's GMKs (16 octets, TS 33.180 E.1)
//! as numbered versions, so a GMS or a VAL server can fetch them over an authenticated interface.
//!
//! This module owns the rules of a group's key versions; it is pure (no clock, no sled): times
//! are parameters and randomness comes from the caller's RNG on the proposer side only
//! ([`GroupKeyVersion::generate`]). The replicated state stores [`Group`] as it is.
//!
//! - A version's GMK-ID is the TS 33.180 key identifier (F.1.3, clause 5.2.2 / E.6.11): 28
//!   random bits under the 4-bit GMK purpose tag ([`KeyPurpose::Gmk`] = 0). The GUK-ID a member
//!   sees is derived from it with [`crate::crypto::kdf::guk_id`].
//! - The GMK is only ever stored sealed (AES-256-GCM under the barrier key, [`crate::crypto::seal`])
//!   with an AAD binding the group id, the version and the GMK-ID ([`gmk_aad`]), so a sealed GMK
//!   cannot be moved to another group, version or identifier. Opened GMKs are [`SecretBytes`].
//! - `current(now)` is the newest version that is neither revoked nor expired at `now`; an
//!   expired or revoked version is never current but stays readable (members may still need it
//!   to decrypt older traffic). Rotation adds version n + 1; versions start at 1.

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::kdf::KeyPurpose;
use crate::crypto::seal::{self, BarrierKey};
use crate::crypto::secret::SecretBytes;
use crate::crypto::CryptoError;

/// Length of a GMK (TS 33.180 E.1: every MIKEY-SAKKE-carried MCX key is 16 octets).
pub const GMK_LEN: usize = 16;
/// Longest group id, in bytes.
pub const MAX_GROUP_ID_BYTES: usize = 255;
/// Longest lifetime a new key version may be given (`ttl_s`): ten years. A GMK is rotated far
/// more often than that; a larger value is a mistake, and an unbounded one would put its
/// expiry past what a date can show.
pub const MAX_TTL_S: u64 = 10 * 365 * 86_400;
/// Versions one group may have (a quota on the replicated state: every rotation keeps its
/// version, sealed GMK included).
pub const MAX_VERSIONS: u32 = 10_000;

/// Why a group operation was refused. Messages name ids and numbers only, never key material;
/// the state machine uses them as rejection reasons.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("invalid group id: {0}")]
    InvalidGroupId(&'static str),
    #[error("group {group_id} has no key version {version}")]
    UnknownVersion { group_id: String, version: u32 },
    #[error("key version {given} of group {group_id} is not the next one ({expected})")]
    NotNextVersion {
        group_id: String,
        given: u32,
        expected: u32,
    },
    #[error("key version {version} of group {group_id} is already revoked")]
    AlreadyRevoked { group_id: String, version: u32 },
    #[error("key version {version} of group {group_id} is expired")]
    Expired { group_id: String, version: u32 },
    #[error("invalid key version {version} for group {group_id}: {reason}")]
    InvalidVersion {
        group_id: String,
        version: u32,
        reason: &'static str,
    },
    #[error("ttl_s must be in 1..={MAX_TTL_S} seconds")]
    InvalidTtl,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Checks a new version's lifetime: absent (no expiry) or 1 to [`MAX_TTL_S`] seconds.
pub fn validate_ttl_s(ttl_s: Option<u64>) -> Result<(), GroupError> {
    match ttl_s {
        Some(t) if t == 0 || t > MAX_TTL_S => Err(GroupError::InvalidTtl),
        _ => Ok(()),
    }
}

/// The group id named by a request path, decoded strictly: the segment after `groups/` in the
/// raw (still percent-encoded) `raw_path`, percent-decoded, and refused unless the octets are
/// UTF-8 and form a valid group id. Decoding lossily would map every invalid sequence to U+FFFD,
/// so `%FF` and `%FE` would name the same group.
pub fn group_id_from_raw_path(raw_path: &str) -> Result<String, GroupError> {
    let segment = raw_path
        .split('/')
        .skip_while(|s| *s != "groups")
        .nth(1)
        .ok_or(GroupError::InvalidGroupId("no group in the path"))?;
    let group_id = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| GroupError::InvalidGroupId("not UTF-8 once percent-decoded"))?
        .into_owned();
    validate_group_id(&group_id)?;
    Ok(group_id)
}

/// Checks a group id a router already decoded (`decoded`) against the raw path it came from:
/// valid, and exactly what [`group_id_from_raw_path`] reads there (so not the result of a lossy
/// decoding). The API calls this once for every group route.
pub fn check_group_id_in_path(raw_path: &str, decoded: &str) -> Result<(), GroupError> {
    if group_id_from_raw_path(raw_path)? != decoded {
        return Err(GroupError::InvalidGroupId("not UTF-8 once percent-decoded"));
    }
    Ok(())
}

/// Checks a group id: non-empty, at most [`MAX_GROUP_ID_BYTES`] bytes, printable (no control
/// characters and no whitespace), without '/' (it is a path segment of the planned HTTP
/// interface and ends the GMK's AAD), and not `*` (the ACL's "all groups").
pub fn validate_group_id(group_id: &str) -> Result<(), GroupError> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId("empty"));
    }
    if group_id.len() > MAX_GROUP_ID_BYTES {
        return Err(GroupError::InvalidGroupId("longer than 255 bytes"));
    }
    if group_id.contains('/') {
        return Err(GroupError::InvalidGroupId("contains '/'"));
    }
    if group_id == "*" {
        return Err(GroupError::InvalidGroupId(
            "'*' is reserved (all groups in an ACL)",
        ));
    }
    if group_id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(GroupError::InvalidGroupId("not printable"));
    }
    Ok(())
}

/// The AAD a GMK is sealed with: names the group, the version and the GMK-ID. The group id
/// comes last and holds no '/', so the string is unambiguous.
pub fn gmk_aad(group_id: &str, version: u32, gmk_id: u32) -> Vec<u8> {
    format!("sealkm/v1/gmk/{version}/{gmk_id:08x}/{group_id}").into_bytes()
}

/// One key version of a group. `sealed_gmk` is never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKeyVersion {
    /// 1, 2, 3, … within the group.
    pub version: u32,
    /// TS 33.180 GMK-ID: purpose tag GMK (0) in the top 4 bits, 28 random bits below.
    pub gmk_id: u32,
    /// The 16-octet GMK sealed under the barrier key (AAD = [`gmk_aad`]).
    pub sealed_gmk: Vec<u8>,
    pub created_unix: u64,
    /// Not current from this time on (`None`: no expiry).
    pub expires_unix: Option<u64>,
    pub revoked: bool,
}

impl core::fmt::Debug for GroupKeyVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupKeyVersion")
            .field("version", &self.version)
            .field("gmk_id", &format_args!("{:08X}", self.gmk_id))
            .field("created_unix", &self.created_unix)
            .field("expires_unix", &self.expires_unix)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl GroupKeyVersion {
    /// Proposer side: a fresh GMK and GMK-ID from `rng`, the GMK sealed for (`group_id`,
    /// `version`). `ttl_s` sets `expires_unix = now + ttl_s`.
    pub fn generate(
        rng: &dyn SecureRandom,
        barrier: &BarrierKey,
        group_id: &str,
        version: u32,
        now_unix: u64,
        ttl_s: Option<u64>,
    ) -> Result<Self, GroupError> {
        validate_group_id(group_id)?;
        validate_ttl_s(ttl_s)?;
        if version == 0 {
            return Err(GroupError::InvalidVersion {
                group_id: group_id.to_owned(),
                version,
                reason: "versions start at 1",
            });
        }
        let mut id = [0u8; 4];
        rng.fill(&mut id).map_err(|_| CryptoError::Rng)?;
        let gmk_id = KeyPurpose::Gmk.key_id(u32::from_be_bytes(id));
        let mut raw = [0u8; GMK_LEN];
        let filled = rng.fill(&mut raw).map_err(|_| CryptoError::Rng);
        let gmk = SecretBytes::new(raw);
        zeroize::Zeroize::zeroize(&mut raw);
        filled?;
        let sealed_gmk = seal::seal(
            barrier,
            &gmk_aad(group_id, version, gmk_id),
            gmk.expose(),
            rng,
        )?;
        Ok(Self {
            version,
            gmk_id,
            sealed_gmk,
            created_unix: now_unix,
            expires_unix: ttl_s.map(|t| now_unix.saturating_add(t)),
            revoked: false,
        })
    }

    /// Expired at `now`: an expiry is set and `now` has reached it.
    pub fn is_expired_at(&self, now_unix: u64) -> bool {
        self.expires_unix.is_some_and(|e| now_unix >= e)
    }

    /// Usable as the current key at `now`: not revoked, not expired.
    pub fn is_usable_at(&self, now_unix: u64) -> bool {
        !self.revoked && !self.is_expired_at(now_unix)
    }
}

/// Opens a version's sealed GMK. `CryptoError::Unseal` (wrapped) for a wrong barrier key, a
/// blob of another group/version/GMK-ID, tampering, or a plaintext that is not 16 octets.
pub fn open_gmk(
    barrier: &BarrierKey,
    group_id: &str,
    version: &GroupKeyVersion,
) -> Result<SecretBytes<GMK_LEN>, GroupError> {
    let plain = seal::open(
        barrier,
        &gmk_aad(group_id, version.version, version.gmk_id),
        &version.sealed_gmk,
    )?;
    SecretBytes::from_slice(plain.expose()).ok_or(GroupError::Crypto(CryptoError::Unseal))
}

/// A group and its key versions, oldest first (`versions[i].version == i + 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub group_id: String,
    pub versions: Vec<GroupKeyVersion>,
}

impl Group {
    /// An empty group (no version yet); the id is validated.
    pub fn new(group_id: &str) -> Result<Self, GroupError> {
        validate_group_id(group_id)?;
        Ok(Self {
            group_id: group_id.to_owned(),
            versions: Vec::new(),
        })
    }

    /// The number the next version must have.
    pub fn next_version(&self) -> u32 {
        self.versions
            .last()
            .map_or(1, |v| v.version.saturating_add(1))
    }

    /// The newest version that is neither revoked nor expired at `now`.
    pub fn current(&self, now_unix: u64) -> Option<&GroupKeyVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.is_usable_at(now_unix))
    }

    /// The earliest expiry after `now` of a version that is not revoked: when this group next
    /// has a version to note expired (`None`: never, unless it changes).
    pub fn next_expiry_after(&self, now_unix: u64) -> Option<u64> {
        self.versions
            .iter()
            .filter(|v| !v.revoked)
            .filter_map(|v| v.expires_unix)
            .filter(|&e| e > now_unix)
            .min()
    }

    /// Any version, current or past (revoked and expired ones included).
    pub fn version(&self, version: u32) -> Option<&GroupKeyVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    fn version_mut(&mut self, version: u32) -> Result<&mut GroupKeyVersion, GroupError> {
        let group_id = self.group_id.clone();
        self.versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or(GroupError::UnknownVersion { group_id, version })
    }

    /// Adds a version (creation when the group is empty, rotation otherwise). It must be the
    /// next number, not revoked, carry a GMK-purpose id not used by another version, a
    /// non-empty sealed GMK, and an expiry (if any) after its creation.
    pub fn add_version(&mut self, v: GroupKeyVersion) -> Result<(), GroupError> {
        let expected = self.next_version();
        let invalid = |reason| GroupError::InvalidVersion {
            group_id: self.group_id.clone(),
            version: v.version,
            reason,
        };
        if v.version != expected {
            return Err(GroupError::NotNextVersion {
                group_id: self.group_id.clone(),
                given: v.version,
                expected,
            });
        }
        if v.revoked {
            return Err(invalid("a new version cannot be revoked"));
        }
        if KeyPurpose::of(v.gmk_id) != Some(KeyPurpose::Gmk) {
            return Err(invalid("GMK-ID does not carry the GMK purpose tag"));
        }
        if self.versions.iter().any(|o| o.gmk_id == v.gmk_id) {
            return Err(invalid("GMK-ID already used in this group"));
        }
        if v.sealed_gmk.is_empty() {
            return Err(invalid("no sealed GMK"));
        }
        if v.expires_unix.is_some_and(|e| e <= v.created_unix) {
            return Err(invalid("expires before it is created"));
        }
        self.versions.push(v);
        Ok(())
    }

    /// Revokes one version: it is never current again.
    pub fn revoke(&mut self, version: u32) -> Result<(), GroupError> {
        let group_id = self.group_id.clone();
        let v = self.version_mut(version)?;
        if v.revoked {
            return Err(GroupError::AlreadyRevoked { group_id, version });
        }
        v.revoked = true;
        Ok(())
    }

    /// Sets (or with `None` clears) a version's expiry, decided at `now`. A revoked version,
    /// or one already expired at `now`, is refused: an expired key is never made current again.
    pub fn set_expiry(
        &mut self,
        version: u32,
        expires_unix: Option<u64>,
        now_unix: u64,
    ) -> Result<(), GroupError> {
        let group_id = self.group_id.clone();
        let v = self.version_mut(version)?;
        if v.revoked {
            return Err(GroupError::AlreadyRevoked { group_id, version });
        }
        if v.is_expired_at(now_unix) {
            return Err(GroupError::Expired { group_id, version });
        }
        v.expires_unix = expires_unix;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    const G: &str = "fire-brigade-7";

    fn barrier() -> BarrierKey {
        BarrierKey::from_bytes(&[0x42; 32]).unwrap()
    }

    fn version(n: u32, created: u64, expires: Option<u64>) -> GroupKeyVersion {
        GroupKeyVersion {
            version: n,
            gmk_id: KeyPurpose::Gmk.key_id(0x0ABC_0000 + n),
            sealed_gmk: vec![1; 45],
            created_unix: created,
            expires_unix: expires,
            revoked: false,
        }
    }

    #[test]
    fn group_id_validation() {
        for ok in ["g", "fire-brigade-7", "grp:ü@example.org", &"a".repeat(255)] {
            assert!(validate_group_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a b",
            "a\tb",
            "a\u{0}b",
            "a\nb",
            &"a".repeat(256),
        ] {
            assert!(validate_group_id(bad).is_err(), "{bad:?}");
        }
        assert!(Group::new("x/y").is_err());
    }

    #[test]
    fn group_ids_in_paths_are_decoded_strictly() {
        let p = "/seal-x1/v1/groups/";
        assert_eq!(
            group_id_from_raw_path(&format!("{p}fire-7/keys")).unwrap(),
            "fire-7"
        );
        assert_eq!(
            group_id_from_raw_path(&format!("{p}grp%3A%C3%BC%40x/keys/3")).unwrap(),
            "grp:ü@x"
        );
        assert_eq!(group_id_from_raw_path("/km-s/v1/groups/g").unwrap(), "g");
        // Invalid UTF-8: refused, so two raw ids can no longer alias as U+FFFD.
        for bad in ["%FF", "%FE", "a%C3", "%C3%28"] {
            assert_eq!(
                group_id_from_raw_path(&format!("{p}{bad}/keys")),
                Err(GroupError::InvalidGroupId("not UTF-8 once percent-decoded")),
                "{bad}"
            );
        }
        // What a lossy router makes of %FF is not accepted as that segment's id.
        assert!(check_group_id_in_path(&format!("{p}%FF/keys"), "\u{fffd}").is_err());
        assert!(check_group_id_in_path(&format!("{p}%EF%BF%BD/keys"), "\u{fffd}").is_ok());
        assert!(check_group_id_in_path(&format!("{p}a%20b/keys"), "a b").is_err());
        assert!(check_group_id_in_path(&format!("{p}a%2Fb/keys"), "a/b").is_err());
        assert!(check_group_id_in_path(&format!("{p}g1/keys"), "g2").is_err());
        assert!(check_group_id_in_path("/seal-x1/v1/other", "g").is_err());
    }

    #[test]
    fn ttl_is_bounded() {
        let rng = SystemRandom::new();
        let k = barrier();
        assert_eq!(validate_ttl_s(None), Ok(()));
        assert_eq!(validate_ttl_s(Some(1)), Ok(()));
        assert_eq!(validate_ttl_s(Some(MAX_TTL_S)), Ok(()));
        assert_eq!(validate_ttl_s(Some(0)), Err(GroupError::InvalidTtl));
        assert_eq!(
            validate_ttl_s(Some(MAX_TTL_S + 1)),
            Err(GroupError::InvalidTtl)
        );
        assert_eq!(
            GroupKeyVersion::generate(&rng, &k, G, 1, 1000, Some(u64::MAX)).err(),
            Some(GroupError::InvalidTtl)
        );
    }

    #[test]
    fn current_is_never_expired_or_revoked() {
        let mut g = Group::new(G).unwrap();
        assert!(g.current(0).is_none());
        g.add_version(version(1, 100, None)).unwrap();
        g.add_version(version(2, 200, Some(300))).unwrap();
        assert_eq!(g.current(250).unwrap().version, 2);
        // Version 2 expires: version 1 (no expiry) is current again.
        assert_eq!(g.current(300).unwrap().version, 1);
        g.revoke(1).unwrap();
        assert!(g.current(300).is_none());
        assert_eq!(g.current(299).unwrap().version, 2);
        g.revoke(2).unwrap();
        assert!(g.current(0).is_none());
        // Past versions stay readable.
        assert!(g.version(1).unwrap().revoked);
        assert!(g.version(2).unwrap().revoked);
    }

    #[test]
    fn rotation_adds_exactly_the_next_version() {
        let mut g = Group::new(G).unwrap();
        assert!(matches!(
            g.add_version(version(2, 0, None)),
            Err(GroupError::NotNextVersion { expected: 1, .. })
        ));
        g.add_version(version(1, 0, None)).unwrap();
        assert!(matches!(
            g.add_version(version(1, 0, None)),
            Err(GroupError::NotNextVersion { expected: 2, .. })
        ));
        let mut dup_id = version(2, 0, None);
        dup_id.gmk_id = g.versions[0].gmk_id;
        assert!(matches!(
            g.add_version(dup_id),
            Err(GroupError::InvalidVersion { .. })
        ));
        let mut wrong_tag = version(2, 0, None);
        wrong_tag.gmk_id = KeyPurpose::Csk.key_id(5);
        assert!(g.add_version(wrong_tag).is_err());
        let mut revoked = version(2, 0, None);
        revoked.revoked = true;
        assert!(g.add_version(revoked).is_err());
        assert!(g.add_version(version(2, 10, Some(10))).is_err());
        g.add_version(version(2, 10, Some(11))).unwrap();
        assert_eq!(g.next_version(), 3);
        assert_eq!(g.current(10).unwrap().version, 2);
    }

    #[test]
    fn the_next_expiry_is_the_earliest_future_one_of_a_version_not_revoked() {
        let mut g = Group::new(G).unwrap();
        assert_eq!(g.next_expiry_after(0), None, "no version");
        g.add_version(version(1, 10, Some(50))).unwrap();
        g.add_version(version(2, 10, None)).unwrap();
        g.add_version(version(3, 10, Some(40))).unwrap();
        g.add_version(version(4, 10, Some(30))).unwrap();
        g.revoke(4).unwrap();
        assert_eq!(
            g.next_expiry_after(10),
            Some(40),
            "revoked 4 is never noted"
        );
        assert_eq!(g.next_expiry_after(39), Some(40));
        assert_eq!(
            g.next_expiry_after(40),
            Some(50),
            "expired at 40: due, not next"
        );
        assert_eq!(g.next_expiry_after(50), None);
    }

    #[test]
    fn revoke_and_expiry_rules() {
        let mut g = Group::new(G).unwrap();
        g.add_version(version(1, 0, None)).unwrap();
        assert!(matches!(
            g.revoke(9),
            Err(GroupError::UnknownVersion { version: 9, .. })
        ));
        g.set_expiry(1, Some(50), 10).unwrap();
        assert_eq!(g.version(1).unwrap().expires_unix, Some(50));
        g.set_expiry(1, None, 10).unwrap();
        g.set_expiry(1, Some(20), 10).unwrap();
        // Expired at 20: cannot be extended (never current again).
        assert!(matches!(
            g.set_expiry(1, None, 20),
            Err(GroupError::Expired { .. })
        ));
        g.revoke(1).unwrap();
        assert!(matches!(
            g.revoke(1),
            Err(GroupError::AlreadyRevoked { .. })
        ));
        assert!(matches!(
            g.set_expiry(1, Some(99), 0),
            Err(GroupError::AlreadyRevoked { .. })
        ));
    }

    #[test]
    fn gmk_seal_open_roundtrip_and_binding() {
        let rng = SystemRandom::new();
        let k = barrier();
        let v = GroupKeyVersion::generate(&rng, &k, G, 3, 1000, Some(60)).unwrap();
        assert_eq!(v.version, 3);
        assert_eq!(KeyPurpose::of(v.gmk_id), Some(KeyPurpose::Gmk));
        assert_eq!(v.expires_unix, Some(1060));
        assert!(!v.revoked);
        let gmk = open_gmk(&k, G, &v).unwrap();
        assert_eq!(open_gmk(&k, G, &v).unwrap(), gmk);
        // Wrong AAD: another group, another version, another GMK-ID; and a wrong key.
        let unseal = Err(GroupError::Crypto(CryptoError::Unseal));
        assert_eq!(open_gmk(&k, "other", &v), unseal);
        let mut moved = v.clone();
        moved.version = 4;
        assert_eq!(open_gmk(&k, G, &moved), unseal);
        let mut relabelled = v.clone();
        relabelled.gmk_id ^= 1;
        assert_eq!(open_gmk(&k, G, &relabelled), unseal);
        let other_key = BarrierKey::from_bytes(&[0x43; 32]).unwrap();
        assert_eq!(open_gmk(&other_key, G, &v), unseal);
        // Fresh GMKs and ids.
        let w = GroupKeyVersion::generate(&rng, &k, G, 3, 1000, None).unwrap();
        assert_ne!(open_gmk(&k, G, &w).unwrap(), gmk);
        assert_eq!(w.expires_unix, None);
        assert!(GroupKeyVersion::generate(&rng, &k, "a/b", 1, 0, None).is_err());
        assert!(GroupKeyVersion::generate(&rng, &k, G, 0, 0, None).is_err());
    }

    #[test]
    fn debug_shows_no_sealed_gmk() {
        let mut v = version(1, 0, None);
        v.sealed_gmk = vec![0xEE; 8];
        let shown = format!(
            "{:?}",
            Group {
                group_id: G.into(),
                versions: vec![v],
            }
        );
        assert!(
            !shown.contains("238") && !shown.contains("sealed"),
            "{shown}"
        );
    }
}
