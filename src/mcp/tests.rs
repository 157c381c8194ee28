//! Tests of the MCP server: the tool list as a client sees it, then whole sessions spoken in
//! raw JSON-RPC over an in-process pipe, against a real SQLite database.

use std::path::PathBuf;
use std::time::Duration;

use rmcp::model::Tool;
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

use super::{HumanPingMcp, MISSING_KEY, resolve_agent};
use crate::domain::ids::{AgentId, random_token};
use crate::domain::kind::TaskKind;
use crate::domain::money::Cents;
use crate::service::{Config, HumanPing, NewWorker, SubmissionInput};

const TASK_TOOLS: [&str; 7] = [
    "verify",
    "call",
    "gut_check",
    "field",
    "escalate",
    "vibe",
    "reality_check",
];
const FOLLOW_UP_TOOLS: [&str; 12] = [
    "get_task",
    "approve",
    "dispute",
    "cancel_task",
    "list_tasks",
    "balance",
    "topup",
    "block_worker",
    "unblock_worker",
    "partner_add",
    "partner_remove",
    "partners",
];

fn tools() -> Vec<Tool> {
    HumanPingMcp::tool_router().list_all()
}

fn tool(name: &str) -> Tool {
    tools()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

#[test]
fn the_server_offers_exactly_its_nineteen_tools() {
    let mut names: Vec<String> = tools().iter().map(|t| t.name.to_string()).collect();
    names.sort();
    let mut expected: Vec<&str> = TASK_TOOLS.iter().chain(&FOLLOW_UP_TOOLS).copied().collect();
    expected.sort();
    assert_eq!(names, expected);
    for kind in TaskKind::ALL {
        assert!(TASK_TOOLS.contains(&kind.tool_name()), "no tool for {kind}");
    }
}

#[test]
fn every_argument_of_every_tool_is_described() {
    for tool in tools() {
        let schema = &tool.input_schema;
        assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
        let properties = schema.get("properties").and_then(Value::as_object);
        let properties = properties.unwrap_or_else(|| panic!("{} has no properties", tool.name));
        for (field, property) in properties {
            let description = property.get("description").and_then(Value::as_str);
            assert!(
                description.is_some_and(|d| d.len() > 10),
                "argument {field} of {} has no description: {property}",
                tool.name
            );
        }
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 40, "{} is not described", tool.name);
    }
}

#[test]
fn task_tools_take_their_main_text_and_the_common_fields() {
    let main_text = [
        ("verify", "question"),
        ("call", "goal"),
        ("gut_check", "question"),
        ("field", "mission"),
    ]
    .into_iter()
    .chain([
        ("escalate", "situation"),
        ("vibe", "content"),
        ("reality_check", "work"),
    ]);
    for (name, field) in main_text {
        let tool = tool(name);
        let required = tool
            .input_schema
            .get("required")
            .cloned()
            .unwrap_or_default();
        assert!(
            required.as_array().unwrap().contains(&json!(field)),
            "{name} needs {field}"
        );
        let properties = tool.input_schema.get("properties").unwrap();
        for common in [
            "budget",
            "location",
            "deadline",
            "idempotency_key",
            "wait_seconds",
        ] {
            assert!(properties.get(common).is_some(), "{name} lacks {common}");
        }
        assert_eq!(
            tool.input_schema.get("additionalProperties"),
            Some(&json!(false))
        );
    }
}

#[test]
fn every_tool_returns_structured_output_with_a_schema() {
    for name in TASK_TOOLS
        .iter()
        .chain(&["get_task", "approve", "dispute", "cancel_task"])
    {
        let schema = tool(name)
            .output_schema
            .unwrap_or_else(|| panic!("{name}: no schema"));
        let properties = schema.get("properties").unwrap();
        for field in ["task_id", "status", "held_cents", "next_step"] {
            assert!(
                properties.get(field).is_some(),
                "{name} output lacks {field}"
            );
        }
    }
    let list = tool("list_tasks").output_schema.unwrap();
    assert!(list.get("properties").unwrap().get("tasks").is_some());
    let balance = tool("balance").output_schema.unwrap();
    assert!(
        balance
            .get("properties")
            .unwrap()
            .get("available_cents")
            .is_some()
    );
}

