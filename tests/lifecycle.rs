//! The task lifecycle and its money, through the service layer, on every backend: the main
//! walkthrough, disputes, cancellation, leases, deadlines, review windows, idempotency and
//! races.

mod common;

use std::sync::Arc;
use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::status::{AssignmentStatus, TaskStatus};
use humanping::input::CreateTaskBody;
use humanping::service::{Clock, HumanPing, ServiceError, SubmissionInput};
use serde_json::{Value, json};

const START: i64 = 1_800_000_000_000;

fn draft(body: Value) -> humanping::input::TaskDraft {
    serde_json::from_value::<CreateTaskBody>(body)
        .expect("valid body")
        .into_draft()
}

fn verify_task(budget: &str) -> humanping::input::TaskDraft {
    draft(json!({
        "kind": "verify",
        "question": "Is this restaurant still open?",
        "location": "245 Rue St-Paul, Montréal",
        "budget": budget,
    }))
}

fn answer(text: &str) -> SubmissionInput {
    SubmissionInput {
        answer: Some(text.into()),
        structured: None,
        notes: Some("Called them".into()),
        proof: None,
    }
}

async fn claim_and_submit(svc: &HumanPing, worker: &WorkerId, task: &str, text: &str) {
    let assignment = svc.claim(worker, task).await.expect("claim");
    svc.submit(worker, assignment.assignment_id.as_str(), answer(text))
        .await
        .expect("submit");
}

async fn balance(svc: &HumanPing, agent: &AgentId) -> (i64, i64) {
    let b = svc.balance(agent).await.unwrap();
    (b.available_cents, b.held_cents)
}

