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
        (
            3,
            "honeypots and fraud",
            include_str!("../../migrations/postgres/0003_honeypots_and_fraud.sql"),
        ),
        (
            4,
            "payments",
            include_str!("../../migrations/postgres/0004_payments.sql"),
        ),
        (
            6,
            "consensus and partners",
            include_str!("../../migrations/postgres/0006_consensus_partners.sql"),
        ),
        (
            7,
            "feed index",
            include_str!("../../migrations/postgres/0007_feed_index.sql"),
        ),
    ])
}
