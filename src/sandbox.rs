//! The sandbox: a marketplace of its own where simulated workers answer every task after a short
//! delay, so a first-time user sees a whole round trip (task, hold, claim, answer, approval)
//! without anyone on the other side.
//!
//! The sandbox lives in its own database (`sandbox.db` in the data folder unless a database URL
//! is given), never in the user's real one. It holds a test agent funded with test money, whose
//! key is kept in a keys file beside the database, and simulated workers. They act through the
//! same service calls as people do: they claim a task, wait, and submit an answer that fits the
//! task's response format, so escrow, fraud checks and settlement run for real. Every answer, its
//! notes and its proof say plainly that no person saw the task.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::domain::ids::{AgentId, WorkerId};
use crate::domain::kind::{Capability, TaskKind};
use crate::domain::money::Cents;
use crate::domain::response::ResponseFormat;
use crate::domain::trust::Tier;
use crate::input::ProofKind;
use crate::service::views::AssignmentView;
use crate::service::{Config, HumanPing, NewWorker, ProofInput, ServiceError, SubmissionInput};

/// How long a simulated worker takes from claim to answer unless told otherwise.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);
/// The longest delay accepted: longer would outlast every MCP client's patience.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// What every simulated worker's name starts with; it is also how they are found again.
pub const WORKER_NAME_PREFIX: &str = "Simulated worker";
/// Name of the sandbox's test agent.
const AGENT_NAME: &str = "sandbox agent";
/// The agent is topped up to this much test money at each start when it has less than half.
const FUNDING: Cents = Cents::new(10_000);
/// How often the simulated workers look for open tasks when no change woke them.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Languages the first simulated worker speaks; others get a worker of their own on demand.
const LANGUAGES: &[&str] = &[
    "en", "fr", "es", "de", "it", "pt", "nl", "sv", "pl", "ru", "tr", "ar", "hi", "ja", "ko", "zh",
];
/// Said with every simulated result, in its notes.
// Limitation: a result has no field of its own marking it simulated; its notes (this prefix),
// its proof text and a free-text answer say so.
pub const SIMULATED_NOTE: &str = "SIMULATED: this result comes from a simulated worker of the \
    HumanPing sandbox. No person saw or did this task, and the money moved is test money.";
/// Where a simulated photo "is": a reserved domain that never resolves, because no photo exists.
// Limitation: a simulated photo proof is this link only, not an uploaded image.
const PLACEHOLDER_PHOTO: &str = "https://sandbox.humanping.invalid/simulated-photo.jpg";

/// Reads a delay: seconds (`5`, `0.5`) or a number with a unit (`500ms`, `5s`, `2m`).
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let refused = || {
        format!(
            "sandbox delay {text:?} is not a duration; give seconds (5, 0.5) or a number with \
             a unit (500ms, 5s, 2m), at most one hour"
        )
    };
    let value: f64 = number.trim().parse().map_err(|_| refused())?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds < 0.0 || seconds > MAX_DELAY.as_secs_f64() {
        return Err(refused());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The sandbox's database when none is given: `sandbox.db` in the user's data folder, beside
/// (never instead of) the real `humanping.db`.
pub fn default_database() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("io", "HumanPing", "humanping")
        .context("could not find a data folder for the sandbox database; pass --database-url")?;
    Ok(dirs.data_dir().join("sandbox.db"))
}

/// The marketplace settings of a sandbox: those given, except that every worker may take
/// every budget, so simulated workers answer whatever an agent tries.
pub fn config(base: Config) -> Config {
    Config {
        tiers: vec![Tier {
            name: "sandbox",
            min_score: 0,
            max_budget_cents: i64::MAX,
        }],
        live: false,
        ..base
    }
}

/// A prepared sandbox: its funded test agent and where that agent's key is kept.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The sandbox's test agent.
    pub agent_id: AgentId,
    /// The agent's API key (test mode; valid in the sandbox database only).
    pub api_key: String,
    /// The file that keeps the key between starts, readable by the user only.
    pub keys_file: PathBuf,
}

