//! Honeypots: mixed into feeds at the configured rate, indistinguishable from real tasks in
//! every body and error a worker sees, graded with a delay, paid from the platform's account
//! so the books balance; and the operator routes that manage them. On every backend.

mod common;

use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::service::{Clock, Config, HumanPing};
use reqwest::StatusCode;
use serde_json::{Value, json};

const START: i64 = 1_800_000_000_000;

fn gut_check() -> Value {
    json!({"kind": "gut_check", "question": "Is a circle round?", "response": "yes_no",
           "budget": "3.00"})
}

fn with_rate(rate: f64) -> Config {
    Config {
        honeypot_rate: rate,
        ..Config::default()
    }
}

async fn post(svc: &HumanPing, agent: &AgentId, body: Value) -> String {
    common::post_task(svc, agent, body)
        .await
        .unwrap()
        .task_id
        .to_string()
}

/// Serialised text with the given ids replaced by placeholders: what is left must be equal
/// for a honeypot and a real task, field order included.
fn masked(text: String, ids: &[(&str, &str)]) -> String {
    ids.iter().fold(text, |text, (id, placeholder)| {
        text.replace(id, placeholder)
    })
}

/// The one offer in the worker's feed that is not `real`.
async fn honeypot_offered(svc: &HumanPing, worker: &WorkerId, real: &[String]) -> Vec<String> {
    svc.offers(worker)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.task_id.to_string())
        .filter(|id| !real.contains(id))
        .collect()
}

