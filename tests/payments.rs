//! Real money against a stateful fake Stripe on loopback, on every backend: top-ups credited
//! only by signed webhooks, exactly once (duplicates, concurrent duplicates, a crash between the
//! commit and the answer), any arrival order, refunds and chargebacks with the platform-loss
//! rule, payouts (holding period, crash and retry, refusal), spend policies, and every
//! invariant of the books after each scenario.

mod common;
#[path = "common/fake_stripe.rs"]
mod fake_stripe;

use std::sync::Arc;
use std::time::Duration;

use fake_stripe::{Event, FakeStripe, SECRET_KEY, WEBHOOK_SECRET};
use humanping::domain::ids::{AgentId, WorkerId};
use humanping::domain::money::Cents;
use humanping::input::CreateTaskBody;
use humanping::payments::policy::SpendPolicy;
use humanping::payments::{PaymentsConfig, StripeApi, StripeSettings, WebhookOutcome};
use humanping::service::{Clock, Config, HumanPing, ServiceError, SubmissionInput};
use humanping::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A service over `db` whose Stripe is `fake`.
async fn service(db: &common::TestDb, fake: &FakeStripe, clock: Clock) -> HumanPing {
    let stripe = StripeApi::new(StripeSettings {
        secret_key: SECRET_KEY.to_owned(),
        webhook_secret: WEBHOOK_SECRET.to_owned(),
        api_base: Some(fake.base.clone()),
    })
    .expect("a Stripe client for the fake");
    let config = Config {
        payments: PaymentsConfig {
            stripe: Some(Arc::new(stripe)),
            payout_hold: Duration::from_secs(7 * 24 * 3600),
            ..PaymentsConfig::default()
        },
        ..Config::default()
    };
    let store = Store::open(&db.url).await.expect("open the test database");
    HumanPing::new(store, config, clock)
}

/// The books (ledger and payments invariants) balance.
async fn assert_books(svc: &HumanPing, context: &str) {
    let report = svc.verify_books().await.expect("verify the books");
    assert!(
        report.is_balanced(),
        "{context}: the books do not balance:\n  {}",
        report.problems.join("\n  ")
    );
}

/// A running API over the service, with its Stripe webhook URL.
struct Api {
    base: String,
    http: reqwest::Client,
    _server: common::server::InProcess,
}

