//! TS 33.180 Annex D documents through the library's pure XML functions (no server): a golden
//! `KmsInit` response built from the published interop KMS certificate, round trips of every
//! document we render, liberal request parsing as real clients need it, the strict refusals
//! (namespace, version, duplicates, undeclared prefixes), and hostile XML: DOCTYPE, entities,
//! depth, element count, size, encoding, truncation and bit flips.

use sealkm::crypto::secret::SecretVec;
use sealkm::kms::xml::certificate::{CertRole, KmsCertificateDoc, KMS_CERTIFICATE_VERSION};
use sealkm::kms::xml::keyset::KmsKeySetDoc;
use sealkm::kms::xml::kms_error::{KmsErrorCode, KmsErrorDoc};
use sealkm::kms::xml::{
    parse_kms_request, parse_kms_response, render_kms_request, render_kms_response, KmsMessageDoc,
    KmsRequestDoc, KmsResponseBody, KmsResponseDoc, RequestVersion, XmlError, KMS_NAMESPACE,
    MAX_DEPTH, MAX_ELEMENTS, MAX_REQUEST_BYTES,
};
use time::macros::datetime;

const NS: &str = KMS_NAMESPACE;

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("vectors/mikey-sakke-interop.json")).expect("vectors")
}

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

/// The interop KMS's certificate as our `KmsInit` carries it.
fn interop_certificate() -> KmsCertificateDoc {
    let v = vectors();
    let init = &v["kms_init"];
    KmsCertificateDoc {
        version: KMS_CERTIFICATE_VERSION.to_owned(),
        role: CertRole::Root,
        is_security_gateway: None,
        cert_uri: Some("kms.mydev.streamwide.com/cert/1".into()),
        kms_uri: init["KmsUri"].as_str().unwrap().to_owned(),
        issuer: Some("kms.mydev.streamwide.com".into()),
        valid_from: Some(datetime!(2025-01-01 00:00:00 UTC)),
        valid_to: Some(datetime!(2027-01-01 00:00:00 UTC)),
        revoked: Some(false),
        user_id_format: init["UserIdFormat"].as_str().unwrap().to_owned(),
        user_key_period: init["UserKeyPeriod"].as_u64().unwrap(),
        user_key_offset: init["UserKeyOffset"].as_u64().unwrap(),
        pub_enc_key: unhex(&init["PubEncKey_Z"]),
        pub_auth_key: unhex(&init["PubAuthKey_KPAK"]),
        parameter_set: Some(1),
        kms_domains: Vec::new(),
    }
}

fn response(body: KmsResponseBody) -> KmsResponseDoc {
    KmsResponseDoc {
        user_uri: "sip:alice@streamwide.com".into(),
        kms_uri: "kms.mydev.streamwide.com".into(),
        time: datetime!(2025-10-02 23:47:52 UTC),
        kms_id: None,
        client_req_url: "https://kms.mydev.streamwide.com/keymanagement/identity/v1/init".into(),
        body,
    }
}

#[test]
fn golden_init_response() {
    let v = vectors();
    let init = &v["kms_init"];
    let z = init["PubEncKey_Z"].as_str().unwrap().to_ascii_uppercase();
    let kpak = init["PubAuthKey_KPAK"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    // Schema order, default namespace, fixed versions, upper-case hexBinary on one line.
    let golden = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<KmsResponse xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.0.0">
  <UserUri>sip:alice@streamwide.com</UserUri>
  <KmsUri>kms.mydev.streamwide.com</KmsUri>
  <Time>2025-10-02T23:47:52Z</Time>
  <ClientReqUrl>https://kms.mydev.streamwide.com/keymanagement/identity/v1/init</ClientReqUrl>
  <KmsMessage>
    <KmsInit Version="1.0.0">
      <KmsCertificate Version="1.1.0" Role="Root">
        <CertUri>kms.mydev.streamwide.com/cert/1</CertUri>
        <KmsUri>kms.mydev.streamwide.com</KmsUri>
        <Issuer>kms.mydev.streamwide.com</Issuer>
        <ValidFrom>2025-01-01T00:00:00Z</ValidFrom>
        <ValidTo>2027-01-01T00:00:00Z</ValidTo>
        <Revoked>false</Revoked>
        <UserIdFormat>2</UserIdFormat>
        <UserKeyPeriod>16777215</UserKeyPeriod>
        <UserKeyOffset>0</UserKeyOffset>
        <PubEncKey>{z}</PubEncKey>
        <PubAuthKey>{kpak}</PubAuthKey>
        <ParameterSet>1</ParameterSet>
      </KmsCertificate>
    </KmsInit>
  </KmsMessage>
</KmsResponse>
"#
    );
    let doc = response(KmsResponseBody::Message(KmsMessageDoc::Init(Box::new(
        interop_certificate(),
    ))));
    let rendered = render_kms_response(&doc).expect("render");
    assert_eq!(rendered.as_str(), golden);
    // And the golden document reads back to the same values.
    assert_eq!(parse_kms_response(golden.as_bytes()).expect("parse"), doc);
}

