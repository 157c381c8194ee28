//! What the service returns: the JSON shapes agents and workers see, with schemas for MCP
//! output and the REST API. Amounts appear both in cents and as dollar text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::ids::{AgentId, AssignmentId, TaskId, WorkerId};
use crate::domain::kind::TaskKind;
use crate::domain::response::ResponseFormat;
use crate::domain::status::{AssignmentStatus, TaskStatus};
use crate::input::ProofKind;

/// A task as its agent sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct TaskView {
    /// The task's id: pass it to `get_task`, `approve`, `dispute` or `cancel_task`.
    #[schema(value_type = crate::http::openapi::TaskId)]
    pub task_id: TaskId,
    /// The resource that always holds this task's latest state.
    pub resource_uri: String,
    #[schema(value_type = crate::http::openapi::TaskKind)]
    pub kind: TaskKind,
    #[schema(value_type = crate::http::openapi::TaskStatus)]
    pub status: TaskStatus,
    /// What the human was asked.
    pub instruction: String,
    /// Budget per human, in cents.
    pub budget_cents: i64,
    /// Budget per human, in dollars.
    pub budget: String,
    pub currency: String,
    /// How many humans answer this task.
    pub workers: i64,
    /// Money still held in escrow for this task, in cents.
    pub held_cents: i64,
    /// The human's answer, once a result is in; with several humans, the agreed answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Every result sent so far, with proof.
    pub results: Vec<ResultView>,
    /// With several humans: how their answers came together, once decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusView>,
    #[schema(value_type = crate::http::openapi::ResponseFormat)]
    pub response_format: ResponseFormat,
    pub created_at: String,
    /// When the task expires if it is not done.
    pub deadline: String,
    /// When the result is approved automatically unless disputed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// What the agent can do next, in plain words.
    pub next_step: String,
}

/// How the answers of several humans came together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct ConsensusView {
    /// "agreed" (an answer reached the agreement), "no_consensus" (none could, see `votes`) or
    /// "collected" (free text: every answer is in `results`, none picked).
    pub outcome: String,
    /// The agreed answer, in structured form.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub answer: Option<Value>,
    /// The agreed answer's share of the votes (weighted when votes are weighted), 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Every answer given, with its votes, most first.
    pub votes: Vec<VoteView>,
    /// How many answers had to agree.
    pub agreement: i64,
    /// How many humans answered.
    pub answered: i64,
}

/// The votes one answer got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct VoteView {
    #[schema(value_type = Object)]
    pub answer: Value,
    pub votes: i64,
    /// The votes' summed weight (equal to `votes` unless votes are weighted by trust).
    pub weight: f64,
}

/// One human's result.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct ResultView {
    #[schema(value_type = crate::http::openapi::AssignmentId)]
    pub assignment_id: AssignmentId,
    #[schema(value_type = crate::http::openapi::WorkerId)]
    pub worker_id: WorkerId,
    #[schema(value_type = crate::http::openapi::AssignmentStatus)]
    pub status: AssignmentStatus,
    /// The answer as the worker wrote it.
    pub answer: String,
    /// The answer read in the task's response format ("yes", a chosen option, a number...).
    pub structured: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Proof sent with the answer (text, photo links, GPS position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// The photos sent with the answer, with what their EXIF data says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<ProofPhotoView>,
    pub submitted_at: String,
    /// What the worker was paid for this result, in cents (after the platform fee).
    pub paid_cents: i64,
    /// Reasons to doubt this result (too fast, a reused photo …); a flagged result is never
    /// approved automatically.
    #[schema(value_type = Vec<crate::http::openapi::FlagView>)]
    pub flags: Vec<super::FlagView>,
}

/// A proof photo, as the task's agent sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct ProofPhotoView {
    /// Where to fetch the photo: an absolute path on this API, answered only for the task's
    /// agent (with its API key).
    pub url: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Where the camera said the photo was taken (EXIF GPS), when it said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_lng: Option<f64>,
    /// When the camera said the photo was taken (EXIF, camera's local time, as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_taken_at: Option<String>,
}

/// A page of an agent's tasks, newest first.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskView>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An agent's money.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct BalanceView {
    #[schema(value_type = crate::http::openapi::AgentId)]
    pub agent_id: AgentId,
    /// What new tasks can use, in cents.
    pub available_cents: i64,
    /// What new tasks can use, in dollars.
    pub available: String,
    /// What is held in escrow for unfinished tasks, in cents.
    pub held_cents: i64,
    /// What is held in escrow for unfinished tasks, in dollars.
    pub held: String,
    /// Everything ever paid out of this balance for approved work, in cents.
    pub spent_cents: i64,
    pub currency: String,
}

