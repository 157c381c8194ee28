//! The stdio transport's line framing: arbitrary bytes after a valid handshake, read by the
//! real MCP server as `humanping mcp` reads stdin. Every line it writes must be one JSON-RPC
//! message (stdout carries nothing else), and nothing may panic.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use humanping::domain::money::Cents;
use humanping::service::{Config, HumanPing};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncReadExt;

const HANDSHAKE: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":\
{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"fuzz\",\
\"version\":\"1\"}}}\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";

struct Target {
    runtime: tokio::runtime::Runtime,
    service: HumanPing,
    agent_key: String,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("humanping-fuzz-stdio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("fuzz.db").display());
        let (service, agent_key) = runtime.block_on(async {
            let service = HumanPing::open(&url, Config::default()).await.unwrap();
            let (agent, agent_key) = service.create_agent("fuzz").await.unwrap();
            service
                .credit(agent.as_str(), Cents::new(100_000_000))
                .await
                .unwrap();
            (service, agent_key)
        });
        Target {
            runtime,
            service,
            agent_key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let target = target();
    let mut input = HANDSHAKE.to_vec();
    input.extend_from_slice(data);
    let written = target.runtime.block_on(async {
        let (output, mut reader) = tokio::io::duplex(1 << 16);
        let reading = tokio::spawn(async move {
            let mut written = Vec::new();
            let _ = reader.read_to_end(&mut written).await;
            written
        });
        // The input ends at once, which stops calls waiting for a human; the bound only keeps
        // a hang from stalling the run (libFuzzer reports a slow input by itself).
        let serving = humanping::mcp::serve_lines(
            target.service.clone(),
            Some(target.agent_key.clone()),
            std::io::Cursor::new(input),
            output,
        );
        let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
        tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .ok()
            .and_then(Result::ok)
    });
    let Some(written) = written else {
        return;
    };
    for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let message: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!("wrote a line that is not JSON ({e}): {:?}", String::from_utf8_lossy(line))
        });
        assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC 2.0: {message}");
    }
});
