//! How waiters learn that a task changed, in this process and in others.
//!
//! Every change made here is announced on an in-process broadcast channel. Changes made by
//! other server processes on the same database reach the channel through a watcher:
//! - PostgreSQL: each transaction that changes a task sends `pg_notify('humanping_tasks', id)`,
//!   delivered at commit; the watcher `LISTEN`s and forwards the id.
//! - SQLite: the watcher keeps a connection of its own and reads `PRAGMA data_version` every
//!   200 ms; the number moves when another connection commits. It cannot tell which task
//!   changed, so it announces `Change::Unknown` and every waiter checks its own task.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::broadcast;

use crate::domain::ids::TaskId;
use crate::store::{Backend, Store};

/// The PostgreSQL channel task changes are announced on.
pub(crate) const CHANNEL: &str = "humanping_tasks";
/// How often the SQLite watcher looks at the database's change counter.
const SQLITE_CHECK: Duration = Duration::from_millis(200);
/// How long the watcher waits before reconnecting after losing the database.
const RECONNECT: Duration = Duration::from_secs(1);

/// What a waiter hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// This task changed.
    Task(TaskId),
    /// Something may have changed; every waiter should look again.
    Unknown,
}

/// Tells other processes, at commit, that a task changed. Only PostgreSQL carries it; SQLite
/// watchers see the commit itself.
pub(crate) async fn notify(conn: &mut AnyConnection, task: &TaskId) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(task.as_str())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Starts the watcher that forwards other processes' changes to `changes`. It ends when the
/// returned handle is aborted.
pub(crate) fn spawn_watcher(
    store: &Store,
    changes: broadcast::Sender<Change>,
) -> tokio::task::JoinHandle<()> {
    let url = store.url().to_owned();
    match store.backend() {
        Backend::Postgres => tokio::spawn(listen_postgres(url, changes)),
        Backend::Sqlite => tokio::spawn(watch_sqlite(url, changes)),
    }
}

async fn listen_postgres(url: String, changes: broadcast::Sender<Change>) {
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            // Whatever happened while we were not listening is unknown.
            let _ = changes.send(Change::Unknown);
            loop {
                match listener.try_recv().await? {
                    Some(notification) => match TaskId::parse(notification.payload()) {
                        Some(id) => drop(changes.send(Change::Task(id))),
                        None => drop(changes.send(Change::Unknown)),
                    },
                    // The connection dropped; the next call reconnects.
                    None => drop(changes.send(Change::Unknown)),
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(error) = connected.await {
            tracing::warn!(%error, "lost the task change listener; reconnecting");
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn watch_sqlite(url: String, changes: broadcast::Sender<Change>) {
    loop {
        let watched = async {
            let mut conn = AnyConnection::connect(&url).await?;
            let mut seen: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut conn)
                .await?;
            loop {
                tokio::time::sleep(SQLITE_CHECK).await;
                let now: i64 = sqlx::query_scalar("PRAGMA data_version")
                    .fetch_one(&mut conn)
                    .await?;
                if now != seen {
                    seen = now;
                    let _ = changes.send(Change::Unknown);
                }
                // Keep the read snapshot from pinning the write-ahead log.
                conn.execute("SELECT 1").await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(error) = watched.await {
            tracing::warn!(%error, "lost the task change watcher; reconnecting");
        }
        tokio::time::sleep(RECONNECT).await;
    }
}
