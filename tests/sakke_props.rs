//! Property tests for SAKKE (RFC 6508 §6.1–6.2) with fresh KMS master secrets and random
//! identities. Every case runs pairings, so the case count is kept at 16.

use proptest::prelude::*;
use ring::rand::SystemRandom;
use sealkm::crypto::sakke::{
    decapsulate, encapsulate, encapsulate_random, issue_rsk, validate_rsk, SakkeMasterSecret,
};
use sealkm::crypto::secret::SecretBytes;
use sealkm::crypto::CryptoError;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn issue_validate_encapsulate_decapsulate(
        id in proptest::collection::vec(any::<u8>(), 1..200),
        other in proptest::collection::vec(any::<u8>(), 32..33),
        ssv in any::<[u8; 16]>(),
    ) {
        prop_assume!(id != other);
        let rng = SystemRandom::new();
        let master = SakkeMasterSecret::generate(&rng).unwrap();
        let z = master.public_key();
        // Master secret survives its encoding.
        let again = SakkeMasterSecret::from_bytes(master.to_bytes().expose()).unwrap();
        prop_assert_eq!(again.public_key(), z.clone());

        let rsk = issue_rsk(&master, &id).unwrap();
        validate_rsk(&z, &id, &rsk).unwrap();
        let rsk_other = issue_rsk(&master, &other).unwrap();
        prop_assert_eq!(validate_rsk(&z, &id, &rsk_other), Err(CryptoError::InvalidRsk));

        let ssv = SecretBytes::new(ssv);
        let data = encapsulate(&z, &id, &ssv).unwrap();
        prop_assert_eq!(data.len(), 273);
        prop_assert_eq!(decapsulate(&z, &id, &rsk, &data).unwrap(), ssv);
        // Another identity's RSK (same KMS) cannot open it, nor can the right RSK under
        // the wrong identifier.
        prop_assert_eq!(decapsulate(&z, &other, &rsk_other, &data), Err(CryptoError::DecapsulationFailed));
        prop_assert_eq!(decapsulate(&z, &id, &rsk_other, &data), Err(CryptoError::DecapsulationFailed));

        let (ssv2, data2) = encapsulate_random(&z, &other, &rng).unwrap();
        prop_assert_eq!(decapsulate(&z, &other, &rsk_other, &data2).unwrap(), ssv2);
    }
}
