//! Webhooks to an agent's `callback_url`: one signed event per state change, retried with
//! backoff until the receiver answers 2xx, idempotent by event id, refused for private targets
//! unless the operator allows them. The receiver is a server this test starts on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use humanping::input::CreateTaskBody;
use humanping::service::webhooks::{DeliveryReport, signature};
use humanping::service::{Clock, Config, HumanPing, ServiceError, SubmissionInput};
use humanping::store::Store;
use serde_json::{Value, json};

/// What the receiver saw: (event id header, signature header, raw body).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A receiver that answers 500 to its first `failures` requests, then 200.
async fn receiver(failures: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let mut seen = record.lock().unwrap();
                seen.push((
                    header("humanping-event-id"),
                    header("humanping-signature"),
                    body,
                ));
                if seen.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn service(db: &common::TestDb, clock: Clock, allow_private: bool) -> HumanPing {
    let store = Store::open(&db.url).await.unwrap();
    let config = Config {
        allow_private_webhooks: allow_private,
        ..Config::default()
    };
    HumanPing::new(store, config, clock)
}

fn task_with_callback(url: &str) -> humanping::input::TaskDraft {
    let body = json!({"kind": "verify", "question": "Open?", "budget": 5, "callback_url": url});
    serde_json::from_value::<CreateTaskBody>(body)
        .unwrap()
        .into_draft()
}

#[tokio::test]
async fn each_change_is_signed_delivered_and_retried_until_accepted() {
    for db in common::databases().await {
        let clock = Clock::manual(1_800_000_000_000);
        let svc = service(&db, clock.clone(), true).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let (worker, _) = common::worker(&svc, "hana").await;
        let secret = svc.webhook_secret(&agent).await.unwrap();
        let (url, seen) = receiver(1).await;

        let task = svc
            .create_task(&agent, task_with_callback(&url))
            .await
            .unwrap();
        let id = task.task_id.as_str();
        let lease = svc.claim(&worker, id).await.unwrap();
        let answer = SubmissionInput {
            answer: Some("Yes".into()),
            structured: None,
            notes: None,
            proof: None,
        };
        svc.submit(&worker, lease.assignment_id.as_str(), answer)
            .await
            .unwrap();
        svc.approve(&agent, id, None).await.unwrap();

        let first = svc.deliver_webhooks().await.unwrap();
        assert_eq!(
            first,
            DeliveryReport {
                delivered: 2,
                retrying: 1,
                given_up: 0
            },
            "{}",
            db.name
        );
        assert_eq!(
            svc.deliver_webhooks().await.unwrap(),
            DeliveryReport::default(),
            "not due yet"
        );
        clock.advance(Duration::from_secs(11));
        let second = svc.deliver_webhooks().await.unwrap();
        assert_eq!(
            second,
            DeliveryReport {
                delivered: 1,
                retrying: 0,
                given_up: 0
            }
        );

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        // The refused delivery was retried with the same event id.
        assert_eq!(seen[0].0, seen[3].0);
        let mut types = Vec::new();
        for (event_id, signed, body) in &seen {
            let t: i64 = signed
                .trim_start_matches("t=")
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                signed,
                &signature(&secret, t, body),
                "signature of {event_id}"
            );
            let event: Value = serde_json::from_str(body).unwrap();
            assert_eq!(event["id"], json!(event_id));
            assert_eq!(event["data"]["task_id"], json!(id));
            types.push(event["type"].as_str().unwrap().to_owned());
        }
        types.sort();
        types.dedup();
        assert_eq!(
            types,
            ["task.approved", "task.completed", "task.in_progress"]
        );
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_receiver_that_never_accepts_is_given_up_after_twelve_attempts() {
    for db in common::databases().await {
        let clock = Clock::manual(1_800_000_000_000);
        let svc = service(&db, clock.clone(), true).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let (url, seen) = receiver(usize::MAX).await;
        let task = svc
            .create_task(&agent, task_with_callback(&url))
            .await
            .unwrap();
        svc.cancel(&agent, task.task_id.as_str(), None)
            .await
            .unwrap();

        let mut total = DeliveryReport::default();
        for _ in 0..15 {
            let round = svc.deliver_webhooks().await.unwrap();
            total.retrying += round.retrying;
            total.given_up += round.given_up;
            clock.advance(Duration::from_secs(3_601));
        }
        assert_eq!((total.retrying, total.given_up), (11, 1), "{}", db.name);
        assert_eq!(seen.lock().unwrap().len(), 12);
    }
}

#[tokio::test]
async fn private_callback_urls_are_refused_by_default() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        for url in [
            "http://127.0.0.1:9/hooks",
            "http://169.254.169.254/",
            "http://localhost/x",
            "ftp://x.example/",
        ] {
            let refused = svc
                .create_task(&agent, task_with_callback(url))
                .await
                .unwrap_err();
            assert!(
                matches!(refused, ServiceError::InvalidInput(_)),
                "{url}: {refused}"
            );
        }
        let b = svc.balance(&agent).await.unwrap();
        assert_eq!(
            (b.available_cents, b.held_cents),
            (1000, 0),
            "nothing was held"
        );
    }
}
