//! Tasks as MCP resources: every task of the agent is `humanping://tasks/{id}`, a JSON
//! document of its latest state that a client can list, read and subscribe to. Every photo sent
//! as proof is `humanping://tasks/{id}/proofs/{sha256}`, read as a base64 blob with its image
//! type, by the task's agent only.
//!
//! A task outlives the tool call that created it, so the resource is the durable handle: a
//! client that gave up waiting subscribes and hears `notifications/resources/updated` when the
//! human answers. Subscriptions belong to one session (one [`super::HumanPingMcp`]); a watcher
//! task follows the service's change broadcast while the session has any, and stops with it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use base64::Engine as _;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorData as McpError, ListResourceTemplatesResult,
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    SubscriptionFilter,
};
use rmcp::service::{Peer, RequestContext, SubscriptionContext};
use rmcp::{RoleServer, handler::server::tool::IntoCallToolResult};
use tokio::sync::broadcast::error::RecvError;

use crate::domain::ids::AgentId;
use crate::service::Change;
use crate::service::views::TaskView;
use crate::service::{HumanPing, ServiceError};

/// Where every task resource lives; the task id follows.
const TASK_URI_PREFIX: &str = "humanping://tasks/";
/// The template clients fill in to name a task.
const TASK_URI_TEMPLATE: &str = "humanping://tasks/{task_id}";
/// The template naming one proof photo of a task.
const PHOTO_URI_TEMPLATE: &str = "humanping://tasks/{task_id}/proofs/{sha256}";
/// What a task resource holds.
const JSON_MIME: &str = "application/json";
/// How many tasks one `resources/list` page holds.
const LIST_PAGE: u32 = 50;

/// The task id a task resource URI names, if it names one.
pub(crate) fn task_id_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(TASK_URI_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains(['/', '?', '#']))
}

/// The resource URI of a proof photo of a task.
pub(crate) fn photo_uri(task_id: &str, sha256: &str) -> String {
    format!("{TASK_URI_PREFIX}{task_id}/proofs/{sha256}")
}

/// The task id and SHA-256 a proof photo URI names, if it names one.
pub(crate) fn photo_of(uri: &str) -> Option<(&str, &str)> {
    let (task, sha256) = uri.strip_prefix(TASK_URI_PREFIX)?.split_once("/proofs/")?;
    let well_formed = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!task.is_empty() && !task.contains(['/', '?', '#']) && well_formed).then_some((task, sha256))
}

/// The resources linking each proof photo of a task, as tool results carry them.
fn photo_resources(view: &TaskView) -> impl Iterator<Item = Resource> + '_ {
    view.results.iter().flat_map(move |result| {
        result.photos.iter().map(move |photo| {
            Resource::new(
                photo_uri(view.task_id.as_str(), &photo.sha256),
                &photo.sha256,
            )
            .with_title(format!("Proof photo of task {}", view.task_id))
            .with_description(format!(
                "A photo the human sent as proof ({} bytes)",
                photo.size_bytes
            ))
            .with_mime_type(photo.content_type.clone())
        })
    })
}

/// The resource describing a task, as listed and as linked from tool results.
fn task_resource(view: &TaskView) -> Resource {
    Resource::new(view.resource_uri.clone(), view.task_id.to_string())
        .with_title(format!(
            "{} task: {}",
            view.kind.tool_name(),
            view.status.as_str()
        ))
        .with_description(view.instruction.clone())
        .with_mime_type(JSON_MIME)
}

/// The JSON text of a task resource.
fn task_json(view: &TaskView) -> Result<String, McpError> {
    serde_json::to_string(view).map_err(|error| {
        McpError::internal_error(format!("could not encode the task: {error}"), None)
    })
}

/// A task tool's result: the task as structured content and JSON text, plus a link to its
/// resource so the client can read or subscribe to it later, and a link to each proof photo.
pub(crate) struct TaskResult(pub TaskView);

