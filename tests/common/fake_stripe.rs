//! A stateful fake of the parts of Stripe HumanPing uses, served on a loopback port: Checkout
//! Sessions, Express accounts and their links, Connect transfers. It keeps what it creates,
//! honours idempotency keys as Stripe does (the same key answers the first result again),
//! plays the payer (`pay`, `refund`, `open_dispute`, `close_dispute`), records every event it
//! would send, and signs webhook deliveries as Stripe does (`t=…,v1=HMAC-SHA256("t.body")`), so
//! a test can deliver, replay, duplicate and reorder them.
//!
//! Failure switches: `refuse_transfers` (Stripe says no), `lose_transfer_answers` (the transfer
//! happens, the answer is a 500), `hang_transfers` (the transfer happens, no answer comes: the
//! caller's crash or timeout).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// The secret the fake signs webhooks with.
pub const WEBHOOK_SECRET: &str = "whsec_fake_humanping_tests";
/// The API key HumanPing is given for the fake.
pub const SECRET_KEY: &str = "sk_test_fake_humanping";

/// One event the fake would send.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub kind: String,
    /// The event as Stripe sends it: the exact bytes that are signed.
    pub payload: String,
}

#[derive(Default)]
struct Fake {
    seq: u64,
    /// Idempotency key → the first answer given under it.
    answers: HashMap<String, (u16, Value)>,
    sessions: HashMap<String, Value>,
    /// Session id → the metadata its PaymentIntent gets.
    intent_metadata: HashMap<String, Value>,
    intents: HashMap<String, Value>,
    /// PaymentIntent id → its charge.
    charges: HashMap<String, Value>,
    disputes: HashMap<String, Value>,
    accounts: HashMap<String, Value>,
    transfers: Vec<Value>,
    events: Vec<Event>,
    /// Every API call: method, path, idempotency key.
    requests: Vec<(String, String, Option<String>)>,
    refuse_transfers: Option<String>,
    lose_transfer_answers: usize,
    hang_transfers: bool,
}

impl Fake {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_fake{:06}", self.seq)
    }

    fn emit(&mut self, kind: &str, object: Value) -> Event {
        let id = self.id("evt");
        let payload = json!({
            "id": id,
            "object": "event",
            "created": now_s(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": object},
        })
        .to_string();
        let event = Event {
            id,
            kind: kind.to_owned(),
            payload,
        };
        self.events.push(event.clone());
        event
    }
}

/// The fake Stripe server; stops when dropped.
pub struct FakeStripe {
    /// `http://127.0.0.1:PORT`, to give HumanPing as the Stripe API address.
    pub base: String,
    state: Arc<Mutex<Fake>>,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn error(status: StatusCode, message: &str) -> (u16, Value) {
    (
        status.as_u16(),
        json!({"error": {"type": "invalid_request_error", "message": message}}),
    )
}

impl FakeStripe {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeStripe {
        let state = Arc::new(Mutex::new(Fake::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake Stripe");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("serve the fake Stripe");
        });
        FakeStripe {
            base,
            state,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Fake) -> T) -> T {
        f(&mut self.state.lock().expect("fake state"))
    }

    /// The payer pays the Checkout Session: its PaymentIntent and charge succeed. Emits
    /// `payment_intent.succeeded` then `checkout.session.completed`; returns the PaymentIntent.
    pub fn pay(&self, session_id: &str) -> String {
        self.with(|fake| {
            let mut session = fake.sessions.get(session_id).expect("a session").clone();
            let amount = session["amount_total"].as_i64().expect("amount");
            let pi = fake.id("pi");
            let ch = fake.id("ch");
            let metadata = fake
                .intent_metadata
                .get(session_id)
                .cloned()
                .unwrap_or(json!({}));
            let intent = json!({
                "id": pi, "object": "payment_intent", "amount": amount,
                "amount_capturable": 0, "amount_received": amount,
                "capture_method": "automatic", "confirmation_method": "automatic",
                "created": now_s(), "currency": "usd", "livemode": false,
                "metadata": metadata, "payment_method_types": ["card"],
                "status": "succeeded", "latest_charge": ch,
            });
            let charge = json!({
                "id": ch, "object": "charge", "amount": amount, "amount_captured": amount,
                "amount_refunded": 0, "billing_details": {}, "captured": true,
                "created": now_s(), "currency": "usd", "disputed": false, "livemode": false,
                "metadata": {}, "paid": true, "refunded": false, "status": "succeeded",
                "payment_intent": pi,
            });
            session["payment_status"] = json!("paid");
            session["status"] = json!("complete");
            session["payment_intent"] = json!(pi);
            fake.sessions.insert(session_id.to_owned(), session.clone());
            fake.intents.insert(pi.clone(), intent.clone());
            fake.charges.insert(pi.clone(), charge);
            fake.emit("payment_intent.succeeded", intent);
            fake.emit("checkout.session.completed", session);
            pi
        })
    }