#[tokio::test]
async fn a_worker_cannot_tell_a_honeypot_from_a_real_task() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with(&db, with_rate(0.5), clock.clone()).await;
        svc.add_honeypot(&gut_check(), "yes").await.unwrap();
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let real = post(&svc, &agent, gut_check()).await;
        let (worker, _) = common::worker(&svc, "ana").await;

        // Listing: the same body, field for field, but for the id.
        let offers = svc.offers(&worker).await.unwrap();
        assert_eq!(offers.len(), 2, "{}: one real task, one honeypot", db.name);
        let fake = offers
            .iter()
            .find(|o| o.task_id.as_str() != real)
            .unwrap()
            .task_id
            .to_string();
        let ids = [(real.as_str(), "TASK"), (fake.as_str(), "TASK")];
        let texts: Vec<String> = offers
            .iter()
            .map(|o| masked(serde_json::to_string(o).unwrap(), &ids))
            .collect();
        assert_eq!(texts[0], texts[1], "{}: the listings differ", db.name);
        // Reading the feed again makes no second honeypot.
        assert_eq!(svc.offers(&worker).await.unwrap().len(), 2);

        // Claiming: the same assignment body.
        let lease_real = svc.claim(&worker, &real).await.unwrap();
        let lease_fake = svc.claim(&worker, &fake).await.unwrap();
        let ids = [
            (real.as_str(), "TASK"),
            (fake.as_str(), "TASK"),
            (lease_real.assignment_id.as_str(), "ASSIGNMENT"),
            (lease_fake.assignment_id.as_str(), "ASSIGNMENT"),
        ];
        let body = |v: &humanping::service::views::AssignmentView| {
            masked(serde_json::to_string(v).unwrap(), &ids)
        };
        assert_eq!(body(&lease_real), body(&lease_fake), "{}", db.name);

        // Errors: claiming twice, and another worker claiming a taken slot.
        let again_real = svc.claim(&worker, &real).await.unwrap_err().to_string();
        let again_fake = svc.claim(&worker, &fake).await.unwrap_err().to_string();
        assert_eq!(masked(again_real, &ids), masked(again_fake, &ids));
        let (other, _) = common::worker(&svc, "bo").await;
        let taken_real = svc.claim(&other, &real).await.unwrap_err().to_string();
        let taken_fake = svc.claim(&other, &fake).await.unwrap_err().to_string();
        assert_eq!(masked(taken_real, &ids), masked(taken_fake, &ids));
        // Another worker's feed never shows this worker's honeypot.
        assert!(
            !svc.offers(&other)
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id.as_str() == fake)
        );

        // Sending the result: the same body again, and the same pay promised.
        clock.advance(Duration::from_secs(60));
        let sent_real = svc
            .submit(
                &worker,
                lease_real.assignment_id.as_str(),
                common::answer("yes"),
            )
            .await
            .unwrap();
        let sent_fake = svc
            .submit(
                &worker,
                lease_fake.assignment_id.as_str(),
                common::answer("yes"),
            )
            .await
            .unwrap();
        assert_eq!(body(&sent_real), body(&sent_fake), "{}", db.name);
        assert_eq!(sent_fake.pay_cents, 270);
        let listed = svc.assignments(&worker).await.unwrap();
        assert_eq!(body(&listed[0]), body(&listed[1]));
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_wrong_answer_costs_trust_strongly_but_only_after_a_delay() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with(&db, with_rate(0.5), clock.clone()).await;
        let honeypot = svc.add_honeypot(&gut_check(), "Yes").await.unwrap();
        assert_eq!(honeypot.expected, json!("yes"));
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let real = post(&svc, &agent, gut_check()).await;
        let (liar, _) = common::worker(&svc, "liar").await;
        let (honest, _) = common::worker(&svc, "honest").await;

        let mut leases = Vec::new();
        for (worker, said) in [(&liar, "no"), (&honest, " YES ")] {
            let fake = honeypot_offered(&svc, worker, std::slice::from_ref(&real)).await;
            assert_eq!(fake.len(), 1, "{}", db.name);
            let lease = svc.claim(worker, &fake[0]).await.unwrap();
            clock.advance(Duration::from_secs(60));
            svc.submit(worker, lease.assignment_id.as_str(), common::answer(said))
                .await
                .unwrap();
            leases.push(lease);
        }
        // Right after, and hours later, nothing shows: the score waits with the review.
        for _ in 0..2 {
            for worker in [&liar, &honest] {
                let me = svc.worker_profile(worker).await.unwrap();
                assert_eq!(me.trust_score, 50, "{}", db.name);
                assert_eq!(me.assignments.submitted, 1);
            }
            svc.sweep().await.unwrap();
            clock.advance(Duration::from_secs(3600));
        }

        // After the review window both are settled: the liar unpaid and far lower (a wrong
        // honeypot answer weighs three rejections), the honest worker paid and higher.
        clock.advance(Duration::from_secs(72 * 3600));
        svc.sweep().await.unwrap();
        let liar_now = svc.worker_profile(&liar).await.unwrap();
        assert_eq!(liar_now.trust_score, 38, "{}", db.name);
        assert_eq!(liar_now.assignments.rejected, 1);
        assert_eq!(liar_now.earned_cents, 0);
        let honest_now = svc.worker_profile(&honest).await.unwrap();
        assert_eq!(honest_now.trust_score, 54, "{}", db.name);
        assert_eq!(honest_now.assignments.approved, 1);
        assert_eq!(honest_now.earned_cents, 270);

        let seen = svc.honeypots().await.unwrap();
        assert_eq!((seen[0].shown, seen[0].right, seen[0].wrong), (2, 1, 1));
        // The agent's task was never touched (it expired unanswered and was refunded), and
        // the platform paid for the test.
        let task = svc.get_task(&agent, &real).await.unwrap();
        assert_eq!(task.status.as_str(), "expired");
        assert_eq!(svc.balance(&agent).await.unwrap().available_cents, 2000);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn honeypots_fill_about_the_configured_share_of_a_feed() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with(&db, with_rate(0.05), clock.clone()).await;
        for n in 0..5 {
            let mut body = gut_check();
            body["question"] = json!(format!("Honeypot question {n}?"));
            svc.add_honeypot(&body, "no").await.unwrap();
        }
        let (agent, _) = common::funded_agent(&svc, "200").await;
        let mut real = Vec::new();
        for n in 0..40 {
            let mut body = gut_check();
            body["question"] = json!(format!("Real question {n}?"));
            real.push(post(&svc, &agent, body).await);
        }
        let (worker, _) = common::worker(&svc, "cy").await;
        // 40 real offers at 5%: 40 × 0.05 / 0.95 = 2.1, so 2 or 3 honeypots.
        let first = honeypot_offered(&svc, &worker, &real).await;
        assert!((2..=3).contains(&first.len()), "{}: {first:?}", db.name);
        assert_eq!(honeypot_offered(&svc, &worker, &real).await, first);

        // No honeypot without a rate, and none without real offers beside it.
        let quiet = common::service_with(&db, with_rate(0.0), clock.clone()).await;
        let (other, _) = common::worker(&quiet, "di").await;
        assert!(honeypot_offered(&quiet, &other, &real).await.is_empty());
        for id in &real {
            quiet.cancel(&agent, id, None).await.unwrap();
        }
        let (alone, _) = common::worker(&svc, "ed").await;
        assert!(svc.offers(&alone).await.unwrap().is_empty(), "{}", db.name);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn operators_manage_honeypots_over_http_and_only_operators() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let server = common::server::serve_in_process(&svc).await;
        let http = common::server::http_client();
        let operator = svc.create_operator_key().await.unwrap();
        let (_, agent_key) = common::funded_agent(&svc, "5").await;
        let url = format!("{}/v1/operator/honeypots", server.base);
        let body = json!({"task": gut_check(), "expected": "yes"});

        let (status, _) = common::server::send(http.post(&url).json(&body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, error) =
            common::server::send(http.post(&url).bearer_auth(&agent_key).json(&body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{error}");

        let (status, made) =
            common::server::send(http.post(&url).bearer_auth(&operator).json(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{}: {made}", db.name);
        assert_eq!(made["expected"], "yes");
        assert_eq!(made["budget_cents"], 300);

        // Bad input says what is wrong and stores nothing.
        for (bad, says) in [
            (
                json!({"task": gut_check(), "expected": "maybe"}),
                "expected answer",
            ),
            (
                json!({"task": {"kind": "gut_check", "question": "Free?", "response": "text"},
                        "expected": "x"}),
                "checked",
            ),
            (
                json!({"task": {"kind": "nonsense"}, "expected": "yes"}),
                "task",
            ),
            (
                json!({"task": {"kind": "gut_check", "question": "Q?", "response": "yes_no",
                        "callback_url": "https://example.com/h"}, "expected": "yes"}),
                "callback_url",
            ),
            (json!({"expected": "yes"}), "task"),
        ] {
            let (status, error) =
                common::server::send(http.post(&url).bearer_auth(&operator).json(&bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
            let message = error["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{bad}: {message}");
        }

        let (status, list) = common::server::send(http.get(&url).bearer_auth(&operator)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["honeypots"].as_array().unwrap().len(), 1);
        let id = made["honeypot_id"].as_str().unwrap();
        let (status, retired) = common::server::send(
            http.post(format!("{url}/{id}/retire"))
                .bearer_auth(&operator),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(retired["active"], false);
        let (status, _) = common::server::send(
            http.post(format!("{url}/hpt_nosuch/retire"))
                .bearer_auth(&operator),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