#[test]
fn annotations_tell_clients_what_each_tool_does() {
    for name in TASK_TOOLS {
        let hints = tool(name).annotations.expect("annotated");
        assert_eq!(hints.read_only_hint, Some(false), "{name}");
        assert_eq!(hints.destructive_hint, Some(false), "{name}");
        assert_eq!(hints.idempotent_hint, Some(false), "{name}");
        assert_eq!(hints.open_world_hint, Some(true), "{name}");
        assert!(hints.title.is_some(), "{name}");
    }
    for name in ["get_task", "list_tasks", "balance"] {
        let hints = tool(name).annotations.expect("annotated");
        assert_eq!(hints.read_only_hint, Some(true), "{name}");
    }
    let approve = tool("approve").annotations.expect("annotated");
    assert_eq!(approve.read_only_hint, Some(false));
    assert_eq!(approve.destructive_hint, Some(false));
    assert_eq!(approve.idempotent_hint, Some(true));
    for name in ["dispute", "cancel_task"] {
        let hints = tool(name).annotations.expect("annotated");
        assert_eq!(hints.read_only_hint, Some(false), "{name}");
        assert_eq!(hints.idempotent_hint, Some(true), "{name}");
    }
}

#[test]
fn task_tool_descriptions_state_the_default_budget() {
    for kind in TaskKind::ALL {
        let description = tool(kind.tool_name()).description.unwrap_or_default();
        let budget = format!("${}", kind.default_budget());
        assert!(description.contains(&budget), "{kind}: {description}");
        assert!(description.contains("get_task"), "{kind}: {description}");
    }
    assert!(tool("verify").description.unwrap().contains("$5.00"));
    assert!(tool("escalate").description.unwrap().contains("$20.00"));
}

/// A service on a fresh SQLite file, removed when dropped.
struct TestDb {
    service: HumanPing,
    path: PathBuf,
}

impl TestDb {
    async fn new() -> TestDb {
        let path = std::env::temp_dir().join(format!("humanping-mcp-{}.db", random_token(8)));
        let url = format!("sqlite://{}", path.display());
        let service = HumanPing::open(&url, Config::default())
            .await
            .expect("test database");
        TestDb { service, path }
    }

    /// An agent with $50.00 of test funds, and its key.
    async fn funded_agent(&self) -> (AgentId, String) {
        let (agent, key) = self.service.create_agent("test agent").await.unwrap();
        self.service
            .credit(agent.as_str(), Cents::new(5_000))
            .await
            .unwrap();
        (agent, key)
    }

    fn server(&self, agent: Result<AgentId, String>) -> HumanPingMcp {
        HumanPingMcp::new(self.service.clone(), agent)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A bare MCP client: JSON-RPC lines written and read by hand, so the tests see exactly what
/// goes over the wire.
struct Wire {
    writer: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    next_id: i64,
    /// Notifications received while waiting for responses.
    notifications: Vec<Value>,
}

impl Wire {
    /// Serves `server` on one end of a pipe and completes the handshake on the other.
    async fn connect(server: HumanPingMcp) -> (Wire, Value) {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let running = server.serve(server_end).await.expect("handshake");
            let _ = running.waiting().await;
        });
        let (reader, writer) = tokio::io::split(client_end);
        let lines = BufReader::new(reader).lines();
        let mut wire = Wire {
            writer,
            lines,
            next_id: 1,
            notifications: Vec::new(),
        };
        let init = wire
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "wire-test", "version": "0"}
                }),
            )
            .await;
        let init = init.get("result").cloned().expect("initialize result");
        wire.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        (wire, init)
    }

    async fn send(&mut self, message: Value) {
        let mut line = serde_json::to_vec(&message).unwrap();
        line.push(b'\n');
        self.writer.write_all(&line).await.unwrap();
    }

    /// Sends a request and returns the whole response message.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
                .await
                .expect("a response within 30 s")
                .unwrap()
                .expect("the server closed the pipe");
            let message: Value = serde_json::from_str(&line).expect("only JSON-RPC on the wire");
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            self.notifications.push(message);
        }
    }

    /// Calls a tool and returns its result, which must not be a JSON-RPC error.
    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let response = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        assert!(
            response.get("error").is_none(),
            "{tool} failed as a protocol error: {response}"
        );
        response["result"].clone()
    }

    /// Calls a tool that must succeed and returns its structured content.
    async fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments.clone()).await;
        assert_eq!(
            result["isError"],
            json!(false),
            "{tool} {arguments}: {result}"
        );
        result["structuredContent"].clone()
    }

    /// Calls a tool that must fail and returns the text it explains the failure with.
    async fn error(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments.clone()).await;
        assert_eq!(
            result["isError"],
            json!(true),
            "{tool} {arguments}: {result}"
        );
        assert!(result.get("structuredContent").is_none());
        result["content"][0]["text"]
            .as_str()
            .expect("error text")
            .to_owned()
    }
}

