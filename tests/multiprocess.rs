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

/// Waits started on one process are woken by results sent through the other (no lost
/// wake-up), and a mixed stream of holds, cancels, claims, results and approvals spread over
/// both processes never takes a balance below zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_wake_each_others_waiters_and_never_overdraw() {
    let Some(db) = common::postgres_database().await else {
        eprintln!(
            "skipped: {} is not set, so there is no PostgreSQL for two processes to share \
             (scripts/test.sh starts one)",
            common::POSTGRES_URL_VAR
        );
        return;
    };
    let svc = common::service(&db).await;
    let (agent, agent_key) = common::funded_agent(&svc, "100").await;
    let mut worker_keys = Vec::new();
    for i in 0..10 {
        worker_keys.push(common::worker(&svc, &format!("worker {i}")).await.1);
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

    // Ten tasks; for each, the agent waits on server 1 while a worker claims and answers on
    // server 2. The wait (25 s) is shorter than the waiter's 30 s safety recheck, so only the
    // cross-process notification can bring the result in time.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (status, body) = send(
            http.post(format!("{}/v1/tasks", bases[0]))
                .bearer_auth(&agent_key)
                .json(&json!({"kind": "verification", "question": "Open?", "budget": 2})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        tasks.push(body["task_id"].as_str().unwrap().to_owned());
    }
    let mut waits = JoinSet::new();
    for task in &tasks {
        let (http, bases, key, task) =
            (http.clone(), bases.clone(), agent_key.clone(), task.clone());
        waits.spawn(async move {
            send(
                http.get(format!("{}/v1/tasks/{task}?wait=25", bases[0]))
                    .bearer_auth(key),
            )
            .await
        });
    }
    // Give the waits time to start listening before the answers go out.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for (task, key) in tasks.iter().zip(&worker_keys) {
        let (status, claim) = send(
            http.post(format!("{}/v1/worker/tasks/{task}/claim", bases[1]))
                .bearer_auth(key),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{claim}");
        let assignment = claim["assignment_id"].as_str().unwrap();
        let (status, body) = send(
            http.post(format!(
                "{}/v1/worker/assignments/{assignment}/submit",
                bases[1]
            ))
            .bearer_auth(key)
            .json(&json!({"answer": "yes"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for (status, body) in waits.join_all().await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["status"], "completed",
            "a wait on server 1 missed a result sent through server 2: {body}"
        );
    }

    // Mixed money load over both servers: $80 left, holds of $7 to $25, cancels and
    // approvals of what is there, all at once.
    let start = Arc::new(Barrier::new(40));
    let mut load = JoinSet::new();
    for i in 0..40usize {
        let (http, bases, key, start) = (
            http.clone(),
            bases.clone(),
            agent_key.clone(),
            start.clone(),
        );
        let task = tasks[i % tasks.len()].clone();
        load.spawn(async move {
            let base = &bases[i % 2];
            let request = match i % 4 {
                0 | 1 => http.post(format!("{base}/v1/tasks")).json(&json!({
                    "kind": "verification",
                    "question": "Hold",
                    "budget": 7 + (i % 19),
                })),
                2 => http.post(format!("{base}/v1/tasks/{task}/approve")),
                _ => http.get(format!("{base}/v1/balance")),
            };
            let request = request.bearer_auth(key);
            start.wait().await;
            send(request).await
        });
    }
    for (status, body) in load.join_all().await {
        assert!(
            matches!(status.as_u16(), 200 | 201 | 402 | 409),
            "an unexpected answer under load: {status} {body}"
        );
        if status == StatusCode::PAYMENT_REQUIRED {
            assert_eq!(error_code(&body), "insufficient_funds", "{body}");
        }
    }
    // Cancel every open task through alternating servers, all at once.
    let (_, page) = send(
        http.get(format!("{}/v1/tasks?status=open&limit=100", bases[0]))
            .bearer_auth(&agent_key),
    )
    .await;
    let mut cancels = JoinSet::new();
    for (i, task) in page["tasks"].as_array().unwrap().iter().enumerate() {
        let task = task["task_id"].as_str().unwrap().to_owned();
        let (http, bases, key) = (http.clone(), bases.clone(), agent_key.clone());
        for copy in 0..2 {
            let (http, bases, key, task) = (http.clone(), bases.clone(), key.clone(), task.clone());
            cancels.spawn(async move {
                send(
                    http.post(format!("{}/v1/tasks/{task}/cancel", bases[(i + copy) % 2]))
                        .bearer_auth(key),
                )
                .await
            });
        }
    }
    let mut cancelled = 0;
    for (status, body) in cancels.join_all().await {
        match status {
            StatusCode::OK => cancelled += 1,
            StatusCode::CONFLICT => {}
            other => panic!("a cancel answered {other}: {body}"),
        }
    }
    assert_eq!(
        cancelled,
        page["tasks"].as_array().unwrap().len(),
        "each open task is cancelled exactly once"
    );

    let negative: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE no_overdraft = 1 \
         AND debits_posted + debits_pending > credits_posted",
    )
    .fetch_all(svc.store().pool())
    .await
    .unwrap();
    assert!(negative.is_empty(), "overdrawn accounts: {negative:?}");
    let balance = svc.balance(&agent).await.unwrap();
    assert!(balance.available_cents >= 0, "{balance:?}");
    assert_eq!(
        balance.available_cents + balance.held_cents + balance.spent_cents,
        10_000,
        "{balance:?}"
    );
    for server in &mut servers {
        server.assert_running();
    }
    common::assert_books_balanced(&svc).await;
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
