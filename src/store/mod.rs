//! The database behind HumanPing: one `Store`, over SQLite (the embedded default) or
//! PostgreSQL (production), with one migrations folder per backend.
//!
//! SQL is written once, in the subset both backends share (`$1` parameters, `RETURNING`,
//! `ON CONFLICT`, partial indexes), through sqlx's `Any` driver; what differs — opening the
//! database, how a writing transaction begins, row locks, migrations — lives in `sqlite.rs`
//! and `postgres.rs`. Values crossing the boundary are plain scalars: `i64` cents and Unix
//! milliseconds, `TEXT` ids and JSON, `f64` coordinates.

mod postgres;
mod sqlite;

use std::ops::{Deref, DerefMut};

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, Connection, Transaction};

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool plus what the code needs to know about its dialect.
#[derive(Clone, Debug)]
pub struct Store {
    /// Connections for reads (and, on PostgreSQL, for writing transactions too).
    pool: AnyPool,
    /// Where writing transactions begin. On SQLite, which has one writer at a time, a pool of
    /// one connection of its own: writers of this process queue for it in order instead of
    /// polling the database lock with SQLite's busy handler (which sleeps up to 100 ms per
    /// try), and a writer never waits for a connection behind a crowd of readers. Writers in
    /// other processes still meet at the database lock. On PostgreSQL, the same pool as reads.
    writes: AnyPool,
    backend: Backend,
    /// The URL the pool was opened with, for connections of their own (change watchers).
    url: String,
}

/// A writing transaction; dropped without `commit` it rolls back.
pub struct Tx {
    tx: Transaction<'static, sqlx::Any>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// How long a pooled connection may sit idle before it is pinged on its way out of the pool.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens the database named by `url` (`sqlite://…`, a plain file path, or
    /// `postgres://…`) and brings its schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        install_default_drivers();
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else if let Some((scheme, _)) = url.split_once("://").filter(|(s, _)| *s != "sqlite") {
            anyhow::bail!(
                "database URLs with scheme {scheme:?} are not supported; use sqlite://PATH (or a \
                 plain path) or postgres://…"
            );
        } else {
            (Backend::Sqlite, sqlite::prepare(url)?)
        };
        // One direct connection first, so a wrong address, password or file is reported as
        // itself at once rather than as a pool timeout.
        let mut probe = sqlx::AnyConnection::connect(&url)
            .await
            .with_context(|| format!("could not open the database at {}", redact(&url)))?;
        sqlx::query("SELECT 1")
            .execute(&mut probe)
            .await
            .and(match backend {
                Backend::Sqlite => {
                    sqlx::query("PRAGMA schema_version")
                        .execute(&mut probe)
                        .await
                }
                Backend::Postgres => Ok(Default::default()),
            })
            .with_context(|| format!("could not use the database at {}", redact(&url)))?;
        let _ = probe.close().await;
        let options = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(std::time::Duration::from_secs(30))
                // A connection back from the pool is pinged only when it sat idle long enough to
                // have been dropped by the server or the network; under load, every transaction
                // would otherwise pay one more round trip for the ping.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= IDLE_BEFORE_PING {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
        };
        let open = |connections: u32| {
            let options = options(connections);
            let options = match backend {
                Backend::Sqlite => {
                    options.after_connect(|conn, _| Box::pin(sqlite::configure(conn)))
                }
                Backend::Postgres => options,
            };
            let url = url.clone();
            async move {
                options
                    .connect(&url)
                    .await
                    .with_context(|| format!("could not open the database at {}", redact(&url)))
            }
        };
        let (pool, writes) = match backend {
            Backend::Sqlite => (open(8).await?, open(1).await?),
            Backend::Postgres => {
                let pool = open(16).await?;
                (pool.clone(), pool)
            }
        };
        let store = Store {
            pool,
            writes,
            backend,
            url,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations of this backend that the database has not seen yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlite::migrator(),
            Backend::Postgres => postgres::migrator(),
        };
        migrator
            .run(&self.pool)
            .await
            .context("could not migrate the database schema")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading a read lock.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.writes.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writes.begin().await?,
        };
        Ok(Tx { tx })
    }

    /// The clause that locks the selected rows until the transaction ends. SQLite needs none:
    /// its writing transaction already excludes every other writer.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }
}

/// A nullable float, as bound through sqlx's `Any` driver: pair it with `NULLIF($n, 'NaN')` in
/// the SQL. The driver declares a `None` `f64` as a 4-byte float to PostgreSQL, and a statement
/// first prepared that way then refuses 8-byte values; NaN keeps the declared type 8 bytes
/// wide, and `NULLIF` turns it back into NULL (SQLite already stores a bound NaN as NULL).
pub fn nullable_f64(value: Option<f64>) -> f64 {
    value.filter(|v| v.is_finite()).unwrap_or(f64::NAN)
}

/// The file of a SQLite database URL (or plain path); `None` for PostgreSQL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Some(path.split_once('?').map_or(path, |(p, _)| p).into())
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Builds a migrator from migration files compiled into the binary.
fn embedded_migrator(files: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    let migrations = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://hp:secret@127.0.0.1/hp"),
            "postgres://hp:***@127.0.0.1/hp"
        );
        assert_eq!(
            redact("postgres://hp@127.0.0.1/hp"),
            "postgres://hp@127.0.0.1/hp"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
