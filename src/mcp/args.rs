//! Arguments of the follow-up tools. The task tools take the request types of
//! [`crate::input`], shared with the REST API. Each field's doc comment becomes the description
//! the agent reads in the tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::domain::status::TaskStatus;

/// Arguments of `get_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetTaskArgs {
    /// The task's id, as returned by the tool that created it (e.g. "task_…").
    pub task_id: String,
    /// How long to wait for the human's answer if there is none yet, in seconds (0 to 120,
    /// default 0: answer at once).
    #[serde(default)]
    #[schemars(range(max = 120))]
    pub wait_seconds: Option<u32>,
}

/// Arguments of `approve`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveArgs {
    /// The completed task whose result you accept; the human is paid from its escrow.
    pub task_id: String,
    /// A key of your choosing that makes retries safe: the same key returns the first
    /// result and never pays twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// Arguments of `dispute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisputeArgs {
    /// The completed task whose result you reject; its escrow goes back to your balance.
    pub task_id: String,
    /// Why the result is wrong or unusable, in a sentence or two. Shown to the operator who
    /// reviews disputes.
    pub reason: String,
    /// With several humans: the one result you reject (its `assignment_id` from `results`);
    /// the others stay for review. Without it, every result is rejected.
    #[serde(default)]
    pub assignment_id: Option<String>,
    /// A key of your choosing that makes retries safe: the same key returns the first
    /// result and never refunds twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// Arguments of `cancel_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelTaskArgs {
    /// The task to cancel. Only a task no human has taken yet can be cancelled; its escrow goes
    /// back to your balance.
    pub task_id: String,
    /// A key of your choosing that makes retries safe: the same key returns the first
    /// result and never refunds twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// Arguments of `list_tasks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListTasksArgs {
    /// Only tasks in this state, e.g. "completed" for results waiting for your review.
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// How many tasks to return, newest first (1 to 100, default 20).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, to get the tasks after it.
    #[serde(default)]
    pub before: Option<String>,
}

/// Arguments of `block_worker` and `unblock_worker`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerArgs {
    /// The worker's id (e.g. "wkr_…"), as shown in a task's results (`worker_id`).
    pub worker_id: String,
}

/// Arguments of `partner_add`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartnerAddArgs {
    /// The worker's id (e.g. "wkr_…") from one of your tasks' results.
    pub worker_id: String,
    /// Notes shown to this partner with each of your tasks: your preferences, context they
    /// should know (at most 4000 characters). Replaces earlier notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// A bonus paid to this partner on top of the budget, in basis points of it (0 to 5000;
    /// 1000 = 10%). Held with each task while you have partners.
    #[serde(default)]
    pub bonus_bps: Option<u32>,
}

/// The default and the bounds of `list_tasks`'s `limit`.
pub(crate) const DEFAULT_LIST_LIMIT: u32 = 20;
pub(crate) const MAX_LIST_LIMIT: u32 = 100;

/// Arguments of `topup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopupArgs {
    /// Dollars to add to your balance, e.g. 25.00 ($1.00 to $10,000.00). You get a Stripe
    /// Checkout link to pay; the balance grows once Stripe confirms the payment.
    pub amount: crate::domain::money::Dollars,
}
