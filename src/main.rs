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
    /// file in your data folder. DATABASE_URL is read when HUMANPING_DATABASE_URL is not set.
    #[arg(
        long,
        env = "HUMANPING_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
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

    /// The share of a worker's feed made of honeypot tasks, 0 to 0.5 (once an operator has
    /// added honeypots).
    #[arg(long, env = "HUMANPING_HONEYPOT_RATE", global = true, default_value_t = 0.05,
          value_parser = parse_share)]
    honeypot_rate: f64,

    /// Minutes an agent's partners see its new tasks alone (0 to 1440); a task may ask otherwise
    /// with `first_look_minutes`.
    #[arg(long, env = "HUMANPING_PARTNER_FIRST_LOOK_MINUTES", global = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=1440))]
    partner_first_look_minutes: u64,

    /// Sightengine API user: with the secret, proof photos are checked for AI generation.
    #[arg(long, env = "HUMANPING_SIGHTENGINE_USER", global = true)]
    sightengine_user: Option<String>,

    /// Sightengine API secret (prefer the environment variable).
    #[arg(
        long,
        env = "HUMANPING_SIGHTENGINE_SECRET",
        global = true,
        hide_env_values = true
    )]
    sightengine_secret: Option<String>,

    /// Sightengine's API base URL.
    #[arg(
        long,
        env = "HUMANPING_SIGHTENGINE_URL",
        global = true,
        default_value = "https://api.sightengine.com"
    )]
    sightengine_url: String,

    /// Sightengine score (0 to 1) from which a proof photo is flagged as AI-generated.
    #[arg(long, env = "HUMANPING_AI_IMAGE_THRESHOLD", global = true, default_value_t = 0.8,
          value_parser = parse_share)]
    ai_image_threshold: f64,

    /// Run the sandbox: a database of its own (`sandbox.db` in your data folder unless
    /// --database-url is given), a test agent with test money, and simulated workers who answer
    /// every task. `humanping mcp` runs it when no API key and no database are configured.
    #[arg(long, env = "HUMANPING_SANDBOX", global = true)]
    sandbox: bool,

    /// How long the sandbox's simulated workers take from claim to answer: seconds (5, 0.5) or
    /// 500ms, 5s, 2m.
    #[arg(long, env = "HUMANPING_SANDBOX_DELAY", global = true, default_value = "5",
          value_parser = humanping::sandbox::parse_delay)]
    sandbox_delay: std::time::Duration,

    /// How log lines are written to stderr: `text` for people, `json` (one object per line)
    /// for log collectors.
    #[arg(
        long,
        env = "HUMANPING_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

    /// Which log lines to write, as a tracing filter (`info`, `humanping=debug,sqlx=warn`).
    /// Without it, RUST_LOG is read; without that, `humanping=info`.
    #[arg(long, env = "HUMANPING_LOG", global = true)]
    log_filter: Option<String>,

    /// Stripe secret API key: with it agents top up through Stripe Checkout and workers are
    /// paid through Stripe Connect; without it the server runs in test mode.
    #[arg(
        long,
        env = "HUMANPING_STRIPE_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    stripe_secret_key: Option<String>,

    /// The signing secret (`whsec_…`) of the Stripe webhook endpoint that points at
    /// /v1/stripe/webhook.
    #[arg(
        long,
        env = "HUMANPING_STRIPE_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    stripe_webhook_secret: Option<String>,

    /// Another Stripe API address, such as a local fake for tests; Stripe's own by default.
    #[arg(long, env = "HUMANPING_STRIPE_API_BASE", global = true)]
    stripe_api_base: Option<String>,

    /// Days approved earnings wait before they may be paid out (0 to 365).
    #[arg(long, env = "HUMANPING_PAYOUT_HOLD_DAYS", global = true, default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(0..=365))]
    payout_hold_days: u64,

    /// Minutes between payout runs in `serve` when Stripe is configured (1 to 10080).
    #[arg(long, env = "HUMANPING_PAYOUT_EVERY_MINUTES", global = true, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=10080))]
    payout_every_minutes: u64,

    /// Where agents and workers reach this server, for the pages Stripe sends them back to.
    #[arg(
        long,
        env = "HUMANPING_PUBLIC_URL",
        global = true,
        default_value = "http://127.0.0.1:8787"
    )]
    public_url: String,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Plain lines for people.
    Text,
    /// One JSON object per line, with the span fields (method, path, caller, task).
    Json,
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
        /// Seconds that requests in flight get to finish after SIGTERM or ctrl-c (0 to 3600);
        /// waits for a result end at once, and what is still open afterwards is closed.
        #[arg(
            long,
            env = "HUMANPING_SHUTDOWN_GRACE",
            default_value_t = 30,
            value_parser = clap::value_parser!(u64).range(0..=3600)
        )]
        shutdown_grace: u64,
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
        #[arg(long, env = "HUMANPING_CREDIT_AGENT", hide_env_values = true)]
        agent: String,
        /// Dollars to credit, e.g. 50.00.
        #[arg(long, env = "HUMANPING_CREDIT_AMOUNT", value_parser = parse_dollars)]
        amount: Cents,
    },
    /// Inspect the books.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Settle everything time has made due (lapsed leases, deadlines, review windows) now.
    Sweep,
    /// Operator keys, for the routes under /v1/operator.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Honeypots: tasks with a known answer, mixed into workers' feeds to test them.
    #[command(subcommand)]
    Honeypot(HoneypotCommand),
    /// Worker payouts through Stripe Connect.
    #[command(subcommand)]
    Payouts(PayoutsCommand),
    /// Agents' spend policies: daily and per-task limits, operator approval above a threshold.
    #[command(subcommand)]
    Spend(SpendCommand),
}

