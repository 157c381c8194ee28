//! Honeypots: tasks with a known answer, mixed into workers' feeds to measure who answers
//! honestly.
//!
//! An operator writes a honeypot once: a task request, in the shape of `POST /v1/tasks`, and
//! the answer it should get. When a worker's feed is read, the router tops it up with tasks
//! made from honeypots until they are about `honeypot_rate` of what the worker is offered.
//! Each such task is a task of its own, made for that worker: a fresh id, its own escrow, one
//! slot, posted by the platform's own agent, whose account pays for it (the books balance as
//! for any task). It goes through the same claim, lease, submit and settlement code as every
//! other task, so its listing, its body, its errors, its pay and its timing are those of a real
//! task. The verdict is kept in `honeypot_tasks`, which no worker-facing query reads.
//!
//! The verdict is not acted on when the answer comes in. The task waits, as a real agent's
//! review would, for a random share (10% to 100%) of the review window; then a right answer is
//! approved and paid, and a wrong one is rejected. Only then does the outcome reach the trust
//! score (a wrong honeypot answer weighs three rejections), so a worker cannot tell from a
//! change in their score which task was the test.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::HumanPing;
use super::agent::{hold_in_escrow, insert_task};
use super::error::{ServiceError, ServiceResult};
use super::rows::TaskRow;
use super::views::timestamp;
use super::worker::{Needs, WorkerRow, eligibility};
use crate::domain::ids::{AgentId, TaskId, WorkerId, random_token};
use crate::domain::response::ResponseFormat;
use crate::input::{CreateTaskBody, NewTask};
use crate::ledger::account;

/// The platform's own agent, which posts honeypot tasks; created by the schema migration, with
/// no API key.
pub const HOUSE_AGENT: &str = "agt_humanping";
/// How many honeypots one feed read may make at most, so one read stays cheap.
const MAX_NEW_PER_READ: usize = 3;
/// How many candidate honeypots a feed read looks at.
const CANDIDATES: i64 = 50;

/// A honeypot, as the operator sees it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct HoneypotView {
    pub honeypot_id: String,
    pub kind: String,
    /// The task request the honeypot's tasks are made from.
    pub request: Value,
    /// The answer a right result gives, in structured form.
    pub expected: Value,
    /// The budget per task in cents, paid by the platform.
    pub budget_cents: i64,
    /// Whether new tasks are still made from it.
    pub active: bool,
    /// Tasks made from it so far.
    pub shown: i64,
    /// Results that gave the expected answer, and results that did not.
    pub right: i64,
    pub wrong: i64,
    pub created_at: String,
}

impl HumanPing {
    /// Adds a honeypot: a task request (`POST /v1/tasks` body) and its known answer.
    pub async fn add_honeypot(
        &self,
        request: &Value,
        expected: &str,
    ) -> ServiceResult<HoneypotView> {
        let body: CreateTaskBody = serde_json::from_value(request.clone()).map_err(|e| {
            ServiceError::invalid(format!(
                "the honeypot's task is not a valid task request ({e}); write it as the body of \
                 POST /v1/tasks"
            ))
        })?;
        let draft = body.into_draft();
        let common = &draft.common;
        for (given, field) in [
            (common.callback_url.is_some(), "callback_url"),
            (common.idempotency_key.is_some(), "idempotency_key"),
            (common.wait_seconds.is_some(), "wait_seconds"),
            (common.workers.is_some_and(|n| n != 1), "workers"),
            (common.agreement.is_some(), "agreement"),
            (common.max_workers.is_some_and(|n| n != 1), "max_workers"),
            (common.weighting.is_some(), "weighting"),
        ] {
            if given {
                return Err(ServiceError::invalid(format!(
                    "a honeypot's task takes no {field}; remove it"
                )));
            }
        }
        let now = self.clock.now_ms();
        let task = draft.validate(now)?;
        if matches!(task.response, ResponseFormat::Text) {
            return Err(ServiceError::invalid(
                "a honeypot needs an answer that can be checked: give the task a response format \
                 of yes/no, options, rating or number",
            ));
        }
        let expected = task
            .response
            .read_answer(expected)
            .map_err(|e| ServiceError::invalid(format!("the expected answer: {e}")))?;

        let id = format!("hpt_{}", random_token(16));
        sqlx::query(
            "INSERT INTO honeypots (id, kind, request, expected, budget_cents, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6)",
        )
        .bind(&id)
        .bind(task.kind.as_str())
        .bind(request.to_string())
        .bind(expected.to_string())
        .bind(task.budget.get())
        .bind(now)
        .execute(self.store.pool())
        .await?;
        tracing::info!(honeypot = %id, kind = %task.kind, "honeypot added");
        self.honeypot(&id).await
    }

