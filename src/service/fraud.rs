//! Checks on a submitted result that may point to fraud. A check never silently rejects: it
//! records a flag with its reason, the agent sees the flags with the result, the flags lower the
//! worker's trust, and a flagged result is not approved automatically — the agent decides.
//!
//! Rules: a result sent faster than the kind plausibly takes (`too_fast`); a photo already sent
//! for another task, by its SHA-256 (`photo_reused`); a photo whose EXIF position is beyond the
//! task's radius (`photo_far`); a photo whose EXIF time lies outside the task's life
//! (`photo_time`); a photo the AI-image detector scores at or above its threshold
//! (`ai_generated`); a worker account tied to the agent that posted the task, by email or
//! network address (`tied_account`).

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::error::ServiceResult;
use super::rows::{AssignmentRow, TaskRow};
use crate::domain::geo::distance_m;
use crate::domain::ids::{TaskId, WorkerId, random_token};

/// EXIF times carry no time zone: a day of slack either side covers every zone.
const EXIF_TIME_SLACK_MS: i64 = 24 * 60 * 60 * 1000;
/// Slack for GPS error on top of the task's radius.
const EXIF_DISTANCE_SLACK_M: f64 = 500.0;

/// One reason to doubt a result.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct FlagView {
    /// The rule that fired: too_fast, photo_reused, photo_far, photo_time, ai_generated,
    /// tied_account.
    pub rule: String,
    /// What was seen, in words.
    pub detail: String,
}

/// Runs every check on a result being submitted for `assignment`, with the photo links it sends.
pub(super) async fn check(
    conn: &mut AnyConnection,
    task: &TaskRow,
    assignment: &AssignmentRow,
    photo_links: &[String],
    ai_threshold: Option<f64>,
    now: i64,
) -> ServiceResult<Vec<FlagView>> {
    let mut flags = Vec::new();
    if let Some(detail) = super::ties::tie(conn, &task.agent_id, &assignment.worker_id).await? {
        flags.push(FlagView {
            rule: "tied_account".into(),
            detail,
        });
    }
    let took_secs = (now - assignment.claimed_at) / 1000;
    let least = task.kind.min_plausible_secs();
    if took_secs < least {
        flags.push(FlagView {
            rule: "too_fast".into(),
            detail: format!(
                "sent {took_secs} s after the claim; a {} usually takes at least {least} s",
                task.kind.as_str().replace('_', " ")
            ),
        });
    }

    let photos = sqlx::query(
        "SELECT sha256, exif_lat, exif_lng, exif_taken_at, ai_score FROM proof_photos \
         WHERE assignment_id = $1",
    )
    .bind(assignment.id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for photo in photos {
        let sha256: String = photo.try_get("sha256")?;
        let sent = photo_links.iter().any(|link| link.ends_with(&sha256));
        if !sent {
            continue;
        }
        let elsewhere: Option<String> = sqlx::query_scalar(
            "SELECT task_id FROM proof_photos WHERE sha256 = $1 AND task_id <> $2 LIMIT 1",
        )
        .bind(&sha256)
        .bind(task.id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(other) = elsewhere {
            flags.push(FlagView {
                rule: "photo_reused".into(),
                detail: format!(
                    "photo {} was also sent for task {other}",
                    &sha256[..12.min(sha256.len())]
                ),
            });
        }
        let (lat, lng): (Option<f64>, Option<f64>) =
            (photo.try_get("exif_lat")?, photo.try_get("exif_lng")?);
        if let (Some(lat), Some(lng), Some(tlat), Some(tlng), Some(radius)) =
            (lat, lng, task.lat, task.lng, task.radius_m)
        {
            let distance = distance_m(lat, lng, tlat, tlng);
            if distance > radius as f64 + EXIF_DISTANCE_SLACK_M {
                flags.push(FlagView {
                    rule: "photo_far".into(),
                    detail: format!(
                        "the photo's camera position is {:.1} km from the task's place (radius {radius} m)",
                        distance / 1000.0
                    ),
                });
            }
        }
        let ai_score: Option<f64> = photo.try_get("ai_score")?;
        if let (Some(score), Some(threshold)) = (ai_score, ai_threshold)
            && score >= threshold
        {
            flags.push(FlagView {
                rule: "ai_generated".into(),
                detail: format!(
                    "photo {} looks AI-generated (detector score {score:.2}, threshold {threshold:.2})",
                    &sha256[..12.min(sha256.len())]
                ),
            });
        }
        let taken: Option<String> = photo.try_get("exif_taken_at")?;
        if let Some(at) = taken.as_deref().and_then(exif_time_ms)
            && (at < task.created_at - EXIF_TIME_SLACK_MS || at > now + EXIF_TIME_SLACK_MS)
        {
            flags.push(FlagView {
                rule: "photo_time".into(),
                detail: format!(
                    "the photo was taken at {} (camera time), outside the task's life",
                    taken.unwrap_or_default()
                ),
            });
        }
    }
    Ok(flags)
}

/// Reads an EXIF date ("2026:12:04 17:05:00") or an RFC 3339 time, as Unix milliseconds.
fn exif_time_ms(text: &str) -> Option<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Some(time.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y:%m:%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Records the flags of a result.
pub(super) async fn record(
    conn: &mut AnyConnection,
    task: &TaskRow,
    assignment: &AssignmentRow,
    flags: &[FlagView],
    now: i64,
) -> ServiceResult<()> {
    for flag in flags {
        sqlx::query(
            "INSERT INTO fraud_flags (id, assignment_id, task_id, worker_id, rule, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(format!("flg_{}", random_token(16)))
        .bind(assignment.id.as_str())
        .bind(task.id.as_str())
        .bind(assignment.worker_id.as_str())
        .bind(&flag.rule)
        .bind(&flag.detail)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The flags raised on a task's results, by assignment id.
pub(super) async fn of_task(
    conn: &mut AnyConnection,
    task: &TaskId,
) -> ServiceResult<Vec<(String, FlagView)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT assignment_id, rule, detail FROM fraud_flags WHERE task_id = $1 ORDER BY created_at, id",
    )
    .bind(task.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(a, rule, detail)| (a, FlagView { rule, detail }))
        .collect())
}

/// How many flags a worker carries.
pub(super) async fn count_for(conn: &mut AnyConnection, worker: &WorkerId) -> ServiceResult<u32> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fraud_flags WHERE worker_id = $1")
        .bind(worker.as_str())
        .fetch_one(conn)
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::exif_time_ms;

    #[test]
    fn exif_and_rfc3339_times_are_read() {
        assert_eq!(exif_time_ms("1970:01:01 00:00:01"), Some(1000));
        assert_eq!(exif_time_ms("1970-01-01T00:00:02Z"), Some(2000));
        assert_eq!(exif_time_ms("yesterday"), None);
    }
}
