//! Claim throughput: many workers at once reading their feed and claiming what it offers.
//!
//! ```text
//! humanping-bench-claim --database-url postgres://… --claimers 200 --tasks 2000
//! ```
//!
//! One agent posts `--tasks` open one-slot tasks; `--claimers` workers then each loop on
//! feed → claim (a random one of the first offers, as people do) until the feed is empty.
//! Prints claims per second, the share of claims lost to another worker, and latency
//! percentiles; asserts nothing about time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::service::{Config, HumanPing, NewWorker, ServiceError};

#[derive(Parser)]
#[command(about = "Measure HumanPing's claim throughput under many concurrent workers")]
struct Args {
    /// Database to run on. Without it, a fresh SQLite file in a temporary folder.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Workers claiming at once.
    #[arg(long, default_value_t = 200)]
    claimers: usize,
    /// Open tasks to claim.
    #[arg(long, default_value_t = 2_000)]
    tasks: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch =
        std::env::temp_dir().join(format!("humanping-bench-claim-{}", std::process::id()));
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", scratch.join("bench.db").display()),
    };
    let service = HumanPing::open(&url, Config::default())
        .await
        .context("opening the database")?;

    let (agent, _) = service.create_agent("bench-agent").await?;
    service
        .credit(agent.as_str(), Cents::new(args.tasks as i64 * 100 + 100))
        .await?;
    for _ in 0..args.tasks {
        let body = serde_json::json!({"kind": "gut_check", "question": "Bench?", "budget": "1.00"});
        let draft = serde_json::from_value::<CreateTaskBody>(body)?.into_draft();
        service.create_task(&agent, draft).await?;
    }
    let mut workers = Vec::new();
    for n in 0..args.claimers {
        let worker = NewWorker {
            name: format!("bench-worker-{n}"),
            lat: None,
            lng: None,
            capabilities: Vec::new(),
            languages: vec!["en".into()],
        };
        workers.push(service.create_worker(worker).await?.0);
    }

    let lost = Arc::new(AtomicU64::new(0));
    let feeds = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let running: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(n, worker)| {
            let (service, lost, feeds) = (service.clone(), lost.clone(), feeds.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut pick = n;
                loop {
                    let offers = service.offers(&worker).await?;
                    feeds.fetch_add(1, Ordering::Relaxed);
                    if offers.is_empty() {
                        break;
                    }
                    pick = pick.wrapping_mul(31).wrapping_add(7);
                    let offer = &offers[pick % offers.len().min(10)];
                    let t0 = Instant::now();
                    match service.claim(&worker, offer.task_id.as_str()).await {
                        Ok(_) => latencies.push(t0.elapsed()),
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
    let elapsed = started.elapsed();

    let report = service.verify_ledger().await?;
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let backend = format!("{:?}", service.store().backend()).to_lowercase();
    let lost = lost.load(Ordering::Relaxed);
    println!("backend: {backend}");
    println!("claimers: {}", args.claimers);
    println!("claims: {}", latencies.len());
    println!("claims_lost_to_another_worker: {lost}");
    println!("feeds_read: {}", feeds.load(Ordering::Relaxed));
    println!("elapsed_s: {:.2}", elapsed.as_secs_f64());
    println!(
        "claims_per_s: {:.1}",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!("claim_p50_ms: {:.2}", ms(pick(0.50)));
    println!("claim_p99_ms: {:.2}", ms(pick(0.99)));
    println!("books_balanced: {}", report.is_balanced());
    service.store().close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    anyhow::ensure!(
        latencies.len() == args.tasks,
        "{} of {} tasks were claimed",
        latencies.len(),
        args.tasks
    );
    anyhow::ensure!(
        report.is_balanced(),
        "the books do not balance: {:?}",
        report.problems
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
