//! The worker web app under `/app`: server-rendered pages (templates compiled into the binary)
//! with a little JavaScript, mobile first, for humans who find, claim and prove tasks from a
//! phone. It also serves the proof photos to the agent that owns the task
//! (`GET /v1/tasks/{id}/proofs/{sha256}`).
//!
//! | route | what |
//! |---|---|
//! | `GET/POST /app/sign-in` | sign in with the worker key |
//! | `GET/POST /app/sign-in/link` | sign in with a one-time link (`humanping worker invite`) |
//! | `POST /app/sign-out` | end the session |
//! | `GET /app`, `GET /app/feed` | the feed (whole page, or the list alone for refreshes) |
//! | `POST /app/location` | the browser's position, for distances |
//! | `POST /app/tasks/{id}/claim` | claim, then go to the assignment |
//! | `GET /app/assignments/{id}` | lease countdown, private details, the submit form |
//! | `POST /app/assignments/{id}/release`, `/submit` | give the claim back, or send the result |
//! | `GET /app/me` | earnings, trust score, past assignments |
//!
//! Sessions are a random token in the `hp_session` cookie (HttpOnly, SameSite=Lax, Path=/app,
//! Secure when configured), stored hashed; every form carries the session's CSRF token.

mod pages;
pub(crate) mod photos;
mod routes;
mod session;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::service::HumanPing;

/// Largest photo a worker may upload.
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// Most photos one submission may carry.
pub const MAX_PHOTOS: usize = 5;

/// How the web app is set up.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Where proof photos are stored, each under its SHA-256 (hex) name.
    pub proof_dir: PathBuf,
    /// Whether the session cookie is marked `Secure` (when served over https).
    pub secure_cookies: bool,
}

/// What the operator chose on the command line, applied to every router built afterwards.
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// Overrides the default proof folder.
    pub proof_dir: Option<PathBuf>,
    /// Marks the session cookie `Secure`.
    pub secure_cookies: bool,
}

static OPTIONS: OnceLock<WebOptions> = OnceLock::new();

/// Sets the operator's options for this process; only the first call counts.
pub fn configure(options: WebOptions) {
    let _ = OPTIONS.set(options);
}

impl WebSettings {
    /// The operator's options over the defaults: proofs in `proofs/` beside the SQLite file,
    /// or in the user's data folder for PostgreSQL.
    pub fn for_service(service: &HumanPing) -> WebSettings {
        let options = OPTIONS.get().cloned().unwrap_or_default();
        WebSettings {
            proof_dir: options
                .proof_dir
                .unwrap_or_else(|| default_proof_dir(service)),
            secure_cookies: options.secure_cookies,
        }
    }
}

/// `proofs/` beside the SQLite file, or in the user's data folder for PostgreSQL.
pub fn default_proof_dir(service: &HumanPing) -> PathBuf {
    let url = service
        .store()
        .pool()
        .connect_options()
        .database_url
        .clone();
    if url.scheme().starts_with("sqlite") {
        let path = Path::new(url.path());
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            return folder.join("proofs");
        }
    }
    directories::ProjectDirs::from("io", "HumanPing", "humanping")
        .map(|dirs| dirs.data_dir().join("proofs"))
        .unwrap_or_else(|| PathBuf::from("proofs"))
}

/// What every handler of the web app gets.
#[derive(Clone)]
pub(crate) struct WebState {
    service: HumanPing,
    settings: Arc<WebSettings>,
}

/// The web app with the operator's settings (see [`configure`]).
pub fn router(service: HumanPing) -> Router {
    let settings = WebSettings::for_service(&service);
    router_with(service, settings)
}

/// The web app with the given settings.
pub fn router_with(service: HumanPing, settings: WebSettings) -> Router {
    let state = WebState {
        service,
        settings: Arc::new(settings),
    };
    // Photos arrive in one multipart body with the rest of the form.
    let upload_limit = MAX_PHOTOS * MAX_PHOTO_BYTES + 1024 * 1024;
    Router::new()
        .route("/app", get(routes::feed_page))
        .route("/app/", get(routes::feed_page))
        .route("/app/feed", get(routes::feed_fragment))
        .route("/app/app.js", get(routes::script))
        .route(
            "/app/sign-in",
            get(routes::sign_in_page).post(routes::sign_in),
        )
        .route(
            "/app/sign-in/link",
            get(routes::link_page).post(routes::link_sign_in),
        )
        .route("/app/sign-out", post(routes::sign_out))
        .route("/app/location", post(routes::location))
        .route("/app/tasks/{id}/claim", post(routes::claim))
        .route("/app/assignments/{id}", get(routes::assignment_page))
        .route("/app/assignments/{id}/release", post(routes::release))
        .route(
            "/app/assignments/{id}/submit",
            post(routes::submit).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/app/me", get(routes::me_page))
        .route(
            "/app/partners/{agent_id}/leave",
            post(routes::leave_partner),
        )
        .route("/v1/tasks/{id}/proofs/{sha256}", get(photos::fetch))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}
