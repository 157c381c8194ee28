//! Who may do what: every HTTP route the server mounts (REST, MCP transports, web app) and
//! every MCP tool, tried by every role, against the outcome each role should get.
//!
//! Roles: nobody (no credential), agent A (owns the tasks), agent B (another agent), worker W
//! (holds A's claimed task), worker W2 (another worker) and an operator key. Each cell runs on
//! fresh tasks, so one cell's success cannot hide another's mistake. Besides the status, a role
//! that is not entitled to a task's private details must never see them in any response.
//!
//! The route table is checked against the routes declared in the source, so a new route fails
//! this test until it has a row here.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::input::CreateTaskBody;
use humanping::service::{HumanPing, SubmissionInput};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Anonymous,
    AgentA,
    AgentB,
    Worker,
    OtherWorker,
    Operator,
}

const ROLES: [Role; 6] = [
    Role::Anonymous,
    Role::AgentA,
    Role::AgentB,
    Role::Worker,
    Role::OtherWorker,
    Role::Operator,
];

/// What a cell should answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status.
    Status(u16),
    /// A 303 redirect to this location, or below it when it ends with `/`.
    Redirect(&'static str),
}
use Expect::{Redirect, Status};

/// How a role presents itself on a surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    /// `Authorization: Bearer <key>`.
    Key,
    /// The worker's `hp_session` cookie (workers only; the others send their key, which the web
    /// app does not read).
    Cookie,
}

/// What the request carries.
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    Json(&'static str),
    /// A form; `{csrf}` is the role's CSRF token, `{key}` the role's API key, `{link}` the
    /// role's sign-in link token.
    Form(&'static [(&'static str, &'static str)]),
    /// The web app's submit form with a photo.
    Multipart,
    /// An MCP `initialize` request.
    Initialize,
}

/// Done before the request, on the cell's fresh fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prep {
    None,
    /// Agent A blocks worker W.
    ABlocksW,
    /// Agent A opens an MCP session (Streamable HTTP), named by `{mcp}`.
    McpSession,
    /// Agent A opens an SSE stream, named by `{sse}`.
    SseSession,
    /// W's completed result carries a photo, named by `{sha}`.
    Photo,
    /// The operator adds a honeypot, named by `{honeypot}`.
    Honeypot,
    /// Agent A partners with worker W, with notes that are private details.
    APartnersW,
}

struct Row {
    method: &'static str,
    /// The route as declared in the source.
    route: &'static str,
    /// The path requested, with `{open}`, `{claimed}`, `{completed}` (A's tasks: unclaimed,
    /// claimed by W, answered by W), `{asg}` (W's claim), `{w}` (W's id), `{sha}`, `{mcp}`,
    /// `{sse}` filled in.
    path: &'static str,
    surface: Surface,
    prep: Prep,
    body: Body,
    /// Anonymous, A, B, W, W2, operator.
    expect: [Expect; 6],
    /// Roles whose answer may show the tasks' private details.
    sees_details: &'static [Role],
}

const NONE: &[Role] = &[];
const A: &[Role] = &[Role::AgentA];
const W: &[Role] = &[Role::Worker];
const A_W: &[Role] = &[Role::AgentA, Role::Worker];

const S200: Expect = Status(200);
const S201: Expect = Status(201);
const S204: Expect = Status(204);
const S401: Expect = Status(401);
const S403: Expect = Status(403);
const S404: Expect = Status(404);
const TO_SIGN_IN: Expect = Redirect("/app/sign-in");