impl Api {
    async fn start(svc: &HumanPing) -> Api {
        let server = common::server::serve_in_process(svc).await;
        Api {
            base: server.base.clone(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _server: server,
        }
    }

    fn webhook(&self) -> String {
        format!("{}/v1/stripe/webhook", self.base)
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn available(svc: &HumanPing, agent: &AgentId) -> (i64, i64) {
    let b = svc.balance(agent).await.unwrap();
    (b.available_cents, b.held_cents)
}

/// Opens a top-up through REST; returns its id and Checkout Session id.
async fn open_topup(api: &Api, fake: &FakeStripe, key: &str, amount: &str) -> (String, String) {
    let (status, body) = api
        .post("/v1/balance/topups", key, json!({"amount": amount}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "open", "{body}");
    assert_eq!(body["credited_cents"], 0);
    let url = body["checkout_url"].as_str().expect("a checkout URL");
    let topup = body["topup_id"].as_str().unwrap().to_owned();
    let session = fake
        .sessions()
        .into_iter()
        .find(|(_, s)| s["client_reference_id"] == topup.as_str())
        .map(|(id, _)| id)
        .expect("the fake holds the session");
    assert!(url.ends_with(&session), "{url}");
    (topup, session)
}

async fn count(svc: &HumanPing, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(svc.store().pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_top_up_is_credited_only_by_the_signed_webhook_and_only_once() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();

        let (topup, session) = open_topup(&api, &fake, &key, "25.00").await;
        assert_eq!(available(&svc, &agent).await, (0, 0), "{}", db.name);
        let created = fake.requests();
        assert!(
            created.iter().any(|(m, p, k)| m == "POST"
                && p == "/v1/checkout/sessions"
                && k.as_deref() == Some(&format!("humanping-topup-{topup}"))),
            "{created:?}"
        );

        fake.pay(&session);
        assert_eq!(available(&svc, &agent).await, (0, 0), "paid, not yet told");
        let completed = fake.last_event("checkout.session.completed");
        assert_eq!(
            fake.deliver(&api.webhook(), &completed).await,
            StatusCode::OK
        );
        assert_eq!(available(&svc, &agent).await, (2500, 0), "{}", db.name);
        // The PaymentIntent's own success names the same top-up: nothing more.
        let succeeded = fake.last_event("payment_intent.succeeded");
        assert_eq!(
            fake.deliver(&api.webhook(), &succeeded).await,
            StatusCode::OK
        );
        assert_eq!(
            fake.deliver(&api.webhook(), &completed).await,
            StatusCode::OK
        );
        assert_eq!(available(&svc, &agent).await, (2500, 0));

        let (status, body) = api.get(&format!("/v1/balance/topups/{topup}"), &key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["status"].as_str(), body["credited_cents"].as_i64()),
            (Some("paid"), Some(2500))
        );
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_400_and_changes_nothing() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();
        let (_, session) = open_topup(&api, &fake, &key, "10").await;
        fake.pay(&session);
        let event = fake.last_event("checkout.session.completed");
        let now = chrono::Utc::now().timestamp();

        let wrong_secret = FakeStripe::signature(&event.payload, "whsec_someone_else", now);
        let stale = FakeStripe::signature(&event.payload, WEBHOOK_SECRET, now - 600);
        let good = FakeStripe::signature(&event.payload, WEBHOOK_SECRET, now);
        let tampered = event.payload.replace("1000", "9000");
        assert_ne!(tampered, event.payload);
        for (body, header, what) in [
            (event.payload.as_str(), None, "missing"),
            (
                event.payload.as_str(),
                Some(wrong_secret.as_str()),
                "wrong secret",
            ),
            (
                event.payload.as_str(),
                Some(stale.as_str()),
                "ten minutes old",
            ),
            (tampered.as_str(), Some(good.as_str()), "tampered body"),
            (event.payload.as_str(), Some("t=abc,v1=00"), "malformed"),
        ] {
            let status = fake.deliver_raw(&api.webhook(), body, header).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what} on {}", db.name);
        }
        assert_eq!(count(&svc, "SELECT COUNT(*) FROM stripe_events").await, 0);
        assert_eq!(available(&svc, &agent).await, (0, 0));
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn ten_concurrent_duplicates_credit_once() {
    for db in common::databases().await {
        let fake = Arc::new(FakeStripe::start().await);
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();
        let (_, session) = open_topup(&api, &fake, &key, "12.34").await;
        fake.pay(&session);
        let event = fake.last_event("checkout.session.completed");

        let url = api.webhook();
        let deliveries = (0..10).map(|_| {
            let fake = fake.clone();
            let url = url.clone();
            let event = event.clone();
            tokio::spawn(async move { fake.deliver(&url, &event).await })
        });
        for delivery in futures::future::join_all(deliveries).await {
            assert_eq!(delivery.unwrap(), StatusCode::OK, "{}", db.name);
        }
        assert_eq!(available(&svc, &agent).await, (1234, 0), "{}", db.name);
        assert_eq!(count(&svc, "SELECT COUNT(*) FROM stripe_events").await, 1);
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn a_crash_between_the_commit_and_the_200_is_healed_by_the_retry() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();
        let (_, session) = open_topup(&api, &fake, &key, "40").await;
        fake.pay(&session);
        let event = fake.last_event("checkout.session.completed");

        // The server commits the event, then dies before its 200 leaves: Stripe saw no answer.
        let header = FakeStripe::signature(
            &event.payload,
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
        );
        let first = svc
            .handle_stripe_webhook(event.payload.as_bytes(), Some(&header))
            .await
            .unwrap();
        assert_eq!(first, WebhookOutcome::Applied);
        // A fresh process over the same database answers Stripe's retry.
        let fake_for_restart = &fake;
        let restarted = service(&db, fake_for_restart, Clock::system()).await;
        let api2 = Api::start(&restarted).await;
        assert_eq!(fake.deliver(&api2.webhook(), &event).await, StatusCode::OK);
        assert_eq!(
            available(&restarted, &agent).await,
            (4000, 0),
            "{}",
            db.name
        );
        drop(api);
        assert_books(&restarted, db.name).await;
    }
}

/// Delivers `events` in order, each answered 200.
async fn deliver_all(fake: &FakeStripe, api: &Api, events: &[Event]) {
    for event in events {
        assert_eq!(
            fake.deliver(&api.webhook(), event).await,
            StatusCode::OK,
            "{}",
            event.kind
        );
    }
}

#[tokio::test]
async fn a_refund_arriving_before_the_success_leaves_what_stripe_has() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();
        let (topup, session) = open_topup(&api, &fake, &key, "30").await;
        let pi = fake.pay(&session);
        let refund = fake.refund(&pi, 3000);

        deliver_all(&fake, &api, std::slice::from_ref(&refund)).await;
        assert_eq!(
            available(&svc, &agent).await,
            (0, 0),
            "nothing before the success"
        );
        deliver_all(&fake, &api, &fake.events()).await;
        assert_eq!(available(&svc, &agent).await, (0, 0), "{}", db.name);
        let view = svc.topup(&agent, &topup).await.unwrap();
        assert_eq!(
            (
                view.status.as_str(),
                view.credited_cents,
                view.reversed_cents
            ),
            ("reversed", 3000, 3000)
        );
        assert_eq!(
            count(
                &svc,
                "SELECT CAST(COALESCE(SUM(loss_cents), 0) AS BIGINT) FROM topups"
            )
            .await,
            0
        );
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn events_in_any_order_end_in_the_same_books() {
    // Paid $50, refunded $10, a $20 dispute lost: Stripe holds $20 for the agent.
    let orders: [&[usize]; 4] = [
        &[0, 1, 2, 3, 4],
        &[4, 3, 2, 1, 0],
        &[2, 4, 0, 3, 1],
        &[3, 1, 4, 0, 2],
    ];
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let mut agents = Vec::new();
        for order in orders {
            let (agent, key) = svc.create_agent("payer").await.unwrap();
            let (_, session) = open_topup(&api, &fake, &key, "50").await;
            let pi = fake.pay(&session);
            fake.refund(&pi, 1000);
            let (dispute, _) = fake.open_dispute(&pi, 2000);
            fake.close_dispute(&dispute, false);
            let mine: Vec<Event> = fake
                .events()
                .into_iter()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let shuffled: Vec<Event> = order.iter().map(|i| mine[*i].clone()).collect();
            deliver_all(&fake, &api, &shuffled).await;
            // And every event once more, as Stripe's retries would.
            deliver_all(&fake, &api, &mine).await;
            agents.push(agent);
        }
        for agent in &agents {
            assert_eq!(
                available(&svc, agent).await,
                (2000, 0),
                "{} {agent}",
                db.name
            );
        }
        assert_books(&svc, db.name).await;
    }
}

fn task(budget: &str) -> humanping::input::TaskDraft {
    serde_json::from_value::<CreateTaskBody>(json!({
        "kind": "verify", "question": "Is the shop open?", "budget": budget,
    }))
    .unwrap()
    .into_draft()
}

#[tokio::test]
async fn a_chargeback_beyond_the_balance_is_a_platform_loss_and_a_won_dispute_gives_it_back() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();
        let (topup, session) = open_topup(&api, &fake, &key, "20").await;
        let pi = fake.pay(&session);
        deliver_all(&fake, &api, &fake.events()).await;
        assert_eq!(available(&svc, &agent).await, (2000, 0));

        // $15 goes into escrow for a task; then the whole $20 is charged back.
        svc.create_task(&agent, task("15")).await.unwrap();
        let (dispute, opened) = fake.open_dispute(&pi, 2000);
        deliver_all(&fake, &api, &[opened]).await;
        assert_eq!(
            available(&svc, &agent).await,
            (0, 1500),
            "escrow untouched on {}",
            db.name
        );
        let view = svc.topup(&agent, &topup).await.unwrap();
        assert_eq!(
            (view.status.as_str(), view.reversed_cents),
            ("reversed", 2000)
        );
        let loss: (i64, i64) = sqlx::query_as("SELECT reversed_cents, loss_cents FROM topups")
            .fetch_one(svc.store().pool())
            .await
            .unwrap();
        assert_eq!(
            loss,
            (500, 1500),
            "$5 from the balance, $15 a platform loss"
        );
        assert_books(&svc, db.name).await;

        // The platform wins the dispute: the loss is recovered first, then the agent's $5.
        let closed = fake.close_dispute(&dispute, true);
        deliver_all(&fake, &api, &[closed]).await;
        assert_eq!(available(&svc, &agent).await, (500, 1500));
        let after: (i64, i64) = sqlx::query_as("SELECT reversed_cents, loss_cents FROM topups")
            .fetch_one(svc.store().pool())
            .await
            .unwrap();
        assert_eq!(after, (0, 0));
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn without_stripe_keys_the_server_stays_in_test_mode() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "5").await;
        let refused = svc
            .create_topup(&agent, Cents::new(1000))
            .await
            .unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden(_)), "{refused}");
        assert!(
            refused.to_string().contains("humanping credit"),
            "{refused}"
        );
        let webhook = svc
            .handle_stripe_webhook(b"{}", Some("t=1,v1=00"))
            .await
            .unwrap_err();
        assert!(matches!(webhook, ServiceError::NotFound(_)), "{webhook}");
        assert!(svc.run_payouts().await.is_err());
        assert_books(&svc, db.name).await;
    }
}