#[tokio::test]
async fn the_server_introduces_itself() {
    let db = TestDb::new().await;
    let info = db.server(Err(MISSING_KEY.into())).get_info();
    assert_eq!(info.server_info.name, "humanping");
    assert_eq!(info.server_info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.unwrap();
    for word in ["get_task", "approve", "dispute", "escrow", "wait_seconds"] {
        assert!(
            instructions.contains(word),
            "instructions do not mention {word}"
        );
    }

    let (mut wire, init) = Wire::connect(db.server(Err(MISSING_KEY.into()))).await;
    assert_eq!(init["serverInfo"]["name"], "humanping");
    assert!(init["instructions"].as_str().unwrap().contains("get_task"));
    let listed = wire.request("tools/list", json!({})).await;
    let listed = listed["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(listed.len(), TASK_TOOLS.len() + FOLLOW_UP_TOOLS.len());
    for tool in listed {
        assert!(tool["inputSchema"].is_object(), "{}", tool["name"]);
        assert!(tool["outputSchema"].is_object(), "{}", tool["name"]);
        assert!(tool["annotations"].is_object(), "{}", tool["name"]);
    }
}

#[tokio::test]
async fn a_task_goes_from_tool_call_to_paid_result() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;

    let task = wire
        .ok(
            "verify",
            json!({
                "question": "Is this restaurant still open?",
                "location": "245 Rue St-Paul, Montréal",
                "budget": 5.00,
                "wait_seconds": 0
            }),
        )
        .await;
    assert_eq!(task["status"], "open");
    assert_eq!(task["held_cents"], 500);
    let task_id = task["task_id"].as_str().unwrap().to_owned();
    let balance = wire.ok("balance", json!({})).await;
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(4_500), Some(500))
    );

    let worker = NewWorker {
        name: "ana".into(),
        lat: Some(45.5),
        lng: Some(-73.55),
        capabilities: Vec::new(),
        languages: Vec::new(),
    };
    let (worker, _) = db.service.create_worker(worker).await.unwrap();
    let assignment = db.service.claim(&worker, &task_id).await.unwrap();
    let answer = SubmissionInput {
        answer: Some("Yes, open until 22:00".into()),
        structured: None,
        notes: Some("Called them".into()),
        proof: None,
    };
    db.service
        .submit(&worker, assignment.assignment_id.as_str(), answer)
        .await
        .unwrap();

    let done = wire
        .ok("get_task", json!({"task_id": task_id, "wait_seconds": 5}))
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["answer"], "Yes, open until 22:00");
    let listed = wire.ok("list_tasks", json!({"status": "completed"})).await;
    assert_eq!(listed["tasks"][0]["task_id"], json!(task_id));

    let approved = wire.ok("approve", json!({"task_id": task_id})).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["held_cents"], 0);
    let again = wire.error("approve", json!({"task_id": task_id})).await;
    assert!(
        again.contains("already approved") && again.ends_with("(code: conflict)"),
        "{again}"
    );
    let balance = wire.ok("balance", json!({})).await;
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(4_500), Some(0))
    );

    let second = wire
        .ok(
            "gut_check",
            json!({"question": "Cringe?", "wait_seconds": 0}),
        )
        .await;
    assert_eq!(second["held_cents"], 300);
    let second_id = second["task_id"].clone();
    let cancelled = wire.ok("cancel_task", json!({"task_id": second_id})).await;
    assert_eq!(cancelled["status"], "cancelled");
    let balance = wire.ok("balance", json!({})).await;
    assert_eq!(balance["available_cents"], 4_500);
}

