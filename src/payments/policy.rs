//! Spend policies: per agent, a limit on what tasks may commit in any 24 hours, a limit per
//! task, and a threshold above which a task needs an operator's approval. They are checked in
//! the transaction that holds the task's budget, so concurrent creations cannot together
//! pass a limit. A refusal names the limit and what is left under it.

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::auth::sha256_hex;
use crate::domain::ids::AgentId;
use crate::domain::money::Cents;
use crate::service::{HumanPing, ServiceError, ServiceResult};

/// The length of the spending window of the daily limit: a rolling 24 hours.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// An agent's limits; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SpendPolicy {
    /// The most tasks may commit in any 24 hours, in cents.
    pub daily_limit_cents: Option<i64>,
    /// The most one task may commit, in cents.
    pub per_task_limit_cents: Option<i64>,
    /// Tasks committing more than this need an operator's approval, in cents.
    pub approval_threshold_cents: Option<i64>,
}

impl HumanPing {
    /// Sets an agent's spend policy (named by id or key), replacing the previous one.
    pub async fn set_spend_policy(
        &self,
        agent_ref: &str,
        policy: SpendPolicy,
    ) -> ServiceResult<(AgentId, SpendPolicy)> {
        for value in [
            policy.daily_limit_cents,
            policy.per_task_limit_cents,
            policy.approval_threshold_cents,
        ]
        .into_iter()
        .flatten()
        {
            if value < 0 {
                return Err(ServiceError::InvalidInput(
                    "spend limits must be zero or more dollars".into(),
                ));
            }
        }
        let agent = self.resolve_agent(agent_ref).await?;
        let mut tx = self.store().begin().await?;
        sqlx::query(
            "INSERT INTO spend_policies (agent_id, daily_limit_cents, per_task_limit_cents, \
             approval_threshold_cents, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (agent_id) DO UPDATE SET daily_limit_cents = excluded.daily_limit_cents, \
             per_task_limit_cents = excluded.per_task_limit_cents, \
             approval_threshold_cents = excluded.approval_threshold_cents, \
             updated_at = excluded.updated_at",
        )
        .bind(agent.as_str())
        .bind(policy.daily_limit_cents)
        .bind(policy.per_task_limit_cents)
        .bind(policy.approval_threshold_cents)
        .bind(self.clock().now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(agent = %agent, "spend policy set");
        Ok((agent, policy))
    }

    /// Approves one task above the agent's approval threshold: the code is the one the
    /// agent's refusal gave. The agent then sends the same request again.
    pub async fn approve_spend(&self, agent_ref: &str, code: &str) -> ServiceResult<AgentId> {
        let agent = self.resolve_agent(agent_ref).await?;
        let code = code.trim();
        if code.len() != 16 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::InvalidInput(
                "the approval code is the 16 hex digits the agent's refusal named".into(),
            ));
        }
        let mut tx = self.store().begin().await?;
        sqlx::query(
            "INSERT INTO spend_approvals (id, agent_id, request_hash, amount_cents, status, \
             created_at, decided_at) VALUES ($1, $2, $3, 0, 'approved', $4, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(format!("apr_{code}"))
        .bind(agent.as_str())
        .bind(code)
        .bind(self.clock().now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(agent = %agent, code, "spend approved");
        Ok(agent)
    }
}

// Limitation: policies are per agent, not per API key: every key of an agent shares them.
// Limitation: tasks awaiting approval are not listed; the agent relays its refusal's code.
/// Checks a task that would commit `amount` against the agent's policy, inside the
/// transaction that creates it. `request_hash` identifies the request for approvals.
pub(crate) async fn check(
    service: &HumanPing,
    conn: &mut AnyConnection,
    agent: &AgentId,
    amount: Cents,
    request_hash: &str,
    now: i64,
) -> ServiceResult<()> {
    let sql = format!(
        "SELECT daily_limit_cents, per_task_limit_cents, approval_threshold_cents \
         FROM spend_policies WHERE agent_id = $1{}",
        service.store().for_update()
    );
    let Some(row) = sqlx::query(&sql)
        .bind(agent.as_str())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(());
    };
    let daily: Option<i64> = row.try_get("daily_limit_cents")?;
    let per_task: Option<i64> = row.try_get("per_task_limit_cents")?;
    let threshold: Option<i64> = row.try_get("approval_threshold_cents")?;

    if let Some(limit) = per_task
        && amount.get() > limit
    {
        return Err(ServiceError::Forbidden(format!(
            "spend policy: this task needs ${amount} but the per-task limit is ${}; lower the \
             budget to ${} or less, or ask the operator to raise the limit",
            Cents::new(limit),
            Cents::new(limit)
        )));
    }
    if let Some(limit) = daily {
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(budget_cents * slots), 0) AS BIGINT) FROM tasks \
             WHERE agent_id = $1 AND created_at > $2 AND status NOT IN ('cancelled', 'expired')",
        )
        .bind(agent.as_str())
        .bind(now - DAY_MS)
        .fetch_one(&mut *conn)
        .await?;
        let left = (limit - used).max(0);
        if amount.get() > left {
            return Err(ServiceError::Forbidden(format!(
                "spend policy: the daily limit is ${} and ${} was committed in the last 24 \
                 hours, so ${} is left; this task needs ${amount}; lower the budget or wait",
                Cents::new(limit),
                Cents::new(used),
                Cents::new(left)
            )));
        }
    }
    if let Some(threshold) = threshold
        && amount.get() > threshold
    {
        let code = approval_code(agent, request_hash);
        let used = sqlx::query(
            "UPDATE spend_approvals SET status = 'used' WHERE id = $1 AND agent_id = $2 \
             AND status = 'approved'",
        )
        .bind(format!("apr_{code}"))
        .bind(agent.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if used == 0 {
            tracing::info!(agent = %agent, code, cents = amount.get(),
                "task waits for an operator's spend approval");
            return Err(ServiceError::Forbidden(format!(
                "spend policy: tasks above ${} need an operator's approval and this one needs \
                 ${amount}; ask the operator to run `humanping spend approve --agent {agent} \
                 --code {code}`, then send the same request again",
                Cents::new(threshold)
            )));
        }
    }
    Ok(())
}

/// The code an operator approves: it names this agent's exact request and nothing else.
fn approval_code(agent: &AgentId, request_hash: &str) -> String {
    sha256_hex(format!("{agent}:{request_hash}").as_bytes())[..16].to_owned()
}
