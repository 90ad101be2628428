//! TS 33.180 Annex F derivations against the published examples in tests/vectors/.

use sealkm::crypto::kdf::{
    gmk_id_from_guk_id, guk_id, kdf, kdf_input, key_period_no, ntp_seconds_from_unix, uid,
    uid_input, unix_from_ntp_seconds, user_salt, xpk_derived_keys, KeyPurpose,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}
fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing integer {key}"))
}
fn unhex(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap_or_else(|e| panic!("bad hex {h}: {e}"))
}
fn u32_hex(h: &str) -> u32 {
    u32::from_str_radix(h, 16).unwrap_or_else(|e| panic!("bad hex {h}: {e}"))
}

#[test]
fn uid_format_2_cases_with_their_s_strings() {
    let v = load("ts33180-mcx-derivations.json");
    let cases = v["uid_format_2"]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 6);
    for c in cases {
        let args = (
            s(c, "P1_identifier"),
            s(c, "P2_kms_uri"),
            n(c, "P3_key_period_s"),
            n(c, "P4_key_period_offset_s"),
            n(c, "P5_key_period_no"),
        );
        let input = uid_input(args.0, args.1, args.2, args.3, args.4);
        assert_eq!(input, unhex(s(c, "S")), "S for {c}");
        let got = uid(args.0, args.1, args.2, args.3, args.4);
        assert_eq!(got.to_vec(), unhex(s(c, "UID")), "UID for {c}");
    }
}

#[test]
fn unexplained_generator_case_is_not_forced() {
    // The derivations file records one upstream expectation that this construction does not
    // reproduce; we pin what the construction gives so a silent change would be noticed.
    let got = uid("alice@org.com", "127.0.0.1:8080", 2_592_000, 0, 631);
    assert_eq!(
        hex::encode_upper(got),
        "19347ADA403995B328698229E1B7071A16D55A30ED27FD1AE6AB746953BD2031"
    );
}

#[test]
fn guk_id_case_with_s_and_salt() {
    let v = load("ts33180-mcx-derivations.json");
    let g = &v["guk_id"];
    let gmk: [u8; 16] = unhex(s(g, "GMK")).try_into().expect("16-octet GMK");
    let user = s(g, "user_id");
    assert_eq!(kdf_input(0x50, &[user.as_bytes()]), unhex(s(g, "S")));
    assert_eq!(user_salt(&gmk, user), u32_hex(s(g, "user_salt_28bit")));
    let gmk_id = u32_hex(s(g, "GMK_ID"));
    let want = u32_hex(s(g, "GUK_ID"));
    assert_eq!(guk_id(&gmk, gmk_id, user), want);
    assert_eq!(gmk_id_from_guk_id(&gmk, want, user), gmk_id);
    // The salt lives in the 28 low bits: the purpose tag of the GMK-ID survives.
    assert_eq!(KeyPurpose::of(want), Some(KeyPurpose::Gmk));
}

#[test]
fn interop_uid_cases() {
    let v = load("mikey-sakke-interop.json");
    let cases = v["uid_cases"].as_array().expect("uid_cases");
    assert!(!cases.is_empty());
    for c in cases {
        let got = uid(
            s(c, "user_uri"),
            s(c, "kms_uri"),
            n(c, "user_key_period_s"),
            n(c, "user_key_offset_s"),
            n(c, "key_period_no"),
        );
        assert_eq!(hex::encode(got), s(c, "uid"), "{}", s(c, "name"));
    }
}

#[test]
fn interop_key_set_user_ids() {
    let v = load("mikey-sakke-interop.json");
    let init = &v["kms_init"];
    let sets = v["key_sets"].as_array().expect("key_sets");
    assert_eq!(sets.len(), 4);
    for ks in sets {
        let got = uid(
            s(ks, "UserUri"),
            s(init, "KmsUri"),
            n(init, "UserKeyPeriod"),
            n(init, "UserKeyOffset"),
            n(ks, "KeyPeriodNo"),
        );
        assert_eq!(hex::encode(got), s(ks, "UserID"), "{}", s(ks, "label"));
    }
}