/// Where the sandbox at `database_url` keeps its agent's key: beside a SQLite file, or in the
/// data folder (named after the URL) for PostgreSQL.
pub fn keys_file(database_url: &str) -> anyhow::Result<PathBuf> {
    if let Some(file) = crate::store::sqlite_file(database_url) {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sandbox".into());
        return Ok(file.with_file_name(format!("{stem}.keys.env")));
    }
    let dirs = directories::ProjectDirs::from("io", "HumanPing", "humanping")
        .context("could not find a data folder for the sandbox's keys file")?;
    let tag = &crate::auth::sha256_hex(database_url.as_bytes())[..12];
    Ok(dirs.data_dir().join(format!("sandbox-{tag}.keys.env")))
}

/// Makes the sandbox ready: its test agent (created on first use, its key kept in the keys
/// file), topped up with test money, and the first simulated worker.
pub async fn prepare(service: &HumanPing, database_url: &str) -> anyhow::Result<Sandbox> {
    let keys_file = keys_file(database_url)?;
    let kept = read_kept_key(&keys_file);
    let known = match &kept {
        Some(key) => service.authenticate_agent(key).await.ok(),
        None => None,
    };
    let (agent_id, api_key) = match (known, kept) {
        (Some(agent), Some(key)) => (agent, key),
        _ => {
            let (agent, key) = service.create_agent(AGENT_NAME).await?;
            write_keys_file(&keys_file, &agent, &key)?;
            tracing::info!(%agent, keys = %keys_file.display(), "sandbox agent created");
            (agent, key)
        }
    };

    let balance = service.balance(&agent_id).await?;
    if balance.available_cents < FUNDING.get() / 2 {
        let top_up = Cents::new(FUNDING.get() - balance.available_cents);
        service.credit(agent_id.as_str(), top_up).await?;
        tracing::info!(agent = %agent_id, cents = top_up.get(), "sandbox agent topped up");
    }
    if simulated_workers(service).await?.is_empty() {
        create_worker(service, None, None).await?;
    }
    Ok(Sandbox {
        agent_id,
        api_key,
        keys_file,
    })
}

/// A sandbox serving: its agent, and its simulated workers at work until this is dropped.
pub struct Running {
    /// The sandbox's test agent and its key.
    pub sandbox: Sandbox,
    /// The key the server acts with: the one configured if the sandbox knows it, else the
    /// sandbox agent's.
    pub api_key: String,
    workers: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.workers.abort();
    }
}

/// Prepares the sandbox at `database_url` and starts its simulated workers, answering `delay`
/// after each claim. A configured `api_key` is used when it belongs to an agent of the
/// sandbox; otherwise the sandbox agent's key is, with a warning.
pub async fn start(
    service: &HumanPing,
    database_url: &str,
    delay: Duration,
    api_key: Option<&str>,
) -> anyhow::Result<Running> {
    let sandbox = prepare(service, database_url).await?;
    let given = api_key.map(str::trim).filter(|k| !k.is_empty());
    let api_key = match given {
        Some(key) if service.authenticate_agent(key).await.is_ok() => key.to_owned(),
        Some(_) => {
            tracing::warn!(
                "the configured API key is not an agent of the sandbox; acting as the sandbox \
                 agent instead (its key is in {})",
                sandbox.keys_file.display()
            );
            sandbox.api_key.clone()
        }
        None => sandbox.api_key.clone(),
    };
    tracing::info!(
        agent = %sandbox.agent_id,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        database = %crate::store::redact(database_url),
        "sandbox: simulated workers answer every task; results are not from people"
    );
    let workers = spawn_workers(service.clone(), delay);
    Ok(Running {
        sandbox,
        api_key,
        workers,
    })
}

fn read_kept_key(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .filter_map(|line| line.strip_prefix("HUMANPING_API_KEY="))
        .map(|key| key.trim().to_owned())
        .find(|key| crate::auth::looks_like_key(key))
}

fn write_keys_file(file: &Path, agent: &AgentId, key: &str) -> anyhow::Result<()> {
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("could not create {}", folder.display()))?;
    }
    let text = format!(
        "# The HumanPing sandbox's test agent (test money only; simulated workers).\n\
         HUMANPING_AGENT_ID={agent}\nHUMANPING_API_KEY={key}\n"
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(file)
        .with_context(|| format!("could not write the sandbox keys file {}", file.display()))?;
    std::io::Write::write_all(&mut out, text.as_bytes())
        .with_context(|| format!("could not write the sandbox keys file {}", file.display()))?;
    Ok(())
}

