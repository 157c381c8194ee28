//! Persistent partners: who may partner, partner-only tasks, the first-look window, notes, the
//! bonus and its arithmetic, leaving; and disputes of one result among several — on every
//! backend.

mod common;

use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::service::views::TaskView;
use humanping::service::{Clock, Config, HumanPing, ServiceError};
use serde_json::{Value, json};

const START: i64 = 1_800_000_000_000;

async fn post(svc: &HumanPing, agent: &AgentId, body: Value) -> TaskView {
    common::post_task(svc, agent, body).await.unwrap()
}

async fn do_task(svc: &HumanPing, clock: &Clock, worker: &WorkerId, task: &str, said: &str) {
    let lease = svc.claim(worker, task).await.unwrap();
    clock.advance(Duration::from_secs(20));
    svc.submit(worker, lease.assignment_id.as_str(), common::answer(said))
        .await
        .unwrap();
}

fn offered(offers: &[humanping::service::views::OfferView], task: &TaskView) -> bool {
    offers.iter().any(|o| o.task_id == task.task_id)
}

/// An agent with a partner who answered one task first; returns (agent, partner, stranger).
async fn partnered(
    svc: &HumanPing,
    clock: &Clock,
    bonus_bps: u32,
) -> (AgentId, WorkerId, WorkerId) {
    let (agent, _) = common::funded_agent(svc, "100").await;
    let (partner, _) = common::worker(svc, "pat").await;
    let (stranger, _) = common::worker(svc, "sam").await;
    let first = post(
        svc,
        &agent,
        json!({"kind": "gut_check", "question": "Warm-up?", "partners": "none"}),
    )
    .await;
    do_task(svc, clock, &partner, first.task_id.as_str(), "yes").await;
    svc.approve(&agent, first.task_id.as_str(), None)
        .await
        .unwrap();
    svc.partner_add(
        &agent,
        partner.as_str(),
        Some("Prefer photos in daylight."),
        Some(bonus_bps),
    )
    .await
    .unwrap();
    (agent, partner, stranger)
}

#[tokio::test]
async fn only_workers_who_answered_can_be_partners_and_workers_can_leave() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, partner, stranger) = partnered(&svc, &clock, 1000).await;
        let refused = svc
            .partner_add(&agent, stranger.as_str(), None, None)
            .await
            .unwrap_err();
        assert!(matches!(refused, ServiceError::NotFound(_)), "{refused}");
        let too_much = svc
            .partner_add(&agent, partner.as_str(), None, Some(6000))
            .await
            .unwrap_err();
        assert!(
            too_much.to_string().contains("bonus_bps 6000"),
            "{too_much}"
        );

        let listed = svc.partners(&agent).await.unwrap();
        assert_eq!(listed.len(), 1, "{}", db.name);
        assert_eq!(listed[0].approved, 1);
        assert_eq!(listed[0].bonus_bps, 1000);
        let mine = svc.worker_partnerships(&partner).await.unwrap();
        assert_eq!(mine[0].agent_id, agent);
        assert_eq!(mine[0].notes.as_deref(), Some("Prefer photos in daylight."));

        svc.leave_partnership(&partner, agent.as_str())
            .await
            .unwrap();
        assert!(svc.partners(&agent).await.unwrap().is_empty());
        let again = svc
            .leave_partnership(&partner, agent.as_str())
            .await
            .unwrap_err();
        assert!(matches!(again, ServiceError::NotFound(_)));
        let gone = svc
            .partner_remove(&agent, partner.as_str())
            .await
            .unwrap_err();
        assert!(matches!(gone, ServiceError::NotFound(_)));
    }
}

#[tokio::test]
async fn partner_only_tasks_are_never_shown_to_others() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, partner, stranger) = partnered(&svc, &clock, 1000).await;
        let task = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Private?", "partners": "only",
                   "budget": 4}),
        )
        .await;
        // Held: the budget and the largest partner bonus (10% of $4).
        assert_eq!(task.held_cents, 440);
        let theirs = svc.offers(&partner).await.unwrap();
        let offer = theirs.iter().find(|o| o.task_id == task.task_id).unwrap();
        assert_eq!(offer.pay_cents, 360 + 40, "{}", db.name);
        assert_eq!(
            offer.partner_notes.as_deref(),
            Some("Prefer photos in daylight.")
        );
        // Long after any first-look window, before the deadline.
        clock.advance(Duration::from_secs(3 * 3600));
        assert!(!offered(&svc.offers(&stranger).await.unwrap(), &task));
        let refused = svc
            .claim(&stranger, task.task_id.as_str())
            .await
            .unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden(_)), "{refused}");
        assert!(refused.to_string().contains("partners"), "{refused}");
    }
}

