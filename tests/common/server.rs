//! Starting `humanping serve` processes for a test, and talking to them.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A `humanping serve` process this test started; killed by its PID when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "server {} exited with {status}; its log:\n{}",
                self.base,
                self.log_text()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket on 127.0.0.1");
    probe.local_addr().expect("probe address").port()
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

/// Starts `humanping --database-url URL serve --bind 127.0.0.1:PORT` and waits for `/healthz`.
pub async fn start_server(database_url: &str, dir: &Path, number: usize) -> Server {
    let http = http_client();
    // A port found free can be taken before the server binds it; try a few.
    for attempt in 1..=3 {
        let port = free_port();
        let log = dir.join(format!("server-{number}-{port}.log"));
        let out = File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the server log handle");
        let mut command = Command::new(env!("CARGO_BIN_EXE_humanping"));
        // Settings from the caller's shell must not change what this test runs.
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("HUMANPING_") || text == "DATABASE_URL" || text == "RUST_LOG" {
                command.env_remove(&name);
            }
        }
        let child = command
            .args([
                "--database-url",
                database_url,
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start humanping serve");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log_text();
                if attempt < 3 && log.to_lowercase().contains("address") {
                    break; // the port was taken: try another
                }
                panic!(
                    "humanping serve exited with {status} before it was healthy; its log:\n{log}"
                );
            }
            let last = match http.get(format!("{}/healthz", server.base)).send().await {
                Ok(response) if response.status() == StatusCode::OK => return server,
                Ok(response) => format!("GET /healthz answered {}", response.status()),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                panic!(
                    "humanping serve on {} was not healthy after {STARTUP_TIMEOUT:?} ({last}); \
                     its log:\n{}",
                    server.base,
                    server.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    unreachable!("every attempt either returned or panicked")
}

/// Sends one request and returns its status and JSON body (Null when there is none).
pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request reached the server");
    let status = response.status();
    let text = response.text().await.expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: body is not JSON: {text}"))
    };
    (status, body)
}

/// The REST API (with the MCP transports and the web app) served by this test process on a
/// loopback port; stopped when dropped.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `humanping::http::router(service)` on 127.0.0.1 and a free port.
pub async fn serve_in_process(service: &humanping::service::HumanPing) -> InProcess {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("the bound address");
    let router = humanping::http::router(service.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve the API");
    });
    InProcess {
        base: format!("http://{address}"),
        task,
    }
}
