//! Reading tasks and assignments from the database, and turning them into views.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::error::{ServiceError, ServiceResult};
use super::views::{ProofPhotoView, ResultView, TaskView, timestamp};
use crate::domain::ids::{AgentId, AssignmentId, TaskId, WorkerId};
use crate::domain::kind::TaskKind;
use crate::domain::money::Cents;
use crate::domain::response::ResponseFormat;
use crate::domain::status::{AssignmentStatus, TaskStatus};
use crate::input::ProofKind;
use crate::ledger::Pending;
use crate::ledger::account;

pub(super) const TASK_COLUMNS: &str = "id, agent_id, kind, instruction, details, context, \
    address, lat, lng, radius_m, language, response_format, proof, metadata, callback_url, budget_cents, \
    fee_bps, currency, slots, status, hold_transfer_id, held_cents, deadline_at, \
    review_deadline_at, created_at, updated_at, version, max_workers, agreement, weighting, \
    consensus, partners, first_look_until, bonus_cents";

/// `TASK_COLUMNS` qualified by the alias `t`, for queries that join other tables.
pub(super) static TASK_COLUMNS_T: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    TASK_COLUMNS
        .split(',')
        .map(|column| format!("t.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// A task as stored.
#[derive(Clone, Debug)]
pub(super) struct TaskRow {
    pub id: TaskId,
    pub agent_id: AgentId,
    pub kind: TaskKind,
    pub instruction: String,
    pub details: Map<String, Value>,
    pub context: Option<String>,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_m: Option<i64>,
    pub language: Option<String>,
    pub response: ResponseFormat,
    pub proof: Vec<ProofKind>,
    pub metadata: Option<Map<String, Value>>,
    pub callback_url: Option<String>,
    pub budget: Cents,
    pub fee_bps: u32,
    pub currency: String,
    pub slots: i64,
    pub status: TaskStatus,
    /// The status as last read from or written to the database.
    pub stored_status: TaskStatus,
    pub hold_transfer_id: String,
    pub held: Cents,
    pub deadline_at: i64,
    pub review_deadline_at: Option<i64>,
    pub created_at: i64,
    pub version: i64,
    /// The most humans the task may grow to; above 1 the task runs by consensus.
    pub max_workers: i64,
    /// How many answers must agree.
    pub agreement: i64,
    pub weighting: crate::input::Weighting,
    /// The consensus outcome, once decided.
    pub consensus: Option<super::views::ConsensusView>,
    /// Who may take the task: "prefer", "only" or "none" (the agent's partners).
    pub partners: String,
    /// Until when only the agent's partners may take it.
    pub first_look_until: Option<i64>,
    /// The partner bonus held per slot.
    pub bonus: Cents,
}

impl TaskRow {
    pub fn from_row(row: &AnyRow) -> ServiceResult<TaskRow> {
        let text = |name: &str| -> ServiceResult<String> { Ok(row.try_get::<String, _>(name)?) };
        let json = |name: &str| -> ServiceResult<Value> {
            serde_json::from_str(&text(name)?).map_err(|e| corrupt(name, e))
        };
        let object = |value: Value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let metadata: Option<String> = row.try_get("metadata")?;
        let status: TaskStatus = text("status")?.parse().map_err(|e| corrupt("status", e))?;
        Ok(TaskRow {
            id: TaskId::from_db(text("id")?),
            agent_id: AgentId::from_db(text("agent_id")?),
            kind: text("kind")?.parse().map_err(|e| corrupt("kind", e))?,
            instruction: text("instruction")?,
            details: object(json("details")?).unwrap_or_default(),
            context: row.try_get("context")?,
            address: row.try_get("address")?,
            lat: row.try_get("lat")?,
            lng: row.try_get("lng")?,
            radius_m: row.try_get("radius_m")?,
            language: row.try_get("language")?,
            response: serde_json::from_value(json("response_format")?)
                .map_err(|e| corrupt("response_format", e))?,
            proof: serde_json::from_value(json("proof")?).map_err(|e| corrupt("proof", e))?,
            metadata: metadata
                .map(|m| serde_json::from_str::<Value>(&m).map_err(|e| corrupt("metadata", e)))
                .transpose()?
                .and_then(object),
            callback_url: row.try_get("callback_url")?,
            budget: Cents::new(row.try_get("budget_cents")?),
            fee_bps: u32::try_from(row.try_get::<i64, _>("fee_bps")?).unwrap_or(0),
            currency: text("currency")?,
            slots: row.try_get("slots")?,
            status,
            stored_status: status,
            hold_transfer_id: text("hold_transfer_id")?,
            held: Cents::new(row.try_get("held_cents")?),
            deadline_at: row.try_get("deadline_at")?,
            review_deadline_at: row.try_get("review_deadline_at")?,
            created_at: row.try_get("created_at")?,
            version: row.try_get("version")?,
            max_workers: row.try_get("max_workers")?,
            agreement: row.try_get("agreement")?,
            weighting: match text("weighting")?.as_str() {
                "trust" => crate::input::Weighting::Trust,
                _ => crate::input::Weighting::None,
            },
            consensus: row
                .try_get::<Option<String>, _>("consensus")?
                .map(|c| serde_json::from_str(&c).map_err(|e| corrupt("consensus", e)))
                .transpose()?,
            partners: text("partners")?,
            first_look_until: row.try_get("first_look_until")?,
            bonus: Cents::new(row.try_get("bonus_cents")?),
        })
    }

    /// The escrow hold of this task, for posting and voiding parts of it.
    pub fn pending(&self) -> Pending {
        Pending {
            id: self.hold_transfer_id.clone(),
            debit: account::agent(&self.agent_id),
            credit: account::escrow(&self.id),
        }
    }

    /// What a worker receives for one approved result, after the fee.
    pub fn worker_pay(&self) -> Cents {
        self.budget.split_fee(self.fee_bps).worker
    }
}

fn corrupt(column: &str, error: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!(
        "stored task column {column} is unreadable: {error}"
    ))
}

/// Loads a task, locking its row on PostgreSQL when `lock` is given.
pub(super) async fn load_task(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> ServiceResult<Option<TaskRow>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1{lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(TaskRow::from_row).transpose()
}

/// Loads a task the agent owns; anything else (unknown id, another agent's task, a malformed
/// id) is the same "not found", so agents learn nothing about each other's tasks.
pub(super) async fn load_agent_task(
    conn: &mut AnyConnection,
    agent: &AgentId,
    id: &str,
    lock: &str,
) -> ServiceResult<TaskRow> {
    let not_found = || {
        ServiceError::not_found(format!(
            "no task {id:?} among your tasks; listing your tasks shows the ids you can use"
        ))
    };
    if TaskId::parse(id).is_none() {
        return Err(not_found());
    }
    match load_task(conn, id, lock).await? {
        Some(task) if &task.agent_id == agent => Ok(task),
        _ => Err(not_found()),
    }
}

/// An assignment as stored.
#[derive(Clone, Debug)]
pub(super) struct AssignmentRow {
    pub id: AssignmentId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub status: AssignmentStatus,
    pub claimed_at: i64,
    pub lease_expires_at: i64,
    pub submitted_at: Option<i64>,
    pub answer: Option<String>,
    pub structured: Option<String>,
    pub notes: Option<String>,
    pub proof: Option<String>,
    pub paid_cents: i64,
    /// The partner bonus promised with the claim.
    pub bonus: Cents,
}

pub(super) const ASSIGNMENT_COLUMNS: &str = "id, task_id, worker_id, status, claimed_at, \
    lease_expires_at, submitted_at, answer, structured, notes, proof, paid_cents, bonus_cents";

impl AssignmentRow {
    pub fn from_row(row: &AnyRow) -> ServiceResult<AssignmentRow> {
        let status: String = row.try_get("status")?;
        Ok(AssignmentRow {
            id: AssignmentId::from_db(row.try_get("id")?),
            task_id: TaskId::from_db(row.try_get("task_id")?),
            worker_id: WorkerId::from_db(row.try_get("worker_id")?),
            status: status
                .parse()
                .map_err(|e| corrupt("assignment status", e))?,
            claimed_at: row.try_get("claimed_at")?,
            lease_expires_at: row.try_get("lease_expires_at")?,
            submitted_at: row.try_get("submitted_at")?,
            answer: row.try_get("answer")?,
            structured: row.try_get("structured")?,
            notes: row.try_get("notes")?,
            proof: row.try_get("proof")?,
            paid_cents: row.try_get("paid_cents")?,
            bonus: Cents::new(row.try_get("bonus_cents")?),
        })
    }

    fn result(&self) -> Option<ResultView> {
        let parse =
            |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str(t).ok());
        Some(ResultView {
            assignment_id: self.id.clone(),
            worker_id: self.worker_id.clone(),
            status: self.status,
            answer: self.answer.clone()?,
            structured: parse(&self.structured).unwrap_or(Value::Null),
            notes: self.notes.clone(),
            proof: parse(&self.proof),
            photos: Vec::new(),
            submitted_at: timestamp(self.submitted_at?),
            paid_cents: self.paid_cents,
            flags: Vec::new(),
        })
    }
}

/// The assignments of a task in the given states, oldest first.
pub(super) async fn task_assignments(
    conn: &mut AnyConnection,
    task: &TaskId,
    statuses: &[AssignmentStatus],
) -> ServiceResult<Vec<AssignmentRow>> {
    let list = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE task_id = $1 AND status IN ({list}) \
         ORDER BY claimed_at, id"
    );
    let rows = sqlx::query(&sql)
        .bind(task.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter().map(AssignmentRow::from_row).collect()
}

/// Builds the agent's view of a task, with its results.
pub(super) async fn task_view(conn: &mut AnyConnection, task: &TaskRow) -> ServiceResult<TaskView> {
    use AssignmentStatus::{Approved, Rejected, Submitted};
    let mut results: Vec<ResultView> =
        task_assignments(conn, &task.id, &[Submitted, Approved, Rejected])
            .await?
            .iter()
            .filter_map(AssignmentRow::result)
            .collect();
    let links = |result: &ResultView| {
        result
            .proof
            .as_ref()
            .and_then(|p| p["photo_urls"].as_array())
            .cloned()
            .unwrap_or_default()
    };
    if results.iter().any(|result| !links(result).is_empty()) {
        let photos = proof_photos(conn, &task.id).await?;
        for result in &mut results {
            // Only the photos the accepted result links to: a refused attempt may have left others.
            let urls = links(result);
            let linked = |url: &str| urls.iter().any(|u| u.as_str() == Some(url));
            result.photos = photos
                .iter()
                .filter(|(assignment, photo)| {
                    assignment == result.assignment_id.as_str() && linked(&photo.url)
                })
                .map(|(_, photo)| photo.clone())
                .collect();
        }
    }
    if !results.is_empty() {
        let flags = super::fraud::of_task(conn, &task.id).await?;
        for result in &mut results {
            result.flags = flags
                .iter()
                .filter(|(assignment, _)| assignment == result.assignment_id.as_str())
                .map(|(_, flag)| flag.clone())
                .collect();
        }
    }
    Ok(view_of(task, results))
}

/// The photos stored as proof for a task, each with its assignment's id, oldest first.
async fn proof_photos(
    conn: &mut AnyConnection,
    task: &TaskId,
) -> ServiceResult<Vec<(String, ProofPhotoView)>> {
    let rows = sqlx::query(
        "SELECT assignment_id, sha256, content_type, size_bytes, exif_lat, exif_lng, \
         exif_taken_at FROM proof_photos WHERE task_id = $1 ORDER BY created_at, sha256",
    )
    .bind(task.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let sha256: String = row.try_get("sha256")?;
            let photo = ProofPhotoView {
                url: format!("/v1/tasks/{task}/proofs/{sha256}"),
                sha256,
                content_type: row.try_get("content_type")?,
                size_bytes: row.try_get("size_bytes")?,
                exif_lat: row.try_get("exif_lat")?,
                exif_lng: row.try_get("exif_lng")?,
                exif_taken_at: row.try_get("exif_taken_at")?,
            };
            Ok((row.try_get("assignment_id")?, photo))
        })
        .collect()
}

