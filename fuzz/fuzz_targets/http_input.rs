//! The server's input paths end to end: arbitrary bytes as the body of the REST routes that
//! read JSON and of a JSON-RPC message to `/mcp`, through the real router over a SQLite file.
//! Every answer must be a deliberate one: never a 500, never a panic.

#![no_main]
// The stdio framing of JSON-RPC has a target of its own (stdio_input.rs).

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use humanping::domain::money::Cents;
use humanping::service::{Config, HumanPing};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Target {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    agent_key: String,
    worker_key: String,
    task: String,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("humanping-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("fuzz.db").display());
        let (router, agent_key, worker_key, task) = runtime.block_on(async {
            let service = HumanPing::open(&url, Config::default()).await.unwrap();
            let (agent, agent_key) = service.create_agent("fuzz").await.unwrap();
            service
                .credit(agent.as_str(), Cents::new(100_000_000))
                .await
                .unwrap();
            let (_, worker_key) = service
                .create_worker(humanping::service::NewWorker {
                    name: "fuzz".into(),
                    lat: None,
                    lng: None,
                    capabilities: Vec::new(),
                    languages: vec!["en".into()],
                })
                .await
                .unwrap();
            let body: humanping::input::CreateTaskBody = serde_json::from_str(
                r#"{"kind": "verification", "question": "Is it open?", "budget": 1}"#,
            )
            .unwrap();
            let task = service
                .create_task(&agent, body.into_draft())
                .await
                .unwrap();
            let router = humanping::http::router(service);
            (router, agent_key, worker_key, task.task_id.to_string())
        });
        Target {
            runtime,
            router,
            agent_key,
            worker_key,
            task,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let target = target();
    let (path, key, mcp) = match selector % 5 {
        0 => ("/v1/tasks".to_owned(), &target.agent_key, false),
        1 => (
            format!("/v1/tasks/{}/dispute", target.task),
            &target.agent_key,
            false,
        ),
        2 => ("/v1/blocks".to_owned(), &target.agent_key, false),
        3 => (
            "/v1/worker/assignments/asg_fuzz/submit".to_owned(),
            &target.worker_key,
            false,
        ),
        _ => ("/mcp".to_owned(), &target.agent_key, true),
    };
    let mut request = Request::post(path)
        .header("Host", "127.0.0.1")
        .header("Authorization", format!("Bearer {key}"))
        .header("Content-Type", "application/json");
    if mcp {
        request = request
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Protocol-Version", "2026-07-28");
    }
    let request = request.body(Body::from(body.to_vec())).unwrap();
    // A task tool waits for the human's answer (30 s by default): a call still waiting after a
    // second is a valid call, and is left there.
    let answered = target.runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let response = target.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            // Read the whole answer, as a client would.
            let _ = axum::body::to_bytes(response.into_body(), 8 * 1024 * 1024).await;
            status
        })
        .await
    });
    let Ok(status) = answered else {
        return;
    };
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "answered 500 to {:?}",
        String::from_utf8_lossy(body)
    );
});