/// A task as a worker sees it in their feed: what they need to decide whether to take it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct OfferView {
    #[schema(value_type = crate::http::openapi::TaskId)]
    pub task_id: TaskId,
    #[schema(value_type = crate::http::openapi::TaskKind)]
    pub kind: TaskKind,
    /// What to do.
    pub instruction: String,
    /// What the worker is paid on approval, after the platform fee, in cents.
    pub pay_cents: i64,
    /// The same, in dollars.
    pub pay: String,
    pub currency: String,
    pub deadline: String,
    /// How long a claim lasts, in minutes.
    pub lease_minutes: i64,
    #[schema(value_type = crate::http::openapi::ResponseFormat)]
    pub response_format: ResponseFormat,
    pub proof_required: Vec<ProofKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lng: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<i64>,
    /// Distance from the worker's last known location, in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Slots still free.
    pub open_slots: i64,
    /// For a partner of the task's agent: the notes the agent keeps for them. (The partner
    /// bonus is in `pay`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_notes: Option<String>,
}

/// One worker's slot of a task, as that worker sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct AssignmentView {
    #[schema(value_type = crate::http::openapi::AssignmentId)]
    pub assignment_id: AssignmentId,
    #[schema(value_type = crate::http::openapi::TaskId)]
    pub task_id: TaskId,
    #[schema(value_type = crate::http::openapi::AssignmentStatus)]
    pub status: AssignmentStatus,
    pub claimed_at: String,
    /// When the claim runs out unless a result is sent.
    pub lease_expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    /// Pay on approval, after the platform fee, in cents.
    pub pay_cents: i64,
    /// Paid so far, in cents.
    pub paid_cents: i64,
    /// The task, with the details only the claim holder sees (context, phone, contact).
    pub task: ClaimedTaskView,
}

/// The task behind an assignment, as the claim holder sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct ClaimedTaskView {
    #[schema(value_type = crate::http::openapi::TaskKind)]
    pub kind: TaskKind,
    pub instruction: String,
    /// Kind-specific details such as the phone number to call.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[schema(value_type = crate::http::openapi::ResponseFormat)]
    pub response_format: ResponseFormat,
    pub proof_required: Vec<ProofKind>,
    pub deadline: String,
    /// For a partner of the task's agent: the notes the agent keeps for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_notes: Option<String>,
}

/// A worker's own profile.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct WorkerProfile {
    #[schema(value_type = crate::http::openapi::WorkerId)]
    pub worker_id: WorkerId,
    pub name: String,
    /// Trust score, 0 to 100: approvals raise it, rejections, lapsed claims and wrong
    /// honeypot answers lower it, recent work counts more, a fraud flag caps it.
    pub trust_score: i64,
    /// The tier the score reaches: the largest budget per human this worker may take.
    pub tier: TierView,
    /// The next tier up and what reaching it needs; absent at the top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_tier: Option<TierView>,
    /// Approved pay credited to the worker, in cents.
    pub earned_cents: i64,
    pub earned: String,
    /// Pay for results waiting for the agent's review, in cents.
    pub pending_cents: i64,
    pub pending: String,
    pub capabilities: Vec<String>,
    pub languages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lng: Option<f64>,
    pub assignments: AssignmentCounts,
}

/// A trust tier as a worker sees it.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct TierView {
    pub name: String,
    /// The score the tier starts at.
    pub min_score: i64,
    /// The largest budget per human the tier takes, in cents.
    pub max_budget_cents: i64,
    /// Points still needed to reach it (0 once reached).
    pub points_needed: i64,
}

impl TierView {
    pub(crate) fn of(tier: crate::domain::trust::Tier, score: i64) -> TierView {
        TierView {
            name: tier.name.to_owned(),
            min_score: tier.min_score,
            max_budget_cents: tier.max_budget_cents,
            points_needed: (tier.min_score - score).max(0),
        }
    }
}

/// How many assignments a worker has in each state.
#[derive(Clone, Debug, Default, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct AssignmentCounts {
    pub claimed: i64,
    pub submitted: i64,
    pub approved: i64,
    pub rejected: i64,
    pub abandoned: i64,
    pub lease_expired: i64,
    /// Claims the task's deadline ended; not held against the worker.
    pub task_ended: i64,
}

/// Formats Unix milliseconds as RFC 3339 UTC.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
