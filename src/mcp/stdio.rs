//! The stdio transport: one JSON-RPC message per line on stdin and stdout.
//!
//! rmcp's own stdio transport drops a line that is not JSON, or too long, without a word, so a
//! client waits for an answer that never comes. This one answers them as JSON-RPC says: `-32700`
//! for a line that is not JSON, `-32600` for JSON that is not a message or a line longer than
//! [`MAX_MESSAGE_BYTES`]; the session goes on. Everything else goes to rmcp as parsed messages
//! through a channel pair, and one writer task owns stdout, so every line written is whole.

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::http::MAX_MESSAGE_BYTES;

/// Lines buffered each way before the reader or the service waits.
const BUFFER: usize = 64;
/// How much of an oversized line is kept to find its request id.
const ID_SEARCH_BYTES: usize = 64 * 1024;

/// A line ready to be written, as the outgoing half turns each message into one.
type Encoded = futures::future::Ready<Result<String, mpsc::SendError>>;

/// The outgoing half: messages encoded into lines for the writer task.
pub(crate) type LineSink = futures::sink::With<
    mpsc::Sender<String>,
    String,
    TxJsonRpcMessage<RoleServer>,
    Encoded,
    fn(TxJsonRpcMessage<RoleServer>) -> Encoded,
>;

/// The halves rmcp serves on, and the tasks that move bytes; await `pump` after the service
/// ended so the last lines are written before the process exits.
pub(crate) struct StdioTransport {
    pub sink: LineSink,
    pub stream: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    pub pump: tokio::task::JoinHandle<()>,
    /// Becomes `true` when stdin ends: calls still waiting for a human stop then, so the
    /// process does not outlive its client.
    pub closed: tokio::sync::watch::Receiver<bool>,
}

/// Starts reading `input` and writing `output`.
pub(crate) fn transport<R, W>(input: R, output: W) -> StdioTransport
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (lines_out, lines_to_write) = mpsc::channel::<String>(BUFFER);
    let lines_out_for_reader = lines_out.clone();
    let (messages_in, stream) = mpsc::channel(BUFFER);
    let (close, closed) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        read_lines(input, messages_in, lines_out_for_reader).await;
        let _ = close.send(true);
    });
    let writer = tokio::spawn(write_lines(output, lines_to_write));
    let pump = tokio::spawn(async move {
        let _ = reader.await;
        let _ = writer.await;
    });
    let encode: fn(_) -> _ = |message: TxJsonRpcMessage<RoleServer>| {
        futures::future::ready(Ok(serde_json::to_string(&message).unwrap_or_else(
            |error| error_line(None, -32603, &format!("unencodable reply: {error}")),
        )))
    };
    StdioTransport {
        sink: lines_out.with(encode),
        stream,
        pump,
        closed,
    }
}

/// Writes each line, newline-terminated and flushed, until every sender is gone.
async fn write_lines<W: AsyncWrite + Unpin>(mut output: W, mut lines: mpsc::Receiver<String>) {
    while let Some(mut line) = lines.next().await {
        line.push('\n');
        if let Err(error) = output.write_all(line.as_bytes()).await {
            tracing::info!(%error, "stdout closed; no more replies can be written");
            return;
        }
        if let Err(error) = output.flush().await {
            tracing::info!(%error, "stdout closed; no more replies can be written");
            return;
        }
    }
}

