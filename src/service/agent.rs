//! What an agent does: post tasks, follow them, approve or dispute results, cancel, and see
//! its balance.

use std::time::{Duration, Instant};

use sqlx::AnyConnection;

use super::HumanPing;
use super::changes::{self, Change};
use super::error::{ServiceError, ServiceResult};
use super::idempotency::{self, Claim};
use super::rows::{self, TASK_COLUMNS, TaskRow, load_agent_task, task_view};
use super::settle::{save_task, slots};
use super::views::{BalanceView, TaskPage, TaskView};
use crate::auth::sha256_hex;
use crate::domain::ids::{AgentId, TaskId};
use crate::domain::money::{CURRENCY, Cents};
use crate::domain::status::TaskStatus;
use crate::input::{PartnerMode, TaskDraft, read_idempotency_key};
use crate::ledger::{self, LedgerError, account};

/// How often a waiter looks again even when it heard of no change: a safety net for a lost
/// notification, not the way results normally arrive.
const SAFETY_RECHECK: Duration = Duration::from_secs(30);

impl HumanPing {
    /// Creates a task and holds `budget × workers` in escrow from the agent's balance.
    #[tracing::instrument(skip_all, fields(agent = %agent, kind = %draft.kind))]
    pub async fn create_task(&self, agent: &AgentId, draft: TaskDraft) -> ServiceResult<TaskView> {
        let now = self.clock.now_ms();
        let task = draft.validate(now)?;
        if let Some(url) = &task.callback_url {
            super::webhooks::check_url(url, self.config.allow_private_webhooks)
                .map_err(ServiceError::InvalidInput)?;
        }
        let slots = i64::from(task.workers);
        let task_id = TaskId::generate();

        let mut tx = self.store.begin().await?;
        if let Some(key) = &task.idempotency_key {
            let claim = idempotency::claim(
                &mut tx,
                agent.as_str(),
                key,
                "create_task",
                &task.request_hash,
                task_id.as_str(),
                now,
            )
            .await?;
            if let Claim::Replay(existing) = claim {
                tx.rollback().await?;
                tracing::info!(task = %existing, "idempotent replay of task creation");
                return self.get_task(agent, &existing).await;
            }
        }
        // The partner bonus is held with each slot, on top of the budget.
        let (bonus, has_partners) = match task.partners {
            PartnerMode::None => (Cents::ZERO, false),
            _ => super::partners::bonus_reserve(&mut tx, agent, task.budget).await?,
        };
        if task.partners == PartnerMode::Only && !has_partners {
            return Err(ServiceError::invalid(
                "partners \"only\" needs partners: add one with partner_add (a worker id from a \
                 result), or send partners \"prefer\"",
            ));
        }
        let first_look_until = (task.partners == PartnerMode::Prefer && has_partners).then(|| {
            let minutes = task
                .first_look_minutes
                .map_or(self.config.partner_first_look.as_millis() as i64, |m| {
                    i64::from(m) * 60_000
                });
            now + minutes
        });
        let hold = task
            .budget
            .checked_add(bonus)
            .and_then(|slot| slot.checked_mul(i64::from(task.max_workers)))
            .ok_or_else(|| ServiceError::invalid("budget × workers is too large"))?;
        crate::payments::policy::check(self, &mut tx, agent, hold, &task.request_hash, now).await?;
        let pending = match hold_in_escrow(
            &mut tx,
            &task_id,
            &account::agent(agent),
            hold,
            task.kind,
            now,
        )
        .await
        {
            Ok(pending) => pending,
            Err(LedgerError::Insufficient { .. }) => {
                tx.rollback().await?;
                let available = self.balance(agent).await?.available_cents;
                return Err(ServiceError::InsufficientFunds {
                    needed: hold,
                    available: Cents::new(available),
                });
            }
            Err(LedgerError::NoAccount(_)) => {
                return Err(ServiceError::Forbidden("this agent has no account".into()));
            }
            Err(other) => return Err(super::settle::ledger_fault(other)),
        };

        insert_task(
            &mut tx,
            &task_id,
            agent,
            &task,
            slots,
            &pending.id,
            hold,
            self.config.fee_bps,
            now,
        )
        .await?;
        if bonus > Cents::ZERO || first_look_until.is_some() {
            sqlx::query("UPDATE tasks SET bonus_cents = $1, first_look_until = $2 WHERE id = $3")
                .bind(bonus.get())
                .bind(first_look_until)
                .bind(task_id.as_str())
                .execute(&mut *tx)
                .await?;
        }

        changes::notify(&mut tx, &task_id).await?;
        let row = rows::load_task(&mut tx, task_id.as_str(), "")
            .await?
            .expect("inserted above");
        let view = task_view(&mut tx, &row).await?;
        tx.commit().await?;
        tracing::info!(task = %task_id, held_cents = hold.get(), "task created");
        self.announce(&task_id);
        Ok(view)
    }

