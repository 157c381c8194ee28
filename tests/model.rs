//! Model-based test of the marketplace: a small in-memory model of balances, earnings, task and
//! claim states runs next to the real service on each backend. Random sequences of operations
//! (credit, create, claim, release, submit, approve, dispute, cancel, time passing on the
//! manual clock, and batches of concurrent claims and holds) are applied to both; after every
//! step each outcome (success or the kind of refusal) and every balance, earning and status must
//! agree, and the ledger must verify.
//!
//! `HUMANPING_MODEL_CASES` sets how many sequences run per backend (default 12; CI-sized).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::money::Cents;
use humanping::domain::status::{AssignmentStatus, TaskStatus};
use humanping::input::CreateTaskBody;
use humanping::service::{Clock, HumanPing, ServiceError, SubmissionInput};
use proptest::prelude::*;
use serde_json::json;

const AGENTS: usize = 2;
const WORKERS: usize = 3;
/// Funds each agent starts with.
const START_CENTS: i64 = 2_000;
/// The platform fee of the default configuration, in basis points.
const FEE_BPS: i64 = 1_000;
/// A verification's lease, and the least time a result plausibly takes, in milliseconds.
const LEASE_MS: i64 = 60 * 60 * 1000;
const PLAUSIBLE_MS: i64 = 30 * 1000;
/// The default review window before a result is approved automatically.
const REVIEW_MS: i64 = 72 * 60 * 60 * 1000;

#[derive(Clone, Debug)]
enum Op {
    Credit {
        agent: usize,
        cents: i64,
    },
    Create {
        agent: usize,
        cents: i64,
        deadline_hours: u8,
    },
    Claim {
        task: usize,
        worker: usize,
    },
    /// The newest claim on the task is given back by its worker.
    Release {
        task: usize,
    },
    /// The newest claim on the task is answered by its worker.
    Submit {
        task: usize,
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
    Advance {
        minutes: u32,
    },
    /// Every worker claims the same task at once.
    ClaimRace {
        task: usize,
    },
    /// One agent places several holds at once.
    HoldRace {
        agent: usize,
        cents: Vec<i64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Task numbers are taken modulo the tasks there are.
    let task = 0..64usize;
    let worker = 0..WORKERS;
    prop_oneof![
        1 => (0..AGENTS, 1..3_000i64).prop_map(|(agent, cents)| Op::Credit { agent, cents }),
        4 => (0..AGENTS, 50..1_000i64, 1..30u8)
            .prop_map(|(agent, cents, deadline_hours)| Op::Create { agent, cents, deadline_hours }),
        4 => (task.clone(), worker).prop_map(|(task, worker)| Op::Claim { task, worker }),
        1 => task.clone().prop_map(|task| Op::Release { task }),
        4 => task.clone().prop_map(|task| Op::Submit { task }),
        2 => task.clone().prop_map(|task| Op::Approve { task }),
        1 => task.clone().prop_map(|task| Op::Dispute { task }),
        1 => task.clone().prop_map(|task| Op::Cancel { task }),
        3 => prop_oneof![3 => 1..10u32, 2 => 30..120u32, 1 => 600..2_000u32, 1 => 4_000..6_000u32]
            .prop_map(|minutes| Op::Advance { minutes }),
        1 => task.prop_map(|task| Op::ClaimRace { task }),
        1 => (0..AGENTS, prop::collection::vec(50..1_000i64, 2..6))
            .prop_map(|(agent, cents)| Op::HoldRace { agent, cents }),
    ]
}

/// How an operation ended, as far as the model can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Conflict,
    Insufficient,
}

fn outcome_of<T>(result: &Result<T, ServiceError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(ServiceError::Conflict(_)) => Outcome::Conflict,
        Err(ServiceError::InsufficientFunds { .. }) => Outcome::Insufficient,
        Err(other) => panic!("a refusal the model never expects: {other:?}"),
    }
}

#[derive(Clone, Debug, Default)]
struct AgentModel {
    available: i64,
    held: i64,
    spent: i64,
}

#[derive(Clone, Debug)]
struct ClaimModel {
    worker: usize,
    /// The real assignment's id.
    id: String,
    status: AssignmentStatus,
    claimed_at: i64,
    lease_until: i64,
}

#[derive(Clone, Debug)]
struct TaskModel {
    agent: usize,
    budget: i64,
    /// The real task's id.
    id: String,
    status: TaskStatus,
    deadline: i64,
    review_at: Option<i64>,
    /// A result came in sooner than plausible: it is never approved automatically.
    flagged: bool,
    claims: Vec<ClaimModel>,
}

