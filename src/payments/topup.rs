//! Top-ups: an agent asks for an amount, HumanPing opens a Stripe Checkout Session for it, and
//! the balance grows only when Stripe's signed webhook confirms the payment (see `webhook.rs`).

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::Row;

use super::stripe_api::StripeFailure;
use crate::domain::ids::{AgentId, random_token};
use crate::domain::money::{CURRENCY, Cents};
use crate::service::{HumanPing, ServiceError, ServiceResult};

/// The smallest top-up Stripe Checkout takes comfortably: $1.00.
const MIN_TOPUP: Cents = Cents::new(100);
/// The largest single top-up: $10,000.00.
const MAX_TOPUP: Cents = Cents::new(1_000_000);

/// A top-up as its agent sees it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TopupView {
    /// The top-up's id.
    pub topup_id: String,
    /// What the agent asked to add, in cents.
    pub amount_cents: i64,
    /// What the agent asked to add, in dollars.
    pub amount: String,
    /// The currency of the amounts, `usd`.
    pub currency: String,
    /// `creating` (Stripe not answered yet), `open` (waiting for payment), `paid` (credited),
    /// `partially_reversed` or `reversed` (refunded or charged back), `failed`.
    pub status: String,
    /// Where to pay: Stripe's Checkout page. Open it in a browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
    /// What the balance received, in cents (0 until Stripe confirms the payment).
    pub credited_cents: i64,
    /// What was taken back after a refund or chargeback, in cents.
    pub reversed_cents: i64,
}

impl HumanPing {
    /// Opens a Stripe Checkout Session for `amount`. Nothing is credited now: the balance grows
    /// when Stripe's signed webhook confirms the payment.
    #[tracing::instrument(skip_all, fields(agent = %agent, cents = amount.get()))]
    pub async fn create_topup(&self, agent: &AgentId, amount: Cents) -> ServiceResult<TopupView> {
        let Some(stripe) = self.config().payments.stripe.clone() else {
            return Err(ServiceError::Forbidden(
                "top-ups need Stripe, and this server runs in test mode; ask the operator to \
                 credit test funds (`humanping credit`) or to start it with a Stripe key"
                    .into(),
            ));
        };
        if amount < MIN_TOPUP || amount > MAX_TOPUP {
            return Err(ServiceError::InvalidInput(format!(
                "a top-up of ${amount} is out of range; give ${MIN_TOPUP} to ${MAX_TOPUP}"
            )));
        }
        let id = format!("top_{}", random_token(12));
        let now = self.clock().now_ms();

        let mut tx = self.store().begin().await?;
        sqlx::query(
            "INSERT INTO topups (id, agent_id, amount_cents, currency, status, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, 'creating', $5, $5)",
        )
        .bind(&id)
        .bind(agent.as_str())
        .bind(amount.get())
        .bind(CURRENCY)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        let base = self.config().payments.public_url.trim_end_matches('/');
        let success = format!("{base}/pay/topup/done?topup={id}");
        let cancel = format!("{base}/pay/topup?cancelled={id}");
        let checkout = stripe.create_checkout(&id, amount, &success, &cancel).await;

        let now = self.clock().now_ms();
        let mut tx = self.store().begin().await?;
        match &checkout {
            Ok(session) => {
                sqlx::query(
                    "UPDATE topups SET status = CASE WHEN status = 'creating' THEN 'open' \
                     ELSE status END, checkout_session_id = $1, checkout_url = $2, \
                     updated_at = $3 WHERE id = $4",
                )
                .bind(&session.id)
                .bind(&session.url)
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
            Err(StripeFailure::Refused { .. }) => {
                sqlx::query(
                    "UPDATE topups SET status = 'failed', updated_at = $1 \
                     WHERE id = $2 AND status = 'creating'",
                )
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
            // The session may exist: if it is paid, its webhook still names this top-up.
            Err(StripeFailure::Unknown(_)) => {}
        }
        tx.commit().await?;
        match checkout {
            Ok(_) => {
                tracing::info!(topup = %id, "top-up opened");
                self.topup(agent, &id).await
            }
            Err(StripeFailure::Refused { message, .. }) => Err(ServiceError::Conflict(format!(
                "Stripe refused the top-up: {message}; check the amount or ask the operator"
            ))),
            Err(failure @ StripeFailure::Unknown(_)) => Err(ServiceError::Internal(
                anyhow::Error::new(failure).context("opening a Stripe Checkout Session"),
            )),
        }
    }

    /// One of the agent's top-ups.
    pub async fn topup(&self, agent: &AgentId, topup_id: &str) -> ServiceResult<TopupView> {
        let row = sqlx::query(
            "SELECT id, amount_cents, currency, status, checkout_url, credited_cents, \
             reversed_cents, loss_cents FROM topups WHERE id = $1 AND agent_id = $2",
        )
        .bind(topup_id)
        .bind(agent.as_str())
        .fetch_optional(self.store().pool())
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no top-up {topup_id:?} of yours; give the topup_id the top-up returned"
            ))
        })?;
        let amount: i64 = row.try_get("amount_cents")?;
        let reversed: i64 = row.try_get("reversed_cents")?;
        let loss: i64 = row.try_get("loss_cents")?;
        Ok(TopupView {
            topup_id: row.try_get("id")?,
            amount_cents: amount,
            amount: Cents::new(amount).to_string(),
            currency: row.try_get("currency")?,
            status: row.try_get("status")?,
            checkout_url: row.try_get("checkout_url")?,
            credited_cents: row.try_get("credited_cents")?,
            reversed_cents: reversed + loss,
        })
    }
}
