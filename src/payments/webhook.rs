//! Stripe's webhooks: verified on the raw body, recorded once, and applied as the state Stripe
//! reports rather than as a stream of deltas, so duplicates, retries and any arrival order end
//! in the same books.
//!
//! Each event updates what HumanPing knows of one payment (keyed by its PaymentIntent): the
//! most Stripe reported as paid, the most it reported as refunded, each dispute at its latest
//! status. Then `reconcile` moves the difference between that state and what the top-up's
//! ledger entries already reflect. All of it, and the event's id, commit in one transaction.

use serde::Deserialize;
use sqlx::{AnyConnection, Row};
use stripe_webhook::{EventObject, Webhook, WebhookError};

use super::account::{LOSSES, STRIPE};
use crate::domain::money::Cents;
use crate::ledger::{self, LedgerError, account};
use crate::service::{HumanPing, ServiceError, ServiceResult};

/// What became of a webhook delivery. Each is answered 200.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The event was new and its effect is committed.
    Applied,
    /// The event was handled before; nothing moved.
    Duplicate,
}

/// Dispute statuses under which Stripe has withdrawn the disputed amount.
const WITHDRAWN: &[&str] = &["needs_response", "under_review", "lost"];
/// Dispute statuses that are final: an older event never reopens them.
const CLOSED: &[&str] = &["won", "lost", "warning_closed", "prevented"];

/// What an event says about a payment.
enum Fact {
    /// The payment succeeded for `cents`.
    Paid {
        payment: String,
        topup: Option<String>,
        cents: i64,
    },
    /// The payment's charge has `cents` refunded in total.
    Refunded { payment: String, cents: i64 },
    /// A dispute of the payment is at `status`.
    Dispute {
        id: String,
        payment: String,
        cents: i64,
        status: String,
    },
    /// Nothing HumanPing acts on.
    Nothing,
}

/// The part of every event read before its object: its id and type.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
}

/// The event types whose object HumanPing must read; one it cannot read is refused (400) so
/// Stripe keeps it and retries, rather than dropped.
const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