/// A simulated worker as the sandbox finds it again.
struct Simulated {
    id: WorkerId,
}

async fn simulated_workers(service: &HumanPing) -> anyhow::Result<Vec<Simulated>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM workers WHERE name LIKE $1 ORDER BY created_at, id")
            .bind(format!("{WORKER_NAME_PREFIX}%"))
            .fetch_all(service.store().pool())
            .await?;
    Ok(ids
        .iter()
        .filter_map(|id| WorkerId::parse(id))
        .map(|id| Simulated { id })
        .collect())
}

/// Creates a simulated worker who can call and go on site: at `place` when a task is tied to
/// one, speaking `language` besides the common ones.
async fn create_worker(
    service: &HumanPing,
    place: Option<(f64, f64)>,
    language: Option<&str>,
) -> anyhow::Result<WorkerId> {
    let mut languages: Vec<String> = LANGUAGES.iter().map(|l| (*l).to_owned()).collect();
    if let Some(language) = language
        && !languages.iter().any(|l| l == language)
    {
        languages.push(language.to_owned());
    }
    let count = simulated_workers(service).await?.len();
    let (id, _key) = service
        .create_worker(NewWorker {
            name: format!("{WORKER_NAME_PREFIX} {} (sandbox)", count + 1),
            lat: place.map(|p| p.0),
            lng: place.map(|p| p.1),
            capabilities: vec![Capability::Voice, Capability::Field],
            languages,
        })
        .await?;
    tracing::info!(worker = %id, "simulated worker created");
    Ok(id)
}

/// Starts the simulated workers: they claim each open task as soon as it appears and answer
/// it `delay` later, until the returned handle is aborted.
pub fn spawn_workers(service: HumanPing, delay: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = service.subscribe();
        resume_claims(&service, delay).await;
        let mut given_up = HashSet::new();
        loop {
            if let Err(error) = claim_open_tasks(&service, delay, &mut given_up).await {
                tracing::warn!(error = %format!("{error:#}"), "simulated workers could not look for tasks");
            }
            tokio::select! {
                _ = changes.recv() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    })
}

/// Answers the claims simulated workers held when the process last stopped.
async fn resume_claims(service: &HumanPing, delay: Duration) {
    let Ok(workers) = simulated_workers(service).await else {
        return;
    };
    for worker in workers {
        let Ok(assignments) = service.assignments(&worker.id).await else {
            continue;
        };
        for assignment in assignments {
            if assignment.status == crate::domain::status::AssignmentStatus::Claimed {
                answer_later(
                    service.clone(),
                    worker.id.clone(),
                    Box::new(assignment),
                    delay,
                );
            }
        }
    }
}

/// An open task, as much as picking a simulated worker for it needs.
type OpenTask = (String, Option<f64>, Option<f64>, Option<String>);

async fn claim_open_tasks(
    service: &HumanPing,
    delay: Duration,
    given_up: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let now = service.clock().now_ms();
    let open: Vec<OpenTask> = sqlx::query_as(
        "SELECT id, lat, lng, language FROM tasks WHERE status = 'open' AND deadline_at > $1 \
         ORDER BY created_at LIMIT 100",
    )
    .bind(now)
    .fetch_all(service.store().pool())
    .await?;
    let open: Vec<OpenTask> = open
        .into_iter()
        .filter(|(id, ..)| !given_up.contains(id))
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let mut workers: Vec<WorkerId> = simulated_workers(service)
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    for (task, lat, lng, language) in open {
        match claim_with_any(service, &workers, &task).await? {
            Claimed::Yes(worker, assignment) => {
                answer_later(service.clone(), worker, assignment, delay)
            }
            Claimed::Gone => {}
            Claimed::NoneEligible => {
                // Nobody in the pool may take it (too far, another language, blocked by the
                // agent): a new simulated worker at the task's place does.
                let place = lat.zip(lng);
                let worker = create_worker(service, place, language.as_deref()).await?;
                workers.push(worker.clone());
                match claim_with_any(service, std::slice::from_ref(&worker), &task).await? {
                    Claimed::Yes(worker, assignment) => {
                        answer_later(service.clone(), worker, assignment, delay)
                    }
                    Claimed::Gone => {}
                    Claimed::NoneEligible => {
                        tracing::warn!(%task, "no simulated worker may take this task");
                        given_up.insert(task);
                    }
                }
            }
        }
    }
    Ok(())
}

