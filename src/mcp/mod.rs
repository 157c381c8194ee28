//! The MCP server: the tools an agent uses to hire humans, over any rmcp transport.
//!
//! [`HumanPingMcp`] is one handler bound to one agent. Stdio serves a single handler for the
//! life of the process ([`serve_stdio`]); HTTP transports build one per session. The tools are
//! thin: they read arguments, call [`HumanPing`], and turn its errors into tool results with
//! `isError: true`, so an agent reads what went wrong instead of a protocol failure.

mod args;
pub mod bridge;
mod error;
pub mod http;
mod sse;
mod tools;

#[cfg(test)]
mod tests;

use anyhow::Context;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool_handler};

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
    `idempotency_key` to any call you might retry, so nothing is created or charged twice.";

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
}

impl HumanPingMcp {
    /// A handler acting for `agent`; `Err` holds the message every tool returns instead.
    pub fn new(service: HumanPing, agent: Result<AgentId, String>) -> HumanPingMcp {
        HumanPingMcp {
            service,
            agent,
            tool_router: HumanPingMcp::tool_router(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for HumanPingMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("humanping", env!("CARGO_PKG_VERSION")).with_title("HumanPing"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

/// Serves MCP on stdin/stdout for the agent whose key is `api_key`, until the client closes
/// stdin.
///
/// Stdout carries JSON-RPC only: nothing here prints, and logs go to stderr through `tracing`.
/// A missing or refused key does not stop the server: the client still connects, and every
/// tool call explains what to do.
pub async fn serve_stdio(service: HumanPing, api_key: Option<String>) -> anyhow::Result<()> {
    let agent = resolve_agent(&service, api_key.as_deref()).await;
    match &agent {
        Ok(agent) => tracing::info!(%agent, "serving MCP on stdio"),
        Err(reason) => tracing::warn!(%reason, "serving MCP on stdio without an agent"),
    }

    let running = HumanPingMcp::new(service, agent)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not complete the handshake on stdin/stdout")?;
    let reason = running
        .waiting()
        .await
        .context("the MCP server stopped abnormally")?;
    tracing::info!(?reason, "MCP stdio session ended");
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
