//! The agent's routes: create tasks, follow them, approve, dispute or cancel them, and read the
//! balance.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::auth::Agent;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, JsonBytes, idempotency_key, parse_task_body};
use crate::domain::status::TaskStatus;
use crate::input::MAX_WAIT_SECONDS;
use crate::service::HumanPing;
use crate::service::views::{BalanceView, TaskPage, TaskView};

/// How many tasks a page holds unless the caller says otherwise.
const DEFAULT_PAGE: u32 = 20;
/// The largest page a caller may ask for.
const MAX_PAGE: u32 = 100;

/// `POST /v1/tasks`: creates a task and holds its budget in escrow.
///
/// Unlike the MCP tools, REST does not wait by default: it waits for the human's answer only
/// when the body asks for `wait_seconds` above zero.
pub(crate) async fn create_task(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<(StatusCode, Json<TaskView>)> {
    let header_key = idempotency_key(&headers)?;
    let mut draft = parse_task_body(&body)?.into_draft();

    match (header_key, &draft.common.idempotency_key) {
        (Some(header), Some(body)) if header != *body => {
            return Err(ApiError::invalid(format!(
                "the Idempotency-Key header {header:?} and the body's idempotency_key {body:?} \
                 differ; send one key, or the same key in both"
            )));
        }
        (Some(header), None) => draft.common.idempotency_key = Some(header),
        _ => {}
    }
    let wait = match draft.common.wait_seconds {
        Some(seconds) => Some(wait_within_bounds("wait_seconds", seconds)?),
        None => None,
    };

    let task = service.create_task(&agent, draft).await?;

    let task = match wait {
        Some(wait) if !wait.is_zero() => {
            service
                .wait_for_result(&agent, task.task_id.as_str(), wait)
                .await?
        }
        _ => task,
    };
    Ok((StatusCode::CREATED, Json(task)))
}

/// The query of `GET /v1/tasks/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetQuery {
    /// Seconds to wait for a result before answering with the task as it is (0 to 120).
    wait: Option<String>,
}

/// `GET /v1/tasks/{id}`: the task now, or once its result is in (`?wait=SECONDS`).
pub(crate) async fn get_task(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(task_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> ApiResult<Json<TaskView>> {
    let wait = match query
        .wait
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        Some(text) => {
            let seconds = text.parse::<u32>().map_err(|_| {
                ApiError::invalid(format!(
                    "wait {text:?} is not a whole number of seconds; give 0 to {MAX_WAIT_SECONDS}"
                ))
            })?;
            wait_within_bounds("wait", seconds)?
        }
        None => Duration::ZERO,
    };

    let task = if wait.is_zero() {
        service.get_task(&agent, &task_id).await?
    } else {
        service.wait_for_result(&agent, &task_id, wait).await?
    };
    Ok(Json(task))
}

fn wait_within_bounds(name: &str, seconds: u32) -> ApiResult<Duration> {
    if seconds > MAX_WAIT_SECONDS {
        return Err(ApiError::invalid(format!(
            "{name} {seconds} is too long; give 0 to {MAX_WAIT_SECONDS} seconds and poll \
             GET /v1/tasks/{{id}} again for longer"
        )));
    }
    Ok(Duration::from_secs(u64::from(seconds)))
}

/// `POST /v1/tasks/{id}/approve`: pays the workers and the platform fee out of escrow.
pub(crate) async fn approve(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(task_id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<TaskView>> {
    let key = idempotency_key(&headers)?;
    let task = service.approve(&agent, &task_id, key.as_deref()).await?;
    Ok(Json(task))
}

/// The body of `POST /v1/tasks/{id}/dispute`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisputeBody {
    /// What is wrong with the result; kept with the dispute for the operator.
    reason: String,
}

/// `POST /v1/tasks/{id}/dispute`: refunds the agent and counts against the worker.
pub(crate) async fn dispute(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(task_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DisputeBody>,
) -> ApiResult<Json<TaskView>> {
    let key = idempotency_key(&headers)?;
    let task = service
        .dispute(&agent, &task_id, &body.reason, key.as_deref())
        .await?;
    Ok(Json(task))
}

/// `POST /v1/tasks/{id}/cancel`: cancels a task no worker holds and releases its escrow.
pub(crate) async fn cancel(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(task_id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<TaskView>> {
    let key = idempotency_key(&headers)?;
    let task = service.cancel(&agent, &task_id, key.as_deref()).await?;
    Ok(Json(task))
}

/// The query of `GET /v1/tasks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only tasks in this state.
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    before: Option<String>,
}

/// `GET /v1/tasks`: the agent's tasks, newest first, a page at a time.
pub(crate) async fn list_tasks(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<TaskPage>> {
    let status = match query
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(text) => Some(text.parse::<TaskStatus>().map_err(|_| {
            ApiError::invalid(format!(
                "status {text:?} is not a task status; use one of open, in_progress, completed, \
                 approved, refunded, cancelled, expired"
            ))
        })?),
        None => None,
    };
    let limit = match query
        .limit
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(text) => match text.parse::<u32>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => {
                return Err(ApiError::invalid(format!(
                    "limit {text:?} is out of range; give a whole number from 1 to {MAX_PAGE}"
                )));
            }
        },
        None => DEFAULT_PAGE,
    };
    let before = query
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());

    let page = service.list_tasks(&agent, status, limit, before).await?;
    Ok(Json(page))
}

/// `GET /v1/balance`: available, held and spent money.
pub(crate) async fn balance(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
) -> ApiResult<Json<BalanceView>> {
    Ok(Json(service.balance(&agent).await?))
}

/// Body of `POST /v1/blocks`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockBody {
    /// The worker to keep off this agent's tasks.
    worker_id: String,
}

/// `POST /v1/blocks`: keeps a worker off the agent's tasks.
pub(crate) async fn block_worker(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiJson(body): ApiJson<BlockBody>,
) -> ApiResult<StatusCode> {
    service.block_worker(&agent, &body.worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/blocks/{worker_id}`: lets the worker take the agent's tasks again.
pub(crate) async fn unblock_worker(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(worker_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    service.unblock_worker(&agent, &worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