/// What the service should hold.
#[derive(Clone, Debug)]
struct Model {
    now: i64,
    agents: Vec<AgentModel>,
    earned: Vec<i64>,
    tasks: Vec<TaskModel>,
}

impl Model {
    fn new(now: i64) -> Model {
        Model {
            now,
            agents: vec![
                AgentModel {
                    available: START_CENTS,
                    ..AgentModel::default()
                };
                AGENTS
            ],
            earned: vec![0; WORKERS],
            tasks: Vec::new(),
        }
    }

    /// The task a generated number names, if there is any task yet.
    fn pick(&self, number: usize) -> Option<usize> {
        (!self.tasks.is_empty()).then(|| number % self.tasks.len())
    }

    fn refund(&mut self, t: usize) {
        let (agent, budget) = (self.tasks[t].agent, self.tasks[t].budget);
        self.agents[agent].held -= budget;
        self.agents[agent].available += budget;
    }

    fn pay(&mut self, t: usize) {
        let (agent, budget) = (self.tasks[t].agent, self.tasks[t].budget);
        let fee = budget * FEE_BPS / 10_000;
        self.agents[agent].held -= budget;
        self.agents[agent].spent += budget;
        let task = &mut self.tasks[t];
        task.status = TaskStatus::Approved;
        for claim in &mut task.claims {
            if claim.status == AssignmentStatus::Submitted {
                claim.status = AssignmentStatus::Approved;
                self.earned[claim.worker] += budget - fee;
            }
        }
    }

    /// The task's status from its claims and deadline; an unfinished task past its deadline
    /// expires and gives its hold back.
    fn refresh(&mut self, t: usize) {
        let now = self.now;
        let task = &mut self.tasks[t];
        if task.status.is_final() {
            return;
        }
        let claimed = task
            .claims
            .iter()
            .filter(|c| c.status == AssignmentStatus::Claimed)
            .count();
        let submitted = task
            .claims
            .iter()
            .filter(|c| c.status == AssignmentStatus::Submitted)
            .count();
        let status = if now >= task.deadline && submitted == 0 {
            for claim in &mut task.claims {
                if claim.status == AssignmentStatus::Claimed {
                    claim.status = AssignmentStatus::TaskEnded;
                }
            }
            TaskStatus::Expired
        } else if submitted > 0 {
            TaskStatus::Completed
        } else if claimed > 0 {
            TaskStatus::InProgress
        } else {
            TaskStatus::Open
        };
        if status == TaskStatus::Completed && task.status != TaskStatus::Completed {
            task.review_at = Some(now + REVIEW_MS);
        }
        task.status = status;
        if status == TaskStatus::Expired {
            self.refund(t);
        }
    }

    /// What time has made due on the task: lapsed leases, the deadline, the review window.
    fn settle(&mut self, t: usize) {
        let now = self.now;
        let task = &mut self.tasks[t];
        if task.status.is_final() {
            return;
        }
        for claim in &mut task.claims {
            if claim.status == AssignmentStatus::Claimed
                && claim.lease_until <= now
                && claim.lease_until < task.deadline
            {
                claim.status = AssignmentStatus::LeaseExpired;
            }
        }
        self.refresh(t);
        let task = &self.tasks[t];
        if task.status == TaskStatus::Completed
            && task.review_at.is_some_and(|r| r <= now)
            && !task.flagged
        {
            self.pay(t);
        }
    }

    fn settle_all(&mut self) {
        for t in 0..self.tasks.len() {
            self.settle(t);
        }
    }

    fn create(&mut self, agent: usize, cents: i64) -> Outcome {
        if self.agents[agent].available < cents {
            return Outcome::Insufficient;
        }
        self.agents[agent].available -= cents;
        self.agents[agent].held += cents;
        Outcome::Done
    }

    fn claim(&self, t: usize, worker: usize) -> Outcome {
        let task = &self.tasks[t];
        let holds = task.claims.iter().any(|c| {
            c.worker == worker
                && matches!(
                    c.status,
                    AssignmentStatus::Claimed
                        | AssignmentStatus::Submitted
                        | AssignmentStatus::Approved
                        | AssignmentStatus::Rejected
                )
        });
        if holds || task.status != TaskStatus::Open {
            Outcome::Conflict
        } else {
            Outcome::Done
        }
    }

