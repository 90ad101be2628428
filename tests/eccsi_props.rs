//! Property tests: ECCSI sign/verify round trips for random identifiers and messages, and
//! rejection under another identifier or message.

use std::sync::OnceLock;

use proptest::prelude::*;
use ring::rand::SystemRandom;
use sealkm::crypto::eccsi::{issue, verify, EccsiMasterSecret, EccsiSigner, EccsiVerifier};
use sealkm::crypto::CryptoError;

fn master() -> &'static EccsiMasterSecret {
    static M: OnceLock<EccsiMasterSecret> = OnceLock::new();
    M.get_or_init(|| EccsiMasterSecret::generate(&SystemRandom::new()).expect("master"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sign_verify_round_trip(
        id in proptest::collection::vec(any::<u8>(), 0..80),
        other_id in proptest::collection::vec(any::<u8>(), 0..80),
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        other_msg in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let rng = SystemRandom::new();
        let m = master();
        let kpak = m.kpak();
        let (ssk, pvt) = issue(m, &id).expect("issue");
        let signer = EccsiSigner::new(&kpak, &id, &ssk, &pvt).expect("issued pair validates");
        let sig = signer.sign(&msg, &rng).expect("sign");
        prop_assert_eq!(verify(&kpak, &id, &msg, &sig), Ok(()));
        let cached = EccsiVerifier::new(&kpak, &id, &pvt).expect("verifier");
        prop_assert_eq!(cached.verify(&msg, &sig), Ok(()));

        if other_id != id {
            prop_assert_eq!(verify(&kpak, &other_id, &msg, &sig), Err(CryptoError::BadSignature));
            let wrong = EccsiVerifier::new(&kpak, &other_id, &pvt).expect("verifier");
            prop_assert_eq!(wrong.verify(&msg, &sig), Err(CryptoError::BadSignature));
        }
        if other_msg != msg {
            prop_assert_eq!(verify(&kpak, &id, &other_msg, &sig), Err(CryptoError::BadSignature));
            prop_assert_eq!(cached.verify(&other_msg, &sig), Err(CryptoError::BadSignature));
        }
    }

    #[test]
    fn any_flipped_bit_is_rejected(
        msg in proptest::collection::vec(any::<u8>(), 0..64),
        bit in 0usize..(129 * 8),
    ) {
        let rng = SystemRandom::new();
        let m = master();
        let kpak = m.kpak();
        let id = b"2025-10\0tel:+447700900123\0";
        let (ssk, pvt) = issue(m, id).expect("issue");
        let signer = EccsiSigner::new(&kpak, id, &ssk, &pvt).expect("validates");
        let mut sig = signer.sign(&msg, &rng).expect("sign");
        sig[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(verify(&kpak, id, &msg, &sig), Err(CryptoError::BadSignature));
    }
}
