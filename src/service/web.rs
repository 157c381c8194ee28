//! What the worker web app needs beyond the REST API: browser sessions, one-time sign-in links,
//! the worker's last known position, giving a claim back, and the photos sent as proof.
//!
//! Session and link tokens are random and stored only as SHA-256 hashes, like API keys.

use sqlx::Row;

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::rows::load_task;
use super::settle::save_task;
use super::views::AssignmentView;
use crate::auth::sha256_hex;
use crate::domain::ids::{AgentId, AssignmentId, TaskId, WorkerId, random_token};
use crate::domain::status::AssignmentStatus;

/// How long a browser session lasts.
const SESSION_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// How long a one-time sign-in link stays valid.
const SIGN_IN_LINK_MS: i64 = 24 * 60 * 60 * 1000;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub worker_id: WorkerId,
    /// The token every form of this session carries, checked on each POST.
    pub csrf_token: String,
}

/// A photo stored for an assignment, with what its EXIF data said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProofPhoto {
    /// Lowercase hex SHA-256 of the file: its name on disk.
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Where the camera said the photo was taken.
    pub exif_lat: Option<f64>,
    pub exif_lng: Option<f64>,
    /// When the camera said the photo was taken, as the camera wrote it.
    pub exif_taken_at: Option<String>,
}

impl HumanPing {
    /// Opens a browser session for the worker; returns the session token (for the cookie) and
    /// the session itself.
    pub async fn create_web_session(
        &self,
        worker: &WorkerId,
    ) -> ServiceResult<(String, WebSession)> {
        let token = random_token(32);
        let csrf_token = random_token(16);
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, worker_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(worker.as_str())
        .bind(&csrf_token)
        .bind(now)
        .bind(now + SESSION_MS)
        .execute(self.store.pool())
        .await?;
        tracing::info!(worker = %worker, "web session opened");
        Ok((
            token,
            WebSession {
                worker_id: worker.clone(),
                csrf_token,
            },
        ))
    }

