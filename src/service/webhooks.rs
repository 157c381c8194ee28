//! Webhooks to agents: when a task with a `callback_url` changes state, the change is written
//! as an event in the same transaction, and a background loop POSTs it.
//!
//! - Signed: `HumanPing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with
//!   the agent's webhook secret, so the agent can check the sender and refuse old replays.
//! - Idempotent by event id (`HumanPing-Event-Id`, and `id` in the body): a change makes one
//!   event, retried until a 2xx answer; receivers drop ids they have seen.
//! - Retried with exponential backoff (10 s, 20 s, 40 s … at most an hour apart), given up after
//!   12 attempts.
//! - Never sent to loopback, private, link-local or other non-public addresses unless the
//!   operator allows it: the URL is checked when the task is created, and every address its host
//!   resolves to is checked again at delivery, where the connection is pinned to the checked
//!   address. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::{AnyConnection, Row};

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::rows::{TaskRow, task_view};
use crate::domain::ids::random_token;

const MAX_ATTEMPTS: i64 = 12;
const FIRST_RETRY_SECS: i64 = 10;
const LONGEST_RETRY_SECS: i64 = 3_600;
/// How long a delivery may take before another loop may try the event again.
const DELIVERY_LEASE_MS: i64 = 60_000;
const BATCH: i64 = 20;

/// Checks a callback URL: http(s), a host, at most 2000 characters, and — unless private
/// targets are allowed — not an address or name that points inside the machine or network.
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, String> {
    if text.len() > 2_000 {
        return Err("callback_url is longer than 2000 characters".into());
    }
    let url =
        url::Url::parse(text).map_err(|e| format!("callback_url {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "callback_url must be http or https, not {}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("callback_url must not carry a user name or password".into());
    }
    let host = url
        .host()
        .ok_or_else(|| "callback_url has no host".to_owned())?;
    if allow_private {
        return Ok(url);
    }
    let refused = |what: &str| {
        Err(format!(
            "callback_url points at {what}; webhooks go only to public addresses \
             (an operator can allow private ones)"
        ))
    };
    match host {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => refused("a non-public address"),
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => refused("a non-public address"),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let internal = [
                "localhost",
                "local",
                "internal",
                "localdomain",
                "home",
                "lan",
            ];
            let last = name.rsplit('.').next().unwrap_or("");
            if name == "localhost" || internal.contains(&last) || !name.contains('.') {
                refused("a local name")
            } else {
                Ok(url)
            }
        }
        _ => Ok(url),
    }
}