#[tokio::test]
async fn the_main_job_pays_the_worker_and_the_fee_to_the_cent() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "50.00").await;
        let (worker, _) = common::worker(&svc, "ana").await;

        let task = svc.create_task(&agent, verify_task("5.00")).await.unwrap();
        assert_eq!(task.status, TaskStatus::Open);
        assert_eq!(task.held_cents, 500);
        assert_eq!(balance(&svc, &agent).await, (4500, 500), "{}", db.name);

        let offers = svc.offers(&worker).await.unwrap();
        let offer = offers
            .iter()
            .find(|o| o.task_id == task.task_id)
            .expect("offered");
        assert_eq!(offer.pay_cents, 450);

        claim_and_submit(
            &svc,
            &worker,
            task.task_id.as_str(),
            "Yes, open until 22:00",
        )
        .await;
        let done = svc
            .wait_for_result(&agent, task.task_id.as_str(), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(done.status, TaskStatus::Completed);
        assert_eq!(done.answer.as_deref(), Some("Yes, open until 22:00"));
        assert!(done.review_deadline.is_some());

        let approved = svc
            .approve(&agent, task.task_id.as_str(), None)
            .await
            .unwrap();
        assert_eq!(approved.status, TaskStatus::Approved);
        assert_eq!(approved.held_cents, 0);
        assert_eq!(approved.results[0].paid_cents, 450);
        assert_eq!(balance(&svc, &agent).await, (4500, 0));
        let me = svc.worker_profile(&worker).await.unwrap();
        assert_eq!(
            (me.earned_cents, me.pending_cents, me.assignments.approved),
            (450, 0, 1)
        );

        let again = svc
            .approve(&agent, task.task_id.as_str(), None)
            .await
            .unwrap_err();
        assert!(matches!(again, ServiceError::Conflict(_)), "{again}");
        assert!(again.to_string().contains("already approved"), "{again}");
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_dispute_refunds_the_agent_and_counts_against_the_worker() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let (worker, _) = common::worker(&svc, "ben").await;
        let task = svc.create_task(&agent, verify_task("7.77")).await.unwrap();
        claim_and_submit(&svc, &worker, task.task_id.as_str(), "No").await;

        let empty = svc
            .dispute(&agent, task.task_id.as_str(), "  ", None)
            .await
            .unwrap_err();
        assert!(empty.to_string().contains("reason"), "{empty}");
        let disputed = svc
            .dispute(&agent, task.task_id.as_str(), "It is open, I called", None)
            .await
            .unwrap();
        assert_eq!(disputed.status, TaskStatus::Refunded);
        assert_eq!(disputed.results[0].status, AssignmentStatus::Rejected);
        assert_eq!(balance(&svc, &agent).await, (2000, 0));
        let me = svc.worker_profile(&worker).await.unwrap();
        assert_eq!((me.earned_cents, me.assignments.rejected), (0, 1));
        assert!(me.trust_score < 50);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn cancelling_refunds_an_unclaimed_task_only() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "30").await;
        let (worker, _) = common::worker(&svc, "cy").await;

        let unclaimed = svc.create_task(&agent, verify_task("10")).await.unwrap();
        let cancelled = svc
            .cancel(&agent, unclaimed.task_id.as_str(), None)
            .await
            .unwrap();
        assert_eq!(cancelled.status, TaskStatus::Cancelled);
        assert_eq!(balance(&svc, &agent).await, (3000, 0));

        let claimed = svc.create_task(&agent, verify_task("10")).await.unwrap();
        svc.claim(&worker, claimed.task_id.as_str()).await.unwrap();
        let refused = svc
            .cancel(&agent, claimed.task_id.as_str(), None)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("claimed"), "{refused}");
        assert_eq!(balance(&svc, &agent).await, (2000, 1000));

        let unknown = svc
            .cancel(&agent, "task_nosuchtask", None)
            .await
            .unwrap_err();
        assert!(matches!(unknown, ServiceError::NotFound(_)));
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn agents_never_see_each_others_tasks() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (alice, _) = common::funded_agent(&svc, "10").await;
        let (bob, _) = common::funded_agent(&svc, "10").await;
        let task = svc.create_task(&alice, verify_task("5")).await.unwrap();
        let id = task.task_id.as_str();
        for error in [
            svc.get_task(&bob, id).await.unwrap_err(),
            svc.approve(&bob, id, None).await.unwrap_err(),
            svc.dispute(&bob, id, "mine now", None).await.unwrap_err(),
            svc.cancel(&bob, id, None).await.unwrap_err(),
        ] {
            assert!(matches!(error, ServiceError::NotFound(_)), "{error}");
        }
        assert!(
            svc.list_tasks(&bob, None, 20, None)
                .await
                .unwrap()
                .tasks
                .is_empty()
        );
        assert_eq!(
            svc.list_tasks(&alice, None, 20, None)
                .await
                .unwrap()
                .tasks
                .len(),
            1
        );
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_lapsed_lease_frees_the_slot_and_refuses_the_late_result() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let (slow, _) = common::worker(&svc, "slow").await;
        let (quick, _) = common::worker(&svc, "quick").await;
        let task = svc.create_task(&agent, verify_task("5")).await.unwrap();
        let id = task.task_id.as_str();

        let lease = svc.claim(&slow, id).await.unwrap();
        let taken = svc.claim(&quick, id).await.unwrap_err();
        assert!(taken.to_string().contains("every slot"), "{taken}");
        assert_eq!(
            svc.get_task(&agent, id).await.unwrap().status,
            TaskStatus::InProgress
        );

        clock.advance(Duration::from_secs(61 * 60));
        // Enforced on read, without any sweep.
        assert_eq!(
            svc.get_task(&agent, id).await.unwrap().status,
            TaskStatus::Open
        );
        let late = svc
            .submit(&slow, lease.assignment_id.as_str(), answer("Yes"))
            .await
            .unwrap_err();
        assert!(late.to_string().contains("ran out"), "{late}");

        claim_and_submit(&svc, &quick, id, "Yes").await;
        assert_eq!(
            svc.get_task(&agent, id).await.unwrap().status,
            TaskStatus::Completed
        );
        let me = svc.worker_profile(&slow).await.unwrap();
        assert_eq!(me.assignments.lease_expired, 1);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn deadlines_refund_and_review_windows_approve_on_read() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let (worker, _) = common::worker(&svc, "dee").await;

        let lonely = svc
            .create_task(
                &agent,
                draft(json!({"kind": "gut_check", "question": "Cringe?", "deadline": "2h"})),
            )
            .await
            .unwrap();
        let reviewed = svc.create_task(&agent, verify_task("5")).await.unwrap();
        let lease = svc.claim(&worker, reviewed.task_id.as_str()).await.unwrap();
        clock.advance(Duration::from_secs(60));
        svc.submit(&worker, lease.assignment_id.as_str(), answer("Yes"))
            .await
            .unwrap();
        assert_eq!(balance(&svc, &agent).await, (1200, 800));

        clock.advance(Duration::from_secs(3 * 3600));
        let expired = svc.get_task(&agent, lonely.task_id.as_str()).await.unwrap();
        assert_eq!(
            (expired.status, expired.held_cents),
            (TaskStatus::Expired, 0)
        );
        assert_eq!(balance(&svc, &agent).await, (1500, 500));

        clock.advance(Duration::from_secs(72 * 3600));
        let approved = svc
            .get_task(&agent, reviewed.task_id.as_str())
            .await
            .unwrap();
        assert_eq!(approved.status, TaskStatus::Approved);
        assert_eq!(svc.worker_profile(&worker).await.unwrap().earned_cents, 450);
        assert_eq!(balance(&svc, &agent).await, (1500, 0));
        assert_eq!(svc.sweep().await.unwrap().settled, 0);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn the_sweep_settles_what_nobody_reads() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        for _ in 0..3 {
            svc.create_task(&agent, verify_task("5")).await.unwrap();
        }
        clock.advance(Duration::from_secs(25 * 3600));
        assert_eq!(svc.sweep().await.unwrap().settled, 3);
        let page = svc
            .list_tasks(&agent, Some(TaskStatus::Expired), 20, None)
            .await
            .unwrap();
        assert_eq!(page.tasks.len(), 3);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn idempotency_keys_return_the_first_result_and_move_money_once() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let (worker, _) = common::worker(&svc, "eve").await;
        let keyed = |question: &str| {
            draft(
                json!({"kind": "verify", "question": question, "budget": 5, "idempotency_key": "order-42"}),
            )
        };
        let first = svc.create_task(&agent, keyed("Open?")).await.unwrap();
        let second = svc.create_task(&agent, keyed("Open?")).await.unwrap();
        assert_eq!(first.task_id, second.task_id);
        assert_eq!(balance(&svc, &agent).await, (1500, 500));
        let other = svc.create_task(&agent, keyed("Closed?")).await.unwrap_err();
        assert!(
            matches!(other, ServiceError::IdempotencyMismatch { .. }),
            "{other}"
        );

        claim_and_submit(&svc, &worker, first.task_id.as_str(), "Yes").await;
        let id = first.task_id.as_str();
        let approved = svc.approve(&agent, id, Some("approve-42")).await.unwrap();
        let replayed = svc.approve(&agent, id, Some("approve-42")).await.unwrap();
        assert_eq!(
            (approved.status, replayed.status),
            (TaskStatus::Approved, TaskStatus::Approved)
        );
        assert_eq!(svc.worker_profile(&worker).await.unwrap().earned_cents, 450);
        let misuse = svc
            .cancel(&agent, id, Some("approve-42"))
            .await
            .unwrap_err();
        assert!(
            matches!(misuse, ServiceError::IdempotencyMismatch { .. }),
            "{misuse}"
        );
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn concurrent_keyed_creates_make_one_task() {
    for db in common::databases().await {
        let svc = Arc::new(common::service(&db).await);
        let (agent, _) = common::funded_agent(&svc, "100").await;
        let calls = (0..10).map(|_| {
            let (svc, agent) = (svc.clone(), agent.clone());
            tokio::spawn(async move {
                let body =
                    json!({"kind": "verify", "question": "Open?", "idempotency_key": "same"});
                svc.create_task(&agent, draft(body)).await
            })
        });
        let mut ids = Vec::new();
        for call in calls {
            ids.push(call.await.unwrap().expect("every retry succeeds").task_id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{}: {ids:?}", db.name);
        assert_eq!(balance(&svc, &agent).await, (9500, 500));
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn twenty_holds_of_80_on_100_let_exactly_one_through() {
    for db in common::databases().await {
        let svc = Arc::new(common::service(&db).await);
        let (agent, _) = common::funded_agent(&svc, "100").await;
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let (svc, agent) = (svc.clone(), agent.clone());
                tokio::spawn(async move { svc.create_task(&agent, verify_task("80")).await })
            })
            .collect();
        let mut created = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => created += 1,
                Err(ServiceError::InsufficientFunds { needed, available }) => {
                    assert_eq!(needed.get(), 8000);
                    assert_eq!(available.get(), 2000);
                }
                Err(other) => panic!("{}: unexpected {other}", db.name),
            }
        }
        assert_eq!(created, 1, "{}", db.name);
        assert_eq!(balance(&svc, &agent).await, (2000, 8000));
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn fifty_claims_of_one_slot_have_one_winner() {
    for db in common::databases().await {
        let svc = Arc::new(common::service(&db).await);
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let task = svc.create_task(&agent, verify_task("5")).await.unwrap();
        let mut workers = Vec::new();
        for n in 0..50 {
            workers.push(common::worker(&svc, &format!("w{n}")).await.0);
        }
        let calls: Vec<_> = workers
            .into_iter()
            .map(|worker| {
                let (svc, id) = (svc.clone(), task.task_id.to_string());
                tokio::spawn(async move { svc.claim(&worker, &id).await })
            })
            .collect();
        let mut winners = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => winners += 1,
                Err(ServiceError::Conflict(message)) => {
                    assert!(message.contains("slot"), "{message}")
                }
                Err(other) => panic!("{}: unexpected {other}", db.name),
            }
        }
        assert_eq!(winners, 1, "{}", db.name);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn workers_get_clear_refusals() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let (worker, _) = common::worker(&svc, "fay").await;
        let (other, _) = common::worker(&svc, "gus").await;
        let task = svc
            .create_task(
                &agent,
                draft(
                    json!({"kind": "gut_check", "question": "Logo A or B?", "options": ["A", "B"]}),
                ),
            )
            .await
            .unwrap();
        let id = task.task_id.as_str();
        let lease = svc.claim(&worker, id).await.unwrap();
        let twice = svc.claim(&worker, id).await.unwrap_err();
        assert!(twice.to_string().contains("already hold"), "{twice}");
        let wrong = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("C"))
            .await
            .unwrap_err();
        assert!(wrong.to_string().contains("A / B"), "{wrong}");
        let stranger = svc
            .submit(&other, lease.assignment_id.as_str(), answer("A"))
            .await
            .unwrap_err();
        assert!(matches!(stranger, ServiceError::NotFound(_)), "{stranger}");
        let first = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("a"))
            .await
            .unwrap();
        let retry = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("a"))
            .await
            .unwrap();
        assert_eq!(first.status, retry.status);
        let changed = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("B"))
            .await
            .unwrap_err();
        assert!(
            changed.to_string().contains("already has a result"),
            "{changed}"
        );
        let done = svc.get_task(&agent, id).await.unwrap();
        assert_eq!(done.results[0].structured, json!("A"));

        let call = svc
            .create_task(
                &agent,
                draft(json!({"kind": "call", "phone": "+1 514 555 0100", "goal": "Book a table"})),
            )
            .await
            .unwrap();
        let refused = svc.claim(&other, call.task_id.as_str()).await;
        assert!(refused.is_ok(), "test workers can place calls");
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_claim_ended_by_the_tasks_deadline_is_not_held_against_the_worker() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "10").await;
        let (worker, _) = common::worker(&svc, "ida").await;
        let task = svc
            .create_task(
                &agent,
                draft(json!({"kind": "verify", "question": "Open?", "deadline": "2m"})),
            )
            .await
            .unwrap();
        let lease = svc.claim(&worker, task.task_id.as_str()).await.unwrap();
        clock.advance(Duration::from_secs(3 * 60));
        let late = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("Yes"))
            .await
            .unwrap_err();
        assert!(late.to_string().contains("not held against you"), "{late}");
        let me = svc.worker_profile(&worker).await.unwrap();
        assert_eq!(
            (me.assignments.task_ended, me.assignments.lease_expired),
            (1, 0)
        );
        assert_eq!(me.trust_score, 50, "{}", db.name);
        assert_eq!(
            svc.get_task(&agent, task.task_id.as_str())
                .await
                .unwrap()
                .status,
            TaskStatus::Expired
        );
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn results_that_contradict_themselves_or_their_place_are_refused() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let (worker, _) = common::worker(&svc, "jo").await;
        let field = svc
            .create_task(
                &agent,
                draft(json!({"kind": "field", "mission": "Photograph the door",
                    "location": {"lat": 45.5088, "lng": -73.5540, "radius_m": 200}})),
            )
            .await;
        // The test worker has no position, so a located task is not offered to them.
        assert!(field.is_ok());
        let yes_no = svc
            .create_task(
                &agent,
                draft(json!({"kind": "verify", "question": "Open?", "response": "yes_no"})),
            )
            .await
            .unwrap();
        let lease = svc.claim(&worker, yes_no.task_id.as_str()).await.unwrap();
        let id = lease.assignment_id.as_str();
        let both = SubmissionInput {
            answer: Some("yes".into()),
            structured: Some(json!("no")),
            notes: None,
            proof: None,
        };
        let disagree = svc.submit(&worker, id, both).await.unwrap_err();
        assert!(disagree.to_string().contains("disagree"), "{disagree}");
        let script = SubmissionInput {
            answer: Some("yes".into()),
            structured: Some(json!(true)),
            notes: None,
            proof: Some(humanping::service::ProofInput {
                text: None,
                lat: None,
                lng: None,
                accuracy_m: None,
                photo_urls: Some(vec!["javascript:alert(1)".into()]),
            }),
        };
        let link = svc.submit(&worker, id, script).await.unwrap_err();
        assert!(link.to_string().contains("http(s)"), "{link}");
        let agreeing = SubmissionInput {
            answer: Some("Yes".into()),
            structured: Some(json!(true)),
            notes: None,
            proof: None,
        };
        svc.submit(&worker, id, agreeing).await.unwrap();

        let number = svc
            .create_task(
                &agent,
                draft(
                    json!({"kind": "verify", "question": "Price?", "response": {"type": "number"}}),
                ),
            )
            .await
            .unwrap();
        let lease = svc.claim(&worker, number.task_id.as_str()).await.unwrap();
        let comma = svc
            .submit(&worker, lease.assignment_id.as_str(), answer("1,5"))
            .await
            .unwrap_err();
        assert!(comma.to_string().contains("dot for decimals"), "{comma}");
        svc.submit(&worker, lease.assignment_id.as_str(), answer("1.5"))
            .await
            .unwrap();
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_position_far_from_the_task_is_refused_and_a_near_one_recorded() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "50").await;
        let (worker, _) = svc
            .create_worker(humanping::service::NewWorker {
                name: "kim".into(),
                lat: Some(45.5090),
                lng: Some(-73.5545),
                capabilities: vec![humanping::domain::kind::Capability::Field],
                languages: vec!["fr".into()],
            })
            .await
            .unwrap();
        let task = svc
            .create_task(
                &agent,
                draft(
                    json!({"kind": "field", "mission": "Photograph the door", "proof": ["gps"],
                    "location": {"lat": 45.5088, "lng": -73.5540, "radius_m": 200}}),
                ),
            )
            .await
            .unwrap();
        let lease = svc.claim(&worker, task.task_id.as_str()).await.unwrap();
        let at = |lat: f64, lng: f64| SubmissionInput {
            answer: Some("Done".into()),
            structured: None,
            notes: None,
            proof: Some(humanping::service::ProofInput {
                text: None,
                lat: Some(lat),
                lng: Some(lng),
                accuracy_m: Some(20.0),
                photo_urls: None,
            }),
        };
        let tokyo = svc
            .submit(&worker, lease.assignment_id.as_str(), at(35.68, 139.69))
            .await
            .unwrap_err();
        assert!(tokyo.to_string().contains("radius"), "{tokyo}");
        svc.submit(&worker, lease.assignment_id.as_str(), at(45.5089, -73.5542))
            .await
            .unwrap();
        let view = svc.get_task(&agent, task.task_id.as_str()).await.unwrap();
        let distance = view.results[0].proof.as_ref().unwrap()["distance_m"]
            .as_i64()
            .unwrap();
        assert!(distance < 50, "{distance}");
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn trust_tiers_open_bigger_budgets_as_approvals_come_in() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "200").await;
        let (worker, _) = common::worker(&svc, "lee").await;
        let big = svc.create_task(&agent, verify_task("30")).await.unwrap();
        let me = svc.worker_profile(&worker).await.unwrap();
        assert_eq!((me.trust_score, me.tier.name.as_str()), (50, "trusted"));
        assert_eq!(me.next_tier.as_ref().map(|t| t.points_needed), Some(15));
        assert!(
            !svc.offers(&worker)
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id == big.task_id)
        );
        let refused = svc.claim(&worker, big.task_id.as_str()).await.unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden(_)), "{refused}");
        assert!(refused.to_string().contains("tier"), "{refused}");

        for _ in 0..5 {
            let small = svc.create_task(&agent, verify_task("5")).await.unwrap();
            let lease = svc.claim(&worker, small.task_id.as_str()).await.unwrap();
            clock.advance(Duration::from_secs(60));
            svc.submit(&worker, lease.assignment_id.as_str(), answer("Yes"))
                .await
                .unwrap();
            svc.approve(&agent, small.task_id.as_str(), None)
                .await
                .unwrap();
        }
        let me = svc.worker_profile(&worker).await.unwrap();
        assert_eq!(
            (me.trust_score, me.tier.name.as_str()),
            (66, "proven"),
            "{}",
            db.name
        );
        assert!(
            svc.offers(&worker)
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id == big.task_id)
        );
        svc.claim(&worker, big.task_id.as_str()).await.unwrap();
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_result_sent_too_fast_is_flagged_shown_and_not_approved_automatically() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let (hasty, _) = common::worker(&svc, "hasty").await;
        let (careful, _) = common::worker(&svc, "careful").await;

        let rushed = svc.create_task(&agent, verify_task("5")).await.unwrap();
        let lease = svc.claim(&hasty, rushed.task_id.as_str()).await.unwrap();
        clock.advance(Duration::from_secs(3));
        svc.submit(&hasty, lease.assignment_id.as_str(), answer("Yes"))
            .await
            .unwrap();

        let calm = svc.create_task(&agent, verify_task("5")).await.unwrap();
        let lease = svc.claim(&careful, calm.task_id.as_str()).await.unwrap();
        clock.advance(Duration::from_secs(5 * 60));
        svc.submit(&careful, lease.assignment_id.as_str(), answer("Yes"))
            .await
            .unwrap();

        let flagged = svc.get_task(&agent, rushed.task_id.as_str()).await.unwrap();
        assert_eq!(flagged.results[0].flags.len(), 1, "{}", db.name);
        assert_eq!(flagged.results[0].flags[0].rule, "too_fast");
        assert!(
            flagged.results[0].flags[0].detail.contains("3 s"),
            "{:?}",
            flagged.results[0].flags
        );
        let clean = svc.get_task(&agent, calm.task_id.as_str()).await.unwrap();
        assert!(clean.results[0].flags.is_empty());
        assert!(svc.worker_profile(&hasty).await.unwrap().trust_score <= 30);
        assert_eq!(svc.worker_profile(&careful).await.unwrap().trust_score, 50);

        clock.advance(Duration::from_secs(73 * 3600));
        svc.sweep().await.unwrap();
        let waiting = svc.get_task(&agent, rushed.task_id.as_str()).await.unwrap();
        assert_eq!(
            waiting.status,
            TaskStatus::Completed,
            "a flagged result waits for the agent"
        );
        assert_eq!(
            svc.get_task(&agent, calm.task_id.as_str())
                .await
                .unwrap()
                .status,
            TaskStatus::Approved
        );
        let approved = svc
            .approve(&agent, rushed.task_id.as_str(), None)
            .await
            .unwrap();
        assert_eq!(approved.status, TaskStatus::Approved);
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_photo_sent_for_two_tasks_is_flagged_the_second_time() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let svc = common::service_with_clock(&db, clock.clone()).await;
        let (agent, _) = common::funded_agent(&svc, "20").await;
        let (worker, _) = svc
            .create_worker(humanping::service::NewWorker {
                name: "mo".into(),
                lat: Some(45.5089),
                lng: Some(-73.5541),
                capabilities: vec![],
                languages: vec!["en".into()],
            })
            .await
            .unwrap();
        let photo = humanping::service::web::ProofPhoto {
            sha256: "ab".repeat(32),
            content_type: "image/jpeg".into(),
            size_bytes: 1234,
            exif_lat: Some(35.68),
            exif_lng: Some(139.69),
            exif_taken_at: Some("2001:01:01 12:00:00".into()),
        };
        let mut seen = Vec::new();
        for _ in 0..2 {
            let plain = svc
                .create_task(
                    &agent,
                    draft(json!({"kind": "verify", "question": "Door colour?",
                    "location": {"lat": 45.5088, "lng": -73.5540, "radius_m": 200}})),
                )
                .await
                .unwrap();
            let lease = svc.claim(&worker, plain.task_id.as_str()).await.unwrap();
            svc.record_proof_photo(&worker, &lease, &photo, None)
                .await
                .unwrap();
            clock.advance(Duration::from_secs(120));
            let link = format!("/v1/tasks/{}/proofs/{}", plain.task_id, photo.sha256);
            let input = SubmissionInput {
                answer: Some("Green".into()),
                structured: None,
                notes: None,
                proof: Some(humanping::service::ProofInput {
                    text: None,
                    lat: None,
                    lng: None,
                    accuracy_m: None,
                    photo_urls: Some(vec![link]),
                }),
            };
            svc.submit(&worker, lease.assignment_id.as_str(), input)
                .await
                .unwrap();
            let view = svc.get_task(&agent, plain.task_id.as_str()).await.unwrap();
            let mut rules: Vec<_> = view.results[0]
                .flags
                .iter()
                .map(|f| f.rule.clone())
                .collect();
            rules.sort();
            seen.push(rules);
        }
        // The camera says Tokyo in 2001: far from the task, long before it.
        assert_eq!(seen[0], ["photo_far", "photo_time"], "{}", db.name);
        assert_eq!(
            seen[1],
            ["photo_far", "photo_reused", "photo_time"],
            "{}",
            db.name
        );
        common::assert_books_balanced(&svc).await;
    }
}
