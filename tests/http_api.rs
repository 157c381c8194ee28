//! The REST API end to end: a real server on a loopback port per test, a real HTTP client, a
//! fresh database per test, and the books checked after every test.

mod common;

use std::time::Duration;

use humanping::domain::money::Cents;
use humanping::service::HumanPing;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running API server over a fresh database.
struct Api {
    base: String,
    client: reqwest::Client,
    service: HumanPing,
    _server: common::server::InProcess,
}

impl Api {
    /// Serves the router over `service` on a free loopback port.
    async fn start(service: HumanPing) -> Api {
        // Server logs show up under a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "humanping=debug".to_owned()),
            )
            .with_test_writer()
            .try_init();
        let server = common::server::serve_in_process(&service).await;
        Api {
            base: server.base.clone(),
            client: reqwest::Client::new(),
            service,
            _server: server,
        }
    }

    /// A new agent with `cents` of test funds; returns its key.
    async fn agent(&self, name: &str, cents: i64) -> String {
        let (_, key) = self
            .service
            .create_agent(name)
            .await
            .expect("create an agent");
        if cents > 0 {
            self.service
                .credit(&key, Cents::new(cents))
                .await
                .expect("credit test funds");
        }
        key
    }

    /// A new worker who can take any task; returns its key.
    async fn worker(&self, name: &str) -> String {
        common::worker(&self.service, name).await.1
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    async fn send(builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = builder.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{status} with a non-JSON body: {text:?}"));
        (status, body)
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        Api::send(self.request(reqwest::Method::GET, path, Some(key))).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        Api::send(
            self.request(reqwest::Method::POST, path, Some(key))
                .json(&body),
        )
        .await
    }

    async fn post_empty(&self, path: &str, key: &str) -> (StatusCode, Value) {
        Api::send(self.request(reqwest::Method::POST, path, Some(key))).await
    }

    async fn create(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.post("/v1/tasks", key, body).await
    }

    async fn balance(&self, key: &str) -> Value {
        let (status, body) = self.get("/v1/balance", key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Runs the block against a fresh server on every backend the harness offers, then checks
/// that the books balance.
macro_rules! on_every_backend {
    (|$api:ident| $body:block) => {
        for db in common::databases().await {
            eprintln!("backend: {}", db.name);
            let $api = Api::start(common::service(&db).await).await;
            $body
            common::assert_books_balanced(&$api.service).await;
        }
    };
}

/// Asserts an error response: status, code and words of the message.
fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    code: &str,
    words: &[&str],
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    for word in words {
        assert!(
            message.contains(word),
            "message {message:?} should mention {word:?}"
        );
    }
}

fn verify(question: &str) -> Value {
    json!({"kind": "verify", "question": question, "budget": 5.00})
}

#[tokio::test]
async fn an_agent_pays_a_worker_for_a_verified_fact() {
    on_every_backend!(|api| {
        let agent = api.agent("walkthrough", 5_000).await;
        let worker = api.worker("Ana").await;

        let (status, task) = api
            .create(&agent, verify("Is Olive & Gourmando open today?"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let task_id = task["task_id"].as_str().unwrap().to_owned();
        assert_eq!(task["status"], "open");
        assert_eq!(task["budget_cents"], 500);
        assert_eq!(task["held_cents"], 500);
        let balance = api.balance(&agent).await;
        assert_eq!(
            (
                balance["available_cents"].as_i64(),
                balance["held_cents"].as_i64()
            ),
            (Some(4_500), Some(500))
        );

        let (status, offers) = api.get("/v1/worker/tasks", &worker).await;
        assert_eq!(status, StatusCode::OK, "{offers}");
        let offer = offers["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["task_id"] == task_id.as_str());
        let offer = offer.unwrap_or_else(|| panic!("the task is offered: {offers}"));
        assert_eq!(offer["pay_cents"], 450);

        let (status, assignment) = api
            .post_empty(&format!("/v1/worker/tasks/{task_id}/claim"), &worker)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        assert_eq!(assignment["status"], "claimed");
        let assignment_id = assignment["assignment_id"].as_str().unwrap().to_owned();

        // The agent waits while the worker answers.
        let waiting = {
            let (client, url, agent) = (
                api.client.clone(),
                format!("{}/v1/tasks/{task_id}?wait=30", api.base),
                agent.clone(),
            );
            tokio::spawn(async move { Api::send(client.get(url).bearer_auth(agent)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, submitted) = api
            .post(
                &format!("/v1/worker/assignments/{assignment_id}/submit"),
                &worker,
                json!({"answer": "Yes, open until 4pm"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{submitted}");
        assert_eq!(submitted["status"], "submitted");

        let (status, done) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["answer"], "Yes, open until 4pm");

        let (status, approved) = api
            .post_empty(&format!("/v1/tasks/{task_id}/approve"), &agent)
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        assert_eq!(approved["status"], "approved");
        assert_eq!(approved["held_cents"], 0);

        let balance = api.balance(&agent).await;
        assert_eq!(balance["available_cents"], 4_500, "{balance}");
        assert_eq!(balance["held_cents"], 0, "{balance}");
        assert_eq!(balance["spent_cents"], 500, "{balance}");
        assert_eq!(balance["available"], "45.00", "{balance}");

        let (status, me) = api.get("/v1/worker/me", &worker).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["earned_cents"], 450, "{me}");
        assert_eq!(me["pending_cents"], 0, "{me}");

        let (status, mine) = api.get("/v1/worker/assignments", &worker).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        assert_eq!(mine["assignments"][0]["status"], "approved", "{mine}");
        assert_eq!(mine["assignments"][0]["paid_cents"], 450, "{mine}");

        let (status, page) = api.get("/v1/tasks?status=approved&limit=5", &agent).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");
    });
}

#[tokio::test]
async fn bad_budgets_are_refused_with_the_reason() {
    on_every_backend!(|api| {
        let agent = api.agent("budgets", 5_000).await;
        let cases = [
            (json!(0), "out of range"),
            (json!(-5), "negative"),
            (json!("abc"), "not a number"),
            (json!(5.001), "two decimal"),
            (json!(1e308), "too large"),
        ];
        for (budget, reason) in cases {
            let (status, body) = api
                .create(
                    &agent,
                    json!({"kind": "verify", "question": "Open?", "budget": budget}),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::BAD_REQUEST,
                "invalid_input",
                &["budget", reason],
            );
        }
        let balance = api.balance(&agent).await;
        assert_eq!(balance["held_cents"], 0, "nothing was held: {balance}");
    });
}

#[tokio::test]
async fn bad_text_is_refused_with_the_reason() {
    on_every_backend!(|api| {
        let agent = api.agent("text", 5_000).await;

        let (status, body) = api.create(&agent, verify("   ")).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["empty"],
        );

        let (status, body) = api.create(&agent, verify(&"x".repeat(1 << 20))).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["limit is 4000"],
        );

        let (status, body) = api
            .create(
                &agent,
                json!({"kind": "verify", "question": "q", "budgett": 5}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["budgett"],
        );

        let (status, body) = api
            .create(&agent, json!({"kind": "lunch", "question": "q"}))
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["lunch"],
        );

        let (status, body) = api.create(&agent, json!({"question": "q"})).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["kind"],
        );

        let malformed = api
            .request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
            .header("content-type", "application/json")
            .body("{\"kind\": \"verify\", \"question\": ");
        let (status, body) = Api::send(malformed).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["not valid JSON"],
        );

        let empty = api
            .request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
            .header("content-type", "application/json");
        let (status, body) = Api::send(empty).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["empty"],
        );

        let form = api
            .request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("kind=verify");
        let (status, body) = Api::send(form).await;
        assert_error(
            status,
            &body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &["application/json"],
        );

        let huge = api
            .request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
            .header("content-type", "application/json")
            .body(format!(
                "{{\"kind\": \"verify\", \"question\": \"{}\"}}",
                "x".repeat(3 << 20)
            ));
        let (status, body) = Api::send(huge).await;
        assert_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &["limit"],
        );

        let balance = api.balance(&agent).await;
        assert_eq!(balance["held_cents"], 0, "nothing was held: {balance}");
    });
}

#[tokio::test]
async fn keys_are_required_and_scoped() {
    on_every_backend!(|api| {
        let agent = api.agent("keys", 1_000).await;
        let worker = api.worker("Bo").await;

        let (status, body) =
            Api::send(api.request(reqwest::Method::GET, "/v1/balance", None)).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &["Authorization: Bearer <key>"],
        );
        let response = api
            .request(reqwest::Method::GET, "/v1/balance", None)
            .send()
            .await
            .unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));

        let (status, body) = api.get("/v1/balance", "hp_test_notakeyanyoneissued").await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &["unknown"],
        );
        assert!(
            !body.to_string().contains("hp_test_notakeyanyoneissued"),
            "the key is not echoed: {body}"
        );

        let (status, body) = api.get("/v1/balance", "not even a key").await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", &[]);

        let basic = api
            .request(reqwest::Method::GET, "/v1/balance", None)
            .header("authorization", "Basic YTpi");
        let (status, body) = Api::send(basic).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &["Bearer"],
        );

        let by_header = api
            .request(reqwest::Method::GET, "/v1/balance", None)
            .header("x-api-key", &agent);
        let (status, body) = Api::send(by_header).await;
        assert_eq!(status, StatusCode::OK, "X-API-Key works: {body}");
        assert_eq!(body["available_cents"], 1_000);

        let (status, body) = api.get("/v1/balance", &worker).await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "forbidden",
            &["agent"],
        );
        let (status, body) = api.create(&worker, verify("Open?")).await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "forbidden",
            &["agent"],
        );
        let (status, body) = api.get("/v1/worker/tasks", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "forbidden",
            &["worker"],
        );

        // Authentication comes before the body is read.
        let (status, body) = Api::send(
            api.request(reqwest::Method::POST, "/v1/tasks", None)
                .body("{"),
        )
        .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", &[]);

        let (status, body) = Api::send(api.client.get(format!("{}/healthz", api.base))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    });
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    on_every_backend!(|api| {
        let agent = api.agent("routes", 0).await;

        let (status, body) = api.get("/v1/nothing-here", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            &["/v1/nothing-here"],
        );
        let (status, body) = Api::send(api.client.get(format!("{}/", api.base))).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);

        let response = api
            .request(reqwest::Method::DELETE, "/v1/balance", Some(&agent))
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("allow"));
        let (status, body) =
            Api::send(api.request(reqwest::Method::DELETE, "/v1/balance", Some(&agent))).await;
        assert_error(
            status,
            &body,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &["DELETE", "GET"],
        );

        let (status, body) = api.get("/v1/tasks?limit=500", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["limit"],
        );
        let (status, body) = api.get("/v1/tasks?status=lost", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["lost"],
        );
        let (status, body) = api.get("/v1/tasks?colour=red", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["colour"],
        );
        let (status, body) = api.get("/v1/tasks/task_whatever?wait=121", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["wait", "120"],
        );
        let (status, body) = api.get("/v1/tasks/task_whatever?wait=soon", &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["wait"],
        );
    });
}