    /// The live session a cookie token names, if any.
    // Limitation: nothing prunes expired sessions or used sign-in links.
    pub async fn web_session(&self, token: &str) -> ServiceResult<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT worker_id, csrf_token FROM web_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(self.clock.now_ms())
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| {
            Ok(WebSession {
                worker_id: WorkerId::from_db(row.try_get("worker_id")?),
                csrf_token: row.try_get("csrf_token")?,
            })
        })
        .transpose()
    }

    /// Ends a browser session (signing out).
    pub async fn end_web_session(&self, token: &str) -> ServiceResult<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(sha256_hex(token.as_bytes()))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Makes a one-time sign-in link token for a worker, valid for 24 hours.
    pub async fn create_sign_in_link(&self, worker: &str) -> ServiceResult<(WorkerId, String)> {
        let unknown = || {
            ServiceError::not_found(format!(
                "no worker {worker:?}; `humanping worker create` makes one and prints its id"
            ))
        };
        let id = WorkerId::parse(worker).ok_or_else(unknown)?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM workers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.store.pool())
            .await?;
        exists.ok_or_else(unknown)?;

        let token = random_token(32);
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO web_sign_in_links (token_hash, worker_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(id.as_str())
        .bind(now)
        .bind(now + SIGN_IN_LINK_MS)
        .execute(self.store.pool())
        .await?;
        tracing::info!(worker = %id, "sign-in link created");
        Ok((id, token))
    }

    /// Uses up a sign-in link: the worker it was made for, once, within its 24 hours.
    pub async fn redeem_sign_in_link(&self, token: &str) -> ServiceResult<WorkerId> {
        let now = self.clock.now_ms();
        // One UPDATE marks the link used and returns its worker, so two tabs cannot both use it.
        let worker: Option<String> = sqlx::query_scalar(
            "UPDATE web_sign_in_links SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING worker_id",
        )
        .bind(now)
        .bind(sha256_hex(token.as_bytes()))
        .fetch_optional(self.store.pool())
        .await?;
        worker.map(WorkerId::from_db).ok_or_else(|| {
            ServiceError::Unauthorized(
                "this sign-in link was already used, has expired or is unknown; \
                 ask the operator for a new one, or sign in with your worker key"
                    .into(),
            )
        })
    }

    /// Records where the worker is now, so the feed can rank tasks by distance.
    pub async fn set_worker_location(
        &self,
        worker: &WorkerId,
        lat: f64,
        lng: f64,
    ) -> ServiceResult<()> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return Err(ServiceError::invalid(
                "a position needs lat from -90 to 90 and lng from -180 to 180",
            ));
        }
        sqlx::query("UPDATE workers SET lat = $1, lng = $2 WHERE id = $3")
            .bind(lat)
            .bind(lng)
            .bind(worker.as_str())
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// One of the worker's own assignments; anyone else's is "not found".
    pub async fn worker_assignment(
        &self,
        worker: &WorkerId,
        assignment_id: &str,
    ) -> ServiceResult<AssignmentView> {
        // Limitation: looks among the worker's 100 newest assignments only.
        self.assignments(worker)
            .await?
            .into_iter()
            .find(|a| a.assignment_id.as_str() == assignment_id)
            .ok_or_else(|| {
                ServiceError::not_found(format!("no assignment {assignment_id:?} of yours"))
            })
    }

    /// Gives a claimed slot back: the assignment becomes `abandoned` and the slot returns to the
    /// pool for other workers.
    #[tracing::instrument(skip_all, fields(worker = %worker, assignment = assignment_id))]
    pub async fn release_assignment(
        &self,
        worker: &WorkerId,
        assignment_id: &str,
    ) -> ServiceResult<()> {
        let not_found =
            || ServiceError::not_found(format!("no assignment {assignment_id:?} of yours"));
        let id = AssignmentId::parse(assignment_id).ok_or_else(not_found)?;

        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let owner = sqlx::query("SELECT task_id, worker_id FROM assignments WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(not_found)?;
        if owner.try_get::<String, _>("worker_id")? != worker.as_str() {
            return Err(not_found());
        }
        let task_id: String = owner.try_get("task_id")?;
        let lock = self.store.for_update();
        let mut task = load_task(&mut tx, &task_id, lock)
            .await?
            .ok_or_else(not_found)?;
        let mut slots = self.settle(&mut tx, &mut task, now).await?.slots;

        let status: String = sqlx::query_scalar("SELECT status FROM assignments WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if status != AssignmentStatus::Claimed.as_str() {
            return Err(ServiceError::conflict(format!(
                "assignment {id} is {status}; only a claim still running can be given back"
            )));
        }
        sqlx::query(
            "UPDATE assignments SET status = 'abandoned', resolved_at = $1 WHERE id = $2 AND status = 'claimed'",
        )
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        slots.claimed -= 1;
        self.refresh_status(&mut tx, &mut task, &mut slots, now)
            .await?;
        // Money first, then the worker row (see `settle::release`).
        super::trust::refresh(&mut tx, worker, now).await?;
        save_task(&mut tx, &mut task, now).await?;
        tx.commit().await?;
        tracing::info!(task = %task.id, "claim given back");
        self.announce(&task.id);
        Ok(())
    }

    /// Remembers a photo stored for the worker's assignment, with its AI-image score when one
    /// was taken (a repeat is harmless).
    pub async fn record_proof_photo(
        &self,
        worker: &WorkerId,
        assignment: &AssignmentView,
        photo: &ProofPhoto,
        ai_score: Option<f64>,
    ) -> ServiceResult<()> {
        sqlx::query(
            "INSERT INTO proof_photos (assignment_id, sha256, task_id, worker_id, content_type, \
             size_bytes, exif_lat, exif_lng, exif_taken_at, created_at, ai_score) \
             VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, 'NaN'), NULLIF($8, 'NaN'), $9, $10, \
             NULLIF($11, 'NaN')) ON CONFLICT (assignment_id, sha256) DO NOTHING",
        )
        .bind(assignment.assignment_id.as_str())
        .bind(&photo.sha256)
        .bind(assignment.task_id.as_str())
        .bind(worker.as_str())
        .bind(&photo.content_type)
        .bind(photo.size_bytes)
        .bind(crate::store::nullable_f64(photo.exif_lat))
        .bind(crate::store::nullable_f64(photo.exif_lng))
        .bind(&photo.exif_taken_at)
        .bind(self.clock.now_ms())
        .bind(crate::store::nullable_f64(ai_score))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// A photo sent as proof for one of the agent's tasks; `None` for anything else, so agents
    /// learn nothing about each other's tasks.
    pub async fn proof_photo_for_agent(
        &self,
        agent: &AgentId,
        task_id: &str,
        sha256: &str,
    ) -> ServiceResult<Option<ProofPhoto>> {
        if TaskId::parse(task_id).is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT p.sha256, p.content_type, p.size_bytes, p.exif_lat, p.exif_lng, p.exif_taken_at \
             FROM proof_photos p JOIN tasks t ON t.id = p.task_id \
             WHERE p.task_id = $1 AND p.sha256 = $2 AND t.agent_id = $3 LIMIT 1",
        )
        .bind(task_id)
        .bind(sha256)
        .bind(agent.as_str())
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| {
            Ok(ProofPhoto {
                sha256: row.try_get("sha256")?,
                content_type: row.try_get("content_type")?,
                size_bytes: row.try_get("size_bytes")?,
                exif_lat: row.try_get("exif_lat")?,
                exif_lng: row.try_get("exif_lng")?,
                exif_taken_at: row.try_get("exif_taken_at")?,
            })
        })
        .transpose()
    }
}
