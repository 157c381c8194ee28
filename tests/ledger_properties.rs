//! Property tests of the books: random sequences of create, claim, submit, approve, dispute,
//! cancel, credit and the passing of time keep every invariant after every step, on every
//! backend.
//!
//! After each step: the ledger verifies (debits equal credits, stored totals equal the
//! transfer log, no overdraft, ended tasks hold nothing); every agent's credited money equals
//! available + held + spent; what agents spent equals what workers earned plus the platform's
//! fees; and only the expected kinds of refusal occur (never an internal error).

mod common;

use std::time::Duration;

use humanping::domain::ids::{AgentId, TaskId, WorkerId};
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::service::{Clock, HumanPing, ServiceError, SubmissionInput};
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum Op {
    Create {
        agent: usize,
        cents: i64,
        deadline_hours: u8,
    },
    Claim {
        task: usize,
        worker: usize,
    },
    Submit {
        task: usize,
        worker: usize,
    },
    Approve {
        task: usize,
    },
    Dispute {
        task: usize,
    },
    Cancel {
        task: usize,
    },
    Credit {
        agent: usize,
        cents: i64,
    },
    Advance {
        minutes: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 50..4_000i64, 1..48u8)
            .prop_map(|(agent, cents, deadline_hours)| Op::Create { agent, cents, deadline_hours }),
        3 => (0..8usize, 0..3usize).prop_map(|(task, worker)| Op::Claim { task, worker }),
        3 => (0..8usize, 0..3usize).prop_map(|(task, worker)| Op::Submit { task, worker }),
        2 => (0..8usize).prop_map(|task| Op::Approve { task }),
        1 => (0..8usize).prop_map(|task| Op::Dispute { task }),
        1 => (0..8usize).prop_map(|task| Op::Cancel { task }),
        1 => (0..2usize, 1..5_000i64).prop_map(|(agent, cents)| Op::Credit { agent, cents }),
        2 => prop_oneof![1..90u32, 100..3_000u32, 4_000..6_000u32].prop_map(|minutes| Op::Advance { minutes }),
    ]
}

struct World {
    svc: HumanPing,
    clock: Clock,
    agents: Vec<AgentId>,
    credited: Vec<i64>,
    workers: Vec<WorkerId>,
    tasks: Vec<(usize, TaskId)>,
}

impl World {
    async fn new(db: &common::TestDb) -> World {
        let clock = Clock::manual(1_800_000_000_000);
        let svc = common::service_with_clock(db, clock.clone()).await;
        let mut agents = Vec::new();
        for _ in 0..2 {
            agents.push(common::funded_agent(&svc, "60").await.0);
        }
        let mut workers = Vec::new();
        for n in 0..3 {
            workers.push(common::worker(&svc, &format!("w{n}")).await.0);
        }
        World {
            svc,
            clock,
            agents,
            credited: vec![6_000, 6_000],
            workers,
            tasks: Vec::new(),
        }
    }

    fn task(&self, index: usize) -> Option<(AgentId, String)> {
        self.tasks
            .get(index)
            .map(|(agent, id)| (self.agents[*agent].clone(), id.to_string()))
    }

    async fn apply(&mut self, op: &Op) -> Result<(), ServiceError> {
        let svc = &self.svc;
        match op.clone() {
            Op::Create {
                agent,
                cents,
                deadline_hours,
            } => {
                let body = json!({
                    "kind": "verify", "question": "Still open?",
                    "budget": Cents::new(cents).to_string(), "deadline": format!("{deadline_hours}h"),
                });
                let draft = serde_json::from_value::<CreateTaskBody>(body)
                    .unwrap()
                    .into_draft();
                let view = svc.create_task(&self.agents[agent], draft).await?;
                self.tasks.push((agent, view.task_id));
            }
            Op::Claim { task, worker } => {
                if let Some((_, id)) = self.task(task) {
                    svc.claim(&self.workers[worker], &id).await?;
                }
            }
            Op::Submit { task, worker } => {
                if let Some((_, id)) = self.task(task) {
                    let mine = svc.assignments(&self.workers[worker]).await?;
                    if let Some(a) = mine.iter().find(|a| a.task_id.as_str() == id) {
                        let answer = SubmissionInput {
                            answer: Some("yes".into()),
                            structured: None,
                            notes: None,
                            proof: None,
                        };
                        svc.submit(&self.workers[worker], a.assignment_id.as_str(), answer)
                            .await?;
                    }
                }
            }
            Op::Approve { task } => {
                if let Some((agent, id)) = self.task(task) {
                    svc.approve(&agent, &id, None).await?;
                }
            }
            Op::Dispute { task } => {
                if let Some((agent, id)) = self.task(task) {
                    svc.dispute(&agent, &id, "wrong", None).await?;
                }
            }
            Op::Cancel { task } => {
                if let Some((agent, id)) = self.task(task) {
                    svc.cancel(&agent, &id, None).await?;
                }
            }
            Op::Credit { agent, cents } => {
                svc.credit(self.agents[agent].as_str(), Cents::new(cents))
                    .await?;
                self.credited[agent] += cents;
            }
            Op::Advance { minutes } => {
                self.clock
                    .advance(Duration::from_secs(u64::from(minutes) * 60));
                svc.sweep().await?;
            }
        }
        Ok(())
    }

    async fn check(&self, step: usize, op: &Op) {
        let report = self.svc.verify_ledger().await.unwrap();
        assert!(
            report.is_balanced(),
            "after step {step} {op:?}: {:#?}",
            report.problems
        );
        let mut spent = 0;
        for (agent, credited) in self.agents.iter().zip(&self.credited) {
            let b = self.svc.balance(agent).await.unwrap();
            assert!(
                b.available_cents >= 0 && b.held_cents >= 0,
                "step {step}: {b:?}"
            );
            assert_eq!(
                b.available_cents + b.held_cents + b.spent_cents,
                *credited,
                "step {step} {op:?}"
            );
            spent += b.spent_cents;
        }
        let mut earned = 0;
        for worker in &self.workers {
            earned += self.svc.worker_profile(worker).await.unwrap().earned_cents;
        }
        let fees: i64 =
            sqlx::query_scalar("SELECT credits_posted FROM accounts WHERE id = 'platform:fees'")
                .fetch_one(self.svc.store().pool())
                .await
                .unwrap();
        assert_eq!(
            spent,
            earned + fees,
            "step {step} {op:?}: spent = earned + fees"
        );
    }
}

fn run(ops: Vec<Op>, postgres: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = if postgres {
            match common::postgres_database().await {
                Some(db) => db,
                None => return,
            }
        } else {
            common::sqlite_database()
        };
        let mut world = World::new(&db).await;
        for (step, op) in ops.iter().enumerate() {
            match world.apply(op).await {
                Ok(())
                | Err(ServiceError::Conflict(_))
                | Err(ServiceError::InsufficientFunds { .. })
                | Err(ServiceError::NotFound(_))
                // A worker's tier may not reach the task's budget.
                | Err(ServiceError::Forbidden(_)) => {}
                Err(other) => panic!("step {step} {op:?}: unexpected refusal {other}"),
            }
            world.check(step, op).await;
        }
        world.svc.store().close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_lifecycles_keep_the_books_on_sqlite(ops in prop::collection::vec(op(), 1..40)) {
        run(ops, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_lifecycles_keep_the_books_on_postgres(ops in prop::collection::vec(op(), 1..40)) {
        run(ops, true);
    }
}
