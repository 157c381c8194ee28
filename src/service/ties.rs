//! Signs that a worker account belongs to the agent whose task it answers: the same contact
//! email, or requests from the same public network address. An agent paying itself through a
//! worker account could launder money or fake a track record, so such a result is flagged.
//!
//! Addresses are kept only as salted SHA-256 hashes (the salt is made once per installation by
//! the schema migration). Loopback, private, link-local and other non-public addresses are not
//! recorded: behind a proxy or on one machine every caller shares them, and they would tie
//! everybody to everybody.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sqlx::AnyConnection;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use crate::domain::ids::{AgentId, WorkerId};

// Limitation: behind a reverse proxy the peer address is the proxy's, and X-Forwarded-For is
// not read, so only the email tie works there.

/// How many (principal, address) pairs are remembered as recorded before the memory is
/// cleared; it only saves repeated writes.
const SEEN_CAPACITY: usize = 10_000;
/// A pair is written again after this long, to keep `last_seen` roughly current.
const REFRESH_MS: i64 = 60 * 60 * 1000;

/// The pairs recorded lately in this process, with when.
#[derive(Default)]
pub(super) struct SeenAddresses(Mutex<HashMap<(String, IpAddr), i64>>);

/// Whether an address is a public one, worth recording.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

impl HumanPing {
    /// Notes that a request of `principal` (an agent or worker id) came from `ip`. Cheap to
    /// call on every request: non-public addresses are ignored and repeats within an hour are
    /// not written again.
    pub async fn note_address(&self, principal: &str, ip: IpAddr) -> ServiceResult<()> {
        if !is_public(ip) {
            return Ok(());
        }
        let now = self.clock.now_ms();
        {
            let mut seen = self.seen_addresses.0.lock().expect("poisoned");
            let key = (principal.to_owned(), ip);
            if seen.get(&key).is_some_and(|at| now - at < REFRESH_MS) {
                return Ok(());
            }
            if seen.len() >= SEEN_CAPACITY {
                seen.clear();
            }
            seen.insert(key, now);
        }
        let salt: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'address_salt'")
                .fetch_one(self.store.pool())
                .await?;
        let hash = crate::auth::sha256_hex(format!("{salt}:{ip}").as_bytes());
        sqlx::query(
            "INSERT INTO principal_addresses (principal_id, address_hash, first_seen, last_seen) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (principal_id, address_hash) \
             DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(principal)
        .bind(hash)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Sets the contact email of an agent or a worker (`agt_…` or `wkr_…`), or clears it.
    pub async fn set_email(&self, principal: &str, email: Option<&str>) -> ServiceResult<()> {
        let email = email.map(normalise_email).transpose()?;
        let table = if AgentId::parse(principal).is_some() {
            "agents"
        } else if WorkerId::parse(principal).is_some() {
            "workers"
        } else {
            return Err(ServiceError::invalid(format!(
                "{principal:?} is neither an agent id (agt_…) nor a worker id (wkr_…)"
            )));
        };
        let done = sqlx::query(&format!("UPDATE {table} SET email = $1 WHERE id = $2"))
            .bind(email)
            .bind(principal)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServiceError::not_found(format!("no account {principal}")));
        }
        Ok(())
    }
}

/// Lower-cases an email address and checks its shape.
pub fn normalise_email(email: &str) -> ServiceResult<String> {
    let email = email.trim().to_lowercase();
    let plausible = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if plausible {
        Ok(email)
    } else {
        Err(ServiceError::invalid(format!(
            "{email:?} is not an email address; give one like name@example.com"
        )))
    }
}

/// What ties a worker to an agent, in words, if anything does.
pub(super) async fn tie(
    conn: &mut AnyConnection,
    agent: &AgentId,
    worker: &WorkerId,
) -> ServiceResult<Option<String>> {
    let same_email: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM agents a JOIN workers w ON w.email = a.email \
         WHERE a.id = $1 AND w.id = $2 AND a.email IS NOT NULL",
    )
    .bind(agent.as_str())
    .bind(worker.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if same_email.is_some() {
        return Ok(Some(
            "this worker account has the same email address as the agent that posted the task"
                .into(),
        ));
    }
    let shared: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM principal_addresses p JOIN principal_addresses q \
         ON q.address_hash = p.address_hash WHERE p.principal_id = $1 AND q.principal_id = $2",
    )
    .bind(agent.as_str())
    .bind(worker.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok((shared > 0).then(|| {
        format!(
            "this worker account and the agent that posted the task used the same public \
             network address ({shared} in common)"
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_recorded() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.7",
            "172.20.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "203.0.113.9",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:198.51.100.2",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn emails_are_folded_and_checked() {
        assert_eq!(
            normalise_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "ann", "ann@example", "@example.com", "a b@example.com"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }
}
