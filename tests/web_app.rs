//! The worker web app over real HTTP: sign in (key and one-time link), the feed, claim, submit
//! with a photo carrying EXIF GPS, the agent fetching that photo, CSRF and access refusals.
//! The session cookie is handled by hand, as a browser would send it.

mod common;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

struct App {
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(service: humanping::service::HumanPing) -> App {
        let proofs =
            std::env::temp_dir().join(format!("humanping-web-proofs-{}", common::random_suffix()));
        // The first call in this process wins; every test then shares one content-addressed folder.
        humanping::web::configure(humanping::web::WebOptions {
            proof_dir: Some(proofs),
            secure_cookies: false,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("address");
        let router = humanping::http::router(service);
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        App {
            base: format!("http://{address}"),
            client,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, String, Option<String>) {
        let mut request = self.client.get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("hp_session={cookie}"));
        }
        let response = request.send().await.expect("GET");
        let location = location(&response);
        (
            response.status(),
            response.text().await.unwrap_or_default(),
            location,
        )
    }

    async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).form(form);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("hp_session={cookie}"));
        }
        request.send().await.expect("POST")
    }

    async fn create_task(&self, agent_key: &str, body: Value) -> String {
        let response = self
            .client
            .post(self.url("/v1/tasks"))
            .bearer_auth(agent_key)
            .json(&body)
            .send()
            .await
            .expect("create task");
        assert_eq!(response.status(), StatusCode::CREATED);
        let task: Value = response.json().await.expect("task json");
        task["task_id"].as_str().expect("task_id").to_owned()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The session token from a response's `Set-Cookie`, checking the cookie's attributes.
fn session_cookie(response: &reqwest::Response) -> String {
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/app"), "{cookie}");
    let token = cookie
        .strip_prefix("hp_session=")
        .expect("the hp_session cookie");
    token.split(';').next().unwrap().to_owned()
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

/// A tiny JPEG whose EXIF says it was taken at 45.5 N, 73.55 W on 2026-12-04 10:30:00.
fn jpeg_with_gps() -> Vec<u8> {
    fn entry(tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value);
    }
    fn rationals(tiff: &mut Vec<u8>, values: [u32; 3]) {
        for value in values {
            tiff.extend_from_slice(&value.to_le_bytes());
            tiff.extend_from_slice(&1u32.to_le_bytes());
        }
    }
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut tiff, 0x0132, 2, 20, 38u32.to_le_bytes()); // DateTime
    entry(&mut tiff, 0x8825, 4, 1, 58u32.to_le_bytes()); // GPS IFD
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(b"2026:12:04 10:30:00\0");
    assert_eq!(tiff.len(), 58);
    tiff.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut tiff, 1, 2, 2, *b"N\0\0\0");
    entry(&mut tiff, 2, 5, 3, 112u32.to_le_bytes());
    entry(&mut tiff, 3, 2, 2, *b"W\0\0\0");
    entry(&mut tiff, 4, 5, 3, 136u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(tiff.len(), 112);
    rationals(&mut tiff, [45, 30, 0]);
    rationals(&mut tiff, [73, 33, 0]);

    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
    jpeg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    jpeg.extend_from_slice(b"Exif\0\0");
    jpeg.extend_from_slice(&tiff);
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// `get_task` called over MCP (the stateless revision: one POST, no session); returns the
/// tool's structured content.
async fn mcp_get_task(app: &App, agent_key: &str, task_id: &str) -> Value {
    let version = "2026-07-28";
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "web_app test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(agent_key)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Protocol-Version", version)
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "get_task")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "get_task", "arguments": {"task_id": task_id}, "_meta": meta}}),
        )
        .send()
        .await
        .expect("MCP request");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("MCP reply");
    // The reply is JSON, or one event of an event stream.
    let json_text = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .unwrap_or(&text);
    let reply: Value = serde_json::from_str(json_text.trim()).expect("a JSON-RPC reply");
    assert_ne!(reply["result"]["isError"], true, "{reply}");
    reply["result"]["structuredContent"].clone()
}

