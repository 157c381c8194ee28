//! The MCP server: the tools an agent uses to hire humans, over any rmcp transport.
//!
//! [`HumanPingMcp`] is one handler bound to one agent. Stdio serves a single handler for the
//! life of the process ([`serve_stdio`]); HTTP transports build one per session. The tools are
//! thin: they read arguments, call [`HumanPing`], and turn its errors into tool results with
//! `isError: true`, so an agent reads what went wrong instead of a protocol failure.
//!
//! Every task is also a resource, `humanping://tasks/{id}` (`resources`), that a client can
//! read and subscribe to; clients that declare the MCP tasks extension get task tool calls as
//! asynchronous MCP tasks (`mcp_tasks`). Stdio has its own line transport (`stdio`).

mod args;
pub mod bridge;
mod error;
pub mod http;
mod mcp_tasks;
mod resources;
mod sse;
mod stdio;
mod tools;

#[cfg(test)]
mod tests;

use anyhow::Context;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ErrorData as McpError,
    GetTaskParams, GetTaskResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool_handler};

use crate::domain::ids::AgentId;
use crate::service::{HumanPing, ServiceError};

/// What every tool answers when the process was started without an agent key.
pub const MISSING_KEY: &str = "HUMANPING_API_KEY is not set; create an agent key with \
    `humanping agent create --name NAME` and pass it in the HUMANPING_API_KEY environment variable";

/// What the server tells an agent about itself when it connects.
const INSTRUCTIONS: &str = "HumanPing sends tasks to real humans: fact checks (verify), phone \
    calls (call), gut feelings (gut_check), on-site missions (field), empathy handoffs \
    (escalate), mood reads (vibe) and reviews of your own work (reality_check). Each task tool \
    holds the budget in escrow from your balance and waits up to `wait_seconds` for the answer; \
    humans are often slower, so you may get the task back still `open` or `in_progress` with its \
    `task_id`: call `get_task` later (its `wait_seconds` waits again) until it is `completed`. \
    Then `approve` the result to pay the human, or `dispute` it to get the money back; a result \
    left alone is approved automatically when its review deadline passes. `cancel_task` refunds \
    a task nobody has taken, `list_tasks` shows your tasks and `balance` your money; give an \
    `idempotency_key` to any call you might retry, so nothing is created or charged twice. \
    `block_worker` keeps a worker whose work you distrust off your tasks (`unblock_worker` undoes \
    it); `partner_add` keeps one whose work you liked: partners see your tasks first, with your \
    notes, and earn your bonus (`partners`, `partner_remove`). Ask several humans with \
    `workers` (and `agreement`, `max_workers`): the result then carries the agreed answer, the \
    votes and a confidence. \
    Each task is also the resource humanping://tasks/{task_id}: read it, or subscribe to it to \
    hear when the human answers.";

/// An MCP server handler acting for one agent.
///
/// Cloning is cheap (the service is a pool handle), so a transport can hand each session its
/// own copy.
#[derive(Clone)]
pub struct HumanPingMcp {
    service: HumanPing,
    /// The agent every tool acts for, or why there is none: then every tool call answers
    /// with that message, so a client that started us without a key learns how to fix it.
    agent: Result<AgentId, String>,
    tool_router: ToolRouter<HumanPingMcp>,
    /// The task resources this session subscribed to.
    subscriptions: resources::Subscriptions,
    /// Task tool calls running as MCP tasks for this session.
    mcp_tasks: mcp_tasks::SessionTasks,
    /// Turns `true` when the client is gone (stdin closed); waits stop then.
    client_gone: Option<tokio::sync::watch::Receiver<bool>>,
}

impl HumanPingMcp {
    /// A handler acting for `agent`; `Err` holds the message every tool returns instead.
    pub fn new(service: HumanPing, agent: Result<AgentId, String>) -> HumanPingMcp {
        HumanPingMcp {
            service,
            agent,
            tool_router: HumanPingMcp::tool_router(),
            subscriptions: resources::Subscriptions::default(),
            mcp_tasks: mcp_tasks::SessionTasks::default(),
            client_gone: None,
        }
    }

