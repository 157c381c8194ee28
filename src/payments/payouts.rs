//! Worker payouts: a worker connects a Stripe Express account; earnings older than the holding
//! period become payable; a payout run moves each worker's payable money into their transit
//! account (one transaction), then asks Stripe for a Connect transfer keyed by the payout's id.
//! Stripe's answer settles the payout: paid (transit to Stripe) or refused (transit back to
//! the worker, with the reason). No clear answer leaves it pending, and the next run asks
//! again with the same key, so a crash anywhere in between never pays twice.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::account::{STRIPE, transit};
use super::stripe_api::{StripeApi, StripeFailure};
use super::webhook::ledger_error;
use crate::domain::ids::{WorkerId, random_token};
use crate::domain::money::{CURRENCY, Cents};
use crate::ledger::{self, account};
use crate::service::{HumanPing, ServiceError, ServiceResult};

/// Where a worker finishes connecting their Stripe account.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct StripeConnectLink {
    /// The worker connecting.
    pub worker_id: String,
    /// The worker's Stripe Express account.
    pub stripe_account_id: String,
    /// Stripe's onboarding page; it expires within minutes, ask again for a fresh one.
    pub onboarding_url: String,
}

/// One payout.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PayoutView {
    /// The payout's id; its Stripe idempotency key is derived from it.
    pub payout_id: String,
    /// What was sent, in cents.
    pub amount_cents: i64,
    /// What was sent, in dollars.
    pub amount: String,
    /// `pending` (sent, Stripe not answered yet), `paid` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_transfer_id: Option<String>,
    /// Why Stripe refused the transfer; the money went back to the payable balance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A worker's money on the way out.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PayoutsView {
    /// The worker.
    pub worker_id: String,
    /// Whether a Stripe account is connected.
    pub connected: bool,
    /// What the next payout run may send, in cents.
    pub payable_cents: i64,
    /// Earnings still inside the holding period, in cents.
    pub holding_cents: i64,
    /// Sent to Stripe and not confirmed yet, in cents.
    pub in_transit_cents: i64,
    /// Everything paid out so far, in cents.
    pub paid_out_cents: i64,
    /// The latest payouts, newest first.
    pub payouts: Vec<PayoutView>,
}

/// What one payout run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PayoutRunReport {
    /// Payouts Stripe confirmed in this run.
    pub paid: usize,
    /// Payouts Stripe refused (money back to the worker).
    pub failed: usize,
    /// Payouts still waiting for a clear answer from Stripe.
    pub pending: usize,
    /// Cents confirmed paid in this run.
    pub paid_cents: i64,
}

/// A payout to send or resend.
struct Due {
    id: String,
    worker: WorkerId,
    amount: Cents,
    destination: String,
}

impl HumanPing {
    fn stripe_for_payouts(&self) -> ServiceResult<Arc<StripeApi>> {
        self.config().payments.stripe.clone().ok_or_else(|| {
            ServiceError::Forbidden(
                "payouts need Stripe, and this server runs in test mode; start it with \
                 --stripe-secret-key to pay workers"
                    .into(),
            )
        })
    }

    /// Connects the worker's Stripe Express account (created on first use) and returns a fresh
    /// onboarding link.
    #[tracing::instrument(skip_all, fields(worker = %worker))]
    pub async fn connect_stripe_account(
        &self,
        worker: &WorkerId,
    ) -> ServiceResult<StripeConnectLink> {
        let stripe = self.stripe_for_payouts()?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM worker_stripe_accounts WHERE worker_id = $1",
        )
        .bind(worker.as_str())
        .fetch_optional(self.store().pool())
        .await?;
        let account_id = match existing {
            Some(id) => id,
            None => {
                let id = stripe
                    .create_express_account(worker.as_str())
                    .await
                    .map_err(stripe_error)?;
                let mut tx = self.store().begin().await?;
                sqlx::query(
                    "INSERT INTO worker_stripe_accounts (worker_id, account_id, created_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (worker_id) DO NOTHING",
                )
                .bind(worker.as_str())
                .bind(&id)
                .bind(self.clock().now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!("Stripe account connected");
                id
            }
        };
        let base = self.config().payments.public_url.trim_end_matches('/');
        let url = stripe
            .onboarding_link(&account_id, &format!("{base}/app"), &format!("{base}/app"))
            .await
            .map_err(stripe_error)?;
        Ok(StripeConnectLink {
            worker_id: worker.to_string(),
            stripe_account_id: account_id,
            onboarding_url: url,
        })
    }

