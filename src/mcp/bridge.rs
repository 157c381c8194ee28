//! `humanping mcp --server URL`: a stdio MCP server that is only a bridge to a remote HumanPing
//! over Streamable HTTP, so a desktop client can use a hosted instance with the same command.
//!
//! Messages are relayed as they are, both ways: requests, responses, progress and other
//! notifications. The remote server does all the work and checks the agent key, which the bridge
//! sends as `Authorization: Bearer`. Stdout carries only the relayed JSON-RPC.

use anyhow::Context;
use rmcp::RoleClient;
use rmcp::RoleServer;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, Transport};

/// Relays stdio to `url` until either side closes.
pub async fn bridge_stdio(url: &str, api_key: Option<String>) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("--server {url:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "--server must be an http(s) URL such as https://humanping.example.com/mcp"
    );
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(key) = api_key.filter(|k| !k.trim().is_empty()) {
        config = config.auth_header(key.trim().to_owned());
    }
    let mut remote = StreamableHttpClientTransport::from_config(config);
    let stdio = super::stdio::transport(tokio::io::stdin(), tokio::io::stdout());
    let pump = stdio.pump;
    let mut local = IntoTransport::<RoleServer, _, _>::into_transport((stdio.sink, stdio.stream));
    tracing::info!(server = %parsed, "bridging stdio MCP to a remote HumanPing");

    loop {
        tokio::select! {
            from_client = local.receive() => match from_client {
                Some(message) => {
                    if let Err(error) = Transport::<RoleClient>::send(&mut remote, message).await {
                        tracing::error!(%error, "could not reach the remote HumanPing");
                        break;
                    }
                }
                None => break,
            },
            from_server = Transport::<RoleClient>::receive(&mut remote) => match from_server {
                Some(message) => local.send(message).await.context("could not write to stdout")?,
                None => {
                    tracing::error!("the remote HumanPing closed the connection");
                    break;
                }
            },
        }
    }
    let _ = Transport::<RoleClient>::close(&mut remote).await;
    let _ = local.close().await;
    drop(local);
    // The last relayed lines reach stdout before the process exits.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pump).await;
    Ok(())
}