    /// The task as it is now, after settling anything time has made due.
    pub async fn get_task(&self, agent: &AgentId, task_id: &str) -> ServiceResult<TaskView> {
        let mut conn = self.store.pool().acquire().await?;
        let task = load_agent_task(&mut conn, agent, task_id, "").await?;
        if !self.is_due(&mut conn, &task).await? {
            return task_view(&mut conn, &task).await;
        }
        drop(conn);
        self.settle_task(&task.id).await?;
        let mut conn = self.store.pool().acquire().await?;
        let task = load_agent_task(&mut conn, agent, task_id, "").await?;
        task_view(&mut conn, &task).await
    }

    /// Waits up to `wait` for the task to have a result or to end, then returns it as it is.
    pub async fn wait_for_result(
        &self,
        agent: &AgentId,
        task_id: &str,
        wait: Duration,
    ) -> ServiceResult<TaskView> {
        let until = Instant::now() + wait;
        let mut changes = self.subscribe();
        loop {
            let view = self.get_task(agent, task_id).await?;
            let settled = view.status == TaskStatus::Completed || view.status.is_final();
            let left = until.saturating_duration_since(Instant::now());
            if settled || left.is_zero() {
                return Ok(view);
            }
            let nap = tokio::time::sleep(left.min(SAFETY_RECHECK));
            tokio::pin!(nap);
            loop {
                tokio::select! {
                    _ = &mut nap => break,
                    changed = changes.recv() => match changed {
                        Ok(Change::Task(id)) if id != view.task_id => continue,
                        // This task, an unknown change, or missed messages: look again.
                        _ => break,
                    },
                }
            }
        }
    }