fn interop_key_set(i: usize) -> KmsKeySetDoc {
    let v = vectors();
    let ks = &v["key_sets"][i];
    KmsKeySetDoc {
        kms_uri: v["kms_init"]["KmsUri"].as_str().unwrap().to_owned(),
        cert_uri: Some("kms.mydev.streamwide.com/cert/1".into()),
        issuer: None,
        user_uri: ks["UserUri"].as_str().unwrap().to_owned(),
        user_id: unhex(&ks["UserID"]).try_into().expect("32 octets"),
        valid_from: Some(datetime!(2025-09-01 00:00:00 UTC)),
        valid_to: None,
        key_period_no: ks["KeyPeriodNo"].as_u64().unwrap(),
        revoked: None,
        user_decrypt_key: SecretVec::new(unhex(&ks["UserDecryptKey_RSK"])),
        user_signing_key_ssk: SecretVec::new(unhex(&ks["UserSigningKeySSK"])),
        user_pub_token_pvt: unhex(&ks["UserPubTokenPVT"]),
    }
}

#[test]
fn every_rendered_response_reads_back_to_itself() {
    let sets = vectors()["key_sets"].as_array().unwrap().len();
    let bodies = [
        KmsResponseBody::Message(KmsMessageDoc::Init(Box::new(interop_certificate()))),
        KmsResponseBody::Message(KmsMessageDoc::KeyProv(
            (0..sets).map(interop_key_set).collect(),
        )),
        KmsResponseBody::Message(KmsMessageDoc::CertCache {
            cache_num: 7,
            certificates: vec![KmsCertificateDoc {
                role: CertRole::External,
                is_security_gateway: Some(true),
                kms_domains: vec!["a.example".into(), "b.example".into()],
                ..interop_certificate()
            }],
        }),
        KmsResponseBody::Message(KmsMessageDoc::CertCache {
            cache_num: 0,
            certificates: Vec::new(),
        }),
        KmsResponseBody::Error(KmsErrorDoc::new(
            KmsErrorCode::IdentityRevoked,
            "identity is revoked <&> \"quoted\"",
        )),
        KmsResponseBody::Error(KmsErrorDoc::new(KmsErrorCode::Other(599), "")),
    ];
    for body in bodies {
        let mut doc = response(body);
        doc.kms_id = Some("kms-1".into());
        let xml = render_kms_response(&doc).expect("render");
        let mut back = parse_kms_response(xml.as_bytes()).expect("parse");
        if let (KmsResponseBody::Error(e), KmsResponseBody::Error(b)) = (&doc.body, &mut back.body)
        {
            // An empty message is rendered as the code's default text (ErrorMsg is mandatory).
            if e.message.is_empty() {
                assert_eq!(b.message, e.code.default_message());
                b.message.clear();
            }
        }
        assert_eq!(back, doc, "{}", xml.as_str());
    }
}

#[test]
fn key_sets_read_back_carry_the_published_keys() {
    let doc = response(KmsResponseBody::Message(KmsMessageDoc::KeyProv(vec![
        interop_key_set(0),
    ])));
    let xml = render_kms_response(&doc).expect("render");
    let v = vectors();
    let ks = &v["key_sets"][0];
    // UserID in lower case as in the published samples; keys in upper case.
    assert!(xml.contains(&format!(
        "<UserID>{}</UserID>",
        ks["UserID"].as_str().unwrap()
    )));
    assert!(xml.contains(&format!(
        "<UserSigningKeySSK>{}</UserSigningKeySSK>",
        ks["UserSigningKeySSK"]
            .as_str()
            .unwrap()
            .to_ascii_uppercase()
    )));
    let KmsResponseBody::Message(KmsMessageDoc::KeyProv(sets)) =
        parse_kms_response(xml.as_bytes()).unwrap().body
    else {
        panic!("not a KmsKeyProv")
    };
    assert_eq!(
        sets[0].user_decrypt_key.expose(),
        unhex(&ks["UserDecryptKey_RSK"]).as_slice()
    );
}