#[test]
fn interop_i_message_key_ids_and_periods() {
    let v = load("mikey-sakke-interop.json");
    let init = &v["kms_init"];
    let cases = v["imessage_cases"].as_array().expect("imessage_cases");
    assert_eq!(cases.len(), 4);
    let mut gmk_cases = 0;
    for c in cases {
        let e = &c["expected"];
        let d = &c["decoded_from_i_message"];
        let csb_id = u32_hex(s(d, "csb_id"));
        let key_id = u32_hex(s(e, "key_id"));
        // Key period implied by the T payload.
        let period = key_period_no(
            n(d, "timestamp_ntp_seconds"),
            n(init, "UserKeyPeriod"),
            n(init, "UserKeyOffset"),
        );
        assert_eq!(period, Some(n(d, "key_period_no_from_timestamp")));
        match s(c, "key_type") {
            "GMK" => {
                gmk_cases += 1;
                let gmk: [u8; 16] = unhex(s(e, "key")).try_into().expect("16-octet GMK");
                let responder = s(c, "responder_uri");
                assert_eq!(guk_id(&gmk, key_id, responder), csb_id, "{}", s(c, "name"));
                assert_eq!(gmk_id_from_guk_id(&gmk, csb_id, responder), key_id);
                if let Some(g) = e["guk_id"].as_str() {
                    assert_eq!(csb_id, u32_hex(g));
                }
                assert_eq!(KeyPurpose::of(csb_id), Some(KeyPurpose::Gmk));
            }
            "CSK" => {
                assert_eq!(csb_id, key_id);
                assert_eq!(KeyPurpose::of(key_id), Some(KeyPurpose::Csk));
            }
            "PCK" => {
                assert_eq!(csb_id, key_id);
                assert_eq!(KeyPurpose::of(key_id), Some(KeyPurpose::Pck));
            }
            other => panic!("unexpected key type {other}"),
        }
    }
    assert_eq!(gmk_cases, 2);
}

#[test]
fn ntp_unix_conversion() {
    // 2025-10-02T23:47:52Z, the T payload of the interop I_MESSAGEs.
    assert_eq!(ntp_seconds_from_unix(1_759_448_872), 3_968_437_672);
    assert_eq!(unix_from_ntp_seconds(3_968_437_672), Some(1_759_448_872));
    assert_eq!(unix_from_ntp_seconds(2_208_988_799), None);
    assert_eq!(unix_from_ntp_seconds(2_208_988_800), Some(0));
}

#[test]
fn kdf_is_hmac_over_fc_p_l() {
    // Structure check against an independent HMAC over the explicit S.
    let key = [7u8; 32];
    let s_bytes = kdf_input(0x51, &[b"ab", &[1, 2, 3, 4]]);
    assert_eq!(s_bytes, vec![0x51, b'a', b'b', 0, 2, 1, 2, 3, 4, 0, 4]);
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let want = ring::hmac::sign(&k, &s_bytes);
    assert_eq!(
        kdf(&key, 0x51, &[b"ab", &[1, 2, 3, 4]]).as_slice(),
        want.as_ref()
    );
}

#[test]
fn xpk_keys_are_the_low_128_bits_of_fc_51_and_52() {
    let xpk = [0x42u8; 16];
    let id = KeyPurpose::Csk.key_id(0x0ABC_DEF1);
    let (conf, int) = xpk_derived_keys(&xpk, id, "sip:alice@example.org");
    let p: [&[u8]; 2] = [b"sip:alice@example.org", &id.to_be_bytes()];
    assert_eq!(conf.expose()[..], kdf(&xpk, 0x51, &p)[16..]);
    assert_eq!(int.expose()[..], kdf(&xpk, 0x52, &p)[16..]);
    assert_ne!(conf, int);
}
