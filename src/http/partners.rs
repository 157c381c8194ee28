//! Persistent partners over REST: the agent's side (`/v1/partners`) and the worker's
//! (`/v1/worker/partners`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Agent, Worker};
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use crate::service::{HumanPing, PartnerView, PartnershipView};

/// The body of `POST /v1/partners`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPartner {
    /// The worker's id, from one of your tasks' results.
    worker_id: String,
    /// Notes shown to the partner with each of your tasks.
    #[serde(default)]
    notes: Option<String>,
    /// Bonus on top of the budget, in basis points of it (0 to 5000).
    #[serde(default)]
    bonus_bps: Option<u32>,
}

/// The body of `GET /v1/partners`.
#[derive(Serialize)]
pub(crate) struct Partners {
    partners: Vec<PartnerView>,
}

/// The body of `GET /v1/worker/partners`.
#[derive(Serialize)]
pub(crate) struct Partnerships {
    partners: Vec<PartnershipView>,
}

/// `POST /v1/partners`: partners with a worker, or updates notes and bonus (200).
pub(crate) async fn add(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiJson(body): ApiJson<NewPartner>,
) -> ApiResult<Json<PartnerView>> {
    let partner = service
        .partner_add(
            &agent,
            &body.worker_id,
            body.notes.as_deref(),
            body.bonus_bps,
        )
        .await?;
    Ok(Json(partner))
}

/// `GET /v1/partners`: the agent's partners with their record.
pub(crate) async fn list(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
) -> ApiResult<Json<Partners>> {
    Ok(Json(Partners {
        partners: service.partners(&agent).await?,
    }))
}

/// `DELETE /v1/partners/{worker_id}`: ends a partnership (204).
pub(crate) async fn remove(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(worker_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    service.partner_remove(&agent, &worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/worker/partners`: the agents that partnered with this worker.
pub(crate) async fn mine(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<Partnerships>> {
    Ok(Json(Partnerships {
        partners: service.worker_partnerships(&worker).await?,
    }))
}

/// `DELETE /v1/worker/partners/{agent_id}`: the worker leaves an agent's partners (204).
pub(crate) async fn leave(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
    ApiPath(agent_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    service.leave_partnership(&worker, &agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