#[tokio::test]
async fn bad_input_comes_back_as_a_tool_error_that_names_the_problem() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;
    let verify = |extra: Value| {
        let mut arguments = json!({"question": "Open?", "wait_seconds": 0});
        arguments
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        arguments
    };

    let text = wire.error("verify", verify(json!({"budget": "abc"}))).await;
    assert!(text.contains("\"abc\" is not a number"), "{text}");
    let text = wire.error("verify", verify(json!({"budget": 5.001}))).await;
    assert!(text.contains("more than two decimal places"), "{text}");
    let text = wire.error("verify", verify(json!({"budget": 0.10}))).await;
    assert!(
        text.contains("out of range") && text.ends_with("(code: invalid_input)"),
        "{text}"
    );
    let text = wire.error("verify", verify(json!({"budget": 60}))).await;
    assert!(text.ends_with("(code: insufficient_funds)"), "{text}");
    let text = wire
        .error("verify", verify(json!({"question": "   "})))
        .await;
    assert!(text.contains("empty"), "{text}");
    let text = wire.error("verify", verify(json!({"budgett": 5}))).await;
    assert!(text.contains("budgett"), "{text}");
    let text = wire.error("verify", json!({})).await;
    assert!(text.contains("question"), "{text}");
    let text = wire
        .error("get_task", json!({"task_id": "task_doesnotexist"}))
        .await;
    assert!(text.contains("task_doesnotexist"), "{text}");
    assert!(text.ends_with("(code: not_found)"), "{text}");
    let text = wire.error("approve", json!({"task_id": "nonsense"})).await;
    assert!(text.ends_with("(code: not_found)"), "{text}");
    let text = wire.error("list_tasks", json!({"limit": 0})).await;
    assert!(text.contains("limit 0 is out of range"), "{text}");
    let text = wire.error("list_tasks", json!({"status": "lunch"})).await;
    assert!(text.contains("lunch"), "{text}");
    let text = wire
        .error("dispute", json!({"task_id": "task_x", "reason": ""}))
        .await;
    assert!(text.contains("reason"), "{text}");

    let balance = wire.ok("balance", json!({})).await;
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(5_000), Some(0))
    );
}

#[tokio::test]
async fn a_retried_call_with_the_same_key_creates_one_task() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;
    let arguments = json!({"work": "2 + 2 = 5", "idempotency_key": "retry-1", "wait_seconds": 0});
    let first = wire.ok("reality_check", arguments.clone()).await;
    let second = wire.ok("reality_check", arguments).await;
    assert_eq!(first["task_id"], second["task_id"]);
    let balance = wire.ok("balance", json!({})).await;
    assert_eq!(balance["held_cents"], 300);
}

#[tokio::test]
async fn without_an_agent_key_every_tool_says_how_to_get_one() {
    let db = TestDb::new().await;
    let (mut wire, _) = Wire::connect(db.server(Err(MISSING_KEY.into()))).await;
    let calls = [
        ("verify", json!({"question": "Open?"})),
        (
            "call",
            json!({"phone": "+1 514 555 0100", "goal": "Book a table"}),
        ),
        ("gut_check", json!({"question": "Cringe?"})),
        ("field", json!({"mission": "Count the queue"})),
        ("escalate", json!({"situation": "Angry customer"})),
        ("vibe", json!({"content": "fine."})),
        ("reality_check", json!({"work": "2 + 2 = 5"})),
        ("get_task", json!({"task_id": "task_abc"})),
        ("approve", json!({"task_id": "task_abc"})),
        ("dispute", json!({"task_id": "task_abc", "reason": "wrong"})),
        ("cancel_task", json!({"task_id": "task_abc"})),
        ("list_tasks", json!({})),
        ("balance", json!({})),
    ];
    for (tool, arguments) in calls {
        let text = wire.error(tool, arguments).await;
        assert!(
            text.starts_with("HUMANPING_API_KEY is not set")
                && text.ends_with("(code: unauthorized)"),
            "{tool}: {text}"
        );
        assert!(text.contains("humanping agent create"), "{tool}: {text}");
    }
}

