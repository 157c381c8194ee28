//! Real money over HTTP: agents' top-ups (and a page to pay one), Stripe's webhook, and workers'
//! Stripe accounts and payouts.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/balance/topups` | agent | open a Stripe Checkout for `{"amount"}` (201) |
//! | `GET /v1/balance/topups/{id}` | agent | one top-up and whether Stripe confirmed it |
//! | `POST /v1/stripe/webhook` | Stripe | signed events; verified on the raw body |
//! | `POST /v1/worker/payouts/connect` | worker | an onboarding link to Stripe Express |
//! | `GET /v1/worker/payouts` | worker | payable, holding, in transit, paid out |
//! | `GET /pay/topup` | anyone | a page where an agent's owner pays a top-up |
//! | `GET /pay/connect` | anyone | a page where a worker connects a Stripe account for payouts |

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Agent, Worker};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use crate::domain::money::Cents;
use crate::payments::{PayoutsView, StripeConnectLink, TopupView, WebhookOutcome};
use crate::service::HumanPing;

/// The payments routes, to merge into the API router.
pub(crate) fn routes() -> Router<HumanPing> {
    Router::new()
        .route("/v1/balance/topups", post(create_topup))
        .route("/v1/balance/topups/{id}", get(topup))
        .route("/v1/stripe/webhook", post(stripe_webhook))
        .route("/v1/worker/payouts/connect", post(connect))
        .route("/v1/worker/payouts", get(payouts))
        .route("/pay/topup", get(topup_page))
        .route("/pay/topup/done", get(topup_done_page))
        .route("/pay/connect", get(connect_page))
}

/// The body of `POST /v1/balance/topups`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopupBody {
    /// Dollars to add, e.g. `25.00` (a number or decimal text).
    amount: Value,
}

/// `POST /v1/balance/topups`: opens a Stripe Checkout; the balance grows when Stripe confirms.
pub(crate) async fn create_topup(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiJson(body): ApiJson<TopupBody>,
) -> ApiResult<(StatusCode, Json<TopupView>)> {
    let amount =
        Cents::from_json(&body.amount).map_err(|e| ApiError::invalid(format!("amount: {e}")))?;
    let topup = service.create_topup(&agent, amount).await?;
    Ok((StatusCode::CREATED, Json(topup)))
}

/// `GET /v1/balance/topups/{id}`.
pub(crate) async fn topup(
    State(service): State<HumanPing>,
    Agent(agent): Agent,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TopupView>> {
    Ok(Json(service.topup(&agent, &id).await?))
}

/// `POST /v1/stripe/webhook`: the raw body and its `Stripe-Signature`; 200 for a new or a
/// duplicate event, 400 (and nothing changed) for a bad signature.
pub(crate) async fn stripe_webhook(
    State(service): State<HumanPing>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = service.handle_stripe_webhook(&body, signature).await?;
    Ok(Json(json!({
        "received": true,
        "duplicate": outcome == WebhookOutcome::Duplicate,
    })))
}

/// `POST /v1/worker/payouts/connect`: the worker's Stripe Express onboarding link.
pub(crate) async fn connect(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<StripeConnectLink>> {
    Ok(Json(service.connect_stripe_account(&worker).await?))
}

/// `GET /v1/worker/payouts`.
pub(crate) async fn payouts(
    State(service): State<HumanPing>,
    Worker(worker): Worker,
) -> ApiResult<Json<PayoutsView>> {
    Ok(Json(service.worker_payouts(&worker).await?))
}

/// `GET /pay/topup`: a page where the agent's owner pastes the agent key and an amount, and is
/// sent on to Stripe Checkout. The key stays in the page: it goes only to this server.
async fn topup_page() -> Html<String> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Add funds · HumanPing" }
            }
            body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem" {
                h1 { "Add funds to an agent" }
                p { "Payment goes through Stripe. The balance grows once Stripe confirms it." }
                form id="topup" {
                    p { label { "Agent API key" br; input id="key" type="password" required autocomplete="off" style="width: 100%"; } }
                    p { label { "Amount (USD)" br; input id="amount" type="text" inputmode="decimal" value="25.00" required; } }
                    p { button type="submit" { "Continue to Stripe" } }
                }
                p id="message" role="status" {}
                script {
                    (maud::PreEscaped(r#"
document.getElementById('topup').addEventListener('submit', async (event) => {
  event.preventDefault();
  const message = document.getElementById('message');
  message.textContent = 'Opening Stripe…';
  const response = await fetch('/v1/balance/topups', {
    method: 'POST',
    headers: {'Content-Type': 'application/json',
              'Authorization': 'Bearer ' + document.getElementById('key').value.trim()},
    body: JSON.stringify({amount: document.getElementById('amount').value.trim()}),
  });
  const body = await response.json();
  if (response.ok && body.checkout_url) { window.location.href = body.checkout_url; }
  else { message.textContent = (body.error && body.error.message) || 'The top-up failed.'; }
});
"#))
                }
            }
        }
    };
    Html(page.into_string())
}

/// `GET /pay/topup/done`: where Stripe sends the payer back.
async fn topup_done_page() -> Html<String> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Thank you · HumanPing" } }
            body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 2rem auto" {
                h1 { "Thank you" }
                p { "The agent's balance grows as soon as Stripe confirms the payment, usually within seconds. The agent sees it with the balance tool or GET /v1/balance." }
            }
        }
    };
    Html(page.into_string())
}

/// `GET /pay/connect`: a page where a worker pastes their key and is sent on to Stripe's
/// onboarding for payouts.
async fn connect_page() -> Html<String> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Get paid · HumanPing" }
            }
            body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem" {
                h1 { "Get paid through Stripe" }
                p { "Connect a Stripe account once; approved earnings are paid to it after the holding period." }
                form id="connect" {
                    p { label { "Worker API key" br; input id="key" type="password" required autocomplete="off" style="width: 100%"; } }
                    p { button type="submit" { "Continue to Stripe" } }
                }
                p id="message" role="status" {}
                script {
                    (maud::PreEscaped(r#"
document.getElementById('connect').addEventListener('submit', async (event) => {
  event.preventDefault();
  const message = document.getElementById('message');
  message.textContent = 'Opening Stripe…';
  const response = await fetch('/v1/worker/payouts/connect', {
    method: 'POST',
    headers: {'Authorization': 'Bearer ' + document.getElementById('key').value.trim()},
  });
  const body = await response.json();
  if (response.ok && body.onboarding_url) { window.location.href = body.onboarding_url; }
  else { message.textContent = (body.error && body.error.message) || 'Connecting failed.'; }
});
"#))
                }
            }
        }
    };
    Html(page.into_string())
}
