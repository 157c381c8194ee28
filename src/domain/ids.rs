//! Identifiers: a short prefix naming what they identify, then 26 random base-32 characters.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Self {
                $name(format!("{}_{}", $prefix, random_token(16)))
            }

            /// Accepts text only if it looks like an id of this type.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?.strip_prefix('_')?;
                let plausible = !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric());
                plausible.then(|| $name(text.to_owned()))
            }

            /// Wraps text read back from the database.
            pub(crate) fn from_db(text: String) -> Self {
                $name(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies an agent (a customer that posts tasks).
    AgentId, "agt"
);
id_type!(
    /// Identifies a human worker.
    WorkerId, "wkr"
);
id_type!(
    /// Identifies a task.
    TaskId, "task"
);
id_type!(
    /// Identifies one worker's slot of a task.
    AssignmentId, "asg"
);

/// `bytes` random bytes from the operating system, as lowercase base-32 text.
pub fn random_token(bytes: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the operating system's random source is available");
    let mut out = String::with_capacity(bytes * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in raw {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_parse_back() {
        let id = TaskId::generate();
        assert!(id.as_str().starts_with("task_"));
        assert_eq!(TaskId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(AgentId::parse(id.as_str()), None);
        assert_eq!(TaskId::parse("task_"), None);
        assert_eq!(TaskId::parse("task_a'b"), None);
        assert_ne!(TaskId::generate(), TaskId::generate());
    }

    #[test]
    fn tokens_have_the_expected_length() {
        assert_eq!(random_token(16).len(), 26);
        assert_eq!(random_token(32).len(), 52);
    }
}