#[tokio::test]
async fn tasks_are_private_to_their_agent() {
    on_every_backend!(|api| {
        let alice = api.agent("alice", 2_000).await;
        let mallory = api.agent("mallory", 2_000).await;
        let (status, task) = api.create(&alice, verify("Is the bakery open?")).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let task_id = task["task_id"].as_str().unwrap();

        for path in ["/v1/tasks/task_doesnotexist", "/v1/tasks/not-an-id"] {
            let (status, body) = api.get(path, &alice).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);
        }
        let (status, body) = api.get(&format!("/v1/tasks/{task_id}"), &mallory).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);
        let (status, body) = api
            .post_empty(&format!("/v1/tasks/{task_id}/cancel"), &mallory)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);
        let (status, body) = api
            .post_empty(&format!("/v1/tasks/{task_id}/approve"), &mallory)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);

        let (status, page) = api.get("/v1/tasks", &mallory).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["tasks"], json!([]));

        let (status, cancelled) = api
            .post_empty(&format!("/v1/tasks/{task_id}/cancel"), &alice)
            .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(api.balance(&alice).await["available_cents"], 2_000);
    });
}

#[tokio::test]
async fn conflicts_and_missing_funds_are_reported() {
    on_every_backend!(|api| {
        let agent = api.agent("conflicts", 1_000).await;
        let ana = api.worker("Ana").await;
        let bo = api.worker("Bo").await;

        let (status, body) = api
            .create(
                &agent,
                json!({"kind": "verify", "question": "Open?", "budget": 20}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            &["20.00", "10.00"],
        );

        let (status, task) = api.create(&agent, verify("Is the museum open?")).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let task_id = task["task_id"].as_str().unwrap().to_owned();

        let (status, body) = api
            .post_empty(&format!("/v1/tasks/{task_id}/approve"), &agent)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::CONFLICT,
            "conflict",
            &["no result"],
        );

        let claim = format!("/v1/worker/tasks/{task_id}/claim");
        let (status, assignment) = api.post_empty(&claim, &ana).await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        let (status, body) = api.post_empty(&claim, &ana).await;
        assert_error(status, &body, StatusCode::CONFLICT, "conflict", &[]);
        let (status, body) = api.post_empty(&claim, &bo).await;
        assert_error(status, &body, StatusCode::CONFLICT, "conflict", &[]);

        let (status, body) = api
            .post_empty(&format!("/v1/tasks/{task_id}/cancel"), &agent)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::CONFLICT,
            "conflict",
            &["claimed"],
        );

        let submit = format!(
            "/v1/worker/assignments/{}/submit",
            assignment["assignment_id"].as_str().unwrap()
        );
        let (status, body) = api.post(&submit, &bo, json!({"answer": "Yes"})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &[]);
        let (status, body) = api.post(&submit, &ana, json!({"answer": "Yes"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, body) = api
            .post(&format!("/v1/tasks/{task_id}/dispute"), &agent, json!({}))
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["reason"],
        );

        let approve = format!("/v1/tasks/{task_id}/approve");
        let (status, body) = api.post_empty(&approve, &agent).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = api.post_empty(&approve, &agent).await;
        assert_error(
            status,
            &body,
            StatusCode::CONFLICT,
            "conflict",
            &["already approved"],
        );
        let (status, body) = api
            .post(
                &format!("/v1/tasks/{task_id}/dispute"),
                &agent,
                json!({"reason": "late"}),
            )
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, "conflict", &[]);

        let balance = api.balance(&agent).await;
        assert_eq!(
            (
                balance["available_cents"].as_i64(),
                balance["spent_cents"].as_i64()
            ),
            (Some(500), Some(500))
        );
    });
}

