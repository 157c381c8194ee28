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

/// The default and the bounds of `list_tasks`'s `limit`.
pub(crate) const DEFAULT_LIST_LIMIT: u32 = 20;
pub(crate) const MAX_LIST_LIMIT: u32 = 100;