/// Whether an address is on the public internet.
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
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240)
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
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// The signature header for `body` sent at `unix_secs`.
pub fn signature(secret: &str, unix_secs: i64, body: &str) -> String {
    format!(
        "t={unix_secs},v1={}",
        hmac_hex(secret.as_bytes(), format!("{unix_secs}.{body}").as_bytes())
    )
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A new webhook secret for an agent.
pub(crate) fn new_secret() -> String {
    format!("whsec_{}", random_token(24))
}

/// Records the event for a task whose status changed, inside the caller's transaction.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    task: &TaskRow,
    url: &str,
    now: i64,
) -> ServiceResult<()> {
    let view = task_view(conn, task).await?;
    let id = format!("evt_{}", random_token(16));
    let event_type = format!("task.{}", task.status.as_str());
    let payload = json!({
        "id": id,
        "type": event_type,
        "created_at": super::views::timestamp(now),
        "data": view,
    });
    sqlx::query(
        "INSERT INTO webhook_events (id, task_id, agent_id, url, event_type, payload, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&id)
    .bind(task.id.as_str())
    .bind(task.agent_id.as_str())
    .bind(url)
    .bind(&event_type)
    .bind(payload.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What one delivery round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
}

struct Due {
    id: String,
    url: String,
    payload: String,
    event_type: String,
    attempts: i64,
    secret: String,
}

impl HumanPing {
    /// The secret that signs this agent's webhooks.
    // Limitation: the secret cannot be rotated; it is shown once, at `agent create`.
    pub async fn webhook_secret(
        &self,
        agent: &crate::domain::ids::AgentId,
    ) -> ServiceResult<String> {
        sqlx::query_scalar("SELECT webhook_secret FROM agents WHERE id = $1")
            .bind(agent.as_str())
            .fetch_optional(self.store.pool())
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no agent {agent}")))
    }

    /// Delivers the events that are due, once each. The background loop calls this every
    /// second; tests call it directly.
    pub async fn deliver_webhooks(&self) -> ServiceResult<DeliveryReport> {
        let now = self.clock.now_ms();
        let lock = match self.store.backend() {
            crate::store::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::store::Backend::Sqlite => "",
        };
        // Claim a batch by pushing its next attempt out by a lease, so another process (or a
        // slow delivery) does not send the same event at the same time.
        let claim = format!(
            "UPDATE webhook_events SET next_attempt_at = $1 WHERE id IN ( \
               SELECT id FROM webhook_events WHERE delivered_at IS NULL AND failed_at IS NULL \
               AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3{lock}) \
             RETURNING id, url, payload, event_type, attempts, agent_id"
        );
        let mut tx = self.store.begin().await?;
        let rows = sqlx::query(&claim)
            .bind(now + DELIVERY_LEASE_MS)
            .bind(now)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let agent: String = row.try_get("agent_id")?;
            let secret: String =
                sqlx::query_scalar("SELECT webhook_secret FROM agents WHERE id = $1")
                    .bind(&agent)
                    .fetch_one(&mut *tx)
                    .await?;
            due.push(Due {
                id: row.try_get("id")?,
                url: row.try_get("url")?,
                payload: row.try_get("payload")?,
                event_type: row.try_get("event_type")?,
                attempts: row.try_get("attempts")?,
                secret,
            });
        }
        tx.commit().await?;

        let mut report = DeliveryReport::default();
        for event in due {
            let outcome = self.send(&event).await;
            let attempts = event.attempts + 1;
            let now = self.clock.now_ms();
            let (sql, error) = match &outcome {
                Ok(()) => {
                    report.delivered += 1;
                    (
                        "UPDATE webhook_events SET attempts = $1, delivered_at = $2, last_error = $3 WHERE id = $4",
                        None,
                    )
                }
                Err(error) if attempts >= MAX_ATTEMPTS => {
                    report.given_up += 1;
                    (
                        "UPDATE webhook_events SET attempts = $1, failed_at = $2, last_error = $3 WHERE id = $4",
                        Some(error),
                    )
                }
                Err(error) => {
                    report.retrying += 1;
                    (
                        "UPDATE webhook_events SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
                        Some(error),
                    )
                }
            };
            let at = match &outcome {
                Err(_) if attempts < MAX_ATTEMPTS => now + backoff_secs(attempts) * 1000,
                _ => now,
            };
            if let Some(error) = error {
                tracing::info!(event = %event.id, attempts, %error, "webhook not delivered");
            }
            let mut tx = self.store.begin().await?;
            sqlx::query(sql)
                .bind(attempts)
                .bind(at)
                .bind(error)
                .bind(&event.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(report)
    }

    async fn send(&self, event: &Due) -> Result<(), String> {
        let url = check_url(&event.url, self.config.allow_private_webhooks)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("could not resolve {host}: {e}"))?
            .collect();
        let address = addresses
            .iter()
            .find(|a| self.config.allow_private_webhooks || is_public(a.ip()))
            .copied()
            .ok_or_else(|| format!("{host} resolves only to non-public addresses"))?;
        if !self.config.allow_private_webhooks && addresses.iter().any(|a| !is_public(a.ip())) {
            return Err(format!("{host} resolves to a non-public address"));
        }

        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .resolve(&host, address)
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        let sent_at = self.clock.now_ms() / 1000;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("HumanPing-Webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header("humanping-event-id", &event.id)
            .header("humanping-event-type", &event.event_type)
            .header(
                "humanping-signature",
                signature(&event.secret, sent_at, &event.payload),
            )
            .body(event.payload.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }

    /// Runs webhook delivery every second until the returned handle is aborted.
    pub fn spawn_webhook_deliverer(self: std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                if let Err(error) = self.deliver_webhooks().await {
                    tracing::warn!(%error, "webhook delivery round failed");
                }
            }
        })
    }
}

fn backoff_secs(attempts: i64) -> i64 {
    (FIRST_RETRY_SECS << (attempts - 1).clamp(0, 20)).min(LONGEST_RETRY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.8/hook",
            "http://169.254.169.254/latest",
            "http://[::1]:8080/",
            "http://[fd00::1]/",
            "http://192.168.1.1/",
            "http://localhost:3000/",
            "http://printer.local/",
            "http://intranet/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                check_url(url, false).unwrap_err().contains("public"),
                "{url}"
            );
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://agent.example.com/hooks/humanping", false).is_ok());
        assert!(
            check_url("ftp://example.com/", false)
                .unwrap_err()
                .contains("http")
        );
        assert!(
            check_url("not a url", false)
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(
            check_url("https://u:p@example.com/", false)
                .unwrap_err()
                .contains("password")
        );
    }

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = signature("Jefe", 1_700_000_000, "{}");
        assert_eq!(
            sig,
            format!("t=1700000000,v1={}", hmac_hex(b"Jefe", b"1700000000.{}"))
        );
        assert_ne!(signature("Jefe", 1, "x"), signature("Jefe", 2, "x"));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_secs(1), 10);
        assert_eq!(backoff_secs(2), 20);
        assert_eq!(backoff_secs(4), 80);
        assert_eq!(backoff_secs(12), 3_600);
    }
}