#[tokio::test]
async fn a_worker_signs_in_claims_and_sends_a_photo_the_agent_can_fetch() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (_agent, agent_key) = common::funded_agent(&svc, "50").await;
        let (_other, other_key) = common::funded_agent(&svc, "5").await;
        let (_worker, worker_key) = common::worker(&svc, "ana").await;
        let app = App::start(svc.clone()).await;

        // Without a session every page sends the browser to the sign-in page.
        let (status, _, to) = app.get("/app", None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{}", db.name);
        assert_eq!(to.as_deref(), Some("/app/sign-in"));
        let (status, _, to) = app.get("/app/me", Some("not-a-session")).await;
        assert_eq!(
            (status, to.as_deref()),
            (StatusCode::SEE_OTHER, Some("/app/sign-in"))
        );

        // A wrong key is refused in plain words; the worker key opens a session.
        let refused = app
            .post_form("/app/sign-in", None, &[("key", "hp_test_nope")])
            .await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.text().await.unwrap().contains("unknown or revoked"));
        let signed = app
            .post_form("/app/sign-in", None, &[("key", &worker_key)])
            .await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        let cookie = session_cookie(&signed);

        // The feed shows a task the agent created.
        let task_id = app
            .create_task(
                &agent_key,
                json!({"kind": "verify", "question": "Is the bakery on Rue St-Paul open?",
                       "budget": 5.00, "proof": ["photo", "gps"]}),
            )
            .await;
        let (status, feed, _) = app.get("/app", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            feed.contains("Is the bakery on Rue St-Paul open?"),
            "{feed}"
        );
        assert!(feed.contains("$4.50"), "pay after the 10% fee: {feed}");
        let token = csrf(&feed);

        // A claim without the session's CSRF token is refused; with it, it goes through.
        let claim_path = format!("/app/tasks/{task_id}/claim");
        let forged = app
            .post_form(&claim_path, Some(&cookie), &[("csrf", "forged")])
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let claimed = app
            .post_form(&claim_path, Some(&cookie), &[("csrf", &token)])
            .await;
        assert_eq!(claimed.status(), StatusCode::SEE_OTHER);
        let assignment_path = location(&claimed).expect("the assignment page");
        assert!(
            assignment_path.starts_with("/app/assignments/asg_"),
            "{assignment_path}"
        );
        let (status, page, _) = app.get(&assignment_path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Your claim runs out"), "{page}");
        assert!(page.contains("capture=\"environment\""), "{page}");

        // Submit the answer with a photo and the device position; the same form again is a
        // harmless retry.
        let photo = jpeg_with_gps();
        let submit_path = format!("{assignment_path}/submit");
        let form = || {
            reqwest::multipart::Form::new()
                .text("csrf", token.clone())
                .text("lat", "45.5")
                .text("lng", "-73.55")
                .text("notes", "Lights on, door open")
                .text("answer", "yes")
                .part(
                    "photos",
                    reqwest::multipart::Part::bytes(photo.clone())
                        .file_name("door.jpg")
                        .mime_str("image/jpeg")
                        .unwrap(),
                )
        };
        for attempt in 0..2 {
            let sent = app
                .client
                .post(app.url(&submit_path))
                .header(COOKIE, format!("hp_session={cookie}"))
                .multipart(form())
                .send()
                .await
                .expect("submit");
            assert_eq!(
                sent.status(),
                StatusCode::SEE_OTHER,
                "attempt {attempt}: {}",
                sent.text().await.unwrap()
            );
        }

        // A file that is not an image is refused in plain words.
        let not_image = reqwest::multipart::Form::new()
            .text("csrf", token.clone())
            .text("answer", "yes")
            .part(
                "photos",
                reqwest::multipart::Part::bytes(b"<svg></svg>".to_vec()).file_name("x.svg"),
            );
        let refused = app
            .client
            .post(app.url(&submit_path))
            .header(COOKIE, format!("hp_session={cookie}"))
            .multipart(not_image)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.text().await.unwrap().contains("JPEG, PNG or WebP"));

        // The agent gets the answer with one photo link, and only the agent can fetch it.
        let task: Value = app
            .client
            .get(app.url(&format!("/v1/tasks/{task_id}")))
            .bearer_auth(&agent_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(task["status"], "completed", "{task}");
        assert_eq!(task["results"].as_array().unwrap().len(), 1, "{task}");
        let proof = &task["results"][0]["proof"];
        assert_eq!(proof["lat"], 45.5);
        let links = proof["photo_urls"].as_array().expect("photo links");
        assert_eq!(links.len(), 1);
        let link = links[0].as_str().unwrap();
        assert!(
            link.starts_with(&format!("/v1/tasks/{task_id}/proofs/")),
            "{link}"
        );

        // The result carries the photo with what its EXIF data said, not only the link.
        let result = &task["results"][0];
        assert_eq!(result["answer"], "yes");
        assert_eq!(result["structured"], "yes", "{result}");
        assert_eq!(result["notes"], "Lights on, door open");
        assert_eq!(proof["lng"], -73.55);
        let photos = result["photos"].as_array().expect("photos in the result");
        assert_eq!(photos.len(), 1, "{result}");
        assert_eq!(photos[0]["url"], link);
        assert_eq!(photos[0]["content_type"], "image/jpeg");
        assert_eq!(photos[0]["size_bytes"], photo.len());
        assert_eq!(photos[0]["exif_lat"], 45.5);
        assert_eq!(photos[0]["exif_lng"], -73.55);
        assert_eq!(photos[0]["exif_taken_at"], "2026-12-04 10:30:00");

        // MCP's get_task returns the same proof as structured content.
        let mcp = mcp_get_task(&app, &agent_key, &task_id).await;
        assert_eq!(mcp["results"][0]["photos"], result["photos"], "{mcp}");
        assert_eq!(mcp["results"][0]["proof"], result["proof"], "{mcp}");
        assert_eq!(mcp["results"][0]["structured"], "yes", "{mcp}");

        let fetched = app
            .client
            .get(app.url(link))
            .bearer_auth(&agent_key)
            .send()
            .await
            .unwrap();
        assert_eq!(fetched.status(), StatusCode::OK);
        assert_eq!(fetched.headers()["content-type"], "image/jpeg");
        assert_eq!(
            fetched.headers()["x-humanping-exif-gps"],
            "45.500000,-73.550000"
        );
        assert_eq!(
            fetched.headers()["x-humanping-exif-time"],
            "2026-12-04 10:30:00"
        );
        assert_eq!(fetched.bytes().await.unwrap().to_vec(), photo);
        let stranger = app
            .client
            .get(app.url(link))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        assert_eq!(stranger.status(), StatusCode::NOT_FOUND);
        let worker = app
            .client
            .get(app.url(link))
            .bearer_auth(&worker_key)
            .send()
            .await
            .unwrap();
        // A valid key of another role: forbidden, as on every agent route.
        assert_eq!(worker.status(), StatusCode::FORBIDDEN);
        let anonymous = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

        // The worker's own page shows the pending pay and the past assignment.
        let (status, me, _) = app.get("/app/me", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(me.contains("Waiting for review: $4.50"), "{me}");
        assert!(me.contains("Trust score"), "{me}");

        // Signing out ends the session.
        let out = app
            .post_form("/app/sign-out", Some(&cookie), &[("csrf", &token)])
            .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let (status, _, _) = app.get("/app", Some(&cookie)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn a_sign_in_link_works_once_and_a_claim_can_be_given_back() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (_agent, agent_key) = common::funded_agent(&svc, "20").await;
        let (worker, _key) = common::worker(&svc, "bo").await;
        let app = App::start(svc.clone()).await;

        let (_, token) = svc
            .create_sign_in_link(worker.as_str())
            .await
            .expect("link");
        let (status, page, _) = app
            .get(&format!("/app/sign-in/link?token={token}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("one-time link"), "{page}");
        let first = app
            .post_form("/app/sign-in/link", None, &[("token", &token)])
            .await;
        assert_eq!(first.status(), StatusCode::SEE_OTHER, "{}", db.name);
        let cookie = session_cookie(&first);
        let second = app
            .post_form("/app/sign-in/link", None, &[("token", &token)])
            .await;
        assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
        assert!(second.text().await.unwrap().contains("already used"));
        assert!(svc.create_sign_in_link("wkr_unknown").await.is_err());

        // Claim, give it back: the task is in the feed again.
        let task_id = app
            .create_task(
                &agent_key,
                json!({"kind": "gut_check", "question": "Does this logo feel friendly?"}),
            )
            .await;
        let (_, feed, _) = app.get("/app", Some(&cookie)).await;
        let token = csrf(&feed);
        let claimed = app
            .post_form(
                &format!("/app/tasks/{task_id}/claim"),
                Some(&cookie),
                &[("csrf", &token)],
            )
            .await;
        let assignment_path = location(&claimed).expect("the assignment page");
        let (_, feed, _) = app.get("/app", Some(&cookie)).await;
        assert!(!feed.contains("Does this logo feel friendly?"));

        let forged = app
            .post_form(&format!("{assignment_path}/release"), Some(&cookie), &[])
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let released = app
            .post_form(
                &format!("{assignment_path}/release"),
                Some(&cookie),
                &[("csrf", &token)],
            )
            .await;
        assert_eq!(released.status(), StatusCode::SEE_OTHER);
        let (_, feed, _) = app.get("/app", Some(&cookie)).await;
        assert!(feed.contains("Does this logo feel friendly?"), "{feed}");
        let (_, page, _) = app.get(&assignment_path, Some(&cookie)).await;
        assert!(page.contains("abandoned"), "{page}");

        // Another worker cannot open this worker's assignment by guessing its URL.
        let (_other, other_key) = common::worker(&svc, "cy").await;
        let other = app
            .post_form("/app/sign-in", None, &[("key", &other_key)])
            .await;
        let other_cookie = session_cookie(&other);
        let (status, _, _) = app.get(&assignment_path, Some(&other_cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The browser's position is recorded for distances.
        let moved = app
            .post_form(
                "/app/location",
                Some(&cookie),
                &[("csrf", &token), ("lat", "45.5"), ("lng", "-73.6")],
            )
            .await;
        assert_eq!(moved.status(), StatusCode::NO_CONTENT);
        let profile = svc.worker_profile(&worker).await.unwrap();
        assert_eq!((profile.lat, profile.lng), (Some(45.5), Some(-73.6)));

        common::assert_books_balanced(&svc).await;
    }
}

/// A multipart body with the given text fields and one JPEG, and its boundary.
fn multipart_body(fields: &[(&str, &str)], photo: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("hp-test-{}", common::random_suffix());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; \
             filename=\"shop.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// Sends the head of a POST and half its body, then drops the connection, as a phone losing
/// its signal mid-upload does.
fn upload_cut_halfway(base: &str, path: &str, cookie: &str, boundary: &str, body: &[u8]) {
    use std::io::Write;
    let host = base.strip_prefix("http://").expect("an http base URL");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the server");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: hp_session={cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream
        .write_all(&body[..body.len() / 2])
        .expect("send half the body");
    stream
        .shutdown(std::net::Shutdown::Both)
        .expect("drop the connection");
}

#[tokio::test]
async fn third_party_details_reach_only_the_claim_holder_and_never_the_log() {
    const PHONE: &str = "+1 514 555 0199";
    const CONTEXT: &str = "Private-context-7731: the caller is allergic to nuts";
    const CONTACT: &str = "mira.private@example.org";
    const ADDRESS: &str = "12 Hidden Lane, Montreal";

    for db in common::databases().await {
        let dir =
            std::env::temp_dir().join(format!("humanping-privacy-{}", common::random_suffix()));
        std::fs::create_dir_all(&dir).expect("test folder");
        let svc = common::service(&db).await;
        let (_agent, agent_key) = common::funded_agent(&svc, "50").await;
        let (_ana, ana_key) = common::worker(&svc, "ana").await;
        let (_bo, bo_key) = common::worker(&svc, "bo").await;
        let mut server = common::server::start_server(&db.url, &dir, 1).await;
        let app_client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = |path: &str| format!("{}{path}", server.base);
        let page = |path: String, cookie: String| {
            let request = app_client
                .get(url(&path))
                .header(COOKIE, format!("hp_session={cookie}"));
            async move {
                let response = request.send().await.expect("GET a page");
                (response.status(), response.text().await.unwrap_or_default())
            }
        };
        let sign_in = |key: String| {
            let request = app_client.post(url("/app/sign-in")).form(&[("key", key)]);
            async move { session_cookie(&request.send().await.expect("sign in")) }
        };
        let private = [PHONE, CONTEXT, CONTACT];
        let assert_private = |what: &str, text: &str| {
            for secret in private {
                assert!(
                    !text.contains(secret),
                    "{}: {what} shows {secret:?}",
                    db.name
                );
            }
        };

        let created = |body: Value| {
            let request = app_client
                .post(url("/v1/tasks"))
                .bearer_auth(&agent_key)
                .json(&body);
            async move {
                let (status, task) = common::server::send(request).await;
                assert_eq!(status, StatusCode::CREATED, "{task}");
                task["task_id"].as_str().unwrap().to_owned()
            }
        };
        let call = created(json!({"kind": "call", "phone": PHONE,
            "goal": "Ask the bakery whether it takes orders for Sunday",
            "context": CONTEXT, "proof": ["photo"]}))
        .await;
        let _escalation = created(json!({"kind": "escalate",
            "situation": "A customer is upset about a late delivery",
            "contact": CONTACT, "location": ADDRESS, "context": CONTEXT}))
        .await;

        // Neither worker's feed, as page, fragment or REST, shows what concerns third parties.
        let ana = sign_in(ana_key.clone()).await;
        let bo = sign_in(bo_key.clone()).await;
        let (status, feed) = page("/app".into(), ana.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(feed.contains("takes orders for Sunday"), "{feed}");
        assert_private("the feed", &feed);
        assert!(
            !feed.contains(ADDRESS),
            "the escalation's address in the feed: {feed}"
        );
        let (_, fragment) = page("/app/feed".into(), bo.clone()).await;
        assert!(fragment.contains("takes orders for Sunday"), "{fragment}");
        assert_private("the feed fragment", &fragment);
        let (status, offers) =
            common::server::send(app_client.get(url("/v1/worker/tasks")).bearer_auth(&bo_key))
                .await;
        assert_eq!(status, StatusCode::OK);
        assert_private("the REST feed", &offers.to_string());

        // Ana claims: her assignment page shows the number and the context.
        let token = csrf(&feed);
        let claimed = app_client
            .post(url(&format!("/app/tasks/{call}/claim")))
            .header(COOKIE, format!("hp_session={ana}"))
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(claimed.status(), StatusCode::SEE_OTHER);
        let assignment = location(&claimed).expect("the assignment page");
        let (status, mine) = page(assignment.clone(), ana.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(mine.contains(PHONE) && mine.contains(CONTEXT), "{mine}");

        // Bo cannot open it by URL, and his pages never show it.
        let (status, theirs) = page(assignment.clone(), bo.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_private("another worker's view", &theirs);
        for path in ["/app", "/app/me"] {
            let (_, text) = page(path.into(), bo.clone()).await;
            assert_private(path, &text);
        }

        // The upload is cut halfway; the retry goes through, and a second retry changes nothing.
        let photo = jpeg_with_gps();
        let submit = format!("{assignment}/submit");
        let fields = [
            ("csrf", token.as_str()),
            ("answer", "Yes, until Saturday noon"),
            ("notes", "Spoke to the owner"),
            ("lat", "45.5"),
            ("lng", "-73.55"),
        ];
        let (boundary, body) = multipart_body(&fields, &photo);
        upload_cut_halfway(&server.base, &submit, &ana, &boundary, &body);
        for attempt in 0..2 {
            let sent = app_client
                .post(url(&submit))
                .header(COOKIE, format!("hp_session={ana}"))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(sent.status(), StatusCode::SEE_OTHER, "attempt {attempt}");
        }
        let (status, task) = common::server::send(
            app_client
                .get(url(&format!("/v1/tasks/{call}")))
                .bearer_auth(&agent_key),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(task["status"], "completed", "{task}");
        assert_eq!(task["results"].as_array().unwrap().len(), 1, "{task}");
        assert_eq!(
            task["results"][0]["photos"].as_array().unwrap().len(),
            1,
            "{task}"
        );
        assert_eq!(task["results"][0]["photos"][0]["exif_lat"], 45.5, "{task}");

        // Once the result is sent, Ana no longer holds the claim: the details are gone.
        let (_, done) = page(assignment.clone(), ana.clone()).await;
        assert!(done.contains("submitted"), "{done}");
        assert_private("the sent assignment", &done);

        // The server's log saw every step above and never any of the private details.
        server.assert_running();
        let log = server.log_text();
        assert!(
            log.contains("web session opened"),
            "the log was captured: {log}"
        );
        assert_private("the server's log", &log);
        assert!(
            !log.contains("555 0199") && !log.contains("5550199"),
            "{log}"
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn a_worker_sees_their_tier_and_partners_and_can_leave_one() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (agent, agent_key) = common::funded_agent(&svc, "20").await;
        let (worker, worker_key) = common::worker(&svc, "cy").await;
        let app = App::start(svc.clone()).await;

        // The worker answers one task through the REST API; the agent partners with them.
        let task_id = app
            .create_task(
                &agent_key,
                json!({"kind": "gut_check", "question": "Friendly?", "partners": "none"}),
            )
            .await;
        let lease = svc.claim(&worker, &task_id).await.unwrap();
        let answer = humanping::service::SubmissionInput {
            answer: Some("yes".into()),
            structured: None,
            notes: None,
            proof: None,
        };
        svc.submit(&worker, lease.assignment_id.as_str(), answer)
            .await
            .unwrap();
        svc.partner_add(
            &agent,
            worker.as_str(),
            Some("Short answers, please."),
            Some(1250),
        )
        .await
        .unwrap();
        let second = app
            .create_task(
                &agent_key,
                json!({"kind": "gut_check", "question": "Warm?", "partners": "only"}),
            )
            .await;
        assert!(!second.is_empty());

        let (_, token) = svc.create_sign_in_link(worker.as_str()).await.unwrap();
        let signed = app
            .post_form("/app/sign-in/link", None, &[("token", &token)])
            .await;
        let cookie = session_cookie(&signed);
        let (_, feed, _) = app.get("/app", Some(&cookie)).await;
        assert!(feed.contains("From an agent you partner with"), "{feed}");
        assert!(feed.contains("Short answers, please."));

        let (status, page, _) = app.get("/app/me", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{}", db.name);
        // The instant answer was flagged too fast, which caps the score at 30: a starter.
        assert!(page.contains("Tier: <strong>starter</strong>"), "{page}");
        assert!(page.contains("15 more points reach trusted"), "{page}");
        assert!(page.contains("12.5% of each budget"), "{page}");
        let token = csrf(&page);
        let forged = app
            .post_form(
                &format!("/app/partners/{agent}/leave"),
                Some(&cookie),
                &[("csrf", "forged")],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let left = app
            .post_form(
                &format!("/app/partners/{agent}/leave"),
                Some(&cookie),
                &[("csrf", &token)],
            )
            .await;
        assert_eq!(left.status(), StatusCode::SEE_OTHER, "{}", db.name);
        assert!(svc.partners(&agent).await.unwrap().is_empty());
        let (_, page, _) = app.get("/app/me", Some(&cookie)).await;
        assert!(page.contains("None yet."), "{page}");
        drop(worker_key);
    }
}
