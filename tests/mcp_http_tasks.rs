//! Durable task results over Streamable HTTP, in raw HTTP on a loopback server: task
//! resources with update notifications on the session's event stream, and a cancelled wait
//! that stops without touching the task or its money.

mod common;

use std::time::{Duration, Instant};

use humanping::service::HumanPing;
use reqwest::StatusCode;
use serde_json::{Value, json};

const VERSION: &str = "2025-11-25";

/// A running server over a fresh SQLite database, and one agent's session on it.
struct Session {
    base: String,
    client: reqwest::Client,
    service: HumanPing,
    key: String,
    id: String,
    _server: common::server::InProcess,
    _db: common::TestDb,
}

impl Session {
    async fn open() -> Session {
        let db = common::sqlite_database();
        let service = common::service(&db).await;
        let server = common::server::serve_in_process(&service).await;
        let (_, key) = common::funded_agent(&service, "50").await;
        let mut session = Session {
            base: server.base.clone(),
            client: reqwest::Client::new(),
            service,
            key,
            id: String::new(),
            _server: server,
            _db: db,
        };
        let response = session
            .post(json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "mcp_http_tasks", "version": "1"}
                }
            }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        session.id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let init = reply_of(response).await;
        assert_eq!(
            init["result"]["capabilities"]["resources"]["subscribe"],
            true
        );
        let initialized = session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(initialized.status(), StatusCode::ACCEPTED);
        session
    }

    async fn post(&self, message: Value) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/mcp", self.base))
            .bearer_auth(&self.key)
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Protocol-Version", VERSION);
        if !self.id.is_empty() {
            request = request.header("Mcp-Session-Id", &self.id);
        }
        request.json(&message).send().await.expect("POST /mcp")
    }

    async fn request(&self, id: i64, method: &str, params: Value) -> Value {
        let response = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        reply_of(response).await
    }

    /// The session's standalone event stream, where server notifications arrive.
    async fn events(&self) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}/mcp", self.base))
            .bearer_auth(&self.key)
            .header("Accept", "text/event-stream")
            .header("Mcp-Protocol-Version", VERSION)
            .header("Mcp-Session-Id", &self.id)
            .send()
            .await
            .expect("GET /mcp");
        assert_eq!(response.status(), StatusCode::OK);
        response
    }
}

/// The JSON-RPC messages of an event-stream (or JSON) body.
fn messages_of(text: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return vec![value];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .collect()
}

/// The reply (the message with an id) in a response.
async fn reply_of(response: reqwest::Response) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the reply ends")
        .unwrap();
    messages_of(&text)
        .into_iter()
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}

/// Reads an event stream until a message satisfies `wanted`.
async fn next_message(stream: &mut reqwest::Response, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut buffer = String::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(message) = messages_of(&block).into_iter().find(&wanted) {
                return message;
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
async fn task_resources_are_listed_read_and_their_updates_pushed() {
    let session = Session::open().await;
    let created = session
        .request(
            2,
            "tools/call",
            json!({"name": "verify", "arguments": {"question": "Open?", "wait_seconds": 0}}),
        )
        .await;
    let task_id = created["result"]["structuredContent"]["task_id"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let uri = format!("humanping://tasks/{task_id}");
    let links: Vec<&Value> = created["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|block| block["type"] == "resource_link")
        .collect();
    assert_eq!(links.len(), 1, "{created}");
    assert_eq!(links[0]["uri"], json!(uri));

    let listed = session.request(3, "resources/list", json!({})).await;
    assert_eq!(
        listed["result"]["resources"][0]["uri"],
        json!(uri),
        "{listed}"
    );
    let read = session
        .request(4, "resources/read", json!({"uri": uri}))
        .await;
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["status"],
        "open"
    );

    let mut events = session.events().await;
    let subscribed = session
        .request(5, "resources/subscribe", json!({"uri": uri}))
        .await;
    assert!(subscribed.get("error").is_none(), "{subscribed}");
    let (worker, _) = common::worker(&session.service, "ana").await;
    session.service.claim(&worker, &task_id).await.unwrap();
    let update = next_message(&mut events, |m| {
        m["method"] == "notifications/resources/updated"
    })
    .await;
    assert_eq!(update["params"]["uri"], json!(uri));
    let read = session
        .request(6, "resources/read", json!({"uri": uri}))
        .await;
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["status"],
        "in_progress"
    );
}

#[tokio::test]
async fn a_cancelled_wait_over_http_stops_and_keeps_the_task_and_its_money() {
    let session = Session::open().await;
    let waiting = session
        .post(json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "verify", "arguments": {"question": "Open?", "wait_seconds": 120}}
        }))
        .await;
    assert_eq!(waiting.status(), StatusCode::OK);
    let ended =
        tokio::spawn(
            async move { tokio::time::timeout(Duration::from_secs(30), waiting.text()).await },
        );
    tokio::time::sleep(Duration::from_millis(700)).await;

    let started = Instant::now();
    let cancelled = session
        .post(json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 7, "reason": "the user moved on"}
        }))
        .await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    let body = ended
        .await
        .unwrap()
        .expect("the waiting call ends after the cancel");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // Whatever the reply was, it does not claim a result.
    for message in messages_of(&body.unwrap_or_default()) {
        assert_ne!(
            message["result"]["structuredContent"]["status"],
            "completed"
        );
    }

    let balance = session
        .request(8, "tools/call", json!({"name": "balance", "arguments": {}}))
        .await;
    let balance = &balance["result"]["structuredContent"];
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(4_500), Some(500))
    );
    let listed = session
        .request(
            9,
            "tools/call",
            json!({"name": "list_tasks", "arguments": {}}),
        )
        .await;
    assert_eq!(
        listed["result"]["structuredContent"]["tasks"][0]["status"],
        "open"
    );
}
