//! What operators and orchestrators ask of a running server: `GET /healthz` (the process
//! answers), `GET /readyz` (it can serve: the database answers and its schema is complete) and
//! `GET /metrics` (Prometheus text format). None of them needs a key.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sqlx::migrate::Migrate;
use tokio::sync::{OnceCell, watch};

use crate::domain::ids::AgentId;
use crate::domain::status::TaskStatus;
use crate::service::views::TaskView;
use crate::service::{HumanPing, ServiceResult};

/// How long the database may take to answer a readiness check before the server is reported
/// not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// The state of the operations routes.
#[derive(Clone)]
struct Ops {
    service: HumanPing,
    /// The migrations the database had when this router was made: `HumanPing::open` applies
    /// every migration the binary carries before the server starts, so these are the ones it
    /// needs.
    // Limitation: expected migrations are those applied at start, not the binary's own list.
    expected: Arc<OnceCell<BTreeSet<i64>>>,
}

/// The body of `GET /healthz`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`: the process is up and answering.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The body of `GET /readyz`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// `ready`, or `not_ready` with the reasons.
    #[schema(example = "ready")]
    status: &'static str,
    /// Each check by name (`database`, `migrations`): `ok` or what is wrong.
    checks: ReadinessChecks,
}

/// The checks behind `GET /readyz`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ReadinessChecks {
    /// Whether the database answers a query: `ok`, or why not.
    database: String,
    /// Whether every migration this server needs is applied: `ok`, or which are missing.
    migrations: String,
}

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json` over `service`.
pub(crate) fn routes(service: HumanPing) -> Router {
    let ops = Ops {
        service,
        expected: Arc::new(OnceCell::new()),
    };
    // Note the schema now, while it is known to be complete (the service migrated it when it
    // opened the database), rather than at the first probe.
    if tokio::runtime::Handle::try_current().is_ok() {
        let early = ops.clone();
        tokio::spawn(async move {
            if let Err(error) = early.expected().await {
                tracing::warn!(%error, "could not read the applied migrations at start");
            }
        });
    }
    super::metrics::install();
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(super::openapi::openapi_json))
        .with_state(ops)
}

impl Ops {
    async fn expected(&self) -> Result<&BTreeSet<i64>, String> {
        self.expected
            .get_or_try_init(|| applied_migrations(&self.service))
            .await
    }
}

/// The versions of the migrations applied to the database.
async fn applied_migrations(service: &HumanPing) -> Result<BTreeSet<i64>, String> {
    let mut conn = service
        .store()
        .pool()
        .acquire()
        .await
        .map_err(|e| format!("cannot reach the database: {e}"))?;
    if let Some(version) = conn
        .dirty_version()
        .await
        .map_err(|e| format!("cannot read the migrations table: {e}"))?
    {
        return Err(format!(
            "migration {version} failed part way; fix the database, then run `humanping migrate`"
        ));
    }
    let applied = conn
        .list_applied_migrations()
        .await
        .map_err(|e| format!("cannot read the migrations table ({e}); run `humanping migrate`"))?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}

/// Liveness: the process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The process is up", body = Health))
)]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers within 3 seconds and every migration the server needs is
/// applied. A load balancer should send traffic only while this answers 200.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready; `checks` says why", body = Readiness),
    )
)]
async fn ready(State(ops): State<Ops>) -> Response {
    let (database, migrations) = match tokio::time::timeout(READY_TIMEOUT, check(&ops)).await {
        Ok(checks) => checks,
        Err(_) => (
            format!(
                "the database did not answer within {} seconds",
                READY_TIMEOUT.as_secs()
            ),
            "unknown: the database did not answer".to_owned(),
        ),
    };
    let ready = database == "ok" && migrations == "ok";
    if !ready {
        tracing::warn!(%database, %migrations, "not ready");
    }
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks: ReadinessChecks {
            database,
            migrations,
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The database check and the migrations check, each `ok` or what is wrong.
async fn check(ops: &Ops) -> (String, String) {
    if let Err(error) = sqlx::query("SELECT 1")
        .execute(ops.service.store().pool())
        .await
    {
        return (
            format!("cannot reach the database: {error}"),
            "unknown: the database is unreachable".to_owned(),
        );
    }
    let expected = match ops.expected().await {
        Ok(expected) => expected,
        Err(error) => return ("ok".to_owned(), error),
    };
    let migrations = match applied_migrations(&ops.service).await {
        Ok(applied) => {
            let missing: Vec<String> = expected
                .difference(&applied)
                .map(ToString::to_string)
                .collect();
            if missing.is_empty() {
                "ok".to_owned()
            } else {
                format!(
                    "migrations {} are not applied; run `humanping migrate`",
                    missing.join(", ")
                )
            }
        }
        Err(error) => error,
    };
    ("ok".to_owned(), migrations)
}

/// Prometheus metrics: requests, waits, tasks by state, escrow held, webhook deliveries.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses((
        status = 200,
        description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain; version=0.0.4",
        body = String
    ))
)]
async fn metrics(State(ops): State<Ops>) -> Response {
    let text = super::metrics::render(&ops.service).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Whether the server has begun to shut down, as a request extension: long waits end early
/// when it has, so requests in flight can finish within the grace period.
#[derive(Clone)]
pub(crate) struct Draining(watch::Receiver<bool>);

impl Draining {
    /// A signal, and the sender that raises it (`send(true)`).
    pub(crate) fn new() -> (watch::Sender<bool>, Draining) {
        let (sender, receiver) = watch::channel(false);
        (sender, Draining(receiver))
    }

    /// Resolves once shutdown has begun; never, if the sender is gone without raising it.
    async fn started(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|draining| *draining).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits up to `wait` for the task's result, as `HumanPing::wait_for_result` does, but answers
/// with the task as it is at once when the server starts to shut down: the task, its hold and
/// its money stay as they are, and the agent picks the result up later.
pub(crate) async fn wait_for_result(
    service: &HumanPing,
    draining: &Draining,
    agent: &AgentId,
    task_id: &str,
    wait: Duration,
) -> ServiceResult<TaskView> {
    let timer = super::metrics::WaitTimer::start();
    tokio::select! {
        waited = service.wait_for_result(agent, task_id, wait) => {
            match &waited {
                Ok(task) if matches!(task.status, TaskStatus::Open | TaskStatus::InProgress) => {
                    timer.finish("timeout")
                }
                Ok(_) => timer.finish("result"),
                Err(_) => timer.finish("error"),
            }
            waited
        }
        () = draining.started() => {
            timer.finish("shutdown");
            tracing::info!(task = task_id, "server stopping: the wait ends early");
            service.get_task(agent, task_id).await
        }
    }
}
