//! MCP over the network: Streamable HTTP at `/mcp` (rmcp's own server), the legacy HTTP+SSE
//! transport ([`super::sse`]), and the guard every HTTP request of `humanping serve` passes
//! first: `Host` and `Origin` checks against DNS rebinding, and CORS.
//!
//! The agent is resolved from the request's key by the HTTP layer before any of this runs and
//! travels in the request's extensions as [`CallerAgent`]. rmcp copies the HTTP request parts
//! into each MCP request's context, so the tools act for the key of the request they answer;
//! a Streamable HTTP session is also bound to the agent that opened it, and another agent's key
//! on that session id is answered as if the session did not exist.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use super::HumanPingMcp;
use crate::domain::ids::AgentId;
use crate::service::HumanPing;

/// The largest JSON-RPC message accepted over HTTP; a bigger one is refused with 413.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How often an idle event stream gets a keep-alive comment.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The header carrying a Streamable HTTP session id.
const SESSION_HEADER: &str = "mcp-session-id";

/// What tools answer when an HTTP request reached them without an authenticated agent (which
/// the HTTP layer prevents; this is the safe default, not an expected path).
const NO_AGENT: &str = "this MCP request carried no agent key; send `Authorization: Bearer \
    <key>` (or `X-API-Key: <key>`) with your HumanPing API key";

/// The agent whose key signed an HTTP request, put in the request's extensions by the HTTP
/// layer's authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerAgent(pub AgentId);

/// The MCP routes, `/mcp`, `/sse` and `/messages`, over `service`. Every request must already
/// carry a [`CallerAgent`] extension: mount them behind the agent authentication.
pub(crate) fn routes(service: HumanPing) -> Router {
    // Limitation: sessions live in this process's memory, so several server processes behind
    // one address need sticky routing for session clients (stateless 2026-07-28 calls do not).
    let manager = Arc::new(LocalSessionManager::default());
    let config = StreamableHttpServerConfig::default()
        // The guard of the whole server checks Host and Origin before rmcp sees a request.
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_sse_keep_alive(Some(KEEP_ALIVE))
        .with_max_request_body_bytes(MAX_MESSAGE_BYTES);
    let factory_service = service.clone();
    let streamable = StreamableHttpService::new(
        move || {
            Ok(HumanPingMcp::new(
                factory_service.clone(),
                Err(NO_AGENT.to_owned()),
            ))
        },
        manager.clone(),
        config,
    );
    let bindings = SessionBindings {
        owners: Arc::new(Mutex::new(HashMap::new())),
        manager,
    };

    let mcp = Router::new()
        .route_service("/mcp", streamable)
        .layer(middleware::from_fn_with_state(bindings, bind_sessions));
    mcp.merge(super::sse::routes(super::sse::SseSessions::new(service)))
}

/// Which agent opened each Streamable HTTP session.
#[derive(Clone)]
struct SessionBindings {
    owners: Arc<Mutex<HashMap<String, AgentId>>>,
    manager: Arc<LocalSessionManager>,
}

impl SessionBindings {
    fn owner(&self, session: &str) -> Option<AgentId> {
        self.owners
            .lock()
            .expect("session bindings lock")
            .get(session)
            .cloned()
    }

    /// Records a new session, forgetting those rmcp has closed or timed out since.
    async fn bind(&self, session: String, agent: AgentId) {
        let live: Vec<String> = {
            let sessions = self.manager.sessions.read().await;
            let owners = self.owners.lock().expect("session bindings lock");
            owners
                .keys()
                .filter(|id| sessions.contains_key(id.as_str()))
                .cloned()
                .collect()
        };
        let mut owners = self.owners.lock().expect("session bindings lock");
        owners.retain(|id, _| live.contains(id));
        owners.insert(session, agent);
    }

    fn forget(&self, session: &str) {
        self.owners
            .lock()
            .expect("session bindings lock")
            .remove(session);
    }
}

/// Lets a Streamable HTTP session be used only with the key of the agent that opened it.
async fn bind_sessions(
    State(bindings): State<SessionBindings>,
    request: Request,
    next: Next,
) -> Response {
    let Some(CallerAgent(agent)) = request.extensions().get::<CallerAgent>().cloned() else {
        return error_response(StatusCode::UNAUTHORIZED, "unauthorized", NO_AGENT);
    };
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session
        && bindings.owner(session).is_some_and(|owner| owner != agent)
    {
        tracing::warn!(%agent, "refused a request on another agent's MCP session");
        return unknown_session();
    }
    let deleting = request.method() == Method::DELETE;
    let posts_json = request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));

    let response = next.run(request).await;

    // rmcp answers a body it cannot read as a JSON-RPC message with a plain 415.
    // Limitation: a JSON body that is not a JSON-RPC message is also reported as -32700.
    if posts_json && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return jsonrpc_error(-32700, "Parse error: the body is not one JSON-RPC message");
    }

    match &session {
        None => {
            let created = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|value| value.to_str().ok());
            if let Some(created) = created {
                tracing::info!(%agent, "MCP session opened over Streamable HTTP");
                bindings.bind(created.to_owned(), agent).await;
            }
        }
        Some(session) if deleting && response.status().is_success() => bindings.forget(session),
        Some(_) => {}
    }
    response
}

/// The answer for a session id that does not exist, or not for this caller.
pub(crate) fn unknown_session() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "this MCP session does not exist or has ended; start a new one (initialize again)",
    )
}

