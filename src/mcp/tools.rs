//! The tools: seven that send a task to humans, six to follow up on tasks and money, and two
//! to keep a worker off the agent's tasks (or let them back).
//!
//! A human answers in minutes or hours, longer than most MCP clients wait for one call. So a
//! task tool waits a bounded time (`wait_seconds`), sending progress notifications when the
//! client asked for them, and then returns the task as it stands: a durable handle the agent
//! brings back to `get_task`.

use std::time::Duration;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use tokio::time::Instant;
use tracing::Instrument;

use super::HumanPingMcp;
use super::args::{
    ApproveArgs, CancelTaskArgs, DEFAULT_LIST_LIMIT, DisputeArgs, GetTaskArgs, ListTasksArgs,
    MAX_LIST_LIMIT, PartnerAddArgs, WorkerArgs,
};
use super::error::ToolError;
use super::http::CallerAgent;
use super::resources::TaskResult;
use crate::domain::ids::AgentId;
use crate::domain::kind::TaskKind;
use crate::domain::status::TaskStatus;
use crate::input::{
    CallRequest, EscalateRequest, FieldRequest, GutCheckRequest, MAX_WAIT_SECONDS,
    RealityCheckRequest, TaskDraft, VerifyRequest, VibeRequest,
};
use crate::service::Change;
use crate::service::views::{BalanceView, TaskPage, TaskView};

/// What `block_worker` and `unblock_worker` return.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct WorkerBlockView {
    /// The worker concerned.
    pub worker_id: String,
    /// Whether the worker is now kept off your tasks.
    pub blocked: bool,
}

/// What `partner_remove` returns.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct PartnerRemoved {
    /// The worker concerned.
    pub worker_id: String,
    /// Whether the worker is still your partner (false).
    pub partner: bool,
}

/// What `partners` returns.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct PartnerList {
    /// Your partners, oldest first, with their record on your tasks.
    pub partners: Vec<crate::service::PartnerView>,
}

