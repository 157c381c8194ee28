//! The Stripe calls HumanPing makes, all through async-stripe: a Checkout Session per top-up,
//! an Express account and its onboarding link per worker, and a Connect transfer per payout.
//! Each create call carries an idempotency key derived from HumanPing's own id for the thing,
//! so a retry after a crash or a lost answer is the same call to Stripe.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ProductData,
};
use stripe_connect::account::{CreateAccount, CreateAccountType};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::CreateTransfer;

use crate::domain::money::{CURRENCY, Cents};

/// What the operator gives to enable real money.
#[derive(Clone)]
pub struct StripeSettings {
    /// The secret API key (`sk_live_…`, `sk_test_…` or a restricted `rk_…` key).
    pub secret_key: String,
    /// The signing secret of the webhook endpoint (`whsec_…`).
    pub webhook_secret: String,
    /// Another Stripe API address (a local fake in tests); Stripe's own when `None`.
    pub api_base: Option<String>,
}

/// A Stripe client and the webhook secret. Its `Debug` never shows either key.
pub struct StripeApi {
    client: stripe::Client,
    webhook_secret: String,
    live: bool,
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApi")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// Why a Stripe call did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StripeFailure {
    /// Stripe answered and said no: the call did not happen and retrying it as is will not help.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// No clear answer (network, timeout, Stripe's own error): the call may or may not have
    /// happened; retry it with the same idempotency key to find out.
    #[error("no clear answer from Stripe: {0}")]
    Unknown(String),
}

impl From<StripeError> for StripeFailure {
    fn from(error: StripeError) -> Self {
        match error {
            StripeError::Stripe(detail, status)
                if (400..500).contains(&status) && status != 409 && status != 429 =>
            {
                StripeFailure::Refused {
                    status,
                    message: detail
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", detail.type_)),
                }
            }
            other => StripeFailure::Unknown(other.to_string()),
        }
    }
}

/// A Checkout Session as HumanPing needs it.
pub(crate) struct Checkout {
    /// The session's id (`cs_…`).
    pub id: String,
    /// Stripe's payment page for it.
    pub url: String,
}

impl StripeApi {
    /// A client for `settings`. Fails on a key that cannot be sent as a header or a malformed
    /// API address.
    pub fn new(settings: StripeSettings) -> anyhow::Result<StripeApi> {
        let secret = settings.secret_key.trim();
        anyhow::ensure!(
            !secret.is_empty(),
            "the Stripe secret key is empty; pass --stripe-secret-key sk_…"
        );
        anyhow::ensure!(
            settings.webhook_secret.trim().starts_with("whsec_"),
            "the Stripe webhook secret must start with whsec_; copy the signing secret of the \
             webhook endpoint from the Stripe dashboard into --stripe-webhook-secret"
        );
        let mut builder = stripe::ClientBuilder::new(secret).timeout(Duration::from_secs(30));
        if let Some(base) = &settings.api_base {
            let base = if base.ends_with('/') {
                base.clone()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder.build().map_err(|e| {
            anyhow::anyhow!("could not set up the Stripe client: {e}; check the key and API URL")
        })?;
        Ok(StripeApi {
            client,
            webhook_secret: settings.webhook_secret.trim().to_owned(),
            live: secret.starts_with("sk_live_") || secret.starts_with("rk_live_"),
        })
    }

    /// Whether the key moves real money (a live key). Test keys move Stripe test money, and
    /// the operator may still credit test funds beside them.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The secret webhook signatures are checked with.
    pub(crate) fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// Creates the Checkout Session of a top-up; the top-up's id rides in the session's and the
    /// PaymentIntent's metadata, so every later event names it.
    pub(crate) async fn create_checkout(
        &self,
        topup_id: &str,
        amount: Cents,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<Checkout, StripeFailure> {
        let metadata = HashMap::from([(super::TOPUP_METADATA.to_owned(), topup_id.to_owned())]);
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency());
        price.unit_amount = Some(amount.get());
        price.product_data = Some(ProductData::new("HumanPing balance top-up"));
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        intent.metadata = Some(metadata.clone());
        let session = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Payment)
            .line_items(vec![item])
            .client_reference_id(topup_id)
            .metadata(metadata)
            .payment_intent_data(intent)
            .success_url(success_url)
            .cancel_url(cancel_url)
            .customize()
            .request_strategy(idempotent(&format!("humanping-topup-{topup_id}")))
            .send(&self.client)
            .await?;
        let url = session.url.clone().ok_or_else(|| {
            StripeFailure::Unknown("the Checkout Session came back without a URL".into())
        })?;
        Ok(Checkout {
            id: session.id.to_string(),
            url,
        })
    }

    /// Creates a worker's Express account; the same worker always gets the same account, also
    /// when an earlier attempt's answer was lost.
    pub(crate) async fn create_express_account(
        &self,
        worker_id: &str,
    ) -> Result<String, StripeFailure> {
        let metadata = HashMap::from([("humanping_worker".to_owned(), worker_id.to_owned())]);
        let account = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&format!("humanping-account-{worker_id}")))
            .send(&self.client)
            .await?;
        Ok(account.id.to_string())
    }

    /// A fresh onboarding link for an Express account (links expire within minutes).
    pub(crate) async fn onboarding_link(
        &self,
        account_id: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, StripeFailure> {
        let link = CreateAccountLink::new(account_id, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(refresh_url)
            .return_url(return_url)
            .send(&self.client)
            .await?;
        Ok(link.url)
    }

    /// Sends a payout to a connected account as a Connect transfer, keyed by the payout's id.
    pub(crate) async fn transfer(
        &self,
        payout_id: &str,
        amount: Cents,
        destination: &str,
    ) -> Result<String, StripeFailure> {
        let metadata = HashMap::from([("humanping_payout".to_owned(), payout_id.to_owned())]);
        let transfer = CreateTransfer::new(currency(), destination)
            .amount(amount.get())
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&super::payout_idempotency_key(payout_id)))
            .send(&self.client)
            .await?;
        Ok(transfer.id.to_string())
    }
}

fn currency() -> stripe_types::Currency {
    CURRENCY
        .parse()
        .expect("HumanPing's currency is one Stripe knows")
}

fn idempotent(key: &str) -> RequestStrategy {
    RequestStrategy::Idempotent(IdempotencyKey::new(key).expect("keys are short and not empty"))
}
