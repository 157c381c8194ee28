//! Checks the books on a live database. Every check reads the data in one consistent snapshot
//! and reports each violation it finds; an empty `problems` list means the books are right.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// What `verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub accounts: i64,
    pub transfers: i64,
    pub tasks: i64,
    /// Sum of all posted debits, which must equal the sum of all posted credits.
    pub posted_debits: i64,
    pub posted_credits: i64,
    /// Each invariant that failed, in words.
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_balanced(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs every check. Read-only.
pub async fn verify(conn: &mut AnyConnection) -> Result<Report, sqlx::Error> {
    let mut report = Report::default();

    let row = sqlx::query(
        "SELECT COUNT(*) AS n, \
         CAST(COALESCE(SUM(debits_posted), 0) AS BIGINT) AS dpo, \
         CAST(COALESCE(SUM(credits_posted), 0) AS BIGINT) AS cpo, \
         CAST(COALESCE(SUM(debits_pending), 0) AS BIGINT) AS dp, \
         CAST(COALESCE(SUM(credits_pending), 0) AS BIGINT) AS cp FROM accounts",
    )
    .fetch_one(&mut *conn)
    .await?;
    report.accounts = row.try_get("n")?;
    report.posted_debits = row.try_get("dpo")?;
    report.posted_credits = row.try_get("cpo")?;
    let (dp, cp): (i64, i64) = (row.try_get("dp")?, row.try_get("cp")?);
    if report.posted_debits != report.posted_credits {
        report.problems.push(format!(
            "posted debits ({}) differ from posted credits ({})",
            report.posted_debits, report.posted_credits
        ));
    }
    if dp != cp {
        report.problems.push(format!(
            "pending debits ({dp}) differ from pending credits ({cp})"
        ));
    }

    report.transfers = sqlx::query_scalar("SELECT COUNT(*) FROM transfers")
        .fetch_one(&mut *conn)
        .await?;
    report.tasks = sqlx::query_scalar("SELECT COUNT(*) FROM tasks")
        .fetch_one(&mut *conn)
        .await?;

    // Every account's stored totals must equal what its transfers add up to.
    let drift = sqlx::query(
        "WITH moves AS ( \
           SELECT debit_account_id AS account, \
             CASE WHEN kind IN ('posted', 'post') THEN amount ELSE 0 END AS dpo, \
             CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0 ELSE -amount END AS dp, \
             0 AS cpo, 0 AS cp FROM transfers \
           UNION ALL \
           SELECT credit_account_id, 0, 0, \
             CASE WHEN kind IN ('posted', 'post') THEN amount ELSE 0 END, \
             CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0 ELSE -amount END \
           FROM transfers), \
         sums AS (SELECT account, CAST(SUM(dpo) AS BIGINT) AS dpo, CAST(SUM(dp) AS BIGINT) AS dp, \
           CAST(SUM(cpo) AS BIGINT) AS cpo, CAST(SUM(cp) AS BIGINT) AS cp \
           FROM moves GROUP BY account) \
         SELECT a.id FROM accounts a LEFT JOIN sums s ON s.account = a.id \
         WHERE a.debits_posted <> COALESCE(s.dpo, 0) OR a.debits_pending <> COALESCE(s.dp, 0) \
            OR a.credits_posted <> COALESCE(s.cpo, 0) OR a.credits_pending <> COALESCE(s.cp, 0) \
         ORDER BY a.id LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in drift {
        let id: String = row.try_get(0)?;
        report.problems.push(format!(
            "account {id}: stored totals differ from its transfers"
        ));
    }

    let overdrawn: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE no_overdraft = 1 \
         AND debits_posted + debits_pending > credits_posted ORDER BY id LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in overdrawn {
        report.problems.push(format!("account {id} is overdrawn"));
    }

    // No pending transfer may be posted or voided for more than it holds.
    let exceeded: Vec<String> = sqlx::query_scalar(
        "SELECT p.id FROM transfers p JOIN transfers s ON s.pending_id = p.id \
         WHERE p.kind = 'pending' GROUP BY p.id, p.amount \
         HAVING CAST(SUM(s.amount) AS BIGINT) > p.amount ORDER BY p.id LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in exceeded {
        report.problems.push(format!(
            "pending transfer {id} was settled for more than it held"
        ));
    }

    // A task's hold must equal what its pending transfer still has, and be zero once it ended;
    // its escrow account must then be empty.
    let tasks = sqlx::query(
        "SELECT t.id, t.status, t.held_cents, \
           p.amount - CAST(COALESCE((SELECT SUM(s.amount) FROM transfers s \
             WHERE s.pending_id = p.id), 0) AS BIGINT) AS remaining, \
           e.credits_posted - e.debits_posted AS escrow_posted, e.credits_pending AS escrow_pending \
         FROM tasks t JOIN transfers p ON p.id = t.hold_transfer_id \
         JOIN accounts e ON e.id = 'escrow:' || t.id \
         WHERE t.held_cents <> p.amount - CAST(COALESCE((SELECT SUM(s.amount) FROM transfers s \
             WHERE s.pending_id = p.id), 0) AS BIGINT) \
            OR (t.status IN ('approved', 'refunded', 'cancelled', 'expired') \
                AND (t.held_cents <> 0 OR e.credits_posted <> e.debits_posted OR e.credits_pending <> 0)) \
            OR (e.credits_posted <> e.debits_posted) \
         ORDER BY t.id LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in tasks {
        let id: String = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        let held: i64 = row.try_get("held_cents")?;
        let remaining: i64 = row.try_get("remaining")?;
        let escrow_posted: i64 = row.try_get("escrow_posted")?;
        let escrow_pending: i64 = row.try_get("escrow_pending")?;
        report.problems.push(format!(
            "task {id} ({status}): holds {held} cents, its hold has {remaining} left, \
             escrow has {escrow_posted} posted and {escrow_pending} pending"
        ));
    }

    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks t WHERE NOT EXISTS \
         (SELECT 1 FROM transfers p WHERE p.id = t.hold_transfer_id AND p.kind = 'pending')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if orphans > 0 {
        report
            .problems
            .push(format!("{orphans} tasks have no pending hold transfer"));
    }

    Ok(report)
}
