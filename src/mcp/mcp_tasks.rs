//! Task tool calls as MCP tasks, for clients that declare the `io.modelcontextprotocol/tasks`
//! extension.
//!
//! Such a client gets `resultType: "task"` back at once instead of a call that waits: the
//! HumanPing task is created (so refusals still come back as ordinary tool errors), and an MCP
//! task follows it until the human's answer is in or the task ends; `tasks/get` shows its state
//! and, at the end, the same result the tool would have returned. `tasks/cancel` stops following
//! it and changes nothing else: like a cancelled wait, the HumanPing task and its escrow stay.

use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CreateTaskResult,
    ErrorData as McpError,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use serde_json::Value;

use super::HumanPingMcp;
use super::resources::TaskResult;
use crate::domain::kind::TaskKind;
use crate::domain::status::TaskStatus;
use crate::input::MAX_WAIT_SECONDS;

/// How often a client is told to poll `tasks/get`.
const POLL_INTERVAL_MS: u64 = 2_000;

/// One session's MCP tasks; they stop when the session's last handle is dropped.
// Limitation: MCP tasks live in session memory; a new session or a restart loses their ids.
#[derive(Clone, Default)]
pub(crate) struct SessionTasks(Arc<Stopper>);

/// Aborts the session's running MCP tasks when dropped.
#[derive(Default)]
struct Stopper(TaskManager);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl SessionTasks {
    pub(crate) fn manager(&self) -> &TaskManager {
        &self.0.0
    }
}

/// Whether this call becomes an MCP task: a task tool that would wait for the human, called by
/// a client that declared the tasks extension.
// Limitation: only the seven task tools become MCP tasks; a waiting `get_task` still blocks.
pub(crate) fn wanted(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> bool {
    let task_tool = TaskKind::ALL
        .iter()
        .any(|kind| kind.tool_name() == request.name.as_ref());
    // `wait_seconds: 0` asks for the task handle at once: an ordinary result gives it.
    let waits = request
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get("wait_seconds"))
        .and_then(Value::as_u64)
        != Some(0);
    task_tool
        && waits
        && context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks())
}

impl HumanPingMcp {
    /// Creates the HumanPing task without waiting, then an MCP task that follows it.
    pub(crate) async fn call_as_task(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let agent = match self.agent(&context) {
            Ok(agent) => agent.clone(),
            Err(error) => return error.into_call_tool_result(),
        };
        request
            .arguments
            .get_or_insert_default()
            .insert("wait_seconds".to_owned(), Value::from(0));
        let created = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await?;
        let CallToolResponse::Complete(created) = created else {
            return Ok(created);
        };
        let task_id = match task_id_of(&created) {
            Some(id) if created.is_error != Some(true) => id,
            _ => return Ok(created.into()),
        };

        let service = self.service.clone();
        let options = TaskOptions::new()
            .with_ttl_ms(None)
            .with_poll_interval_ms(POLL_INTERVAL_MS)
            .with_status_message(format!("waiting for a human to answer task {task_id}"));
        let task = self.mcp_tasks.manager().spawn(options, move |mcp_task| {
            Box::pin(async move {
                let chunk = Duration::from_secs(u64::from(MAX_WAIT_SECONDS));
                loop {
                    let waited = tokio::select! {
                        () = mcp_task.cancelled() => return Err(TaskExit::Cancelled),
                        view = service.wait_for_result(&agent, &task_id, chunk) => view,
                    };
                    let view = waited.map_err(|error| {
                        TaskExit::Error(McpError::internal_error(error.to_string(), None))
                    })?;
                    if !matches!(view.status, TaskStatus::Open | TaskStatus::InProgress) {
                        return complete(view);
                    }
                    mcp_task.set_status_message(format!(
                        "task {task_id} is {}; waiting for the human",
                        view.status.as_str()
                    ));
                }
            })
        });
        tracing::info!(mcp_task = %task.task_id, "task tool call runs as an MCP task");
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}

/// The tool result an MCP task ends with: the task as the tool returns it.
fn complete(view: crate::service::views::TaskView) -> Result<CallToolResult, TaskExit> {
    match TaskResult(view).into_call_tool_result()? {
        CallToolResponse::Complete(result) => Ok(result),
        _ => Err(TaskExit::Error(McpError::internal_error(
            "unexpected tool result shape",
            None,
        ))),
    }
}

/// The HumanPing task id in a task tool's result.
fn task_id_of(result: &CallToolResult) -> Option<String> {
    result
        .structured_content
        .as_ref()?
        .get("task_id")?
        .as_str()
        .map(str::to_owned)
}
