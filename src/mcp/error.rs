//! Tool errors: what an agent reads when a tool call fails.
//!
//! MCP keeps two kinds of failure apart. A protocol error (unknown method, malformed request)
//! is a JSON-RPC error, which many clients hide from the model. Everything the agent can act on
//! (bad input, no money, unknown task, wrong state) is a tool result with `isError: true` and a
//! sentence saying what to do next. Arguments that do not deserialize become such results in
//! rmcp itself; the service's errors become them here.

use rmcp::Json;
use rmcp::model::{ContentBlock, IntoContents};

use crate::service::ServiceError;

/// What every tool returns: structured output on success, a readable failure otherwise.
pub(crate) type ToolResult<T> = Result<Json<T>, ToolError>;

/// A failure shown to the agent as the text of a tool result with `isError: true`.
#[derive(Debug)]
pub(crate) struct ToolError(String);

impl ToolError {
    /// The caller gave something out of range; `message` says what and how to fix it.
    pub(crate) fn invalid(message: impl std::fmt::Display) -> ToolError {
        ToolError(format!("invalid_input: {message}"))
    }

    /// No agent key was configured, or it was refused; `reason` says how to fix it.
    pub(crate) fn unauthorized(reason: &str) -> ToolError {
        ToolError(format!("unauthorized: {reason}"))
    }

    /// The client cancelled the call while it waited for a human.
    pub(crate) fn cancelled(task_id: &str) -> ToolError {
        ToolError(format!(
            "cancelled: the client stopped waiting; task {task_id} goes on, \
             call get_task to pick up its result"
        ))
    }

    pub(crate) fn message(&self) -> &str {
        &self.0
    }
}

impl From<ServiceError> for ToolError {
    /// Prefixes the service's own message with its stable code, so an agent can branch on it.
    /// Internal errors keep their detail in the log: it may name tables or hosts.
    fn from(error: ServiceError) -> ToolError {
        match error {
            ServiceError::Internal(detail) => {
                tracing::error!(error = format!("{detail:#}"), "tool call failed");
                ToolError(
                    "internal: HumanPing hit an internal error; try again in a minute \
                     (retrying with the same idempotency_key never charges twice)"
                        .to_owned(),
                )
            }
            other => ToolError(format!("{}: {other}", other.code())),
        }
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0)]
    }
}
