//! The OpenAPI 3.1 document of the REST API, generated from the code and served at
//! `GET /openapi.json`.
//!
//! Handlers carry `#[utoipa::path]` annotations and the request and response types derive
//! `utoipa::ToSchema`. The domain types they contain (ids, task kinds and states, response
//! formats, dollar amounts, a worker's submission) already describe themselves with `schemars`
//! for the MCP tools; the document takes those schemas as they are (OpenAPI 3.1 schemas are
//! JSON Schema 2020-12, which is what schemars writes), so MCP and REST describe a field the
//! same way. In the utoipa derives such a type is named through its stand-in below, e.g.
//! `#[schema(value_type = crate::http::openapi::TaskStatus)]`.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde_json::{Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// Declares, for each domain type, a stand-in that utoipa derives can name: it refers to the
/// component of the type's own name, which [`document`] fills with the type's schemars schema.
macro_rules! schemars_stand_ins {
    ($( $(#[$doc:meta])* $stand_in:ident => $real:ty ),* $(,)?) => {
        $(
            $(#[$doc])*
            pub(crate) struct $stand_in;

            impl PartialSchema for $stand_in {
                fn schema() -> RefOr<Schema> {
                    // Replaced by the schemars schema in `document`; never served as is.
                    RefOr::T(Schema::Object(Default::default()))
                }
            }

            impl ToSchema for $stand_in {
                fn name() -> Cow<'static, str> {
                    <$real as JsonSchema>::schema_name()
                }
            }
        )*

        /// The schemars schemas of every stand-in's type and of the types they contain, by
        /// component name, with references pointing into `#/components/schemas/`.
        fn schemars_components() -> serde_json::Map<String, Value> {
            let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            });
            let mut generator = schemars::SchemaGenerator::new(settings);
            $(
                let reference = generator.subschema_for::<$real>();
                let name = <$real as JsonSchema>::schema_name().into_owned();
                // A type schemars always inlines has no definition of its own: keep its schema.
                if !generator.definitions().contains_key(&name) {
                    generator.definitions_mut().insert(name, reference.to_value());
                }
            )*
            generator.take_definitions(true)
        }
    };
}

schemars_stand_ins! {
    /// A task's id, `tsk_…`.
    TaskId => crate::domain::ids::TaskId,
    /// An agent's id, `agt_…`.
    AgentId => crate::domain::ids::AgentId,
    /// A worker's id, `wkr_…`.
    WorkerId => crate::domain::ids::WorkerId,
    /// An assignment's id, `asg_…`.
    AssignmentId => crate::domain::ids::AssignmentId,
    /// The seven kinds of task.
    TaskKind => crate::domain::kind::TaskKind,
    /// Where a task is in its life.
    TaskStatus => crate::domain::status::TaskStatus,
    /// Where an assignment is in its life.
    AssignmentStatus => crate::domain::status::AssignmentStatus,
    /// The form of answer the agent asks for.
    ResponseFormat => crate::domain::response::ResponseFormat,
    /// A dollar amount, as a number or decimal text.
    Dollars => crate::domain::money::Dollars,
    /// A reason to doubt a result.
    FlagView => crate::service::FlagView,
    /// A worker's result, with its proof.
    SubmissionInput => crate::service::SubmissionInput,
    /// A top-up of an agent's balance.
    TopupView => crate::payments::TopupView,
    /// Where a worker finishes connecting their Stripe account.
    StripeConnectLink => crate::payments::StripeConnectLink,
    /// A worker's money on the way out.
    PayoutsView => crate::payments::PayoutsView,
    /// A honeypot, as the operator sees it.
    HoneypotView => crate::service::HoneypotView,
}

/// The `Idempotency-Key` header that money-moving POSTs take; the handlers read it from the
/// headers, this type documents it once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyHeader {
    /// 1 to 200 visible ASCII characters; a retry with the same key returns the first result
    /// and moves nothing twice.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// The one error shape (documentation of what `super::error::ApiError` writes).
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub(crate) struct ErrorDoc {
    error: ErrorDetailDoc,
}