/// A JSON-RPC error without a request id (400), for a message that could not be read.
pub(crate) fn jsonrpc_error(code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// An error in the HTTP API's one shape, `{"error": {"code", "message"}}`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Which `Host` and `Origin` values the HTTP server accepts.
///
/// A web page on another site can make a browser send requests to a server on loopback (DNS
/// rebinding, cross-site requests). Such a request names the attacker's host in `Host` or its
/// site in `Origin`, and both are refused with 403.
#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    /// `host` (any port) or `host:port` entries.
    hosts: Vec<String>,
    /// `scheme://host[:port]` entries; a missing port means any port.
    origins: Vec<String>,
}

impl Default for NetworkPolicy {
    /// Loopback only: `localhost`, `127.0.0.1` and `[::1]` on any port.
    fn default() -> Self {
        NetworkPolicy {
            hosts: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
            origins: Vec::new(),
        }
    }
}

impl NetworkPolicy {
    /// The loopback defaults, plus the address the server binds, plus the operator's
    /// `--allowed-host` and `--allowed-origin` entries.
    pub fn new(bind: SocketAddr, hosts: &[String], origins: &[String]) -> NetworkPolicy {
        let mut policy = NetworkPolicy::default();
        policy.hosts.push(bind.ip().to_string());
        policy.hosts.extend(
            hosts
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty()),
        );
        policy.origins.extend(
            origins
                .iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|origin| !origin.is_empty()),
        );
        policy
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_authority(host) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|allowed| match split_authority(allowed) {
                Some((allowed_name, allowed_port)) => {
                    allowed_name == name && (allowed_port.is_none() || allowed_port == port)
                }
                None => false,
            })
    }

    /// An origin is allowed when it is the server itself (same `Host`), a loopback page, or
    /// one the operator listed.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let Ok(uri) = origin.parse::<Uri>() else {
            return false;
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        if !matches!(scheme, "http" | "https") {
            return false;
        }
        let authority = authority.as_str().to_ascii_lowercase();
        if authority == host.to_ascii_lowercase() {
            return true;
        }
        let Some((name, port)) = split_authority(&authority) else {
            return false;
        };
        if matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1") {
            return true;
        }
        self.origins.iter().any(|allowed| {
            let Some((allowed_scheme, rest)) = allowed.split_once("://") else {
                return false;
            };
            let Some((allowed_name, allowed_port)) = split_authority(rest) else {
                return false;
            };
            allowed_scheme == scheme
                && allowed_name == name
                && (allowed_port.is_none() || allowed_port == port)
        })
    }
}

/// `host[:port]` in lower case, without IPv6 brackets.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    if authority.is_empty() {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((name.to_owned(), port));
    }
    // A bare IPv6 address (an allow-list entry such as `::1`) has several colons.
    if authority.parse::<IpAddr>().is_ok() {
        return Some((authority, None));
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => Some((name.to_owned(), Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// The headers a browser client may send to the MCP endpoints and the REST API.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Mcp-Session-Id, \
    Mcp-Protocol-Version, Last-Event-ID, X-API-Key, Idempotency-Key";

/// Refuses requests with a foreign `Host` or `Origin` (403), answers CORS preflights before
/// any authentication, and adds the CORS headers for allowed browser origins.
pub(crate) async fn guard(
    State(policy): State<Arc<NetworkPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = request_host(headers, request.uri());
    if !policy.host_allowed(&host) {
        tracing::warn!(%host, "refused a request for a host that is not allowed");
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this Host is not allowed (DNS rebinding protection); the operator can allow it \
             with `humanping serve --allowed-host HOST`",
        );
    }
    let origin = headers
        .get(ORIGIN)
        .map(|value| value.to_str().unwrap_or("invalid").to_owned());
    if let Some(origin) = &origin
        && !policy.origin_allowed(origin, &host)
    {
        tracing::warn!(%origin, "refused a request from an origin that is not allowed");
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this Origin is not allowed; the operator can allow it with `humanping serve \
             --allowed-origin ORIGIN`",
        );
    }

    let preflight = request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };

    if let Some(origin) = origin.and_then(|origin| HeaderValue::from_str(&origin).ok()) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The `Host` header, or the URI's authority (HTTP/2), or nothing.
fn request_host(headers: &HeaderMap, uri: &Uri) -> String {
    headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_and_others_do_not() {
        let policy = NetworkPolicy::default();
        for host in [
            "localhost",
            "localhost:8787",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(policy.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8787",
            "",
            "127.0.0.2",
            "localhost:x",
        ] {
            assert!(!policy.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn configured_hosts_and_the_bind_address_pass() {
        let bind: SocketAddr = "10.0.0.5:8787".parse().unwrap();
        let policy = NetworkPolicy::new(bind, &["api.example.com:443".into()], &[]);
        assert!(policy.host_allowed("10.0.0.5:8787"));
        assert!(policy.host_allowed("api.example.com:443"));
        assert!(!policy.host_allowed("api.example.com:80"));
    }

    #[test]
    fn origins_must_be_the_server_loopback_or_listed() {
        let bind: SocketAddr = "127.0.0.1:8787".parse().unwrap();
        let policy = NetworkPolicy::new(bind, &[], &["https://app.example.com".into()]);
        let host = "127.0.0.1:8787";
        assert!(policy.origin_allowed("http://127.0.0.1:8787", host));
        assert!(policy.origin_allowed("http://localhost:6274", host));
        assert!(policy.origin_allowed("https://app.example.com", host));
        assert!(!policy.origin_allowed("http://app.example.com", host));
        assert!(!policy.origin_allowed("https://evil.example", host));
        assert!(!policy.origin_allowed("null", host));
    }
}
