//! What the integration tests share: a fresh database per test on each backend, a service over
//! it, and helpers for the usual setup (a funded agent, a worker) and the usual final check
//! (the books balance).
//!
//! Every test runs against SQLite, and against PostgreSQL when `HUMANPING_TEST_POSTGRES_URL`
//! names a server whose user may create databases (`scripts/test.sh` starts one). With
//! `HUMANPING_REQUIRE_POSTGRES=1` (set by `scripts/test.sh`, hence on CI) a missing URL fails the
//! test instead of quietly testing SQLite alone.
//!
//! ```ignore
//! mod common;
//!
//! #[tokio::test]
//! async fn something() {
//!     for db in common::databases().await {
//!         let svc = common::service(&db).await;
//!         let (agent, _key) = common::funded_agent(&svc, "20").await;
//!         // …
//!         common::assert_books_balanced(&svc).await;
//!     }
//! }
//! ```

#![allow(dead_code)]

pub mod server;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::kind::Capability;
use humanping::domain::money::Cents;
use humanping::service::{Clock, Config, HumanPing, NewWorker};
use humanping::store::Store;
use sqlx::Connection;

/// The admin URL of a PostgreSQL server the tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "HUMANPING_TEST_POSTGRES_URL";
/// When set (to anything but `0` or `false`), a missing PostgreSQL URL is a failure.
pub const REQUIRE_POSTGRES_VAR: &str = "HUMANPING_REQUIRE_POSTGRES";

/// A database made for one test.
#[derive(Debug)]
pub struct TestDb {
    /// `"sqlite"` or `"postgres"`.
    pub name: &'static str,
    /// What to give `Store::open` or `humanping --database-url`.
    pub url: String,
    /// The SQLite file's folder, removed on drop.
    dir: Option<PathBuf>,
}

impl TestDb {
    pub fn is_postgres(&self) -> bool {
        self.name == "postgres"
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // PostgreSQL databases are left in place: the throwaway cluster goes as a whole, and a
        // DROP DATABASE here would block in Drop while the test's pool may still be open.
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A random lowercase hex name, unique within the process and very likely across processes.
pub fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

/// A fresh SQLite database file in a new temporary folder.
pub fn sqlite_database() -> TestDb {
    let dir = std::env::temp_dir().join(format!("humanping-test-{}", random_suffix()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("could not create test folder {}: {e}", dir.display()));
    let url = format!("sqlite://{}", dir.join("humanping.db").display());
    TestDb {
        name: "sqlite",
        url,
        dir: Some(dir),
    }
}

/// Whether PostgreSQL must be tested (`HUMANPING_REQUIRE_POSTGRES`).
pub fn postgres_required() -> bool {
    match std::env::var(REQUIRE_POSTGRES_VAR) {
        Ok(value) => !matches!(value.trim(), "" | "0" | "false" | "no"),
        Err(_) => false,
    }
}

/// The admin URL from `HUMANPING_TEST_POSTGRES_URL`, or `None` when PostgreSQL is not being
/// tested. Panics when it is required but missing.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if postgres_required() => panic!(
            "{REQUIRE_POSTGRES_VAR} is set but {POSTGRES_URL_VAR} is not: run the tests with \
             scripts/test.sh (which starts a throwaway PostgreSQL), or set {POSTGRES_URL_VAR} to \
             a server URL whose user may create databases, e.g. \
             postgres://postgres@127.0.0.1:5432/postgres"
        ),
        _ => None,
    }
}

/// A fresh PostgreSQL database `hp_test_<random>` on the server named by
/// `HUMANPING_TEST_POSTGRES_URL`, or `None` when PostgreSQL is not being tested.
pub async fn postgres_database() -> Option<TestDb> {
    let admin_url = postgres_admin_url()?;
    let name = format!("hp_test_{}", random_suffix());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "could not connect to {POSTGRES_URL_VAR} ({}): {e}",
                humanping::store::redact(&admin_url)
            )
        });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
    let _ = admin.close().await;
    Some(TestDb {
        name: "postgres",
        url: with_database(&admin_url, &name),
        dir: None,
    })
}

/// Every backend under test, each with a fresh database: SQLite always, PostgreSQL when
/// configured.
pub async fn databases() -> Vec<TestDb> {
    let mut all = vec![sqlite_database()];
    all.extend(postgres_database().await);
    all
}

/// `url` with its database name (the path) replaced by `database`, query string kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The service over `db`, with default settings and the system clock.
pub async fn service(db: &TestDb) -> HumanPing {
    service_with_clock(db, Clock::system()).await
}

/// The service over `db`, with default settings and the given clock (e.g. `Clock::manual`).
pub async fn service_with_clock(db: &TestDb, clock: Clock) -> HumanPing {
    service_with(db, Config::default(), clock).await
}

/// The service over `db`, with the given settings and clock.
pub async fn service_with(db: &TestDb, config: Config, clock: Clock) -> HumanPing {
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("could not open the {} test database: {e:#}", db.name));
    HumanPing::new(store, config, clock)
}

/// A new agent with `dollars` of test funds; returns its id and API key.
pub async fn funded_agent(svc: &HumanPing, dollars: &str) -> (AgentId, String) {
    let (id, key) = svc.create_agent("agent").await.expect("create_agent");
    let amount =
        Cents::parse_dollars(dollars).expect("a dollar amount such as \"20\" or \"12.50\"");
    svc.credit(id.as_str(), amount).await.expect("credit");
    (id, key)
}

/// A new worker who can make calls and go on site, and speaks English; returns its id and key.
pub async fn worker(svc: &HumanPing, name: &str) -> (WorkerId, String) {
    svc.create_worker(NewWorker {
        name: name.to_owned(),
        lat: None,
        lng: None,
        capabilities: vec![Capability::Voice, Capability::Field],
        languages: vec!["en".into()],
    })
    .await
    .expect("create_worker")
}

/// Checks every invariant of the books and fails the test with each problem found.
pub async fn assert_books_balanced(svc: &HumanPing) {
    let report = svc.verify_books().await.expect("verify_books");
    assert!(
        report.is_balanced(),
        "the books do not balance ({} accounts, {} transfers, {} tasks):\n  {}",
        report.accounts,
        report.transfers,
        report.tasks,
        report.problems.join("\n  ")
    );
}

/// Creates a task from a `POST /v1/tasks` body, through the service.
pub async fn post_task(
    svc: &HumanPing,
    agent: &AgentId,
    body: serde_json::Value,
) -> Result<humanping::service::views::TaskView, humanping::service::ServiceError> {
    let draft = serde_json::from_value::<humanping::input::CreateTaskBody>(body)
        .expect("a task body")
        .into_draft();
    svc.create_task(agent, draft).await
}

/// A worker's result with just an answer.
pub fn answer(text: &str) -> humanping::service::SubmissionInput {
    humanping::service::SubmissionInput {
        answer: Some(text.into()),
        structured: None,
        notes: None,
        proof: None,
    }
}

/// A small deterministic random number source (xorshift64) for tests that try many cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number below `below`.
    pub fn below(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}