    /// Refunds `cents` more of the payment; emits `charge.refunded`.
    pub fn refund(&self, payment_intent: &str, cents: i64) -> Event {
        self.with(|fake| {
            let charge = fake.charges.get_mut(payment_intent).expect("a charge");
            let refunded = charge["amount_refunded"].as_i64().unwrap() + cents;
            charge["amount_refunded"] = json!(refunded);
            charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap());
            let charge = charge.clone();
            fake.emit("charge.refunded", charge)
        })
    }

    /// The payer's bank disputes `cents` of the payment; emits `charge.dispute.created`.
    pub fn open_dispute(&self, payment_intent: &str, cents: i64) -> (String, Event) {
        self.with(|fake| {
            let id = fake.id("dp");
            let charge = fake.charges.get_mut(payment_intent).expect("a charge");
            charge["disputed"] = json!(true);
            let charge_id = charge["id"].clone();
            let dispute = json!({
                "id": id, "object": "dispute", "amount": cents, "balance_transactions": [],
                "charge": charge_id, "created": now_s(), "currency": "usd",
                "enhanced_eligibility_types": [], "evidence": {"enhanced_evidence": {}},
                "evidence_details": {"enhanced_eligibility": {}, "has_evidence": false,
                    "past_due": false, "submission_count": 0},
                "is_charge_refundable": false, "livemode": false, "metadata": {},
                "reason": "fraudulent", "status": "needs_response",
                "payment_intent": payment_intent,
            });
            fake.disputes.insert(id.clone(), dispute.clone());
            let event = fake.emit("charge.dispute.created", dispute);
            (id, event)
        })
    }

    /// Closes a dispute, won or lost; emits `charge.dispute.closed`.
    pub fn close_dispute(&self, dispute_id: &str, won: bool) -> Event {
        self.with(|fake| {
            let dispute = fake.disputes.get_mut(dispute_id).expect("a dispute");
            dispute["status"] = json!(if won { "won" } else { "lost" });
            let dispute = dispute.clone();
            fake.emit("charge.dispute.closed", dispute)
        })
    }

    /// Every event emitted so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.with(|fake| fake.events.clone())
    }

    /// The last event of a type.
    pub fn last_event(&self, kind: &str) -> Event {
        self.events()
            .into_iter()
            .rev()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
    }

    /// The Checkout Sessions created, by id.
    pub fn sessions(&self) -> HashMap<String, Value> {
        self.with(|fake| fake.sessions.clone())
    }

    /// The transfers made, in order.
    pub fn transfers(&self) -> Vec<Value> {
        self.with(|fake| fake.transfers.clone())
    }

    /// The Express accounts created.
    pub fn accounts(&self) -> HashMap<String, Value> {
        self.with(|fake| fake.accounts.clone())
    }

    /// Every API call: method, path, idempotency key.
    pub fn requests(&self) -> Vec<(String, String, Option<String>)> {
        self.with(|fake| fake.requests.clone())
    }

    /// Refuse transfers with this message (as Stripe does when the account cannot receive).
    pub fn refuse_transfers(&self, message: Option<&str>) {
        self.with(|fake| fake.refuse_transfers = message.map(str::to_owned));
    }

    /// Make the next `n` transfers happen but answer 500.
    pub fn lose_transfer_answers(&self, n: usize) {
        self.with(|fake| fake.lose_transfer_answers = n);
    }

    /// Make transfers happen but never answer (the caller crashes or times out).
    pub fn hang_transfers(&self, hang: bool) {
        self.with(|fake| fake.hang_transfers = hang);
    }

    /// The `Stripe-Signature` header for `payload` signed at `timestamp` with `secret`.
    pub fn signature(payload: &str, secret: &str, timestamp: i64) -> String {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{timestamp}.{payload}").as_bytes());
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Delivers an event to `url` as Stripe does, signed now; returns the status.
    pub async fn deliver(&self, url: &str, event: &Event) -> StatusCode {
        let header = Self::signature(&event.payload, WEBHOOK_SECRET, now_s());
        self.deliver_raw(url, &event.payload, Some(&header)).await
    }

    /// Delivers any body with any signature header.
    pub async fn deliver_raw(&self, url: &str, body: &str, signature: Option<&str>) -> StatusCode {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let status = request
            .send()
            .await
            .expect("the webhook endpoint answers")
            .status();
        StatusCode::from_u16(status.as_u16()).expect("a status")
    }
}

