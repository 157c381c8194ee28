//! MCP over HTTP end to end: Streamable HTTP at `/mcp` and the legacy SSE transport at `/sse` +
//! `/messages`, on a real server on a loopback port, spoken in raw HTTP so the tests see exactly
//! what goes over the wire: versions, auth, the Host/Origin guard, CORS, sessions and limits.

mod common;

use std::time::Duration;

use humanping::service::HumanPing;
use reqwest::StatusCode;
use serde_json::{Value, json};

const VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// A running server over a fresh SQLite database.
struct Server {
    base: String,
    client: reqwest::Client,
    service: HumanPing,
    _server: common::server::InProcess,
    _db: common::TestDb,
}

impl Server {
    async fn start() -> Server {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "humanping=debug".to_owned()),
            )
            .with_test_writer()
            .try_init();
        let db = common::sqlite_database();
        let service = common::service(&db).await;
        let server = common::server::serve_in_process(&service).await;
        Server {
            base: server.base.clone(),
            client: reqwest::Client::new(),
            service,
            _server: server,
            _db: db,
        }
    }

    async fn agent(&self) -> String {
        common::funded_agent(&self.service, "50").await.1
    }

    /// A POST to `/mcp` with the headers a Streamable HTTP client sends.
    fn mcp(&self, key: &str, session: Option<&str>, version: &str) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .post(format!("{}/mcp", self.base))
            .bearer_auth(key)
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Protocol-Version", version);
        if let Some(session) = session {
            builder = builder.header("Mcp-Session-Id", session);
        }
        builder
    }

    /// Initializes a session at `version`; returns its id and the initialize result.
    async fn initialize(&self, key: &str, version: &str) -> (String, Value) {
        let response = self
            .client
            .post(format!("{}/mcp", self.base))
            .bearer_auth(key)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "mcp_http test", "version": "1"}
                }
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "initialize at {version}");
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_owned();
        let reply = reply_of(response).await;
        let initialized = self
            .mcp(key, Some(&session), version)
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(initialized.status(), StatusCode::ACCEPTED);
        (session, reply["result"].clone())
    }

    /// Sends a request on a session and returns the JSON-RPC reply.
    async fn request(
        &self,
        key: &str,
        session: &str,
        version: &str,
        method: &str,
        params: Value,
    ) -> Value {
        let response = self
            .mcp(key, Some(session), version)
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        reply_of(response).await
    }
}

/// The JSON-RPC message of a response, whether sent as JSON or as an event stream.
async fn reply_of(response: reqwest::Response) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
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

fn tool_names(reply: &Value) -> Vec<String> {
    let mut names: Vec<String> = reply["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn assert_error_code(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
}

#[tokio::test]
async fn every_protocol_version_initializes_and_lists_every_tool() {
    let server = Server::start().await;
    let key = server.agent().await;
    for version in VERSIONS {
        let (session, result) = server.initialize(&key, version).await;
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["serverInfo"]["name"], "humanping");
        let tools = server
            .request(&key, &session, version, "tools/list", json!({}))
            .await;
        assert_eq!(tool_names(&tools).len(), 19, "{version}: {tools}");
        assert!(tool_names(&tools).contains(&"verify".to_owned()));
    }
}

#[tokio::test]
async fn tools_act_for_the_key_and_sessions_stay_with_their_agent() {
    let server = Server::start().await;
    let alice = server.agent().await;
    let bob = server.agent().await;
    let version = "2025-06-18";
    let (session, _) = server.initialize(&alice, version).await;

    let created = server
        .request(
            &alice,
            &session,
            version,
            "tools/call",
            json!({"name": "verify", "arguments": {
                "question": "Is the bakery open?", "wait_seconds": 0
            }}),
        )
        .await;
    assert_ne!(created["result"]["isError"], true, "{created}");
    let task_id = created["result"]["structuredContent"]["task_id"]
        .as_str()
        .expect("a task id")
        .to_owned();

    // Bob's key on Alice's session: as if the session did not exist.
    let stolen = server
        .mcp(&bob, Some(&session), version)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "list_tasks", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::NOT_FOUND);
    let body: Value = stolen.json().await.unwrap();
    assert_error_code(&body, "not_found");

    // In his own session Bob sees none of Alice's tasks.
    let (own, _) = server.initialize(&bob, version).await;
    let listed = server
        .request(
            &bob,
            &own,
            version,
            "tools/call",
            json!({"name": "list_tasks", "arguments": {}}),
        )
        .await;
    assert!(!listed.to_string().contains(&task_id), "{listed}");
    let fetched = server
        .request(
            &bob,
            &own,
            version,
            "tools/call",
            json!({"name": "get_task", "arguments": {"task_id": task_id}}),
        )
        .await;
    assert_eq!(fetched["result"]["isError"], true, "{fetched}");
    common::assert_books_balanced(&server.service).await;
}

