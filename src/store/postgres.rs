//! PostgreSQL specifics: the production database, shared by several server processes.

pub(super) fn migrator() -> sqlx::migrate::Migrator {
    super::embedded_migrator(&[
        (
            1,
            "core",
            include_str!("../../migrations/postgres/0001_core.sql"),
        ),
        (
            2,
            "web app",
            include_str!("../../migrations/postgres/0002_web_app.sql"),
        ),
    ])
}