    fn apply_claim(&mut self, t: usize, worker: usize, id: String) {
        let now = self.now;
        let task = &mut self.tasks[t];
        task.claims.push(ClaimModel {
            worker,
            id,
            status: AssignmentStatus::Claimed,
            claimed_at: now,
            lease_until: (now + LEASE_MS).min(task.deadline),
        });
        self.refresh(t);
    }
}

struct Real {
    svc: HumanPing,
    clock: Clock,
    agents: Vec<AgentId>,
    workers: Vec<WorkerId>,
}

/// Creates a verification of `cents` due in `deadline_hours`; returns its id.
async fn create_task(
    svc: &HumanPing,
    agent: &AgentId,
    cents: i64,
    deadline_hours: u8,
) -> Result<String, ServiceError> {
    let body = json!({
        "kind": "verification",
        "question": "Is the bakery open?",
        "budget": Cents::new(cents).to_string(),
        "deadline": format!("{deadline_hours}h"),
    });
    let draft = serde_json::from_value::<CreateTaskBody>(body)
        .unwrap()
        .into_draft();
    let view = svc.create_task(agent, draft).await?;
    Ok(view.task_id.to_string())
}

fn answer() -> SubmissionInput {
    SubmissionInput {
        answer: Some("yes".into()),
        structured: None,
        notes: None,
        proof: None,
    }
}

