//! Consensus: one task, several humans. Agreement, splits extended and resolved, no consensus,
//! slots re-offered after a lapse, the deadline, and the money of every split — on every
//! backend.

mod common;

use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::service::views::TaskView;
use humanping::service::{Clock, Config, HumanPing, ServiceError};
use serde_json::{Value, json};

const START: i64 = 1_800_000_000_000;

async fn post(svc: &HumanPing, agent: &AgentId, body: Value) -> Result<TaskView, ServiceError> {
    common::post_task(svc, agent, body).await
}

async fn workers(svc: &HumanPing, n: usize) -> Vec<WorkerId> {
    let mut all = Vec::new();
    for i in 0..n {
        all.push(common::worker(svc, &format!("w{i}")).await.0);
    }
    all
}

/// Each worker claims the task and answers, one after the other.
async fn answer_all(svc: &HumanPing, clock: &Clock, task: &str, answers: &[(&WorkerId, &str)]) {
    for (worker, said) in answers {
        let lease = svc.claim(worker, task).await.unwrap();
        clock.advance(Duration::from_secs(20));
        svc.submit(worker, lease.assignment_id.as_str(), common::answer(said))
            .await
            .unwrap();
    }
}

/// A service on a manual clock, an agent with $50, and a first task made from `body`.
async fn with_task(db: &common::TestDb, body: Value) -> (Clock, HumanPing, AgentId, String) {
    let clock = Clock::manual(START);
    let svc = common::service_with_clock(db, clock.clone()).await;
    let (agent, _) = common::funded_agent(&svc, "50").await;
    let id = post(&svc, &agent, body).await.unwrap().task_id.to_string();
    (clock, svc, agent, id)
}

fn votes(view: &TaskView) -> Vec<(Value, i64)> {
    view.consensus
        .as_ref()
        .map(|c| {
            c.votes
                .iter()
                .map(|v| (v.answer.clone(), v.votes))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn answers_that_differ_only_in_form_agree() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let task = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Open?", "workers": 3, "agreement": 3,
                   "budget": 3}),
        )
        .await
        .unwrap();
        assert_eq!(task.held_cents, 900);
        let id = task.task_id.to_string();
        let w = workers(&svc, 3).await;
        answer_all(
            &svc,
            &clock,
            &id,
            &[(&w[0], "Yes"), (&w[1], " yes "), (&w[2], "ｙｅｓ")],
        )
        .await;
        let view = svc.get_task(&agent, &id).await.unwrap();
        assert_eq!(view.status.as_str(), "completed", "{}", db.name);
        let consensus = view.consensus.clone().unwrap();
        assert_eq!(consensus.outcome, "agreed");
        assert_eq!(consensus.answer, Some(json!("yes")));
        assert_eq!(consensus.confidence, Some(1.0));
        assert_eq!(votes(&view), [(json!("yes"), 3)]);
        assert_eq!(view.answer.as_deref(), Some("yes"));
        assert_eq!(view.results.len(), 3);
    }
}

