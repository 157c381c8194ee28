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
