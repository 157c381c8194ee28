//! Persistent partners: an agent keeps the workers whose work it liked. Partners see the
//! agent's new tasks first (alone during a first-look window, or exclusively with
//! `partners: "only"`), read the notes the agent keeps for them with each task, and are paid a
//! bonus on top of the budget, in basis points of it, by the agent: the largest bonus among the
//! agent's partners is held with each slot when the task is created, paid to a partner who
//! answers, and given back otherwise. A worker sees who partnered with them and may leave.

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::AnyConnection;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::views::timestamp;
use crate::domain::ids::{AgentId, WorkerId};
use crate::domain::money::Cents;

/// The largest partner bonus: half the budget.
pub const MAX_BONUS_BPS: u32 = 5_000;
const MAX_NOTES_CHARS: usize = 4_000;

/// A partner, as the agent sees them.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct PartnerView {
    #[schema(value_type = String)]
    pub worker_id: WorkerId,
    pub name: String,
    /// The notes shown to this partner with each of your tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Paid on top of the budget, in basis points of it (100 = 1%).
    pub bonus_bps: i64,
    pub since: String,
    /// Their results on your tasks: approved, rejected.
    pub approved: i64,
    pub rejected: i64,
    pub trust_score: i64,
}

/// An agent that partnered with a worker, as the worker sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct PartnershipView {
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub bonus_bps: i64,
    pub since: String,
}

impl HumanPing {
    /// Partners with a worker who has sent a result for one of the agent's tasks, or changes
    /// the notes and bonus of an existing partner.
    pub async fn partner_add(
        &self,
        agent: &AgentId,
        worker_id: &str,
        notes: Option<&str>,
        bonus_bps: Option<u32>,
    ) -> ServiceResult<PartnerView> {
        let unknown = || {
            ServiceError::not_found(format!(
                "worker {worker_id:?} has sent no result for your tasks; partner with a worker \
                 id from a task's results"
            ))
        };
        let worker = WorkerId::parse(worker_id).ok_or_else(unknown)?;
        let notes = notes.map(str::trim).filter(|n| !n.is_empty());
        if notes.is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS) {
            return Err(ServiceError::invalid(format!(
                "notes are too long; keep them under {MAX_NOTES_CHARS} characters"
            )));
        }
        let bonus = bonus_bps.unwrap_or(0);
        if bonus > MAX_BONUS_BPS {
            return Err(ServiceError::invalid(format!(
                "bonus_bps {bonus} is too high; give 0 to {MAX_BONUS_BPS} (50% of the budget)"
            )));
        }
        let now = self.clock.now_ms();
        let mut conn = self.store.pool().acquire().await?;
        let worked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM assignments a JOIN tasks t ON t.id = a.task_id \
             WHERE a.worker_id = $1 AND t.agent_id = $2 \
             AND a.status IN ('submitted', 'approved', 'rejected')",
        )
        .bind(worker.as_str())
        .bind(agent.as_str())
        .fetch_one(&mut *conn)
        .await?;
        if worked == 0 {
            return Err(unknown());
        }
        sqlx::query(
            "INSERT INTO partners (agent_id, worker_id, notes, bonus_bps, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, worker_id) \
             DO UPDATE SET notes = excluded.notes, bonus_bps = excluded.bonus_bps",
        )
        .bind(agent.as_str())
        .bind(worker.as_str())
        .bind(notes)
        .bind(i64::from(bonus))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        tracing::info!(%agent, %worker, bonus_bps = bonus, "partner added");
        let mine = partner_rows(&mut conn, agent, Some(&worker)).await?;
        mine.into_iter().next().ok_or_else(unknown)
    }

    /// Ends a partnership; the worker's claims in progress keep their promised bonus.
    pub async fn partner_remove(&self, agent: &AgentId, worker_id: &str) -> ServiceResult<()> {
        let done = sqlx::query("DELETE FROM partners WHERE agent_id = $1 AND worker_id = $2")
            .bind(agent.as_str())
            .bind(worker_id)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServiceError::not_found(format!(
                "worker {worker_id:?} is not your partner; `partners` lists them"
            )));
        }
        Ok(())
    }

    /// The agent's partners with their record on the agent's tasks.
    pub async fn partners(&self, agent: &AgentId) -> ServiceResult<Vec<PartnerView>> {
        let mut conn = self.store.pool().acquire().await?;
        partner_rows(&mut conn, agent, None).await
    }

    /// The agents that partnered with this worker.
    pub async fn worker_partnerships(
        &self,
        worker: &WorkerId,
    ) -> ServiceResult<Vec<PartnershipView>> {
        let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT p.agent_id, a.name, p.notes, p.bonus_bps, p.created_at FROM partners p \
             JOIN agents a ON a.id = p.agent_id WHERE p.worker_id = $1 ORDER BY p.created_at",
        )
        .bind(worker.as_str())
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(agent, name, notes, bonus_bps, since)| PartnershipView {
                agent_id: AgentId::from_db(agent),
                agent_name: name,
                notes,
                bonus_bps,
                since: timestamp(since),
            })
            .collect())
    }

    /// A worker leaves an agent's partners.
    pub async fn leave_partnership(&self, worker: &WorkerId, agent_id: &str) -> ServiceResult<()> {
        let done = sqlx::query("DELETE FROM partners WHERE agent_id = $1 AND worker_id = $2")
            .bind(agent_id)
            .bind(worker.as_str())
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(ServiceError::not_found(format!(
                "agent {agent_id:?} has not partnered with you; GET /v1/worker/partners lists \
                 who has"
            )));
        }
        Ok(())
    }
}

