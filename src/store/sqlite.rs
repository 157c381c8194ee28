//! SQLite specifics: the embedded default database.

use std::path::Path;

use anyhow::Context;
use sqlx::{AnyConnection, Executor};

/// Turns a database URL or plain path into a `sqlite://` URL that creates the file if needed,
/// creating its folder too.
pub(super) fn prepare(url: &str) -> anyhow::Result<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path == ":memory:" || path.is_empty() {
        anyhow::bail!("an in-memory SQLite database is not supported; give a file path");
    }
    if let Some(folder) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).with_context(|| {
            format!("could not create the database folder {}", folder.display())
        })?;
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        query.to_owned()
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Per-connection settings: write-ahead logging so readers never block the writer, a busy
/// timeout so writers from several processes wait for each other instead of failing, and
/// foreign keys on.
pub(super) async fn configure(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    Ok(())
}

pub(super) fn migrator() -> sqlx::migrate::Migrator {
    super::embedded_migrator(&[
        (
            1,
            "core",
            include_str!("../../migrations/sqlite/0001_core.sql"),
        ),
        (
            2,
            "web app",
            include_str!("../../migrations/sqlite/0002_web_app.sql"),
        ),
        (
            3,
            "honeypots and fraud",
            include_str!("../../migrations/sqlite/0003_honeypots_and_fraud.sql"),
        ),
        (
            4,
            "payments",
            include_str!("../../migrations/sqlite/0004_payments.sql"),
        ),
        (
            6,
            "consensus and partners",
            include_str!("../../migrations/sqlite/0006_consensus_partners.sql"),
        ),
        (
            7,
            "feed index",
            include_str!("../../migrations/sqlite/0007_feed_index.sql"),
        ),
    ])
}