#[derive(Subcommand)]
enum PayoutsCommand {
    /// Pay every connected worker what is payable now (also done on a schedule by `serve`);
    /// payouts a crash left pending are asked about again first, under the same key.
    Run,
}

#[derive(Subcommand)]
enum SpendCommand {
    /// Set an agent's spend policy; a limit left out is no limit.
    Set {
        /// The agent's id (agt_…) or API key.
        #[arg(long, env = "HUMANPING_SPEND_AGENT", hide_env_values = true)]
        agent: String,
        /// Dollars tasks may commit in any 24 hours.
        #[arg(long, env = "HUMANPING_SPEND_DAILY_LIMIT", value_parser = parse_dollars)]
        daily_limit: Option<Cents>,
        /// Dollars one task may commit.
        #[arg(long, env = "HUMANPING_SPEND_PER_TASK_LIMIT", value_parser = parse_dollars)]
        per_task_limit: Option<Cents>,
        /// Dollars above which a task needs an operator's approval.
        #[arg(
            long,
            env = "HUMANPING_SPEND_APPROVAL_THRESHOLD",
            value_parser = parse_dollars
        )]
        approval_threshold: Option<Cents>,
    },
    /// Approve one task above an agent's approval threshold, by the code its refusal named.
    Approve {
        /// The agent's id (agt_…) or API key.
        #[arg(long, env = "HUMANPING_SPEND_AGENT", hide_env_values = true)]
        agent: String,
        /// The 16-digit code from the refusal.
        #[arg(long, env = "HUMANPING_SPEND_CODE")]
        code: String,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator API key and print it (shown once).
    Key,
}