fn full_request() -> KmsRequestDoc {
    KmsRequestDoc {
        version: RequestVersion::V1_1_0,
        signed: false,
        user_uri: "sip:alice@example.org".into(),
        kms_uri: "kms.example.org".into(),
        time: Some(datetime!(2026-01-01 12:00:00 UTC)),
        client_id: Some("client-7".into()),
        device_id: Some("device <7> & co".into()),
        client_req_url: Some("https://kms.example.org/keymanagement/identity/v1/keyprov".into()),
        client_error: Some(KmsErrorDoc::new(KmsErrorCode::Other(17), "bad key set")),
        trk_id: Some("trk-1".into()),
        signature_id: Some("sig-1".into()),
    }
}

#[test]
fn requests_round_trip() {
    let doc = full_request();
    let xml = render_kms_request(&doc).expect("render");
    assert_eq!(parse_kms_request(xml.as_bytes()).unwrap(), Some(doc));
    let minimal = KmsRequestDoc {
        version: RequestVersion::V1_0_0,
        client_id: None,
        device_id: None,
        client_error: None,
        trk_id: None,
        signature_id: None,
        ..full_request()
    };
    let xml = render_kms_request(&minimal).expect("render");
    assert_eq!(parse_kms_request(xml.as_bytes()).unwrap(), Some(minimal));
}

fn parse_ok(xml: &str) -> KmsRequestDoc {
    parse_kms_request(xml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {xml}"))
        .unwrap_or_else(|| panic!("no document: {xml}"))
}

#[test]
fn request_parsing_is_liberal_where_clients_differ() {
    // No document at all: the path and the token say everything.
    for empty in [
        "",
        "  \r\n\t ",
        "\u{feff}",
        "<?xml version=\"1.0\"?>",
        "<!-- nothing -->\n",
    ] {
        assert_eq!(parse_kms_request(empty.as_bytes()), Ok(None), "{empty:?}");
    }
    // No namespace declared at all, Version absent (1.1.0 assumed), only the required fields.
    let r = parse_ok("<KmsRequest><UserUri>sip:a@x</UserUri><KmsUri>k</KmsUri></KmsRequest>");
    assert_eq!(
        (r.version, r.user_uri.as_str(), r.kms_uri.as_str()),
        (RequestVersion::V1_1_0, "sip:a@x", "k")
    );
    assert_eq!((r.time, r.client_req_url), (None, None));
    // Any declared prefix, an older Version, a zone-less Time, a URL as KmsUri, whitespace
    // around values, unknown elements (ours and others') skipped, CDATA and references.
    let r = parse_ok(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a client comment -->
<k:KmsRequest xmlns:k="{NS}" xmlns:x="urn:vendor" Version="1.0.0">
  <k:UserUri>
     sip:alice@example.org
  </k:UserUri>
  <k:KmsUri>https://kms.example.org:8443/keymanagement/identity/v1</k:KmsUri>
  <k:Time>2026-01-01T12:00:00.250</k:Time>
  <x:Vendor><x:Deep>ignored</x:Deep></x:Vendor>
  <k:ClientId><![CDATA[client <7>]]></k:ClientId>
  <k:DeviceId>d&#x41;&amp;&lt;</k:DeviceId>
  <k:Future>an element of a later schema</k:Future>
  <?processing instruction?>
</k:KmsRequest>"#
    ));
    assert_eq!(r.version, RequestVersion::V1_0_0);
    assert_eq!(r.user_uri, "sip:alice@example.org");
    assert_eq!(r.kms_uri_host(), "kms.example.org");
    assert_eq!(r.time, Some(datetime!(2026-01-01 12:00:00.25 UTC)));
    assert_eq!(r.client_id.as_deref(), Some("client <7>"));
    assert_eq!(r.device_id.as_deref(), Some("dA&<"));
    // A Time with an offset is taken to UTC.
    let r = parse_ok(&format!(
        r#"<KmsRequest xmlns="{NS}"><UserUri>u</UserUri><KmsUri>k</KmsUri><Time>2026-01-01T14:00:00+02:00</Time></KmsRequest>"#
    ));
    assert_eq!(r.time, Some(datetime!(2026-01-01 12:00:00 UTC)));
    // SignedKmsRequest: the signature is skipped, TrK-ID / Signature-ID read from the
    // request or from the wrapper.
    let r = parse_ok(&format!(
        r#"<SignedKmsRequest xmlns="{NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><KmsRequest><UserUri>u</UserUri><KmsUri>k</KmsUri></KmsRequest><TrK-ID>trk</TrK-ID><ds:Signature><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></SignedKmsRequest>"#
    ));
    assert!(r.signed);
    assert_eq!(r.trk_id.as_deref(), Some("trk"));
}

