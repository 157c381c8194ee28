//! The REST API under `/v1`: JSON in and out, API keys as bearer tokens, `Idempotency-Key` on
//! the money-moving POSTs, and one error shape, `{"error": {"code", "message"}}`, for every
//! failure including unknown routes and malformed bodies.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/tasks` | agent | create a task (201), optionally waiting for the answer |
//! | `GET /v1/tasks` | agent | list tasks (`status`, `limit`, `before`) |
//! | `GET /v1/tasks/{id}` | agent | one task (`?wait=SECONDS` to wait for the answer) |
//! | `POST /v1/tasks/{id}/approve` | agent | pay the workers |
//! | `POST /v1/tasks/{id}/dispute` | agent | refund, with `{"reason": …}` |
//! | `POST /v1/tasks/{id}/cancel` | agent | cancel an unclaimed task |
//! | `GET /v1/balance` | agent | available, held, spent |
//! | `GET /v1/worker/tasks` | worker | the offered tasks |
//! | `POST /v1/worker/tasks/{id}/claim` | worker | take a slot (201) |
//! | `GET /v1/worker/assignments` | worker | own slots |
//! | `POST /v1/worker/assignments/{id}/submit` | worker | send the answer and proof |
//! | `GET /v1/worker/me` | worker | profile, trust and earnings |
//! | `POST/GET /v1/partners`, `DELETE /v1/partners/{worker_id}` | agent | partners |
//! | `GET /v1/worker/partners`, `DELETE /v1/worker/partners/{agent_id}` | worker | who partnered, leave |
//! | `POST/GET /v1/operator/honeypots` | operator | add a honeypot, list them with their answers |
//! | `POST /v1/operator/honeypots/{id}/retire` | operator | make no new tasks from a honeypot |
//! | `POST /v1/balance/topups`, `POST /v1/stripe/webhook`, `/v1/worker/payouts…` | agent, Stripe, worker | real money (see `payments.rs`) |
//! | `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json` | anyone | operations (`ops.rs`) |
//! | `POST/GET/DELETE /mcp` | agent | MCP over Streamable HTTP |
//! | `GET /sse`, `POST /messages` | agent | MCP over the legacy HTTP+SSE transport |
//!
//! Every request first passes the `Host`/`Origin` guard ([`NetworkPolicy`]); CORS preflights
//! are answered there, before authentication.

mod agent;
pub(crate) mod auth;
pub(crate) mod error;
mod extract;
mod metrics;
pub(crate) mod openapi;
mod operator;
mod ops;
mod partners;
mod payments;
mod worker;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::mcp::http::CallerAgent;
pub use crate::mcp::http::NetworkPolicy;
use crate::service::HumanPing;

/// The REST API and the MCP endpoints over `service`, accepting loopback hosts only.
pub fn router(service: HumanPing) -> Router {
    router_with(service, NetworkPolicy::default())
}

/// The REST API and the MCP endpoints over `service`, accepting the hosts and origins of
/// `policy`.
pub fn router_with(service: HumanPing, policy: NetworkPolicy) -> Router {
    // The sender is dropped at once: this router's waits are never cut short.
    app(service, policy, ops::Draining::new().1)
}