impl IntoCallToolResult for TaskResult {
    fn into_call_tool_result(self) -> Result<rmcp::model::CallToolResponse, McpError> {
        let value = serde_json::to_value(&self.0).map_err(|error| {
            McpError::internal_error(format!("could not encode the task: {error}"), None)
        })?;
        let mut result = CallToolResult::structured(value);
        result
            .content
            .push(ContentBlock::resource_link(task_resource(&self.0)));
        result
            .content
            .extend(photo_resources(&self.0).map(ContentBlock::resource_link));
        Ok(result.into())
    }
}

/// Turns a service error into the protocol error a resource request answers with.
fn protocol_error(error: ServiceError) -> McpError {
    match error {
        ServiceError::NotFound(message) => McpError::resource_not_found(message, None),
        ServiceError::Internal(detail) => {
            tracing::error!(error = format!("{detail:#}"), "resource request failed");
            McpError::internal_error("HumanPing hit an internal error; try again", None)
        }
        other => McpError::invalid_params(other.to_string(), None),
    }
}

/// The task a resource URI names, or the error saying the URI is not one of ours.
fn task_id_or_error(uri: &str) -> Result<&str, McpError> {
    task_id_of(uri).ok_or_else(|| {
        McpError::resource_not_found(
            format!(
                "{uri:?} is not a HumanPing task; task resources look like {TASK_URI_TEMPLATE}"
            ),
            None,
        )
    })
}

/// `resources/list`: the agent's tasks, newest first, a page at a time.
pub(crate) async fn list(
    service: &HumanPing,
    agent: &AgentId,
    cursor: Option<&str>,
) -> Result<ListResourcesResult, McpError> {
    let page = service
        .list_tasks(agent, None, LIST_PAGE, cursor)
        .await
        .map_err(protocol_error)?;
    let mut result =
        ListResourcesResult::with_all_items(page.tasks.iter().map(task_resource).collect());
    result.next_cursor = page.next_cursor;
    Ok(result)
}

/// `resources/templates/list`: a task by id, and a proof photo of a task by its SHA-256.
pub(crate) fn templates() -> ListResourceTemplatesResult {
    let task = ResourceTemplate::new(TASK_URI_TEMPLATE, "task")
        .with_title("A HumanPing task")
        .with_description(
            "The latest state of one of your tasks, with the human's answer once it is in",
        )
        .with_mime_type(JSON_MIME);
    let photo = ResourceTemplate::new(PHOTO_URI_TEMPLATE, "proof_photo")
        .with_title("A proof photo")
        .with_description(
            "A photo the human sent as proof for one of your tasks (JPEG, PNG or WebP, as a \
             base64 blob); its link is in the task's results",
        );
    ListResourceTemplatesResult::with_all_items(vec![task, photo])
}

/// `resources/read`: the task as JSON, or a proof photo as a base64 blob.
pub(crate) async fn read(
    service: &HumanPing,
    agent: &AgentId,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    if let Some((task_id, sha256)) = photo_of(uri) {
        return read_photo(service, agent, uri, task_id, sha256).await;
    }
    let id = task_id_or_error(uri)?;
    let view = service.get_task(agent, id).await.map_err(protocol_error)?;
    let contents = ResourceContents::text(task_json(&view)?, uri).with_mime_type(JSON_MIME);
    Ok(ReadResourceResult::new(vec![contents]))
}

