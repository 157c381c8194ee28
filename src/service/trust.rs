//! Keeping each worker's stored trust score equal to what their history says, in the same
//! transaction as the event that changes it. The score itself is the pure function in
//! `domain::trust`.

use sqlx::AnyConnection;

use super::error::ServiceResult;
use crate::domain::ids::WorkerId;
use crate::domain::trust::{self, Event, Outcome, Record};

const DAY_MS: f64 = 86_400_000.0;

/// The worker's history as the score reads it.
pub(super) async fn record(
    conn: &mut AnyConnection,
    worker: &WorkerId,
    now: i64,
) -> ServiceResult<Record> {
    let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT a.status, a.resolved_at, \
         CAST(CASE WHEN t.agent_id = $2 THEN 1 ELSE 0 END AS BIGINT) AS honeypot \
         FROM assignments a JOIN tasks t ON t.id = a.task_id WHERE a.worker_id = $1 \
         AND a.status IN ('approved', 'rejected', 'abandoned', 'lease_expired')",
    )
    .bind(worker.as_str())
    .bind(super::honeypot::HOUSE_AGENT)
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .into_iter()
        .filter_map(|(status, resolved_at, honeypot)| {
            let outcome = match (status.as_str(), honeypot != 0) {
                ("approved", true) => Outcome::HoneypotPassed,
                ("rejected", true) => Outcome::HoneypotFailed,
                ("approved", false) => Outcome::Approved,
                ("rejected", false) => Outcome::Rejected,
                ("abandoned", _) => Outcome::Abandoned,
                ("lease_expired", _) => Outcome::LeaseExpired,
                _ => return None,
            };
            let age_days = resolved_at.map_or(0.0, |at| (now - at).max(0) as f64 / DAY_MS);
            Some(Event { outcome, age_days })
        })
        .collect();
    let fraud_flags = super::fraud::count_for(conn, worker).await?;
    Ok(Record {
        events,
        fraud_flags,
    })
}

/// Recomputes and stores the worker's score; returns it.
// Limitation: the score is recomputed from the worker's whole history, so each settlement reads
// every resolved assignment of its worker; the cost grows with a worker's history.
pub(super) async fn refresh(
    conn: &mut AnyConnection,
    worker: &WorkerId,
    now: i64,
) -> ServiceResult<i64> {
    let score = trust::score(&record(conn, worker, now).await?);
    sqlx::query("UPDATE workers SET trust_score = $1 WHERE id = $2")
        .bind(score)
        .bind(worker.as_str())
        .execute(conn)
        .await?;
    Ok(score)
}