/// The outcome of a route that only agents may use: A and B each act for themselves.
const AGENTS_ONLY: [Expect; 6] = [S401, S200, S200, S403, S403, S403];
/// The outcome of a route on A's own task: B is told it does not exist.
const A_ONLY: [Expect; 6] = [S401, S200, S404, S403, S403, S403];
/// The outcome of a worker route where each worker acts for themselves.
const WORKERS_ONLY: [Expect; 6] = [S401, S403, S403, S200, S200, S403];
/// The outcome of a worker route on W's own claim.
const W_ONLY: [Expect; 6] = [S401, S403, S403, S200, S404, S403];
/// A web page for whoever is signed in.
const SIGNED_IN_PAGE: [Expect; 6] = [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, S200, S200, TO_SIGN_IN];
/// The operator's routes.
const OPERATOR_ONLY: [Expect; 6] = [S401, S403, S403, S403, S403, S200];
/// A public page.
const PUBLIC: [Expect; 6] = [S200; 6];

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let row = |method, route, path, surface, prep, body, expect, sees_details| Row {
        method,
        route,
        path,
        surface,
        prep,
        body,
        expect,
        sees_details,
    };
    use Body as B;
    use Prep as P;
    use Surface::{Cookie, Key};
    let task = r#"{"kind": "verification", "question": "Is it open?", "budget": 3}"#;
    let answer = r#"{"answer": "yes"}"#;
    vec![
        // What operators and orchestrators read: open to all, showing no task's details.
        row("GET", "/healthz", "/healthz", Key, P::None, B::None, PUBLIC, NONE),
        row("GET", "/readyz", "/readyz", Key, P::None, B::None, PUBLIC, NONE),
        row("GET", "/metrics", "/metrics", Key, P::None, B::None, PUBLIC, NONE),
        row("GET", "/openapi.json", "/openapi.json", Key, P::None, B::None, PUBLIC, NONE),
        // The agent's REST API.
        row("POST", "/v1/tasks", "/v1/tasks", Key, P::None, B::Json(task),
            [S401, S201, S201, S403, S403, S403], NONE),
        row("GET", "/v1/tasks", "/v1/tasks", Key, P::None, B::None, AGENTS_ONLY, A),
        row("GET", "/v1/tasks/{id}", "/v1/tasks/{claimed}", Key, P::None, B::None, A_ONLY, A),
        row("POST", "/v1/tasks/{id}/approve", "/v1/tasks/{completed}/approve", Key, P::None,
            B::None, A_ONLY, A),
        row("POST", "/v1/tasks/{id}/dispute", "/v1/tasks/{completed}/dispute", Key, P::None,
            B::Json(r#"{"reason": "wrong shop"}"#), A_ONLY, A),
        row("POST", "/v1/tasks/{id}/cancel", "/v1/tasks/{open}/cancel", Key, P::None, B::None,
            A_ONLY, A),
        row("GET", "/v1/balance", "/v1/balance", Key, P::None, B::None, AGENTS_ONLY, NONE),
        row("POST", "/v1/blocks", "/v1/blocks", Key, P::None,
            B::Json(r#"{"worker_id": "{w}"}"#), [S401, S204, S204, S403, S403, S403], NONE),
        row("DELETE", "/v1/blocks/{worker_id}", "/v1/blocks/{w}", Key, P::ABlocksW, B::None,
            [S401, S204, S204, S403, S403, S403], NONE),
        row("GET", "/v1/tasks/{id}/proofs/{sha256}", "/v1/tasks/{completed}/proofs/{sha}", Key,
            P::Photo, B::None, [S401, S200, S404, S403, S403, S403], A),
        // The worker's REST API.
        row("GET", "/v1/worker/tasks", "/v1/worker/tasks", Key, P::None, B::None, WORKERS_ONLY,
            NONE),
        row("POST", "/v1/worker/tasks/{id}/claim", "/v1/worker/tasks/{open}/claim", Key, P::None,
            B::None, [S401, S403, S403, S201, S201, S403], W_OR_W2_CLAIM),
        row("GET", "/v1/worker/assignments", "/v1/worker/assignments", Key, P::None, B::None,
            WORKERS_ONLY, W),
        row("POST", "/v1/worker/assignments/{id}/submit", "/v1/worker/assignments/{asg}/submit",
            Key, P::None, B::Json(answer), W_ONLY, W),
        row("POST", "/v1/worker/assignments/{id}/release",
            "/v1/worker/assignments/{asg}/release", Key, P::None, B::None, W_ONLY, W),
        row("GET", "/v1/worker/me", "/v1/worker/me", Key, P::None, B::None, WORKERS_ONLY, NONE),
        // MCP transports: agents only, each session bound to the agent that opened it.
        row("POST", "/mcp", "/mcp", Key, P::None, B::Initialize,
            [S401, S200, S200, S403, S403, S403], NONE),
        row("DELETE", "/mcp", "/mcp#{mcp}", Key, P::McpSession, B::None,
            [S401, Status(202), S404, S403, S403, S403], NONE),
        row("GET", "/sse", "/sse", Key, P::None, B::None, AGENTS_ONLY, NONE),
        row("POST", "/messages", "/messages?sessionId={sse}", Key, P::SseSession,
            B::Initialize, [S401, Status(202), S404, S403, S403, S403], NONE),
        // Partners: an agent's chosen workers, and a worker's view of who chose them.
        row("POST", "/v1/partners", "/v1/partners", Key, P::None,
            B::Json(r#"{"worker_id": "{w}"}"#), [S401, S200, S404, S403, S403, S403], NONE),
        row("GET", "/v1/partners", "/v1/partners", Key, P::APartnersW, B::None, AGENTS_ONLY, A_W),
        row("DELETE", "/v1/partners/{worker_id}", "/v1/partners/{w}", Key, P::APartnersW,
            B::None, [S401, S204, S404, S403, S403, S403], NONE),
        row("GET", "/v1/worker/partners", "/v1/worker/partners", Key, P::APartnersW, B::None,
            WORKERS_ONLY, A_W),
        row("DELETE", "/v1/worker/partners/{agent_id}", "/v1/worker/partners/{a}", Key,
            P::APartnersW, B::None, [S401, S403, S403, S204, S404, S403], NONE),
        row("POST", "/app/partners/{agent_id}/leave", "/app/partners/{a}/leave", Cookie,
            P::APartnersW, B::Form(&[("csrf", "{csrf}")]),
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, Redirect("/app/me"), S404, TO_SIGN_IN], NONE),
        row("GET", "/pay/connect", "/pay/connect", Key, P::None, B::None, PUBLIC, NONE),
        // Real money: agents' top-ups, Stripe's own webhook, workers' payouts. In test mode
        // (no Stripe key) the owners are refused too, and the webhook is not there.
        // With a Stripe key (against a local fake) tests/payments.rs checks them by role.
        row("POST", "/v1/balance/topups", "/v1/balance/topups", Key, P::None,
            B::Json(r#"{"amount": 10}"#), [S401, S403, S403, S403, S403, S403], NONE),
        row("GET", "/v1/balance/topups/{id}", "/v1/balance/topups/top_unknown", Key, P::None,
            B::None, [S401, S404, S404, S403, S403, S403], NONE),
        row("POST", "/v1/stripe/webhook", "/v1/stripe/webhook", Key, P::None,
            B::Json(r#"{"type": "checkout.session.completed"}"#), [S404; 6], NONE),
        row("POST", "/v1/worker/payouts/connect", "/v1/worker/payouts/connect", Key, P::None,
            B::None, [S401, S403, S403, S403, S403, S403], NONE),
        row("GET", "/v1/worker/payouts", "/v1/worker/payouts", Key, P::None, B::None,
            WORKERS_ONLY, NONE),
        row("GET", "/pay/topup", "/pay/topup", Key, P::None, B::None, PUBLIC, NONE),
        row("GET", "/pay/topup/done", "/pay/topup/done", Key, P::None, B::None, PUBLIC, NONE),
        // The operator's API.
        row("GET", "/v1/operator/honeypots", "/v1/operator/honeypots", Key, P::None, B::None,
            OPERATOR_ONLY, NONE),
        row("POST", "/v1/operator/honeypots", "/v1/operator/honeypots", Key, P::None,
            B::Json(r#"{"task": {"kind": "verification", "question": "Is it open?", "budget": 3, "response": "yes_no"}, "expected": "yes"}"#),
            [S401, S403, S403, S403, S403, S201], NONE),
        row("POST", "/v1/operator/honeypots/{id}/retire", "/v1/operator/honeypots/{honeypot}/retire",
            Key, P::Honeypot, B::None, OPERATOR_ONLY, NONE),
        // The worker web app.
        row("GET", "/app", "/app", Cookie, P::None, B::None, SIGNED_IN_PAGE, NONE),
        row("GET", "/app/", "/app/", Cookie, P::None, B::None, SIGNED_IN_PAGE, NONE),
        row("GET", "/app/feed", "/app/feed", Cookie, P::None, B::None, SIGNED_IN_PAGE, NONE),
        row("GET", "/app/me", "/app/me", Cookie, P::None, B::None, SIGNED_IN_PAGE, W),
        row("GET", "/app/app.js", "/app/app.js", Cookie, P::None, B::None, PUBLIC, NONE),
        row("GET", "/app/sign-in", "/app/sign-in", Cookie, P::None, B::None, PUBLIC, NONE),
        row("POST", "/app/sign-in", "/app/sign-in", Cookie, P::None,
            B::Form(&[("key", "{key}")]),
            [S401, S401, S401, Redirect("/app"), Redirect("/app"), S401], NONE),
        row("GET", "/app/sign-in/link", "/app/sign-in/link?token=abc", Cookie, P::None, B::None,
            PUBLIC, NONE),
        row("POST", "/app/sign-in/link", "/app/sign-in/link", Cookie, P::None,
            B::Form(&[("token", "{link}")]),
            [S401, S401, S401, Redirect("/app"), Redirect("/app"), S401], NONE),
        row("POST", "/app/sign-out", "/app/sign-out", Cookie, P::None,
            B::Form(&[("csrf", "{csrf}")]),
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN], NONE),
        row("POST", "/app/location", "/app/location", Cookie, P::None,
            B::Form(&[("csrf", "{csrf}"), ("lat", "45.5"), ("lng", "-73.55")]),
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, S204, S204, TO_SIGN_IN], NONE),
        row("POST", "/app/tasks/{id}/claim", "/app/tasks/{open}/claim", Cookie, P::None,
            B::Form(&[("csrf", "{csrf}")]),
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, Redirect("/app/assignments/"),
             Redirect("/app/assignments/"), TO_SIGN_IN], NONE),
        row("GET", "/app/assignments/{id}", "/app/assignments/{asg}", Cookie, P::None, B::None,
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, S200, S404, TO_SIGN_IN], W),
        row("POST", "/app/assignments/{id}/release", "/app/assignments/{asg}/release", Cookie,
            P::None, B::Form(&[("csrf", "{csrf}")]),
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, Redirect("/app"), S404, TO_SIGN_IN], NONE),
        row("POST", "/app/assignments/{id}/submit", "/app/assignments/{asg}/submit", Cookie,
            P::None, B::Multipart,
            [TO_SIGN_IN, TO_SIGN_IN, TO_SIGN_IN, Redirect("/app/assignments/"), S404, TO_SIGN_IN],
            NONE),
    ]
}

/// A claim's answer shows the task's private details to the worker who now holds it.
const W_OR_W2_CLAIM: &[Role] = &[Role::Worker, Role::OtherWorker];

/// The people and keys of the matrix, shared by every cell.
struct World {
    svc: HumanPing,
    base: String,
    http: reqwest::Client,
    a: (AgentId, String),
    b: (AgentId, String),
    w: (WorkerId, String),
    w2: (WorkerId, String),
    operator_key: String,
    _server: common::server::InProcess,
}

/// A role's web session.
struct WebLogin {
    cookie: String,
    csrf: String,
}

/// A's tasks made for one cell, in each state, with a private detail to watch for.
struct Fixture {
    secret: String,
    open: String,
    claimed: String,
    asg: String,
    completed: String,
    sha: String,
    mcp_session: String,
    sse_session: String,
    honeypot: String,
    /// Keeps the SSE stream (and so its session) open while the cell runs.
    _sse: Option<reqwest::Response>,
}

impl World {
    async fn new(svc: HumanPing) -> World {
        let server = common::server::serve_in_process(&svc).await;
        let a = common::funded_agent(&svc, "50000").await;
        let b = common::funded_agent(&svc, "50000").await;
        let w = common::worker(&svc, "W").await;
        let w2 = common::worker(&svc, "W2").await;
        let operator_key = humanping::auth::generate_key(false);
        sqlx::query(
            "INSERT INTO api_keys (key_hash, prefix, role, owner_id, created_at) \
             VALUES ($1, $2, 'operator', 'operator', 0)",
        )
        .bind(humanping::auth::hash_key(&operator_key))
        .bind(humanping::auth::key_prefix(&operator_key))
        .execute(svc.store().pool())
        .await
        .expect("insert the operator key");
        World {
            base: server.base.clone(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            svc,
            a,
            b,
            w,
            w2,
            operator_key,
            _server: server,
        }
    }

    fn key(&self, role: Role) -> Option<&str> {
        match role {
            Role::Anonymous => None,
            Role::AgentA => Some(&self.a.1),
            Role::AgentB => Some(&self.b.1),
            Role::Worker => Some(&self.w.1),
            Role::OtherWorker => Some(&self.w2.1),
            Role::Operator => Some(&self.operator_key),
        }
    }

    fn worker_id(&self, role: Role) -> Option<&WorkerId> {
        match role {
            Role::Worker => Some(&self.w.0),
            Role::OtherWorker => Some(&self.w2.0),
            _ => None,
        }
    }

    async fn web_login(&self, role: Role) -> Option<WebLogin> {
        let worker = self.worker_id(role)?;
        let (cookie, session) = self.svc.create_web_session(worker).await.unwrap();
        Some(WebLogin {
            cookie,
            csrf: session.csrf_token,
        })
    }

    async fn create_task(&self, secret: &str) -> String {
        let body = json!({
            "kind": "verification",
            "question": "Is the bakery on Rue St-Paul open?",
            "context": secret,
            "budget": 3,
        });
        let draft = serde_json::from_value::<CreateTaskBody>(body)
            .unwrap()
            .into_draft();
        let task = self.svc.create_task(&self.a.0, draft).await.unwrap();
        task.task_id.to_string()
    }

    async fn fixture(&self, prep: Prep) -> Fixture {
        // A block or a partnership left by an earlier cell would change who may take A's new
        // tasks.
        let _ = self.svc.unblock_worker(&self.a.0, self.w.0.as_str()).await;
        let _ = self.svc.partner_remove(&self.a.0, self.w.0.as_str()).await;
        let secret = format!("private-{}", common::random_suffix());
        let open = self.create_task(&secret).await;
        let claimed = self.create_task(&secret).await;
        let asg = self.svc.claim(&self.w.0, &claimed).await.unwrap();
        let completed = self.create_task(&secret).await;
        let done = self.svc.claim(&self.w.0, &completed).await.unwrap();
        let mut fixture = Fixture {
            secret,
            open,
            claimed,
            asg: asg.assignment_id.to_string(),
            completed,
            sha: "0".repeat(64),
            mcp_session: String::new(),
            sse_session: String::new(),
            honeypot: String::new(),
            _sse: None,
        };
        if prep == Prep::Photo {
            let login = self.web_login(Role::Worker).await.unwrap();
            let photo = tiny_jpeg();
            fixture.sha = humanping::auth::sha256_hex(&photo);
            let form = reqwest::multipart::Form::new()
                .text("csrf", login.csrf)
                .text("answer", "yes")
                .part(
                    "photos",
                    reqwest::multipart::Part::bytes(photo)
                        .file_name("p.jpg")
                        .mime_str("image/jpeg")
                        .unwrap(),
                );
            let response = self
                .http
                .post(format!(
                    "{}/app/assignments/{}/submit",
                    self.base, done.assignment_id
                ))
                .header(COOKIE, format!("hp_session={}", login.cookie))
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "photo submit");
        } else {
            let answer = SubmissionInput {
                answer: Some("yes".into()),
                structured: None,
                notes: None,
                proof: None,
            };
            let id = done.assignment_id.to_string();
            self.svc.submit(&self.w.0, &id, answer).await.unwrap();
        }
        match prep {
            Prep::ABlocksW => self
                .svc
                .block_worker(&self.a.0, self.w.0.as_str())
                .await
                .unwrap(),
            Prep::McpSession => {
                let response = self
                    .mcp_post(&self.a.1, None)
                    .json(&initialize())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                fixture.mcp_session = response.headers()["mcp-session-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
            }
            Prep::SseSession => {
                let mut stream = self
                    .http
                    .get(format!("{}/sse", self.base))
                    .bearer_auth(&self.a.1)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(stream.status(), StatusCode::OK);
                let mut text = String::new();
                while !text.contains("sessionId=") || !text.contains("\n\n") {
                    let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                        .await
                        .expect("the endpoint event in time")
                        .unwrap()
                        .expect("the stream stays open");
                    text.push_str(&String::from_utf8_lossy(&chunk));
                }
                let after = text.split("sessionId=").nth(1).unwrap();
                fixture.sse_session = after
                    .split(|c: char| c.is_whitespace() || c == '&')
                    .next()
                    .unwrap()
                    .to_owned();
                fixture._sse = Some(stream);
            }
            Prep::Honeypot => {
                let task = json!({
                    "kind": "verification",
                    "question": "Is it open?",
                    "budget": 3,
                    "response": "yes_no",
                });
                let honeypot = self.svc.add_honeypot(&task, "yes").await.unwrap();
                fixture.honeypot = honeypot.honeypot_id;
            }
            Prep::APartnersW => {
                self.svc
                    .partner_add(&self.a.0, self.w.0.as_str(), Some(&fixture.secret), None)
                    .await
                    .unwrap();
            }
            Prep::None | Prep::Photo => {}
        }
        fixture
    }

    fn mcp_post(&self, key: &str, session: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(key)
            .header("Accept", "application/json, text/event-stream");
        if let Some(session) = session {
            request = request
                .header("Mcp-Session-Id", session)
                .header("Mcp-Protocol-Version", "2025-06-18");
        }
        request
    }

    /// Runs one cell; returns a description of what went wrong, if anything.
    async fn run_cell(&self, row: &Row, role: Role, expect: Expect) -> Option<String> {
        let fixture = self.fixture(row.prep).await;
        let login = match row.surface {
            Surface::Cookie => self.web_login(role).await,
            Surface::Key => None,
        };
        let link = match self.worker_id(role) {
            Some(worker) => {
                self.svc
                    .create_sign_in_link(worker.as_str())
                    .await
                    .unwrap()
                    .1
            }
            None => "not-a-link".to_owned(),
        };
        let fill = |text: &str| {
            text.replace("{open}", &fixture.open)
                .replace("{claimed}", &fixture.claimed)
                .replace("{completed}", &fixture.completed)
                .replace("{asg}", &fixture.asg)
                .replace("{w}", self.w.0.as_str())
                .replace("{a}", self.a.0.as_str())
                .replace("{sha}", &fixture.sha)
                .replace("{sse}", &fixture.sse_session)
                .replace("{honeypot}", &fixture.honeypot)
                .replace("{key}", self.key(role).unwrap_or(""))
                .replace("{link}", &link)
                .replace(
                    "{csrf}",
                    login.as_ref().map(|l| l.csrf.as_str()).unwrap_or(""),
                )
        };
        let filled = fill(row.path);
        let (path, mcp_session) = match filled.split_once("#") {
            Some((path, _)) => (path.to_owned(), Some(fixture.mcp_session.clone())),
            None => (filled.clone(), None),
        };
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
        let mut request = self.http.request(method, &url);
        match (&login, self.key(role)) {
            (Some(login), _) => {
                request = request.header(COOKIE, format!("hp_session={}", login.cookie))
            }
            (None, Some(key)) => request = request.bearer_auth(key),
            (None, None) => {}
        }
        if let Some(session) = &mcp_session {
            request = request
                .header("Mcp-Session-Id", session)
                .header("Mcp-Protocol-Version", "2025-06-18");
        }
        request = match row.body {
            Body::None => request,
            Body::Json(text) => request
                .header("Content-Type", "application/json")
                .body(fill(text)),
            Body::Form(pairs) => {
                let pairs: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(name, value)| (name.to_string(), fill(value)))
                    .collect();
                request.form(&pairs)
            }
            Body::Multipart => request.multipart(
                reqwest::multipart::Form::new()
                    .text("csrf", fill("{csrf}"))
                    .text("answer", "yes"),
            ),
            Body::Initialize => request
                .header("Accept", "application/json, text/event-stream")
                .json(&initialize()),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        // An event stream stays open: read only what is there already.
        let body = if row.path == "/sse" {
            String::new()
        } else {
            tokio::time::timeout(Duration::from_secs(10), response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        };

        let mut problems = Vec::new();
        let matched = match expect {
            Status(code) => status.as_u16() == code,
            Redirect(prefix) => {
                status == StatusCode::SEE_OTHER
                    && location.as_deref().is_some_and(|l| {
                        l == prefix || (prefix.ends_with('/') && l.starts_with(prefix))
                    })
            }
        };
        if !matched {
            problems.push(format!(
                "expected {expect:?}, got {status} (Location {location:?}): {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        if row.prep == Prep::ABlocksW && role != Role::AgentA {
            let blocks: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM agent_blocks WHERE agent_id = $1 AND worker_id = $2",
            )
            .bind(self.a.0.as_str())
            .bind(self.w.0.as_str())
            .fetch_one(self.svc.store().pool())
            .await
            .unwrap();
            if blocks != 1 {
                problems.push("A's block of W is gone".to_owned());
            }
        }
        if !row.sees_details.contains(&role) && body.contains(&fixture.secret) {
            problems.push("the answer shows the task's private details".to_owned());
        }
        (!problems.is_empty()).then(|| {
            format!(
                "{} {} as {role:?}: {}",
                row.method,
                row.route,
                problems.join("; ")
            )
        })
    }
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "authz matrix", "version": "1"}
        }
    })
}

/// A JPEG the server accepts: the markers around random bytes, so each is a new photo.
fn tiny_jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(common::random_suffix().as_bytes());
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// Every `(METHOD, path)` the source declares with `.route(…)` or `.route_service(…)`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Tests inside the crate mount their own small routers.
        let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        for (start, call) in [".route(", ".route_service("]
            .iter()
            .flat_map(|call| text.match_indices(call).map(move |(i, _)| (i, *call)))
        {
            let rest = &text[start + call.len()..];
            let Some(open) = rest.find('"') else { continue };
            let Some(len) = rest[open + 1..].find('"') else {
                continue;
            };
            let path = rest[open + 1..open + 1 + len].to_owned();
            if !path.starts_with('/') {
                continue;
            }
            // The arguments end where the parentheses balance.
            let mut depth = 1;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[..end];
            if call == ".route_service(" {
                for method in ["POST", "GET", "DELETE"] {
                    routes.insert((method.to_owned(), path.clone()));
                }
                continue;
            }
            for method in ["get", "post", "put", "patch", "delete"] {
                let calls = args.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                });
                if calls {
                    routes.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    routes
}

#[test]
fn every_declared_route_has_a_row() {
    let declared = declared_routes();
    assert!(
        declared.contains(&("GET".to_owned(), "/v1/worker/tasks".to_owned())),
        "the route scan found nothing: {declared:?}"
    );
    let covered: BTreeSet<(String, String)> = rows()
        .iter()
        .map(|row| (row.method.to_owned(), row.route.to_owned()))
        .collect();
    // `/mcp` is one service for every method; GET opens a stream that needs a session and is
    // covered by the DELETE and POST rows' authentication.
    let missing: Vec<_> = declared
        .iter()
        .filter(|route| !covered.contains(route))
        .filter(|(method, path)| !(method == "GET" && path == "/mcp"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorisation matrix: {missing:?}"
    );
    let stale: Vec<_> = covered
        .iter()
        .filter(|route| !declared.contains(route))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for routes that no longer exist: {stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_expected() {
    let proofs = std::env::temp_dir().join(format!("humanping-authz-{}", common::random_suffix()));
    humanping::web::configure(humanping::web::WebOptions {
        proof_dir: Some(proofs.clone()),
        secure_cookies: false,
    });
    for db in common::databases().await {
        let world = World::new(common::service(&db).await).await;
        let mut failures = Vec::new();
        let mut cells = 0;
        for row in rows() {
            for (role, expect) in ROLES.iter().zip(row.expect) {
                cells += 1;
                if let Some(failure) = world.run_cell(&row, *role, expect).await {
                    failures.push(failure);
                }
            }
        }
        eprintln!("{}: {cells} cells checked", db.name);
        common::assert_books_balanced(&world.svc).await;
        assert!(
            failures.is_empty(),
            "{}: {} of {cells} cells differ from the matrix:\n  {}",
            db.name,
            failures.len(),
            failures.join("\n  ")
        );
    }
    let _ = std::fs::remove_dir_all(proofs);
}

/// The JSON-RPC reply in a Streamable HTTP response, sent as JSON or as an event stream.
async fn rpc_reply(response: reqwest::Response) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(30), response.text())
        .await
        .expect("the reply ends")
        .unwrap();
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}

/// Who an MCP tool call concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ToolTarget {
    /// The caller's own new task or own account: A and B both succeed, each for themselves.
    Own,
    /// One of A's tasks, or a worker only A may partner with: A succeeds, B is refused and
    /// nothing changes.
    AsTask,
    /// Off in test mode (no Stripe key): refused for everyone.
    Off,
}

/// Every MCP tool: its arguments (`{open}`, `{completed}`, `{w}` filled in) and whom it
/// concerns.
#[rustfmt::skip]
fn tool_rows() -> Vec<(&'static str, &'static str, ToolTarget)> {
    use ToolTarget::{AsTask, Off, Own};
    vec![
        ("verify", r#"{"question": "Is it open?", "budget": 3, "wait_seconds": 0}"#, Own),
        ("call", r#"{"phone": "+15145550100", "goal": "Book a table", "budget": 3, "wait_seconds": 0}"#, Own),
        ("gut_check", r#"{"question": "Does this name sound friendly?", "wait_seconds": 0}"#, Own),
        ("field", r#"{"mission": "Photograph the storefront", "budget": 3, "wait_seconds": 0}"#, Own),
        ("escalate", r#"{"situation": "An upset customer", "contact": "+15145550100", "budget": 3, "wait_seconds": 0}"#, Own),
        ("vibe", r#"{"content": "Thanks, I guess.", "budget": 3, "wait_seconds": 0}"#, Own),
        ("reality_check", r#"{"work": "2 + 2 = 4", "wait_seconds": 0}"#, Own),
        ("list_tasks", r#"{}"#, Own),
        ("balance", r#"{}"#, Own),
        ("block_worker", r#"{"worker_id": "{w}"}"#, Own),
        ("get_task", r#"{"task_id": "{completed}"}"#, AsTask),
        ("approve", r#"{"task_id": "{completed}"}"#, AsTask),
        ("dispute", r#"{"task_id": "{completed}", "reason": "wrong shop"}"#, AsTask),
        ("cancel_task", r#"{"task_id": "{open}"}"#, AsTask),
        ("unblock_worker", r#"{"worker_id": "{w}"}"#, Own),
        ("topup", r#"{"amount": 10}"#, Off),
        ("partners", r#"{}"#, Own),
        ("partner_add", r#"{"worker_id": "{w}"}"#, AsTask),
        ("partner_remove", r#"{"worker_id": "{w}"}"#, AsTask),
    ]
}

impl World {
    /// Opens an MCP session for `key`.
    async fn mcp_session(&self, key: &str) -> String {
        let response = self
            .mcp_post(key, None)
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let done = self
            .mcp_post(key, Some(&session))
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::ACCEPTED);
        session
    }

    async fn mcp_call(&self, key: &str, session: &str, method: &str, params: Value) -> Value {
        let response = self
            .mcp_post(key, Some(session))
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        rpc_reply(response).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mcp_tool_acts_only_for_its_own_agent() {
    for db in common::databases().await {
        let world = World::new(common::service(&db).await).await;
        let session_a = world.mcp_session(&world.a.1).await;
        let session_b = world.mcp_session(&world.b.1).await;

        let listed = world
            .mcp_call(&world.a.1, &session_a, "tools/list", json!({}))
            .await;
        let names: BTreeSet<String> = listed["result"]["tools"]
            .as_array()
            .expect("a tool list")
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect();
        let rows = tool_rows();
        let covered: BTreeSet<String> = rows.iter().map(|(name, ..)| name.to_string()).collect();
        assert_eq!(
            names, covered,
            "{}: the tools listed and the tools in the matrix differ",
            db.name
        );

        let mut failures = Vec::new();
        for (name, arguments, target) in rows {
            let fixture = world.fixture(Prep::ABlocksW).await;
            let arguments: Value = serde_json::from_str(
                &arguments
                    .replace("{open}", &fixture.open)
                    .replace("{completed}", &fixture.completed)
                    .replace("{w}", world.w.0.as_str()),
            )
            .unwrap();
            if name == "partner_remove" {
                world
                    .svc
                    .partner_add(&world.a.0, world.w.0.as_str(), None, None)
                    .await
                    .unwrap();
            }
            let call = json!({"name": name, "arguments": arguments});
            // B first: a refused call must leave A's task as it was for A's own call.
            let by_b = world
                .mcp_call(&world.b.1, &session_b, "tools/call", call.clone())
                .await;
            let b_refused = by_b["result"]["isError"] == true || by_b.get("error").is_some();
            match target {
                ToolTarget::Own if b_refused => {
                    failures.push(format!("{name} as B was refused: {by_b}"))
                }
                ToolTarget::AsTask | ToolTarget::Off if !b_refused => {
                    failures.push(format!("{name} as B succeeded: {by_b}"))
                }
                _ => {}
            }
            // B's unblocking touches B's own list only: A's block of W stands.
            let a_blocks: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM agent_blocks WHERE agent_id = $1 AND worker_id = $2",
            )
            .bind(world.a.0.as_str())
            .bind(world.w.0.as_str())
            .fetch_one(world.svc.store().pool())
            .await
            .unwrap();
            if a_blocks != 1 {
                failures.push(format!("{name} as B changed A's block of W"));
            }
            if by_b.to_string().contains(&fixture.secret) {
                failures.push(format!("{name} as B shows A's private details: {by_b}"));
            }
            let by_a = world
                .mcp_call(&world.a.1, &session_a, "tools/call", call)
                .await;
            let a_refused = by_a["result"]["isError"] == true || by_a.get("error").is_some();
            if a_refused != (target == ToolTarget::Off) {
                failures.push(format!("{name} as A: {by_a}"));
            }
        }
        common::assert_books_balanced(&world.svc).await;
        assert!(
            failures.is_empty(),
            "{}: MCP tools differ from the matrix:\n  {}",
            db.name,
            failures.join("\n  ")
        );
    }
}

/// `humanping mcp` on stdio with `key` (or none): the reply to each request, in order.
fn stdio_session(db: &common::TestDb, key: Option<&str>, requests: &[Value]) -> Vec<Value> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("humanping-authz-{}", common::random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_humanping"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("HUMANPING_") || text == "DATABASE_URL" {
            command.env_remove(&name);
        }
    }
    if let Some(key) = key {
        command.env("HUMANPING_API_KEY", key);
    }
    let mut child = command
        .args(["--database-url", &db.url, "mcp"])
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start humanping mcp");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut replies = Vec::new();
    let mut send = |message: &Value| {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    };
    send(&initialize());
    let mut read_reply = || loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout ended");
        let message: Value = serde_json::from_str(&line).expect("stdout carries JSON-RPC");
        if message.get("id").is_some() {
            return message;
        }
    };
    read_reply();
    send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    for (n, request) in requests.iter().enumerate() {
        let mut request = request.clone();
        request["jsonrpc"] = json!("2.0");
        request["id"] = json!(n + 10);
        send(&request);
        replies.push(read_reply());
    }
    drop(stdin);
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_tools_refuse_every_key_but_an_agents() {
    let db = common::sqlite_database();
    let world = World::new(common::service(&db).await).await;
    let fixture = world.fixture(Prep::None).await;
    let calls = [
        json!({"method": "tools/call", "params": {"name": "verify",
            "arguments": {"question": "Is it open?", "budget": 3, "wait_seconds": 0}}}),
        json!({"method": "tools/call", "params": {"name": "get_task",
            "arguments": {"task_id": fixture.completed}}}),
        json!({"method": "tools/call", "params": {"name": "approve",
            "arguments": {"task_id": fixture.completed}}}),
    ];
    for role in [Role::Anonymous, Role::Worker, Role::Operator, Role::AgentB] {
        let replies = stdio_session(&db, world.key(role), &calls);
        for (call, reply) in calls.iter().zip(&replies) {
            let refused = reply["result"]["isError"] == true || reply.get("error").is_some();
            let own_task = role == Role::AgentB && call["params"]["name"] == "verify";
            assert_eq!(
                refused, !own_task,
                "stdio as {role:?}: {} answered {reply}",
                call["params"]["name"]
            );
            assert!(
                !reply.to_string().contains(&fixture.secret),
                "stdio as {role:?} shows A's private details: {reply}"
            );
        }
    }
    let replies = stdio_session(&db, world.key(Role::AgentA), &calls[1..]);
    for reply in &replies {
        assert_ne!(reply["result"]["isError"], true, "stdio as A: {reply}");
    }
    common::assert_books_balanced(&world.svc).await;
}