#[derive(Subcommand)]
enum HoneypotCommand {
    /// Add a honeypot: a task as POST /v1/tasks takes it, and the answer a right result gives.
    Add {
        /// The task as JSON, or @FILE to read it from a file, e.g.
        /// '{"kind": "verify", "question": "Is the sky blue?", "response": "yes_no"}'.
        #[arg(long, env = "HUMANPING_HONEYPOT_TASK")]
        task: String,
        /// The right answer, in the task's response format ("yes", one of the options, 4).
        #[arg(long, env = "HUMANPING_HONEYPOT_EXPECTED")]
        expected: String,
    },
    /// List the honeypots with how their tasks were answered.
    List,
    /// Make no new tasks from a honeypot.
    Retire {
        /// The honeypot's id (hpt_…).
        #[arg(long, env = "HUMANPING_HONEYPOT_ID")]
        id: String,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent and print its API key (shown once).
    Create {
        /// A name for the agent, shown to the operator.
        #[arg(long, env = "HUMANPING_AGENT_NAME")]
        name: String,
        /// The agent's contact email; a worker account with the same one is flagged as tied.
        #[arg(long, env = "HUMANPING_AGENT_EMAIL")]
        email: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Create a worker and print their API key (shown once).
    Create(WorkerArgs),
    /// Print a one-time sign-in link for the worker web app (valid 24 hours, used once).
    Invite {
        /// The worker's id (wkr_…).
        #[arg(long, env = "HUMANPING_WORKER_ID")]
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
    /// The worker's name, shown to the operator.
    #[arg(long, env = "HUMANPING_WORKER_NAME")]
    name: String,
    /// Latitude of the worker's usual position.
    #[arg(
        long,
        env = "HUMANPING_WORKER_LAT",
        requires = "lng",
        allow_hyphen_values = true
    )]
    lat: Option<f64>,
    /// Longitude of the worker's usual position.
    #[arg(
        long,
        env = "HUMANPING_WORKER_LNG",
        requires = "lat",
        allow_hyphen_values = true
    )]
    lng: Option<f64>,
    /// What the worker can do besides answering: voice (phone calls), field (going on site).
    #[arg(long, env = "HUMANPING_WORKER_CAPABILITIES", value_delimiter = ',')]
    capabilities: Vec<Capability>,
    /// Languages spoken, as codes: en,fr.
    #[arg(long, env = "HUMANPING_WORKER_LANGUAGES", value_delimiter = ',')]
    languages: Vec<String>,
    /// The worker's contact email; one shared with an agent flags results for that agent.
    #[arg(long, env = "HUMANPING_WORKER_EMAIL")]
    email: Option<String>,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check every invariant of the books; exits non-zero if any fails.
    Verify,
}

/// Sends log lines to stderr, in `format`, filtered by `filter` (else RUST_LOG, else
/// `humanping=info`). Logs never go to stdout: in `mcp` mode it carries JSON-RPC only.
fn init_logging(format: LogFormat, filter: Option<&str>) {
    let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        Some(filter) => tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|error| {
            eprintln!(
                "warning: --log-filter {filter:?} is not a valid filter ({error}); using info"
            );
            "humanping=info".into()
        }),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "humanping=info".into()),
    };
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Reads a share from 0 to 1, e.g. 0.05.
fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a number from 0 to 1, e.g. 0.05")),
    }
}