impl HumanPing {
    /// Handles one delivery of Stripe's webhook: `payload` is the raw body and `signature` the
    /// `Stripe-Signature` header. A bad or missing signature, or one older than Stripe's five
    /// minute tolerance, is refused before anything is parsed and changes nothing.
    pub async fn handle_stripe_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
    ) -> ServiceResult<WebhookOutcome> {
        let Some(stripe) = self.config().payments.stripe.clone() else {
            return Err(ServiceError::NotFound(
                "Stripe webhooks are not enabled on this server; start it with \
                 --stripe-secret-key and --stripe-webhook-secret"
                    .into(),
            ));
        };
        let signature = signature.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ServiceError::InvalidInput("no Stripe-Signature header; nothing was changed".into())
        })?;
        let payload = std::str::from_utf8(payload).map_err(|_| {
            ServiceError::InvalidInput("the body is not UTF-8; nothing was changed".into())
        })?;
        let now_s = self.clock().now_ms().div_euclid(1000);
        let event = match Webhook::construct_event_with_timestamp(
            payload,
            signature,
            stripe.webhook_secret(),
            now_s,
        ) {
            Ok(event) => Some(event),
            // The signature and its time were good; only the object could not be read.
            Err(WebhookError::BadParse(_)) => None,
            Err(error) => {
                tracing::warn!(%error, "Stripe webhook refused: signature check failed");
                return Err(ServiceError::InvalidInput(format!(
                    "the Stripe signature does not verify ({error}); nothing was changed"
                )));
            }
        };
        let envelope: Envelope = serde_json::from_str(payload).map_err(|_| {
            ServiceError::InvalidInput("the event has no id or type; nothing was changed".into())
        })?;
        let fact = match event {
            Some(event) => Fact::from(event.data.object),
            None if HANDLED.contains(&envelope.event_type.as_str()) => {
                tracing::warn!(event = %envelope.id, kind = %envelope.event_type,
                    "Stripe event could not be read; Stripe will retry it");
                return Err(ServiceError::InvalidInput(format!(
                    "event {} ({}) could not be read; nothing was changed",
                    envelope.id, envelope.event_type
                )));
            }
            None => Fact::Nothing,
        };
        let now = self.clock().now_ms();

        let mut tx = self.store().begin().await?;
        let new = sqlx::query(
            "INSERT INTO stripe_events (id, event_type, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&envelope.id)
        .bind(&envelope.event_type)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if new == 0 {
            tx.rollback().await?;
            tracing::info!(event = %envelope.id, "duplicate Stripe event ignored");
            return Ok(WebhookOutcome::Duplicate);
        }
        let payment = match fact {
            Fact::Paid {
                payment,
                topup,
                cents,
            } => {
                let topup = match topup {
                    Some(id) => known_topup(&mut tx, &id).await?,
                    None => None,
                };
                record_payment(&mut tx, &payment, topup.as_deref(), cents, 0, now).await?;
                Some(payment)
            }
            Fact::Refunded { payment, cents } => {
                record_payment(&mut tx, &payment, None, 0, cents, now).await?;
                Some(payment)
            }
            Fact::Dispute {
                id,
                payment,
                cents,
                status,
            } => {
                record_dispute(&mut tx, &id, &payment, cents, &status, now).await?;
                record_payment(&mut tx, &payment, None, 0, 0, now).await?;
                Some(payment)
            }
            Fact::Nothing => None,
        };
        if let Some(payment) = &payment {
            self.reconcile(&mut tx, payment, now).await?;
        }
        tx.commit().await?;
        tracing::info!(event = %envelope.id, kind = %envelope.event_type, "Stripe event applied");
        Ok(WebhookOutcome::Applied)
    }

    /// Brings a top-up's ledger entries in line with what Stripe reported about its payment.
    async fn reconcile(
        &self,
        conn: &mut AnyConnection,
        payment: &str,
        now: i64,
    ) -> ServiceResult<()> {
        let row = sqlx::query(
            "SELECT topup_id, succeeded_cents, refunded_cents FROM stripe_payments \
             WHERE payment_intent_id = $1",
        )
        .bind(payment)
        .fetch_one(&mut *conn)
        .await?;
        let Some(topup_id): Option<String> = row.try_get("topup_id")? else {
            // Not linked to a top-up yet (a refund or dispute before the success): the state
            // waits here and applies when the success event names the top-up.
            return Ok(());
        };
        let paid: i64 = row.try_get("succeeded_cents")?;
        let refunded: i64 = row.try_get("refunded_cents")?;
        let disputed: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM stripe_disputes \
             WHERE payment_intent_id = $1 AND status IN ({})",
            quoted(WITHDRAWN)
        ))
        .bind(payment)
        .fetch_one(&mut *conn)
        .await?;

        let sql = format!(
            "SELECT agent_id, credited_cents, reversed_cents, loss_cents, status FROM topups \
             WHERE id = $1{}",
            self.store().for_update()
        );
        let topup = sqlx::query(&sql)
            .bind(&topup_id)
            .fetch_one(&mut *conn)
            .await?;
        let agent_id: String = topup.try_get("agent_id")?;
        let agent = account::agent(&crate::domain::ids::AgentId::from_db(agent_id));
        let mut credited: i64 = topup.try_get("credited_cents")?;
        let mut reversed: i64 = topup.try_get("reversed_cents")?;
        let mut loss: i64 = topup.try_get("loss_cents")?;
        let mut status: String = topup.try_get("status")?;
        let memo_tail = format!("top-up {topup_id}");

        // Limitation: Stripe's processing and dispute fees are not booked in the ledger.
        if paid > credited {
            move_money(
                conn,
                STRIPE,
                &agent,
                paid - credited,
                &format!("Stripe {memo_tail}"),
                now,
            )
            .await?;
            credited = paid;
        }
        let target = credited.min(refunded.saturating_add(disputed));
        let taken = reversed + loss;
        if target > taken {
            let owed = target - taken;
            let sql = format!(
                "SELECT id FROM accounts WHERE id = $1{}",
                self.store().for_update()
            );
            sqlx::query(&sql)
                .bind(&agent)
                .fetch_optional(&mut *conn)
                .await?;
            let available = ledger::totals(conn, &agent)
                .await?
                .map(|t| t.available())
                .unwrap_or(0)
                .max(0);
            let from_agent = owed.min(available);
            if from_agent > 0 {
                let memo = format!("refund or chargeback of {memo_tail}");
                move_money(conn, &agent, STRIPE, from_agent, &memo, now).await?;
                reversed += from_agent;
            }
            // Limitation: a loss is not recovered from the agent's later top-ups.
            if owed > from_agent {
                let memo = format!("platform loss: reversal of {memo_tail} beyond the balance");
                move_money(conn, LOSSES, STRIPE, owed - from_agent, &memo, now).await?;
                loss += owed - from_agent;
                tracing::warn!(topup = %topup_id, cents = owed - from_agent,
                    "reversal beyond the agent's balance booked as a platform loss");
            }
        } else if target < taken {
            let back = taken - target;
            let to_losses = back.min(loss);
            if to_losses > 0 {
                let memo = format!("dispute won: loss on {memo_tail} recovered");
                move_money(conn, STRIPE, LOSSES, to_losses, &memo, now).await?;
                loss -= to_losses;
            }
            let to_agent = back - to_losses;
            if to_agent > 0 {
                let memo = format!("dispute won: {memo_tail} given back");
                move_money(conn, STRIPE, &agent, to_agent, &memo, now).await?;
                reversed -= to_agent;
            }
        }
        if credited > 0 {
            let taken = reversed + loss;
            status = if taken == 0 {
                "paid"
            } else if taken >= credited {
                "reversed"
            } else {
                "partially_reversed"
            }
            .to_owned();
        }
        sqlx::query(
            "UPDATE topups SET credited_cents = $1, reversed_cents = $2, loss_cents = $3, \
             status = $4, payment_intent_id = COALESCE(payment_intent_id, $5), updated_at = $6 \
             WHERE id = $7",
        )
        .bind(credited)
        .bind(reversed)
        .bind(loss)
        .bind(&status)
        .bind(payment)
        .bind(now)
        .bind(&topup_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

impl From<EventObject> for Fact {
    fn from(object: EventObject) -> Fact {
        match object {
            EventObject::CheckoutSessionCompleted(session)
            | EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => {
                if session.payment_status != stripe_checkout::CheckoutSessionPaymentStatus::Paid {
                    return Fact::Nothing;
                }
                let topup = session
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get(super::TOPUP_METADATA).cloned())
                    .or_else(|| session.client_reference_id.clone());
                let payment = match &session.payment_intent {
                    Some(intent) => intent.id().to_string(),
                    None => session.id.to_string(),
                };
                Fact::Paid {
                    payment,
                    topup,
                    cents: session.amount_total.unwrap_or(0),
                }
            }
            EventObject::PaymentIntentSucceeded(intent) => Fact::Paid {
                payment: intent.id.to_string(),
                topup: intent.metadata.get(super::TOPUP_METADATA).cloned(),
                cents: intent.amount_received,
            },
            EventObject::ChargeRefunded(charge) => match &charge.payment_intent {
                Some(intent) => Fact::Refunded {
                    payment: intent.id().to_string(),
                    cents: charge.amount_refunded,
                },
                None => Fact::Nothing,
            },
            EventObject::ChargeDisputeCreated(dispute)
            | EventObject::ChargeDisputeUpdated(dispute)
            | EventObject::ChargeDisputeClosed(dispute)
            | EventObject::ChargeDisputeFundsWithdrawn(dispute)
            | EventObject::ChargeDisputeFundsReinstated(dispute) => match &dispute.payment_intent {
                Some(intent) => Fact::Dispute {
                    id: dispute.id.to_string(),
                    payment: intent.id().to_string(),
                    cents: dispute.amount,
                    status: dispute.status.as_str().to_owned(),
                },
                None => Fact::Nothing,
            },
            _ => Fact::Nothing,
        }
    }
}

