//! `humanping mcp` as a client's child process: raw JSON-RPC lines on its stdin, every line of
//! its stdout read back. Load, oversized and malformed input, unicode, cancellation, and a
//! closed stdin, each with the server checked to go on (or to end cleanly).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A `humanping mcp` process over a fresh SQLite database, for an agent with $50. A thread
/// reads its stdout, so the server never blocks on a full pipe.
struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    _db: common::TestDb,
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mcp {
    async fn start(log: &str) -> Mcp {
        let db = common::sqlite_database();
        let service = common::service(&db).await;
        let (_, key) = common::funded_agent(&service, "50").await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_humanping"))
            .arg("mcp")
            .env("DATABASE_URL", &db.url)
            .env("HUMANPING_API_KEY", key)
            .env("RUST_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start humanping mcp");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (to_test, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if to_test.send(line).is_err() {
                    break;
                }
            }
        });
        let mut mcp = Mcp {
            child,
            stdin,
            lines,
            _db: db,
        };
        mcp.send(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "robustness", "version": "0"}
            }
        }))
        .await;
        let init = mcp.next().await;
        assert_eq!(init["id"], 0, "{init}");
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        mcp
    }

    async fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to the server");
        stdin.flush().expect("flush");
    }

    async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.write(&line).await;
    }

    /// The next stdout line, which must be exactly one JSON-RPC message.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
            .await
            .expect("a line within 30 s")
            .expect("the server closed stdout");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:.200}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line:.200}");
        assert!(
            message.get("id").is_some() || message.get("method").is_some(),
            "not a JSON-RPC message: {line:.200}"
        );
        message
    }

    /// The response to request `id`, skipping notifications.
    async fn response(&mut self, id: i64) -> Value {
        loop {
            let message = self.next().await;
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            assert!(
                message.get("method").is_some(),
                "unexpected reply: {message}"
            );
        }
    }

    async fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        self.send(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}
        }))
        .await;
        self.response(id).await
    }

    /// Closes stdin and returns how the process ended, within `within`.
    async fn close(mut self, within: Duration) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                // Whatever it wrote before exiting must be JSON-RPC too.
                while let Ok(line) = self.lines.try_recv() {
                    let message: Value = serde_json::from_str(&line).expect("a JSON line");
                    assert_eq!(message["jsonrpc"], "2.0");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server still runs {within:?} after stdin closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_thousand_pipelined_requests_are_all_answered() {
    let mut mcp = Mcp::start("warn").await;
    let mut batch = Vec::new();
    for id in 1..=1000 {
        let message = if id % 2 == 0 {
            json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "balance", "arguments": {}}})
        };
        batch.extend(serde_json::to_vec(&message).unwrap());
        batch.push(b'\n');
    }
    mcp.write(&batch).await;

    let mut answered = HashSet::new();
    while answered.len() < 1000 {
        let reply = mcp.next().await;
        let id = reply["id"].as_i64().expect("a numeric id");
        assert!(reply.get("error").is_none(), "{reply}");
        if id % 2 == 1 {
            assert_eq!(
                reply["result"]["structuredContent"]["available_cents"],
                5_000
            );
        }
        assert!(answered.insert(id), "request {id} answered twice");
    }
    assert_eq!(answered, (1..=1000).collect());
    assert!(mcp.close(Duration::from_secs(5)).await.success());
}