const START: i64 = 1_800_000_000_000;

/// A worker with $9.00 approved earnings and a connected Stripe account.
async fn earning_worker(svc: &HumanPing, fake: &FakeStripe) -> (WorkerId, String) {
    let (agent, _) = common::funded_agent(svc, "50").await;
    let (worker, _) = common::worker(svc, "ana").await;
    let created = svc.create_task(&agent, task("10")).await.unwrap();
    let assignment = svc.claim(&worker, created.task_id.as_str()).await.unwrap();
    svc.submit(
        &worker,
        assignment.assignment_id.as_str(),
        SubmissionInput {
            answer: Some("Yes".into()),
            structured: None,
            notes: None,
            proof: None,
        },
    )
    .await
    .unwrap();
    svc.approve(&agent, created.task_id.as_str(), None)
        .await
        .unwrap();
    let link = svc.connect_stripe_account(&worker).await.unwrap();
    assert!(link.onboarding_url.contains(&link.stripe_account_id));
    assert!(fake.accounts().contains_key(&link.stripe_account_id));
    // Connecting again keeps the same account.
    let again = svc.connect_stripe_account(&worker).await.unwrap();
    assert_eq!(again.stripe_account_id, link.stripe_account_id);
    assert_eq!(fake.accounts().len(), 1);
    (worker, link.stripe_account_id)
}

