//! The books: a double-entry, append-only ledger with two-phase escrow.
//!
//! Every movement is a transfer with an id, a debit account, a credit account and a positive
//! amount in cents. Each account keeps four running totals (debits and credits, pending and
//! posted), updated in the same transaction as the transfer row, so balances never drift
//! from the log. Because every transfer adds the same amount to one debit total and one credit
//! total, the sum of all debits equals the sum of all credits, always.
//!
//! Two-phase movements follow TigerBeetle's pending / post / void transfers:
//! - `hold` records a *pending* transfer: the amount leaves the debit account's available
//!   balance but is not yet spent;
//! - `post` turns part of a pending amount into a posted one;
//! - `void` releases part of a pending amount back to the debit account.
//!
//! Unlike TigerBeetle, a pending transfer may be posted and voided in parts (one part per
//! approved or refunded slot of a task); the caller tracks what remains (`tasks.held_cents`)
//! and `verify` checks that posts and voids never exceed the hold.
//!
//! Accounts flagged `no_overdraft` (agents, workers, escrow, platform) can never have debits
//! (posted plus pending) above posted credits: each debit is a conditional `UPDATE` that
//! matches no row when the balance cannot cover it, which makes the check and the change one
//! atomic step on both backends, also across server processes.

pub mod verify;

use sqlx::AnyConnection;

use crate::domain::ids::random_token;
use crate::domain::money::{CURRENCY, Cents};

/// Account ids. One account per agent, per worker and per task escrow; one platform fee
/// account; one account standing for money that came in from outside (test credits), which
/// is the only account allowed to go negative.
pub mod account {
    use crate::domain::ids::{AgentId, TaskId, WorkerId};

    pub fn agent(id: &AgentId) -> String {
        format!("agent:{id}")
    }

    pub fn worker(id: &WorkerId) -> String {
        format!("worker:{id}")
    }

    pub fn escrow(id: &TaskId) -> String {
        format!("escrow:{id}")
    }

    pub const PLATFORM_FEES: &str = "platform:fees";
    pub const TEST_FUNDING: &str = "external:test_funding";
}

/// Why a ledger operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("account {account} cannot cover {amount} cents")]
    Insufficient { account: String, amount: Cents },
    #[error("account {0} does not exist")]
    NoAccount(String),
    #[error("pending transfer {pending_id} has less than {amount} cents left")]
    PendingExceeded { pending_id: String, amount: Cents },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A pending transfer, as needed to post or void parts of it.
#[derive(Clone, Debug)]
pub struct Pending {
    pub id: String,
    pub debit: String,
    pub credit: String,
}

/// The four totals of one account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

impl Totals {
    /// What a credit-normal account (an agent's or worker's funds) can still spend.
    pub fn available(&self) -> i64 {
        self.credits_posted - self.debits_posted - self.debits_pending
    }
}

/// Opens an account if it does not exist yet.
pub async fn open_account(
    conn: &mut AnyConnection,
    id: &str,
    kind: &str,
    owner: Option<&str>,
    no_overdraft: bool,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (id, kind, owner_id, currency, no_overdraft, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(owner)
    .bind(CURRENCY)
    .bind(i64::from(no_overdraft))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads an account's totals.
pub async fn totals(conn: &mut AnyConnection, id: &str) -> Result<Option<Totals>, sqlx::Error> {
    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT debits_pending, debits_posted, credits_pending, credits_posted \
         FROM accounts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(dp, dpo, cp, cpo)| Totals {
        debits_pending: dp,
        debits_posted: dpo,
        credits_pending: cp,
        credits_posted: cpo,
    }))
}

/// A posted transfer: `amount` moves from `debit` to `credit` now.
pub async fn transfer(
    conn: &mut AnyConnection,
    debit: &str,
    credit: &str,
    amount: Cents,
    task_id: Option<&str>,
    memo: &str,
    now_ms: i64,
) -> Result<String, LedgerError> {
    debit_account(conn, debit, amount, "debits_posted").await?;
    credit_account(conn, credit, amount, "credits_posted").await?;
    insert(
        conn, "posted", debit, credit, amount, None, task_id, memo, now_ms,
    )
    .await
}

/// A pending transfer: `amount` leaves `debit`'s available balance and waits to be posted
/// or voided.
pub async fn hold(
    conn: &mut AnyConnection,
    debit: &str,
    credit: &str,
    amount: Cents,
    task_id: Option<&str>,
    memo: &str,
    now_ms: i64,
) -> Result<Pending, LedgerError> {
    debit_account(conn, debit, amount, "debits_pending").await?;
    credit_account(conn, credit, amount, "credits_pending").await?;
    let id = insert(
        conn, "pending", debit, credit, amount, None, task_id, memo, now_ms,
    )
    .await?;
    Ok(Pending {
        id,
        debit: debit.to_owned(),
        credit: credit.to_owned(),
    })
}