/// The whole HTTP server; `draining` tells long waits when shutdown begins.
fn app(service: HumanPing, policy: NetworkPolicy, draining: ops::Draining) -> Router {
    let mcp = crate::mcp::http::routes(service.clone()).layer(middleware::from_fn_with_state(
        service.clone(),
        require_agent,
    ));
    let web = crate::web::router(service.clone());
    let ops = ops::routes(service.clone());
    let api = Router::new()
        .route("/v1/tasks", post(agent::create_task).get(agent::list_tasks))
        .route("/v1/tasks/{id}", get(agent::get_task))
        .route("/v1/tasks/{id}/approve", post(agent::approve))
        .route("/v1/tasks/{id}/dispute", post(agent::dispute))
        .route("/v1/tasks/{id}/cancel", post(agent::cancel))
        .route("/v1/balance", get(agent::balance))
        .route("/v1/blocks", post(agent::block_worker))
        .route(
            "/v1/blocks/{worker_id}",
            axum::routing::delete(agent::unblock_worker),
        )
        .route("/v1/worker/tasks", get(worker::offers))
        .route("/v1/worker/tasks/{id}/claim", post(worker::claim))
        .route("/v1/worker/assignments", get(worker::assignments))
        .route("/v1/worker/assignments/{id}/submit", post(worker::submit))
        .route("/v1/worker/assignments/{id}/release", post(worker::release))
        .route("/v1/worker/me", get(worker::me))
        .route("/v1/partners", post(partners::add).get(partners::list))
        .route(
            "/v1/partners/{worker_id}",
            axum::routing::delete(partners::remove),
        )
        .route("/v1/worker/partners", get(partners::mine))
        .route(
            "/v1/worker/partners/{agent_id}",
            axum::routing::delete(partners::leave),
        )
        .route(
            "/v1/operator/honeypots",
            post(operator::add_honeypot).get(operator::honeypots),
        )
        .route(
            "/v1/operator/honeypots/{id}/retire",
            post(operator::retire_honeypot),
        )
        .merge(payments::routes())
        .route_layer(middleware::from_fn(self::metrics::label_route))
        .fallback(error::no_route)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::Extension(draining))
        .with_state(service);

    // A layer on a router wraps each route, inside the code that answers 405 and sets its
    // `Allow` header; wrapping the whole router as a fallback lets the middleware see that too.
    Router::new()
        .merge(mcp)
        .merge(ops)
        .fallback_service(api)
        .layer(middleware::from_fn(error::one_error_shape))
        .layer(middleware::from_fn(trace_request))
        .merge(web)
        .layer(middleware::from_fn_with_state(
            Arc::new(policy),
            crate::mcp::http::guard,
        ))
        .layer(middleware::from_fn(self::metrics::track_requests))
}

/// Lets only requests signed by an agent key through, marked with that agent.
async fn require_agent(
    auth::Agent(agent): auth::Agent,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(CallerAgent(agent));
    next.run(request).await
}

/// How long requests in flight may take to finish once the server is told to stop, unless the
/// operator says otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves the REST API on `listener` until ctrl-c or SIGTERM, then stops as
/// [`serve_with_grace`] does, within [`DEFAULT_SHUTDOWN_GRACE`].
pub async fn serve(
    service: HumanPing,
    listener: TcpListener,
    policy: NetworkPolicy,
) -> anyhow::Result<()> {
    serve_with_grace(service, listener, policy, DEFAULT_SHUTDOWN_GRACE).await
}

/// Serves the REST API on `listener` until ctrl-c or SIGTERM, then stops gracefully: no new
/// connection is accepted, waits for a result end at once with the task as it is, requests in
/// flight finish, and whatever is still open after `grace` (event streams, a slow request) is
/// closed. Nothing is settled or voided on the way out: tasks and their escrow holds stay in the
/// database for the next start.
pub async fn serve_with_grace(
    service: HumanPing,
    listener: TcpListener,
    policy: NetworkPolicy,
    grace: Duration,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("reading the listener's address")?;
    tracing::info!(%address, "REST API listening on http://{address}");

    // Replies go out at once: without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold
    // small responses back by about 40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let (stop, draining) = ops::Draining::new();
    let mut stopping = stop.subscribe();
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    // The peer address reaches handlers for the tied-account check (`ConnectInfo`).
    let app = app(service, policy, draining).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    // Limitation: open MCP event streams are not told of the shutdown; the grace period cuts them.
    let grace_over = async move {
        if stopping.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served.context("serving the REST API")?,
        () = grace_over => tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "grace period over; closing the connections still open"
        ),
    }

    tracing::info!("REST API stopped");
    Ok(())
}

/// Runs each request in a span with its method and path (never its headers, which carry keys);
/// the auth extractors record the caller's id on it.
async fn trace_request(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        caller = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        let response = next.run(request).await;
        let status = response.status().as_u16();
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(status, ms, "request finished");
        response
    }
    .instrument(span)
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