#[tokio::test]
async fn earnings_are_paid_after_the_holding_period_once() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let clock = Clock::manual(START);
        let svc = service(&db, &fake, clock.clone()).await;
        let (worker, account) = earning_worker(&svc, &fake).await;

        let before = svc.worker_payouts(&worker).await.unwrap();
        assert_eq!(
            (before.payable_cents, before.holding_cents),
            (0, 900),
            "{}",
            db.name
        );
        let report = svc.run_payouts().await.unwrap();
        assert_eq!(report.paid, 0);
        assert!(fake.transfers().is_empty());

        clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
        let report = svc.run_payouts().await.unwrap();
        assert_eq!((report.paid, report.paid_cents), (1, 900), "{}", db.name);
        let transfers = fake.transfers();
        assert_eq!(transfers.len(), 1);
        assert_eq!(
            (
                transfers[0]["amount"].as_i64(),
                transfers[0]["destination"].as_str()
            ),
            (Some(900), Some(account.as_str()))
        );
        let view = svc.worker_payouts(&worker).await.unwrap();
        let payout = &view.payouts[0];
        assert_eq!(payout.status, "paid");
        let key = humanping::payments::payout_idempotency_key(&payout.payout_id);
        assert!(
            fake.requests()
                .iter()
                .any(|(_, p, k)| p == "/v1/transfers" && k.as_deref() == Some(key.as_str()))
        );
        assert_eq!(
            (
                view.payable_cents,
                view.in_transit_cents,
                view.paid_out_cents
            ),
            (0, 0, 900)
        );

        assert_eq!(
            svc.run_payouts().await.unwrap().paid,
            0,
            "nothing left to pay"
        );
        assert_eq!(fake.transfers().len(), 1);
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn a_payout_retried_after_a_crash_pays_once() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let clock = Clock::manual(START);
        let svc = service(&db, &fake, clock.clone()).await;
        let (worker, _) = earning_worker(&svc, &fake).await;
        clock.advance(Duration::from_secs(8 * 24 * 3600));

        // The process dies while Stripe makes the transfer: the call never returns.
        fake.hang_transfers(true);
        // The run is dropped mid-call (at the end of this block), as a killed process stops.
        {
            let run = svc.run_payouts();
            tokio::pin!(run);
            let made = async {
                for _ in 0..3000 {
                    if !fake.transfers().is_empty() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("the payout never reached Stripe");
            };
            tokio::select! {
                finished = &mut run => panic!("the run should hang, it ended: {finished:?}"),
                () = made => {}
            }
        }
        assert_eq!(fake.transfers().len(), 1, "Stripe made the transfer");
        let view = svc.worker_payouts(&worker).await.unwrap();
        assert_eq!(
            (view.payouts[0].status.as_str(), view.in_transit_cents),
            ("pending", 900)
        );
        assert_books(&svc, db.name).await;

        // Next the answer is lost on the way back.
        fake.hang_transfers(false);
        fake.lose_transfer_answers(1);
        let lost = svc.run_payouts().await.unwrap();
        assert_eq!((lost.paid, lost.pending), (0, 1), "{}", db.name);
        assert_books(&svc, db.name).await;

        // A restarted run asks again with the same key and gets the same transfer.
        let restarted = service(&db, &fake, clock.clone()).await;
        let report = restarted.run_payouts().await.unwrap();
        assert_eq!(report.paid, 1, "{}", db.name);
        assert_eq!(fake.transfers().len(), 1, "paid once on {}", db.name);
        let view = restarted.worker_payouts(&worker).await.unwrap();
        assert_eq!(view.payouts.len(), 1);
        assert_eq!(
            (view.payouts[0].status.as_str(), view.paid_out_cents),
            ("paid", 900)
        );
        assert_eq!(
            view.payouts[0].stripe_transfer_id.as_deref(),
            fake.transfers()[0]["id"].as_str()
        );
        assert_books(&restarted, db.name).await;
    }
}

