//! Fuzzes the MIKEY-SAKKE I_MESSAGE parser: it must never panic, and whatever it accepts
//! must re-encode to exactly the same octets and satisfy the signed-part invariant.
//!
//! Run (nightly): `cd fuzz && mkdir -p corpus/imessage_parse && cp seeds/*.bin corpus/imessage_parse/
//! && cargo +nightly fuzz run imessage_parse corpus/imessage_parse -- -max_total_time=300`.
//! The seeds are the four published interop I_MESSAGEs. The stable-Rust stand-in is the
//! proptest suite in tests/mikey_props.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkm::crypto::mikey;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = mikey::parse(data) {
        let again = mikey::encode(&msg).expect("a parsed message re-encodes");
        assert_eq!(again.as_slice(), data, "encode(parse(b)) != b");
        let signed = mikey::signed_part(data, &msg.sign).expect("signed part exists");
        assert_eq!(signed.len() + msg.sign.signature.len(), data.len());
        // Structural validation is total too.
        let _ = msg.validate_structure();
        for ext in msg.extensions() {
            let _ = ext.sakke_to_self();
        }
    }
});
