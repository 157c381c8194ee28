//! The marketplace engine: every operation an agent, a worker or an operator can perform,
//! as transaction scripts over the [`Store`]. The MCP server, the REST API and the CLI are thin
//! layers over [`HumanPing`].
//!
//! Money-moving operations read as: validate, begin, lock the task row, settle what time has
//! made due (leases, deadlines, review windows), check, move money, commit, notify.

pub mod error;
pub mod views;
pub mod web;

mod agent;
mod changes;
mod clock;
mod fraud;
mod honeypot;
mod idempotency;
mod operator;
mod partners;
mod rows;
mod settle;
mod sightengine;
mod ties;
mod trust;
pub mod webhooks;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::auth::{self, Principal};
use crate::domain::ids::{AgentId, TaskId, WorkerId};
use crate::store::Store;

pub use changes::Change;
pub use clock::Clock;
pub use error::{ServiceError, ServiceResult};
pub use fraud::FlagView;
pub use honeypot::{HOUSE_AGENT, HoneypotView};
pub use operator::{NewWorker, SweepReport};
pub use partners::{PartnerView, PartnershipView};
pub use sightengine::SightengineConfig;
pub use ties::normalise_email;
pub use worker::{ProofInput, SubmissionInput};

/// Settings of the marketplace, with defaults a test-mode install can use as they are.
#[derive(Clone, Debug)]
pub struct Config {
    /// Platform fee in basis points of each approved budget (1000 = 10%).
    pub fee_bps: u32,
    /// How long an agent has to dispute a result before it is approved automatically.
    pub review_window: Duration,
    /// How often the background sweep settles leases, deadlines and review windows.
    pub sweep_every: Duration,
    /// Whether funds are real (Stripe). In test mode operators may credit balances.
    pub live: bool,
    /// Whether webhooks may go to loopback and private addresses (for development and tests).
    pub allow_private_webhooks: bool,
    /// Trust tiers, lowest first: the budget per human a worker's score lets them take.
    pub tiers: Vec<crate::domain::trust::Tier>,
    /// The share of a worker's feed made of honeypot tasks (0 to 0.5), when honeypots exist.
    pub honeypot_rate: f64,
    /// AI-generated image detection for proof photos; off when `None`.
    pub sightengine: Option<SightengineConfig>,
    /// How long an agent's partners see its new tasks alone (tasks may ask otherwise).
    pub partner_first_look: Duration,
    /// Real money through Stripe (top-ups, payouts); test mode when no Stripe key is set.
    pub payments: crate::payments::PaymentsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fee_bps: 1000,
            review_window: Duration::from_secs(72 * 60 * 60),
            sweep_every: Duration::from_secs(15),
            live: false,
            allow_private_webhooks: false,
            tiers: crate::domain::trust::DEFAULT_TIERS.to_vec(),
            honeypot_rate: 0.05,
            sightengine: None,
            partner_first_look: Duration::from_secs(10 * 60),
            payments: crate::payments::PaymentsConfig::default(),
        }
    }
}

/// The marketplace: a store, its settings, a clock, and a channel announcing task changes
/// (made here or, through a watcher, by other processes) to waiters in this process.
#[derive(Clone)]
pub struct HumanPing {
    store: Store,
    config: Config,
    clock: Clock,
    changes: broadcast::Sender<Change>,
    /// Network addresses recorded lately, to skip writing them again.
    seen_addresses: Arc<ties::SeenAddresses>,
    /// Stops the change watcher when the last clone is dropped.
    _watcher: Option<Arc<AbortOnDrop>>,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl HumanPing {
    /// Opens (and migrates) the database at `database_url`.
    pub async fn open(database_url: &str, config: Config) -> anyhow::Result<HumanPing> {
        let store = Store::open(database_url).await?;
        Ok(HumanPing::new(store, config, Clock::system()))
    }

    /// A marketplace over `store`. Inside a Tokio runtime it also starts the watcher that
    /// hears of other processes' changes.
    pub fn new(store: Store, config: Config, clock: Clock) -> HumanPing {
        let (changes, _) = broadcast::channel(1024);
        let watcher = tokio::runtime::Handle::try_current()
            .ok()
            .map(|_| Arc::new(AbortOnDrop(changes::spawn_watcher(&store, changes.clone()))));
        HumanPing {
            store,
            config,
            clock,
            changes,
            seen_addresses: Arc::default(),
            _watcher: watcher,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Resolves an API key to who holds it.
    pub async fn authenticate(&self, key: &str) -> ServiceResult<Principal> {
        if !auth::looks_like_key(key) {
            return Err(ServiceError::Unauthorized(
                "that is not a HumanPing API key; keys look like hp_test_… or hp_live_…".into(),
            ));
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT role, owner_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(auth::hash_key(key))
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some((role, owner)) => match role.as_str() {
                "agent" => Ok(Principal::Agent(AgentId::from_db(owner))),
                "worker" => Ok(Principal::Worker(WorkerId::from_db(owner))),
                _ => Ok(Principal::Operator),
            },
            None => Err(ServiceError::Unauthorized(format!(
                "API key {}… is unknown or revoked; ask the operator for a new key",
                auth::key_prefix(key)
            ))),
        }
    }

    /// Resolves a key that must belong to an agent.
    pub async fn authenticate_agent(&self, key: &str) -> ServiceResult<AgentId> {
        match self.authenticate(key).await? {
            Principal::Agent(id) => Ok(id),
            _ => Err(ServiceError::Forbidden(
                "this is not an agent key; use the agent's key".into(),
            )),
        }
    }

    /// Resolves a key that must belong to a worker.
    pub async fn authenticate_worker(&self, key: &str) -> ServiceResult<WorkerId> {
        match self.authenticate(key).await? {
            Principal::Worker(id) => Ok(id),
            _ => Err(ServiceError::Forbidden(
                "this is not a worker key; use the worker's key".into(),
            )),
        }
    }

    /// Checks that a key is an operator's.
    pub async fn authenticate_operator(&self, key: &str) -> ServiceResult<()> {
        match self.authenticate(key).await? {
            Principal::Operator => Ok(()),
            _ => Err(ServiceError::Forbidden(
                "this route is for operators; use an operator key (humanping operator key)".into(),
            )),
        }
    }

    /// Subscribes to task changes, made here or by other processes on the same database.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn announce(&self, task: &TaskId) {
        // No receiver is fine: nobody is waiting.
        let _ = self.changes.send(Change::Task(task.clone()));
    }

    /// Runs the sweep every `config.sweep_every` until the returned handle is aborted.
    pub fn spawn_sweeper(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.config.sweep_every);
            loop {
                ticks.tick().await;
                match self.sweep().await {
                    Ok(report) if report.settled > 0 => {
                        tracing::info!(settled = report.settled, "sweep settled due tasks")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "sweep failed"),
                }
            }
        })
    }
}