/// How trying to claim a task for the simulated workers went.
enum Claimed {
    /// A simulated worker holds it now.
    Yes(WorkerId, Box<AssignmentView>),
    /// Someone else took it, or it ended.
    Gone,
    /// No simulated worker given may take it.
    NoneEligible,
}

async fn claim_with_any(
    service: &HumanPing,
    workers: &[WorkerId],
    task: &str,
) -> anyhow::Result<Claimed> {
    for worker in workers {
        match service.claim(worker, task).await {
            Ok(assignment) => {
                tracing::info!(%worker, %task, "simulated worker claimed a task");
                return Ok(Claimed::Yes(worker.clone(), Box::new(assignment)));
            }
            // A task several humans answer: this one already did, another may.
            Err(ServiceError::Conflict(why)) if why.starts_with("you already hold") => continue,
            Err(ServiceError::Conflict(_)) => return Ok(Claimed::Gone),
            Err(ServiceError::Forbidden(_) | ServiceError::NotFound(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Ok(Claimed::NoneEligible)
}

/// Sends the simulated worker's answer `delay` from now.
fn answer_later(
    service: HumanPing,
    worker: WorkerId,
    assignment: Box<AssignmentView>,
    delay: Duration,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let place: Option<(Option<f64>, Option<f64>)> =
            sqlx::query_as("SELECT lat, lng FROM tasks WHERE id = $1")
                .bind(assignment.task_id.as_str())
                .fetch_optional(service.store().pool())
                .await
                .ok()
                .flatten();
        let place = place.and_then(|(lat, lng)| lat.zip(lng));
        let input = simulated_result(
            assignment.task.kind,
            assignment.task_id.as_str(),
            &assignment.task.response_format,
            &assignment.task.proof_required,
            place,
        );
        let id = assignment.assignment_id.as_str();
        match service.submit(&worker, id, input).await {
            Ok(_) => tracing::info!(task = %assignment.task_id, "simulated worker answered"),
            // The agent cancelled, or the deadline passed: nothing to answer any more.
            Err(error) => {
                tracing::info!(task = %assignment.task_id, %error, "simulated answer not taken")
            }
        }
    });
}

/// A result that fits the task's response format and proof requirements, saying in its answer
/// (when free text), notes and proof that it is simulated.
// Limitation: simulated answers come sooner than a person plausibly could, so the fraud checks
// flag them `too_fast`; the flag is real and left as it is.
pub fn simulated_result(
    kind: TaskKind,
    task_id: &str,
    format: &ResponseFormat,
    proof: &[ProofKind],
    place: Option<(f64, f64)>,
) -> SubmissionInput {
    let pick = task_id
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let answer = match format {
        ResponseFormat::YesNo => "yes".to_owned(),
        ResponseFormat::Choice { options } if !options.is_empty() => {
            options[pick % options.len()].clone()
        }
        ResponseFormat::Rating { min, max } => ((min + max + 1) / 2).to_string(),
        ResponseFormat::Number { .. } => "42".to_owned(),
        _ => format!("[Simulated worker] {}", text_answer(kind)),
    };
    let (lat, lng) = match (proof.contains(&ProofKind::Gps), place) {
        (true, Some((lat, lng))) => (Some(lat), Some(lng)),
        // No place to stand at: the null point says plainly that nobody went anywhere.
        (true, None) => (Some(0.0), Some(0.0)),
        (false, _) => (None, None),
    };
    let photo_urls = proof
        .contains(&ProofKind::Photo)
        .then(|| vec![PLACEHOLDER_PHOTO.to_owned()]);
    SubmissionInput {
        answer: Some(answer),
        structured: None::<Value>,
        notes: Some(SIMULATED_NOTE.to_owned()),
        proof: Some(ProofInput {
            text: Some(
                "Simulated proof: nothing was checked, called or visited; no photo was taken."
                    .to_owned(),
            ),
            lat,
            lng,
            accuracy_m: None,
            photo_urls,
        }),
    }
}

fn text_answer(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Verification => {
            "Yes, it checks out (simulated: no person checked anything). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::VoiceProxy => {
            "Call made; the other side agreed (simulated: no call was placed). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::GutCheck => {
            "It feels fine to me (simulated: no person read it). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::FieldMission => {
            "On site, everything is as described (simulated: nobody went there). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::Escalation => {
            "I reached the person and calmed things down (simulated: nobody was contacted). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::VibeRead => {
            "Calm and positive, a little impatient (simulated: no person read it). \
             This answer comes from the HumanPing sandbox."
        }
        TaskKind::RealityCheck => {
            "Looks correct and sensible (simulated: no person reviewed it). \
             This answer comes from the HumanPing sandbox."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn simulated_workers_answer_through_the_real_service_paths() {
        let folder = std::env::temp_dir().join(format!(
            "humanping-sandbox-{}",
            crate::domain::ids::random_token(8)
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let url = format!("sqlite://{}", folder.join("sandbox.db").display());
        let service = HumanPing::open(&url, config(Config::default()))
            .await
            .unwrap();
        let running = start(&service, &url, Duration::from_millis(50), None)
            .await
            .unwrap();
        let agent = running.sandbox.agent_id.clone();
        assert_eq!(
            read_kept_key(&running.sandbox.keys_file).as_deref(),
            Some(running.api_key.as_str())
        );

        let body = serde_json::json!({
            "kind": "vibe", "content": "We need to talk.", "budget": "60.00",
            "response": {"type": "rating", "min": 1, "max": 10}
        });
        let draft = serde_json::from_value::<crate::input::CreateTaskBody>(body)
            .unwrap()
            .into_draft();
        let task = service.create_task(&agent, draft).await.unwrap();
        let done = service
            .wait_for_result(&agent, task.task_id.as_str(), Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(done.answer.as_deref(), Some("6"), "{done:?}");
        assert!(
            done.results[0]
                .notes
                .as_deref()
                .unwrap()
                .starts_with("SIMULATED")
        );
        let approved = service
            .approve(&agent, task.task_id.as_str(), None)
            .await
            .unwrap();
        assert_eq!(approved.held_cents, 0);
        assert!(service.verify_ledger().await.unwrap().is_balanced());

        // A second start finds the same agent through its keys file.
        let again = prepare(&service, &url).await.unwrap();
        assert_eq!(again.agent_id, agent);
        drop(running);
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn delays_are_read_with_or_without_a_unit() {
        assert_eq!(parse_delay("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_delay("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_delay("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_delay("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_delay(" 3s "), Ok(Duration::from_secs(3)));
        for bad in ["", "soon", "-1", "NaN", "inf", "2h"] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn simulated_answers_fit_every_format() {
        let formats = [
            ResponseFormat::YesNo,
            ResponseFormat::Choice {
                options: vec!["Open".into(), "Closed".into()],
            },
            ResponseFormat::Rating { min: 1, max: 10 },
            ResponseFormat::Number {
                unit: None,
                tolerance: None,
            },
            ResponseFormat::Text,
        ];
        for format in &formats {
            let result = simulated_result(
                TaskKind::Verification,
                "tsk_abc",
                format,
                &[ProofKind::Text, ProofKind::Gps, ProofKind::Photo],
                Some((45.5, -73.5)),
            );
            let answer = result.answer.unwrap();
            assert!(format.read_answer(&answer).is_ok(), "{format:?}: {answer}");
            assert!(result.notes.unwrap().starts_with("SIMULATED"));
            let proof = result.proof.unwrap();
            assert_eq!((proof.lat, proof.lng), (Some(45.5), Some(-73.5)));
            assert_eq!(proof.photo_urls.unwrap().len(), 1);
        }
        let text = simulated_result(TaskKind::Escalation, "t", &ResponseFormat::Text, &[], None);
        assert!(text.answer.unwrap().contains("Simulated"));
    }
}