#[tokio::test]
async fn partners_look_first_then_everyone_may_take_the_task() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, partner, stranger) = partnered(&svc, &clock, 0).await;
        let task = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Soon?", "first_look_minutes": 30}),
        )
        .await;
        let other = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Everyone?", "partners": "none"}),
        )
        .await;
        // Partners first in the feed, the open task after.
        let theirs = svc.offers(&partner).await.unwrap();
        assert_eq!(theirs[0].task_id, task.task_id, "{}", db.name);
        assert!(offered(&theirs, &other));
        assert!(!offered(&svc.offers(&stranger).await.unwrap(), &task));
        let early = svc
            .claim(&stranger, task.task_id.as_str())
            .await
            .unwrap_err();
        assert!(early.to_string().contains("for now"), "{early}");
        assert!(offered(&svc.offers(&stranger).await.unwrap(), &other));

        clock.advance(Duration::from_secs(31 * 60));
        assert!(
            offered(&svc.offers(&stranger).await.unwrap(), &task),
            "{}",
            db.name
        );
        do_task(&svc, &clock, &stranger, task.task_id.as_str(), "yes").await;
    }
}

#[tokio::test]
async fn the_bonus_and_the_fee_add_up_for_many_random_cases() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let mut rng = common::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut next = |below: u64| rng.below(below);
        for round in 0..10 {
            let fee_bps = next(3001) as u32;
            let config = Config {
                fee_bps,
                ..Config::default()
            };
            let svc = common::service_with(&db, config, clock.clone()).await;
            let bonus_bps = next(5001) as u32;
            let (agent, partner, stranger) = partnered(&svc, &clock, bonus_bps).await;
            let before = svc.balance(&agent).await.unwrap().spent_cents;
            let cents = 50 + next(950) as i64;
            let budget = format!("{}.{:02}", cents / 100, cents % 100);
            let by_partner = next(2) == 0;
            let task = post(
                &svc,
                &agent,
                json!({"kind": "gut_check", "question": format!("Round {round}?"),
                       "budget": budget, "first_look_minutes": 0}),
            )
            .await;
            let bonus = cents * i64::from(bonus_bps) / 10_000;
            assert_eq!(task.held_cents, cents + bonus, "round {round}");
            let worker = if by_partner { &partner } else { &stranger };
            let earned_before = svc.worker_profile(worker).await.unwrap().earned_cents;
            do_task(&svc, &clock, worker, task.task_id.as_str(), "no").await;
            svc.approve(&agent, task.task_id.as_str(), None)
                .await
                .unwrap();

            let fee = cents * i64::from(fee_bps) / 10_000;
            let paid_bonus = if by_partner { bonus } else { 0 };
            let spent = svc.balance(&agent).await.unwrap().spent_cents - before;
            assert_eq!(spent, cents + paid_bonus, "round {round} on {}", db.name);
            let earned = svc.worker_profile(worker).await.unwrap().earned_cents - earned_before;
            assert_eq!(earned, cents - fee + paid_bonus, "round {round}");
            let view = svc.get_task(&agent, task.task_id.as_str()).await.unwrap();
            assert_eq!(view.held_cents, 0);
            assert_eq!(view.results[0].paid_cents, cents - fee + paid_bonus);
            common::assert_books_balanced(&svc).await;
        }
    }
}

#[tokio::test]
async fn one_result_of_several_can_be_disputed_alone() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let task = post(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Fine?", "workers": 3, "agreement": 3,
                   "budget": 3, "partners": "none"}),
        )
        .await;
        let id = task.task_id.to_string();
        let mut crew = Vec::new();
        for name in ["a", "b", "c"] {
            let (worker, _) = common::worker(&svc, name).await;
            do_task(&svc, &clock, &worker, &id, "yes").await;
            crew.push(worker);
        }
        let view = svc.get_task(&agent, &id).await.unwrap();
        let lazy = view.results[1].assignment_id.to_string();
        let after = svc
            .dispute_result(&agent, &id, &lazy, "copied the others", None)
            .await
            .unwrap();
        assert_eq!(after.status.as_str(), "completed", "{}", db.name);
        assert_eq!(after.held_cents, 600);
        let unknown = svc
            .dispute_result(&agent, &id, &lazy, "again", None)
            .await
            .unwrap_err();
        assert!(matches!(unknown, ServiceError::NotFound(_)), "{unknown}");
        let done = svc.approve(&agent, &id, None).await.unwrap();
        assert_eq!(done.status.as_str(), "approved");
        let statuses: Vec<&str> = done.results.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == "approved").count(), 2);
        assert_eq!(statuses.iter().filter(|s| **s == "rejected").count(), 1);
        assert_eq!(svc.balance(&agent).await.unwrap().spent_cents, 600);
        common::assert_books_balanced(&svc).await;
    }
}
