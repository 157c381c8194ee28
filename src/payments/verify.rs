//! The invariants of real money (see the module documentation of `payments`), checked on a
//! live database. Read-only; each violation is reported in words.

use sqlx::{AnyConnection, Row};

use crate::ledger::verify::Report;
use crate::service::HumanPing;

/// Checks the payments invariants and returns each violation found.
pub async fn check(conn: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut problems = Vec::new();

    // external:stripe nets to agents' credits minus reversals minus confirmed payouts.
    let row = sqlx::query(
        "SELECT \
           (SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS BIGINT) \
              FROM accounts WHERE id = 'external:stripe') AS net, \
           (SELECT CAST(COALESCE(SUM(credited_cents), 0) AS BIGINT) FROM topups) AS credited, \
           (SELECT CAST(COALESCE(SUM(reversed_cents + loss_cents), 0) AS BIGINT) FROM topups) \
              AS reversed, \
           (SELECT CAST(COALESCE(SUM(loss_cents), 0) AS BIGINT) FROM topups) AS loss, \
           (SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM payouts \
              WHERE status = 'paid') AS paid_out, \
           (SELECT CAST(COALESCE(SUM(debits_posted - credits_posted), 0) AS BIGINT) \
              FROM accounts WHERE id = 'platform:losses') AS losses",
    )
    .fetch_one(&mut *conn)
    .await?;
    let net: i64 = row.try_get("net")?;
    let credited: i64 = row.try_get("credited")?;
    let reversed: i64 = row.try_get("reversed")?;
    let loss: i64 = row.try_get("loss")?;
    let paid_out: i64 = row.try_get("paid_out")?;
    let losses: i64 = row.try_get("losses")?;
    if net != reversed + paid_out - credited {
        problems.push(format!(
            "external:stripe nets {net} cents, but top-ups credited {credited}, reversals took \
             back {reversed} and payouts paid {paid_out}"
        ));
    }
    if losses != loss {
        problems.push(format!(
            "platform:losses holds {losses} cents of losses, but top-ups record {loss}"
        ));
    }

    // Each top-up is credited exactly what Stripe reported as paid for its payment.
    let topups: Vec<String> = sqlx::query_scalar(
        "SELECT t.id FROM topups t WHERE t.credited_cents <> COALESCE((SELECT \
           MAX(p.succeeded_cents) FROM stripe_payments p WHERE p.topup_id = t.id), 0) \
           OR t.reversed_cents + t.loss_cents > t.credited_cents \
         ORDER BY t.id LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in topups {
        problems.push(format!(
            "top-up {id}: its credit or reversal differs from what Stripe reported"
        ));
    }

    // Per agent, the transfers with Stripe match the top-ups' credits less reversals.
    let agents: Vec<String> = sqlx::query_scalar(
        "WITH booked AS (SELECT agent_id, \
             CAST(SUM(credited_cents - reversed_cents) AS BIGINT) AS net FROM topups \
             GROUP BY agent_id), \
         moved AS (SELECT CASE WHEN debit_account_id = 'external:stripe' THEN credit_account_id \
             ELSE debit_account_id END AS account, \
             CAST(SUM(CASE WHEN debit_account_id = 'external:stripe' THEN amount \
               ELSE -amount END) AS BIGINT) AS net \
             FROM transfers WHERE (debit_account_id = 'external:stripe' \
               AND credit_account_id LIKE 'agent:%') OR (credit_account_id = 'external:stripe' \
               AND debit_account_id LIKE 'agent:%') GROUP BY 1) \
         SELECT COALESCE(b.agent_id, m.account) FROM booked b \
           FULL OUTER JOIN moved m ON m.account = 'agent:' || b.agent_id \
         WHERE COALESCE(b.net, 0) <> COALESCE(m.net, 0) LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for agent in agents {
        problems.push(format!(
            "agent {agent}: money moved with Stripe differs from its top-ups"
        ));
    }

    // A worker's transit account holds exactly their pending payouts.
    let transit: Vec<String> = sqlx::query_scalar(
        "SELECT a.id FROM accounts a WHERE a.id LIKE 'transit:%' \
           AND a.credits_posted - a.debits_posted <> COALESCE((SELECT \
             CAST(SUM(p.amount_cents) AS BIGINT) FROM payouts p WHERE p.status = 'pending' \
             AND 'transit:' || p.worker_id = a.id), 0) \
         UNION ALL \
         SELECT 'transit:' || p.worker_id FROM payouts p WHERE p.status = 'pending' \
           AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = 'transit:' || p.worker_id) \
         LIMIT 50",
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in transit {
        problems.push(format!("{id} differs from the worker's pending payouts"));
    }

    Ok(problems)
}

impl HumanPing {
    /// Every invariant of the books, the ledger's and real money's. Read-only.
    pub async fn verify_books(&self) -> anyhow::Result<Report> {
        let mut report = self.verify_ledger().await?;
        let mut conn = self.store().pool().acquire().await?;
        report.problems.extend(check(&mut conn).await?);
        Ok(report)
    }
}