/// What went wrong.
#[derive(ToSchema)]
#[schema(as = ErrorDetail)]
#[allow(dead_code)]
pub(crate) struct ErrorDetailDoc {
    /// A stable code: `invalid_input`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `insufficient_funds`, `idempotency_mismatch`, `method_not_allowed`,
    /// `unsupported_media_type`, `payload_too_large`, `internal` …
    #[schema(example = "invalid_input")]
    code: String,
    /// What was wrong and what to do next, in words.
    #[schema(example = "budget: amount 5.001 has more than two decimal places")]
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HumanPing REST API",
        description = "AI agents hire humans for what software cannot do. Agents create tasks \
            (their budget is held in escrow), follow and settle them; workers find tasks, claim \
            them and send answers with proof.\n\n\
            **Auth**: every `/v1` route takes an API key as `Authorization: Bearer <key>` (or \
            `X-API-Key: <key>`). Routes tagged `agent` need an agent key, routes tagged `worker` \
            a worker key (`hp_test_…` or `hp_live_…`); a key of the other role gets 403.\n\n\
            **Errors** all have one shape, `{\"error\": {\"code\", \"message\"}}`, whose message \
            says what was wrong.\n\n\
            **Idempotency**: the money-moving POSTs (create, approve, dispute, cancel) honour an \
            `Idempotency-Key` header: a retry with the same key returns the first result and \
            moves nothing twice; the same key with other arguments gets 422.\n\n\
            MCP is served beside this API (`/mcp`, Streamable HTTP; `/sse` + `/messages`, the \
            legacy HTTP+SSE transport) and is not described here.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::agent::create_task,
        super::agent::list_tasks,
        super::agent::get_task,
        super::agent::approve,
        super::agent::dispute,
        super::agent::cancel,
        super::agent::balance,
        super::agent::block_worker,
        super::agent::unblock_worker,
        proof_photo,
        create_topup,
        topup,
        stripe_webhook,
        super::worker::offers,
        super::worker::claim,
        super::worker::assignments,
        super::worker::submit,
        super::worker::release,
        super::worker::me,
        payouts_connect,
        payouts,
        add_partner,
        partners,
        remove_partner,
        worker_partners,
        leave_partner,
        add_honeypot,
        honeypots,
        retire_honeypot,
        super::ops::health,
        super::ops::ready,
        super::ops::metrics,
        openapi_json,
    ),
    components(schemas(ErrorDoc)),
    modifiers(&Conventions),
    tags(
        (name = "agent", description = "For AI agents, with an agent key"),
        (name = "worker", description = "For human workers, with a worker key"),
        (
            name = "operator",
            description = "For the operator, with an operator key (`humanping operator key`)"
        ),
        (name = "stripe", description = "Stripe's signed webhook; no API key"),
        (name = "operations", description = "Health, readiness, metrics and this document; no key"),
    )
)]
struct ApiDoc;

/// What every operation shares: the two ways to send a key, and the error shape as the
/// default response.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("HumanPing API key")
                    .description(Some(
                        "`Authorization: Bearer hp_test_…`: an agent key for `agent` routes, a \
                         worker key for `worker` routes",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The same API key in the `X-API-Key` header",
            ))),
        );
    }
}

/// The document as JSON, built once.
pub(crate) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        let schemas = document
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
            .expect("the document has component schemas");
        schemas.extend(schemars_components());
        inline_task_kinds(schemas);
        add_default_errors(&mut document);
        document
    })
}

