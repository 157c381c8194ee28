//! The `humanping` command: the MCP server, the HTTP server, and the operator's tools.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use humanping::domain::kind::Capability;
use humanping::domain::money::Cents;
use humanping::service::{Config, HumanPing, NewWorker};

/// HumanPing: the marketplace where AI agents hire humans.
#[derive(Parser)]
#[command(name = "humanping", version, about)]
struct Cli {
    /// Database URL: `sqlite://PATH` (or a plain path) or `postgres://…`. Defaults to a SQLite
    /// file in your data folder.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Platform fee in basis points of each approved budget (1000 = 10%).
    #[arg(long, env = "HUMANPING_FEE_BPS", global = true, default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=5000))]
    fee_bps: u32,

    /// Hours an agent has to dispute a result before it is approved automatically (1 to 8760).
    #[arg(
        long,
        env = "HUMANPING_REVIEW_HOURS",
        global = true,
        default_value_t = 72,
        value_parser = clap::value_parser!(u64).range(1..=8760)
    )]
    review_hours: u64,

    /// Let webhooks go to loopback and private addresses (development only).
    #[arg(long, env = "HUMANPING_ALLOW_PRIVATE_WEBHOOKS", global = true)]
    allow_private_webhooks: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (what Claude Desktop and Cursor start). Acts as the agent whose
    /// key is in HUMANPING_API_KEY.
    Mcp {
        /// The agent's API key.
        #[arg(long, env = "HUMANPING_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Use a remote HumanPing instead of a local database: its Streamable HTTP endpoint,
        /// e.g. https://humanping.example.com/mcp. Stdio is then relayed there.
        #[arg(long, env = "HUMANPING_URL")]
        server: Option<String>,
        /// Folder where `humanping serve` stores proof photos, read when the agent reads a
        /// photo resource. Defaults to `proofs/` beside the SQLite file (or in the data folder
        /// with PostgreSQL).
        #[arg(long, env = "HUMANPING_PROOF_DIR")]
        proof_dir: Option<PathBuf>,
    },
    /// Serve the REST API for agents and workers over HTTP.
    Serve {
        /// Address to listen on. Binds loopback unless told otherwise.
        #[arg(long, env = "HUMANPING_BIND", default_value = "127.0.0.1:8787")]
        bind: SocketAddr,
        /// Folder for proof photos. Defaults to `proofs/` beside the SQLite file (or in the
        /// data folder with PostgreSQL).
        #[arg(long, env = "HUMANPING_PROOF_DIR")]
        proof_dir: Option<PathBuf>,
        /// Mark the worker app's session cookie Secure (set when served over https).
        #[arg(long, env = "HUMANPING_SECURE_COOKIES")]
        secure_cookies: bool,
        /// A Host the server answers besides loopback and the bind address (`host` or
        /// `host:port`); repeatable. Others are refused (DNS rebinding protection).
        #[arg(
            long = "allowed-host",
            env = "HUMANPING_ALLOWED_HOSTS",
            value_delimiter = ','
        )]
        allowed_hosts: Vec<String>,
        /// A browser Origin allowed to call the server besides its own and loopback pages
        /// (`https://app.example.com`, port optional); repeatable.
        #[arg(
            long = "allowed-origin",
            env = "HUMANPING_ALLOWED_ORIGINS",
            value_delimiter = ','
        )]
        allowed_origins: Vec<String>,
    },
    /// Bring the database schema up to date (also done at every start).
    Migrate,
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage workers.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Credit test funds to an agent (test mode only).
    Credit {
        /// The agent's id (agt_…) or API key.
        #[arg(long)]
        agent: String,
        /// Dollars to credit, e.g. 50.00.
        #[arg(long, value_parser = parse_dollars)]
        amount: Cents,
    },
    /// Inspect the books.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Settle everything time has made due (lapsed leases, deadlines, review windows) now.
    Sweep,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent and print its API key (shown once).
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Create a worker and print their API key (shown once).
    Create(WorkerArgs),
    /// Print a one-time sign-in link for the worker web app (valid 24 hours, used once).
    Invite {
        /// The worker's id (wkr_…).
        #[arg(long)]
        worker: String,
        /// Where the web app is served, as workers reach it.
        #[arg(
            long,
            env = "HUMANPING_PUBLIC_URL",
            default_value = "http://127.0.0.1:8787"
        )]
        base_url: String,
    },
}

#[derive(Args)]
struct WorkerArgs {
    #[arg(long)]
    name: String,
    /// Latitude of the worker's usual position.
    #[arg(long, requires = "lng", allow_hyphen_values = true)]
    lat: Option<f64>,
    /// Longitude of the worker's usual position.
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lng: Option<f64>,
    /// What the worker can do besides answering: voice (phone calls), field (going on site).
    #[arg(long, value_delimiter = ',')]
    capabilities: Vec<Capability>,
    /// Languages spoken, as codes: en,fr.
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check every invariant of the books; exits non-zero if any fails.
    Verify,
}

