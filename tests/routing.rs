//! Who is offered what: each routing rule, on and off, in the feed and again at claim time, on
//! every backend.

mod common;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::kind::Capability;
use humanping::input::CreateTaskBody;
use humanping::service::{HumanPing, NewWorker, ServiceError};
use serde_json::{Value, json};

async fn worker(
    svc: &HumanPing,
    place: Option<(f64, f64)>,
    capabilities: Vec<Capability>,
    languages: &[&str],
) -> WorkerId {
    let new = NewWorker {
        name: "w".into(),
        lat: place.map(|p| p.0),
        lng: place.map(|p| p.1),
        capabilities,
        languages: languages.iter().map(|l| l.to_string()).collect(),
    };
    svc.create_worker(new).await.unwrap().0
}

async fn task(svc: &HumanPing, agent: &AgentId, body: Value) -> String {
    let draft = serde_json::from_value::<CreateTaskBody>(body)
        .unwrap()
        .into_draft();
    svc.create_task(agent, draft)
        .await
        .unwrap()
        .task_id
        .to_string()
}

/// Whether the worker is offered the task, and whether a claim agrees.
async fn offered(svc: &HumanPing, worker: &WorkerId, task: &str) -> bool {
    let in_feed = svc
        .offers(worker)
        .await
        .unwrap()
        .iter()
        .any(|o| o.task_id.as_str() == task);
    let claim = svc.claim(worker, task).await;
    if let Ok(lease) = &claim {
        svc.release_assignment(worker, lease.assignment_id.as_str())
            .await
            .unwrap();
    }
    match &claim {
        Ok(_) | Err(ServiceError::Conflict(_)) => {}
        Err(ServiceError::Forbidden(_)) => {}
        Err(other) => panic!("unexpected {other}"),
    }
    assert_eq!(
        in_feed,
        claim.is_ok(),
        "the feed and the claim disagree on {task}: {claim:?}"
    );
    in_feed
}

const MONTREAL: (f64, f64) = (45.5088, -73.5540);
const TORONTO: (f64, f64) = (43.6532, -79.3832);

#[tokio::test]
async fn each_rule_decides_on_its_own() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "500").await;
        let nobody = worker(&svc, None, vec![], &["en"]).await;
        let caller = worker(&svc, None, vec![Capability::Voice], &["en"]).await;
        let near = worker(&svc, Some(MONTREAL), vec![Capability::Field], &["fr"]).await;
        let far = worker(&svc, Some(TORONTO), vec![Capability::Field], &["fr"]).await;

        // Capability: calls need voice, field missions need field.
        let call = task(
            &svc,
            &agent,
            json!({"kind": "call", "phone": "+1 514 555 0100", "goal": "Ask the hours"}),
        )
        .await;
        assert!(!offered(&svc, &nobody, &call).await, "{}", db.name);
        assert!(offered(&svc, &caller, &call).await);

        // Language, when the task names one.
        let french = task(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Ça sonne bien ?", "language": "fr"}),
        )
        .await;
        assert!(!offered(&svc, &nobody, &french).await);
        assert!(offered(&svc, &near, &french).await);
        let any = task(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Nice?"}),
        )
        .await;
        assert!(offered(&svc, &nobody, &any).await);

        // Distance, for tasks tied to a place; an unknown position cannot be near.
        let place = json!({"lat": MONTREAL.0, "lng": MONTREAL.1, "radius_m": 5000});
        let door = task(
            &svc,
            &agent,
            json!({"kind": "field", "mission": "Photograph the door", "location": place}),
        )
        .await;
        assert!(offered(&svc, &near, &door).await);
        assert!(!offered(&svc, &far, &door).await);
        let located_fact = task(
            &svc,
            &agent,
            json!({"kind": "verify", "question": "Open?", "location": place}),
        )
        .await;
        assert!(!offered(&svc, &nobody, &located_fact).await);

        // Tier: a new worker's tier reaches $25 per human.
        let rich = task(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Worth it?", "budget": 40}),
        )
        .await;
        assert!(!offered(&svc, &nobody, &rich).await);

        // Blocked by the agent, then unblocked.
        svc.block_worker(&agent, nobody.as_str()).await.unwrap();
        assert!(!offered(&svc, &nobody, &any).await);
        svc.unblock_worker(&agent, nobody.as_str()).await.unwrap();
        assert!(offered(&svc, &nobody, &any).await);
        let unknown = svc
            .block_worker(&agent, "wkr_nosuchworker")
            .await
            .unwrap_err();
        assert!(matches!(unknown, ServiceError::NotFound(_)));

        // Already in the task: a worker never holds two slots of one task.
        let lease = svc.claim(&caller, &any).await.unwrap();
        assert!(
            !svc.offers(&caller)
                .await
                .unwrap()
                .iter()
                .any(|o| o.task_id.as_str() == any)
        );
        let twice = svc.claim(&caller, &any).await.unwrap_err();
        assert!(
            twice.to_string().contains(lease.assignment_id.as_str()),
            "{twice}"
        );
        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn the_nearest_tasks_come_first() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "100").await;
        let me = worker(&svc, Some(MONTREAL), vec![Capability::Field], &["en"]).await;
        let mut ids = Vec::new();
        for km in [30.0, 2.0, 10.0] {
            let place =
                json!({"lat": MONTREAL.0 + km / 111.195, "lng": MONTREAL.1, "radius_m": 50000});
            ids.push(
                task(
                    &svc,
                    &agent,
                    json!({"kind": "verify", "question": format!("{km} km?"), "location": place}),
                )
                .await,
            );
        }
        let anywhere = task(
            &svc,
            &agent,
            json!({"kind": "gut_check", "question": "Anywhere?"}),
        )
        .await;
        let feed: Vec<String> = svc
            .offers(&me)
            .await
            .unwrap()
            .iter()
            .map(|o| o.task_id.to_string())
            .collect();
        assert_eq!(
            feed,
            [ids[1].clone(), ids[2].clone(), ids[0].clone(), anywhere],
            "{}",
            db.name
        );
    }
}

