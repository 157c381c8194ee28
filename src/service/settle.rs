//! Moving a task through its life: what time makes due (expired leases, deadlines, review
//! windows) and the money each ending moves. Every function here runs inside the caller's
//! transaction, on a task row the caller has locked.

use sqlx::AnyConnection;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::rows::{AssignmentRow, TaskRow, task_assignments};
use crate::domain::money::Cents;
use crate::domain::status::{AssignmentStatus, TaskStatus, live_status};
use crate::ledger::{self, LedgerError, account};

/// How many slots of a task are claimed (with a live lease) and submitted.
pub(super) async fn slot_counts(
    conn: &mut AnyConnection,
    task: &TaskRow,
) -> ServiceResult<(i64, i64)> {
    let (claimed, submitted): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'claimed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN status IN ('submitted', 'approved') THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM assignments WHERE task_id = $1",
    )
    .bind(task.id.as_str())
    .fetch_one(conn)
    .await?;
    Ok((claimed, submitted))
}

impl HumanPing {
    /// Brings a locked task up to date with the clock. Returns whether anything changed.
    ///
    /// In order: claims whose lease ran out free their slot; a task past its deadline ends
    /// (expired and refunded when it has no result, completed with what it has otherwise);
    /// a completed task whose review window passed is approved and paid.
    pub(super) async fn settle(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        now: i64,
    ) -> ServiceResult<bool> {
        if task.status.is_final() {
            return Ok(false);
        }
        let lapsed: Vec<String> = sqlx::query_scalar(
            "UPDATE assignments SET status = 'lease_expired', resolved_at = $1 \
             WHERE task_id = $2 AND status = 'claimed' AND lease_expires_at <= $1 \
             AND lease_expires_at < $3 RETURNING worker_id",
        )
        .bind(now)
        .bind(task.id.as_str())
        // A claim cut short by the task's own deadline is not the worker's lapse.
        .bind(task.deadline_at)
        .fetch_all(&mut *conn)
        .await?;
        for worker in &lapsed {
            super::trust::refresh(
                conn,
                &crate::domain::ids::WorkerId::from_db(worker.clone()),
                now,
            )
            .await?;
        }
        let expired = lapsed.len();
        let before = (task.status, task.held);
        self.refresh_status(conn, task, now).await?;

        if task.status == TaskStatus::Completed
            && task.review_deadline_at.is_some_and(|review| review <= now)
            && !has_flags(conn, task).await?
        {
            self.release(
                conn,
                task,
                now,
                "approved automatically after the review window",
            )
            .await?;
        }
        let changed = expired > 0 || before != (task.status, task.held);
        if changed {
            save_task(conn, task, now).await?;
        }
        Ok(changed)
    }

    /// Sets the task's status from its slots (and its deadline), voiding the share of slots
    /// that can no longer be filled. Does not save.
    pub(super) async fn refresh_status(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        now: i64,
    ) -> ServiceResult<()> {
        if task.status.is_final() {
            return Ok(());
        }
        let (claimed, submitted) = slot_counts(conn, task).await?;
        let past_deadline = now >= task.deadline_at;
        let status = if past_deadline && submitted < task.slots {
            if claimed > 0 {
                sqlx::query(
                    "UPDATE assignments SET status = 'task_ended', resolved_at = $1 \
                     WHERE task_id = $2 AND status = 'claimed'",
                )
                .bind(now)
                .bind(task.id.as_str())
                .execute(&mut *conn)
                .await?;
            }
            if submitted == 0 {
                TaskStatus::Expired
            } else {
                TaskStatus::Completed
            }
        } else {
            live_status(task.slots, claimed, submitted)
        };
        if status == TaskStatus::Expired || status == TaskStatus::Completed {
            // Slots that will never be filled give their share back to the agent.
            let unfilled = task
                .budget
                .checked_mul(task.slots - submitted)
                .unwrap_or(Cents::ZERO);
            let keep = task.budget.checked_mul(submitted).unwrap_or(Cents::ZERO);
            let excess = task.held.checked_sub(keep).unwrap_or(Cents::ZERO);
            if excess > Cents::ZERO && unfilled > Cents::ZERO {
                let memo = if status == TaskStatus::Expired {
                    "deadline passed without a result"
                } else {
                    "deadline passed with slots unfilled"
                };
                self.void_hold(conn, task, excess, now, memo).await?;
            }
        }
        if status == TaskStatus::Completed && task.status != TaskStatus::Completed {
            let window = i64::try_from(self.config.review_window.as_millis()).unwrap_or(i64::MAX);
            task.review_deadline_at = Some(now.saturating_add(window));
        }
        task.status = status;
        Ok(())
    }

