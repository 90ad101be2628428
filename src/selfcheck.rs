//! `sealkm selfcheck`: runs the crypto core on the published RFC 6507 and RFC 6508 test data
//! (embedded at build time) and reports each check. A quick proof on a new machine that the
//! binary's arithmetic is right before it holds any real key.

use serde_json::Value;

use crate::crypto::eccsi::{self, EccsiMasterSecret, EccsiSigner};
use crate::crypto::sakke::{self, SakkeMasterSecret};
use crate::crypto::secret::SecretBytes;

const ECCSI: &str = include_str!("../tests/vectors/rfc6507-eccsi.json");
const SAKKE: &str = include_str!("../tests/vectors/rfc6508-sakke.json");

fn field(v: &Value, k: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("vector field {k} missing"))?;
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    hex::decode(s).map_err(|e| format!("vector field {k}: {e}"))
}

fn pad(bytes: Vec<u8>, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend(bytes);
    out
}

fn check(report: &mut String, name: &str, ok: bool) -> Result<(), String> {
    report.push_str(&format!(
        "{:<48} {}\n",
        name,
        if ok { "ok" } else { "FAILED" }
    ));
    if ok {
        Ok(())
    } else {
        Err(format!("selfcheck failed: {name}\n{report}"))
    }
}

pub fn run() -> Result<String, String> {
    let mut r = String::new();
    let e: Value = serde_json::from_str(ECCSI).map_err(|e| e.to_string())?;
    let ksak =
        EccsiMasterSecret::from_bytes(&pad(field(&e, "KSAK")?, 32)).map_err(|e| e.to_string())?;
    check(
        &mut r,
        "RFC 6507 KPAK = [KSAK]G",
        ksak.kpak().to_bytes().to_vec() == field(&e, "KPAK")?,
    )?;
    let id = field(&e, "ID")?;
    let (ssk, pvt) =
        eccsi::issue_with_v(&ksak, &id, &pad(field(&e, "v")?, 32)).map_err(|e| e.to_string())?;
    check(
        &mut r,
        "RFC 6507 SSK",
        ssk.to_bytes().expose().to_vec() == field(&e, "SSK")?,
    )?;
    check(
        &mut r,
        "RFC 6507 PVT",
        pvt.to_bytes().to_vec() == field(&e, "PVT")?,
    )?;
    let signer = EccsiSigner::new(&ksak.kpak(), &id, &ssk, &pvt).map_err(|e| e.to_string())?;
    let sig = signer
        .sign_with_j(&field(&e, "M")?, &pad(field(&e, "j")?, 32))
        .map_err(|e| e.to_string())?;
    check(
        &mut r,
        "RFC 6507 signature",
        sig.to_vec() == field(&e, "Signature")?,
    )?;
    check(
        &mut r,
        "RFC 6507 verify",
        eccsi::verify(&ksak.kpak(), &id, &field(&e, "M")?, &sig).is_ok(),
    )?;

    let s: Value = serde_json::from_str(SAKKE).map_err(|e| e.to_string())?;
    let z = SakkeMasterSecret::from_bytes(&pad(field(&s, "z")?, 128)).map_err(|e| e.to_string())?;
    let zp = z.public_key();
    check(
        &mut r,
        "RFC 6508 Z = [z]P",
        zp.to_bytes() == field(&s, "Z")?,
    )?;
    let b = field(&s, "b")?;
    let rsk = sakke::issue_rsk(&z, &b).map_err(|e| e.to_string())?;
    check(
        &mut r,
        "RFC 6508 RSK",
        rsk.to_bytes().expose().to_vec() == field(&s, "RSK")?,
    )?;
    check(
        &mut r,
        "RFC 6508 RSK validation (pairing)",
        sakke::validate_rsk(&zp, &b, &rsk).is_ok(),
    )?;
    let ssv = SecretBytes::<16>::from_slice(&field(&s, "SSV")?).ok_or("SSV length")?;
    let data = sakke::encapsulate(&zp, &b, &ssv).map_err(|e| e.to_string())?;
    check(
        &mut r,
        "RFC 6508 encapsulated data",
        data == field(&s, "EncapsulatedData")?,
    )?;
    let back = sakke::decapsulate(&zp, &b, &rsk, &data).map_err(|e| e.to_string())?;
    check(&mut r, "RFC 6508 decapsulation", back == ssv)?;
    Ok(r)
}