/// Reads lines until end of input, handing messages to the service and answering the rest.
async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    mut messages: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    mut replies: mpsc::Sender<String>,
) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let oversized = match read_bounded_line(&mut input, &mut line).await {
            Ok(Some(oversized)) => oversized,
            Ok(None) => break,
            Err(error) => {
                tracing::info!(%error, "stdin failed; ending the session");
                break;
            }
        };
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) && !oversized {
            continue;
        }
        let reply = if oversized {
            tracing::warn!(
                limit = MAX_MESSAGE_BYTES,
                "refused an oversized message on stdin"
            );
            let message = format!(
                "message too large: the limit is {MAX_MESSAGE_BYTES} bytes; send less (e.g. a \
                 link instead of the content)"
            );
            error_line(sniff_id(text), -32600, &message)
        } else {
            match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(text) {
                Ok(message) => {
                    if messages.send(message).await.is_err() {
                        break;
                    }
                    continue;
                }
                Err(error) => match serde_json::from_slice::<Value>(text) {
                    Err(error) => {
                        tracing::debug!(%error, "answered a line that is not JSON");
                        error_line(None, -32700, &format!("parse error: {error}"))
                    }
                    Ok(value) => {
                        tracing::debug!(%error, "answered JSON that is not a JSON-RPC message");
                        let id = value
                            .get("id")
                            .filter(|id| id.is_string() || id.is_number());
                        error_line(id.cloned(), -32600, &format!("invalid request: {error}"))
                    }
                },
            }
        };
        if replies.send(reply).await.is_err() {
            break;
        }
    }
    tracing::debug!("stdin closed");
}

/// Reads one line into `line`, newline included, buffering at most [`MAX_MESSAGE_BYTES`] of it.
/// `Ok(None)` at end of input; `Ok(Some(true))` when the line was longer than the limit (then
/// `line` holds only its start).
async fn read_bounded_line<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    // The limit counts the message, not its newline.
    let cap = MAX_MESSAGE_BYTES + 1;
    let mut seen = 0usize;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            // End of input: an unterminated last line is dropped, as it may be cut short.
            return Ok(None);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let keep = chunk.len().min(cap.saturating_sub(line.len()));
        line.extend_from_slice(&chunk[..keep]);
        seen += chunk.len();
        let consumed = chunk.len();
        input.consume(consumed);
        if done {
            let oversized = seen > cap;
            if oversized {
                line.truncate(ID_SEARCH_BYTES);
            }
            return Ok(Some(oversized));
        }
    }
}

/// The request id near the start of a message too large to parse, if it is there.
// Limitation: an oversized message with "id" after its params gets a reply with a wrong/null id.
fn sniff_id(start: &[u8]) -> Option<Value> {
    let at = start.windows(4).position(|w| w == b"\"id\"")?;
    let rest = &start[at + 4..];
    let colon = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    let rest = rest.get(colon..)?.strip_prefix(b":")?;
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
    values
        .next()?
        .ok()
        .filter(|id| id.is_string() || id.is_number())
}

/// A JSON-RPC error response line.
fn error_line(id: Option<Value>, code: i64, message: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": {"code": code, "message": message},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_an_oversized_message_is_found_near_its_start() {
        let start = br#"{"jsonrpc":"2.0","id" : 42,"method":"tools/call","params":{"x":"aaaa"#;
        assert_eq!(sniff_id(start), Some(json!(42)));
        assert_eq!(
            sniff_id(br#"{"jsonrpc":"2.0","id":"a-1","#),
            Some(json!("a-1"))
        );
        assert_eq!(sniff_id(br#"{"jsonrpc":"2.0","method":"x""#), None);
    }

    #[tokio::test]
    async fn bad_lines_are_answered_and_good_ones_go_on() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_in, server_out) = tokio::io::split(server);
        let mut transport = transport(server_in, server_out);
        let (client_in, mut client_out) = tokio::io::split(client);
        client_out
            .write_all(b"{nope\n\n{\"id\":7}\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await
            .unwrap();
        let mut replies = BufReader::new(client_in).lines();
        let first: Value =
            serde_json::from_str(&replies.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            (first["error"]["code"].as_i64(), &first["id"]),
            (Some(-32700), &Value::Null)
        );
        let second: Value =
            serde_json::from_str(&replies.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            (second["error"]["code"].as_i64(), &second["id"]),
            (Some(-32600), &json!(7))
        );
        assert!(transport.stream.next().await.is_some());
    }
}
