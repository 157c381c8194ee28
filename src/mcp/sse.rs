//! The legacy HTTP+SSE transport, still spoken by many agent frameworks: `GET /sse` opens an
//! event stream whose first event (`endpoint`) names where to post, and each
//! `POST /messages?sessionId=…` carries one JSON-RPC message, answered `202 Accepted`; replies
//! go out on the stream as `message` events.
//!
//! rmcp has no server for it, but any pair of a sink and a stream of JSON-RPC messages is an
//! rmcp transport: each session is a [`HumanPingMcp`] served over two channels, one fed by
//! the POSTs, one drained by the event stream. When the event stream is dropped (the client
//! went away), the session leaves the map and its MCP service is stopped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use serde::Deserialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::HumanPingMcp;
use super::http::{
    CallerAgent, KEEP_ALIVE, MAX_MESSAGE_BYTES, error_response, jsonrpc_error, unknown_session,
};
use crate::domain::ids::AgentId;
use crate::service::HumanPing;

/// Messages a session buffers each way before a sender waits.
const CHANNEL_CAPACITY: usize = 64;

/// The open SSE sessions, by id.
#[derive(Clone)]
pub(crate) struct SseSessions {
    service: HumanPing,
    open: Arc<Mutex<HashMap<String, Session>>>,
}

/// One open event stream.
struct Session {
    /// The agent whose key opened it; posts must come with the same agent's key.
    agent: AgentId,
    /// Where posted messages go, towards the session's MCP service.
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
}

impl SseSessions {
    pub(crate) fn new(service: HumanPing) -> SseSessions {
        SseSessions {
            service,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open.lock().expect("SSE sessions lock").len()
    }

    fn inbound(&self, id: &str, agent: &AgentId) -> Option<mpsc::Sender<ClientJsonRpcMessage>> {
        let open = self.open.lock().expect("SSE sessions lock");
        let session = open.get(id)?;
        (&session.agent == agent).then(|| session.inbound.clone())
    }
}

/// `GET /sse` and `POST /messages`, to mount behind the agent authentication.
pub(crate) fn routes(sessions: SseSessions) -> Router {
    Router::new()
        .route("/sse", get(open_stream))
        .route("/messages", post(post_message))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(sessions)
}

/// `GET /sse`: starts a session for the calling agent and streams its messages.
async fn open_stream(
    State(sessions): State<SseSessions>,
    Extension(CallerAgent(agent)): Extension<CallerAgent>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (inbound, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, outbound) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);

    let handler = HumanPingMcp::new(sessions.service.clone(), Ok(agent.clone()));
    let span = tracing::info_span!("sse_session", session = %id, %agent);
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            match handler.serve((to_client, from_client)).await {
                Ok(running) => {
                    let reason = running.waiting().await;
                    tracing::info!(?reason, "SSE session ended");
                }
                Err(error) => tracing::info!(%error, "SSE session ended before its handshake"),
            }
        },
        span,
    ));

    sessions
        .open
        .lock()
        .expect("SSE sessions lock")
        .insert(id.clone(), Session { agent, inbound });
    tracing::info!(session = %id, "MCP session opened over SSE");

    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = outbound.map(|message| {
        let data = serde_json::to_string(&message).unwrap_or_else(|error| {
            tracing::error!(%error, "could not encode an MCP message");
            String::new()
        });
        Event::default().event("message").data(data)
    });
    let events = futures::stream::once(async move { endpoint })
        .chain(messages)
        .map(Ok);
    let stream = Closing {
        events: Box::pin(events),
        _guard: SessionGuard { sessions, id, task },
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// An event stream that closes its session when dropped.
struct Closing<S> {
    events: Pin<Box<S>>,
    _guard: SessionGuard,
}

impl<S: Stream> Stream for Closing<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.events.as_mut().poll_next(cx)
    }
}

/// Removes a session from the map and stops its MCP service, whoever ends the stream.
// Limitation: the legacy transport has no resumption; a client whose stream drops must open
// a new one and initialize again.
struct SessionGuard {
    sessions: SseSessions,
    id: String,
    task: JoinHandle<()>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions
            .open
            .lock()
            .expect("SSE sessions lock")
            .remove(&self.id);
        // Dropping the running service cancels it, and any tool call waiting in it.
        self.task.abort();
        tracing::info!(session = %self.id, "SSE stream closed; session removed");
    }
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=…`: hands one JSON-RPC message to the session (202), whose answer
/// goes out on the event stream.
async fn post_message(
    State(sessions): State<SseSessions>,
    Extension(CallerAgent(agent)): Extension<CallerAgent>,
    Query(query): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let Some(id) = query.session_id.filter(|id| !id.is_empty()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "the sessionId query parameter is missing; post to the endpoint the `endpoint` event \
             of GET /sse named",
        );
    };
    let Some(mut inbound) = sessions.inbound(&id, &agent) else {
        return unknown_session();
    };

    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return jsonrpc_error(
                -32700,
                &format!("Parse error: the body is not JSON: {error}"),
            );
        }
    };
    // Limitation: JSON-RPC batches (arrays) are refused; MCP clients of this transport send
    // one message per POST.
    let message: ClientJsonRpcMessage = match serde_json::from_value(value) {
        Ok(message) => message,
        Err(error) => {
            return jsonrpc_error(
                -32600,
                &format!("Invalid Request: not one MCP JSON-RPC message: {error}"),
            );
        }
    };
    if inbound.send(message).await.is_err() {
        return unknown_session();
    }
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::middleware::{self, Next};

    use serde_json::json;

    use super::*;
    use crate::domain::ids::random_token;
    use crate::service::Config;

    /// Serves the SSE routes on loopback, every request acting as `agent`.
    async fn serve(sessions: SseSessions, agent: AgentId) -> String {
        let app = routes(sessions).layer(middleware::from_fn(
            move |mut request: axum::extract::Request, next: Next| {
                let agent = agent.clone();
                async move {
                    request.extensions_mut().insert(CallerAgent(agent));
                    next.run(request).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_dropped_stream_removes_its_session() {
        let path = std::env::temp_dir().join(format!("humanping-sse-{}.db", random_token(8)));
        let service = HumanPing::open(&format!("sqlite://{}", path.display()), Config::default())
            .await
            .unwrap();
        let (agent, _) = service.create_agent("sse").await.unwrap();
        let sessions = SseSessions::new(service);
        let base = serve(sessions.clone(), agent).await;
        let client = reqwest::Client::new();

        let mut stream = client.get(format!("{base}/sse")).send().await.unwrap();
        let first = stream.chunk().await.unwrap().unwrap();
        let first = String::from_utf8_lossy(&first).to_string();
        assert!(first.contains("event: endpoint"), "{first}");
        let endpoint = first
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(sessions.len(), 1);

        drop(stream);
        for _ in 0..100 {
            if sessions.len() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sessions.len(), 0, "the session outlived its stream");
        let posted = client
            .post(format!("{base}{endpoint}"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::NOT_FOUND);

        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
