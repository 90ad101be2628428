use super::*;
use crate::kms::master::MasterSecrets;
use crate::kms::xml::{parse_certificate_document, render_certificate_document, XmlError};

const NOW: u64 = 1_800_000_000;

fn doc(cert_uri: &str) -> KmsCertificateDoc {
    let m = MasterSecrets::generate(&ring::rand::SystemRandom::new()).unwrap();
    KmsCertificateDoc {
        version: KMS_CERTIFICATE_VERSION.to_owned(),
        role: CertRole::Root,
        is_security_gateway: None,
        cert_uri: Some(cert_uri.to_owned()),
        kms_uri: "kms.b.test".to_owned(),
        issuer: Some("kms.b.test".to_owned()),
        valid_from: odt(NOW - 10),
        valid_to: odt(NOW + 86_400),
        revoked: Some(false),
        user_id_format: "2".to_owned(),
        user_key_period: 2_592_000,
        user_key_offset: 0,
        pub_enc_key: m.z_pub.to_bytes(),
        pub_auth_key: m.kpak.to_bytes().to_vec(),
        parameter_set: Some(1),
        kms_domains: vec!["B.test".to_owned()],
    }
}

fn ours() -> (Vec<String>, Vec<String>) {
    (vec!["kms.a.test".to_owned()], vec!["a.test".to_owned()])
}

fn import(d: &KmsCertificateDoc) -> Result<PartnerCertificate, PartnerError> {
    let (k, dm) = ours();
    let o = Ours {
        kms_uris: &k,
        domains: &dm,
    };
    PartnerCertificate::from_document(d, &o, Vec::new(), NOW)
}

#[test]
fn a_partner_certificate_is_accepted_with_its_fields() {
    let d = doc("kms.b.test/cert/1");
    let p = import(&d).unwrap();
    assert_eq!(p.id, "kms.b.test/cert/1");
    assert_eq!(p.kms_domains, vec!["b.test"]);
    assert_eq!(p.valid_to_unix, NOW + 86_400);
    assert!(p.is_valid_at(NOW));
    assert!(p.served_to("kms.a.test", NOW));
    let back = partner_doc(&p);
    assert_eq!(back.role, CertRole::External);
    assert_eq!(back.pub_enc_key, d.pub_enc_key);
    assert_eq!(back.kms_domains, vec!["b.test"]);
}

#[test]
fn every_import_check_refuses_its_case() {
    let base = doc("kms.b.test/cert/1");
    type Change = Box<dyn Fn(&mut KmsCertificateDoc)>;
    let cases: Vec<(&str, Change)> = vec![
        ("our KMS URI", Box::new(|d| d.kms_uri = "KMS.a.test".into())),
        (
            "our domain",
            Box::new(|d| d.kms_domains = vec!["a.test".into()]),
        ),
        (
            "bad domain",
            Box::new(|d| d.kms_domains = vec!["a b".into()]),
        ),
        ("parameter set", Box::new(|d| d.parameter_set = Some(2))),
        ("UID format", Box::new(|d| d.user_id_format = "1".into())),
        ("period 0", Box::new(|d| d.user_key_period = 0)),
        ("KPAK", Box::new(|d| d.pub_auth_key[40] ^= 1)),
        ("Z", Box::new(|d| d.pub_enc_key[100] ^= 1)),
        ("Z short", Box::new(|d| d.pub_enc_key.truncate(200))),
        ("revoked", Box::new(|d| d.revoked = Some(true))),
        ("no ValidTo", Box::new(|d| d.valid_to = None)),
        ("ended", Box::new(|d| d.valid_to = odt(NOW))),
        ("reversed", Box::new(|d| d.valid_from = odt(NOW + 90_000))),
        (
            "control in CertUri",
            Box::new(|d| d.cert_uri = Some("a\nb".into())),
        ),
        (
            "KMS URI with '/'",
            Box::new(|d| d.kms_uri = "kms.b.test/x".into()),
        ),
    ];
    for (what, change) in cases {
        let mut d = base.clone();
        change(&mut d);
        assert!(import(&d).is_err(), "{what} was accepted");
    }
    assert!(import(&base).is_ok());
}