#[tokio::test]
async fn a_refused_transfer_returns_the_money_with_the_reason() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let clock = Clock::manual(START);
        let svc = service(&db, &fake, clock.clone()).await;
        let (worker, _) = earning_worker(&svc, &fake).await;
        clock.advance(Duration::from_secs(8 * 24 * 3600));

        fake.refuse_transfers(Some("Your destination account needs to have at least one of the following capabilities enabled: transfers"));
        let report = svc.run_payouts().await.unwrap();
        assert_eq!(report.failed, 1, "{}", db.name);
        let view = svc.worker_payouts(&worker).await.unwrap();
        assert_eq!(view.payouts[0].status, "failed");
        assert!(
            view.payouts[0]
                .failure_reason
                .as_deref()
                .unwrap()
                .contains("capabilities")
        );
        assert_eq!(
            (view.payable_cents, view.in_transit_cents),
            (900, 0),
            "money is back"
        );
        assert_books(&svc, db.name).await;

        fake.refuse_transfers(None);
        assert_eq!(svc.run_payouts().await.unwrap().paid, 1);
        assert_eq!(
            svc.worker_payouts(&worker).await.unwrap().paid_out_cents,
            900
        );
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn workers_connect_and_see_payouts_over_rest() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (_, key) = common::worker(&svc, "bo").await;
        let (status, link) = api
            .post("/v1/worker/payouts/connect", &key, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{link}");
        assert!(
            link["onboarding_url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let (status, view) = api.get("/v1/worker/payouts", &key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(view["connected"], true);
        let (_, agent_key) = svc.create_agent("a").await.unwrap();
        let (status, _) = api.get("/v1/worker/payouts", &agent_key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_books(&svc, db.name).await;
    }
}

#[tokio::test]
async fn spend_policies_refuse_with_the_limit_and_what_is_left() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, _) = common::funded_agent(&svc, "500").await;
        svc.set_spend_policy(
            agent.as_str(),
            SpendPolicy {
                daily_limit_cents: Some(3000),
                per_task_limit_cents: Some(2500),
                approval_threshold_cents: Some(1500),
            },
        )
        .await
        .unwrap();

        let too_big = svc.create_task(&agent, task("26")).await.unwrap_err();
        assert!(matches!(too_big, ServiceError::Forbidden(_)), "{too_big}");
        assert!(
            too_big.to_string().contains("per-task limit is $25.00"),
            "{too_big}"
        );

        svc.create_task(&agent, task("10")).await.unwrap();
        svc.create_task(&agent, task("12")).await.unwrap();
        let over_day = svc.create_task(&agent, task("9")).await.unwrap_err();
        let message = over_day.to_string();
        assert!(
            message.contains("daily limit is $30.00") && message.contains("$8.00 is left"),
            "{message}"
        );

        svc.set_spend_policy(
            agent.as_str(),
            SpendPolicy {
                daily_limit_cents: None,
                per_task_limit_cents: None,
                approval_threshold_cents: Some(1500),
            },
        )
        .await
        .unwrap();
        let needs = svc
            .create_task(&agent, task("20"))
            .await
            .unwrap_err()
            .to_string();
        assert!(needs.contains("need an operator's approval"), "{needs}");
        let code = needs
            .split("--code ")
            .nth(1)
            .and_then(|rest| rest.get(..16))
            .expect("an approval code")
            .to_owned();
        svc.approve_spend(agent.as_str(), &code).await.unwrap();
        let approved = svc.create_task(&agent, task("20")).await.unwrap();
        assert_eq!(approved.budget_cents, 2000);
        // An approval is good for one task.
        assert!(svc.create_task(&agent, task("20")).await.is_err());
        assert_books(&svc, db.name).await;
    }
}

