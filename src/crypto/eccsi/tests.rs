//! Pair validation (RFC 6507 §5.1.2) with a KPAK's fixed-base table gives the RFC form's
//! verdicts, and the table cache builds a table at a KPAK's second validation.

use ring::rand::SystemRandom;

use super::kpak_tables::{KpakTables, CAPACITY};
use super::*;

fn master() -> EccsiMasterSecret {
    EccsiMasterSecret::generate(&SystemRandom::new()).expect("master")
}

#[test]
fn validation_with_the_kpak_table_agrees_with_the_rfc_form() {
    let m = master();
    let other = master();
    let kpak = m.kpak();
    let bytes = kpak.to_bytes();
    let kpak_point = kpak.0.to_point();
    let table = ec256::base_table_vartime(&kpak_point).expect("table");
    for i in 0..16u8 {
        let id = [b'u', i];
        let (ssk, pvt) = issue(&m, &id).expect("issue");
        let (ssk2, pvt2) = issue(&m, &[b'v', i]).expect("issue");
        let (ssk_other, _) = issue(&other, &id).expect("issue");
        let cases = [
            (&ssk, &pvt, true),
            (&ssk2, &pvt, false),
            (&ssk, &pvt2, false),
            (&ssk_other, &pvt, false),
        ];
        for (ssk, pvt, valid) in cases {
            let hs = reduce_bytes(&hs_bytes(&bytes, &id, &pvt.to_bytes()));
            assert_eq!(pair_holds(&kpak_point, ssk, &hs, pvt), valid);
            assert_eq!(
                pair_holds_with_table(&table, &kpak_point, ssk, &hs, pvt),
                valid
            );
        }
    }
    // Through the public API (the process's cache): both paths accept the pair and refuse it
    // under another identifier.
    let (ssk, pvt) = issue(&m, b"alice").expect("issue");
    for _ in 0..3 {
        EccsiSigner::new(&kpak, b"alice", &ssk, &pvt).expect("valid pair");
        assert_eq!(
            EccsiSigner::new(&kpak, b"bob", &ssk, &pvt).err(),
            Some(CryptoError::InvalidEccsiKeyPair)
        );
    }
}

#[test]
fn a_table_is_built_at_the_second_sighting_and_the_cache_is_bounded() {
    let cache = KpakTables::new();
    let kpaks: Vec<Kpak> = (0..=CAPACITY).map(|_| master().kpak()).collect();
    let (first, rest) = kpaks.split_first().expect("kpaks");
    let b = first.to_bytes();
    assert!(cache.table(&first.0.to_point(), &b).is_none());
    assert!(!cache.has_table(&b));
    let t = cache
        .table(&first.0.to_point(), &b)
        .expect("built at the second sighting");
    assert!(cache.has_table(&b));
    // The table computes multiples of the KPAK.
    let k = reduce_bytes(&[0x5Au8; 32]);
    let by_table = ec256::mul_table_vartime(&t, &k);
    let by_lincomb = ec256::lincomb_vartime(None, &[(first.0.to_point(), k)]);
    assert!(bool::from(ec256::eq(&by_table, &by_lincomb)));
    // CAPACITY newer KPAKs push it out.
    for kp in rest {
        assert!(cache.table(&kp.0.to_point(), &kp.to_bytes()).is_none());
    }
    assert!(!cache.has_table(&b));
    assert!(cache.table(&first.0.to_point(), &b).is_none());
}