fn refused(xml: &str) -> XmlError {
    match parse_kms_request(xml.as_bytes()) {
        Err(e) => e,
        Ok(r) => panic!("accepted {r:?}: {xml}"),
    }
}

#[test]
fn request_parsing_refuses_what_it_cannot_read_unambiguously() {
    let body = "<UserUri>u</UserUri><KmsUri>k</KmsUri>";
    assert_eq!(
        refused(&format!(
            r#"<KmsRequest xmlns="urn:other">{body}</KmsRequest>"#
        )),
        XmlError::WrongNamespace
    );
    assert_eq!(
        refused(&format!(
            r#"<SignedKmsRequest xmlns="urn:other"><KmsRequest xmlns="{NS}">{body}</KmsRequest></SignedKmsRequest>"#
        )),
        XmlError::WrongNamespace
    );
    assert!(matches!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}" Version="2.0.0">{body}</KmsRequest>"#
        )),
        XmlError::UnsupportedVersion { .. }
    ));
    assert_eq!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}"><KmsUri>k</KmsUri></KmsRequest>"#
        )),
        XmlError::MissingElement("UserUri")
    );
    assert_eq!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}"><UserUri> </UserUri><KmsUri>k</KmsUri></KmsRequest>"#
        )),
        XmlError::MissingElement("UserUri")
    );
    assert_eq!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}"><UserUri>u</UserUri></KmsRequest>"#
        )),
        XmlError::MissingElement("KmsUri")
    );
    assert!(matches!(
        refused(&format!(
            r#"<KmsResponse xmlns="{NS}">{body}</KmsResponse>"#
        )),
        XmlError::UnexpectedRoot(_)
    ));
    assert!(matches!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}">{body}<Time>yesterday</Time></KmsRequest>"#
        )),
        XmlError::InvalidValue { field: "Time", .. }
    ));
    // Duplicates of single-valued elements: which one was meant?
    for (extra, name) in [
        ("<UserUri>other</UserUri>", "UserUri"),
        ("<KmsUri>other</KmsUri>", "KmsUri"),
        (
            "<Time>2026-01-01T00:00:00Z</Time><Time>2027-01-01T00:00:00Z</Time>",
            "Time",
        ),
        ("<ClientId>a</ClientId><ClientId>b</ClientId>", "ClientId"),
        ("<TrK-ID>a</TrK-ID><TrK-ID>b</TrK-ID>", "TrK-ID"),
        (
            "<ClientError><ErrorCode>1</ErrorCode><ErrorCode>2</ErrorCode></ClientError>",
            "ErrorCode",
        ),
    ] {
        assert_eq!(
            refused(&format!(
                r#"<KmsRequest xmlns="{NS}">{body}{extra}</KmsRequest>"#
            )),
            XmlError::DuplicateElement(name),
            "{extra}"
        );
    }
    // Unknown elements may repeat: they are not ours to interpret.
    parse_ok(&format!(
        r#"<KmsRequest xmlns="{NS}">{body}<Ext>1</Ext><Ext>2</Ext></KmsRequest>"#
    ));
    // Undeclared prefixes, on elements and attributes, at any depth.
    for xml in [
        format!(r#"<k:KmsRequest>{body}</k:KmsRequest>"#),
        format!(
            r#"<KmsRequest xmlns="{NS}"><k:UserUri>u</k:UserUri><KmsUri>k</KmsUri></KmsRequest>"#
        ),
        format!(r#"<KmsRequest xmlns="{NS}" v:Version="1.1.0">{body}</KmsRequest>"#),
        format!(
            r#"<KmsRequest xmlns="{NS}">{body}<A xmlns:p="urn:p"><p:B/></A><p:C/></KmsRequest>"#
        ),
    ] {
        assert!(
            matches!(refused(&xml), XmlError::UndeclaredPrefix(_)),
            "{xml}"
        );
    }
    // Duplicate attributes are not well-formed.
    assert!(matches!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}" Version="1.1.0" Version="1.0.0">{body}</KmsRequest>"#
        )),
        XmlError::Malformed(_)
    ));
}