#[tokio::test]
async fn a_missing_or_bad_key_is_a_401_that_says_what_to_send() {
    let server = Server::start().await;
    for path in ["/mcp", "/sse", "/messages?sessionId=x"] {
        let url = format!("{}{path}", server.base);
        let request = if path == "/sse" {
            server.client.get(&url)
        } else {
            server.client.post(&url).json(&json!({}))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_error_code(&body, "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
    }
    let response = server
        .client
        .post(format!("{}/mcp", server.base))
        .header("X-API-Key", "hp_test_not_a_real_key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused_and_preflights_answered() {
    let server = Server::start().await;
    let key = server.agent().await;

    let foreign = server
        .mcp(&key, None, "2025-06-18")
        .header("Origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_error_code(&foreign.json().await.unwrap(), "forbidden");

    let rebound = server
        .client
        .get(format!("{}/healthz", server.base))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);

    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/mcp", server.base))
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, mcp-session-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "Authorization",
        "Mcp-Session-Id",
        "Last-Event-ID",
        "X-API-Key",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("Mcp-Session-Id")
    );

    let bad_preflight = server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/mcp", server.base))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_preflight.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_sessions_are_404_and_missing_ones_400() {
    let server = Server::start().await;
    let key = server.agent().await;
    let unknown = server
        .mcp(&key, Some("no-such-session"), "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let missing = server
        .mcp(&key, None, "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    let (session, _) = server.initialize(&key, "2025-06-18").await;
    let deleted = server
        .client
        .delete(format!("{}/mcp", server.base))
        .bearer_auth(&key)
        .header("Mcp-Session-Id", &session)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let after = server
        .mcp(&key, Some(&session), "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn huge_and_malformed_messages_are_refused_and_the_server_goes_on() {
    let server = Server::start().await;
    let key = server.agent().await;
    let (session, _) = server.initialize(&key, "2025-06-18").await;

    let huge = "x".repeat(5 * 1024 * 1024);
    let refused = server
        .mcp(&key, Some(&session), "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "verify", "arguments": {"question": huge}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let garbled = server
        .mcp(&key, Some(&session), "2025-06-18")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(garbled.status().is_client_error(), "{}", garbled.status());
    let body: Value = garbled.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");

    let tools = server
        .request(&key, &session, "2025-06-18", "tools/list", json!({}))
        .await;
    assert_eq!(tool_names(&tools).len(), 19);
    let balance = server
        .request(
            &key,
            &session,
            "2025-06-18",
            "tools/call",
            json!({"name": "balance", "arguments": {}}),
        )
        .await;
    assert_eq!(
        balance["result"]["structuredContent"]["available_cents"], 5_000,
        "{balance}"
    );
}

/// Reads SSE events from a streaming response until one satisfies `wanted`.
async fn next_event(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    wanted: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(text) = line.strip_prefix("data:") {
                    data.push_str(text.trim_start());
                }
            }
            if wanted(&event, &data) {
                return (event, data);
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_sse_transport_serves_tools_and_cleans_up_on_disconnect() {
    let server = Server::start().await;
    let key = server.agent().await;
    let other = server.agent().await;

    let mut stream = server
        .client
        .get(format!("{}/sse", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut buffer = String::new();
    let (_, endpoint) = next_event(&mut stream, &mut buffer, |event, _| event == "endpoint").await;
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let messages = format!("{}{endpoint}", server.base);

    let post = |key: &str, body: Value| {
        server
            .client
            .post(&messages)
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let accepted = post(
        &key,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "sse test", "version": "1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let (_, init) = next_event(&mut stream, &mut buffer, |event, data| {
        event == "message" && data.contains("\"id\":1")
    })
    .await;
    assert!(init.contains("humanping"), "{init}");
    post(
        &key,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();

    // Another agent's key cannot post into this session.
    let foreign = post(&other, json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    let garbled = server
        .client
        .post(&messages)
        .bearer_auth(&key)
        .header("Content-Type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let body: Value = garbled.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");

    post(
        &key,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "balance", "arguments": {}}}),
    )
    .await
    .unwrap();
    let (_, balance) = next_event(&mut stream, &mut buffer, |event, data| {
        event == "message" && data.contains("\"id\":2")
    })
    .await;
    let balance: Value = serde_json::from_str(&balance).unwrap();
    assert_eq!(
        balance["result"]["structuredContent"]["available_cents"], 5_000,
        "{balance}"
    );

    let huge = "x".repeat(5 * 1024 * 1024);
    let refused = post(
        &key,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "verify", "arguments": {"question": huge}}}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    post(&key, json!({"jsonrpc": "2.0", "id": 5, "method": "ping"}))
        .await
        .unwrap();
    let (_, pong) = next_event(&mut stream, &mut buffer, |event, data| {
        event == "message" && data.contains("\"id\":5")
    })
    .await;
    assert!(pong.contains("result"), "{pong}");

    drop(stream);
    let mut gone = false;
    for _ in 0..100 {
        let status = post(&key, json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
            .await
            .unwrap()
            .status();
        if status == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the session outlived its event stream");
}

#[tokio::test]
async fn the_stateless_revision_lists_tools_and_acts_for_the_key_without_a_session() {
    let server = Server::start().await;
    let key = server.agent().await;
    let version = "2026-07-28";
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "stateless test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let send = |id: u32, method: &str, params: Value| {
        let mut builder = server.mcp(&key, None, version).header("Mcp-Method", method);
        if let Some(name) = params["name"].as_str() {
            builder = builder.header("Mcp-Name", name);
        }
        builder
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
    };

    let listed = send(1, "tools/list", json!({"_meta": meta})).await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(listed.headers().get("mcp-session-id").is_none());
    let listed = reply_of(listed).await;
    assert_eq!(tool_names(&listed).len(), 19, "{listed}");

    let balance = send(
        2,
        "tools/call",
        json!({"name": "balance", "arguments": {}, "_meta": meta}),
    )
    .await
    .unwrap();
    let balance = reply_of(balance).await;
    assert_eq!(
        balance["result"]["structuredContent"]["available_cents"], 5_000,
        "{balance}"
    );
}
