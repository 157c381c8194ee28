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
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT status, resolved_at FROM assignments WHERE worker_id = $1 \
         AND status IN ('approved', 'rejected', 'abandoned', 'lease_expired')",
    )
    .bind(worker.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .into_iter()
        .filter_map(|(status, resolved_at)| {
            let outcome = match status.as_str() {
                "approved" => Outcome::Approved,
                "rejected" => Outcome::Rejected,
                "abandoned" => Outcome::Abandoned,
                "lease_expired" => Outcome::LeaseExpired,
                _ => return None,
            };
            let age_days = resolved_at.map_or(0.0, |at| (now - at).max(0) as f64 / DAY_MS);
            Some(Event { outcome, age_days })
        })
        .collect();
    // Limitation: honeypot outcomes are not recorded yet, so they never count.
    let fraud_flags = super::fraud::count_for(conn, worker).await?;
    Ok(Record {
        events,
        fraud_flags,
    })
}

/// Recomputes and stores the worker's score; returns it.
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