#[tokio::test]
async fn a_dispute_refunds_the_agent() {
    on_every_backend!(|api| {
        let agent = api.agent("disputes", 1_000).await;
        let worker = api.worker("Cy").await;
        let (_, task) = api.create(&agent, verify("Is the pool open?")).await;
        let task_id = task["task_id"].as_str().unwrap().to_owned();
        let (_, assignment) = api
            .post_empty(&format!("/v1/worker/tasks/{task_id}/claim"), &worker)
            .await;
        let submit = format!(
            "/v1/worker/assignments/{}/submit",
            assignment["assignment_id"].as_str().unwrap()
        );
        let (status, body) = api.post(&submit, &worker, json!({"answer": "No"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let dispute = format!("/v1/tasks/{task_id}/dispute");
        let request = || {
            api.request(reqwest::Method::POST, &dispute, Some(&agent))
                .header("idempotency-key", "dispute-1")
                .json(&json!({"reason": "The pool was closed for repairs"}))
        };
        let (status, first) = Api::send(request()).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["status"], "refunded");
        let (status, again) = Api::send(request()).await;
        assert_eq!(status, StatusCode::OK, "a retried dispute replays: {again}");
        assert_eq!(again["status"], "refunded");

        let balance = api.balance(&agent).await;
        assert_eq!(
            (
                balance["available_cents"].as_i64(),
                balance["spent_cents"].as_i64()
            ),
            (Some(1_000), Some(0))
        );
    });
}

#[tokio::test]
async fn an_idempotency_key_creates_and_charges_once() {
    on_every_backend!(|api| {
        let agent = api.agent("retries", 5_000).await;
        let create = |key: &str, body: Value| {
            api.request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
                .header("idempotency-key", key)
                .json(&body)
        };

        let (status, first) = Api::send(create("order-1", verify("Is the shop open?"))).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, second) = Api::send(create("order-1", verify("Is the shop open?"))).await;
        assert_eq!(status, StatusCode::CREATED, "{second}");
        assert_eq!(first["task_id"], second["task_id"]);
        assert_eq!(api.balance(&agent).await["held_cents"], 500);

        // The key in the body and in the header are one and the same key.
        let mut in_body = verify("Is the shop open?");
        in_body["idempotency_key"] = json!("order-1");
        let (status, third) = api.create(&agent, in_body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{third}");
        assert_eq!(first["task_id"], third["task_id"]);
        let (status, body) = Api::send(create("order-2", in_body)).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["Idempotency-Key", "differ"],
        );

        let (status, body) = Api::send(create("order-1", verify("Is the cinema open?"))).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            &["order-1"],
        );

        let (status, body) = Api::send(create(&"k".repeat(201), verify("Is the shop open?"))).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["Idempotency-Key"],
        );

        let (status, page) = api.get("/v1/tasks", &agent).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(api.balance(&agent).await["held_cents"], 500);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_key_create_one_task() {
    on_every_backend!(|api| {
        let agent = api.agent("storm", 5_000).await;
        let mut requests = Vec::new();
        for _ in 0..10 {
            let request = api
                .request(reqwest::Method::POST, "/v1/tasks", Some(&agent))
                .header("idempotency-key", "storm-1")
                .json(&verify("Is the ferry running?"));
            requests.push(tokio::spawn(Api::send(request)));
        }
        let mut ids = Vec::new();
        for request in requests {
            let (status, body) = request.await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.push(body["task_id"].as_str().unwrap().to_owned());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one task: {ids:?}");

        let balance = api.balance(&agent).await;
        assert_eq!(
            (
                balance["available_cents"].as_i64(),
                balance["held_cents"].as_i64()
            ),
            (Some(4_500), Some(500))
        );
        let (_, page) = api.get("/v1/tasks", &agent).await;
        assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");
    });
}

#[tokio::test]
async fn tasks_are_listed_newest_first_a_page_at_a_time() {
    on_every_backend!(|api| {
        let agent = api.agent("pages", 5_000).await;
        let mut created = Vec::new();
        for n in 0..3 {
            let (status, task) = api.create(&agent, verify(&format!("Question {n}?"))).await;
            assert_eq!(status, StatusCode::CREATED, "{task}");
            created.push(task["task_id"].as_str().unwrap().to_owned());
        }

        let (status, first) = api.get("/v1/tasks?limit=2", &agent).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["tasks"].as_array().unwrap().len(), 2, "{first}");
        let cursor = first["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a next page: {first}"));
        let (status, second) = api
            .get(&format!("/v1/tasks?limit=2&before={cursor}"), &agent)
            .await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert!(
            second.get("next_cursor").is_none(),
            "the last page: {second}"
        );

        let mut listed: Vec<String> = [&first, &second]
            .iter()
            .flat_map(|page| page["tasks"].as_array().unwrap().iter())
            .map(|task| task["task_id"].as_str().unwrap().to_owned())
            .collect();
        listed.sort();
        created.sort();
        assert_eq!(listed, created);

        let (status, open) = api.get("/v1/tasks?status=open", &agent).await;
        assert_eq!(status, StatusCode::OK, "{open}");
        assert_eq!(open["tasks"].as_array().unwrap().len(), 3, "{open}");
        let (status, none) = api.get("/v1/tasks?status=approved", &agent).await;
        assert_eq!(status, StatusCode::OK, "{none}");
        assert_eq!(none["tasks"], json!([]));
    });
}

#[tokio::test]
async fn creating_waits_only_when_asked() {
    on_every_backend!(|api| {
        let agent = api.agent("waiter", 5_000).await;

        let started = std::time::Instant::now();
        let mut body = verify("Is the library open?");
        body["wait_seconds"] = json!(1);
        let (status, task) = api.create(&agent, body).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        assert_eq!(
            task["status"], "open",
            "no human answered within a second: {task}"
        );
        assert!(started.elapsed() >= Duration::from_millis(900), "it waited");

        let started = std::time::Instant::now();
        let (status, task) = api.create(&agent, verify("Is the gym open?")).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it did not wait"
        );

        let mut body = verify("Is the zoo open?");
        body["wait_seconds"] = json!(121);
        let (status, body) = api.create(&agent, body).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &["wait_seconds", "120"],
        );
        assert_eq!(
            api.balance(&agent).await["held_cents"],
            1_000,
            "the refused task held nothing"
        );
    });
}

#[tokio::test]
async fn a_worker_gives_a_claim_back_and_the_slot_returns_to_the_pool() {
    for db in common::databases().await {
        let api = Api::start(common::service(&db).await).await;
        let agent = api.agent("agent", 1_000).await;
        let first = api.worker("first").await;
        let second = api.worker("second").await;
        let (status, task) = api
            .create(&agent, json!({"kind": "verify", "question": "Open?"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let id = task["task_id"].as_str().unwrap();
        let (status, claim) = api
            .post_empty(&format!("/v1/worker/tasks/{id}/claim"), &first)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{claim}");
        let assignment = claim["assignment_id"].as_str().unwrap();

        let (status, body) = api
            .post_empty(
                &format!("/v1/worker/assignments/{assignment}/release"),
                &second,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "another worker cannot release it: {body}"
        );
        let (status, released) = api
            .post_empty(
                &format!("/v1/worker/assignments/{assignment}/release"),
                &first,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{released}");
        assert_eq!(released["status"], "abandoned");
        let (status, claim) = api
            .post_empty(&format!("/v1/worker/tasks/{id}/claim"), &second)
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "the slot is free again: {claim}"
        );
        common::assert_books_balanced(&api.service).await;
    }
}