#[tokio::test]
async fn two_of_three_agree_and_the_third_slot_is_refunded_when_unclaimed() {
    for db in common::databases().await {
        let (clock, svc, agent, id) = with_task(
            &db,
            json!({"kind": "gut_check", "question": "Open?", "workers": 3, "budget": 3}),
        )
        .await;
        let w = workers(&svc, 3).await;
        answer_all(&svc, &clock, &id, &[(&w[0], "yes"), (&w[1], "no")]).await;
        assert_eq!(
            svc.get_task(&agent, &id).await.unwrap().status.as_str(),
            "open"
        );
        answer_all(&svc, &clock, &id, &[(&w[2], "yes")]).await;
        let view = svc.get_task(&agent, &id).await.unwrap();
        let consensus = view.consensus.clone().unwrap();
        assert_eq!(consensus.outcome, "agreed", "{}", db.name);
        assert_eq!(consensus.answer, Some(json!("yes")));
        assert!((consensus.confidence.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(votes(&view), [(json!("yes"), 2), (json!("no"), 1)]);

        // Agreement reached while a slot is still unclaimed: done at once, the slot refunded.
        let early = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Safe?", "workers": 3, "budget": 3}),
        )
        .await
        .unwrap()
        .task_id
        .to_string();
        answer_all(&svc, &clock, &early, &[(&w[0], "no"), (&w[1], "no")]).await;
        let view = svc.get_task(&agent, &early).await.unwrap();
        assert_eq!(view.status.as_str(), "completed", "{}", db.name);
        assert_eq!(view.held_cents, 600);

        // Every valid result is paid: the fee comes out of each budget.
        svc.approve(&agent, &id, None).await.unwrap();
        svc.approve(&agent, &early, None).await.unwrap();
        let balance = svc.balance(&agent).await.unwrap();
        assert_eq!(balance.spent_cents, 900 + 600);
        assert_eq!(balance.held_cents, 0);
        for worker in &w {
            let me = svc.worker_profile(worker).await.unwrap();
            assert!(me.earned_cents % 270 == 0, "{}", me.earned_cents);
        }
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_two_two_split_is_extended_then_resolved() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let task = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Trust them?", "workers": 4,
                   "agreement": 3, "max_workers": 5, "budget": 2}),
        )
        .await
        .unwrap();
        assert_eq!(task.held_cents, 1000, "held for the most workers up front");
        let id = task.task_id.to_string();
        let w = workers(&svc, 5).await;
        answer_all(
            &svc,
            &clock,
            &id,
            &[(&w[0], "yes"), (&w[1], "no"), (&w[2], "yes"), (&w[3], "no")],
        )
        .await;
        let split = svc.get_task(&agent, &id).await.unwrap();
        assert_eq!(split.status.as_str(), "open", "{}", db.name);
        assert_eq!(split.workers, 5);
        assert!(split.consensus.is_none());
        assert!(
            svc.offers(&w[4])
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id.as_str() == id)
        );
        answer_all(&svc, &clock, &id, &[(&w[4], "no")]).await;
        let view = svc.get_task(&agent, &id).await.unwrap();
        let consensus = view.consensus.clone().unwrap();
        assert_eq!(consensus.outcome, "agreed", "{}", db.name);
        assert_eq!(consensus.answer, Some(json!("no")));
        assert_eq!(consensus.answered, 5);
        svc.approve(&agent, &id, None).await.unwrap();
        assert_eq!(svc.balance(&agent).await.unwrap().spent_cents, 1000);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn answers_that_all_differ_end_without_consensus_and_are_still_paid() {
    for db in common::databases().await {
        let (clock, svc, agent, id) = with_task(
            &db,
            json!({"kind": "gut_check", "question": "Best name?", "workers": 3, "budget": 3,
                   "options": ["Ada", "Bea", "Cy"]}),
        )
        .await;
        let w = workers(&svc, 3).await;
        answer_all(
            &svc,
            &clock,
            &id,
            &[(&w[0], "ada"), (&w[1], "BEA"), (&w[2], "Cy")],
        )
        .await;
        let view = svc.get_task(&agent, &id).await.unwrap();
        assert_eq!(view.status.as_str(), "completed", "{}", db.name);
        let consensus = view.consensus.clone().unwrap();
        assert_eq!(consensus.outcome, "no_consensus");
        assert_eq!(consensus.answer, None);
        assert_eq!(view.answer, None);
        assert_eq!(votes(&view).len(), 3);
        // The review window passes: every valid answer is paid, none picked.
        clock.advance(Duration::from_secs(73 * 3600));
        let view = svc.get_task(&agent, &id).await.unwrap();
        assert_eq!(view.status.as_str(), "approved");
        assert_eq!(svc.balance(&agent).await.unwrap().spent_cents, 900);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_lapsed_slot_is_offered_again_and_the_deadline_ends_with_what_it_has() {
    for db in common::databases().await {
        let (clock, svc, agent, id) = with_task(
            &db,
            json!({"kind": "gut_check", "question": "Fair?", "workers": 2, "budget": 3,
                   "deadline": "3h"}),
        )
        .await;
        let w = workers(&svc, 3).await;
        let lapsed = svc.claim(&w[0], &id).await.unwrap();
        answer_all(&svc, &clock, &id, &[(&w[1], "yes")]).await;
        assert!(
            svc.offers(&w[2]).await.unwrap().is_empty(),
            "both slots are taken"
        );
        // The gut check's lease (15 minutes) runs out: the slot goes back to the pool.
        clock.advance(Duration::from_secs(16 * 60));
        assert!(
            svc.offers(&w[2])
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id.as_str() == id),
            "{}",
            db.name
        );
        let late = svc
            .submit(&w[0], lapsed.assignment_id.as_str(), common::answer("no"))
            .await
            .unwrap_err();
        assert!(matches!(late, ServiceError::Conflict(_)), "{late}");
        answer_all(&svc, &clock, &id, &[(&w[2], "yes")]).await;
        let view = svc.get_task(&agent, &id).await.unwrap();
        assert_eq!(
            view.consensus.unwrap().answer,
            Some(json!("yes")),
            "{}",
            db.name
        );

        // One answer of two needed, then the deadline: the task ends with what it has.
        let short = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Kind?", "workers": 3, "budget": 3,
                   "deadline": "1h"}),
        )
        .await
        .unwrap()
        .task_id
        .to_string();
        answer_all(&svc, &clock, &short, &[(&w[0], "yes")]).await;
        clock.advance(Duration::from_secs(2 * 3600));
        let view = svc.get_task(&agent, &short).await.unwrap();
        assert_eq!(view.status.as_str(), "completed", "{}", db.name);
        assert_eq!(view.consensus.as_ref().unwrap().outcome, "no_consensus");
        assert_eq!(view.held_cents, 300, "the two unused slots are refunded");
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn bad_consensus_settings_are_refused_with_the_reason() {
    let db = common::sqlite_database();
    let svc = common::service(&db).await;
    let (agent, _) = common::funded_agent(&svc, "50").await;
    for (body, says) in [
        (
            json!({"kind": "gut_check", "question": "Q?", "workers": 0}),
            "workers 0",
        ),
        (
            json!({"kind": "gut_check", "question": "Q?", "workers": 16}),
            "1 to 15",
        ),
        (
            json!({"kind": "gut_check", "question": "Q?", "workers": 3, "agreement": 4}),
            "agreement 4",
        ),
        (
            json!({"kind": "gut_check", "question": "Q?", "workers": 3, "max_workers": 2}),
            "max_workers 2",
        ),
        (
            json!({"kind": "vibe", "content": "hi", "workers": 3, "agreement": 2,
                "response": "text"}),
            "free text",
        ),
    ] {
        let error = post(&svc, &agent, body.clone()).await.unwrap_err();
        assert!(
            matches!(error, ServiceError::InvalidInput(_)),
            "{body}: {error}"
        );
        assert!(error.to_string().contains(says), "{body}: {error}");
    }
    // Too little money for budget × max_workers.
    let error = post(
        &svc,
        &agent,
        json!({"kind": "gut_check", "question": "Q?", "workers": 5, "max_workers": 15,
               "budget": 4}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, ServiceError::InsufficientFunds { .. }),
        "{error}"
    );
    assert_eq!(svc.balance(&agent).await.unwrap().available_cents, 5000);
}

