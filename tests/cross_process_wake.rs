//! A wait in one process is woken by a change made in another: the agent waits here while the
//! worker answers through a separate `humanping serve` process on the same database.
//!
//! The waiter's safety recheck comes only every 30 seconds and the wait lasts 20, so a wait that
//! ends well before its 20 seconds, with the result, was woken by the change itself (PostgreSQL
//! LISTEN/NOTIFY, SQLite's change counter). Without the watcher it would end at 20 seconds.

mod common;

use std::time::Duration;

use common::server::{http_client, send, start_server};
use humanping::domain::status::TaskStatus;
use humanping::input::CreateTaskBody;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_sent_to_another_process_wakes_the_waiting_agent() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let (_, worker_key) = common::worker(&svc, "far-away").await;
        let body = json!({"kind": "verify", "question": "Is the shop open?", "budget": 5});
        let draft = serde_json::from_value::<CreateTaskBody>(body)
            .unwrap()
            .into_draft();
        let task = svc.create_task(&agent, draft).await.unwrap();

        let dir = std::env::temp_dir().join(format!("hp-wake-{}", common::random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let server = start_server(&db.url, &dir, 1).await;

        let waiter = {
            let (svc, agent, id) = (svc.clone(), agent.clone(), task.task_id.to_string());
            tokio::spawn(async move {
                svc.wait_for_result(&agent, &id, Duration::from_secs(20))
                    .await
            })
        };
        // Let the waiter settle into its wait before the other process acts.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let http = http_client();
        let claim = http
            .post(format!(
                "{}/v1/worker/tasks/{}/claim",
                server.base, task.task_id
            ))
            .bearer_auth(&worker_key);
        let (status, assignment) = send(claim).await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        let submit = http
            .post(format!(
                "{}/v1/worker/assignments/{}/submit",
                server.base,
                assignment["assignment_id"].as_str().unwrap()
            ))
            .bearer_auth(&worker_key)
            .json(&json!({"answer": "Yes"}));
        let (status, body) = send(submit).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let view = waiter.await.unwrap().unwrap();
        assert_eq!(
            view.status,
            TaskStatus::Completed,
            "{}: the wait was not woken",
            db.name
        );
        assert_eq!(view.answer.as_deref(), Some("Yes"));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        common::assert_books_balanced(&svc).await;
    }
}
