//! Prometheus metrics for `GET /metrics`.
//!
//! What happens in this process (HTTP requests, waits for results) is counted through the
//! `metrics` facade into one process-wide Prometheus recorder. What the database knows (tasks
//! per state, escrow held, webhook deliveries) is read at scrape time, so every server process
//! on a shared database reports the same totals and nothing drifts after a restart.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::Row;

use crate::service::HumanPing;

/// Requests answered, by method, route template and status.
const REQUESTS: &str = "humanping_http_requests_total";
/// How long requests took, by method and route template.
const REQUEST_SECONDS: &str = "humanping_http_request_duration_seconds";
/// Requests being answered now.
const REQUESTS_IN_FLIGHT: &str = "humanping_http_requests_in_flight";
// Limitation: only the REST API's waits are counted; MCP tools wait inside the service, unseen.
/// Agents waiting for a human's result right now.
const WAITS_IN_PROGRESS: &str = "humanping_waits_in_progress";
/// Finished waits, by outcome (`result`: the task left `open`/`in_progress` in time; `timeout`:
/// it did not; `error`; `shutdown`: cut short because the server is stopping; `cancelled`: the
/// client went away).
const WAITS: &str = "humanping_waits_total";
/// How long waits lasted.
const WAIT_SECONDS: &str = "humanping_wait_duration_seconds";

/// Histogram buckets, in seconds, for request and wait durations (waits last up to 120 s).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The route label of a request no route matched, so unknown paths cannot grow the label set.
const UNMATCHED: &str = "unmatched";

/// The route template a nested router matched, handed outwards on the response.
#[derive(Clone)]
struct RouteLabel(String);

/// The process-wide recorder's handle; installed on first use.
///
/// The recorder is global (the `metrics` facade has one), so a process serving several routers
/// (as tests do) reports their requests together.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "histogram buckets refused; durations render as summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            // Another recorder owns the facade: `/metrics` then shows the database gauges only.
            tracing::warn!(%error, "a metrics recorder was already installed");
        } else {
            describe();
        }
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "time to answer an HTTP request, by method and route"
    );
    metrics::describe_gauge!(REQUESTS_IN_FLIGHT, "HTTP requests being answered now");
    metrics::describe_gauge!(WAITS_IN_PROGRESS, "agents waiting for a human's result now");
    metrics::describe_counter!(WAITS, "finished waits for a result, by outcome");
    metrics::describe_histogram!(
        WAIT_SECONDS,
        metrics::Unit::Seconds,
        "how long an agent waited for a result"
    );
}

/// Makes sure the recorder is installed, so the first requests are counted too.
pub(crate) fn install() {
    let _ = handle();
}

/// Middleware on the whole server: counts every request and times it, labelled by the route
/// template (`/v1/tasks/{id}`), never the raw path.
pub(crate) async fn track_requests(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let started = Instant::now();
    metrics::gauge!(REQUESTS_IN_FLIGHT).increment(1.0);
    let response = next.run(request).await;
    metrics::gauge!(REQUESTS_IN_FLIGHT).decrement(1.0);

    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|label| label.0.clone())
        .or(matched)
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.clone()),
        ("route", route.clone()),
        ("status", status),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Route layer of a nested router: passes the matched route template out on the response,
/// where [`track_requests`] (outside the nesting, where it is not visible) reads it.
pub(crate) async fn label_route(request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = matched {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// A wait for a result, counted while it lasts.
pub(crate) struct WaitTimer {
    started: Instant,
    finished: bool,
}

impl WaitTimer {
    /// Counts a wait as in progress until [`WaitTimer::finish`] (or drop, as `cancelled`).
    pub(crate) fn start() -> WaitTimer {
        metrics::gauge!(WAITS_IN_PROGRESS).increment(1.0);
        WaitTimer {
            started: Instant::now(),
            finished: false,
        }
    }

    /// Records how the wait ended: `result`, `timeout`, `error` or `shutdown`.
    pub(crate) fn finish(mut self, outcome: &'static str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        metrics::gauge!(WAITS_IN_PROGRESS).decrement(1.0);
        metrics::counter!(WAITS, "outcome" => outcome).increment(1);
        metrics::histogram!(WAIT_SECONDS).record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for WaitTimer {
    fn drop(&mut self) {
        // A wait dropped unfinished was cancelled with its request (the client went away).
        self.record("cancelled");
    }
}

/// How long the database may take to answer the scrape-time queries.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The text of `GET /metrics`: the process's own metrics, then what the database holds now.
///
/// A database that does not answer leaves its gauges out and sets
/// `humanping_database_up 0`, so the scrape itself still succeeds.
pub(crate) async fn render(service: &HumanPing) -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();

    let database = tokio::time::timeout(DATABASE_TIMEOUT, database_gauges(service)).await;
    let up = match database {
        Ok(Ok(gauges)) => {
            text.push_str(&gauges);
            1
        }
        Ok(Err(error)) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "metrics: database query failed"
            );
            0
        }
        Err(_) => {
            tracing::warn!("metrics: the database did not answer within {DATABASE_TIMEOUT:?}");
            0
        }
    };
    gauge_header(
        &mut text,
        "humanping_database_up",
        "1 when the database answered this scrape's queries",
    );
    let _ = writeln!(text, "humanping_database_up {up}");
    text
}

/// The gauges read from the database, in Prometheus text format.
async fn database_gauges(service: &HumanPing) -> anyhow::Result<String> {
    let pool = service.store().pool();
    let mut text = String::new();

    let tasks = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
        .fetch_all(pool)
        .await?;
    gauge_header(
        &mut text,
        "humanping_tasks",
        "tasks in the database, by state",
    );
    for row in &tasks {
        let status: String = row.try_get("status")?;
        let count: i64 = row.try_get("n")?;
        let _ = writeln!(
            text,
            "humanping_tasks{{status=\"{}\"}} {count}",
            escape(&status)
        );
    }

    let held: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(held_cents), 0) AS BIGINT) FROM tasks")
            .fetch_one(pool)
            .await?;
    gauge_header(
        &mut text,
        "humanping_escrow_held_cents",
        "money held in escrow for unfinished tasks, in cents",
    );
    let _ = writeln!(text, "humanping_escrow_held_cents {held}");

    let events = sqlx::query(
        "SELECT \
           CAST(COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS delivered, \
           CAST(COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS failed, \
           CAST(COALESCE(SUM(CASE WHEN delivered_at IS NULL AND failed_at IS NULL \
             THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
           CAST(COALESCE(SUM(attempts), 0) AS BIGINT) AS attempts \
         FROM webhook_events",
    )
    .fetch_one(pool)
    .await?;
    gauge_header(
        &mut text,
        "humanping_webhook_events",
        "webhook events, by delivery state (delivered, pending, failed: given up)",
    );
    for state in ["delivered", "pending", "failed"] {
        let count: i64 = events.try_get(state)?;
        let _ = writeln!(
            text,
            "humanping_webhook_events{{state=\"{state}\"}} {count}"
        );
    }
    gauge_header(
        &mut text,
        "humanping_webhook_delivery_attempts",
        "webhook delivery attempts made, over all events",
    );
    let attempts: i64 = events.try_get("attempts")?;
    let _ = writeln!(text, "humanping_webhook_delivery_attempts {attempts}");
    Ok(text)
}

fn gauge_header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
}

/// A label value as Prometheus text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
    }
}
