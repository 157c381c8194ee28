//! Crashes: the real `humanping serve` is killed with SIGKILL at random moments while money-moving
//! requests (create, approve, dispute, cancel, each with an `Idempotency-Key`) are in flight.
//! Clients retry with the same key until they get an answer, through a restarted server. In the
//! end `humanping ledger verify` must pass and each key must have moved money exactly once.
//!
//! Seeded and bounded: `HUMANPING_CRASH_SEED` (default 1), `HUMANPING_CRASH_ROUNDS` (default
//! 12 rounds of 4 concurrent requests) and `HUMANPING_CRASH_KILLS` (default 4 kills) per backend.

mod common;

use common::server::{http_client, start_server};

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::service::{HumanPing, SubmissionInput};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small seeded generator (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A money-moving request and the key it carries.
#[derive(Clone, Debug)]
enum Request {
    Create { key: String, cents: i64 },
    Approve { key: String, task: String },
    Dispute { key: String, task: String },
    Cancel { key: String, task: String },
}

impl Request {
    fn key(&self) -> &str {
        match self {
            Request::Create { key, .. }
            | Request::Approve { key, .. }
            | Request::Dispute { key, .. }
            | Request::Cancel { key, .. } => key,
        }
    }

    fn build(
        &self,
        http: &reqwest::Client,
        base: &str,
        agent_key: &str,
    ) -> reqwest::RequestBuilder {
        let request = match self {
            Request::Create { cents, .. } => http.post(format!("{base}/v1/tasks")).json(&json!({
                "kind": "verification",
                "question": "Is the bakery open?",
                "budget": format!("{}.{:02}", cents / 100, cents % 100),
            })),
            Request::Approve { task, .. } => http.post(format!("{base}/v1/tasks/{task}/approve")),
            Request::Dispute { task, .. } => http
                .post(format!("{base}/v1/tasks/{task}/dispute"))
                .json(&json!({"reason": "wrong shop"})),
            Request::Cancel { task, .. } => http.post(format!("{base}/v1/tasks/{task}/cancel")),
        };
        request
            .bearer_auth(agent_key)
            .header("Idempotency-Key", self.key())
    }
}

/// Sends `request` once; `None` when the server did not answer (it died, or was not there).
async fn send_once(
    http: &reqwest::Client,
    base: &str,
    agent_key: &str,
    request: &Request,
) -> Option<(StatusCode, Value)> {
    let response = request.build(http, base, agent_key).send().await.ok()?;
    let status = response.status();
    let body = response.json::<Value>().await.ok()?;
    Some((status, body))
}

/// What each key finally answered.
struct Answers {
    created: HashMap<String, (String, i64)>,
    resolved: HashMap<String, (&'static str, String)>,
}

async fn run_crashes(db: &common::TestDb, dir: &Path, seed: u64) {
    let rounds = setting("HUMANPING_CRASH_ROUNDS", 12);
    let max_kills = setting("HUMANPING_CRASH_KILLS", 4);
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);

    let svc = common::service(db).await;
    let (agent, agent_key) = common::funded_agent(&svc, "1000").await;
    let mut workers = Vec::new();
    for n in 0..4 {
        workers.push(common::worker(&svc, &format!("w{n}")).await.0);
    }
    let http = http_client();
    let mut server_number = 1;
    let mut server = start_server(&db.url, dir, server_number).await;
    let mut kills = 0;

    let mut answers = Answers {
        created: HashMap::new(),
        resolved: HashMap::new(),
    };
    let mut open: Vec<String> = Vec::new();
    let mut completed: Vec<String> = Vec::new();
    let mut key_number = 0;
    let mut retried = 0;
    let mut server_errors = 0;

    for round in 0..rounds {
        // Move some open tasks on to a result, directly through the library.
        while completed.len() < 2 && !open.is_empty() {
            let task = open.remove(0);
            let worker = &workers[rng.below(workers.len() as u64) as usize];
            if claim_and_submit(&svc, worker, &task).await {
                completed.push(task);
            }
        }
        let mut batch = Vec::new();
        for _ in 0..4 {
            key_number += 1;
            let key = format!("crash-{seed}-{key_number}");
            let request = match rng.below(4) {
                1 if !completed.is_empty() => Request::Approve {
                    key,
                    task: completed.remove(0),
                },
                2 if !completed.is_empty() => Request::Dispute {
                    key,
                    task: completed.remove(0),
                },
                3 if !open.is_empty() => Request::Cancel {
                    key,
                    task: open.remove(rng.below(open.len() as u64) as usize),
                },
                _ => Request::Create {
                    key,
                    cents: 50 + rng.below(950) as i64,
                },
            };
            batch.push(request);
        }

        let mut flights = tokio::task::JoinSet::new();
        for (index, request) in batch.iter().cloned().enumerate() {
            let (http, base, agent_key) = (http.clone(), server.base.clone(), agent_key.clone());
            flights
                .spawn(async move { (index, send_once(&http, &base, &agent_key, &request).await) });
        }
        if kills < max_kills && rng.below(rounds.max(1)) < max_kills.saturating_mul(2) {
            tokio::time::sleep(Duration::from_millis(rng.below(25))).await;
            server.kill();
            kills += 1;
        }
        let mut first: Vec<Option<(StatusCode, Value)>> = vec![None; batch.len()];
        while let Some(done) = flights.join_next().await {
            let (index, answer) = done.unwrap();
            first[index] = answer;
        }

        for (request, answer) in batch.iter().zip(first) {
            // Retry with the same key until a server answers.
            let mut answer = answer;
            let mut attempts = 0;
            // A 5xx says the request may be retried with its key, as an unanswered one may.
            while answer
                .as_ref()
                .is_none_or(|(status, _)| status.is_server_error())
            {
                if let Some((status, body)) = &answer {
                    server_errors += 1;
                    eprintln!("{}: {request:?} answered {status}: {body}", db.name);
                    for line in server.log_text().lines().filter(|l| l.contains("ERROR")) {
                        eprintln!("  server log: {line}");
                    }
                }
                attempts += 1;
                assert!(
                    attempts < 20,
                    "round {round}: {request:?} never got an answer"
                );
                if !server.is_running() {
                    server_number += 1;
                    server = start_server(&db.url, dir, server_number).await;
                }
                answer = send_once(&http, &server.base, &agent_key, request).await;
            }
            if attempts > 0 {
                retried += 1;
            }
            let (status, body) = answer.unwrap();
            match request {
                Request::Create { key, cents } => {
                    assert_eq!(status, StatusCode::CREATED, "{request:?}: {body}");
                    let task = body["task_id"].as_str().unwrap().to_owned();
                    answers.created.insert(key.clone(), (task.clone(), *cents));
                    open.push(task);
                }
                Request::Approve { key, task }
                | Request::Dispute { key, task }
                | Request::Cancel { key, task } => {
                    let (name, status_after) = match request {
                        Request::Approve { .. } => ("approve", "approved"),
                        Request::Dispute { .. } => ("dispute", "refunded"),
                        _ => ("cancel", "cancelled"),
                    };
                    assert_eq!(status, StatusCode::OK, "{request:?}: {body}");
                    assert_eq!(body["status"], status_after, "{request:?}: {body}");
                    answers.resolved.insert(key.clone(), (name, task.clone()));
                }
            }
        }
        if !server.is_running() {
            server_number += 1;
            server = start_server(&db.url, dir, server_number).await;
        }
        // A retried key answers as it did the first time, and moves nothing more.
        if let Some(request) = batch.first() {
            let again = send_once(&http, &server.base, &agent_key, request)
                .await
                .expect("the server answers");
            if let Request::Create { key, .. } = request {
                assert_eq!(
                    again.1["task_id"].as_str(),
                    Some(answers.created[key].0.as_str()),
                    "a replayed create names the first task"
                );
            }
        }
    }
    server.kill();
    eprintln!(
        "{}: {} rounds, {kills} kills, {retried} requests retried ({server_errors} after a 5xx), \
         {} tasks created, {} settled",
        db.name,
        rounds,
        answers.created.len(),
        answers.resolved.len()
    );

    check_books(db, dir, &svc, &agent, &answers).await;
}

/// Claims the task for `worker` and sends a result; false when the task was not open.
async fn claim_and_submit(svc: &HumanPing, worker: &WorkerId, task: &str) -> bool {
    let Ok(claim) = svc.claim(worker, task).await else {
        return false;
    };
    let answer = SubmissionInput {
        answer: Some("yes".into()),
        structured: None,
        notes: None,
        proof: None,
    };
    svc.submit(worker, claim.assignment_id.as_str(), answer)
        .await
        .expect("submit a result");
    true
}

async fn check_books(
    db: &common::TestDb,
    dir: &Path,
    svc: &HumanPing,
    agent: &AgentId,
    answers: &Answers,
) {
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_humanping"))
        .args(["--database-url", &db.url, "ledger", "verify"])
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("DATABASE_URL")
        .output()
        .expect("run humanping ledger verify");
    assert!(
        verify.status.success(),
        "{}: humanping ledger verify failed:\n{}{}",
        db.name,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    common::assert_books_balanced(svc).await;

    let pool = svc.store().pool();
    // One task per create key, each held once.
    let tasks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE agent_id = $1")
        .bind(agent.as_str())
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        tasks as usize,
        answers.created.len(),
        "{}: tasks per create key",
        db.name
    );
    for (key, (task, _)) in &answers.created {
        let holds: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM transfers WHERE task_id = $1 AND kind = 'pending'",
        )
        .bind(task)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(holds, 1, "{}: key {key} held money {holds} times", db.name);
    }
    // Each approval paid once; each dispute or cancel gave the hold back once.
    for (key, (name, task)) in &answers.resolved {
        let (kind, memo_like) = match *name {
            "approve" => ("posted", "pay for approved result"),
            _ => ("void", "%"),
        };
        let moves: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM transfers WHERE task_id = $1 AND kind = $2 AND memo LIKE $3",
        )
        .bind(task)
        .bind(kind)
        .bind(memo_like)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            moves, 1,
            "{}: {name} key {key} moved money {moves} times",
            db.name
        );
    }
    // Nothing created or lost: what was credited is available, held or spent.
    let balance = svc.balance(agent).await.unwrap();
    assert_eq!(
        balance.available_cents + balance.held_cents + balance.spent_cents,
        100_000,
        "{}: {balance:?}",
        db.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_move_each_keys_money_once() {
    let seed = setting("HUMANPING_CRASH_SEED", 1);
    for db in common::databases().await {
        let dir = std::env::temp_dir().join(format!("humanping-crash-{}", common::random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        run_crashes(&db, &dir, seed).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