/// worker, name, notes, bonus_bps, since, trust score, approved, rejected.
type PartnerRow = (String, String, Option<String>, i64, i64, i64, i64, i64);

async fn partner_rows(
    conn: &mut AnyConnection,
    agent: &AgentId,
    only: Option<&WorkerId>,
) -> ServiceResult<Vec<PartnerView>> {
    let rows: Vec<PartnerRow> = sqlx::query_as(
        "SELECT p.worker_id, w.name, p.notes, p.bonus_bps, p.created_at, w.trust_score, \
         (SELECT COUNT(*) FROM assignments a JOIN tasks t ON t.id = a.task_id \
           WHERE a.worker_id = p.worker_id AND t.agent_id = p.agent_id \
           AND a.status = 'approved') AS approved, \
         (SELECT COUNT(*) FROM assignments a JOIN tasks t ON t.id = a.task_id \
           WHERE a.worker_id = p.worker_id AND t.agent_id = p.agent_id \
           AND a.status = 'rejected') AS rejected \
         FROM partners p JOIN workers w ON w.id = p.worker_id \
         WHERE p.agent_id = $1 AND ($2 = '' OR p.worker_id = $2) ORDER BY p.created_at",
    )
    .bind(agent.as_str())
    .bind(only.map_or("", |w| w.as_str()))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(worker, name, notes, bonus_bps, since, trust, approved, rejected)| PartnerView {
                worker_id: WorkerId::from_db(worker),
                name,
                notes,
                bonus_bps,
                since: timestamp(since),
                approved,
                rejected,
                trust_score: trust,
            },
        )
        .collect())
}

/// The bonus held per slot of a new task: the largest its agent's partners could earn.
pub(super) async fn bonus_reserve(
    conn: &mut AnyConnection,
    agent: &AgentId,
    budget: Cents,
) -> ServiceResult<(Cents, bool)> {
    let (count, most): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MAX(bonus_bps) FROM partners WHERE agent_id = $1")
            .bind(agent.as_str())
            .fetch_one(conn)
            .await?;
    Ok((bonus_of(budget, most.unwrap_or(0)), count > 0))
}

/// A bonus in basis points of the budget, rounded down to the cent.
pub(super) fn bonus_of(budget: Cents, bps: i64) -> Cents {
    Cents::new(
        budget
            .get()
            .saturating_mul(bps.clamp(0, i64::from(MAX_BONUS_BPS)))
            / 10_000,
    )
}

/// The partnership of a worker with a task's agent: the notes and the bonus, if any.
pub(super) async fn of(
    conn: &mut AnyConnection,
    agent: &AgentId,
    worker: &WorkerId,
) -> ServiceResult<Option<(Option<String>, i64)>> {
    Ok(sqlx::query_as(
        "SELECT notes, bonus_bps FROM partners WHERE agent_id = $1 AND worker_id = $2",
    )
    .bind(agent.as_str())
    .bind(worker.as_str())
    .fetch_optional(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bonuses_round_down_and_stay_within_half_the_budget() {
        assert_eq!(bonus_of(Cents::new(333), 1000), Cents::new(33));
        assert_eq!(bonus_of(Cents::new(500), 0), Cents::ZERO);
        assert_eq!(bonus_of(Cents::new(500), 9_999), Cents::new(250));
        assert_eq!(bonus_of(Cents::new(500), -5), Cents::ZERO);
    }
}