/// Writes each branch of `CreateTaskBody` as one object: its kind's fields plus `kind`.
///
/// utoipa writes a branch as `allOf` of the kind's request and an object holding `kind`; as
/// the request refuses unknown fields (`additionalProperties: false`), no body could satisfy
/// both. The merged branch says the same thing without the contradiction, and names the tool
/// name each kind also answers to (`verify` for `verification`).
fn inline_task_kinds(schemas: &mut serde_json::Map<String, Value>) {
    let Some(branches) = schemas
        .get("CreateTaskBody")
        .and_then(|body| body.get("oneOf"))
        .and_then(Value::as_array)
        .cloned()
    else {
        return;
    };
    let mut merged = Vec::with_capacity(branches.len());
    for branch in branches {
        let parts = branch.get("allOf").and_then(Value::as_array);
        let reference = parts
            .and_then(|p| p.iter().find_map(|part| part.get("$ref")?.as_str()))
            .and_then(|r| r.strip_prefix("#/components/schemas/"));
        let kind = parts
            .and_then(|p| {
                p.iter()
                    .find_map(|part| part.pointer("/properties/kind/enum/0"))
            })
            .and_then(Value::as_str);
        let (Some(reference), Some(kind)) = (reference, kind) else {
            merged.push(branch);
            continue;
        };
        let Some(mut request) = schemas.get(reference).cloned() else {
            merged.push(branch);
            continue;
        };
        let mut names = vec![kind.to_owned()];
        if let Ok(parsed) = kind.parse::<crate::domain::kind::TaskKind>()
            && parsed.tool_name() != kind
        {
            names.push(parsed.tool_name().to_owned());
        }
        if let Some(properties) = request.get_mut("properties").and_then(Value::as_object_mut) {
            properties.insert(
                "kind".to_owned(),
                json!({
                    "type": "string",
                    "enum": names,
                    "description": "What the human should do: the task kind, or its tool name"
                }),
            );
        }
        if let Some(required) = request.get_mut("required").and_then(Value::as_array_mut) {
            required.insert(0, json!("kind"));
        }
        if let Some(object) = request.as_object_mut() {
            object.insert("title".to_owned(), json!(reference));
        }
        merged.push(request);
    }
    if let Some(body) = schemas.get_mut("CreateTaskBody") {
        body["oneOf"] = Value::Array(merged);
    }
}

/// Gives every operation the error shape as its `default` response, beside the statuses it
/// lists itself.
fn add_default_errors(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                responses.entry("default").or_insert_with(|| {
                    json!({
                        "description": "An error, in the one error shape; its message says \
                            what was wrong",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}
                        }}
                    })
                });
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((
        status = 200,
        description = "The OpenAPI 3.1 document",
        content_type = "application/json"
    ))
)]
pub(crate) async fn openapi_json() -> Response {
    // Serialized on each request from the value built once: a few kilobytes.
    let body = serde_json::to_string(document()).unwrap_or_else(|_| "{}".to_owned());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A proof photo of one of the agent's tasks (served by the worker app's photo store).
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/proofs/{sha256}",
    tag = "agent",
    params(
        ("id" = String, Path, description = "The task's id (tsk_…)"),
        ("sha256" = String, Path, description = "Lowercase hex SHA-256 of the photo"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The photo", content_type = "image/jpeg"),
        (status = 404, description = "No such photo for a task of this agent", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn proof_photo() {}

// The routes below are served by handlers that carry no annotations of their own (the worker
// app's photo store, payments, the operator's routes); these functions describe them for the
// document and are never called.

/// The body of `POST /v1/balance/topups`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TopupBody {
    /// Dollars to add, e.g. `25.00` (a number or decimal text).
    amount: Dollars,
}

/// Opens a Stripe Checkout for a top-up; the balance grows when Stripe confirms the payment.
#[utoipa::path(
    post,
    path = "/v1/balance/topups",
    tag = "agent",
    request_body = TopupBody,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (
            status = 201,
            description = "The top-up, with the Checkout link to pay it",
            body = TopupView
        ),
        (status = 400, description = "The amount is not a valid dollar amount", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn create_topup() {}

/// One top-up and whether Stripe confirmed it.
#[utoipa::path(
    get,
    path = "/v1/balance/topups/{id}",
    tag = "agent",
    params(("id" = String, Path, description = "The top-up's id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The top-up", body = TopupView),
        (status = 404, description = "No such top-up of this agent", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn topup() {}

/// Stripe's webhook: signed events, verified on the raw body against `Stripe-Signature`.
#[utoipa::path(
    post,
    path = "/v1/stripe/webhook",
    tag = "stripe",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature of the body")),
    request_body(content = Object, description = "A Stripe event, as Stripe sends it"),
    security(()),
    responses(
        (status = 200, description = "The event was new, or a duplicate"),
        (
            status = 400,
            description = "The signature is missing or wrong; nothing changed",
            body = ErrorDoc
        ),
    )
)]
#[allow(dead_code)]
fn stripe_webhook() {}

/// A link where the worker connects a Stripe Express account for payouts.
#[utoipa::path(
    post,
    path = "/v1/worker/payouts/connect",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The onboarding link", body = StripeConnectLink))
)]
#[allow(dead_code)]
fn payouts_connect() {}

/// The worker's money on the way out: payable, holding, in transit, paid out.
#[utoipa::path(
    get,
    path = "/v1/worker/payouts",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The worker's payouts", body = PayoutsView))
)]
#[allow(dead_code)]
fn payouts() {}

