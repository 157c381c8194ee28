//! Real money: agents fund their balance through Stripe Checkout, Stripe's signed webhooks
//! confirm (or reverse) each payment, workers are paid through Stripe Connect transfers, and
//! spend policies bound what an agent may commit to tasks.
//!
//! Without a Stripe secret key none of this is active: the server runs in test mode and the
//! operator's `credit` command funds agents, as before. Every Stripe call goes through
//! async-stripe; its base URL is configuration, so tests point it at a local fake.
//!
//! # Accounts
//!
//! | account | what it holds |
//! |---|---|
//! | `external:stripe` | the world on the other side of Stripe; the only Stripe account allowed below zero |
//! | `agent:{id}` | an agent's money, credited by confirmed top-ups |
//! | `worker:{id}` | a worker's earnings; payable once older than the holding period |
//! | `transit:{worker}` | a payout sent to Stripe and not yet confirmed or refused |
//! | `platform:losses` | reversals an agent's balance could not cover; its debit balance is the loss |
//!
//! # Invariants (checked by [`verify::check`], part of `humanping ledger verify`)
//!
//! 1. A balance is credited only when a signed Stripe event says the payment succeeded, and
//!    by exactly what Stripe says was paid: each top-up's `credited_cents` is the most Stripe
//!    reported as paid for its PaymentIntent, and is moved at most once.
//! 2. Every Stripe event id is recorded, under a unique key, in the same transaction as its
//!    effect: a duplicate (also several at once, also from several processes) moves nothing.
//! 3. The books follow the state Stripe reports, not the order events arrive in: each event
//!    updates the payment's recorded state (most paid, most refunded, each dispute at its
//!    latest status; a closed dispute is never reopened) and the books move by the difference
//!    between that state and what they already reflect. A refund or dispute reported before
//!    the success waits in that state and applies when the success arrives.
//! 4. Reversal rule: a refund or a dispute (while open or lost) takes back
//!    `min(paid, refunded + disputed)`. It comes out of the agent's *available* balance only:
//!    escrow held for tasks and money already paid to workers are not touched, and no balance
//!    goes below zero. What the balance cannot cover is booked from `platform:losses`, so it is
//!    visible, never hidden. A won dispute gives back the platform's loss first, then the
//!    agent's money. Per top-up: `reversed + loss <= credited`.
//! 5. `external:stripe` nets to what went through Stripe: credits of agents minus reversals
//!    (from agents and from losses) minus confirmed payouts. `platform:losses` nets to the sum
//!    of every top-up's `loss_cents`.
//! 6. A worker's transit account holds exactly their `pending` payouts. A payout is created
//!    (and the money moved to transit) in one transaction before Stripe is called; its Stripe
//!    idempotency key is derived from its id, so a crash at any point followed by a retry pays
//!    at most once. A refused transfer returns the money to the worker with Stripe's reason.
//! 7. Earnings become payable `payout_hold` after they were earned; at most one payout per
//!    worker is in flight.
//! 8. Spend policies are checked inside the transaction that holds a task's budget, so
//!    concurrent task creations cannot together exceed a daily limit.

pub mod policy;
pub mod stripe_api;
pub mod verify;

mod payouts;
mod topup;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::money::Cents;

pub use payouts::{PayoutRunReport, PayoutView, PayoutsView, StripeConnectLink};
pub use stripe_api::{StripeApi, StripeSettings};
pub use topup::TopupView;
pub use webhook::WebhookOutcome;

/// Ledger accounts of the payments module.
pub mod account {
    use crate::domain::ids::WorkerId;

    /// The world on the other side of Stripe.
    pub const STRIPE: &str = "external:stripe";
    /// Reversals an agent's balance could not cover.
    pub const LOSSES: &str = "platform:losses";

    /// A worker's payouts in flight.
    pub fn transit(worker: &WorkerId) -> String {
        format!("transit:{worker}")
    }
}

/// Settings of real money. The default is test mode: no Stripe.
#[derive(Clone, Debug)]
pub struct PaymentsConfig {
    /// The Stripe client and webhook secret; `None` runs in test mode.
    pub stripe: Option<Arc<StripeApi>>,
    /// How long approved earnings wait before they may be paid out (chargebacks and disputes
    /// of the agent's side arrive within it).
    pub payout_hold: Duration,
    /// How often `serve` runs payouts.
    pub payout_every: Duration,
    /// The smallest payout; less waits for the next run.
    pub min_payout: Cents,
    /// Where agents and workers reach this server, for Stripe's return URLs.
    pub public_url: String,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            stripe: None,
            payout_hold: Duration::from_secs(7 * 24 * 60 * 60),
            payout_every: Duration::from_secs(60 * 60),
            min_payout: Cents::new(100),
            public_url: "http://127.0.0.1:8787".to_owned(),
        }
    }
}

/// The Stripe idempotency key of a payout: derived from its own id, so every retry of the
/// same payout is the same transfer to Stripe.
pub fn payout_idempotency_key(payout_id: &str) -> String {
    format!("humanping-payout-{payout_id}")
}

/// The metadata key naming the top-up on Stripe objects.
pub(crate) const TOPUP_METADATA: &str = "humanping_topup";
