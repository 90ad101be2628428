pub mod audit;
pub mod auth;
pub mod crypto;