/// A proof photo of one of the agent's tasks, read from the proof folder. Another agent's task,
/// or an unknown one, gets the same not-found error as reading an unknown task.
async fn read_photo(
    service: &HumanPing,
    agent: &AgentId,
    uri: &str,
    task_id: &str,
    sha256: &str,
) -> Result<ReadResourceResult, McpError> {
    let photo = service
        .proof_photo_for_agent(agent, task_id, sha256)
        .await
        .map_err(protocol_error)?;
    let Some(photo) = photo else {
        // Not the agent's task (or no such task): exactly what reading that task answers.
        service
            .get_task(agent, task_id)
            .await
            .map_err(protocol_error)?;
        return Err(McpError::resource_not_found(
            format!("task {task_id:?} has no proof photo {sha256}"),
            None,
        ));
    };
    let path = crate::web::WebSettings::for_service(service)
        .proof_dir
        .join(&photo.sha256);
    let bytes = match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            tracing::error!(%error, sha256, "a proof photo is recorded but its file is unreadable");
            return Err(McpError::resource_not_found(
                format!("the file of proof photo {sha256} is missing on the server"),
                None,
            ));
        }
        Err(error) => {
            return Err(McpError::internal_error(
                format!("could not read the photo: {error}"),
                None,
            ));
        }
    };
    let blob = base64::engine::general_purpose::STANDARD.encode(bytes);
    let contents = ResourceContents::blob(blob, uri).with_mime_type(photo.content_type);
    Ok(ReadResourceResult::new(vec![contents]))
}

/// One session's resource subscriptions. Clones share the state; the watcher stops once the
/// last clone is gone.
#[derive(Clone, Default)]
pub(crate) struct Subscriptions(Arc<Mutex<Subscribed>>);

/// The subscribed tasks, each with a fingerprint of the state last announced, and the
/// watcher following changes for them.
#[derive(Default)]
struct Subscribed {
    tasks: HashMap<String, u64>,
    watcher: Option<tokio::task::AbortHandle>,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
    }
}

impl Subscriptions {
    /// `resources/subscribe`: checks the task is the agent's, remembers its state, and starts
    /// the watcher if this is the session's first subscription.
    pub(crate) async fn subscribe(
        &self,
        service: &HumanPing,
        agent: &AgentId,
        uri: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let id = task_id_or_error(uri)?;
        let view = service.get_task(agent, id).await.map_err(protocol_error)?;
        let fingerprint = fingerprint(&view)?;

        let mut state = self.0.lock().expect("subscriptions lock");
        state.tasks.insert(id.to_owned(), fingerprint);
        if state.watcher.as_ref().is_none_or(|w| w.is_finished()) {
            let watcher = tokio::spawn(watch(
                Arc::downgrade(&self.0),
                service.clone(),
                agent.clone(),
                context.peer.clone(),
            ));
            state.watcher = Some(watcher.abort_handle());
        }
        tracing::debug!(task = id, "resource subscribed");
        Ok(())
    }

    /// `resources/unsubscribe`: forgets the task; unknown URIs are accepted silently.
    pub(crate) fn unsubscribe(&self, uri: &str) {
        if let Some(id) = task_id_of(uri) {
            self.0.lock().expect("subscriptions lock").tasks.remove(id);
        }
    }
}

/// A cheap summary of a task's state: it changes whenever anything the agent sees changes.
fn fingerprint(view: &TaskView) -> Result<u64, McpError> {
    let mut hasher = DefaultHasher::new();
    task_json(view)?.hash(&mut hasher);
    Ok(hasher.finish())
}

/// Follows the service's changes and tells the client about each subscribed task that changed,
/// until the session's subscriptions are dropped or the client is gone.
async fn watch(
    state: Weak<Mutex<Subscribed>>,
    service: HumanPing,
    agent: AgentId,
    peer: Peer<RoleServer>,
) {
    let mut changes = service.subscribe();
    loop {
        let changed: Vec<String> = match changes.recv().await {
            Ok(Change::Task(id)) => vec![id.to_string()],
            // Another process changed something, or we missed messages: look at them all.
            Ok(Change::Unknown) | Err(RecvError::Lagged(_)) => {
                let Some(state) = state.upgrade() else { return };
                let state = state.lock().expect("subscriptions lock");
                state.tasks.keys().cloned().collect()
            }
            Err(RecvError::Closed) => return,
        };
        for id in changed {
            if peer.is_transport_closed() {
                return;
            }
            let Some(state) = state.upgrade() else { return };
            let known = state
                .lock()
                .expect("subscriptions lock")
                .tasks
                .get(&id)
                .copied();
            let Some(known) = known else { continue };
            let Ok(view) = service.get_task(&agent, &id).await else {
                continue;
            };
            let Ok(now) = fingerprint(&view) else {
                continue;
            };
            if now == known {
                continue;
            }
            {
                let mut state = state.lock().expect("subscriptions lock");
                match state.tasks.get_mut(&id) {
                    Some(entry) => *entry = now,
                    None => continue,
                }
            }
            drop(state);
            if let Err(error) = peer
                .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(
                    view.resource_uri.clone(),
                ))
                .await
            {
                tracing::debug!(%error, "could not send a resource update; session gone");
                return;
            }
            tracing::debug!(task = %id, "resource update sent");
        }
    }
}