    /// Disputes one result of a completed task: that worker's result is rejected and its
    /// share refunded; the other results stay for review. With no result left, the task ends
    /// as refunded.
    #[tracing::instrument(skip_all, fields(agent = %agent, task = task_id))]
    pub async fn dispute_result(
        &self,
        agent: &AgentId,
        task_id: &str,
        assignment_id: &str,
        reason: &str,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<TaskView> {
        let reason = check_reason(reason)?;
        let resolution = Resolution::DisputeOne {
            assignment: assignment_id.to_owned(),
            reason,
        };
        self.resolve(agent, task_id, idempotency_key, resolution)
            .await
    }

    /// Approves a completed task: each worker is paid their share, the platform its fee.
    #[tracing::instrument(skip_all, fields(agent = %agent, task = task_id))]
    pub async fn approve(
        &self,
        agent: &AgentId,
        task_id: &str,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<TaskView> {
        self.resolve(agent, task_id, idempotency_key, Resolution::Approve)
            .await
    }

    /// Disputes a completed task: the budget goes back to the agent and the results count
    /// as rejected.
    #[tracing::instrument(skip_all, fields(agent = %agent, task = task_id))]
    pub async fn dispute(
        &self,
        agent: &AgentId,
        task_id: &str,
        reason: &str,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<TaskView> {
        let reason = check_reason(reason)?;
        self.resolve(agent, task_id, idempotency_key, Resolution::Dispute(reason))
            .await
    }

    /// Cancels a task no worker has taken; the whole hold goes back to the agent.
    #[tracing::instrument(skip_all, fields(agent = %agent, task = task_id))]
    pub async fn cancel(
        &self,
        agent: &AgentId,
        task_id: &str,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<TaskView> {
        self.resolve(agent, task_id, idempotency_key, Resolution::Cancel)
            .await
    }

    async fn resolve(
        &self,
        agent: &AgentId,
        task_id: &str,
        idempotency_key: Option<&str>,
        resolution: Resolution,
    ) -> ServiceResult<TaskView> {
        let key = idempotency_key.map(read_idempotency_key).transpose()?;
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let mut task = load_agent_task(&mut tx, agent, task_id, self.store.for_update()).await?;
        if let Some(key) = &key {
            let hash = sha256_hex(
                format!("{}:{task_id}:{}", resolution.name(), resolution.reason()).as_bytes(),
            );
            let claim = idempotency::claim(
                &mut tx,
                agent.as_str(),
                key,
                resolution.name(),
                &hash,
                task_id,
                now,
            )
            .await?;
            if let Claim::Replay(_) = claim {
                tx.rollback().await?;
                return self.get_task(agent, task_id).await;
            }
        }
        self.settle(&mut tx, &mut task, now).await?;
        self.apply(&mut tx, &mut task, &resolution, now).await?;
        save_task(&mut tx, &mut task, now).await?;
        let view = task_view(&mut tx, &task).await?;
        tx.commit().await?;
        tracing::info!(
            status = task.status.as_str(),
            "task {}",
            resolution.past_tense()
        );
        self.announce(&task.id);
        Ok(view)
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        task: &mut TaskRow,
        resolution: &Resolution,
        now: i64,
    ) -> ServiceResult<()> {
        let id = &task.id;
        match (resolution, task.status) {
            (Resolution::Approve, TaskStatus::Completed) => {
                self.release(conn, task, now, "approved by the agent").await
            }
            (Resolution::DisputeOne { assignment, reason }, TaskStatus::Completed) => {
                let waiting = rows::task_assignments(
                    conn,
                    &task.id,
                    &[crate::domain::status::AssignmentStatus::Submitted],
                )
                .await?;
                let target = waiting
                    .into_iter()
                    .find(|a| a.id.as_str() == assignment)
                    .ok_or_else(|| {
                        ServiceError::not_found(format!(
                            "task {id} has no result {assignment:?} waiting for review; its \
                             results list the assignment ids"
                        ))
                    })?;
                self.reject_one(conn, task, &target, now).await?;
                record_dispute(conn, task, target.id.as_str(), reason, now).await
            }
            (Resolution::Dispute(reason), TaskStatus::Completed) => {
                let rejected = self.refund_results(conn, task, now).await?;
                for assignment in rejected {
                    record_dispute(conn, task, assignment.id.as_str(), reason, now).await?;
                }
                Ok(())
            }
            (Resolution::Cancel, TaskStatus::Open) => {
                let taken = slots(conn, task, now).await?;
                if taken.claimed + taken.submitted > 0 {
                    return Err(ServiceError::conflict(format!(
                        "task {id} has been claimed by a worker and can no longer be cancelled; \
                         wait for the result and dispute it if it is wrong"
                    )));
                }
                self.end_unfinished(
                    conn,
                    task,
                    TaskStatus::Cancelled,
                    now,
                    "cancelled by the agent",
                )
                .await
            }
            (Resolution::Cancel, TaskStatus::InProgress | TaskStatus::Completed) => {
                Err(ServiceError::conflict(format!(
                    "task {id} has been claimed by a worker and can no longer be cancelled; \
                     wait for the result and dispute it if it is wrong"
                )))
            }
            (_, TaskStatus::Open | TaskStatus::InProgress) => Err(ServiceError::conflict(format!(
                "task {id} has no result yet, so there is nothing to {}; \
                 call get_task with wait_seconds to wait for it",
                resolution.name()
            ))),
            (_, status) => Err(ServiceError::conflict(format!(
                "task {id} is already {}; nothing more can be done with it",
                status.as_str()
            ))),
        }
    }

    /// The agent's tasks, newest first, `limit` at a time.
    pub async fn list_tasks(
        &self,
        agent: &AgentId,
        status: Option<TaskStatus>,
        limit: u32,
        before: Option<&str>,
    ) -> ServiceResult<TaskPage> {
        if !(1..=100).contains(&limit) {
            return Err(ServiceError::invalid(format!(
                "limit {limit} is out of range; give 1 to 100"
            )));
        }
        self.settle_due(Some(agent)).await?;
        let mut conn = self.store.pool().acquire().await?;
        let cursor = match before {
            Some(id) => {
                let task = load_agent_task(&mut conn, agent, id, "")
                    .await
                    .map_err(|_| {
                        ServiceError::invalid(format!("cursor {id:?} is not one of your task ids"))
                    })?;
                Some((task.created_at, task.id))
            }
            None => None,
        };
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE agent_id = $1 \
             AND ($2 = '' OR status = $2) \
             AND ($3 < 0 OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let (cursor_at, cursor_id) = cursor
            .map(|(at, id)| (at, id.to_string()))
            .unwrap_or((-1, String::new()));
        let found = sqlx::query(&sql)
            .bind(agent.as_str())
            .bind(status.map(|s| s.as_str()).unwrap_or(""))
            .bind(cursor_at)
            .bind(cursor_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *conn)
            .await?;
        let mut tasks = Vec::with_capacity(found.len());
        for row in found.iter().take(limit as usize) {
            tasks.push(task_view(&mut conn, &TaskRow::from_row(row)?).await?);
        }
        let next_cursor = (found.len() > limit as usize)
            .then(|| tasks.last().map(|t: &TaskView| t.task_id.to_string()))
            .flatten();
        Ok(TaskPage { tasks, next_cursor })
    }

    /// Keeps a worker off this agent's tasks: they are no longer offered them and cannot claim
    /// them. Claims already running are not affected.
    pub async fn block_worker(&self, agent: &AgentId, worker_id: &str) -> ServiceResult<()> {
        let unknown = || {
            ServiceError::not_found(format!(
                "no worker {worker_id:?}; give a worker id from a result"
            ))
        };
        let worker = crate::domain::ids::WorkerId::parse(worker_id).ok_or_else(unknown)?;
        let mut tx = self.store.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM workers WHERE id = $1")
            .bind(worker.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        exists.ok_or_else(unknown)?;
        sqlx::query(
            "INSERT INTO agent_blocks (agent_id, worker_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id, worker_id) DO NOTHING",
        )
        .bind(agent.as_str())
        .bind(worker.as_str())
        .bind(self.clock.now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(agent = %agent, worker = %worker, "worker blocked");
        Ok(())
    }

    /// Lets a blocked worker take this agent's tasks again.
    pub async fn unblock_worker(&self, agent: &AgentId, worker_id: &str) -> ServiceResult<()> {
        let mut tx = self.store.begin().await?;
        let removed =
            sqlx::query("DELETE FROM agent_blocks WHERE agent_id = $1 AND worker_id = $2")
                .bind(agent.as_str())
                .bind(worker_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        if removed == 0 {
            return Err(ServiceError::not_found(format!(
                "worker {worker_id:?} is not blocked"
            )));
        }
        Ok(())
    }

    /// The agent's available and held funds.
    pub async fn balance(&self, agent: &AgentId) -> ServiceResult<BalanceView> {
        self.settle_due(Some(agent)).await?;
        let mut conn = self.store.pool().acquire().await?;
        let totals = ledger::totals(&mut conn, &account::agent(agent))
            .await?
            .unwrap_or_default();
        Ok(BalanceView {
            agent_id: agent.clone(),
            available_cents: totals.available(),
            available: Cents::new(totals.available()).to_string(),
            held_cents: totals.debits_pending,
            held: Cents::new(totals.debits_pending).to_string(),
            spent_cents: totals.debits_posted,
            currency: CURRENCY.to_owned(),
        })
    }

    /// Whether time has made something due on this task (checked without locking).
    async fn is_due(&self, conn: &mut AnyConnection, task: &TaskRow) -> ServiceResult<bool> {
        if task.status.is_final() {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        if task.deadline_at <= now || task.review_deadline_at.is_some_and(|r| r <= now) {
            return Ok(true);
        }
        let lapsed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM assignments WHERE task_id = $1 AND status = 'claimed' \
             AND lease_expires_at <= $2",
        )
        .bind(task.id.as_str())
        .bind(now)
        .fetch_one(conn)
        .await?;
        Ok(lapsed > 0)
    }

    /// Settles one task in its own transaction; announces it when something changed.
    pub(super) async fn settle_task(&self, id: &TaskId) -> ServiceResult<bool> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(mut task) = rows::load_task(&mut tx, id.as_str(), self.store.for_update()).await?
        else {
            return Ok(false);
        };
        let changed = self.settle(&mut tx, &mut task, now).await?.changed;
        tx.commit().await?;
        if changed {
            tracing::info!(task = %id, status = task.status.as_str(), "task settled");
            self.announce(id);
        }
        Ok(changed)
    }

    /// Settles every task (of one agent, or all) that time has made due. Returns how many
    /// changed.
    pub(super) async fn settle_due(&self, agent: Option<&AgentId>) -> ServiceResult<usize> {
        let now = self.clock.now_ms();
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM tasks t WHERE t.status IN ('open', 'in_progress', 'completed') \
             AND ($1 = '' OR t.agent_id = $1) \
             AND (t.deadline_at <= $2 OR t.review_deadline_at <= $2 OR EXISTS ( \
                 SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.status = 'claimed' \
                 AND a.lease_expires_at <= $2)) \
             ORDER BY t.deadline_at LIMIT 500",
        )
        .bind(agent.map(AgentId::as_str).unwrap_or(""))
        .bind(now)
        .fetch_all(self.store.pool())
        .await?;
        let mut changed = 0;
        for id in due {
            if self.settle_task(&TaskId::from_db(id)).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// The ways an agent can settle a task.
enum Resolution {
    Approve,
    Dispute(String),
    /// A dispute of one result of a task several humans answered.
    DisputeOne {
        assignment: String,
        reason: String,
    },
    Cancel,
}

impl Resolution {
    fn name(&self) -> &'static str {
        match self {
            Resolution::Approve => "approve",
            Resolution::Dispute(_) | Resolution::DisputeOne { .. } => "dispute",
            Resolution::Cancel => "cancel",
        }
    }

    fn past_tense(&self) -> &'static str {
        match self {
            Resolution::Approve => "approved",
            Resolution::Dispute(_) | Resolution::DisputeOne { .. } => "disputed",
            Resolution::Cancel => "cancelled",
        }
    }

    /// What, besides the task, defines the request (for idempotency).
    fn reason(&self) -> String {
        match self {
            Resolution::Dispute(reason) => reason.clone(),
            Resolution::DisputeOne { assignment, reason } => format!("{assignment}:{reason}"),
            _ => String::new(),
        }
    }
}

/// A dispute's reason: 1 to 2000 characters.
fn check_reason(reason: &str) -> ServiceResult<String> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2_000 {
        return Err(ServiceError::invalid(
            "dispute reason must be 1 to 2000 characters: say what was wrong with the result",
        ));
    }
    Ok(reason.to_owned())
}

/// Keeps a dispute's reason for the operator.
async fn record_dispute(
    conn: &mut AnyConnection,
    task: &TaskRow,
    assignment: &str,
    reason: &str,
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO disputes (id, task_id, assignment_id, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(format!("dsp_{}", crate::domain::ids::random_token(16)))
    .bind(task.id.as_str())
    .bind(assignment)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A value as stored in a JSON text column.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// Opens a new task's escrow account and holds `amount` in it from the `payer` account.
pub(super) async fn hold_in_escrow(
    conn: &mut AnyConnection,
    task: &TaskId,
    payer: &str,
    amount: Cents,
    kind: crate::domain::kind::TaskKind,
    now: i64,
) -> Result<ledger::Pending, LedgerError> {
    let escrow = account::escrow(task);
    ledger::open_account(conn, &escrow, "escrow", Some(task.as_str()), true, now).await?;
    let memo = format!("escrow for {kind} task");
    ledger::hold(
        conn,
        payer,
        &escrow,
        amount,
        Some(task.as_str()),
        &memo,
        now,
    )
    .await
}

/// Writes a new task row, open, holding `hold` under the pending transfer `pending_id`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_task(
    conn: &mut AnyConnection,
    id: &TaskId,
    agent: &AgentId,
    task: &crate::input::NewTask,
    slots: i64,
    pending_id: &str,
    hold: Cents,
    fee_bps: u32,
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
            "INSERT INTO tasks (id, agent_id, kind, instruction, details, context, address, lat, lng, \
             radius_m, language, response_format, proof, metadata, callback_url, budget_cents, fee_bps, \
             currency, slots, status, hold_transfer_id, held_cents, deadline_at, created_at, \
             updated_at, max_workers, agreement, weighting, partners) VALUES ($1, $2, $3, $4, $5, \
             $6, $7, NULLIF($8, 'NaN'), NULLIF($9, 'NaN'), $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, 'open', $20, $21, $22, $23, $23, $24, $25, $26, $27)",
        )
        .bind(id.as_str())
        .bind(agent.as_str())
        .bind(task.kind.as_str())
        .bind(&task.instruction)
        .bind(json(&task.details))
        .bind(&task.context)
        .bind(&task.address)
        .bind(crate::store::nullable_f64(task.lat))
        .bind(crate::store::nullable_f64(task.lng))
        .bind(task.radius_m)
        .bind(&task.language)
        .bind(json(&task.response))
        .bind(json(&task.proof))
        .bind(task.metadata.as_ref().map(json))
        .bind(&task.callback_url)
        .bind(task.budget.get())
        .bind(i64::from(fee_bps))
        .bind(CURRENCY)
        .bind(slots)
        .bind(pending_id)
        .bind(hold.get())
        .bind(task.deadline_at_ms)
        .bind(now)
        .bind(i64::from(task.max_workers))
        .bind(i64::from(task.agreement))
        .bind(task.weighting.as_str())
        .bind(task.partners.as_str())
        .execute(conn)
        .await?;

    Ok(())
}