/// Every API call lands here.
async fn handle(
    State(state): State<Arc<Mutex<Fake>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let path = uri.path().to_owned();

    let (status, answer, hang) = {
        let mut fake = state.lock().expect("fake state");
        fake.requests
            .push((method.to_string(), path.clone(), key.clone()));
        let (status, answer) = if !authorized {
            error(StatusCode::UNAUTHORIZED, "Invalid API Key provided")
        } else if let Some((status, answer)) = key.as_ref().and_then(|k| fake.answers.get(k)) {
            (*status, answer.clone())
        } else {
            let (status, answer) = route(&mut fake, &method, &path, &form);
            if let Some(key) = &key
                && status < 500
            {
                fake.answers.insert(key.clone(), (status, answer.clone()));
            }
            (status, answer)
        };
        // A transfer that happened (now or under an earlier call with the same key) may
        // still lose its answer or never answer.
        if path == "/v1/transfers" && status == 200 && fake.lose_transfer_answers > 0 {
            fake.lose_transfer_answers -= 1;
            let (s, v) = error(StatusCode::INTERNAL_SERVER_ERROR, "An error occurred");
            (s, v, false)
        } else {
            let hang = path == "/v1/transfers" && status == 200 && fake.hang_transfers;
            (status, answer, hang)
        }
    };
    if hang {
        std::future::pending::<()>().await;
    }
    (
        StatusCode::from_u16(status).expect("a status"),
        axum::Json(answer),
    )
        .into_response()
}

/// Metadata from form keys `prefix[name]=value`.
fn metadata(form: &HashMap<String, String>, prefix: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form {
        if let Some(name) = k
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            map.insert(name.to_owned(), json!(v));
        }
    }
    Value::Object(map)
}

/// Handles one call; returns the status and the body.
fn route(
    fake: &mut Fake,
    method: &Method,
    path: &str,
    form: &HashMap<String, String>,
) -> (u16, Value) {
    let ok = |v: Value| (200, v);
    let refuse = |message: &str| error(StatusCode::BAD_REQUEST, message);
    match (method.as_str(), path) {
        ("POST", "/v1/checkout/sessions") => {
            let amount = form
                .iter()
                .find(|(k, _)| k.ends_with("[unit_amount]"))
                .and_then(|(_, v)| v.parse::<i64>().ok());
            let (Some(amount), Some(_)) = (amount, form.get("success_url")) else {
                return refuse("Missing required param: line_items or success_url.");
            };
            let id = fake.id("cs");
            let session = json!({
                "id": id, "object": "checkout.session", "automatic_tax": {"enabled": false},
                "amount_total": amount, "currency": "usd",
                "client_reference_id": form.get("client_reference_id"),
                "created": now_s(), "custom_fields": [], "custom_text": {},
                "expires_at": now_s() + 86_400, "livemode": false, "mode": "payment",
                "metadata": metadata(form, "metadata"), "payment_intent": null,
                "payment_method_types": ["card"], "payment_status": "unpaid",
                "shipping_options": [], "status": "open",
                "url": format!("https://checkout.stripe.test/c/pay/{id}"),
            });
            fake.intent_metadata
                .insert(id.clone(), metadata(form, "payment_intent_data[metadata]"));
            fake.sessions.insert(id, session.clone());
            ok(session)
        }
        ("POST", "/v1/accounts") => {
            let id = fake.id("acct");
            let account = json!({
                "id": id, "object": "account", "type": form.get("type"),
                "metadata": metadata(form, "metadata"),
            });
            fake.accounts.insert(id, account.clone());
            ok(account)
        }
        ("POST", "/v1/account_links") => {
            let account = form.get("account").cloned().unwrap_or_default();
            if !fake.accounts.contains_key(&account) {
                return refuse(&format!("No such account: '{account}'"));
            }
            ok(json!({
                "object": "account_link", "created": now_s(), "expires_at": now_s() + 300,
                "url": format!("https://connect.stripe.test/setup/e/{account}"),
            }))
        }
        ("POST", "/v1/transfers") => {
            let destination = form.get("destination").cloned().unwrap_or_default();
            if !fake.accounts.contains_key(&destination) {
                return refuse(&format!("No such destination: '{destination}'"));
            }
            if let Some(message) = fake.refuse_transfers.clone() {
                return refuse(&message);
            }
            let Some(amount) = form.get("amount").and_then(|a| a.parse::<i64>().ok()) else {
                return refuse("Missing required param: amount.");
            };
            let id = fake.id("tr");
            let transfer = json!({
                "id": id, "object": "transfer", "amount": amount, "amount_reversed": 0,
                "created": now_s(), "currency": "usd", "destination": destination,
                "livemode": false, "metadata": metadata(form, "metadata"),
                "reversals": {"object": "list", "data": [], "has_more": false,
                    "url": format!("/v1/transfers/{id}/reversals")},
                "reversed": false,
            });
            fake.transfers.push(transfer.clone());
            ok(transfer)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("Unrecognized request URL ({method} {path})"),
        ),
    }
}