    /// Pays every submitted result of a completed task and ends it as approved.
    pub(super) async fn release(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        now: i64,
        memo: &str,
    ) -> ServiceResult<()> {
        let pending = task.pending();
        let escrow = account::escrow(&task.id);
        let split = task.budget.split_fee(task.fee_bps);
        let id = task.id.clone();
        let task_id = Some(id.as_str());
        for assignment in self.submitted(conn, task).await? {
            take_from_hold(task, task.budget)?;
            ledger::post(conn, &pending, task.budget, task_id, memo, now)
                .await
                .map_err(ledger_fault)?;
            let worker = account::worker(&assignment.worker_id);
            ledger::transfer(
                conn,
                &escrow,
                &worker,
                split.worker,
                task_id,
                "pay for approved result",
                now,
            )
            .await
            .map_err(ledger_fault)?;
            if split.fee > Cents::ZERO {
                ledger::transfer(
                    conn,
                    &escrow,
                    account::PLATFORM_FEES,
                    split.fee,
                    task_id,
                    "platform fee",
                    now,
                )
                .await
                .map_err(ledger_fault)?;
            }
            resolve_assignment(
                conn,
                &assignment,
                AssignmentStatus::Approved,
                split.worker,
                now,
            )
            .await?;
        }
        if task.held > Cents::ZERO {
            let rest = task.held;
            self.void_hold(conn, task, rest, now, "unused slots")
                .await?;
        }
        task.status = TaskStatus::Approved;
        Ok(())
    }

    /// Rejects every submitted result and gives the whole hold back to the agent.
    pub(super) async fn refund_results(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        now: i64,
    ) -> ServiceResult<Vec<AssignmentRow>> {
        let rejected = self.submitted(conn, task).await?;
        for assignment in &rejected {
            resolve_assignment(
                conn,
                assignment,
                AssignmentStatus::Rejected,
                Cents::ZERO,
                now,
            )
            .await?;
        }
        if task.held > Cents::ZERO {
            let all = task.held;
            self.void_hold(conn, task, all, now, "result disputed")
                .await?;
        }
        task.status = TaskStatus::Refunded;
        Ok(rejected)
    }

    /// Gives the whole hold back and ends the task unfinished (cancelled or expired).
    pub(super) async fn end_unfinished(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        status: TaskStatus,
        now: i64,
        memo: &str,
    ) -> ServiceResult<()> {
        if task.held > Cents::ZERO {
            let all = task.held;
            self.void_hold(conn, task, all, now, memo).await?;
        }
        task.status = status;
        Ok(())
    }

    async fn submitted(
        &self,
        conn: &mut AnyConnection,
        task: &TaskRow,
    ) -> ServiceResult<Vec<AssignmentRow>> {
        task_assignments(conn, &task.id, &[AssignmentStatus::Submitted]).await
    }

    async fn void_hold(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        amount: Cents,
        now: i64,
        memo: &str,
    ) -> ServiceResult<()> {
        take_from_hold(task, amount)?;
        ledger::void(
            conn,
            &task.pending(),
            amount,
            Some(task.id.as_str()),
            memo,
            now,
        )
        .await
        .map_err(ledger_fault)?;
        Ok(())
    }
}

/// Whether any result of the task was flagged: then only the agent may approve it.
async fn has_flags(conn: &mut AnyConnection, task: &TaskRow) -> ServiceResult<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fraud_flags WHERE task_id = $1")
        .bind(task.id.as_str())
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Lowers what the task holds, refusing to go below zero.
fn take_from_hold(task: &mut TaskRow, amount: Cents) -> ServiceResult<()> {
    task.held = task
        .held
        .checked_sub(amount)
        .filter(|left| *left >= Cents::ZERO)
        .ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("task {} holds less than {amount}", task.id))
        })?;
    Ok(())
}

async fn resolve_assignment(
    conn: &mut AnyConnection,
    assignment: &AssignmentRow,
    status: AssignmentStatus,
    paid: Cents,
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE assignments SET status = $1, paid_cents = $2, resolved_at = $3 WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(paid.get())
    .bind(now)
    .bind(assignment.id.as_str())
    .execute(&mut *conn)
    .await?;
    super::trust::refresh(conn, &assignment.worker_id, now).await?;
    Ok(())
}

/// Writes a task's changed state and bumps its version.
pub(super) async fn save_task(
    conn: &mut AnyConnection,
    task: &mut TaskRow,
    now: i64,
) -> ServiceResult<()> {
    let ended = task.status.is_final().then_some(now);
    let completed = (task.status == TaskStatus::Completed).then_some(now);
    sqlx::query(
        "UPDATE tasks SET status = $1, held_cents = $2, review_deadline_at = $3, updated_at = $4, \
         version = version + 1, completed_at = COALESCE(completed_at, $5), \
         ended_at = COALESCE(ended_at, $6) WHERE id = $7",
    )
    .bind(task.status.as_str())
    .bind(task.held.get())
    .bind(task.review_deadline_at)
    .bind(now)
    .bind(completed)
    .bind(ended)
    .bind(task.id.as_str())
    .execute(&mut *conn)
    .await?;
    super::changes::notify(conn, &task.id).await?;
    task.version += 1;
    if task.status != task.stored_status {
        task.stored_status = task.status;
        if let Some(url) = task.callback_url.clone() {
            super::webhooks::enqueue(conn, task, &url, now).await?;
        }
    }
    Ok(())
}

/// A ledger refusal inside a settlement means the books and the task disagree: a fault.
pub(super) fn ledger_fault(error: LedgerError) -> ServiceError {
    match error {
        LedgerError::Database(e) => e.into(),
        other => {
            ServiceError::Internal(anyhow::Error::new(other).context("ledger refused a settlement"))
        }
    }
}
