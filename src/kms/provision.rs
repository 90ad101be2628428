//! User key sets (TS 33.180 D.3.2.3 `KmsKeySet`): for one identity and one key period, the UID
//! (F.2.1), the ECCSI (SSK, PVT) (RFC 6507 §5.1.1) and the SAKKE RSK (RFC 6508 §6.1.1).
//!
//! Deterministic: the same certificate, identity and period give the same key set on every node
//! and after every restart — ECCSI's ephemeral `v` is derived from KSAK (see `crypto::eccsi`),
//! and the RSK is a function of z_T and the UID.

use super::community::{Certificate, Community};
use super::master::MasterSecrets;
use super::KmsError;
use crate::crypto::eccsi::{self, Pvt, Ssk};
use crate::crypto::kdf;
use crate::crypto::sakke::{self, Rsk};

/// One issued key set. Secret parts zeroize on drop; `Debug` shows only public facts.
pub struct KeySet {
    pub kms_uri: String,
    pub cert_uri: String,
    pub user_uri: String,
    /// The TS 33.180 F.2.1 UID: the ECCSI identifier and the SAKKE identifier.
    pub uid: [u8; 32],
    pub period_no: u64,
    pub valid_from_unix: u64,
    pub valid_to_unix: u64,
    pub ssk: Ssk,
    pub pvt: Pvt,
    pub rsk: Rsk,
}

impl KeySet {
    /// The `KmsKeySet` document of this key set (TS 33.180 D.3.3); it holds the private keys.
    pub fn to_doc(&self) -> crate::kms::xml::KmsKeySetDoc {
        use crate::crypto::secret::SecretVec;
        use crate::kms::xml::time::odt;
        crate::kms::xml::KmsKeySetDoc {
            kms_uri: self.kms_uri.clone(),
            cert_uri: Some(self.cert_uri.clone()),
            issuer: Some(self.kms_uri.clone()),
            user_uri: self.user_uri.clone(),
            user_id: self.uid,
            valid_from: odt(self.valid_from_unix),
            valid_to: odt(self.valid_to_unix),
            key_period_no: self.period_no,
            revoked: Some(false),
            user_decrypt_key: self.rsk.to_bytes(),
            user_signing_key_ssk: SecretVec::new(self.ssk.to_bytes().expose().to_vec()),
            user_pub_token_pvt: self.pvt.to_bytes().to_vec(),
        }
    }
}

impl core::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeySet")
            .field("cert_uri", &self.cert_uri)
            .field("user_uri", &self.user_uri)
            .field("period_no", &self.period_no)
            .finish_non_exhaustive()
    }
}

/// The UID of `user_uri` in `community` for `period_no`.
pub fn uid_for(community: &Community, user_uri: &str, period_no: u64) -> [u8; 32] {
    kdf::uid(
        user_uri,
        &community.kms_uri,
        community.period.period_s,
        community.period.offset_s,
        period_no,
    )
}

/// Issues the key set of `user_uri` for `period_no` under `cert` (whose unsealed secrets are
/// `masters`).
pub fn issue_key_set(
    community: &Community,
    cert: &Certificate,
    masters: &MasterSecrets,
    user_uri: &str,
    period_no: u64,
) -> Result<KeySet, KmsError> {
    let uid = uid_for(community, user_uri, period_no);
    let (ssk, pvt) = eccsi::issue(&masters.ksak, &uid)?;
    let rsk = sakke::issue_rsk(&masters.z, &uid)?;
    let valid_from_unix = community.period.start_unix(period_no).unwrap_or(0);
    let valid_to_unix = community.period.end_unix(period_no).unwrap_or(u64::MAX);
    Ok(KeySet {
        kms_uri: community.kms_uri.clone(),
        cert_uri: cert.cert_uri.clone(),
        user_uri: user_uri.to_owned(),
        uid,
        period_no,
        valid_from_unix,
        valid_to_unix,
        ssk,
        pvt,
        rsk,
    })
}