/// The feed ranks every task a worker may take, however many there are: a partner's task comes
/// first even when it is tied to no place, then the nearest, and tasks out of reach take no
/// room, however many and however old.
#[tokio::test]
async fn the_feed_ranks_every_candidate_partners_first_then_nearest() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "10000").await;
        let (friend, _) = common::funded_agent(&svc, "100").await;
        let me = worker(&svc, Some(MONTREAL), vec![Capability::Field], &["en"]).await;
        // A result for the friend first, so that it may partner with me.
        let first = task(
            &svc,
            &friend,
            json!({"kind": "gut_check", "question": "First?"}),
        )
        .await;
        let lease = svc.claim(&me, &first).await.unwrap();
        svc.submit(&me, lease.assignment_id.as_str(), common::answer("yes"))
            .await
            .unwrap();
        svc.partner_add(&friend, me.as_str(), Some("Thank you"), None)
            .await
            .unwrap();

        // More than a thousand older tasks 60 km away with a 1 km radius: near enough to be
        // in the box around me, out of reach.
        let far = json!({"lat": MONTREAL.0 + 60.0 / 111.195, "lng": MONTREAL.1, "radius_m": 1000});
        for n in 0..1_050 {
            task(
                &svc,
                &agent,
                json!({"kind": "verify", "question": format!("Far {n}?"), "location": far}),
            )
            .await;
        }
        // More than a feed's worth within reach, each farther than the one before.
        let mut near = Vec::new();
        for n in 0..120 {
            let km = 0.1 + f64::from(n) * 0.05;
            let place =
                json!({"lat": MONTREAL.0 + km / 111.195, "lng": MONTREAL.1, "radius_m": 50000});
            near.push(
                task(
                    &svc,
                    &agent,
                    json!({"kind": "verify", "question": format!("Near {n}?"), "location": place}),
                )
                .await,
            );
        }
        let anywhere = json!({"kind": "gut_check", "question": "Anywhere?"});
        let stranger = task(&svc, &agent, anywhere.clone()).await;
        let partner = task(&svc, &friend, anywhere).await;

        let feed: Vec<String> = svc
            .offers(&me)
            .await
            .unwrap()
            .iter()
            .map(|o| o.task_id.to_string())
            .collect();
        assert_eq!(feed.len(), 50, "{}", db.name);
        assert_eq!(feed[0], partner, "{}: partners first", db.name);
        assert_eq!(feed[1..], near[..49], "{}: then the nearest", db.name);
        assert!(!feed.contains(&stranger), "{}", db.name);
    }
}