/// Runs the `humanping` binary on `database_url` with the Stripe settings of `fake` (when
/// given) in its environment; returns whether it succeeded and its stdout and stderr.
async fn humanping(database_url: &str, fake: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_humanping"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("HUMANPING_") || text == "DATABASE_URL" {
            command.env_remove(&name);
        }
    }
    command.env("HUMANPING_DATABASE_URL", database_url);
    if let Some(base) = fake {
        command
            .env("HUMANPING_STRIPE_SECRET_KEY", SECRET_KEY)
            .env("HUMANPING_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("HUMANPING_STRIPE_API_BASE", base)
            .env("HUMANPING_PAYOUT_HOLD_DAYS", "0");
    }
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run humanping");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payout_command_pays_through_the_configured_stripe_and_the_books_verify() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let (worker, account) = earning_worker(&svc, &fake).await;

        let (ok, text) = humanping(&db.url, None, &["payouts", "run"]).await;
        assert!(!ok && text.contains("test mode"), "{text}");

        let (ok, text) = humanping(&db.url, Some(&fake.base), &["payouts", "run"]).await;
        assert!(ok, "{text}");
        assert!(text.contains("paid: 1 (900 cents)"), "{text}");
        assert_eq!(fake.transfers().len(), 1);
        assert_eq!(
            fake.transfers()[0]["destination"].as_str(),
            Some(account.as_str())
        );
        let (ok, text) = humanping(&db.url, Some(&fake.base), &["payouts", "run"]).await;
        assert!(ok && text.contains("paid: 0"), "{text}");
        assert_eq!(fake.transfers().len(), 1);
        assert_eq!(
            svc.worker_payouts(&worker).await.unwrap().paid_out_cents,
            900
        );

        let (ok, text) = humanping(&db.url, None, &["ledger", "verify"]).await;
        assert!(ok && text.contains("the books balance"), "{text}");
        assert!(
            !text.contains(SECRET_KEY) && !text.contains(WEBHOOK_SECRET),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_payout_runs_pay_once() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let clock = Clock::manual(START);
        let svc = service(&db, &fake, clock.clone()).await;
        let (worker, _) = earning_worker(&svc, &fake).await;
        clock.advance(Duration::from_secs(8 * 24 * 3600));
        let other = service(&db, &fake, clock.clone()).await;

        let (a, b) = tokio::join!(svc.run_payouts(), other.run_payouts());
        assert_eq!(a.unwrap().paid + b.unwrap().paid, 1, "{}", db.name);
        assert_eq!(fake.transfers().len(), 1, "{}", db.name);
        assert_eq!(
            svc.worker_payouts(&worker).await.unwrap().paid_out_cents,
            900
        );
        assert_books(&svc, db.name).await;
    }
}