const BODY: &str = "<UserUri>u</UserUri><KmsUri>k</KmsUri>";

#[test]
fn hostile_doctype_and_entities_are_refused() {
    // Billion laughs: refused at the DOCTYPE, before any entity could be declared.
    let laughs = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<KmsRequest xmlns="{NS}"><UserUri>&lol2;</UserUri><KmsUri>k</KmsUri></KmsRequest>"#
    );
    assert_eq!(refused(&laughs), XmlError::DocTypeForbidden);
    // XXE: an external entity naming a local file.
    let xxe = format!(
        r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><KmsRequest xmlns="{NS}"><UserUri>&xxe;</UserUri><KmsUri>k</KmsUri></KmsRequest>"#
    );
    assert_eq!(refused(&xxe), XmlError::DocTypeForbidden);
    // A bare DOCTYPE, even without an internal subset.
    assert_eq!(
        refused(&format!(
            r#"<!DOCTYPE KmsRequest SYSTEM "http://attacker.example/k.dtd"><KmsRequest xmlns="{NS}">{BODY}</KmsRequest>"#
        )),
        XmlError::DocTypeForbidden
    );
    // An entity reference without a DTD: in text and in an attribute.
    assert_eq!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}"><UserUri>&xxe;</UserUri><KmsUri>k</KmsUri></KmsRequest>"#
        )),
        XmlError::EntityForbidden("xxe".into())
    );
    assert!(matches!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}" Version="&v;">{BODY}</KmsRequest>"#
        )),
        XmlError::Malformed(_)
    ));
    // Characters XML 1.0 does not allow, as references or raw, in text or attributes.
    for bad in [
        "&#0;",
        "&#1;",
        "&#x1B;",
        "&#xD800;",
        "&#x110000;",
        "&#xFFFF;",
        "\u{1}",
        "\u{1b}[2J",
        "\u{fffe}",
    ] {
        assert!(
            matches!(
                refused(&format!(
                    r#"<KmsRequest xmlns="{NS}"><UserUri>u{bad}</UserUri><KmsUri>k</KmsUri></KmsRequest>"#
                )),
                XmlError::Malformed(_)
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        refused(&format!(
            r#"<KmsRequest xmlns="{NS}" Version="1.1.0&#x7;">{BODY}</KmsRequest>"#
        )),
        XmlError::Malformed(_)
    ));
}

/// A request whose deepest element is at nesting level `depth` (the request is level 1).
fn nested(depth: usize) -> String {
    format!(
        r#"<KmsRequest xmlns="{NS}">{BODY}{}{}</KmsRequest>"#,
        "<X>".repeat(depth - 1),
        "</X>".repeat(depth - 1)
    )
}