    /// Every honeypot, newest first, with how its tasks were answered.
    pub async fn honeypots(&self) -> ServiceResult<Vec<HoneypotView>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM honeypots ORDER BY created_at DESC, id DESC")
                .fetch_all(self.store.pool())
                .await?;
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.push(self.honeypot(&id).await?);
        }
        Ok(views)
    }

    /// Stops making new tasks from a honeypot; tasks already made run their course.
    pub async fn retire_honeypot(&self, id: &str) -> ServiceResult<HoneypotView> {
        let done = sqlx::query("UPDATE honeypots SET active = 0 WHERE id = $1")
            .bind(id)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(unknown(id));
        }
        tracing::info!(honeypot = %id, "honeypot retired");
        self.honeypot(id).await
    }

    async fn honeypot(&self, id: &str) -> ServiceResult<HoneypotView> {
        let row = sqlx::query(
            "SELECT h.id, h.kind, h.request, h.expected, h.budget_cents, h.active, h.created_at, \
             (SELECT COUNT(*) FROM honeypot_tasks x WHERE x.honeypot_id = h.id) AS shown, \
             (SELECT COUNT(*) FROM honeypot_tasks x WHERE x.honeypot_id = h.id \
               AND x.verdict = 'right') AS right_answers, \
             (SELECT COUNT(*) FROM honeypot_tasks x WHERE x.honeypot_id = h.id \
               AND x.verdict = 'wrong') AS wrong_answers \
             FROM honeypots h WHERE h.id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| unknown(id))?;
        let json = |name: &str| -> ServiceResult<Value> {
            let text: String = row.try_get(name)?;
            serde_json::from_str(&text).map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("honeypot {id}: {name} is not JSON: {e}"))
            })
        };
        Ok(HoneypotView {
            honeypot_id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            request: json("request")?,
            expected: json("expected")?,
            budget_cents: row.try_get("budget_cents")?,
            active: row.try_get::<i64, _>("active")? != 0,
            shown: row.try_get("shown")?,
            right: row.try_get("right_answers")?,
            wrong: row.try_get("wrong_answers")?,
            created_at: timestamp(row.try_get("created_at")?),
        })
    }

    /// Tops up a worker's feed with tasks made from honeypots, so that they are about
    /// `honeypot_rate` of the `real` tasks offered besides them. Returns whether it made any.
    pub(super) async fn mix_in_honeypots(
        &self,
        worker: &WorkerId,
        me: &WorkerRow,
        real: usize,
        now: i64,
    ) -> ServiceResult<bool> {
        let rate = self.config.honeypot_rate;
        if rate.is_nan() || rate <= 0.0 || real == 0 {
            return Ok(false);
        }
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM honeypot_tasks h JOIN tasks t ON t.id = h.task_id \
             WHERE h.worker_id = $1 AND t.status = 'open' AND t.deadline_at > $2",
        )
        .bind(worker.as_str())
        .bind(now)
        .fetch_one(self.store.pool())
        .await?;
        // The share of honeypots among all offers is `rate`; a fraction of one is rounded up
        // or down by a number fixed per worker and day, so reading the feed again does not
        // change it and, over many workers, the share comes out right.
        let rate = rate.min(0.5);
        let wanted = real as f64 * rate / (1.0 - rate) + day_fraction(worker, now);
        let missing = (wanted.floor() as i64 - live).clamp(0, MAX_NEW_PER_READ as i64);
        if missing == 0 {
            return Ok(false);
        }

        let candidates: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, request FROM honeypots h WHERE active = 1 AND NOT EXISTS \
             (SELECT 1 FROM honeypot_tasks x WHERE x.honeypot_id = h.id AND x.worker_id = $1) \
             ORDER BY created_at LIMIT $2",
        )
        .bind(worker.as_str())
        .bind(CANDIDATES)
        .fetch_all(self.store.pool())
        .await?;
        let mut made = 0;
        for (honeypot, request) in rotate(candidates, worker, now) {
            if made >= missing {
                break;
            }
            let Some(task) = self.honeypot_task(&honeypot, &request, now) else {
                continue;
            };
            if eligibility(me, &Needs::of_new(&task), &self.config.tiers).is_err() {
                continue;
            }
            if self
                .make_honeypot_task(&honeypot, worker, &task, now)
                .await?
            {
                made += 1;
            }
        }
        Ok(made > 0)
    }

    /// The task a honeypot makes now, or `None` (logged) when its request no longer validates,
    /// e.g. a fixed deadline that has passed.
    fn honeypot_task(&self, honeypot: &str, request: &str, now: i64) -> Option<NewTask> {
        let made = serde_json::from_str::<CreateTaskBody>(request)
            .map_err(|e| e.to_string())
            .and_then(|body| body.into_draft().validate(now).map_err(|e| e.to_string()));
        match made {
            Ok(task) => Some(task),
            Err(error) => {
                tracing::warn!(%honeypot, %error, "honeypot skipped: its task no longer validates");
                None
            }
        }
    }

    /// Posts one task made from a honeypot for `worker`, paid from the platform's account.
    /// Returns false when another request made it first.
    async fn make_honeypot_task(
        &self,
        honeypot: &str,
        worker: &WorkerId,
        task: &NewTask,
        now: i64,
    ) -> ServiceResult<bool> {
        let house = AgentId::from_db(HOUSE_AGENT.to_owned());
        let task_id = TaskId::generate();
        let mut tx = self.store.begin().await?;
        // The task row must exist before the link to it (foreign key): the escrow and the task
        // are written first, then the link, and a lost race rolls all of it back.
        let pending = hold_in_escrow(
            &mut tx,
            &task_id,
            &account::agent(&house),
            task.budget,
            task.kind,
            now,
        )
        .await
        .map_err(super::settle::ledger_fault)?;
        insert_task(
            &mut tx,
            &task_id,
            &house,
            task,
            1,
            &pending.id,
            task.budget,
            self.config.fee_bps,
            now,
        )
        .await?;
        let linked = sqlx::query(
            "INSERT INTO honeypot_tasks (task_id, honeypot_id, worker_id, created_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM honeypot_tasks \
             WHERE honeypot_id = $2 AND worker_id = $3)",
        )
        .bind(task_id.as_str())
        .bind(honeypot)
        .bind(worker.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        super::changes::notify(&mut tx, &task_id).await?;
        tx.commit().await?;
        tracing::debug!(task = %task_id, %honeypot, "honeypot task made");
        self.announce(&task_id);
        Ok(true)
    }
}