    /// Stops waiting calls once `gone` turns `true`.
    fn stopping_when(mut self, gone: tokio::sync::watch::Receiver<bool>) -> HumanPingMcp {
        self.client_gone = Some(gone);
        self
    }

    /// Resolves once the client is known to be gone; never for transports that cannot tell.
    async fn client_gone(&self) {
        match self.client_gone.clone() {
            Some(mut gone) => {
                let _ = gone.wait_for(|gone| *gone).await;
            }
            None => std::future::pending().await,
        }
    }

    /// The agent a resource request acts for, as a protocol error when there is none.
    fn resource_agent<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<&'a AgentId, McpError> {
        self.agent(context)
            .map_err(|error| McpError::invalid_request(error.message().to_owned(), None))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for HumanPingMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("humanping", env!("CARGO_PKG_VERSION")).with_title("HumanPing"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if mcp_tasks::wanted(&request, &context) {
            return self.call_as_task(request, context).await;
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let task = self.mcp_tasks.manager().get_task(&request.task_id)?;
        Ok(GetTaskResult::new(task))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.mcp_tasks.manager().cancel_task(&request.task_id)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let agent = self.resource_agent(&context)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        resources::list(&self.service, agent, cursor).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let agent = self.resource_agent(&context)?;
        let result = resources::read(&self.service, agent, &request.uri).await?;
        Ok(result.into())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(resources::accepted_filter(requested))
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        let agent = self.resource_agent(subscription.request_context())?.clone();
        resources::listen(&self.service, &agent, subscription).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let agent = self.resource_agent(&context)?.clone();
        self.subscriptions
            .subscribe(&self.service, &agent, &request.uri, &context)
            .await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }
}

/// Serves MCP on stdin/stdout for the agent whose key is `api_key`, until the client closes
/// stdin.
///
/// Stdout carries JSON-RPC only: nothing here prints, and logs go to stderr through `tracing`.
/// A missing or refused key does not stop the server: the client still connects, and every
/// tool call explains what to do.
pub async fn serve_stdio(service: HumanPing, api_key: Option<String>) -> anyhow::Result<()> {
    serve_lines(service, api_key, tokio::io::stdin(), tokio::io::stdout()).await
}

/// What `serve_stdio` does, on any pair of byte streams carrying newline-delimited JSON-RPC;
/// public so that the fuzz target can drive the line framing with arbitrary bytes.
#[doc(hidden)]
pub async fn serve_lines<R, W>(
    service: HumanPing,
    api_key: Option<String>,
    input: R,
    output: W,
) -> anyhow::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let agent = resolve_agent(&service, api_key.as_deref()).await;
    match &agent {
        Ok(agent) => tracing::info!(%agent, "serving MCP on stdio"),
        Err(reason) => tracing::warn!(%reason, "serving MCP on stdio without an agent"),
    }

    let stdio = stdio::transport(input, output);
    let pump = stdio.pump;
    let running = HumanPingMcp::new(service, agent)
        .stopping_when(stdio.closed)
        .serve((stdio.sink, stdio.stream))
        .await
        .context("the MCP client did not complete the handshake on stdin/stdout")?;
    let reason = running
        .waiting()
        .await
        .context("the MCP server stopped abnormally")?;
    tracing::info!(?reason, "MCP stdio session ended");
    // The last replies reach stdout before the process exits.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pump).await;
    Ok(())
}

/// Turns the configured key into the agent it belongs to, or the message tools should show.
async fn resolve_agent(service: &HumanPing, api_key: Option<&str>) -> Result<AgentId, String> {
    let Some(key) = api_key.map(str::trim).filter(|key| !key.is_empty()) else {
        return Err(MISSING_KEY.to_owned());
    };
    match service.authenticate_agent(key).await {
        Ok(agent) => Ok(agent),
        Err(ServiceError::Internal(detail)) => {
            tracing::error!(
                error = format!("{detail:#}"),
                "could not check HUMANPING_API_KEY"
            );
            Err(
                "HumanPing could not check HUMANPING_API_KEY because of an internal error (see \
                 the server log); restart the MCP server to try again"
                    .to_owned(),
            )
        }
        Err(refused) => Err(format!("HUMANPING_API_KEY was refused: {refused}")),
    }
}