/// What a 2026-07-28 `subscriptions/listen` gets of its filter: the task resources it names.
/// Whether each task is the caller's is checked once the subscription runs.
pub(crate) fn accepted_filter(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let tasks = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|uri| task_id_of(uri).is_some())
        .cloned();
    SubscriptionFilter::builder()
        .resource_subscriptions(tasks)
        .build()
}

/// Runs one `subscriptions/listen` request: an update notification on it whenever one of the
/// agent's listed tasks changes, until the client cancels the request.
pub(crate) async fn listen(
    service: &HumanPing,
    agent: &AgentId,
    subscription: SubscriptionContext,
) -> Result<(), McpError> {
    let mut changes = service.subscribe();
    let mut known: HashMap<String, u64> = HashMap::new();
    for uri in subscription
        .accepted()
        .resource_subscriptions
        .iter()
        .flatten()
    {
        let Some(id) = task_id_of(uri) else { continue };
        // Another agent's task, or none: nothing to announce, and nothing said about it.
        if let Ok(view) = service.get_task(agent, id).await {
            known.insert(id.to_owned(), fingerprint(&view)?);
        }
    }
    tracing::debug!(tasks = known.len(), "listening for task updates");

    loop {
        let change = tokio::select! {
            () = subscription.cancelled() => return Ok(()),
            change = changes.recv() => change,
        };
        let candidates: Vec<String> = match change {
            Ok(Change::Task(id)) if known.contains_key(id.as_str()) => vec![id.to_string()],
            Ok(Change::Task(_)) => continue,
            Ok(Change::Unknown) | Err(RecvError::Lagged(_)) => known.keys().cloned().collect(),
            Err(RecvError::Closed) => return Ok(()),
        };
        for id in candidates {
            let Ok(view) = service.get_task(agent, &id).await else {
                continue;
            };
            let now = fingerprint(&view)?;
            if known.insert(id, now) == Some(now) {
                continue;
            }
            if let Err(error) = subscription
                .sink()
                .notify_resource_updated(view.resource_uri.clone())
                .await
            {
                tracing::debug!(%error, "subscription closed while sending an update");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_task_uris_name_a_task() {
        assert_eq!(task_id_of("humanping://tasks/task_1"), Some("task_1"));
        assert_eq!(task_id_of("humanping://tasks/"), None);
        assert_eq!(task_id_of("humanping://tasks/a/b"), None);
        assert_eq!(task_id_of("file:///etc/passwd"), None);
    }

    #[test]
    fn photo_uris_name_a_task_and_a_hash() {
        let sha = "ab".repeat(32);
        let uri = photo_uri("task_1", &sha);
        assert_eq!(photo_of(&uri), Some(("task_1", sha.as_str())));
        assert_eq!(task_id_of(&uri), None);
        assert_eq!(photo_of("humanping://tasks/task_1/proofs/abc"), None);
        assert_eq!(photo_of(&format!("humanping://tasks//proofs/{sha}")), None);
        assert_eq!(
            photo_of(&format!("humanping://tasks/a/b/proofs/{sha}")),
            None
        );
        assert_eq!(photo_of(&photo_uri("task_1", &"AB".repeat(32))), None);
    }
}