/// Whether a task is one made from a honeypot.
pub(super) fn is_honeypot(task: &TaskRow) -> bool {
    task.agent_id.as_str() == HOUSE_AGENT
}

/// Records whether a result sent for a honeypot task gave the known answer, and puts off
/// acting on it to a random moment within the review window.
pub(super) async fn grade(
    conn: &mut AnyConnection,
    task: &mut TaskRow,
    answer: &Value,
    review_window_ms: i64,
    now: i64,
) -> ServiceResult<()> {
    let expected: Option<String> = sqlx::query_scalar(
        "SELECT h.expected FROM honeypot_tasks x JOIN honeypots h ON h.id = x.honeypot_id \
         WHERE x.task_id = $1",
    )
    .bind(task.id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(expected) = expected else {
        return Ok(());
    };
    let expected: Value = serde_json::from_str(&expected).unwrap_or(Value::Null);
    let verdict = if same_answer(&expected, answer) {
        "right"
    } else {
        "wrong"
    };
    sqlx::query("UPDATE honeypot_tasks SET verdict = $1 WHERE task_id = $2")
        .bind(verdict)
        .bind(task.id.as_str())
        .execute(&mut *conn)
        .await?;
    let mut byte = [0u8; 2];
    getrandom::fill(&mut byte).map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
    let share = 0.1 + 0.9 * f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
    task.review_deadline_at = Some(now + (review_window_ms as f64 * share) as i64);
    Ok(())
}

/// Acts on a honeypot task's verdict once its review time has come: pays a right answer,
/// rejects a wrong one.
pub(super) async fn resolve(
    service: &HumanPing,
    conn: &mut AnyConnection,
    task: &mut TaskRow,
    now: i64,
) -> ServiceResult<()> {
    let verdict: Option<Option<String>> =
        sqlx::query_scalar("SELECT verdict FROM honeypot_tasks WHERE task_id = $1")
            .bind(task.id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match verdict.flatten().as_deref() {
        Some("wrong") => {
            service.refund_results(conn, task, now).await?;
        }
        _ => {
            service.release(conn, task, now, "approved").await?;
        }
    }
    Ok(())
}

/// Whether two structured answers agree: equal values, numbers within a millionth.
fn same_answer(expected: &Value, given: &Value) -> bool {
    match (expected.as_f64(), given.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        _ => expected == given,
    }
}

/// A number in [0, 1) fixed for a worker and a day.
fn day_fraction(worker: &WorkerId, now: i64) -> f64 {
    let day = now.div_euclid(86_400_000);
    let digest = crate::auth::sha256_hex(format!("{worker}:{day}").as_bytes());
    let n = u32::from_str_radix(&digest[..8], 16).unwrap_or(0);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

/// The candidates in an order of their own for each worker and day, so workers do not all get
/// the same honeypot first.
fn rotate(
    mut candidates: Vec<(String, String)>,
    worker: &WorkerId,
    now: i64,
) -> Vec<(String, String)> {
    if !candidates.is_empty() {
        let shift = (day_fraction(worker, now) * candidates.len() as f64) as usize;
        let last = candidates.len() - 1;
        candidates.rotate_left(shift.min(last));
    }
    candidates
}

fn unknown(id: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "no honeypot {id:?}; `humanping honeypot list` shows them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_agree_by_value_and_numbers_by_tolerance() {
        assert!(same_answer(&json!("yes"), &json!("yes")));
        assert!(!same_answer(&json!("yes"), &json!("no")));
        assert!(same_answer(&json!(4), &json!(4.0)));
        assert!(same_answer(&json!(1000.0), &json!(1000.0000001)));
        assert!(!same_answer(&json!(12.5), &json!(12.6)));
    }

    #[test]
    fn the_day_fraction_is_stable_within_a_day_and_in_range() {
        let worker = WorkerId::generate();
        let a = day_fraction(&worker, 1_000);
        assert_eq!(a, day_fraction(&worker, 80_000_000));
        assert!((0.0..1.0).contains(&a));
    }
}