#[tokio::test]
async fn the_books_balance_for_every_split_fee_and_budget() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let mut rng = common::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = |below: u64| rng.below(below);
        let pool: Vec<WorkerId>;
        {
            let svc = common::service_with_clock(&db, clock.clone()).await;
            pool = workers(&svc, 6).await;
        }
        for round in 0..12 {
            let fee_bps = [0, 1, 999, 1000, 1234, 5000][next(6) as usize] as u32;
            let config = Config {
                fee_bps,
                ..Config::default()
            };
            let svc = common::service_with(&db, config, clock.clone()).await;
            let (agent, _) = common::funded_agent(&svc, "500").await;
            let n = 1 + next(4) as u32;
            let max = n + next(3) as u32;
            // Within the starter tier, which disputes may bring the pool down to.
            let cents = 50 + next(950);
            let budget = format!("{}.{:02}", cents / 100, cents % 100);
            let id = post(
                &svc,
                &agent,
                json!({"kind": "gut_check", "question": format!("Round {round}?"),
                       "workers": n, "max_workers": max, "budget": budget}),
            )
            .await
            .unwrap()
            .task_id
            .to_string();
            let mut answered = 0;
            for worker in pool.iter().take(max as usize) {
                let view = svc.get_task(&agent, &id).await.unwrap();
                if view.status.as_str() != "open" {
                    break;
                }
                let said = if next(2) == 0 { "yes" } else { "no" };
                answer_all(&svc, &clock, &id, &[(worker, said)]).await;
                answered += 1;
            }
            match next(3) {
                0 => {
                    svc.approve(&agent, &id, None).await.unwrap();
                }
                1 => {
                    svc.dispute(&agent, &id, "wrong", None).await.unwrap();
                }
                _ => {
                    clock.advance(Duration::from_secs(73 * 3600));
                    svc.sweep().await.unwrap();
                }
            }
            let view = svc.get_task(&agent, &id).await.unwrap();
            assert!(view.status.is_final(), "round {round}: {:?}", view.status);
            assert_eq!(view.held_cents, 0);
            let paid: i64 = view.results.iter().map(|r| r.paid_cents).sum();
            let spent = svc.balance(&agent).await.unwrap().spent_cents;
            if view.status.as_str() == "approved" {
                assert_eq!(spent, cents as i64 * answered, "round {round}");
                let fee = cents as i64 * i64::from(fee_bps) / 10_000;
                assert_eq!(paid, (cents as i64 - fee) * answered, "round {round}");
            } else {
                assert_eq!(spent, 0, "round {round}");
            }
            common::assert_books_balanced(&svc).await;
        }
    }
}
