//! The worker's routes: the task feed, claims, submissions and the worker's own profile.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::auth::Worker;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use crate::service::views::{AssignmentView, OfferView, WorkerProfile};
use crate::service::{HumanPing, SubmissionInput};

/// The body of `GET /v1/worker/tasks`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Offers {
    /// Tasks this worker may claim now, best first.
    tasks: Vec<OfferView>,
}

/// The body of `GET /v1/worker/assignments`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Assignments {
    /// This worker's slots, in every state.
    assignments: Vec<AssignmentView>,
}

/// `GET /v1/worker/tasks`: the tasks the router offers this worker.
#[utoipa::path(
    get,
    path = "/v1/worker/tasks",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((
        status = 200,
        description = "Tasks this worker may claim, best first",
        body = Offers
    ))
)]
pub(crate) async fn offers(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<Offers>> {
    let tasks = service.offers(&worker).await?;
    Ok(Json(Offers { tasks }))
}

/// `POST /v1/worker/tasks/{id}/claim`: takes one slot of a task, under a lease.
#[utoipa::path(
    post,
    path = "/v1/worker/tasks/{id}/claim",
    tag = "worker",
    params(("id" = String, Path, description = "The task's id (tsk_…)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The claim, with its lease", body = AssignmentView),
        (
            status = 404,
            description = "No such task offered to this worker",
            body = super::openapi::ErrorDoc
        ),
        (
            status = 409,
            description = "No slot is free, or this worker already holds one",
            body = super::openapi::ErrorDoc
        ),
    )
)]
pub(crate) async fn claim(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
    ApiPath(task_id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<AssignmentView>)> {
    let assignment = service.claim(&worker, &task_id).await?;
    Ok((StatusCode::CREATED, Json(assignment)))
}

/// `POST /v1/worker/assignments/{id}/submit`: sends the answer and its proof.
#[utoipa::path(
    post,
    path = "/v1/worker/assignments/{id}/submit",
    tag = "worker",
    params(
        ("id" = String, Path, description = "The assignment's id (asg_…)"),
    ),
    request_body = super::openapi::SubmissionInput,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The assignment, submitted", body = AssignmentView),
        (
            status = 404,
            description = "No such assignment of this worker",
            body = super::openapi::ErrorDoc
        ),
        (
            status = 409,
            description = "The claim is no longer live",
            body = super::openapi::ErrorDoc
        ),
    )
)]
pub(crate) async fn submit(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
    ApiPath(assignment_id): ApiPath<String>,
    ApiJson(input): ApiJson<SubmissionInput>,
) -> ApiResult<Json<AssignmentView>> {
    let assignment = service.submit(&worker, &assignment_id, input).await?;
    Ok(Json(assignment))
}

/// `POST /v1/worker/assignments/{id}/release`: gives a claim back; the slot returns to the pool.
#[utoipa::path(
    post,
    path = "/v1/worker/assignments/{id}/release",
    tag = "worker",
    params(
        ("id" = String, Path, description = "The assignment's id (asg_…)"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The assignment, given back", body = AssignmentView),
        (
            status = 404,
            description = "No such assignment of this worker",
            body = super::openapi::ErrorDoc
        ),
        (
            status = 409,
            description = "The claim is no longer live",
            body = super::openapi::ErrorDoc
        ),
    )
)]
pub(crate) async fn release(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
    ApiPath(assignment_id): ApiPath<String>,
) -> ApiResult<Json<AssignmentView>> {
    service.release_assignment(&worker, &assignment_id).await?;
    let released = service
        .assignments(&worker)
        .await?
        .into_iter()
        .find(|a| a.assignment_id.as_str() == assignment_id);
    let released = released.ok_or_else(|| not_yours(&assignment_id))?;
    Ok(Json(released))
}

fn not_yours(assignment_id: &str) -> crate::service::ServiceError {
    crate::service::ServiceError::NotFound(format!("no assignment {assignment_id:?} of yours"))
}

/// `GET /v1/worker/assignments`: this worker's slots.
#[utoipa::path(
    get,
    path = "/v1/worker/assignments",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "This worker's slots", body = Assignments))
)]
pub(crate) async fn assignments(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<Assignments>> {
    let assignments = service.assignments(&worker).await?;
    Ok(Json(Assignments { assignments }))
}

/// `GET /v1/worker/me`: trust score, earnings and assignment counts.
#[utoipa::path(
    get,
    path = "/v1/worker/me",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Profile, trust and earnings", body = WorkerProfile))
)]
pub(crate) async fn me(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<WorkerProfile>> {
    Ok(Json(service.worker_profile(&worker).await?))
}
