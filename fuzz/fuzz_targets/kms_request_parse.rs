//! Fuzzes the KMS request XML parser (TS 33.180 D.2.2 `KmsRequest` / `SignedKmsRequest`): it
//! must never panic, whatever the bytes (the bounds on size, depth and element count hold for
//! every input), and whatever it accepts must render and read back to the same request.
//!
//! Run (nightly): `cd fuzz && mkdir -p corpus/kms_request_parse && cp seeds/kms_request/*
//! corpus/kms_request_parse/ && cargo +nightly fuzz run kms_request_parse corpus/kms_request_parse
//! -- -max_total_time=300 -max_len=8192`. The seeds are the request shapes real clients send.
//! The stable-Rust stand-in is tests/xml_documents.rs (truncations and bit flips).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkm::kms::xml::{parse_kms_request, render_kms_request};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(request)) = parse_kms_request(data) else {
        return;
    };
    // The checks a handler makes are total too.
    let _ = request.kms_uri_host();
    let _ = request.check_kms_uri("kms.example.org", "kms.example.org:443");
    // Time and ClientReqUrl are optional on input but required on output; values may hold
    // characters the writer refuses (it says so, it does not panic).
    if request.time.is_none() || request.client_req_url.is_none() {
        return;
    }
    let mut unsigned = request.clone();
    unsigned.signed = false;
    if let Ok(xml) = render_kms_request(&unsigned) {
        let again = parse_kms_request(xml.as_bytes())
            .expect("a rendered request parses")
            .expect("a rendered request is a document");
        // Values are trimmed on input, so a second round is exact.
        let twice = render_kms_request(&again).expect("renders again");
        assert_eq!(xml, twice, "render(parse(render(r))) != render(r)");
    }
});