/// Applies `op` to both; panics where they disagree.
async fn step(real: &Real, model: &mut Model, op: &Op) {
    let svc = &real.svc;
    match op.clone() {
        Op::Credit { agent, cents } => {
            svc.credit(real.agents[agent].as_str(), Cents::new(cents))
                .await
                .unwrap();
            model.agents[agent].available += cents;
        }
        Op::Create {
            agent,
            cents,
            deadline_hours,
        } => {
            let result = create_task(svc, &real.agents[agent], cents, deadline_hours).await;
            assert_eq!(outcome_of(&result), model.create(agent, cents), "{op:?}");
            if let Ok(id) = result {
                model.tasks.push(TaskModel {
                    agent,
                    budget: cents,
                    id,
                    status: TaskStatus::Open,
                    deadline: model.now + i64::from(deadline_hours) * 3_600_000,
                    review_at: None,
                    flagged: false,
                    claims: Vec::new(),
                });
            }
        }
        Op::Claim { task, worker } => {
            let Some(t) = model.pick(task) else {
                return;
            };
            let result = svc.claim(&real.workers[worker], &model.tasks[t].id).await;
            assert_eq!(outcome_of(&result), model.claim(t, worker), "{op:?}");
            if let Ok(view) = result {
                model.apply_claim(t, worker, view.assignment_id.to_string());
            }
        }
        Op::Release { task } => {
            let Some(t) = model.pick(task) else {
                return;
            };
            let Some(c) = model.tasks[t].claims.len().checked_sub(1) else {
                return;
            };
            let worker = model.tasks[t].claims[c].worker;
            let id = model.tasks[t].claims[c].id.clone();
            let result = svc.release_assignment(&real.workers[worker], &id).await;
            let expected = if model.tasks[t].claims[c].status == AssignmentStatus::Claimed {
                Outcome::Done
            } else {
                Outcome::Conflict
            };
            assert_eq!(outcome_of(&result), expected, "{op:?}");
            if result.is_ok() {
                model.tasks[t].claims[c].status = AssignmentStatus::Abandoned;
                model.refresh(t);
            }
        }
        Op::Submit { task } => {
            let Some(t) = model.pick(task) else {
                return;
            };
            let Some(c) = model.tasks[t].claims.len().checked_sub(1) else {
                return;
            };
            let worker = model.tasks[t].claims[c].worker;
            let id = model.tasks[t].claims[c].id.clone();
            let result = svc.submit(&real.workers[worker], &id, answer()).await;
            // Sending the same result again is a harmless retry.
            let expected = match model.tasks[t].claims[c].status {
                AssignmentStatus::Claimed
                | AssignmentStatus::Submitted
                | AssignmentStatus::Approved
                | AssignmentStatus::Rejected => Outcome::Done,
                _ => Outcome::Conflict,
            };
            assert_eq!(outcome_of(&result), expected, "{op:?}");
            let claim = &mut model.tasks[t].claims[c];
            if claim.status == AssignmentStatus::Claimed {
                claim.status = AssignmentStatus::Submitted;
                if model.now - claim.claimed_at < PLAUSIBLE_MS {
                    model.tasks[t].flagged = true;
                }
                model.refresh(t);
            }
        }
        Op::Approve { task } | Op::Dispute { task } | Op::Cancel { task } => {
            let Some(t) = model.pick(task) else {
                return;
            };
            let agent = &real.agents[model.tasks[t].agent];
            let id = model.tasks[t].id.clone();
            let status = model.tasks[t].status;
            let (result, expected) = match op {
                Op::Approve { .. } => (
                    outcome_of(&svc.approve(agent, &id, None).await),
                    status == TaskStatus::Completed,
                ),
                Op::Dispute { .. } => (
                    outcome_of(&svc.dispute(agent, &id, "wrong shop", None).await),
                    status == TaskStatus::Completed,
                ),
                _ => (
                    outcome_of(&svc.cancel(agent, &id, None).await),
                    status == TaskStatus::Open,
                ),
            };
            let expected = if expected {
                Outcome::Done
            } else {
                Outcome::Conflict
            };
            assert_eq!(result, expected, "{op:?} on a task {status:?}");
            if result == Outcome::Done {
                match op {
                    Op::Approve { .. } => model.pay(t),
                    Op::Dispute { .. } => {
                        model.refund(t);
                        let task = &mut model.tasks[t];
                        task.status = TaskStatus::Refunded;
                        for claim in &mut task.claims {
                            if claim.status == AssignmentStatus::Submitted {
                                claim.status = AssignmentStatus::Rejected;
                            }
                        }
                    }
                    _ => {
                        model.refund(t);
                        model.tasks[t].status = TaskStatus::Cancelled;
                    }
                }
            }
        }
        Op::Advance { minutes } => {
            let by = Duration::from_secs(u64::from(minutes) * 60);
            real.clock.advance(by);
            model.now += by.as_millis() as i64;
            svc.sweep().await.unwrap();
            model.settle_all();
        }
        Op::ClaimRace { task } => {
            let Some(t) = model.pick(task) else {
                return;
            };
            let id = model.tasks[t].id.clone();
            let mut racers = Vec::new();
            for worker in &real.workers {
                let (svc, worker, id) = (svc.clone(), worker.clone(), id.clone());
                racers.push(tokio::spawn(async move { svc.claim(&worker, &id).await }));
            }
            let mut winners = Vec::new();
            for (worker, racer) in racers.into_iter().enumerate() {
                let result = racer.await.unwrap();
                let outcome = outcome_of(&result);
                // Alone, this worker would have had this answer; in a race it may also lose.
                let alone = model.claim(t, worker);
                assert!(
                    outcome == alone || (alone == Outcome::Done && outcome == Outcome::Conflict),
                    "{op:?}: worker {worker} got {outcome:?}, alone it would get {alone:?}"
                );
                if let Ok(view) = result {
                    winners.push((worker, view.assignment_id.to_string()));
                }
            }
            let any_could = (0..WORKERS).any(|w| model.claim(t, w) == Outcome::Done);
            assert_eq!(
                winners.len(),
                usize::from(any_could),
                "{op:?}: one slot, so exactly one winner when anyone may claim"
            );
            for (worker, assignment) in winners {
                model.apply_claim(t, worker, assignment);
            }
        }
        Op::HoldRace { agent, cents } => {
            let mut racers = Vec::new();
            for &amount in &cents {
                let (svc, agent) = (svc.clone(), real.agents[agent].clone());
                racers.push(tokio::spawn(async move {
                    create_task(&svc, &agent, amount, 5).await
                }));
            }
            let before = model.agents[agent].available;
            let mut taken = 0;
            let mut refused = Vec::new();
            for (amount, racer) in cents.iter().zip(racers) {
                let result = racer.await.unwrap();
                match outcome_of(&result) {
                    Outcome::Done => {
                        taken += amount;
                        model.create(agent, *amount);
                        model.tasks.push(TaskModel {
                            agent,
                            budget: *amount,
                            id: result.unwrap(),
                            status: TaskStatus::Open,
                            deadline: model.now + 5 * 3_600_000,
                            review_at: None,
                            flagged: false,
                            claims: Vec::new(),
                        });
                    }
                    Outcome::Insufficient => refused.push(*amount),
                    Outcome::Conflict => panic!("{op:?}: a hold refused as a conflict"),
                }
            }
            // In some order, each hold either fit or did not fit in what was left.
            assert!(taken <= before, "{op:?}: held {taken} of {before}");
            for amount in refused {
                assert!(
                    amount > before - taken,
                    "{op:?}: a hold of {amount} was refused though {} was left",
                    before - taken
                );
            }
        }
    }
}

