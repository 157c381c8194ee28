//! What the benchmark binaries share: the lifecycle loop, the claim race, and percentiles.
//! Each binary includes this folder with `#[path]`; it is not a binary of its own.

#![allow(dead_code)] // each binary uses its own part of this module

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::service::{HumanPing, NewWorker, ServiceError, SubmissionInput};

/// `clients` agents, each credited for `per_client` one-dollar tasks, each with its own
/// worker (no place, so they take only tasks not tied to one).
pub async fn lifecycle_pairs(
    service: &HumanPing,
    clients: usize,
    per_client: usize,
) -> anyhow::Result<Vec<(AgentId, WorkerId)>> {
    let mut pairs = Vec::with_capacity(clients);
    for n in 0..clients {
        let (agent, _) = service.create_agent(&format!("bench-agent-{n}")).await?;
        service
            .credit(agent.as_str(), Cents::new(per_client as i64 * 100 + 100))
            .await?;
        let worker = NewWorker {
            name: format!("bench-worker-{n}"),
            lat: None,
            lng: None,
            capabilities: Vec::new(),
            languages: vec!["en".into()],
        };
        let (worker, _) = service.create_worker(worker).await?;
        pairs.push((agent, worker));
    }
    Ok(pairs)
}

/// The one-dollar gut check every lifecycle creates.
pub fn lifecycle_task() -> anyhow::Result<humanping::input::TaskDraft> {
    let body = serde_json::json!({"kind": "gut_check", "question": "Bench?", "budget": "1.00"});
    Ok(serde_json::from_value::<CreateTaskBody>(body)?.into_draft())
}

/// The answer every lifecycle sends.
pub fn yes() -> SubmissionInput {
    SubmissionInput {
        answer: Some("yes".into()),
        structured: None,
        notes: None,
        proof: None,
    }
}

/// Runs `per_client` whole lifecycles (create → claim → submit → approve) per pair, the pairs
/// at once; returns each lifecycle's duration and the time it all took.
pub async fn run_lifecycles(
    service: &HumanPing,
    pairs: Vec<(AgentId, WorkerId)>,
    per_client: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let clients: Vec<_> = pairs
        .into_iter()
        .map(|(agent, worker)| {
            let service = service.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t0 = Instant::now();
                    let task = service.create_task(&agent, lifecycle_task()?).await?;
                    let claim = service.claim(&worker, task.task_id.as_str()).await?;
                    service
                        .submit(&worker, claim.assignment_id.as_str(), yes())
                        .await?;
                    service.approve(&agent, task.task_id.as_str(), None).await?;
                    latencies.push(t0.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await??);
    }
    latencies.sort();
    Ok((latencies, started.elapsed()))
}

/// What a claim race measured.
pub struct ClaimRace {
    /// Each won claim's duration, sorted.
    pub latencies: Vec<Duration>,
    /// Claims refused because another worker took the slot first.
    pub lost: u64,
    pub feeds: u64,
    pub elapsed: Duration,
}

/// Every worker at once loops on feed → claim (a pseudo-random one of the first ten offers, as
/// people do) until its feed is empty or `limit` claims have been won in all.
pub async fn claim_race(
    service: &HumanPing,
    workers: Vec<WorkerId>,
    limit: Option<u64>,
) -> anyhow::Result<ClaimRace> {
    let lost = Arc::new(AtomicU64::new(0));
    let feeds = Arc::new(AtomicU64::new(0));
    let won = Arc::new(AtomicU64::new(0));
    let limit = limit.unwrap_or(u64::MAX);
    let started = Instant::now();
    let running: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(n, worker)| {
            let service = service.clone();
            let (lost, feeds, won) = (lost.clone(), feeds.clone(), won.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut pick = n;
                while won.load(Ordering::Relaxed) < limit {
                    let offers = service.offers(&worker).await?;
                    feeds.fetch_add(1, Ordering::Relaxed);
                    if offers.is_empty() {
                        break;
                    }
                    pick = pick.wrapping_mul(31).wrapping_add(7);
                    let offer = &offers[pick % offers.len().min(10)];
                    let t0 = Instant::now();
                    match service.claim(&worker, offer.task_id.as_str()).await {
                        Ok(_) => {
                            latencies.push(t0.elapsed());
                            won.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ServiceError::Conflict(_)) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in running {
        latencies.extend(worker.await??);
    }
    latencies.sort();
    Ok(ClaimRace {
        latencies,
        lost: lost.load(Ordering::Relaxed),
        feeds: feeds.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

/// The `q` quantile of sorted durations, in milliseconds (0 when there are none).
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
}
