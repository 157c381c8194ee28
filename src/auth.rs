//! API keys: `hp_test_…` (test mode) and `hp_live_…`, shown once and stored only as hashes.

use sha2::{Digest, Sha256};

use crate::domain::ids::random_token;

/// Who a key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Agent(crate::domain::ids::AgentId),
    Worker(crate::domain::ids::WorkerId),
    Operator,
}

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Agent,
    Worker,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Worker => "worker",
            Role::Operator => "operator",
        }
    }
}

/// A new random key. `live` keys are for real money; test keys for test-mode funds.
pub fn generate_key(live: bool) -> String {
    let mode = if live { "live" } else { "test" };
    format!("hp_{mode}_{}", random_token(24))
}

/// The form a key is stored and looked up in.
pub fn hash_key(key: &str) -> String {
    sha256_hex(key.trim().as_bytes())
}

/// The first characters of a key, safe to show and log.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether text looks like a HumanPing key at all (before any lookup).
pub fn looks_like_key(key: &str) -> bool {
    let key = key.trim();
    (key.starts_with("hp_test_") || key.starts_with("hp_live_"))
        && key.len() <= 100
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let key = generate_key(false);
        assert!(key.starts_with("hp_test_") && looks_like_key(&key));
        assert_ne!(key, generate_key(false));
        assert_eq!(hash_key(&key).len(), 64);
        assert_ne!(hash_key(&key), key);
        assert!(!looks_like_key("sk_test_abc"));
        assert!(generate_key(true).starts_with("hp_live_"));
    }
}