#[tokio::test]
async fn the_configured_key_is_resolved_to_its_agent() {
    let db = TestDb::new().await;
    let (agent, key) = db.funded_agent().await;
    assert_eq!(resolve_agent(&db.service, Some(&key)).await, Ok(agent));
    assert_eq!(
        resolve_agent(&db.service, None).await,
        Err(MISSING_KEY.to_owned())
    );
    assert_eq!(
        resolve_agent(&db.service, Some("  ")).await,
        Err(MISSING_KEY.to_owned())
    );
    let refused = resolve_agent(&db.service, Some("hp_test_unknown"))
        .await
        .unwrap_err();
    assert!(
        refused.starts_with("HUMANPING_API_KEY was refused:"),
        "{refused}"
    );
    let (_, worker_key) = db
        .service
        .create_worker(NewWorker {
            name: "bo".into(),
            lat: None,
            lng: None,
            capabilities: Vec::new(),
            languages: Vec::new(),
        })
        .await
        .unwrap();
    let refused = resolve_agent(&db.service, Some(&worker_key))
        .await
        .unwrap_err();
    assert!(refused.contains("not an agent key"), "{refused}");
}

#[tokio::test]
async fn a_long_wait_sends_progress_and_returns_a_handle() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;
    let params = json!({
        "name": "vibe",
        "arguments": {"content": "k.", "wait_seconds": 6},
        "_meta": {"progressToken": "vibe-1"}
    });
    let started = std::time::Instant::now();
    let response = wire.request("tools/call", params).await;
    assert!(started.elapsed() >= Duration::from_secs(6));
    assert_eq!(response["result"]["structuredContent"]["status"], "open");
    let progress: Vec<&Value> = wire
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(
        !progress.is_empty(),
        "no progress notification: {:?}",
        wire.notifications
    );
    assert_eq!(progress[0]["params"]["progressToken"], "vibe-1");
    assert_eq!(progress[0]["params"]["total"], 6.0);
}

#[tokio::test]
async fn a_claim_during_the_wait_is_announced_as_progress() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (worker, _) = db
        .service
        .create_worker(NewWorker {
            name: "cy".into(),
            lat: None,
            lng: None,
            capabilities: Vec::new(),
            languages: Vec::new(),
        })
        .await
        .unwrap();
    let (mut wire, _) = Wire::connect(db.server(Ok(agent.clone()))).await;
    let service = db.service.clone();
    let claimer = tokio::spawn(async move {
        // Claim the agent's task as soon as it exists.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let page = service.list_tasks(&agent, None, 1, None).await.unwrap();
            if let Some(task) = page.tasks.first() {
                service.claim(&worker, task.task_id.as_str()).await.unwrap();
                return;
            }
        }
        panic!("the task never appeared");
    });
    let params = json!({
        "name": "gut_check",
        "arguments": {"question": "Fine?", "wait_seconds": 3},
        "_meta": {"progressToken": "gut-1"}
    });
    let response = wire.request("tools/call", params).await;
    claimer.await.unwrap();
    assert_eq!(
        response["result"]["structuredContent"]["status"],
        "in_progress"
    );
    let claimed = wire.notifications.iter().any(|n| {
        n["method"] == "notifications/progress"
            && n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("claimed"))
    });
    assert!(
        claimed,
        "no progress for the claim: {:?}",
        wire.notifications
    );
}

/// Reads the next message the server sends, whatever it is.
async fn next_message(wire: &mut Wire, within: Duration) -> Option<Value> {
    let line = tokio::time::timeout(within, wire.lines.next_line())
        .await
        .ok()?
        .unwrap()?;
    Some(serde_json::from_str(&line).expect("only JSON-RPC on the wire"))
}