    /// The worker's payable, held and paid-out money and their latest payouts.
    pub async fn worker_payouts(&self, worker: &WorkerId) -> ServiceResult<PayoutsView> {
        let now = self.clock().now_ms();
        let mut conn = self.store().pool().acquire().await?;
        let (payable, holding) = self.payable(&mut conn, worker, now).await?;
        let in_transit = ledger::totals(&mut conn, &transit(worker))
            .await?
            .map(|t| t.credits_posted - t.debits_posted)
            .unwrap_or(0);
        let connected: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM worker_stripe_accounts WHERE worker_id = $1",
        )
        .bind(worker.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let paid_out: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM payouts \
             WHERE worker_id = $1 AND status = 'paid'",
        )
        .bind(worker.as_str())
        .fetch_one(&mut *conn)
        .await?;
        let rows = sqlx::query(
            "SELECT id, amount_cents, status, stripe_transfer_id, failure_reason, created_at \
             FROM payouts WHERE worker_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50",
        )
        .bind(worker.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut payouts = Vec::with_capacity(rows.len());
        for row in rows {
            let amount: i64 = row.try_get("amount_cents")?;
            payouts.push(PayoutView {
                payout_id: row.try_get("id")?,
                amount_cents: amount,
                amount: Cents::new(amount).to_string(),
                status: row.try_get("status")?,
                stripe_transfer_id: row.try_get("stripe_transfer_id")?,
                failure_reason: row.try_get("failure_reason")?,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(PayoutsView {
            worker_id: worker.to_string(),
            connected: connected.is_some(),
            payable_cents: payable,
            holding_cents: holding,
            in_transit_cents: in_transit,
            paid_out_cents: paid_out,
            payouts,
        })
    }

    /// What the worker may be paid now, and what is still in the holding period: earnings
    /// (transfers from a task's escrow) younger than `payout_hold` wait.
    async fn payable(
        &self,
        conn: &mut AnyConnection,
        worker: &WorkerId,
        now: i64,
    ) -> ServiceResult<(i64, i64)> {
        let id = account::worker(worker);
        let available = ledger::totals(conn, &id)
            .await?
            .map(|t| t.available())
            .unwrap_or(0);
        let hold_ms =
            i64::try_from(self.config().payments.payout_hold.as_millis()).unwrap_or(i64::MAX);
        let recent: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transfers \
             WHERE credit_account_id = $1 AND debit_account_id LIKE 'escrow:%' \
             AND kind = 'posted' AND created_at > $2",
        )
        .bind(&id)
        .bind(now.saturating_sub(hold_ms))
        .fetch_one(conn)
        .await?;
        let holding = recent.min(available).max(0);
        Ok(((available - holding).max(0), holding))
    }

    /// Pays every connected worker what is payable: first asks Stripe again about payouts a
    /// previous run left pending (same idempotency key), then starts new ones.
    #[tracing::instrument(skip_all)]
    pub async fn run_payouts(&self) -> ServiceResult<PayoutRunReport> {
        let stripe = self.stripe_for_payouts()?;
        let mut report = PayoutRunReport::default();

        let pending = sqlx::query(
            "SELECT id, worker_id, amount_cents, stripe_account_id FROM payouts \
             WHERE status = 'pending' ORDER BY created_at",
        )
        .fetch_all(self.store().pool())
        .await?;
        for row in pending {
            let due = Due {
                id: row.try_get("id")?,
                worker: WorkerId::from_db(row.try_get("worker_id")?),
                amount: Cents::new(row.try_get("amount_cents")?),
                destination: row.try_get("stripe_account_id")?,
            };
            self.send_payout(&stripe, due, &mut report).await?;
        }

        let connected = sqlx::query(
            "SELECT worker_id, account_id FROM worker_stripe_accounts ORDER BY worker_id",
        )
        .fetch_all(self.store().pool())
        .await?;
        for row in connected {
            let worker = WorkerId::from_db(row.try_get("worker_id")?);
            let destination: String = row.try_get("account_id")?;
            if let Some(due) = self.start_payout(&worker, &destination).await? {
                self.send_payout(&stripe, due, &mut report).await?;
            }
        }
        if report.paid + report.failed + report.pending > 0 {
            tracing::info!(
                paid = report.paid,
                failed = report.failed,
                pending = report.pending,
                cents = report.paid_cents,
                "payout run finished"
            );
        }
        Ok(report)
    }

    /// Moves the worker's payable money into transit as a new pending payout, unless one is
    /// already in flight or there is less than the minimum.
    async fn start_payout(
        &self,
        worker: &WorkerId,
        destination: &str,
    ) -> ServiceResult<Option<Due>> {
        let now = self.clock().now_ms();
        let worker_account = account::worker(worker);

        let mut tx = self.store().begin().await?;
        let lock = format!(
            "SELECT id FROM accounts WHERE id = $1{}",
            self.store().for_update()
        );
        sqlx::query(&lock)
            .bind(&worker_account)
            .fetch_optional(&mut *tx)
            .await?;
        let in_flight: Option<String> = sqlx::query_scalar(
            "SELECT id FROM payouts WHERE worker_id = $1 AND status = 'pending'",
        )
        .bind(worker.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let (payable, _) = self.payable(&mut tx, worker, now).await?;
        if in_flight.is_some() || payable < self.config().payments.min_payout.get() {
            tx.rollback().await?;
            return Ok(None);
        }
        let id = format!("po_{}", random_token(12));
        let amount = Cents::new(payable);
        sqlx::query(
            "INSERT INTO payouts (id, worker_id, amount_cents, currency, status, \
             stripe_account_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)",
        )
        .bind(&id)
        .bind(worker.as_str())
        .bind(amount.get())
        .bind(CURRENCY)
        .bind(destination)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let transit = transit(worker);
        ledger::open_account(
            &mut tx,
            &transit,
            "transit",
            Some(worker.as_str()),
            true,
            now,
        )
        .await?;
        ledger::transfer(
            &mut tx,
            &worker_account,
            &transit,
            amount,
            None,
            &format!("payout {id} sent to Stripe"),
            now,
        )
        .await
        .map_err(ledger_error)?;
        tx.commit().await?;
        tracing::info!(payout = %id, worker = %worker, cents = amount.get(), "payout started");
        Ok(Some(Due {
            id,
            worker: worker.clone(),
            amount,
            destination: destination.to_owned(),
        }))
    }

    // Limitation: a transfer Stripe reverses after paying it (transfer.reversed) is not booked.
    /// Asks Stripe for the payout's transfer and settles the payout by the answer.
    async fn send_payout(
        &self,
        stripe: &StripeApi,
        due: Due,
        report: &mut PayoutRunReport,
    ) -> ServiceResult<()> {
        sqlx::query("UPDATE payouts SET attempts = attempts + 1 WHERE id = $1")
            .bind(&due.id)
            .execute(self.store().pool())
            .await?;
        let answer = stripe.transfer(&due.id, due.amount, &due.destination).await;
        let now = self.clock().now_ms();
        let transit = transit(&due.worker);
        match answer {
            Ok(transfer_id) => {
                let mut tx = self.store().begin().await?;
                let settled = sqlx::query(
                    "UPDATE payouts SET status = 'paid', stripe_transfer_id = $1, updated_at = $2 \
                     WHERE id = $3 AND status = 'pending'",
                )
                .bind(&transfer_id)
                .bind(now)
                .bind(&due.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if settled == 1 {
                    let memo = format!("payout {} paid ({transfer_id})", due.id);
                    ledger::transfer(&mut tx, &transit, STRIPE, due.amount, None, &memo, now)
                        .await
                        .map_err(ledger_error)?;
                    report.paid += 1;
                    report.paid_cents += due.amount.get();
                }
                tx.commit().await?;
                tracing::info!(payout = %due.id, transfer = %transfer_id, "payout paid");
            }
            Err(StripeFailure::Refused { message, .. }) => {
                let mut tx = self.store().begin().await?;
                let settled = sqlx::query(
                    "UPDATE payouts SET status = 'failed', failure_reason = $1, updated_at = $2 \
                     WHERE id = $3 AND status = 'pending'",
                )
                .bind(&message)
                .bind(now)
                .bind(&due.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if settled == 1 {
                    let memo = format!("payout {} refused by Stripe: money back", due.id);
                    let worker = account::worker(&due.worker);
                    ledger::transfer(&mut tx, &transit, &worker, due.amount, None, &memo, now)
                        .await
                        .map_err(ledger_error)?;
                    report.failed += 1;
                }
                tx.commit().await?;
                tracing::warn!(payout = %due.id, reason = %message, "payout refused by Stripe");
            }
            Err(StripeFailure::Unknown(error)) => {
                report.pending += 1;
                tracing::warn!(payout = %due.id, %error,
                    "no clear answer from Stripe; the next run asks again with the same key");
            }
        }
        Ok(())
    }

    /// Runs payouts every `payments.payout_every` until the handle is aborted.
    pub fn spawn_payouts(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.config().payments.payout_every);
            loop {
                ticks.tick().await;
                if let Err(error) = self.run_payouts().await {
                    tracing::warn!(%error, "payout run failed");
                }
            }
        })
    }
}

/// A Stripe failure as the caller sees it.
fn stripe_error(failure: StripeFailure) -> ServiceError {
    match failure {
        StripeFailure::Refused { message, .. } => ServiceError::Conflict(format!(
            "Stripe refused: {message}; ask the operator if this persists"
        )),
        unknown => ServiceError::Internal(anyhow::Error::new(unknown).context("calling Stripe")),
    }
}
