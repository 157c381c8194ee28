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

use anyhow::Context;
use clap::Parser;
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::service::{Config, HumanPing, NewWorker};

#[path = "bench/mod.rs"]
mod bench;

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

    let race = bench::claim_race(&service, workers, None).await?;
    let latencies = race.latencies;

    let report = service.verify_ledger().await?;
    let backend = format!("{:?}", service.store().backend()).to_lowercase();
    println!("backend: {backend}");
    println!("claimers: {}", args.claimers);
    println!("claims: {}", latencies.len());
    println!("claims_lost_to_another_worker: {}", race.lost);
    println!("feeds_read: {}", race.feeds);
    println!("elapsed_s: {:.2}", race.elapsed.as_secs_f64());
    println!(
        "claims_per_s: {:.1}",
        latencies.len() as f64 / race.elapsed.as_secs_f64()
    );
    println!(
        "claim_p50_ms: {:.2}",
        bench::percentile_ms(&latencies, 0.50)
    );
    println!(
        "claim_p99_ms: {:.2}",
        bench::percentile_ms(&latencies, 0.99)
    );
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