#[tokio::test]
async fn oversized_and_malformed_input_is_refused_and_the_server_goes_on() {
    let mut mcp = Mcp::start("warn").await;

    let huge = "x".repeat(5 * 1024 * 1024);
    let reply = mcp
        .call(1, "verify", json!({"question": huge, "wait_seconds": 0}))
        .await;
    assert_eq!(reply["error"]["code"], -32600, "{:.300}", reply.to_string());
    let balance = mcp.call(2, "balance", json!({})).await;
    assert_eq!(
        balance["result"]["structuredContent"]["available_cents"],
        5_000
    );

    // Under the transport limit but over the question's: a tool error naming the field.
    let long = "y".repeat(1024 * 1024);
    let reply = mcp
        .call(3, "verify", json!({"question": long, "wait_seconds": 0}))
        .await;
    assert_eq!(
        reply["result"]["isError"],
        true,
        "{:.300}",
        reply.to_string()
    );

    mcp.write(b"{\"jsonrpc\": \"2.0\", \"id\": 4, \"method\": \n")
        .await;
    let reply = mcp.next().await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null);
    mcp.write(b"not json at all\n[1, 2\n").await;
    for _ in 0..2 {
        assert_eq!(mcp.next().await["error"]["code"], -32700);
    }
    mcp.send(&json!({"jsonrpc": "2.0", "id": 5})).await;
    let reply = mcp.next().await;
    assert_eq!(
        (reply["error"]["code"].as_i64(), &reply["id"]),
        (Some(-32600), &json!(5))
    );

    let ping = {
        mcp.send(&json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}))
            .await;
        mcp.response(6).await
    };
    assert!(ping["result"].is_object(), "{ping}");
    assert!(mcp.close(Duration::from_secs(5)).await.success());
}

#[tokio::test]
async fn unicode_round_trips_byte_for_byte() {
    let mut mcp = Mcp::start("warn").await;
    let question = "Est-ce ouvert ? 🍜👩🏽‍🍳 今日は営業していますか 店 — هل المطعم مفتوح؟ \
                    עברית\u{2028}line\u{2029}para e\u{301} n\u{303} \u{200f}rtl\u{200e} \t\"q\" \\ (surrounding whitespace is trimmed)";
    let created = mcp
        .call(
            1,
            "verify",
            json!({"question": question, "wait_seconds": 0}),
        )
        .await;
    let task = &created["result"]["structuredContent"];
    assert_eq!(task["instruction"].as_str(), Some(question), "{created}");
    let task_id = task["task_id"].clone();
    let fetched = mcp.call(2, "get_task", json!({"task_id": task_id})).await;
    assert_eq!(
        fetched["result"]["structuredContent"]["instruction"].as_str(),
        Some(question)
    );
    assert!(mcp.close(Duration::from_secs(5)).await.success());
}

#[tokio::test]
async fn stdout_carries_only_json_rpc_even_with_trace_logs_and_errors() {
    let mut mcp = Mcp::start("trace").await;
    let missing = mcp
        .call(1, "get_task", json!({"task_id": "task_missing"}))
        .await;
    assert_eq!(missing["result"]["isError"], true, "{missing}");
    let unknown = mcp.call(2, "no_such_tool", json!({})).await;
    assert!(unknown["error"].is_object() || unknown["result"]["isError"] == true);
    let bad = mcp.call(3, "verify", json!({"question": 5})).await;
    assert!(bad["error"].is_object() || bad["result"]["isError"] == true);
    mcp.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
        .await;
    assert!(mcp.response(4).await["result"]["tools"].is_array());
    mcp.call(5, "verify", json!({"question": "Open?", "wait_seconds": 0}))
        .await;
    assert!(mcp.close(Duration::from_secs(5)).await.success());
}

#[tokio::test]
async fn a_cancelled_wait_over_stdio_stops_and_keeps_the_task_and_its_money() {
    let mut mcp = Mcp::start("warn").await;
    mcp.send(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "verify", "arguments": {"question": "Open?", "wait_seconds": 120}}
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    mcp.send(&json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 1, "reason": "the user moved on"}
    }))
    .await;
    let started = std::time::Instant::now();
    let balance = mcp.call(2, "balance", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let balance = &balance["result"]["structuredContent"];
    assert_eq!(
        (
            balance["available_cents"].as_i64(),
            balance["held_cents"].as_i64()
        ),
        (Some(4_500), Some(500))
    );
    let listed = mcp.call(3, "list_tasks", json!({})).await;
    assert_eq!(
        listed["result"]["structuredContent"]["tasks"][0]["status"],
        "open"
    );
    assert!(mcp.close(Duration::from_secs(5)).await.success());
}

#[tokio::test]
async fn closing_stdin_during_a_wait_ends_the_process_cleanly() {
    let mut mcp = Mcp::start("warn").await;
    mcp.send(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "verify", "arguments": {"question": "Open?", "wait_seconds": 120}}
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = mcp.close(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}