fn parse_dollars(text: &str) -> Result<Cents, String> {
    Cents::parse_dollars(text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr: in `mcp` mode stdout carries JSON-RPC only.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "humanping=info".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Mcp {
        api_key,
        server: Some(server),
        ..
    } = &cli.command
    {
        humanping::mcp::bridge::bridge_stdio(server, api_key.clone()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let url = match cli.database_url.clone() {
        Some(url) => url,
        None => default_database()?.display().to_string(),
    };
    if let (Command::Ledger(_), Some(file)) = (&cli.command, humanping::store::sqlite_file(&url)) {
        anyhow::ensure!(
            file.exists(),
            "no database at {}; nothing to verify",
            file.display()
        );
    }
    let config = Config {
        fee_bps: cli.fee_bps,
        review_window: std::time::Duration::from_secs(cli.review_hours * 3600),
        allow_private_webhooks: cli.allow_private_webhooks,
        ..Config::default()
    };
    let service = HumanPing::open(&url, config).await?;
    tracing::debug!(database = %humanping::store::redact(&url), "database ready");

    match cli.command {
        Command::Mcp {
            api_key, proof_dir, ..
        } => {
            humanping::web::configure(humanping::web::WebOptions {
                proof_dir,
                secure_cookies: false,
            });
            let sweeper = Arc::new(service.clone()).spawn_sweeper();
            let deliverer = Arc::new(service.clone()).spawn_webhook_deliverer();
            let served = humanping::mcp::serve_stdio(service, api_key).await;
            sweeper.abort();
            deliverer.abort();
            served?;
        }
        Command::Serve {
            bind,
            proof_dir,
            secure_cookies,
            allowed_hosts,
            allowed_origins,
        } => {
            humanping::web::configure(humanping::web::WebOptions {
                proof_dir,
                secure_cookies,
            });
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("could not listen on {bind}"))?;
            let sweeper = Arc::new(service.clone()).spawn_sweeper();
            let deliverer = Arc::new(service.clone()).spawn_webhook_deliverer();
            let policy =
                humanping::http::NetworkPolicy::new(bind, &allowed_hosts, &allowed_origins);
            let served = humanping::http::serve(service, listener, policy).await;
            sweeper.abort();
            deliverer.abort();
            served?;
        }
        Command::Migrate => {
            service.store().migrate().await?;
            eprintln!("schema is up to date");
        }
        Command::Agent(AgentCommand::Create { name }) => {
            let (id, key) = service.create_agent(&name).await?;
            println!("agent_id: {id}");
            println!("api_key: {key}");
            println!("webhook_secret: {}", service.webhook_secret(&id).await?);
            eprintln!("Keep this key now: it is stored only as a hash and cannot be shown again.");
        }
        Command::Worker(WorkerCommand::Create(args)) => {
            let worker = NewWorker {
                name: args.name,
                lat: args.lat,
                lng: args.lng,
                capabilities: args.capabilities,
                languages: args.languages,
            };
            let (id, key) = service.create_worker(worker).await?;
            println!("worker_id: {id}");
            println!("api_key: {key}");
            eprintln!("Keep this key now: it is stored only as a hash and cannot be shown again.");
        }
        Command::Worker(WorkerCommand::Invite { worker, base_url }) => {
            let (id, token) = service.create_sign_in_link(&worker).await?;
            println!("worker_id: {id}");
            println!(
                "sign_in_link: {}/app/sign-in/link?token={token}",
                base_url.trim_end_matches('/')
            );
            eprintln!("The link works once, within 24 hours. Send it to the worker privately.");
        }
        Command::Credit { agent, amount } => {
            let balance = service.credit(&agent, amount).await?;
            println!("agent_id: {}", balance.agent_id);
            println!("available: {}", balance.available);
            println!("held: {}", balance.held);
        }
        Command::Ledger(LedgerCommand::Verify) => {
            let report = service.verify_ledger().await?;
            println!(
                "accounts: {}, transfers: {}, tasks: {}, posted: {} debits = {} credits",
                report.accounts,
                report.transfers,
                report.tasks,
                report.posted_debits,
                report.posted_credits
            );
            if !report.is_balanced() {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                return Ok(ExitCode::FAILURE);
            }
            println!("the books balance");
        }
        Command::Sweep => {
            let report = service.sweep().await?;
            println!("settled: {}", report.settled);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded default: `humanping.db` in the user's data folder.
fn default_database() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("io", "HumanPing", "humanping")
        .context("could not find a data folder for the embedded database; pass --database-url")?;
    Ok(dirs.data_dir().join("humanping.db"))
}
