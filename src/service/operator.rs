//! What an operator does: create agents and workers with their keys, credit test funds,
//! check the books and settle what is due.

use serde::Serialize;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::views::BalanceView;
use crate::auth::{self, Role};
use crate::domain::ids::{AgentId, WorkerId};
use crate::domain::kind::Capability;
use crate::domain::money::Cents;
use crate::ledger::{self, LedgerError, account};

/// A worker to create.
#[derive(Clone, Debug)]
pub struct NewWorker {
    pub name: String,
    /// Last known position, used to offer nearby tasks.
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub capabilities: Vec<Capability>,
    /// Languages spoken, as codes such as "en".
    pub languages: Vec<String>,
}

/// What one sweep did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepReport {
    /// Tasks whose state changed.
    pub settled: usize,
}

/// The largest single test credit: $1,000,000.00.
const MAX_CREDIT: Cents = Cents::new(100_000_000);

impl HumanPing {
    /// Creates an agent and its first API key. The key is returned once and stored only as a
    /// hash.
    pub async fn create_agent(&self, name: &str) -> ServiceResult<(AgentId, String)> {
        let name = check_name(name)?;
        let id = AgentId::generate();
        let key = auth::generate_key(self.config.live);
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO agents (id, name, webhook_secret, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.as_str())
        .bind(&name)
        .bind(super::webhooks::new_secret())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, &key, Role::Agent, id.as_str(), now).await?;
        ledger::open_account(
            &mut tx,
            &account::agent(&id),
            "agent",
            Some(id.as_str()),
            true,
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agent = %id, "agent created");
        Ok((id, key))
    }

    /// Creates an operator API key, for the operator routes under `/v1/operator`. The key is
    /// returned once and stored only as a hash.
    pub async fn create_operator_key(&self) -> ServiceResult<String> {
        let key = auth::generate_key(self.config.live);
        let mut conn = self.store.pool().acquire().await?;
        insert_key(
            &mut conn,
            &key,
            Role::Operator,
            "operator",
            self.clock.now_ms(),
        )
        .await?;
        tracing::info!(prefix = %auth::key_prefix(&key), "operator key created");
        Ok(key)
    }

    /// Creates a worker and their API key.
    pub async fn create_worker(&self, worker: NewWorker) -> ServiceResult<(WorkerId, String)> {
        let name = check_name(&worker.name)?;
        match (worker.lat, worker.lng) {
            (Some(lat), Some(lng))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) => {}
            (None, None) => {}
            _ => {
                return Err(ServiceError::invalid(
                    "a worker's position needs both lat (-90..90) and lng (-180..180)",
                ));
            }
        }
        let mut languages = Vec::new();
        for language in &worker.languages {
            let code = crate::input::read_language(language)?;
            if !languages.contains(&code) {
                languages.push(code);
            }
        }
        let capabilities: Vec<&str> = worker.capabilities.iter().map(|c| c.as_str()).collect();
        let id = WorkerId::generate();
        let key = auth::generate_key(self.config.live);
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO workers (id, name, lat, lng, capabilities, languages, created_at) \
             VALUES ($1, $2, NULLIF($3, 'NaN'), NULLIF($4, 'NaN'), $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(&name)
        .bind(crate::store::nullable_f64(worker.lat))
        .bind(crate::store::nullable_f64(worker.lng))
        .bind(capabilities.join(","))
        .bind(languages.join(","))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, &key, Role::Worker, id.as_str(), now).await?;
        ledger::open_account(
            &mut tx,
            &account::worker(&id),
            "worker",
            Some(id.as_str()),
            true,
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(worker = %id, "worker created");
        Ok((id, key))
    }

    /// Credits test funds to an agent named by id or by key. Refused in live mode, where
    /// money only comes in through payments.
    pub async fn credit(&self, agent_ref: &str, amount: Cents) -> ServiceResult<BalanceView> {
        if self.config.live {
            return Err(ServiceError::Forbidden(
                "test credits are refused in live mode; agents fund their balance with payments"
                    .into(),
            ));
        }
        if amount <= Cents::ZERO || amount > MAX_CREDIT {
            return Err(ServiceError::invalid(format!(
                "credit ${amount} is out of range; give $0.01 to ${MAX_CREDIT}"
            )));
        }
        let agent = self.resolve_agent(agent_ref).await?;
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        ledger::open_account(&mut tx, account::TEST_FUNDING, "external", None, false, now).await?;
        ledger::transfer(
            &mut tx,
            account::TEST_FUNDING,
            &account::agent(&agent),
            amount,
            None,
            "test credit",
            now,
        )
        .await
        .map_err(|e| match e {
            LedgerError::Database(e) => e.into(),
            other => ServiceError::Internal(other.into()),
        })?;
        tx.commit().await?;
        tracing::info!(agent = %agent, cents = amount.get(), "test funds credited");
        self.balance(&agent).await
    }

    /// Finds an agent by id or by one of its keys.
    pub async fn resolve_agent(&self, agent_ref: &str) -> ServiceResult<AgentId> {
        let agent_ref = agent_ref.trim();
        if auth::looks_like_key(agent_ref) {
            return self.authenticate_agent(agent_ref).await;
        }
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
            .bind(agent_ref)
            .fetch_optional(self.store.pool())
            .await?;
        found.map(AgentId::from_db).ok_or_else(|| {
            ServiceError::not_found(format!(
                "no agent {agent_ref:?}; give an agent id (agt_…) or an agent key"
            ))
        })
    }

    /// Checks every invariant of the books. Read-only.
    pub async fn verify_ledger(&self) -> anyhow::Result<ledger::verify::Report> {
        let mut tx = self.store.pool().begin().await?;
        let report = ledger::verify::verify(&mut tx).await?;
        tx.rollback().await?;
        Ok(report)
    }

    /// Settles every task time has made due: lapsed leases, passed deadlines, ended review
    /// windows.
    pub async fn sweep(&self) -> ServiceResult<SweepReport> {
        Ok(SweepReport {
            settled: self.settle_due(None).await?,
        })
    }
}

fn check_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ServiceError::invalid("name must be 1 to 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

async fn insert_key(
    conn: &mut sqlx::AnyConnection,
    key: &str,
    role: Role,
    owner: &str,
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (key_hash, prefix, role, owner_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(auth::hash_key(key))
    .bind(auth::key_prefix(key))
    .bind(role.as_str())
    .bind(owner)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