#[test]
fn imports_are_checked_against_the_known_partners() {
    let first = import(&doc("kms.b.test/cert/1")).unwrap();
    let known = vec![first.clone()];
    // The same certificate again: only its sharing may change.
    let mut again = first.clone();
    again.communities = vec!["kms.a.test".into()];
    again.imported_unix += 5;
    assert_eq!(
        check_import(&known, &again, false, NOW),
        Ok(ImportPlan::Reshare)
    );
    // The same id with other content.
    let mut changed = first.clone();
    changed.user_key_offset = 7;
    assert_eq!(
        check_import(&known, &changed, false, NOW),
        Err(PartnerError::ChangedContent(first.id.clone()))
    );
    // New keys for the partner: only as a rotation.
    let rotated = import(&doc("kms.b.test/cert/2")).unwrap();
    assert_eq!(
        check_import(&known, &rotated, false, NOW),
        Err(PartnerError::RotationRequired("kms.b.test".into()))
    );
    assert_eq!(
        check_import(&known, &rotated, true, NOW),
        Ok(ImportPlan::Add)
    );
    // Once the old one has ended (or is revoked), a new one needs no rotation flag.
    assert_eq!(
        check_import(&known, &rotated, false, NOW + 86_400),
        Ok(ImportPlan::Add)
    );
    let mut revoked = first.clone();
    revoked.revoked = true;
    assert_eq!(
        check_import(std::slice::from_ref(&revoked), &rotated, false, NOW),
        Ok(ImportPlan::Add)
    );
    assert_eq!(
        check_import(std::slice::from_ref(&revoked), &first, false, NOW),
        Err(PartnerError::AlreadyRevoked(first.id.clone()))
    );
    // A rotation with nothing to rotate from.
    assert_eq!(
        check_import(&[], &rotated, true, NOW),
        Err(PartnerError::NothingToRotate("kms.b.test".into()))
    );
}

#[test]
fn the_document_round_trips_and_is_read_strictly() {
    let p = import(&doc("kms.b.test/cert/1")).unwrap();
    let xml = render_certificate_document(&partner_doc(&p)).unwrap();
    assert!(xml.contains("xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\""));
    let back = parse_certificate_document(xml.as_bytes()).unwrap();
    assert_eq!(import(&back).unwrap(), p);

    // Children out of schema order.
    let swapped = xml.replace("<CertUri>kms.b.test/cert/1</CertUri>", "");
    let swapped = swapped.replace(
        "</KmsUri>",
        "</KmsUri>\n  <CertUri>kms.b.test/cert/1</CertUri>",
    );
    assert!(matches!(
        parse_certificate_document(swapped.as_bytes()),
        Err(XmlError::InvalidValue { .. })
    ));
    // No namespace, a duplicate, another root.
    let bare = xml.replace(" xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"", "");
    assert_eq!(
        parse_certificate_document(bare.as_bytes()),
        Err(XmlError::WrongNamespace)
    );
    let dup = xml.replace("</KmsUri>", "</KmsUri><KmsUri>kms.c.test</KmsUri>");
    assert_eq!(
        parse_certificate_document(dup.as_bytes()),
        Err(XmlError::DuplicateElement("KmsUri"))
    );
    assert!(matches!(
        parse_certificate_document(b"<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"/>"),
        Err(XmlError::UnexpectedRoot(_))
    ));
}

#[test]
fn a_refresh_stages_what_is_new_and_revokes_what_the_partner_revoked() {
    let one = import(&doc("kms.b.test/cert/1")).unwrap();
    let two = import(&doc("kms.b.test/cert/2")).unwrap();
    let known = vec![one.clone()];
    // Known and identical: nothing. New: staged. Already staged identical: nothing.
    let (a, r) = reconcile(&known, &[], &[one.clone(), two.clone()], &[]);
    assert_eq!(a, vec![Reconcile::Stage(Box::new(two.clone()))]);
    assert!(r.is_empty());
    let (a, _) = reconcile(
        &known,
        std::slice::from_ref(&two),
        std::slice::from_ref(&two),
        &[],
    );
    assert!(a.is_empty());
    // A known id with other content is refused, never staged.
    let mut changed = one.clone();
    changed.user_key_offset = 9;
    let (a, r) = reconcile(&known, &[], &[changed], &[]);
    assert!(a.is_empty());
    assert_eq!(r, vec![PartnerError::ChangedContent(one.id.clone())]);
    // Revoked by the partner: revoked here once.
    let (a, _) = reconcile(&known, &[], &[], &[one.id.clone(), "unknown".into()]);
    assert_eq!(a, vec![Reconcile::Revoke(one.id.clone())]);
    let mut revoked = one.clone();
    revoked.revoked = true;
    let (a, _) = reconcile(&[revoked], &[], &[], std::slice::from_ref(&one.id));
    assert!(a.is_empty());
    // An approval may change the keys; a first certificate needs no rotation.
    assert_eq!(check_approval(&known, &two, NOW), Ok(ImportPlan::Add));
    assert_eq!(check_approval(&[], &two, NOW), Ok(ImportPlan::Add));
    assert_eq!(
        certificate_id(&doc("kms.b.test/cert/7")),
        "kms.b.test/cert/7"
    );
}
