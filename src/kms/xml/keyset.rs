//! `KmsKeySet` (TS 33.180 D.3.1 key provision; schema `KmsKeySetType`, `Version` fixed 1.1.0):
//! one identity's keys for one key period.
//!
//! Children in schema order: `KmsUri, CertUri?, Issuer?, UserUri, UserID, ValidFrom?, ValidTo?,
//! KeyPeriodNo, Revoked?, UserDecryptKey, UserSigningKeySSK, UserPubTokenPVT`.
//!
//! The three key elements are abstract in the schema: plain hexBinary (`KeyContentType`) or an
//! `xenc:EncryptedKey` under a TrK (`EncKeyContentType`). We render and accept the plain form
//! only; an encrypted one is reported as [`XmlError::Unsupported`] rather than misread.

use time::OffsetDateTime;

use super::dom::Element;
use super::hexbin;
use super::writer::XmlWriter;
use super::XmlError;
use crate::crypto::secret::SecretVec;

/// The fixed `Version` of `KmsKeySet`.
pub const KMS_KEY_SET_VERSION: &str = "1.1.0";

/// A `KmsKeySet`. `user_decrypt_key` (SAKKE RSK) and `user_signing_key_ssk` (ECCSI SSK) are
/// private keys and live in [`SecretVec`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeySetDoc {
    /// The bare KMS URI.
    pub kms_uri: String,
    pub cert_uri: Option<String>,
    pub issuer: Option<String>,
    pub user_uri: String,
    /// The TS 33.180 F.2.1 UID (SHA-256 output). Rendered as 64 lower-case hex digits, as in
    /// the published samples (the element is an `xsd:string`); read in either case.
    pub user_id: [u8; 32],
    pub valid_from: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    pub key_period_no: u64,
    pub revoked: Option<bool>,
    /// SAKKE RSK K_(a,T), `0x04 || x || y`.
    pub user_decrypt_key: SecretVec,
    /// ECCSI SSK, 32 octets.
    pub user_signing_key_ssk: SecretVec,
    /// ECCSI PVT, `0x04 || x || y` (65 octets). Public.
    pub user_pub_token_pvt: Vec<u8>,
}

impl KmsKeySetDoc {
    pub(crate) fn render(&self, w: &mut XmlWriter) -> Result<(), XmlError> {
        w.open("KmsKeySet", &[("Version", KMS_KEY_SET_VERSION)])?;
        w.text("KmsUri", &self.kms_uri)?;
        w.opt_text("CertUri", self.cert_uri.as_deref())?;
        w.opt_text("Issuer", self.issuer.as_deref())?;
        w.text("UserUri", &self.user_uri)?;
        w.hex_lower("UserID", &self.user_id)?;
        w.opt_date_time("ValidFrom", self.valid_from)?;
        w.opt_date_time("ValidTo", self.valid_to)?;
        w.number("KeyPeriodNo", self.key_period_no)?;
        w.boolean("Revoked", self.revoked)?;
        w.hex("UserDecryptKey", self.user_decrypt_key.expose())?;
        w.hex("UserSigningKeySSK", self.user_signing_key_ssk.expose())?;
        w.hex("UserPubTokenPVT", &self.user_pub_token_pvt)?;
        w.close("KmsKeySet");
        Ok(())
    }

    pub(crate) fn parse(e: &Element) -> Result<Self, XmlError> {
        e.refuse_duplicates(&[
            "KmsUri",
            "CertUri",
            "Issuer",
            "UserUri",
            "UserID",
            "ValidFrom",
            "ValidTo",
            "KeyPeriodNo",
            "Revoked",
            "UserDecryptKey",
            "UserSigningKeySSK",
            "UserPubTokenPVT",
        ])?;
        let user_id_hex = hexbin::decode("UserID", e.required_text("UserID")?)?;
        let user_id: [u8; 32] = user_id_hex
            .as_slice()
            .try_into()
            .map_err(|_| XmlError::invalid("UserID", "not 32 octets (64 hex digits)"))?;
        Ok(KmsKeySetDoc {
            kms_uri: e.required_text("KmsUri")?.to_owned(),
            cert_uri: e.optional_string("CertUri"),
            issuer: e.optional_string("Issuer"),
            user_uri: e.required_text("UserUri")?.to_owned(),
            user_id,
            valid_from: e.optional_date_time("ValidFrom")?,
            valid_to: e.optional_date_time("ValidTo")?,
            key_period_no: e.required_u64("KeyPeriodNo")?,
            revoked: e.optional_bool("Revoked")?,
            user_decrypt_key: hexbin::decode_secret(
                "UserDecryptKey",
                key_text(e, "UserDecryptKey")?,
            )?,
            user_signing_key_ssk: hexbin::decode_secret(
                "UserSigningKeySSK",
                key_text(e, "UserSigningKeySSK")?,
            )?,
            user_pub_token_pvt: hexbin::decode("UserPubTokenPVT", key_text(e, "UserPubTokenPVT")?)?,
        })
    }
}

/// The hex text of a key element, refusing the encrypted (`xenc:EncryptedKey`) form.
fn key_text<'a>(e: &'a Element, name: &'static str) -> Result<&'a str, XmlError> {
    let key = e.child(name).ok_or(XmlError::MissingElement(name))?;
    if !key.children.is_empty() {
        return Err(XmlError::Unsupported(name));
    }
    match key.text() {
        "" => Err(XmlError::MissingElement(name)),
        text => Ok(text),
    }
}
