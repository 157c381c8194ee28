//! The operator's routes, under `/v1/operator`, for operator keys only (`humanping operator
//! key` makes one): honeypots for now.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Operator;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use crate::service::{HoneypotView, HumanPing};

/// The body of `POST /v1/operator/honeypots`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewHoneypot {
    /// The task, exactly as an agent would send it to `POST /v1/tasks`.
    task: Value,
    /// The answer a right result gives, in the task's response format ("yes", an option, …).
    expected: String,
}

/// The body of `GET /v1/operator/honeypots`.
#[derive(Serialize)]
pub(crate) struct Honeypots {
    honeypots: Vec<HoneypotView>,
}

/// `POST /v1/operator/honeypots`: adds a honeypot (201).
pub(crate) async fn add_honeypot(
    State(service): State<HumanPing>,
    _: Operator,
    ApiJson(body): ApiJson<NewHoneypot>,
) -> ApiResult<(StatusCode, Json<HoneypotView>)> {
    let honeypot = service.add_honeypot(&body.task, &body.expected).await?;
    Ok((StatusCode::CREATED, Json(honeypot)))
}

/// `GET /v1/operator/honeypots`: every honeypot with how its tasks were answered.
pub(crate) async fn honeypots(
    State(service): State<HumanPing>,
    _: Operator,
) -> ApiResult<Json<Honeypots>> {
    let honeypots = service.honeypots().await?;
    Ok(Json(Honeypots { honeypots }))
}

/// `POST /v1/operator/honeypots/{id}/retire`: makes no new tasks from a honeypot.
pub(crate) async fn retire_honeypot(
    State(service): State<HumanPing>,
    _: Operator,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<HoneypotView>> {
    Ok(Json(service.retire_honeypot(&id).await?))
}