#[tokio::test]
async fn every_task_is_a_resource_that_can_be_listed_read_and_subscribed_to() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, init) = Wire::connect(db.server(Ok(agent))).await;
    assert_eq!(init["capabilities"]["resources"]["subscribe"], true);

    let created = wire
        .call("verify", json!({"question": "Open?", "wait_seconds": 0}))
        .await;
    let task_id = created["structuredContent"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = format!("humanping://tasks/{task_id}");
    let link = &created["content"][1];
    assert_eq!(
        (link["type"].as_str(), link["uri"].as_str()),
        (Some("resource_link"), Some(uri.as_str())),
        "{created}"
    );

    let templates = wire.request("resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "humanping://tasks/{task_id}"
    );
    let listed = wire.request("resources/list", json!({})).await;
    assert_eq!(listed["result"]["resources"][0]["uri"], json!(uri));
    assert_eq!(
        listed["result"]["resources"][0]["mimeType"],
        "application/json"
    );

    let read = wire.request("resources/read", json!({"uri": uri})).await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "application/json");
    let task: Value = serde_json::from_str(contents["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        (task["task_id"].as_str(), task["status"].as_str()),
        (Some(&*task_id), Some("open"))
    );
    let missing = wire
        .request(
            "resources/read",
            json!({"uri": "humanping://tasks/task_nope"}),
        )
        .await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");
    let foreign = wire
        .request("resources/read", json!({"uri": "file:///etc/passwd"}))
        .await;
    assert!(foreign["error"].is_object(), "{foreign}");

    let subscribed = wire
        .request("resources/subscribe", json!({"uri": uri}))
        .await;
    assert!(subscribed["error"].is_null(), "{subscribed}");
    let worker = NewWorker {
        name: "ana".into(),
        lat: None,
        lng: None,
        capabilities: Vec::new(),
        languages: Vec::new(),
    };
    let (worker, _) = db.service.create_worker(worker).await.unwrap();
    db.service.claim(&worker, &task_id).await.unwrap();
    let update = next_message(&mut wire, Duration::from_secs(10))
        .await
        .expect("an update notification after the claim");
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], json!(uri));

    let unsubscribed = wire
        .request("resources/unsubscribe", json!({"uri": uri}))
        .await;
    assert!(unsubscribed["error"].is_null(), "{unsubscribed}");
    let second = wire
        .ok(
            "gut_check",
            json!({"question": "Cringe?", "wait_seconds": 0}),
        )
        .await;
    let second_id = second["task_id"].as_str().unwrap();
    db.service.claim(&worker, second_id).await.unwrap();
    let ping = wire.request("ping", json!({})).await;
    assert!(ping["result"].is_object());
    assert!(
        wire.notifications
            .iter()
            .all(|n| n["method"] != "notifications/resources/updated"),
        "{:?}",
        wire.notifications
    );
}

#[tokio::test]
async fn a_cancelled_wait_stops_and_changes_nothing_else() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;

    wire.send(json!({
        "jsonrpc": "2.0", "id": 100, "method": "tools/call",
        "params": {"name": "verify", "arguments": {"question": "Open?", "wait_seconds": 120}}
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    wire.send(json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 100, "reason": "user gave up"}
    }))
    .await;
    // Whatever the server says about request 100, the next request is answered promptly.
    let balance = wire.ok("balance", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(4_500), Some(500)),
        "the money stays held for the task"
    );
    let tasks = wire.ok("list_tasks", json!({})).await;
    assert_eq!(tasks["tasks"][0]["status"], "open", "{tasks}");
}

