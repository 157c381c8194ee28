//! Moving a task through its life: what time makes due (expired leases, deadlines, review
//! windows) and the money each ending moves. Every function here runs inside the caller's
//! transaction, on a task row the caller has locked.

use sqlx::AnyConnection;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::rows::{AssignmentRow, TaskRow, task_assignments};
use super::views::{ConsensusView, VoteView};
use crate::domain::consensus::{Ballot, Comparison, Decision, Rule, decide, tally};
use crate::domain::money::Cents;
use crate::domain::status::{AssignmentStatus, TaskStatus, live_status};
use crate::input::Weighting;
use crate::ledger::{self, LedgerError, account};

/// A task's slots as its assignments fill them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Slots {
    /// Claims being worked on: status `claimed`, including any whose lease ran out and that
    /// `settle` has not yet marked so.
    pub claimed: i64,
    /// Results sent (submitted or approved).
    pub submitted: i64,
    /// Of `claimed`, those whose lease ran out before the task's deadline (the lapses).
    lapsing: i64,
}

/// Counts a task's slots as of `now`, in one statement.
pub(super) async fn slots(
    conn: &mut AnyConnection,
    task: &TaskRow,
    now: i64,
) -> ServiceResult<Slots> {
    let (claimed, submitted, lapsing): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'claimed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN status IN ('submitted', 'approved') THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN status = 'claimed' AND lease_expires_at <= $2 \
           AND lease_expires_at < $3 THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM assignments WHERE task_id = $1",
    )
    .bind(task.id.as_str())
    .bind(now)
    .bind(task.deadline_at)
    .fetch_one(conn)
    .await?;
    Ok(Slots {
        claimed,
        submitted,
        lapsing,
    })
}

