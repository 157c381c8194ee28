//! How cost grows with the open tasks and workers: feed latency, claim throughput and lifecycle
//! throughput on a database holding many of both.
//!
//! ```text
//! humanping-bench-scale --tasks 100000 --workers 10000 [--database-url postgres://…]
//! ```
//!
//! Seeds open tasks (70% tied to a place within 50 km of a city centre, with radii from 1 to
//! 20 km; the rest anywhere) and workers spread over the same area, through the service layer;
//! then, on that database: times `offers` for a sample of workers; lets `--claimers` of the
//! workers race feed → claim until `--claims` claims are won; and runs `--lifecycles` whole
//! lifecycles (create → claim → submit → approve) from `--clients` agents at once. Prints the
//! figures; asserts nothing about time.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use humanping::domain::kind::Capability;
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::service::{Config, HumanPing, NewWorker};

#[path = "bench/mod.rs"]
mod bench;

#[derive(Parser)]
#[command(about = "Measure how fast a worker's feed is listed")]
struct Args {
    /// Database to run on. Without it, a fresh SQLite file in a temporary folder.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Open tasks to seed.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Workers to seed.
    #[arg(long, default_value_t = 1_000)]
    workers: usize,
    /// Feeds to time.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Concurrent clients, for seeding and for the lifecycles.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Workers racing to claim.
    #[arg(long, default_value_t = 200)]
    claimers: usize,
    /// Claims to win in the race (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    claims: u64,
    /// Whole lifecycles to run (0 skips them).
    #[arg(long, default_value_t = 2_000)]
    lifecycles: usize,
}

/// A small deterministic generator, so runs seed the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CENTRE: (f64, f64) = (45.5088, -73.5540);

fn around(rng: &mut Lcg, km: f64) -> (f64, f64) {
    let dlat = (rng.next() * 2.0 - 1.0) * km / 111.195;
    let dlng = (rng.next() * 2.0 - 1.0) * km / (111.195 * CENTRE.0.to_radians().cos());
    (CENTRE.0 + dlat, CENTRE.1 + dlng)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch =
        std::env::temp_dir().join(format!("humanping-bench-scale-{}", std::process::id()));
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", scratch.join("bench.db").display()),
    };
    let service = HumanPing::open(&url, Config::default())
        .await
        .context("opening the database")?;

    let seeding = Instant::now();
    let (agent, _) = service.create_agent("feed-bench").await?;
    service
        .credit(agent.as_str(), Cents::new(100_000_000))
        .await?;
    let per_client = args.tasks.div_ceil(args.clients.max(1));
    let mut seeders = Vec::new();
    for client in 0..args.clients {
        let (service, agent) = (service.clone(), agent.clone());
        seeders.push(tokio::spawn(async move {
            let mut rng = Lcg(client as u64 + 1);
            for n in 0..per_client {
                let body = if rng.next() < 0.7 {
                    let (lat, lng) = around(&mut rng, 50.0);
                    let radius = 1_000 + (rng.next() * 19_000.0) as u32;
                    serde_json::json!({"kind": "verify", "question": format!("Open? {n}"), "budget": "5.00",
                        "location": {"lat": lat, "lng": lng, "radius_m": radius}, "deadline": "30d"})
                } else {
                    serde_json::json!({"kind": "gut_check", "question": format!("Nice? {n}"), "deadline": "30d"})
                };
                let draft = serde_json::from_value::<CreateTaskBody>(body)?.into_draft();
                service.create_task(&agent, draft).await?;
            }
            anyhow::Ok(())
        }));
    }
    for seeder in seeders {
        seeder.await??;
    }
    let mut rng = Lcg(99);
    let mut workers = Vec::with_capacity(args.workers);
    for n in 0..args.workers {
        let (lat, lng) = around(&mut rng, 50.0);
        let worker = NewWorker {
            name: format!("worker-{n}"),
            lat: Some(lat),
            lng: Some(lng),
            capabilities: vec![Capability::Field],
            languages: vec!["en".into()],
        };
        workers.push(service.create_worker(worker).await?.0);
    }
    let seeded = seeding.elapsed();

    let mut latencies = Vec::with_capacity(args.samples);
    let mut offered = 0;
    for n in 0..args.samples {
        let worker = &workers[(n * 7919) % workers.len()];
        let t0 = Instant::now();
        offered += service.offers(worker).await?.len();
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    println!(
        "backend: {}",
        format!("{:?}", service.store().backend()).to_lowercase()
    );
    println!("open_tasks: {}", per_client * args.clients);
    println!("workers: {}", args.workers);
    println!("seeding_s: {:.1}", seeded.as_secs_f64());
    println!("feeds_timed: {}", latencies.len());
    println!(
        "mean_offers_per_feed: {:.1}",
        offered as f64 / latencies.len() as f64
    );
    println!("feed_p50_ms: {:.2}", bench::percentile_ms(&latencies, 0.50));
    println!("feed_p99_ms: {:.2}", bench::percentile_ms(&latencies, 0.99));

    if args.claims > 0 {
        let claimers = workers.iter().take(args.claimers).cloned().collect();
        let race = bench::claim_race(&service, claimers, Some(args.claims)).await?;
        let won = race.latencies.len();
        println!("claimers: {}", args.claimers.min(workers.len()));
        println!("claims: {won}");
        println!("claims_lost_to_another_worker: {}", race.lost);
        println!(
            "claims_per_s: {:.1}",
            won as f64 / race.elapsed.as_secs_f64()
        );
        let p50 = bench::percentile_ms(&race.latencies, 0.50);
        println!("claim_p50_ms: {p50:.2}");
        let p99 = bench::percentile_ms(&race.latencies, 0.99);
        println!("claim_p99_ms: {p99:.2}");
    }
    if args.lifecycles > 0 {
        let per_client = args.lifecycles.div_ceil(args.clients.max(1));
        let pairs = bench::lifecycle_pairs(&service, args.clients, per_client).await?;
        let (done, elapsed) = bench::run_lifecycles(&service, pairs, per_client).await?;
        println!("lifecycle_clients: {}", args.clients);
        println!("lifecycles: {}", done.len());
        let rate = done.len() as f64 / elapsed.as_secs_f64();
        println!("lifecycles_per_s: {rate:.1}");
        println!("lifecycle_p50_ms: {:.2}", bench::percentile_ms(&done, 0.50));
        println!("lifecycle_p99_ms: {:.2}", bench::percentile_ms(&done, 0.99));
    }
    let report = service.verify_ledger().await?;
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