#[test]
fn hostile_depth_count_and_size_are_bounded() {
    // The deepest accepted document has MAX_DEPTH levels; one more is refused.
    parse_ok(&nested(MAX_DEPTH));
    assert_eq!(
        refused(&nested(MAX_DEPTH + 1)),
        XmlError::TooDeep { max: MAX_DEPTH }
    );
    // Very deep nesting is refused early, without recursion.
    let deep = format!(
        r#"<KmsRequest xmlns="{NS}">{}"#,
        "<X>".repeat(MAX_REQUEST_BYTES / 4)
    );
    assert_eq!(refused(&deep), XmlError::TooDeep { max: MAX_DEPTH });
    // Element count: MAX_ELEMENTS in all is accepted, one more is refused.
    let siblings = |n: usize| {
        format!(
            r#"<KmsRequest xmlns="{NS}">{BODY}{}</KmsRequest>"#,
            "<a/>".repeat(n)
        )
    };
    parse_ok(&siblings(MAX_ELEMENTS - 3));
    assert_eq!(
        refused(&siblings(MAX_ELEMENTS - 2)),
        XmlError::TooManyElements { max: MAX_ELEMENTS }
    );
    // Size: the byte limit is checked before parsing anything.
    let padded = |n: usize| {
        let head = format!(r#"<KmsRequest xmlns="{NS}">{BODY}<Pad>"#);
        let tail = "</Pad></KmsRequest>";
        format!("{head}{}{tail}", "p".repeat(n - head.len() - tail.len()))
    };
    parse_ok(&padded(MAX_REQUEST_BYTES));
    assert_eq!(
        refused(&padded(MAX_REQUEST_BYTES + 1)),
        XmlError::TooLarge {
            len: MAX_REQUEST_BYTES + 1,
            max: MAX_REQUEST_BYTES
        }
    );
    let garbage = vec![b'<'; MAX_REQUEST_BYTES + 1];
    assert!(matches!(
        parse_kms_request(&garbage),
        Err(XmlError::TooLarge { .. })
    ));
}

#[test]
fn malformed_documents_are_refused() {
    let cases: Vec<Vec<u8>> = vec![
        // Not UTF-8 (Latin-1 é), and UTF-16.
        format!("<KmsRequest xmlns=\"{NS}\"><UserUri>\u{e9}</UserUri></KmsRequest>")
            .replace('\u{e9}', "\u{0}")
            .into_bytes()
            .into_iter()
            .map(|b| if b == 0 { 0xE9 } else { b })
            .collect(),
        "<KmsRequest/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
        // Two roots, text outside the root, truncated, mismatched end tag.
        format!(r#"<KmsRequest xmlns="{NS}">{BODY}</KmsRequest><KmsRequest/>"#).into_bytes(),
        format!(r#"hello<KmsRequest xmlns="{NS}">{BODY}</KmsRequest>"#).into_bytes(),
        format!(r#"<KmsRequest xmlns="{NS}">{BODY}"#).into_bytes(),
        format!(r#"<KmsRequest xmlns="{NS}">{BODY}</KmsRequesT>"#).into_bytes(),
        b"<KmsRequest xmlns=urn:x>".to_vec(),
    ];
    for (i, xml) in cases.iter().enumerate() {
        assert!(
            parse_kms_request(xml).is_err(),
            "case {i}: {}",
            String::from_utf8_lossy(xml)
        );
    }
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let xml = render_kms_request(&full_request()).unwrap();
    // Without the final newline: every shorter prefix cuts into the document.
    let bytes = xml.trim_end().as_bytes();
    for end in 0..bytes.len() {
        // Every proper prefix either has no element yet or is refused; none panics.
        match parse_kms_request(&bytes[..end]) {
            Ok(None) | Err(_) => {}
            Ok(Some(r)) => panic!("a truncated document was read: {r:?}"),
        }
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 1 << bit;
            let _ = parse_kms_request(&flipped);
        }
    }
    let response = render_kms_response(&response(KmsResponseBody::Message(
        KmsMessageDoc::KeyProv(vec![interop_key_set(1)]),
    )))
    .unwrap();
    let bytes = response.as_bytes();
    for end in (0..bytes.len()).step_by(7) {
        assert!(parse_kms_response(&bytes[..end]).is_err());
    }
}

#[test]
fn rendering_refuses_what_xml_cannot_carry() {
    for bad in ["sip:a\u{0}@x", "sip:a\u{1b}@x", "sip:a\u{fffe}@x"] {
        let mut doc = response(KmsResponseBody::Error(KmsErrorDoc::new(
            KmsErrorCode::BadRequest,
            "x",
        )));
        doc.user_uri = bad.into();
        assert!(
            matches!(
                render_kms_response(&doc),
                Err(XmlError::InvalidValue {
                    field: "UserUri",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    // A URL is not a KMS URI; an empty value is never an empty element.
    let mut doc = response(KmsResponseBody::Error(KmsErrorDoc::new(
        KmsErrorCode::BadRequest,
        "x",
    )));
    doc.kms_uri = "https://kms.example.org".into();
    assert!(render_kms_response(&doc).is_err());
    doc.kms_uri = " ".into();
    assert!(render_kms_response(&doc).is_err());
}