/// What `settle` found and did.
pub(super) struct Settled {
    /// Whether the task or its assignments changed.
    pub changed: bool,
    /// The task's slots after lapsed claims were freed, for the caller to carry forward within
    /// the same transaction (the task row is locked, so nobody else changes them).
    pub slots: Slots,
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
    ) -> ServiceResult<Settled> {
        if task.status.is_final() {
            return Ok(Settled {
                changed: false,
                slots: Slots::default(),
            });
        }
        // Counting first spares the write below on the many reads where no lease ran out.
        let mut slots = slots(conn, task, now).await?;
        let mut lapsed: Vec<String> = Vec::new();
        if slots.lapsing > 0 {
            lapsed = sqlx::query_scalar(
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
            slots.claimed -= i64::try_from(lapsed.len()).unwrap_or(0);
            slots.lapsing = 0;
        }
        let expired = lapsed.len();
        let before = (task.status, task.held);
        self.refresh_status(conn, task, &mut slots, now).await?;

        let review_due = task.status == TaskStatus::Completed
            && task.review_deadline_at.is_some_and(|review| review <= now);
        if review_due && super::honeypot::is_honeypot(task) {
            super::honeypot::resolve(self, conn, task, now).await?;
        } else if review_due && !has_flags(conn, task).await? {
            self.release(
                conn,
                task,
                now,
                "approved automatically after the review window",
            )
            .await?;
        }
        // Money first, then the worker rows (see `release`).
        lapsed.sort();
        lapsed.dedup();
        for worker in lapsed {
            super::trust::refresh(conn, &crate::domain::ids::WorkerId::from_db(worker), now)
                .await?;
        }
        let changed = expired > 0 || before != (task.status, task.held);
        if changed {
            save_task(conn, task, now).await?;
        }
        Ok(Settled { changed, slots })
    }

    /// Sets the task's status from its slots (and its deadline), voiding the share of slots
    /// that can no longer be filled. `slots` must be the task's slots as they stand (claims
    /// ended here are taken out of it). Does not save.
    pub(super) async fn refresh_status(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        slots: &mut Slots,
        now: i64,
    ) -> ServiceResult<()> {
        if task.status.is_final() {
            return Ok(());
        }
        let Slots {
            claimed, submitted, ..
        } = *slots;
        let past_deadline = now >= task.deadline_at;
        if task.max_workers > 1 {
            return self.refresh_consensus(conn, task, slots, now).await;
        }
        let status = if past_deadline && submitted < task.slots {
            if claimed > 0 {
                self.end_claims(conn, task, slots, now).await?;
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
            let memo = if status == TaskStatus::Expired {
                "deadline passed without a result"
            } else {
                "deadline passed with slots unfilled"
            };
            self.void_unused(conn, task, submitted, now, memo).await?;
        }
        if status == TaskStatus::Completed && task.status != TaskStatus::Completed {
            let window = i64::try_from(self.config.review_window.as_millis()).unwrap_or(i64::MAX);
            task.review_deadline_at = Some(now.saturating_add(window));
        }
        task.status = status;
        Ok(())
    }

    /// `refresh_status` for a task answered by several humans: applies the consensus rule
    /// (`domain::consensus`) to the answers so far, extending the task, waiting, or completing
    /// it with the outcome; unused slots give their share back.
    async fn refresh_consensus(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        slots: &mut Slots,
        now: i64,
    ) -> ServiceResult<()> {
        let Slots {
            claimed, submitted, ..
        } = *slots;
        if task.status == TaskStatus::Completed {
            // Decided: a dispute of one result later does not reopen the question.
            return Ok(());
        }
        let past_deadline = now >= task.deadline_at;
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT a.structured, w.trust_score FROM assignments a \
             JOIN workers w ON w.id = a.worker_id \
             WHERE a.task_id = $1 AND a.status IN ('submitted', 'approved') \
             ORDER BY a.submitted_at, a.id",
        )
        .bind(task.id.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let ballots: Vec<Ballot> = rows
            .into_iter()
            .map(|(structured, trust)| Ballot {
                answer: structured
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(serde_json::Value::Null),
                weight: match task.weighting {
                    Weighting::Trust => trust as f64 / 50.0,
                    Weighting::None => 1.0,
                },
            })
            .collect();
        let comparison = Comparison::of(&task.response);
        let counts = tally(&ballots, comparison);
        let rule = Rule {
            slots: u32::try_from(task.slots).unwrap_or(1),
            max_workers: u32::try_from(task.max_workers).unwrap_or(1),
            agreement: u32::try_from(task.agreement).unwrap_or(1),
        };
        let count = |n: i64| u32::try_from(n).unwrap_or(0);
        let decision = decide(
            &counts,
            comparison,
            count(submitted),
            count(claimed),
            rule,
            past_deadline,
        );
        let outcome = match decision {
            Decision::Wait if past_deadline => {
                self.end_claims(conn, task, slots, now).await?;
                self.void_unused(conn, task, 0, now, "deadline passed without a result")
                    .await?;
                task.status = TaskStatus::Expired;
                return Ok(());
            }
            Decision::Wait => {
                task.status = match live_status(task.slots, claimed, submitted) {
                    TaskStatus::Completed => TaskStatus::InProgress,
                    status => status,
                };
                return Ok(());
            }
            Decision::Extend { more } => {
                task.slots += i64::from(more);
                task.status = live_status(task.slots, claimed, submitted);
                tracing::info!(task = %task.id, slots = task.slots, "answers split; more humans asked");
                return Ok(());
            }
            Decision::Agreed { answer, confidence } => ("agreed", Some(answer), Some(confidence)),
            Decision::NoConsensus => ("no_consensus", None, None),
            Decision::Collected => ("collected", None, None),
        };
        if claimed > 0 {
            self.end_claims(conn, task, slots, now).await?;
        }
        let (name, answer, confidence) = outcome;
        task.consensus = Some(ConsensusView {
            outcome: name.to_owned(),
            answer,
            confidence,
            votes: counts
                .iter()
                .map(|c| VoteView {
                    answer: c.answer.clone(),
                    votes: i64::from(c.votes),
                    weight: c.weight,
                })
                .collect(),
            agreement: task.agreement,
            answered: submitted,
        });
        self.void_unused(
            conn,
            task,
            submitted,
            now,
            "consensus reached; slots unused",
        )
        .await?;
        if task.status != TaskStatus::Completed {
            let window = i64::try_from(self.config.review_window.as_millis()).unwrap_or(i64::MAX);
            task.review_deadline_at = Some(now.saturating_add(window));
        }
        task.status = TaskStatus::Completed;
        tracing::info!(task = %task.id, outcome = name, "consensus decided");
        Ok(())
    }

    /// Ends the claims still being worked on: the task was decided or ran out of time first,
    /// which is not held against their workers.
    async fn end_claims(
        &self,
        conn: &mut AnyConnection,
        task: &TaskRow,
        slots: &mut Slots,
        now: i64,
    ) -> ServiceResult<()> {
        slots.claimed = 0;
        sqlx::query(
            "UPDATE assignments SET status = 'task_ended', resolved_at = $1 \
             WHERE task_id = $2 AND status = 'claimed'",
        )
        .bind(now)
        .bind(task.id.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Gives back what the task holds beyond `results` paid results.
    async fn void_unused(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        results: i64,
        now: i64,
        memo: &str,
    ) -> ServiceResult<()> {
        let per_result = task.budget.checked_add(task.bonus).unwrap_or(task.budget);
        let keep = per_result.checked_mul(results).unwrap_or(Cents::ZERO);
        let excess = task.held.checked_sub(keep).unwrap_or(Cents::ZERO);
        if excess > Cents::ZERO {
            self.void_hold(conn, task, excess, now, memo).await?;
        }
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
        // Rows are locked in one order in every transaction that moves money: the agent's and
        // the escrow's accounts, the workers' accounts by id, the fee account, and only then
        // the worker rows the trust score lives in. Two settlements never wait on each other
        // in a circle.
        let mut results = self.submitted(conn, task).await?;
        results.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        let mut fees = Cents::ZERO;
        let mut paid = Vec::with_capacity(results.len());
        for assignment in &results {
            // The budget, and the partner bonus promised with the claim, leave the hold; the
            // fee is taken from the budget only.
            let bonus = assignment.bonus.min(task.bonus);
            let posted = task.budget.checked_add(bonus).unwrap_or(task.budget);
            take_from_hold(task, posted)?;
            ledger::post(conn, &pending, posted, task_id, memo, now)
                .await
                .map_err(ledger_fault)?;
            let worker = account::worker(&assignment.worker_id);
            let pay = split.worker.checked_add(bonus).unwrap_or(split.worker);
            ledger::transfer(
                conn,
                &escrow,
                &worker,
                pay,
                task_id,
                "pay for approved result",
                now,
            )
            .await
            .map_err(ledger_fault)?;
            fees = fees.checked_add(split.fee).unwrap_or(fees);
            paid.push(pay);
        }
        if fees > Cents::ZERO {
            ledger::transfer(
                conn,
                &escrow,
                account::PLATFORM_FEES,
                fees,
                task_id,
                "platform fee",
                now,
            )
            .await
            .map_err(ledger_fault)?;
        }
        if task.held > Cents::ZERO {
            let rest = task.held;
            self.void_hold(conn, task, rest, now, "unused slots")
                .await?;
        }
        for (assignment, pay) in results.iter().zip(paid) {
            resolve_assignment(conn, assignment, AssignmentStatus::Approved, pay, now).await?;
        }
        task.status = TaskStatus::Approved;
        Ok(())
    }

    /// Rejects one submitted result of a completed task and gives its share back; with no
    /// result left to review, the task ends as refunded.
    pub(super) async fn reject_one(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        assignment: &AssignmentRow,
        now: i64,
    ) -> ServiceResult<()> {
        let share = task
            .budget
            .checked_add(assignment.bonus.min(task.bonus))
            .unwrap_or(task.budget)
            .min(task.held);
        if share > Cents::ZERO {
            self.void_hold(conn, task, share, now, "result disputed")
                .await?;
        }
        if self.submitted(conn, task).await?.is_empty() {
            if task.held > Cents::ZERO {
                let rest = task.held;
                self.void_hold(conn, task, rest, now, "result disputed")
                    .await?;
            }
            task.status = TaskStatus::Refunded;
        }
        // Money first, then the worker row (see `release`).
        resolve_assignment(
            conn,
            assignment,
            AssignmentStatus::Rejected,
            Cents::ZERO,
            now,
        )
        .await?;
        Ok(())
    }

    /// Rejects every submitted result and gives the whole hold back to the agent.
    pub(super) async fn refund_results(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        now: i64,
    ) -> ServiceResult<Vec<AssignmentRow>> {
        let mut rejected = self.submitted(conn, task).await?;
        rejected.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        if task.held > Cents::ZERO {
            let all = task.held;
            self.void_hold(conn, task, all, now, "result disputed")
                .await?;
        }
        // Money first, then the worker rows (see `release`).
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
    let consensus = task
        .consensus
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_default());
    sqlx::query(
        "UPDATE tasks SET status = $1, held_cents = $2, review_deadline_at = $3, updated_at = $4, \
         version = version + 1, completed_at = COALESCE(completed_at, $5), \
         ended_at = COALESCE(ended_at, $6), slots = $8, consensus = $9 WHERE id = $7",
    )
    .bind(task.status.as_str())
    .bind(task.held.get())
    .bind(task.review_deadline_at)
    .bind(now)
    .bind(completed)
    .bind(ended)
    .bind(task.id.as_str())
    .bind(task.slots)
    .bind(consensus)
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
