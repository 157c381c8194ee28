//! The agent's routes: create tasks, follow them, approve, dispute or cancel them, and read the
//! balance.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::Agent;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, JsonBytes, idempotency_key, parse_task_body};
use super::ops::{Draining, wait_for_result};
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
#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = "agent",
    params(
        super::openapi::IdempotencyHeader,
    ),
    request_body = crate::input::CreateTaskBody,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (
            status = 201,
            description = "The task, created, its budget held in escrow",
            body = TaskView
        ),
        (
            status = 400,
            description = "A field is missing or wrong; the message names it",
            body = super::openapi::ErrorDoc
        ),
        (
            status = 402,
            description = "The balance cannot cover the budget",
            body = super::openapi::ErrorDoc
        ),
        (
            status = 422,
            description = "The Idempotency-Key was used with other arguments",
            body = super::openapi::ErrorDoc
        ),
    )
)]
pub(crate) async fn create_task(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    Extension(draining): Extension<Draining>,
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
            wait_for_result(&service, &draining, &agent, task.task_id.as_str(), wait).await?
        }
        _ => task,
    };
    Ok((StatusCode::CREATED, Json(task)))
}

/// The query of `GET /v1/tasks/{id}`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetQuery {
    /// Seconds to wait for a result before answering with the task as it is (0 to 120).
    #[param(value_type = Option<u32>, maximum = 120)]
    wait: Option<String>,
}

/// `GET /v1/tasks/{id}`: the task now, or once its result is in (`?wait=SECONDS`).
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    tag = "agent",
    params(
        ("id" = String, Path, description = "The task's id (tsk_…)"),
        GetQuery,
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The task (with its result once in)", body = TaskView),
        (status = 404, description = "No such task of this agent", body = super::openapi::ErrorDoc),
    )
)]
pub(crate) async fn get_task(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    Extension(draining): Extension<Draining>,
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
        wait_for_result(&service, &draining, &agent, &task_id, wait).await?
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
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/approve",
    tag = "agent",
    params(
        ("id" = String, Path, description = "The task's id (tsk_…)"),
        super::openapi::IdempotencyHeader,
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (
            status = 200,
            description = "The task, approved: the workers and the fee are paid",
            body = TaskView
        ),
        (status = 404, description = "No such task of this agent", body = super::openapi::ErrorDoc),
        (
            status = 409,
            description = "The task is not in a state that allows this",
            body = super::openapi::ErrorDoc
        ),
    )
)]
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
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisputeBody {
    /// What is wrong with the result; kept with the dispute for the operator.
    reason: String,
    /// With several humans: the one result to reject; without it, every result.
    #[serde(default)]
    assignment_id: Option<String>,
}

/// `POST /v1/tasks/{id}/dispute`: refunds the agent and counts against the worker.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/dispute",
    tag = "agent",
    params(
        ("id" = String, Path, description = "The task's id (tsk_…)"),
        super::openapi::IdempotencyHeader,
    ),
    request_body = DisputeBody,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The task, refunded", body = TaskView),
        (status = 404, description = "No such task of this agent", body = super::openapi::ErrorDoc),
        (
            status = 409,
            description = "The task is not in a state that allows this",
            body = super::openapi::ErrorDoc
        ),
    )
)]
pub(crate) async fn dispute(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(task_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DisputeBody>,
) -> ApiResult<Json<TaskView>> {
    let key = idempotency_key(&headers)?;
    let task = match &body.assignment_id {
        Some(one) => {
            service
                .dispute_result(&agent, &task_id, one, &body.reason, key.as_deref())
                .await?
        }
        None => {
            service
                .dispute(&agent, &task_id, &body.reason, key.as_deref())
                .await?
        }
    };
    Ok(Json(task))
}

/// `POST /v1/tasks/{id}/cancel`: cancels a task no worker holds and releases its escrow.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/cancel",
    tag = "agent",
    params(
        ("id" = String, Path, description = "The task's id (tsk_…)"),
        super::openapi::IdempotencyHeader,
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (
            status = 200,
            description = "The task, cancelled: its escrow is released",
            body = TaskView
        ),
        (status = 404, description = "No such task of this agent", body = super::openapi::ErrorDoc),
        (
            status = 409,
            description = "The task is not in a state that allows this",
            body = super::openapi::ErrorDoc
        ),
    )
)]
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
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only tasks in this state.
    #[param(value_type = Option<super::openapi::TaskStatus>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    before: Option<String>,
}

/// `GET /v1/tasks`: the agent's tasks, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "agent",
    params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of tasks, newest first", body = TaskPage))
)]
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
#[utoipa::path(
    get,
    path = "/v1/balance",
    tag = "agent",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The agent's money", body = BalanceView))
)]
pub(crate) async fn balance(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
) -> ApiResult<Json<BalanceView>> {
    Ok(Json(service.balance(&agent).await?))
}

/// Body of `POST /v1/blocks`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockBody {
    /// The worker to keep off this agent's tasks.
    worker_id: String,
}

/// `POST /v1/blocks`: keeps a worker off the agent's tasks.
#[utoipa::path(
    post,
    path = "/v1/blocks",
    tag = "agent",
    request_body = BlockBody,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The worker no longer sees this agent's tasks"),
        (status = 404, description = "No such worker", body = super::openapi::ErrorDoc),
    )
)]
pub(crate) async fn block_worker(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiJson(body): ApiJson<BlockBody>,
) -> ApiResult<StatusCode> {
    service.block_worker(&agent, &body.worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/blocks/{worker_id}`: lets the worker take the agent's tasks again.
#[utoipa::path(
    delete,
    path = "/v1/blocks/{worker_id}",
    tag = "agent",
    params(("worker_id" = String, Path, description = "The worker's id (wkr_…)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "The worker may take this agent's tasks again"))
)]
pub(crate) async fn unblock_worker(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(worker_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    service.unblock_worker(&agent, &worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