/// Every balance, earning and status the model knows, read back from the service.
async fn compare(real: &Real, model: &Model, step: usize, op: &Op) {
    let svc = &real.svc;
    let report = svc.verify_ledger().await.unwrap();
    assert!(
        report.is_balanced(),
        "step {step} {op:?}: the books do not verify: {:#?}",
        report.problems
    );
    for (agent, expected) in real.agents.iter().zip(&model.agents) {
        let b = svc.balance(agent).await.unwrap();
        assert_eq!(
            (b.available_cents, b.held_cents, b.spent_cents),
            (expected.available, expected.held, expected.spent),
            "step {step} {op:?}: agent {agent} (available, held, spent)"
        );
    }
    let mut claims: HashMap<String, AssignmentStatus> = HashMap::new();
    for (worker, earned) in real.workers.iter().zip(&model.earned) {
        let profile = svc.worker_profile(worker).await.unwrap();
        assert_eq!(
            profile.earned_cents, *earned,
            "step {step} {op:?}: worker {worker} earnings"
        );
        for assignment in svc.assignments(worker).await.unwrap() {
            claims.insert(assignment.assignment_id.to_string(), assignment.status);
        }
    }
    for (t, task) in model.tasks.iter().enumerate() {
        let view = svc
            .get_task(&real.agents[task.agent], &task.id)
            .await
            .unwrap();
        assert_eq!(
            view.status, task.status,
            "step {step} {op:?}: status of task #{t}"
        );
        for claim in &task.claims {
            assert_eq!(
                claims.get(&claim.id),
                Some(&claim.status),
                "step {step} {op:?}: claim of worker #{} on task #{t}",
                claim.worker
            );
        }
    }
}

async fn run_on(db: &common::TestDb, ops: &[Op]) {
    let start = 1_800_000_000_000;
    let clock = Clock::manual(start);
    let svc = common::service_with_clock(db, clock.clone()).await;
    let mut agents = Vec::new();
    for _ in 0..AGENTS {
        let (id, _) = svc.create_agent("agent").await.unwrap();
        svc.credit(id.as_str(), Cents::new(START_CENTS))
            .await
            .unwrap();
        agents.push(id);
    }
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        workers.push(common::worker(&svc, &format!("w{n}")).await.0);
    }
    let real = Real {
        svc,
        clock,
        agents,
        workers,
    };
    let mut model = Model::new(start);
    for (number, op) in ops.iter().enumerate() {
        step(&real, &mut model, op).await;
        compare(&real, &model, number, op).await;
    }
    let mut ended: HashMap<String, usize> = HashMap::new();
    for task in &model.tasks {
        *ended.entry(task.status.as_str().to_owned()).or_default() += 1;
    }
    eprintln!(
        "{}: {} steps, tasks by status {ended:?}",
        db.name,
        ops.len()
    );
    real.svc.store().close().await;
}

fn cases() -> u32 {
    std::env::var("HUMANPING_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_service_behaves_as_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for db in common::databases().await {
                run_on(&db, &ops).await;
            }
        });
    }
}

/// Settling two tasks of one agent, answered by one worker, at the same moment (one approved,
/// one disputed) must not fail: each takes the agent's, the escrows' and the worker's rows, and
/// on PostgreSQL taking them in different orders would be a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_and_a_dispute_at_once_both_succeed() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "500").await;
        let worker = common::worker(&svc, "w").await.0;
        let mut failures = Vec::new();
        for round in 0..30 {
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let task = create_task(&svc, &agent, 100, 5).await.unwrap();
                let claim = svc.claim(&worker, &task).await.unwrap();
                svc.submit(&worker, claim.assignment_id.as_str(), answer())
                    .await
                    .unwrap();
                tasks.push(task);
            }
            let (approve, dispute) = {
                let (a, b) = (svc.clone(), svc.clone());
                let (agent_a, agent_b) = (agent.clone(), agent.clone());
                let (first, second) = (tasks[0].clone(), tasks[1].clone());
                tokio::join!(
                    tokio::spawn(async move { a.approve(&agent_a, &first, None).await }),
                    tokio::spawn(async move { b.dispute(&agent_b, &second, "wrong", None).await }),
                )
            };
            for result in [approve.unwrap().map(|_| ()), dispute.unwrap().map(|_| ())] {
                if let Err(error) = result {
                    failures.push(format!("{} round {round}: {error:?}", db.name));
                }
            }
        }
        common::assert_books_balanced(&svc).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