/// How often a waiting call tells the client it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[tool_router(router = tool_router, vis = "pub(crate)")]
impl HumanPingMcp {
    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::Verification,
            "Ask a human to check a real-world fact: is a shop open, is an item in stock, is a \
             sign still up, does a business answer at this address.",
        ),
        annotations(
            title = "Verify a fact",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn verify(
        &self,
        Parameters(request): Parameters<VerifyRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::VoiceProxy,
            "Ask a human to make a phone call for you: book, ask, confirm or complain, and \
             report the outcome.",
        ),
        annotations(
            title = "Have a human make a call",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn call(
        &self,
        Parameters(request): Parameters<CallRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::GutCheck,
            "Ask a human for their gut feeling on a question, as yes/no or one of your options.",
        ),
        annotations(
            title = "Get a human's gut feeling",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn gut_check(
        &self,
        Parameters(request): Parameters<GutCheckRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::FieldMission,
            "Send a human on site to look, count, photograph or pick something up; photo and \
             GPS proof are required by default.",
        ),
        annotations(
            title = "Send a human on site",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn field(
        &self,
        Parameters(request): Parameters<FieldRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::Escalation,
            "Hand a person in distress or anger over to an empathetic human who contacts them.",
        ),
        annotations(
            title = "Escalate to an empathetic human",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn escalate(
        &self,
        Parameters(request): Parameters<EscalateRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::VibeRead,
            "Ask a human to read the mood of a text, image or situation.",
        ),
        annotations(
            title = "Read the vibe",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn vibe(
        &self,
        Parameters(request): Parameters<VibeRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        description = task_description(
            TaskKind::RealityCheck,
            "Ask a human to check your own work product (a reply, a plan, code, a summary) \
             before you rely on it.",
        ),
        annotations(
            title = "Reality-check your work",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn reality_check(
        &self,
        Parameters(request): Parameters<RealityCheckRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        self.send_task(request.into_draft(), &context).await
    }

    /// Get a task's current state and the human's answer once it is in. With `wait_seconds`,
    /// waits up to that long for the answer first. A `completed` task waits for you to
    /// `approve` or `dispute` it.
    #[tool(
        output_schema = schema_for_output::<TaskView>(),
        annotations(
            title = "Get a task",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_task(
        &self,
        Parameters(args): Parameters<GetTaskArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        let agent = self.agent(&context)?;
        let wait = args.wait_seconds.unwrap_or(0).min(MAX_WAIT_SECONDS);
        let span = tool_span("get_task", agent, Some(&args.task_id));
        async {
            let view = if wait == 0 {
                self.service.get_task(agent, &args.task_id).await?
            } else {
                let wait = Duration::from_secs(u64::from(wait));
                self.wait_for_result(agent, &args.task_id, wait, &context)
                    .await?
            };
            Ok(TaskResult(view))
        }
        .instrument(span)
        .await
    }

    /// Accept a completed task's result: the human is paid from the task's escrow (minus the
    /// platform fee) and the task becomes `approved`.
    #[tool(annotations(
        title = "Approve a result",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn approve(
        &self,
        Parameters(args): Parameters<ApproveArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<TaskView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("approve", agent, Some(&args.task_id));
        async {
            let key = args.idempotency_key.as_deref();
            let view = self.service.approve(agent, &args.task_id, key).await?;
            tracing::debug!(status = view.status.as_str(), "result approved");
            Ok(Json(view))
        }
        .instrument(span)
        .await
    }

    /// Reject a completed task's result with a reason: the escrow goes back to your balance
    /// and the task becomes `refunded`. Use it for wrong, missing or faked answers.
    #[tool(annotations(
        title = "Dispute a result",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn dispute(
        &self,
        Parameters(args): Parameters<DisputeArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<TaskView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("dispute", agent, Some(&args.task_id));
        async {
            let key = args.idempotency_key.as_deref();
            let view = match &args.assignment_id {
                Some(one) => {
                    self.service
                        .dispute_result(agent, &args.task_id, one, &args.reason, key)
                        .await?
                }
                None => {
                    self.service
                        .dispute(agent, &args.task_id, &args.reason, key)
                        .await?
                }
            };
            tracing::debug!(status = view.status.as_str(), "result disputed");
            Ok(Json(view))
        }
        .instrument(span)
        .await
    }

    /// Cancel a task no human has taken yet: its escrow goes back to your balance and the task
    /// becomes `cancelled`.
    #[tool(annotations(
        title = "Cancel a task",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn cancel_task(
        &self,
        Parameters(args): Parameters<CancelTaskArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<TaskView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("cancel_task", agent, Some(&args.task_id));
        async {
            let key = args.idempotency_key.as_deref();
            let view = self.service.cancel(agent, &args.task_id, key).await?;
            tracing::debug!(status = view.status.as_str(), "task cancelled");
            Ok(Json(view))
        }
        .instrument(span)
        .await
    }

    /// List your tasks, newest first, optionally only those in one state. Pass the returned
    /// `next_cursor` as `before` to get the next page.
    #[tool(annotations(
        title = "List tasks",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_tasks(
        &self,
        Parameters(args): Parameters<ListTasksArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<TaskPage>, ToolError> {
        let agent = self.agent(&context)?;
        let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(ToolError::invalid(format!(
                "limit {limit} is out of range; give 1 to {MAX_LIST_LIMIT}"
            )));
        }
        let span = tool_span("list_tasks", agent, None);
        async {
            let before = args.before.as_deref();
            let page = self
                .service
                .list_tasks(agent, args.status, limit, before)
                .await?;
            Ok(Json(page))
        }
        .instrument(span)
        .await
    }

    /// Your money: what new tasks can use (available), what is held in escrow for unfinished
    /// tasks (held), and what approved work has cost so far (spent).
    #[tool(annotations(
        title = "Balance",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn balance(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<BalanceView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("balance", agent, None);
        async { Ok(Json(self.service.balance(agent).await?)) }
            .instrument(span)
            .await
    }

    /// Add money to your balance with a card, through Stripe: returns a Checkout link for a
    /// person to open and pay. Nothing is credited until Stripe confirms the payment; then
    /// `balance` shows it. Only on servers with Stripe configured.
    #[tool(annotations(
        title = "Top up the balance",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn topup(
        &self,
        Parameters(args): Parameters<super::args::TopupArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::payments::TopupView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("topup", agent, None);
        async { Ok(Json(self.service.create_topup(agent, args.amount.0).await?)) }
            .instrument(span)
            .await
    }

    /// Keep a worker off your tasks, e.g. after a faked or careless result: they are no
    /// longer offered your tasks and cannot claim them. A claim they already hold is not
    /// affected. Blocking a worker twice changes nothing.
    #[tool(annotations(
        title = "Block a worker",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn block_worker(
        &self,
        Parameters(args): Parameters<WorkerArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<WorkerBlockView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("block_worker", agent, None);
        async {
            self.service.block_worker(agent, &args.worker_id).await?;
            Ok(Json(WorkerBlockView {
                worker_id: args.worker_id,
                blocked: true,
            }))
        }
        .instrument(span)
        .await
    }

    /// Let a worker you blocked take your tasks again.
    #[tool(annotations(
        title = "Unblock a worker",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn unblock_worker(
        &self,
        Parameters(args): Parameters<WorkerArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<WorkerBlockView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("unblock_worker", agent, None);
        async {
            self.service.unblock_worker(agent, &args.worker_id).await?;
            Ok(Json(WorkerBlockView {
                worker_id: args.worker_id,
                blocked: false,
            }))
        }
        .instrument(span)
        .await
    }

    /// Partner with a worker whose work you liked (their worker_id is in a task's results).
    /// Partners see your new tasks first (alone for a first-look window), read your notes with
    /// each task, and earn the bonus you set on top of the budget. Calling it again updates
    /// the notes and bonus.
    #[tool(annotations(
        title = "Partner with a worker",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn partner_add(
        &self,
        Parameters(args): Parameters<PartnerAddArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::service::PartnerView>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("partner_add", agent, None);
        async {
            let partner = self
                .service
                .partner_add(
                    agent,
                    &args.worker_id,
                    args.notes.as_deref(),
                    args.bonus_bps,
                )
                .await?;
            Ok(Json(partner))
        }
        .instrument(span)
        .await
    }

    /// End a partnership: the worker no longer sees your tasks first or earns your bonus.
    #[tool(annotations(
        title = "Remove a partner",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn partner_remove(
        &self,
        Parameters(args): Parameters<WorkerArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<PartnerRemoved>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("partner_remove", agent, None);
        async {
            self.service.partner_remove(agent, &args.worker_id).await?;
            Ok(Json(PartnerRemoved {
                worker_id: args.worker_id,
                partner: false,
            }))
        }
        .instrument(span)
        .await
    }

    /// Your partners, with their notes, bonus, trust score and record on your tasks.
    #[tool(annotations(
        title = "List partners",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn partners(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<PartnerList>, ToolError> {
        let agent = self.agent(&context)?;
        let span = tool_span("partners", agent, None);
        async {
            Ok(Json(PartnerList {
                partners: self.service.partners(agent).await?,
            }))
        }
        .instrument(span)
        .await
    }
}

impl HumanPingMcp {
    /// The agent the tools act for: the one whose key signed this HTTP request when the call
    /// came over HTTP, else the one this handler was made for, else the error every tool
    /// answers without one.
    pub(crate) fn agent<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<&'a AgentId, ToolError> {
        let from_http = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CallerAgent>());
        if let Some(CallerAgent(agent)) = from_http {
            return Ok(agent);
        }
        self.agent
            .as_ref()
            .map_err(|reason| ToolError::unauthorized(reason))
    }

    /// Creates a task and waits for its result as long as the request asks.
    async fn send_task(
        &self,
        draft: TaskDraft,
        context: &RequestContext<RoleServer>,
    ) -> Result<TaskResult, ToolError> {
        let agent = self.agent(context)?;
        let span = tool_span(draft.kind.tool_name(), agent, None);
        async {
            let wait = Duration::from_secs(u64::from(draft.wait_seconds()));

            let view = self.service.create_task(agent, draft).await?;
            tracing::Span::current().record("task", view.task_id.as_str());
            tracing::debug!(
                status = view.status.as_str(),
                held_cents = view.held_cents,
                "task sent"
            );

            if wait.is_zero() || !still_waiting(view.status) {
                return Ok(TaskResult(view));
            }
            let view = self
                .wait_for_result(agent, view.task_id.as_str(), wait, context)
                .await?;
            Ok(TaskResult(view))
        }
        .instrument(span)
        .await
    }

    /// Waits up to `wait` for a task's result. When the client gave a progress token it sends
    /// a progress notification each time the task moves (a human claimed it, a claim ran out)
    /// and every few seconds in between; it stops when the client cancels.
    async fn wait_for_result(
        &self,
        agent: &AgentId,
        task_id: &str,
        wait: Duration,
        context: &RequestContext<RoleServer>,
    ) -> Result<TaskView, ToolError> {
        let progress_token = context.meta.get_progress_token();
        let started = Instant::now();
        let mut ticks = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
        let mut changes = self.service.subscribe();
        let mut last_status = self
            .service
            .get_task(agent, task_id)
            .await
            .ok()
            .map(|v| v.status);
        let waiting = self.service.wait_for_result(agent, task_id, wait);
        tokio::pin!(waiting);

        loop {
            let message = tokio::select! {
                view = &mut waiting => return Ok(view?),
                () = context.ct.cancelled() => return Err(ToolError::cancelled(task_id)),
                () = self.client_gone() => return Err(ToolError::cancelled(task_id)),
                _ = ticks.tick(), if progress_token.is_some() => {
                    let waited = started.elapsed().as_secs();
                    format!("waiting for the human's answer: {waited} of {} seconds", wait.as_secs())
                }
                changed = changes.recv(), if progress_token.is_some() => {
                    if matches!(&changed, Ok(Change::Task(id)) if id.as_str() != task_id) {
                        continue;
                    }
                    let Ok(view) = self.service.get_task(agent, task_id).await else { continue };
                    if last_status == Some(view.status) {
                        continue;
                    }
                    last_status = Some(view.status);
                    match view.status {
                        TaskStatus::InProgress => {
                            "a human claimed the task and is working on it".to_owned()
                        }
                        TaskStatus::Open => "the task is open again, waiting for a human".to_owned(),
                        _ => continue,
                    }
                }
            };
            let Some(token) = progress_token.clone() else {
                continue;
            };
            let progress = ProgressNotificationParam::new(token, started.elapsed().as_secs_f64())
                .with_total(wait.as_secs_f64())
                .with_message(message);
            if let Err(error) = context.peer.notify_progress(progress).await {
                tracing::debug!(%error, "could not send a progress notification");
            }
        }
    }
}

/// Whether waiting could still bring a result: the task is neither answered nor over.
fn still_waiting(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Open | TaskStatus::InProgress)
}

/// The span one tool call runs in; `task` is filled in once known.
fn tool_span(tool: &'static str, agent: &AgentId, task_id: Option<&str>) -> tracing::Span {
    tracing::info_span!("mcp_tool", tool, agent = %agent, task = task_id)
}

/// The description of a task tool: what it is for, then how budget, waiting and retries work.
fn task_description(kind: TaskKind, purpose: &str) -> String {
    format!(
        "{purpose} Costs ${budget} per human unless you set `budget`; the money is held in \
         escrow from your balance until you approve, dispute or cancel. Waits up to \
         `wait_seconds` (default 30, at most 120) for the answer, then returns the task as it \
         stands: if it is not `completed` yet, call `get_task` with its `task_id` later. \
         Retrying with the same `idempotency_key` never creates or charges twice.",
        budget = kind.default_budget()
    )
}