mod mcp_tasks_extension {
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        ClientConfig, GetTaskParams, TaskPayload,
    };

    use super::*;

    /// A client that declares the tasks extension, connected in process to `server`.
    async fn tasks_client(
        server: HumanPingMcp,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let running = server.serve(server_end).await.expect("handshake");
            let _ = running.waiting().await;
        });
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            rmcp::model::Implementation::new("tasks-test", "0"),
        )
        .serve(client_end)
        .await
        .expect("client handshake")
    }

    async fn start_task(
        client: &rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>,
    ) -> String {
        let arguments = json!({"question": "Open?", "wait_seconds": 60});
        let response = client
            .call_tool_once(
                CallToolRequestParams::new("verify")
                    .with_arguments(serde_json::from_value(arguments).unwrap()),
            )
            .await
            .expect("tools/call");
        match response {
            CallToolResponse::Task(created) => created.task.task_id.clone(),
            other => panic!("expected an MCP task, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_task_tool_call_becomes_an_mcp_task_that_completes_with_the_answer() {
        let db = TestDb::new().await;
        let (agent, _) = db.funded_agent().await;
        let client = tasks_client(db.server(Ok(agent.clone()))).await;
        let mcp_task = start_task(&client).await;

        let page = db.service.list_tasks(&agent, None, 1, None).await.unwrap();
        let task_id = page.tasks[0].task_id.to_string();
        let worker = NewWorker {
            name: "ana".into(),
            lat: None,
            lng: None,
            capabilities: Vec::new(),
            languages: Vec::new(),
        };
        let (worker, _) = db.service.create_worker(worker).await.unwrap();
        let assignment = db.service.claim(&worker, &task_id).await.unwrap();
        let answer = SubmissionInput {
            answer: Some("Yes".into()),
            structured: None,
            notes: None,
            proof: None,
        };
        db.service
            .submit(&worker, assignment.assignment_id.as_str(), answer)
            .await
            .unwrap();

        let mut finished = None;
        for _ in 0..100 {
            let info = client
                .peer()
                .get_task(GetTaskParams::new(mcp_task.clone()))
                .await
                .unwrap();
            if info.task.status().is_terminal() {
                finished = Some(info.task);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match finished.expect("the MCP task ends").payload {
            TaskPayload::Completed { result } => {
                let structured = &result["structuredContent"];
                assert_eq!(structured["status"], "completed");
                assert_eq!(structured["answer"], "Yes");
            }
            other => panic!("expected a completed MCP task, got {other:?}"),
        }
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn cancelling_the_mcp_task_keeps_the_humanping_task_and_its_money() {
        let db = TestDb::new().await;
        let (agent, _) = db.funded_agent().await;
        let client = tasks_client(db.server(Ok(agent.clone()))).await;
        let mcp_task = start_task(&client).await;
        client
            .peer()
            .cancel_task(CancelTaskParams::new(mcp_task.clone()))
            .await
            .unwrap();

        let mut status = None;
        for _ in 0..100 {
            let info = client
                .peer()
                .get_task(GetTaskParams::new(mcp_task.clone()))
                .await
                .unwrap();
            if info.task.status().is_terminal() {
                status = Some(info.task.status());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, Some(rmcp::model::TaskStatus::Cancelled));
        let balance = db.service.balance(&agent).await.unwrap();
        assert_eq!((balance.available_cents, balance.held_cents), (4_500, 500));
        let page = db.service.list_tasks(&agent, None, 1, None).await.unwrap();
        assert_eq!(page.tasks[0].status.as_str(), "open");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn proof_photos_are_resources_only_the_tasks_agent_can_read() {
    use base64::Engine as _;

    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (other, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;
    let (mut stranger, _) = Wire::connect(db.server(Ok(other))).await;

    let templates = wire.request("resources/templates/list", json!({})).await;
    let templates: Vec<&str> = templates["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert!(
        templates.contains(&"humanping://tasks/{task_id}/proofs/{sha256}"),
        "{templates:?}"
    );

    let task = wire
        .ok(
            "verify",
            json!({"question": "Is the sign still up?", "wait_seconds": 0}),
        )
        .await;
    let task_id = task["task_id"].as_str().unwrap().to_owned();
    let worker = NewWorker {
        name: "ana".into(),
        lat: None,
        lng: None,
        capabilities: Vec::new(),
        languages: Vec::new(),
    };
    let (worker, _) = db.service.create_worker(worker).await.unwrap();
    let assignment = db.service.claim(&worker, &task_id).await.unwrap();
    // A PNG signature and random bytes: a file no other test writes.
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(random_token(32).into_bytes());
    let folder = crate::web::WebSettings::for_service(&db.service).proof_dir;
    let photo = crate::web::photos::store(&folder, bytes.clone())
        .await
        .unwrap();
    db.service
        .record_proof_photo(&worker, &assignment, &photo, None)
        .await
        .unwrap();
    let answer = SubmissionInput {
        answer: Some("Yes".into()),
        structured: None,
        notes: None,
        proof: Some(crate::service::ProofInput {
            text: None,
            lat: None,
            lng: None,
            accuracy_m: None,
            photo_urls: Some(vec![format!("/v1/tasks/{task_id}/proofs/{}", photo.sha256)]),
        }),
    };
    db.service
        .submit(&worker, assignment.assignment_id.as_str(), answer)
        .await
        .unwrap();

    let result = wire
        .call("get_task", json!({"task_id": task_id, "wait_seconds": 5}))
        .await;
    let uri = format!("humanping://tasks/{task_id}/proofs/{}", photo.sha256);
    let link = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "resource_link" && c["uri"] == json!(uri))
        .unwrap_or_else(|| panic!("no link to {uri}: {result}"));
    assert_eq!(link["mimeType"], "image/png");

    let read = wire.request("resources/read", json!({"uri": uri})).await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["uri"], json!(uri), "{read}");
    assert_eq!(contents["mimeType"], "image/png");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(contents["blob"].as_str().unwrap())
        .unwrap();
    assert_eq!(blob, bytes);

    // Another agent gets exactly what an unknown task answers.
    let foreign = stranger
        .request("resources/read", json!({"uri": uri}))
        .await;
    let unknown_task = stranger
        .request(
            "resources/read",
            json!({"uri": format!("humanping://tasks/{task_id}")}),
        )
        .await;
    assert!(foreign.get("result").is_none(), "{foreign}");
    assert_eq!(foreign["error"], unknown_task["error"]);
    assert_eq!(foreign["error"]["code"], -32002, "{foreign}");
    // The owner asking for a photo the task does not have: not found either.
    let missing = format!("humanping://tasks/{task_id}/proofs/{}", "0".repeat(64));
    let missing = wire
        .request("resources/read", json!({"uri": missing}))
        .await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");

    let _ = std::fs::remove_file(folder.join(&photo.sha256));
}

#[tokio::test]
async fn an_agent_blocks_and_unblocks_a_worker() {
    let db = TestDb::new().await;
    let (agent, _) = db.funded_agent().await;
    let (mut wire, _) = Wire::connect(db.server(Ok(agent))).await;
    let worker = NewWorker {
        name: "bo".into(),
        lat: None,
        lng: None,
        capabilities: Vec::new(),
        languages: Vec::new(),
    };
    let (worker, _) = db.service.create_worker(worker).await.unwrap();
    let worker_id = worker.as_str();

    let blocked = wire
        .ok("block_worker", json!({"worker_id": worker_id}))
        .await;
    assert_eq!(blocked, json!({"worker_id": worker_id, "blocked": true}));
    wire.ok("block_worker", json!({"worker_id": worker_id}))
        .await;
    let task = wire
        .ok(
            "gut_check",
            json!({"question": "Cringe?", "wait_seconds": 0}),
        )
        .await;
    let task_id = task["task_id"].as_str().unwrap().to_owned();
    assert!(db.service.claim(&worker, &task_id).await.is_err());

    let unblocked = wire
        .ok("unblock_worker", json!({"worker_id": worker_id}))
        .await;
    assert_eq!(unblocked["blocked"], false);
    db.service.claim(&worker, &task_id).await.unwrap();
    let again = wire
        .error("unblock_worker", json!({"worker_id": worker_id}))
        .await;
    assert!(again.contains("not blocked"), "{again}");
    let unknown = wire
        .error("block_worker", json!({"worker_id": "wkr_nobody"}))
        .await;
    assert!(unknown.contains("no worker"), "{unknown}");
}