/// Calls an MCP tool over Streamable HTTP (the stateless revision) and returns the reply.
async fn mcp_tool(api: &Api, key: &str, name: &str, arguments: Value) -> Value {
    let version = "2026-07-28";
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "payments test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let response = api
        .http
        .post(format!("{}/mcp", api.base))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Protocol-Version", version)
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": meta}}))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}

#[tokio::test]
async fn the_topup_tool_returns_a_checkout_link_and_refusals_say_why() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (agent, key) = svc.create_agent("payer").await.unwrap();

        let reply = mcp_tool(&api, &key, "topup", json!({"amount": "15.50"})).await;
        let result = &reply["result"];
        assert_ne!(result["isError"], true, "{reply}");
        let topup = &result["structuredContent"];
        assert_eq!(topup["amount_cents"], 1550, "{reply}");
        assert!(
            topup["checkout_url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let session = fake
            .sessions()
            .into_iter()
            .find(|(_, s)| s["client_reference_id"] == topup["topup_id"])
            .map(|(id, _)| id)
            .expect("a session for the top-up");
        fake.pay(&session);
        deliver_all(&fake, &api, &fake.events()).await;
        assert_eq!(available(&svc, &agent).await, (1550, 0), "{}", db.name);

        let refused = mcp_tool(&api, &key, "topup", json!({"amount": "0.50"})).await;
        assert_eq!(refused["result"]["isError"], true, "{refused}");
        let text = refused["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("$1.00 to $10000.00"), "{refused}");

        svc.set_spend_policy(
            agent.as_str(),
            SpendPolicy {
                per_task_limit_cents: Some(500),
                ..SpendPolicy::default()
            },
        )
        .await
        .unwrap();
        let over = mcp_tool(
            &api,
            &key,
            "verify",
            json!({"question": "Open?", "budget": "6", "wait_seconds": 0}),
        )
        .await;
        assert_eq!(over["result"]["isError"], true, "{over}");
        let text = over["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("per-task limit is $5.00"), "{over}");
        assert_books(&svc, db.name).await;
    }
}

/// With a Stripe key (against the fake), each payment route answers each role as it should:
/// nobody, agent A (owns the top-up), agent B, a worker, another worker, an operator key.
/// Stripe's webhook takes no key at all: only its signature counts.
#[tokio::test]
async fn with_stripe_on_each_payment_route_answers_each_role() {
    for db in common::databases().await {
        let fake = FakeStripe::start().await;
        let svc = service(&db, &fake, Clock::system()).await;
        let api = Api::start(&svc).await;
        let (_, agent_a) = svc.create_agent("a").await.unwrap();
        let (_, agent_b) = svc.create_agent("b").await.unwrap();
        let (_, worker) = common::worker(&svc, "w").await;
        let (_, other_worker) = common::worker(&svc, "w2").await;
        let operator = svc.create_operator_key().await.unwrap();
        let keys = ["", &agent_a, &agent_b, &worker, &other_worker, &operator];
        let (topup, _) = open_topup(&api, &fake, &agent_a, "10").await;

        let send = async |method: &str, path: &str, key: &str, body: Option<&str>| {
            let mut request = api
                .http
                .request(method.parse().unwrap(), format!("{}{path}", api.base));
            if !key.is_empty() {
                request = request.bearer_auth(key);
            }
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_owned());
            }
            request.send().await.unwrap().status().as_u16()
        };
        let topup_path = format!("/v1/balance/topups/{topup}");
        let rows: [(&str, &str, Option<&str>, [u16; 6]); 7] = [
            (
                "POST",
                "/v1/balance/topups",
                Some(r#"{"amount": "10"}"#),
                [401, 201, 201, 403, 403, 403],
            ),
            ("GET", &topup_path, None, [401, 200, 404, 403, 403, 403]),
            (
                "POST",
                "/v1/stripe/webhook",
                Some(r#"{"type": "checkout.session.completed"}"#),
                [400; 6],
            ),
            (
                "POST",
                "/v1/worker/payouts/connect",
                Some("{}"),
                [401, 403, 403, 200, 200, 403],
            ),
            (
                "GET",
                "/v1/worker/payouts",
                None,
                [401, 403, 403, 200, 200, 403],
            ),
            ("GET", "/pay/topup", None, [200; 6]),
            ("GET", "/pay/topup/done", None, [200; 6]),
        ];
        for (method, path, body, expected) in rows {
            for (key, want) in keys.iter().zip(expected) {
                let got = send(method, path, key, body).await;
                let role = [
                    "nobody",
                    "agent A",
                    "agent B",
                    "worker",
                    "other worker",
                    "operator",
                ][keys.iter().position(|k| k == key).unwrap()];
                assert_eq!(got, want, "{}: {method} {path} by {role}", db.name);
            }
        }
        assert_books(&svc, "after the table").await;
    }
}
