//! Lifecycle throughput: how many tasks per second go create → claim → submit → approve.
//!
//! ```text
//! humanping-bench --backend sqlite --clients 4 --tasks 2000
//! humanping-bench --database-url postgres://… --clients 8 --tasks 4000
//! ```
//!
//! Each client is one agent with its own worker, looping over the whole lifecycle through the
//! service layer (the code every transport shares), against a fresh database. Prints the
//! figures; asserts nothing about time.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use humanping::domain::ids::{AgentId, WorkerId};
use humanping::service::{Config, HumanPing};

#[path = "bench/mod.rs"]
mod bench;

#[derive(Parser)]
#[command(about = "Measure HumanPing's task lifecycle throughput")]
struct Args {
    /// Database to run on. Without it, a fresh SQLite file in a temporary folder.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Concurrent clients, each an agent with its own worker.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Tasks in all, split across the clients.
    #[arg(long, default_value_t = 2_000)]
    tasks: usize,
    /// Instead of whole lifecycles, run each step for every task in turn (all creates, then
    /// all claims, all results, all approvals) and time each step. On PostgreSQL with the
    /// `pg_stat_statements` extension loaded, also count the statements each step sends.
    #[arg(long)]
    steps: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = std::env::temp_dir().join(format!("humanping-bench-{}", std::process::id()));
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", scratch.join("bench.db").display()),
    };
    let service = HumanPing::open(&url, Config::default())
        .await
        .context("opening the database")?;

    let per_client = args.tasks.div_ceil(args.clients.max(1));
    let pairs = bench::lifecycle_pairs(&service, args.clients, per_client).await?;

    if args.steps {
        let count = per_client * pairs.len();
        run_steps(&service, pairs, per_client).await?;
        let report = service.verify_ledger().await?;
        println!("lifecycles: {count}");
        println!("books_balanced: {}", report.is_balanced());
        service.store().close().await;
        let _ = std::fs::remove_dir_all(&scratch);
        anyhow::ensure!(
            report.is_balanced(),
            "the books do not balance: {:?}",
            report.problems
        );
        return Ok(());
    }

    let (latencies, elapsed) = bench::run_lifecycles(&service, pairs, per_client).await?;

    let report = service.verify_ledger().await?;
    let backend = format!("{:?}", service.store().backend()).to_lowercase();
    println!("backend: {backend}");
    println!("clients: {}", args.clients);
    println!("lifecycles: {}", latencies.len());
    println!("elapsed_s: {:.2}", elapsed.as_secs_f64());
    println!(
        "lifecycles_per_s: {:.1}",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    let p50 = bench::percentile_ms(&latencies, 0.50);
    println!("lifecycle_p50_ms: {p50:.2}");
    let p99 = bench::percentile_ms(&latencies, 0.99);
    println!("lifecycle_p99_ms: {p99:.2}");
    println!("books_balanced: {}", report.is_balanced());
    service.store().close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    anyhow::ensure!(
        report.is_balanced(),
        "the books do not balance: {:?}",
        report.problems
    );
    Ok(())
}

/// One step of the lifecycle, run for every client's tasks at once.
#[derive(Clone, Copy, Debug)]
enum Step {
    Create,
    Claim,
    Submit,
    Approve,
}

/// Runs each step for every task, step after step; prints each step's rate and, on
/// PostgreSQL with `pg_stat_statements`, the statements (each one a round trip) it sent.
async fn run_steps(
    service: &HumanPing,
    pairs: Vec<(AgentId, WorkerId)>,
    per_client: usize,
) -> anyhow::Result<()> {
    let counting = statement_count(service).await.is_some();
    // Per client: its tasks, then its claims.
    let mut tasks: Vec<Vec<String>> = vec![Vec::new(); pairs.len()];
    let mut claims: Vec<Vec<String>> = vec![Vec::new(); pairs.len()];
    for step in [Step::Create, Step::Claim, Step::Submit, Step::Approve] {
        if counting {
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(service.store().pool())
                .await?;
        }
        let started = Instant::now();
        let mut running = Vec::new();
        for (n, (agent, worker)) in pairs.iter().enumerate() {
            let (service, agent, worker) = (service.clone(), agent.clone(), worker.clone());
            let (mine, my_claims) = (tasks[n].clone(), claims[n].clone());
            running.push(tokio::spawn(async move {
                let mut made = Vec::new();
                for i in 0..per_client {
                    match step {
                        Step::Create => {
                            let draft = bench::lifecycle_task()?;
                            made.push(
                                service
                                    .create_task(&agent, draft)
                                    .await?
                                    .task_id
                                    .to_string(),
                            );
                        }
                        Step::Claim => {
                            let claim = service.claim(&worker, &mine[i]).await?;
                            made.push(claim.assignment_id.to_string());
                        }
                        Step::Submit => {
                            service.submit(&worker, &my_claims[i], bench::yes()).await?;
                        }
                        Step::Approve => {
                            service.approve(&agent, &mine[i], None).await?;
                        }
                    }
                }
                anyhow::Ok(made)
            }));
        }
        for (n, client) in running.into_iter().enumerate() {
            let made = client.await??;
            match step {
                Step::Create => tasks[n] = made,
                Step::Claim => claims[n] = made,
                _ => {}
            }
        }
        let elapsed = started.elapsed();
        let done = per_client * pairs.len();
        let name = format!("{step:?}").to_lowercase();
        println!(
            "step_{name}_per_s: {:.1}",
            done as f64 / elapsed.as_secs_f64()
        );
        if counting {
            let statements = statement_count(service).await.unwrap_or_default();
            println!(
                "step_{name}_statements_per_call: {:.2}",
                statements as f64 / done as f64
            );
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT query, CAST(calls AS BIGINT) FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC, query",
            )
            .fetch_all(service.store().pool())
            .await?;
            for (query, calls) in rows {
                let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
                let short: String = query.chars().take(110).collect();
                println!("  {:6.2}  {short}", calls as f64 / done as f64);
            }
        }
    }
    Ok(())
}

/// Statements run since the last reset, or `None` when `pg_stat_statements` is not there.
async fn statement_count(service: &HumanPing) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query NOT LIKE '%pg_stat_statements%'",
    )
    .fetch_one(service.store().pool())
    .await
    .ok()
}