fn parse_dollars(text: &str) -> Result<Cents, String> {
    Cents::parse_dollars(text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    init_logging(cli.log_format, cli.log_filter.as_deref());
    // The variable most tools read, when HumanPing's own is not set.
    if cli.database_url.is_none() {
        cli.database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty());
    }
    match run(cli).await {
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
    // With nothing configured, `humanping mcp` is a first try: the sandbox answers it.
    let sandbox = cli.sandbox
        || matches!(&cli.command, Command::Mcp { api_key, .. }
            if api_key.as_deref().is_none_or(|k| k.trim().is_empty()) && cli.database_url.is_none());
    let url = match cli.database_url.clone() {
        Some(url) => url,
        None if sandbox => humanping::sandbox::default_database()?
            .display()
            .to_string(),
        None => default_database()?.display().to_string(),
    };
    if let (Command::Ledger(_), Some(file)) = (&cli.command, humanping::store::sqlite_file(&url)) {
        anyhow::ensure!(
            file.exists(),
            "no database at {}; nothing to verify",
            file.display()
        );
    }
    let payments = payments_config(&cli)?;
    let live = payments
        .stripe
        .as_ref()
        .is_some_and(|stripe| stripe.is_live());
    let config = Config {
        fee_bps: cli.fee_bps,
        review_window: std::time::Duration::from_secs(cli.review_hours * 3600),
        allow_private_webhooks: cli.allow_private_webhooks,
        honeypot_rate: cli.honeypot_rate.min(0.5),
        partner_first_look: std::time::Duration::from_secs(cli.partner_first_look_minutes * 60),
        sightengine: sightengine(&cli),
        live,
        payments,
        ..Config::default()
    };
    let config = if sandbox {
        humanping::sandbox::config(config)
    } else {
        config
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
            let simulated = match sandbox {
                true => Some(
                    humanping::sandbox::start(
                        &service,
                        &url,
                        cli.sandbox_delay,
                        api_key.as_deref(),
                    )
                    .await?,
                ),
                false => None,
            };
            let api_key = simulated.as_ref().map(|s| s.api_key.clone()).or(api_key);
            let sweeper = Arc::new(service.clone()).spawn_sweeper();
            let deliverer = Arc::new(service.clone()).spawn_webhook_deliverer();
            let served = humanping::mcp::serve_stdio(service, api_key).await;
            drop(simulated);
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
            shutdown_grace,
        } => {
            humanping::web::configure(humanping::web::WebOptions {
                proof_dir,
                secure_cookies,
            });
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("could not listen on {bind}"))?;
            let simulated = match sandbox {
                true => {
                    Some(humanping::sandbox::start(&service, &url, cli.sandbox_delay, None).await?)
                }
                false => None,
            };
            if let Some(running) = &simulated {
                eprintln!(
                    "HumanPing sandbox: simulated workers answer every task {:?} after the claim.\n\
                     Sandbox agent key (test money only): {}\n(kept in {})",
                    cli.sandbox_delay,
                    running.api_key,
                    running.sandbox.keys_file.display()
                );
            }
            let sweeper = Arc::new(service.clone()).spawn_sweeper();
            let deliverer = Arc::new(service.clone()).spawn_webhook_deliverer();
            let payouts = service
                .config()
                .payments
                .stripe
                .is_some()
                .then(|| Arc::new(service.clone()).spawn_payouts());
            let policy =
                humanping::http::NetworkPolicy::new(bind, &allowed_hosts, &allowed_origins);
            let grace = std::time::Duration::from_secs(shutdown_grace);
            let served = humanping::http::serve_with_grace(service, listener, policy, grace).await;
            drop(simulated);
            sweeper.abort();
            deliverer.abort();
            if let Some(payouts) = payouts {
                payouts.abort();
            }
            served?;
        }
        Command::Migrate => {
            service.store().migrate().await?;
            eprintln!("schema is up to date");
        }
        Command::Agent(AgentCommand::Create { name, email }) => {
            if let Some(email) = &email {
                humanping::service::normalise_email(email)?;
            }
            let (id, key) = service.create_agent(&name).await?;
            if email.is_some() {
                service.set_email(id.as_str(), email.as_deref()).await?;
            }
            println!("agent_id: {id}");
            println!("api_key: {key}");
            println!("webhook_secret: {}", service.webhook_secret(&id).await?);
            eprintln!("Keep this key now: it is stored only as a hash and cannot be shown again.");
        }
        Command::Worker(WorkerCommand::Create(args)) => {
            if let Some(email) = &args.email {
                humanping::service::normalise_email(email)?;
            }
            let email = args.email.clone();
            let worker = NewWorker {
                name: args.name,
                lat: args.lat,
                lng: args.lng,
                capabilities: args.capabilities,
                languages: args.languages,
            };
            let (id, key) = service.create_worker(worker).await?;
            if email.is_some() {
                service.set_email(id.as_str(), email.as_deref()).await?;
            }
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
            let report = service.verify_books().await?;
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
        Command::Payouts(PayoutsCommand::Run) => {
            let report = service.run_payouts().await?;
            println!(
                "paid: {} ({} cents), failed: {}, pending: {}",
                report.paid, report.paid_cents, report.failed, report.pending
            );
        }
        Command::Spend(SpendCommand::Set {
            agent,
            daily_limit,
            per_task_limit,
            approval_threshold,
        }) => {
            let policy = humanping::payments::policy::SpendPolicy {
                daily_limit_cents: daily_limit.map(Cents::get),
                per_task_limit_cents: per_task_limit.map(Cents::get),
                approval_threshold_cents: approval_threshold.map(Cents::get),
            };
            let (agent, _) = service.set_spend_policy(&agent, policy).await?;
            println!("agent_id: {agent}");
            println!("spend policy set");
        }
        Command::Spend(SpendCommand::Approve { agent, code }) => {
            let agent = service.approve_spend(&agent, &code).await?;
            println!("agent_id: {agent}");
            println!("approved: the agent may now send the same request again");
        }
        Command::Sweep => {
            let report = service.sweep().await?;
            println!("settled: {}", report.settled);
        }
        Command::Operator(OperatorCommand::Key) => {
            let key = service.create_operator_key().await?;
            println!("api_key: {key}");
            eprintln!("Keep this key now: it is stored only as a hash and cannot be shown again.");
        }
        Command::Honeypot(HoneypotCommand::Add { task, expected }) => {
            let text = match task.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("could not read the task from {path}"))?,
                None => task,
            };
            let request: serde_json::Value = serde_json::from_str(&text)
                .context("--task is not JSON; give the task as POST /v1/tasks takes it")?;
            let honeypot = service.add_honeypot(&request, &expected).await?;
            println!("honeypot_id: {}", honeypot.honeypot_id);
            println!("kind: {}", honeypot.kind);
            println!("expected: {}", honeypot.expected);
        }
        Command::Honeypot(HoneypotCommand::List) => {
            for h in service.honeypots().await? {
                println!(
                    "{}\t{}\t{}\tshown {}\tright {}\twrong {}\texpected {}",
                    h.honeypot_id,
                    h.kind,
                    if h.active { "active" } else { "retired" },
                    h.shown,
                    h.right,
                    h.wrong,
                    h.expected
                );
            }
        }
        Command::Honeypot(HoneypotCommand::Retire { id }) => {
            let honeypot = service.retire_honeypot(&id).await?;
            println!("honeypot_id: {} retired", honeypot.honeypot_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The AI-image detector's settings, when both Sightengine credentials are given.
fn sightengine(cli: &Cli) -> Option<humanping::service::SightengineConfig> {
    let user = cli.sightengine_user.clone().filter(|u| !u.is_empty())?;
    let secret = cli.sightengine_secret.clone().filter(|s| !s.is_empty())?;
    let mut config = humanping::service::SightengineConfig::new(user, secret);
    config.base_url = cli.sightengine_url.clone();
    config.threshold = cli.ai_image_threshold;
    Some(config)
}

/// The embedded default: `humanping.db` in the user's data folder.
fn default_database() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("io", "HumanPing", "humanping")
        .context("could not find a data folder for the embedded database; pass --database-url")?;
    Ok(dirs.data_dir().join("humanping.db"))
}

/// Real money from the Stripe flags: test mode without a secret key.
fn payments_config(cli: &Cli) -> anyhow::Result<humanping::payments::PaymentsConfig> {
    let mut payments = humanping::payments::PaymentsConfig {
        payout_hold: std::time::Duration::from_secs(cli.payout_hold_days * 24 * 3600),
        payout_every: std::time::Duration::from_secs(cli.payout_every_minutes * 60),
        public_url: cli.public_url.clone(),
        ..Default::default()
    };
    if let Some(secret_key) = cli
        .stripe_secret_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        let webhook_secret = cli.stripe_webhook_secret.clone().context(
            "--stripe-secret-key needs --stripe-webhook-secret too (HUMANPING_STRIPE_WEBHOOK_SECRET): \
             the signing secret of the webhook endpoint, whsec_…",
        )?;
        let stripe = humanping::payments::StripeApi::new(humanping::payments::StripeSettings {
            secret_key: secret_key.to_owned(),
            webhook_secret,
            api_base: cli.stripe_api_base.clone(),
        })?;
        payments.stripe = Some(Arc::new(stripe));
    }
    Ok(payments)
}
