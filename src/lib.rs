pub mod crypto;
pub mod kms;
