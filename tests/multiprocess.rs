//! Two `humanping serve` processes on one PostgreSQL database: money and claims stay right when
//! concurrent requests land on different processes, which share nothing but the database.
//!
//! Runs only against PostgreSQL (`HUMANPING_TEST_POSTGRES_URL`); without it the test says so and
//! passes, unless `HUMANPING_REQUIRE_POSTGRES=1` makes the missing URL a failure.

mod common;

use common::server::{http_client, send, start_server};

use std::sync::Arc;

use humanping::input::CreateTaskBody;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_keep_money_and_claims_right() {
    let Some(db) = common::postgres_database().await else {
        eprintln!(
            "skipped: {} is not set, so there is no PostgreSQL for two processes to share \
             (scripts/test.sh starts one)",
            common::POSTGRES_URL_VAR
        );
        return;
    };

    // Setup through the library: an agent with $100 and 60 workers.
    let svc = common::service(&db).await;
    let (agent, agent_key) = common::funded_agent(&svc, "100").await;
    let mut worker_keys = Vec::new();
    for i in 0..60 {
        let (_, key) = common::worker(&svc, &format!("worker {i}")).await;
        worker_keys.push(key);
    }

    let dir = std::env::temp_dir().join(format!(
        "humanping-multiprocess-{}",
        common::random_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("create the servers' folder");
    let mut servers = vec![
        start_server(&db.url, &dir, 1).await,
        start_server(&db.url, &dir, 2).await,
    ];
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let http = http_client();

    // 20 holds of $80 against $100, alternating between the servers: exactly one fits.
    let start = Arc::new(Barrier::new(20));
    let mut holds = JoinSet::new();
    for i in 0..20 {
        let (http, bases, key, start) = (
            http.clone(),
            bases.clone(),
            agent_key.clone(),
            start.clone(),
        );
        holds.spawn(async move {
            let request = http
                .post(format!("{}/v1/tasks", bases[i % 2]))
                .bearer_auth(key)
                .json(&json!({"kind": "verification", "question": "Hold test", "budget": 80}));
            start.wait().await;
            send(request).await
        });
    }
    let mut created = 0;
    for (status, body) in holds.join_all().await {
        match status {
            StatusCode::CREATED => {
                assert!(body["task_id"].is_string(), "201 without a task_id: {body}");
                created += 1;
            }
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(error_code(&body), "insufficient_funds", "402 body: {body}")
            }
            other => panic!("a hold answered {other}: {body}"),
        }
    }
    assert_eq!(created, 1, "exactly one $80 hold fits in $100");

    for base in bases.iter() {
        let (status, balance) = send(
            http.get(format!("{base}/v1/balance"))
                .bearer_auth(&agent_key),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "balance from {base}: {balance}");
        assert_eq!(
            balance["available_cents"], 2000,
            "balance from {base}: {balance}"
        );
        assert_eq!(
            balance["held_cents"], 8000,
            "balance from {base}: {balance}"
        );
    }

    // One slot, 50 workers claiming at once through both servers: exactly one wins.
    let draft = serde_json::from_value::<CreateTaskBody>(json!({
        "kind": "verification",
        "question": "Is the bakery on Rue St-Paul open?",
        "budget": 5
    }))
    .expect("a valid task body")
    .into_draft();
    let task = svc
        .create_task(&agent, draft)
        .await
        .expect("create the one-slot task");
    let task_id = task.task_id.to_string();

    let start = Arc::new(Barrier::new(50));
    let mut claims = JoinSet::new();
    for (i, key) in worker_keys.iter().take(50).cloned().enumerate() {
        let (http, bases, task_id, start) =
            (http.clone(), bases.clone(), task_id.clone(), start.clone());
        claims.spawn(async move {
            let request = http
                .post(format!("{}/v1/worker/tasks/{task_id}/claim", bases[i % 2]))
                .bearer_auth(key);
            start.wait().await;
            send(request).await
        });
    }
    let mut won = 0;
    for (status, body) in claims.join_all().await {
        match status {
            StatusCode::CREATED => {
                assert!(
                    body["assignment_id"].is_string(),
                    "201 without an assignment_id: {body}"
                );
                won += 1;
            }
            StatusCode::CONFLICT => assert_eq!(error_code(&body), "conflict", "409 body: {body}"),
            other => panic!("a claim answered {other}: {body}"),
        }
    }
    assert_eq!(won, 1, "exactly one worker gets the only slot");

    for server in &mut servers {
        server.assert_running();
    }
    common::assert_books_balanced(&svc).await;

    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