/// The body of `POST /v1/operator/honeypots`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct NewHoneypotDoc {
    /// The task, exactly as an agent would send it to `POST /v1/tasks`.
    #[schema(value_type = Object)]
    task: (),
    /// The answer a right result gives, in the task's response format ("yes", an option …).
    expected: String,
}

/// The body of `GET /v1/operator/honeypots`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct HoneypotsDoc {
    /// Every honeypot, with how its tasks were answered.
    honeypots: Vec<HoneypotView>,
}

/// Adds a honeypot: a task with a known answer, mixed into workers' feeds.
#[utoipa::path(
    post,
    path = "/v1/operator/honeypots",
    tag = "operator",
    request_body = NewHoneypotDoc,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The honeypot", body = HoneypotView),
        (
            status = 400,
            description = "The task or the expected answer is not valid",
            body = ErrorDoc
        ),
    )
)]
#[allow(dead_code)]
fn add_honeypot() {}

/// Every honeypot, with how its tasks were answered.
#[utoipa::path(
    get,
    path = "/v1/operator/honeypots",
    tag = "operator",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The honeypots", body = HoneypotsDoc))
)]
#[allow(dead_code)]
fn honeypots() {}

/// Makes no new tasks from a honeypot.
#[utoipa::path(
    post,
    path = "/v1/operator/honeypots/{id}/retire",
    tag = "operator",
    params(("id" = String, Path, description = "The honeypot's id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The honeypot, retired", body = HoneypotView),
        (status = 404, description = "No such honeypot", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn retire_honeypot() {}

/// The body of `POST /v1/partners`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct NewPartnerDoc {
    /// The worker's id, from one of your tasks' results.
    worker_id: String,
    /// Notes shown to the partner with each of your tasks.
    notes: Option<String>,
    /// Bonus on top of the budget, in basis points of it (0 to 5000).
    #[schema(maximum = 5000)]
    bonus_bps: Option<u32>,
}

/// The body of `GET /v1/partners`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PartnersDoc {
    /// The agent's partners, with their record.
    partners: Vec<crate::service::PartnerView>,
}

/// The body of `GET /v1/worker/partners`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PartnershipsDoc {
    /// The agents that partnered with this worker.
    partners: Vec<crate::service::PartnershipView>,
}

/// Partners with a worker (first look at the agent's tasks, notes, a bonus), or updates the
/// notes and bonus of a partner.
#[utoipa::path(
    post,
    path = "/v1/partners",
    tag = "agent",
    request_body = NewPartnerDoc,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The partner", body = crate::service::PartnerView),
        (status = 404, description = "No such worker", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn add_partner() {}

/// The agent's partners, with their record.
#[utoipa::path(
    get,
    path = "/v1/partners",
    tag = "agent",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The partners", body = PartnersDoc))
)]
#[allow(dead_code)]
fn partners() {}

/// Ends a partnership.
#[utoipa::path(
    delete,
    path = "/v1/partners/{worker_id}",
    tag = "agent",
    params(("worker_id" = String, Path, description = "The worker's id (wkr_…)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The worker is no longer a partner"),
        (status = 404, description = "No such partner", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn remove_partner() {}

/// The agents that partnered with this worker.
#[utoipa::path(
    get,
    path = "/v1/worker/partners",
    tag = "worker",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The partnerships", body = PartnershipsDoc))
)]
#[allow(dead_code)]
fn worker_partners() {}

/// The worker leaves an agent's partners.
#[utoipa::path(
    delete,
    path = "/v1/worker/partners/{agent_id}",
    tag = "worker",
    params(("agent_id" = String, Path, description = "The agent's id (agt_…)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The worker is no longer this agent's partner"),
        (status = 404, description = "No such partnership", body = ErrorDoc),
    )
)]
#[allow(dead_code)]
fn leave_partner() {}
