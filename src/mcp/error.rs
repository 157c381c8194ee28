//! Tool errors: what an agent reads when a tool call fails.
//!
//! MCP keeps two kinds of failure apart. A protocol error (unknown method, malformed request)
//! is a JSON-RPC error, which many clients hide from the model. Everything the agent can act on
//! (bad input, no money, unknown task, wrong state) is a tool result with `isError: true` and a
//! sentence saying what to do next. Arguments that do not deserialize become such results in
//! rmcp itself; the service's errors become them here.

use std::fmt::Display;

use rmcp::model::{ContentBlock, IntoContents};

use crate::service::ServiceError;

/// A failure shown to the agent as the text of a tool result with `isError: true`: the
/// message, then a stable code in parentheses, e.g. `… (code: not_found)`.
#[derive(Debug)]
pub(crate) struct ToolError(String);

impl ToolError {
    fn new(message: impl Display, code: &str) -> ToolError {
        ToolError(format!("{message} (code: {code})"))
    }

    /// The caller gave something out of range; `message` says what and how to fix it.
    pub(crate) fn invalid(message: impl Display) -> ToolError {
        ToolError::new(message, "invalid_input")
    }

    /// No agent key was configured, or it was refused; `reason` says how to fix it.
    pub(crate) fn unauthorized(reason: &str) -> ToolError {
        ToolError::new(reason, "unauthorized")
    }

    /// The message shown to the agent.
    pub(crate) fn message(&self) -> &str {
        &self.0
    }

    /// The client cancelled the call while it waited for a human.
    pub(crate) fn cancelled(task_id: &str) -> ToolError {
        let message = format!(
            "the client stopped waiting; task {task_id} goes on, call get_task to pick up its \
             result"
        );
        ToolError::new(message, "cancelled")
    }
}

impl From<ServiceError> for ToolError {
    /// Keeps the service's message, written for the caller, and adds its stable code.
    /// Internal errors keep their detail in the log: it may name tables or hosts.
    fn from(error: ServiceError) -> ToolError {
        match error {
            ServiceError::Internal(detail) => {
                tracing::error!(error = format!("{detail:#}"), "tool call failed");
                let message = "HumanPing hit an internal error; try again in a minute \
                               (retrying with the same idempotency_key never charges twice)";
                ToolError::new(message, "internal")
            }
            other => ToolError::new(&other, other.code()),
        }
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_error_keeps_the_message_and_adds_the_code() {
        let error = ToolError::from(ServiceError::not_found("no task \"task_x\""));
        assert_eq!(error.0, "no task \"task_x\" (code: not_found)");
        let error = ToolError::from(ServiceError::Internal(anyhow::anyhow!("disk full at /db")));
        assert!(
            error.0.ends_with("(code: internal)") && !error.0.contains("disk"),
            "{}",
            error.0
        );
    }
}