/// Posts `amount` of a pending transfer: it becomes spent on the debit side and received on
/// the credit side.
pub async fn post(
    conn: &mut AnyConnection,
    pending: &Pending,
    amount: Cents,
    task_id: Option<&str>,
    memo: &str,
    now_ms: i64,
) -> Result<String, LedgerError> {
    settle_pending(conn, pending, amount, true).await?;
    insert(
        conn,
        "post",
        &pending.debit,
        &pending.credit,
        amount,
        Some(&pending.id),
        task_id,
        memo,
        now_ms,
    )
    .await
}

/// Voids `amount` of a pending transfer: it goes back to the debit account's available balance.
pub async fn void(
    conn: &mut AnyConnection,
    pending: &Pending,
    amount: Cents,
    task_id: Option<&str>,
    memo: &str,
    now_ms: i64,
) -> Result<String, LedgerError> {
    settle_pending(conn, pending, amount, false).await?;
    insert(
        conn,
        "void",
        &pending.debit,
        &pending.credit,
        amount,
        Some(&pending.id),
        task_id,
        memo,
        now_ms,
    )
    .await
}

/// Adds to a debit total, refusing (by matching no row) when a `no_overdraft` account could
/// not cover it.
async fn debit_account(
    conn: &mut AnyConnection,
    id: &str,
    amount: Cents,
    column: &str,
) -> Result<(), LedgerError> {
    let sql = format!(
        "UPDATE accounts SET {column} = {column} + $1 WHERE id = $2 \
         AND (no_overdraft = 0 OR debits_posted + debits_pending + $1 <= credits_posted)"
    );
    let done = sqlx::query(&sql)
        .bind(amount.get())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    match totals(conn, id).await? {
        Some(_) => Err(LedgerError::Insufficient {
            account: id.to_owned(),
            amount,
        }),
        None => Err(LedgerError::NoAccount(id.to_owned())),
    }
}

async fn credit_account(
    conn: &mut AnyConnection,
    id: &str,
    amount: Cents,
    column: &str,
) -> Result<(), LedgerError> {
    let sql = format!("UPDATE accounts SET {column} = {column} + $1 WHERE id = $2");
    let done = sqlx::query(&sql)
        .bind(amount.get())
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(LedgerError::NoAccount(id.to_owned()))
    }
}

/// Moves `amount` out of both pending totals, into the posted totals when `posting`.
async fn settle_pending(
    conn: &mut AnyConnection,
    pending: &Pending,
    amount: Cents,
    posting: bool,
) -> Result<(), LedgerError> {
    let (debit_sql, credit_sql) = if posting {
        (
            "UPDATE accounts SET debits_pending = debits_pending - $1, \
             debits_posted = debits_posted + $1 WHERE id = $2 AND debits_pending >= $1",
            "UPDATE accounts SET credits_pending = credits_pending - $1, \
             credits_posted = credits_posted + $1 WHERE id = $2 AND credits_pending >= $1",
        )
    } else {
        (
            "UPDATE accounts SET debits_pending = debits_pending - $1 \
             WHERE id = $2 AND debits_pending >= $1",
            "UPDATE accounts SET credits_pending = credits_pending - $1 \
             WHERE id = $2 AND credits_pending >= $1",
        )
    };
    for (sql, account) in [(debit_sql, &pending.debit), (credit_sql, &pending.credit)] {
        let done = sqlx::query(sql)
            .bind(amount.get())
            .bind(account)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() != 1 {
            return Err(LedgerError::PendingExceeded {
                pending_id: pending.id.clone(),
                amount,
            });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    conn: &mut AnyConnection,
    kind: &str,
    debit: &str,
    credit: &str,
    amount: Cents,
    pending_id: Option<&str>,
    task_id: Option<&str>,
    memo: &str,
    now_ms: i64,
) -> Result<String, LedgerError> {
    let id = format!("tr_{}", random_token(16));
    sqlx::query(
        "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, kind, \
         pending_id, task_id, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(debit)
    .bind(credit)
    .bind(amount.get())
    .bind(CURRENCY)
    .bind(kind)
    .bind(pending_id)
    .bind(task_id)
    .bind(memo)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(id)
}
