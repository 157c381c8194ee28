//! Operations: `/healthz`, `/readyz` and `/metrics` on both backends, a graceful shutdown of a
//! real `humanping serve` process (an in-flight wait returns, the process exits 0, escrow holds
//! stay), JSON logs, and a `HUMANPING_*` variable for every command-line flag, listed in the
//! README.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The value of an unlabelled sample, or of the labelled one whose labels are `labels`
/// exactly as rendered (`{status="open"}`), in Prometheus text.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name_and_labels).then(|| value.parse().ok())?
        })
}

async fn get_text(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let response = client.get(url).send().await.expect("the server answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn health_readiness_and_metrics_report_the_marketplace() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let (_, key) = common::funded_agent(&svc, "20").await;
        let api = common::server::serve_in_process(&svc).await;
        let client = common::server::http_client();

        let (status, body) =
            common::server::send(client.get(format!("{}/healthz", api.base))).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", db.name);
        assert_eq!(body["status"], "ok");

        let (status, body) = common::server::send(client.get(format!("{}/readyz", api.base))).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", db.name);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["migrations"], "ok");

        let (status, task) = common::server::send(
            client
                .post(format!("{}/v1/tasks", api.base))
                .bearer_auth(&key)
                .json(&json!({"kind": "verify", "question": "Open?", "budget": 5.00})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{}: {task}", db.name);
        let task_id = task["task_id"].as_str().expect("task_id");
        // A wait that runs out is counted as a wait.
        let (status, _) = common::server::send(
            client
                .get(format!("{}/v1/tasks/{task_id}?wait=1", api.base))
                .bearer_auth(&key),
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let response = client
            .get(format!("{}/metrics", api.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let expect = |series: &str, at_least: f64| {
            let value = sample(&text, series)
                .unwrap_or_else(|| panic!("{}: no {series} in /metrics:\n{text}", db.name));
            assert!(
                value >= at_least,
                "{}: {series} = {value}:\n{text}",
                db.name
            );
        };
        expect(r#"humanping_tasks{status="open"}"#, 1.0);
        expect("humanping_escrow_held_cents", 500.0);
        expect(r#"humanping_webhook_events{state="pending"}"#, 0.0);
        expect(r#"humanping_webhook_events{state="delivered"}"#, 0.0);
        expect("humanping_database_up", 1.0);
        expect(
            r#"humanping_http_requests_total{method="POST",route="/v1/tasks",status="201"}"#,
            1.0,
        );
        expect(
            r#"humanping_http_requests_total{method="GET",route="/readyz",status="200"}"#,
            1.0,
        );
        expect(r#"humanping_waits_total{outcome="timeout"}"#, 1.0);
        assert!(
            text.contains("humanping_http_request_duration_seconds_bucket"),
            "durations are histograms:\n{text}"
        );
        // Raw paths never become labels: the task id stays out of the metrics.
        assert!(!text.contains(task_id), "{text}");
        assert_eq!(sample(&text, "humanping_escrow_held_cents"), Some(500.0));

        common::assert_books_balanced(&svc).await;
    }
}

#[tokio::test]
async fn readiness_names_migrations_that_are_not_applied() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let api = common::server::serve_in_process(&svc).await;
        let client = common::server::http_client();
        let (status, _) = common::server::send(client.get(format!("{}/readyz", api.base))).await;
        assert_eq!(status, StatusCode::OK, "{}", db.name);

        let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(svc.store().pool())
            .await
            .expect("the newest migration");
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(newest)
            .execute(svc.store().pool())
            .await
            .expect("forget the newest migration");

        let (status, body) = common::server::send(client.get(format!("{}/readyz", api.base))).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}: {body}",
            db.name
        );
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["database"], "ok");
        let reason = body["checks"]["migrations"].as_str().unwrap();
        assert!(reason.contains(&newest.to_string()), "{reason}");
        assert!(reason.contains("humanping migrate"), "{reason}");

        // Liveness is not readiness: the process still answers.
        let (status, _) = common::server::send(client.get(format!("{}/healthz", api.base))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn readiness_says_why_when_the_database_is_unreachable() {
    for db in common::databases().await {
        let svc = common::service(&db).await;
        let api = common::server::serve_in_process(&svc).await;
        let client = common::server::http_client();
        let (status, _) = common::server::send(client.get(format!("{}/readyz", api.base))).await;
        assert_eq!(status, StatusCode::OK, "{}", db.name);

        svc.store().close().await;

        let (status, body) = common::server::send(client.get(format!("{}/readyz", api.base))).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}: {body}",
            db.name
        );
        assert_eq!(body["status"], "not_ready");
        let reason = body["checks"]["database"].as_str().unwrap();
        assert!(reason.contains("cannot reach the database"), "{reason}");

        // The scrape still succeeds and says the database is down.
        let (status, text) = get_text(&client, format!("{}/metrics", api.base)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sample(&text, "humanping_database_up"), Some(0.0), "{text}");
        let (status, _) = common::server::send(client.get(format!("{}/healthz", api.base))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// A `humanping serve` process started by this test, killed by its PID if still running.
struct ServeProcess {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl ServeProcess {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM to this process, as an orchestrator stopping it would.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {limit:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `humanping --database-url URL --log-format json serve --bind 127.0.0.1:PORT
/// --shutdown-grace 2` and waits for `/healthz`.
async fn start_json_logging_server(database_url: &str, dir: &Path) -> ServeProcess {
    let http = common::server::http_client();
    for attempt in 1..=3 {
        let port = common::server::free_port();
        let log = dir.join(format!("serve-{port}.log"));
        let out = File::create(&log).expect("create the server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_humanping"));
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("HUMANPING_") || text == "DATABASE_URL" || text == "RUST_LOG" {
                command.env_remove(&name);
            }
        }
        let child = command
            .args(["--database-url", database_url, "--log-format", "json"])
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("HUMANPING_SHUTDOWN_GRACE", "2")
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("RUST_LOG", "humanping=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start humanping serve");
        let mut server = ServeProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                let log = server.log_text();
                if attempt < 3 && log.to_lowercase().contains("address") {
                    break;
                }
                panic!("humanping serve exited with {status}; its log:\n{log}");
            }
            if let Ok(response) = http.get(format!("{}/healthz", server.base)).send().await
                && response.status() == StatusCode::OK
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "humanping serve was not healthy in time; its log:\n{}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    unreachable!("every attempt returned or panicked")
}

#[tokio::test]
async fn shutdown_answers_waits_in_flight_keeps_holds_and_exits_zero() {
    for db in common::databases().await {
        let dir = std::env::temp_dir().join(format!("humanping-ops-{}", common::random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let svc = common::service(&db).await;
        let (agent, key) = common::funded_agent(&svc, "20").await;
        let mut server = start_json_logging_server(&db.url, &dir).await;
        let client = common::server::http_client();

        let (status, task) = common::server::send(
            client
                .post(format!("{}/v1/tasks", server.base))
                .bearer_auth(&key)
                .json(&json!({"kind": "verify", "question": "Open?", "budget": 5.00})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{}: {task}", db.name);
        let task_id = task["task_id"].as_str().unwrap().to_owned();

        // An agent waits for the human's answer, for up to a minute.
        let waiting = tokio::spawn({
            let request = client
                .get(format!("{}/v1/tasks/{task_id}?wait=60", server.base))
                .bearer_auth(&key);
            async move {
                let started = Instant::now();
                let answer = common::server::send(request).await;
                (answer, started.elapsed())
            }
        });
        // The wait is under way once the metrics count it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, text) = get_text(&client, format!("{}/metrics", server.base)).await;
            if sample(&text, "humanping_waits_in_progress") == Some(1.0) {
                break;
            }
            assert!(Instant::now() < deadline, "the wait never started:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // An MCP client holds an event stream open: it must not hold the shutdown up for longer
        // than the grace period.
        let stream = client
            .get(format!("{}/sse", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .expect("open the SSE stream");
        assert_eq!(stream.status(), StatusCode::OK);

        server.terminate();
        let stopping = Instant::now();

        // The wait returns at once with the task as it is, well before its minute.
        let ((status, body), took) = tokio::time::timeout(Duration::from_secs(15), waiting)
            .await
            .expect("the wait returned during shutdown")
            .expect("the waiting request");
        assert_eq!(status, StatusCode::OK, "{}: {body}", db.name);
        assert_eq!(body["task_id"], task_id.as_str());
        assert_eq!(body["status"], "open");
        assert!(took < Duration::from_secs(20), "the wait took {took:?}");

        let exit = server.wait_exit(Duration::from_secs(20));
        let log = server.log_text();
        assert!(exit.success(), "{}: exit {exit}; log:\n{log}", db.name);
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "stopping took {:?} with a grace period of 2 s",
            stopping.elapsed()
        );
        assert!(log.contains("grace period over"), "{log}");
        drop(stream);

        // Nothing is accepted any more.
        assert!(
            client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                .is_err(),
            "the stopped server still answered"
        );

        // Every log line is a JSON object; the shutdown was logged.
        let mut saw_shutdown = false;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            assert!(entry["level"].is_string(), "{line}");
            saw_shutdown |= entry["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("shutdown requested"));
        }
        assert!(saw_shutdown, "no shutdown line in the log:\n{log}");
        assert!(!log.contains(&key), "the API key reached the log");

        // The task and its hold are still there: nothing was voided on the way out.
        let task = svc.get_task(&agent, &task_id).await.expect("the task");
        assert_eq!(task.status.as_str(), "open");
        assert_eq!(task.held_cents, 500);
        let balance = svc.balance(&agent).await.expect("balance");
        assert_eq!(balance.held_cents, 500);
        assert_eq!(balance.available_cents, 1500);
        common::assert_books_balanced(&svc).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The subcommands of `humanping` (and theirs), read from its help.
fn subcommands(path: &[String]) -> Vec<Vec<String>> {
    let help = humanping_help(path);
    let mut found = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.trim().is_empty() || !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" && !name.is_empty() {
                let mut sub = path.to_vec();
                sub.push(name.to_owned());
                found.push(sub.clone());
                found.extend(subcommands(&sub));
            }
        }
    }
    found
}

fn humanping_help(path: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_humanping"))
        .args(path)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run humanping --help");
    assert!(output.status.success(), "humanping {path:?} --help failed");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn every_flag_has_a_humanping_variable_and_a_help_line() {
    let mut commands = vec![Vec::new()];
    commands.extend(subcommands(&[]));
    assert!(commands.len() > 5, "too few commands found: {commands:?}");
    let mut missing = Vec::new();
    let mut variables = Vec::new(); // (flag, its variable)
    for command in &commands {
        let help = humanping_help(command);
        let mut options = Vec::new(); // (flag, its block of help)
        let mut in_options = false;
        for line in help.lines() {
            if line.trim_end() == "Options:" {
                in_options = true;
                continue;
            }
            if !in_options {
                continue;
            }
            let trimmed = line.trim_start();
            if trimmed.starts_with("--") || trimmed.starts_with("-h") || trimmed.starts_with("-V") {
                let flag = trimmed
                    .split([' ', ','])
                    .find(|w| w.starts_with("--"))
                    .unwrap_or(trimmed)
                    .to_owned();
                options.push((flag, String::new()));
            } else if let Some((_, block)) = options.last_mut() {
                block.push_str(line);
                block.push('\n');
            }
        }
        for (flag, block) in options {
            if flag == "--help" || flag == "--version" {
                continue;
            }
            let described = block
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with('['));
            if !block.contains("[env: HUMANPING_") || !described {
                missing.push(format!("humanping {} {flag}", command.join(" ")));
            }
            if let Some(at) = block.find("[env: ") {
                let variable: String = block[at + "[env: ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                variables.push((format!("humanping {} {flag}", command.join(" ")), variable));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags without a HUMANPING_* variable or a help line:\n  {}",
        missing.join("\n  ")
    );

    // The README's configuration table lists every one.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let unlisted: Vec<String> = variables
        .into_iter()
        .filter(|(_, variable)| !readme.contains(&format!("`{variable}`")))
        .map(|(flag, variable)| format!("{flag} ({variable})"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "variables missing from the README's configuration table:\n  {}",
        unlisted.join("\n  ")
    );
}