pub(super) fn view_of(task: &TaskRow, results: Vec<ResultView>) -> TaskView {
    let review = task.review_deadline_at.map(timestamp);
    let next_step = match task.status {
        TaskStatus::Open => "Waiting for a human to take it. Call get_task with wait_seconds to \
                             wait for the result, or cancel_task to get the money back."
            .to_owned(),
        TaskStatus::InProgress => "A human is working on it. Call get_task with wait_seconds to \
                                   wait for the result."
            .to_owned(),
        TaskStatus::Completed => format!(
            "The result is in. Call approve to pay the human, or dispute to refund yourself; \
             it is approved automatically at {}.",
            review.clone().unwrap_or_default()
        ),
        TaskStatus::Approved => "Done: the human was paid.".to_owned(),
        TaskStatus::Refunded => "Disputed: the budget went back to your balance.".to_owned(),
        TaskStatus::Cancelled => "Cancelled: the budget went back to your balance.".to_owned(),
        TaskStatus::Expired => {
            "Expired before a result came in: the budget went back to your balance.".to_owned()
        }
    };
    TaskView {
        task_id: task.id.clone(),
        resource_uri: format!("humanping://tasks/{}", task.id),
        kind: task.kind,
        status: task.status,
        instruction: task.instruction.clone(),
        budget_cents: task.budget.get(),
        budget: task.budget.to_string(),
        currency: task.currency.clone(),
        workers: task.slots,
        held_cents: task.held.get(),
        answer: match &task.consensus {
            Some(consensus) => consensus.answer.as_ref().map(|a| match a {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            }),
            None if task.max_workers > 1 => None,
            None => results.first().map(|r| r.answer.clone()),
        },
        results,
        consensus: task.consensus.clone(),
        response_format: task.response.clone(),
        created_at: timestamp(task.created_at),
        deadline: timestamp(task.deadline_at),
        review_deadline: review,
        metadata: task.metadata.clone(),
        next_step,
    }
}