/// The top-up named by an event, if it is one of ours.
async fn known_topup(conn: &mut AnyConnection, id: &str) -> ServiceResult<Option<String>> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM topups WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    if found.is_none() {
        tracing::warn!(
            topup = id,
            "Stripe event names a top-up this database does not have"
        );
    }
    Ok(found)
}

/// Records the most Stripe reported as paid and refunded for a payment (never less than
/// before), and which top-up it is once known.
async fn record_payment(
    conn: &mut AnyConnection,
    payment: &str,
    topup: Option<&str>,
    paid: i64,
    refunded: i64,
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO stripe_payments (payment_intent_id, topup_id, succeeded_cents, \
         refunded_cents, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (payment_intent_id) DO UPDATE SET \
         topup_id = COALESCE(stripe_payments.topup_id, excluded.topup_id), \
         succeeded_cents = CASE WHEN excluded.succeeded_cents > stripe_payments.succeeded_cents \
           THEN excluded.succeeded_cents ELSE stripe_payments.succeeded_cents END, \
         refunded_cents = CASE WHEN excluded.refunded_cents > stripe_payments.refunded_cents \
           THEN excluded.refunded_cents ELSE stripe_payments.refunded_cents END, \
         updated_at = excluded.updated_at",
    )
    .bind(payment)
    .bind(topup)
    .bind(paid.max(0))
    .bind(refunded.max(0))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a dispute at its reported status; a closed dispute keeps its final status.
async fn record_dispute(
    conn: &mut AnyConnection,
    id: &str,
    payment: &str,
    cents: i64,
    status: &str,
    now: i64,
) -> ServiceResult<()> {
    let sql = format!(
        "INSERT INTO stripe_disputes (id, payment_intent_id, amount_cents, status, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
         status = CASE WHEN stripe_disputes.status IN ({closed}) THEN stripe_disputes.status \
           ELSE excluded.status END, \
         amount_cents = excluded.amount_cents, updated_at = excluded.updated_at",
        closed = quoted(CLOSED)
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(payment)
        .bind(cents.max(0))
        .bind(status)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A posted ledger transfer made for a payment.
async fn move_money(
    conn: &mut AnyConnection,
    debit: &str,
    credit: &str,
    cents: i64,
    memo: &str,
    now: i64,
) -> ServiceResult<()> {
    ledger::transfer(conn, debit, credit, Cents::new(cents), None, memo, now)
        .await
        .map_err(ledger_error)?;
    Ok(())
}

/// A ledger refusal while applying Stripe's state: a fault (the transaction rolls back and
/// Stripe retries the event).
pub(super) fn ledger_error(error: LedgerError) -> ServiceError {
    match error {
        LedgerError::Database(e) => e.into(),
        other => {
            ServiceError::Internal(anyhow::Error::new(other).context("ledger refused a payment"))
        }
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
