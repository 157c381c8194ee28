//! What a worker does: see the tasks they may take, claim one, send the result, and follow
//! their own work and earnings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};

use super::HumanPing;
use super::error::{ServiceError, ServiceResult};
use super::rows::{ASSIGNMENT_COLUMNS, AssignmentRow, TASK_COLUMNS_T, TaskRow, load_task};
use super::settle::save_task;
use super::views::{
    AssignmentCounts, AssignmentView, ClaimedTaskView, OfferView, TierView, WorkerProfile,
    timestamp,
};
use crate::domain::geo::distance_m;
use crate::domain::ids::{AssignmentId, TaskId, WorkerId};
use crate::domain::kind::{Capability, TaskKind};
use crate::domain::money::Cents;
use crate::domain::status::{AssignmentStatus, TaskStatus};
use crate::domain::trust::{self, Tier};
use crate::input::ProofKind;
use crate::ledger::{self, account};
use crate::store::Backend;

/// The largest task radius (100 km) in degrees of latitude, for the feed's bounding box.
const MAX_RADIUS_DEGREES: f64 = 100_000.0 / METRES_PER_DEGREE;
/// How many offers a feed shows at most.
const FEED_SIZE: usize = 50;
/// How many ranked tasks a feed reads from the database: a feed's worth, with room for the few
/// that the exact distance check turns away at the edge of their radius.
// Limitation: the box around the worker uses a plain (lat, lng) index, not a spatial one, so a
// feed reads every open task in the box to rank them.
const FEED_SCAN: i64 = 2 * FEED_SIZE as i64;
/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_195.0;
const MAX_ANSWER_CHARS: usize = 10_000;

/// A worker's result for a claimed task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionInput {
    /// The answer in the task's response format: "yes"/"no", one of the options, a number,
    /// or free text.
    #[serde(default)]
    pub answer: Option<String>,
    /// The answer as a JSON value (true, 4, "Open"), used when `answer` is absent.
    #[serde(default)]
    pub structured: Option<Value>,
    /// Anything the agent should know about how the answer was found.
    #[serde(default)]
    pub notes: Option<String>,
    /// Proof of the work.
    #[serde(default)]
    pub proof: Option<ProofInput>,
}

/// Proof sent with a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofInput {
    /// A written account of what was done or seen.
    #[serde(default)]
    pub text: Option<String>,
    /// Latitude where the worker was, in degrees.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude where the worker was, in degrees.
    #[serde(default)]
    pub lng: Option<f64>,
    /// Accuracy of the position, in metres.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    /// Links to photos taken for the task.
    #[serde(default)]
    pub photo_urls: Option<Vec<String>>,
}

/// A worker as stored, as far as routing needs it.
pub(super) struct WorkerRow {
    name: String,
    trust_score: i64,
    lat: Option<f64>,
    lng: Option<f64>,
    capabilities: Vec<String>,
    languages: Vec<String>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The worker columns routing needs, from the table aliased `w`.
const WORKER_COLUMNS: &str = "w.name, w.trust_score, w.lat, w.lng, w.capabilities, w.languages";

impl WorkerRow {
    fn from_row(row: &sqlx::any::AnyRow) -> ServiceResult<WorkerRow> {
        Ok(WorkerRow {
            name: row.try_get("name")?,
            trust_score: row.try_get("trust_score")?,
            lat: row.try_get("lat")?,
            lng: row.try_get("lng")?,
            capabilities: list(&row.try_get::<String, _>("capabilities")?),
            languages: list(&row.try_get::<String, _>("languages")?),
        })
    }
}

fn worker_gone() -> ServiceError {
    ServiceError::Unauthorized("this worker no longer exists".into())
}

pub(super) async fn load_worker(
    conn: &mut AnyConnection,
    worker: &WorkerId,
) -> ServiceResult<WorkerRow> {
    let row = sqlx::query(&format!(
        "SELECT {WORKER_COLUMNS} FROM workers w WHERE w.id = $1"
    ))
    .bind(worker.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or_else(worker_gone)?;
    WorkerRow::from_row(&row)
}

/// A worker as a claim on one task needs them: who they are, what they already hold of the
/// task, whether its agent blocked them, and their partnership with the agent.
struct Claimant {
    me: WorkerRow,
    /// The worker's live assignment in the task, if any.
    holding: Option<String>,
    blocked: bool,
    /// Notes and bonus (basis points) when the worker is a partner of the task's agent.
    partner: Option<(Option<String>, i64)>,
}

/// Reads a `Claimant` in one statement.
async fn load_claimant(
    conn: &mut AnyConnection,
    task: &TaskRow,
    worker: &WorkerId,
) -> ServiceResult<Claimant> {
    let sql = format!(
        "SELECT {WORKER_COLUMNS}, \
           (SELECT a.id FROM assignments a WHERE a.task_id = $2 AND a.worker_id = w.id \
             AND a.status IN ('claimed', 'submitted', 'approved', 'rejected') LIMIT 1) AS holding, \
           CAST(CASE WHEN EXISTS (SELECT 1 FROM agent_blocks b WHERE b.agent_id = $3 \
             AND b.worker_id = w.id) THEN 1 ELSE 0 END AS BIGINT) AS blocked, \
           p.notes AS partner_notes, p.bonus_bps AS partner_bps \
         FROM workers w LEFT JOIN partners p ON p.agent_id = $3 AND p.worker_id = w.id \
         WHERE w.id = $1"
    );
    let row = sqlx::query(&sql)
        .bind(worker.as_str())
        .bind(task.id.as_str())
        .bind(task.agent_id.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(worker_gone)?;
    Ok(Claimant {
        me: WorkerRow::from_row(&row)?,
        holding: row.try_get("holding")?,
        blocked: row.try_get::<i64, _>("blocked")? != 0,
        partner: match row.try_get::<Option<i64>, _>("partner_bps")? {
            Some(bps) => Some((row.try_get("partner_notes")?, bps)),
            None => None,
        },
    })
}

/// What a task asks of the worker who takes it, as far as eligibility goes.
pub(super) struct Needs<'a> {
    pub budget: Cents,
    pub kind: TaskKind,
    pub language: Option<&'a str>,
    /// Latitude, longitude and radius in metres, for tasks tied to a place.
    pub place: Option<(f64, f64, i64)>,
}

impl<'a> Needs<'a> {
    pub fn of(task: &'a TaskRow) -> Needs<'a> {
        Needs {
            budget: task.budget,
            kind: task.kind,
            language: task.language.as_deref(),
            place: place(task.lat, task.lng, task.radius_m),
        }
    }

    /// The needs of a task not yet written.
    pub fn of_new(task: &'a crate::input::NewTask) -> Needs<'a> {
        Needs {
            budget: task.budget,
            kind: task.kind,
            language: task.language.as_deref(),
            place: place(task.lat, task.lng, task.radius_m),
        }
    }
}

fn place(lat: Option<f64>, lng: Option<f64>, radius: Option<i64>) -> Option<(f64, f64, i64)> {
    Some((lat?, lng?, radius?))
}

/// Whether the worker may take a task with these needs; on success, the distance to it when
/// both places are known.
pub(super) fn eligibility(
    worker: &WorkerRow,
    task: &Needs<'_>,
    tiers: &[Tier],
) -> Result<Option<f64>, String> {
    let (tier, next) = trust::tier_for(tiers, worker.trust_score);
    if task.budget.get() > tier.max_budget_cents {
        let reach = next.map_or(String::new(), |n| {
            format!(
                "; a trust score of {} opens tasks up to ${}",
                n.min_score,
                Cents::new(n.max_budget_cents)
            )
        });
        return Err(format!(
            "it pays ${} and your {} tier takes tasks up to ${}{reach}",
            task.budget,
            tier.name,
            Cents::new(tier.max_budget_cents)
        ));
    }
    if let Some(capability) = task.kind.required_capability()
        && !worker.capabilities.iter().any(|c| c == capability.as_str())
    {
        let what = match capability {
            Capability::Voice => "placing phone calls",
            Capability::Field => "going on site",
        };
        return Err(format!(
            "it needs the {} capability ({what})",
            capability.as_str()
        ));
    }
    if let Some(language) = task.language {
        let primary = language.split('-').next().unwrap_or(language);
        let speaks = worker
            .languages
            .iter()
            .any(|l| l == language || l.split('-').next() == Some(primary));
        if !speaks {
            return Err(format!("it needs a worker who speaks {language}"));
        }
    }
    match task.place {
        Some((lat, lng, radius)) => match (worker.lat, worker.lng) {
            (Some(wlat), Some(wlng)) => {
                let distance = distance_m(lat, lng, wlat, wlng);
                if distance > radius as f64 {
                    Err(format!(
                        "it is {:.1} km away, beyond its {radius} m radius",
                        distance / 1000.0
                    ))
                } else {
                    Ok(Some(distance))
                }
            }
            _ => Err("it is tied to a place and your location is unknown".into()),
        },
        None => Ok(None),
    }
}

impl HumanPing {
    /// The tasks this worker may take now, nearest first, then best paid, then oldest.
    pub async fn offers(&self, worker: &WorkerId) -> ServiceResult<Vec<OfferView>> {
        let now = self.clock.now_ms();
        let mut conn = self.store.pool().acquire().await?;
        let me = load_worker(&mut conn, worker).await?;
        let mut offers = self.ranked_offers(&mut conn, worker, &me, now).await?;
        let real = offers.iter().filter(|(_, _, honeypot)| !honeypot).count();
        drop(conn);
        // Limitation: a feed read that makes honeypot tasks writes, so it takes a little longer.
        if self.mix_in_honeypots(worker, &me, real, now).await? {
            let mut conn = self.store.pool().acquire().await?;
            offers = self.ranked_offers(&mut conn, worker, &me, now).await?;
        }
        Ok(offers
            .into_iter()
            .take(FEED_SIZE)
            .map(|(_, offer, _)| offer)
            .collect())
    }

    /// The offers for a worker, ranked, each with its distance and whether it was made from a
    /// honeypot.
    async fn ranked_offers(
        &self,
        conn: &mut AnyConnection,
        worker: &WorkerId,
        me: &WorkerRow,
        now: i64,
    ) -> ServiceResult<Vec<(Option<f64>, OfferView, bool)>> {
        // SQL rules out what it can and ranks the rest: tasks above the worker's tier, kinds
        // needing a capability they lack, languages they do not speak, agents who blocked them,
        // full tasks, and places out of reach. Reach is measured on a flat map around the
        // worker (metres per degree of longitude taken at their latitude), with 5% and 10 m of
        // slack; the exact great-circle distance is checked below on the few rows returned.
        // Ranking in SQL (partners first, then nearest, best paid, soonest due) means only a
        // feed's worth of rows crosses from the database, whatever the number of open tasks.
        let (tier, _) = trust::tier_for(&self.config.tiers, me.trust_score);
        let voice = me.capabilities.iter().any(|c| c == "voice");
        let field = me.capabilities.iter().any(|c| c == "field");
        let (lat_min, lat_max, lng_min, lng_max) = match (me.lat, me.lng) {
            (Some(lat), Some(lng)) => {
                let dlat = MAX_RADIUS_DEGREES;
                let dlng = (MAX_RADIUS_DEGREES / lat.to_radians().cos().max(0.01)).min(180.0);
                (lat - dlat, lat + dlat, lng - dlng, lng + dlng)
            }
            _ => (1.0, -1.0, 1.0, -1.0), // an empty box: located tasks need a known position
        };
        let (here_lat, here_lng) = (me.lat.unwrap_or(0.0), me.lng.unwrap_or(0.0));
        let metres_per_degree_lng = METRES_PER_DEGREE * here_lat.to_radians().cos().max(0.01);
        // The primary subtags of the worker's languages, as ",en,fr,": a task's language is
        // spoken when its primary subtag is among them.
        let spoken = format!(
            ",{},",
            me.languages
                .iter()
                .map(|l| l.split('-').next().unwrap_or(l))
                .collect::<Vec<_>>()
                .join(",")
        );
        let speaks = match self.store.backend() {
            Backend::Sqlite => {
                "instr($11, ',' || CASE WHEN instr(t.language, '-') > 0 \
                 THEN substr(t.language, 1, instr(t.language, '-') - 1) ELSE t.language END \
                 || ',') > 0"
            }
            Backend::Postgres => "strpos($11, ',' || split_part(t.language, '-', 1) || ',') > 0",
        };
        let in_box = "t.lat BETWEEN $7 AND $8 AND t.lng BETWEEN $9 AND $10";
        // Tasks tied to a place rank before the others (nearest first), so the two kinds are
        // read apart: the placed ones first, with their squared flat distance and reach (with
        // its slack); then the others, only when the first read left room, or else only the
        // partners' ones (a partner's task ranks before any stranger's).
        let flat_d2 = "((t.lat - $12) * $14) * ((t.lat - $12) * $14) \
            + ((t.lng - $13) * $15) * ((t.lng - $13) * $15)";
        let reach2 = "(CAST(t.radius_m AS DOUBLE PRECISION) * 1.05 + 10.0) \
            * (CAST(t.radius_m AS DOUBLE PRECISION) * 1.05 + 10.0)";
        let placed = (
            flat_d2.to_owned(),
            format!("t.lat IS NOT NULL AND {in_box} AND {flat_d2} <= {reach2}"),
            "c.flat_d2, ",
        );
        let read = |(distance, place, by_distance): (String, String, &str)| {
            format!(
                "SELECT * FROM (SELECT {columns}, p.bonus_bps AS partner_bps, \
                   p.notes AS partner_notes, \
                   CASE WHEN p.worker_id IS NULL THEN 1 ELSE 0 END AS stranger, \
                   {distance} AS flat_d2, \
                   (SELECT COUNT(*) FROM assignments a WHERE a.task_id = t.id \
                   AND (a.status IN ('submitted', 'approved') \
                        OR (a.status = 'claimed' AND a.lease_expires_at > $1))) AS taken \
                 FROM tasks t \
                 LEFT JOIN partners p ON p.agent_id = t.agent_id AND p.worker_id = $2 \
                 WHERE t.status IN ('open', 'in_progress') AND t.deadline_at > $1 \
                 AND t.budget_cents <= $4 \
                 AND ($5 = 1 OR t.kind <> 'voice_proxy') AND ($6 = 1 OR t.kind <> 'field_mission') \
                 AND {place} \
                 AND (t.language IS NULL OR {speaks}) \
                 AND (t.partners = 'none' \
                   OR (t.partners = 'prefer' AND COALESCE(t.first_look_until, 0) <= $1) \
                   OR p.worker_id IS NOT NULL) \
                 AND NOT EXISTS (SELECT 1 FROM agent_blocks b WHERE b.agent_id = t.agent_id \
                   AND b.worker_id = $2) \
                 AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = t.id \
                   AND a.worker_id = $2 \
                   AND a.status IN ('claimed', 'submitted', 'approved', 'rejected')) \
                 AND NOT EXISTS (SELECT 1 FROM honeypot_tasks h WHERE h.task_id = t.id \
                   AND h.worker_id <> $2)) c \
                 WHERE c.taken < c.slots \
                 ORDER BY c.stranger, {by_distance}c.budget_cents * (10000 - c.fee_bps) DESC, \
                   c.deadline_at, c.created_at \
                 LIMIT $3",
                columns = *TASK_COLUMNS_T
            )
        };
        // Both reads bind the same first eleven parameters.
        macro_rules! read_with_common_binds {
            ($sql:expr) => {
                sqlx::query($sql)
                    .bind(now)
                    .bind(worker.as_str())
                    .bind(FEED_SCAN)
                    .bind(tier.max_budget_cents)
                    .bind(i64::from(voice))
                    .bind(i64::from(field))
                    .bind(lat_min)
                    .bind(lat_max)
                    .bind(lng_min)
                    .bind(lng_max)
                    .bind(spoken.clone())
            };
        }
        let placed_sql = read(placed);
        let mut found = read_with_common_binds!(&placed_sql)
            .bind(here_lat)
            .bind(here_lng)
            .bind(METRES_PER_DEGREE)
            .bind(metres_per_degree_lng)
            .fetch_all(&mut *conn)
            .await?;
        let partners_only = if found.len() >= FEED_SCAN as usize {
            " AND p.worker_id IS NOT NULL"
        } else {
            ""
        };
        let placeless = (
            "CAST(NULL AS DOUBLE PRECISION)".to_owned(),
            // A task has its latitude, longitude and radius all set, or none of them.
            format!("t.lat IS NULL{partners_only}"),
            "",
        );
        let placeless_sql = read(placeless);
        found.extend(
            read_with_common_binds!(&placeless_sql)
                .fetch_all(&mut *conn)
                .await?,
        );
        let mut offers = Vec::new();
        for row in &found {
            let task = TaskRow::from_row(row)?;
            let taken: i64 = row.try_get("taken")?;
            if taken >= task.slots {
                continue;
            }
            let partner = match row.try_get::<Option<i64>, _>("partner_bps")? {
                Some(bps) => Some((row.try_get::<Option<String>, _>("partner_notes")?, bps)),
                None => None,
            };
            if let Ok(distance) = eligibility(me, &Needs::of(&task), &self.config.tiers) {
                let offer = offer_view(&task, task.slots - taken, distance, partner);
                offers.push((distance, offer, super::honeypot::is_honeypot(&task)));
            }
        }
        // The same order as the SQL's, now by the exact distance and pay (bonus included).
        offers.sort_by(|(da, a, _), (db, b, _)| {
            let distance = |d: &Option<f64>| d.unwrap_or(f64::INFINITY);
            b.partner_notes
                .is_some()
                .cmp(&a.partner_notes.is_some())
                .then(distance(da).total_cmp(&distance(db)))
                .then(b.pay_cents.cmp(&a.pay_cents))
                .then(a.deadline.cmp(&b.deadline))
        });
        Ok(offers)
    }

    /// Claims one slot of a task for this worker, with a lease.
    #[tracing::instrument(skip_all, fields(worker = %worker, task = task_id))]
    pub async fn claim(&self, worker: &WorkerId, task_id: &str) -> ServiceResult<AssignmentView> {
        let not_offered = || {
            ServiceError::not_found(format!(
                "no task {task_id:?} is open to you; GET /v1/worker/tasks lists the tasks you can claim"
            ))
        };
        if TaskId::parse(task_id).is_none() {
            return Err(not_offered());
        }
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let mut task = load_task(&mut tx, task_id, self.store.for_update())
            .await?
            .ok_or_else(not_offered)?;
        let mut slots = self.settle(&mut tx, &mut task, now).await?.slots;
        let claimant = load_claimant(&mut tx, &task, worker).await?;

        if let Some(existing) = claimant.holding {
            return Err(ServiceError::conflict(format!(
                "you already hold task {task_id} (assignment {existing}); send your result to it"
            )));
        }
        match task.status {
            TaskStatus::Open => {}
            TaskStatus::InProgress => {
                return Err(ServiceError::conflict(format!(
                    "every slot of task {task_id} is taken; pick another task"
                )));
            }
            _ => {
                return Err(ServiceError::conflict(format!(
                    "task {task_id} is no longer open; pick another task"
                )));
            }
        }
        if claimant.blocked {
            return Err(ServiceError::Forbidden(format!(
                "task {task_id} is not offered to you: its agent does not take your work"
            )));
        }
        if let Err(reason) = eligibility(&claimant.me, &Needs::of(&task), &self.config.tiers) {
            return Err(ServiceError::Forbidden(format!(
                "task {task_id} is not offered to you: {reason}"
            )));
        }

        let partner = claimant.partner;
        let first_look =
            task.partners == "prefer" && task.first_look_until.is_some_and(|until| now < until);
        if partner.is_none() && (task.partners == "only" || first_look) {
            return Err(ServiceError::Forbidden(format!(
                "task {task_id} is not offered to you: it is for its agent's partners{}",
                if first_look { " for now" } else { "" }
            )));
        }
        let bonus = partner_bonus(&task, partner.as_ref());

        let assignment = AssignmentId::generate();
        let lease_until = (now + task.kind.lease_secs() * 1000).min(task.deadline_at);
        let inserted = sqlx::query(&format!(
            "INSERT INTO assignments (id, task_id, worker_id, status, claimed_at, lease_expires_at, \
             bonus_cents) VALUES ($1, $2, $3, 'claimed', $4, $5, $6) RETURNING {ASSIGNMENT_COLUMNS}"
        ))
        .bind(assignment.as_str())
        .bind(task.id.as_str())
        .bind(worker.as_str())
        .bind(now)
        .bind(lease_until)
        .bind(bonus.get())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => ServiceError::conflict(format!(
                "you already hold task {task_id}; send your result to it"
            )),
            _ => e.into(),
        })?;
        let inserted = AssignmentRow::from_row(&inserted)?;
        slots.claimed += 1;
        self.refresh_status(&mut tx, &mut task, &mut slots, now)
            .await?;
        save_task(&mut tx, &mut task, now).await?;
        let view = view_of(&inserted, &task, partner);
        tx.commit().await?;
        tracing::info!(assignment = %assignment, "task claimed");
        self.announce(&task.id);
        Ok(view)
    }

    /// Records the worker's result for a claimed slot. Sending the same result again is a
    /// harmless retry; a different one after the first is refused.
    #[tracing::instrument(skip_all, fields(worker = %worker, assignment = assignment_id))]
    pub async fn submit(
        &self,
        worker: &WorkerId,
        assignment_id: &str,
        input: SubmissionInput,
    ) -> ServiceResult<AssignmentView> {
        let not_found = || {
            ServiceError::not_found(format!(
                "no assignment {assignment_id:?} of yours; GET /v1/worker/assignments lists them"
            ))
        };
        let id = AssignmentId::parse(assignment_id).ok_or_else(not_found)?;
        let answer_text = read_answer_text(&input)?;
        let notes = bounded("notes", input.notes.as_deref())?;
        if let Some(proof) = &input.proof {
            check_proof(proof)?;
        }

        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let lock = self.store.for_update();
        let mut task = lock_task_of(&mut tx, &id, worker, lock)
            .await?
            .ok_or_else(not_found)?;
        let mut slots = self.settle(&mut tx, &mut task, now).await?.slots;
        let current = load_assignment(&mut tx, &id).await?.ok_or_else(not_found)?;
        let proof_json = input
            .proof
            .as_ref()
            .map(|proof| proof_record(proof, &task))
            .transpose()?;

        match current.status {
            AssignmentStatus::Claimed => {}
            AssignmentStatus::Submitted
            | AssignmentStatus::Approved
            | AssignmentStatus::Rejected => {
                let same = current.answer.as_deref() == Some(answer_text.as_str())
                    && current.notes == notes
                    && current.proof == proof_json;
                if same {
                    tx.commit().await?;
                    return self.assignment_for(worker, &id).await;
                }
                return Err(ServiceError::conflict(format!(
                    "assignment {id} already has a result; a result cannot be changed once sent"
                )));
            }
            AssignmentStatus::LeaseExpired => {
                tx.commit().await?;
                return Err(ServiceError::conflict(format!(
                    "your claim on task {} ran out at {}; the slot went back to the pool. \
                     Claim the task again if it is still open",
                    task.id,
                    timestamp(current.lease_expires_at)
                )));
            }
            AssignmentStatus::TaskEnded => {
                tx.commit().await?;
                return Err(ServiceError::conflict(format!(
                    "task {} reached its deadline before your result came in, so it ended; \
                     this is not held against you",
                    task.id
                )));
            }
            AssignmentStatus::Abandoned => {
                return Err(ServiceError::conflict(format!(
                    "you gave up assignment {id}"
                )));
            }
        }

        let structured = task
            .response
            .read_answer(&answer_text)
            .map_err(ServiceError::InvalidInput)?;
        if let (Some(_), Some(other)) = (&input.answer, structured_text(&input)?) {
            let also = task
                .response
                .read_answer(&other)
                .map_err(ServiceError::InvalidInput)?;
            if also != structured {
                return Err(ServiceError::invalid(format!(
                    "answer {answer_text:?} and structured {other:?} disagree; send one of them, \
                     or both saying the same"
                )));
            }
        }
        check_required_proof(&task.proof, input.proof.as_ref(), notes.as_deref())?;
        let links: Vec<String> = input
            .proof
            .iter()
            .flat_map(|p| p.photo_urls.iter().flatten().cloned())
            .collect();
        let threshold = self.config.sightengine.as_ref().map(|s| s.threshold);
        let flags = super::fraud::check(&mut tx, &task, &current, &links, threshold, now).await?;
        let submitted = sqlx::query(&format!(
            "UPDATE assignments SET status = 'submitted', submitted_at = $1, answer = $2, \
             structured = $3, notes = $4, proof = $5 WHERE id = $6 AND status = 'claimed' \
             RETURNING {ASSIGNMENT_COLUMNS}"
        ))
        .bind(now)
        .bind(&answer_text)
        .bind(structured.to_string())
        .bind(&notes)
        .bind(&proof_json)
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let submitted = AssignmentRow::from_row(&submitted)?;
        slots.claimed -= 1;
        slots.submitted += 1;
        if !flags.is_empty() {
            super::fraud::record(&mut tx, &task, &current, &flags, now).await?;
            tracing::info!(task = %task.id, flags = flags.len(), "result flagged");
        }
        self.refresh_status(&mut tx, &mut task, &mut slots, now)
            .await?;
        if super::honeypot::is_honeypot(&task) && task.status == TaskStatus::Completed {
            let window = i64::try_from(self.config.review_window.as_millis()).unwrap_or(i64::MAX);
            super::honeypot::grade(&mut tx, &mut task, &structured, window, now).await?;
        }
        if !flags.is_empty() {
            // Money first, then the worker row (see `settle::release`).
            super::trust::refresh(&mut tx, worker, now).await?;
        }
        save_task(&mut tx, &mut task, now).await?;
        // A result is no longer a running claim, so the partner's notes are not shown with it.
        let view = view_of(&submitted, &task, None);
        tx.commit().await?;
        tracing::info!(task = %task.id, status = task.status.as_str(), "result submitted");
        self.announce(&task.id);
        Ok(view)
    }

    /// The worker's assignments, newest first.
    pub async fn assignments(&self, worker: &WorkerId) -> ServiceResult<Vec<AssignmentView>> {
        self.settle_worker_leases(worker).await?;
        let mut conn = self.store.pool().acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM assignments WHERE worker_id = $1 ORDER BY claimed_at DESC, id DESC LIMIT 100",
        )
        .bind(worker.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.push(assignment_view(&mut conn, &AssignmentId::from_db(id)).await?);
        }
        Ok(views)
    }

    async fn assignment_for(
        &self,
        worker: &WorkerId,
        id: &AssignmentId,
    ) -> ServiceResult<AssignmentView> {
        let mut conn = self.store.pool().acquire().await?;
        let view = assignment_view(&mut conn, id).await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT worker_id FROM assignments WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        match owner {
            Some(owner) if owner == worker.as_str() => Ok(view),
            _ => Err(ServiceError::not_found(format!(
                "no assignment {id} of yours"
            ))),
        }
    }

    /// The worker's profile: trust score, earnings and track record.
    pub async fn worker_profile(&self, worker: &WorkerId) -> ServiceResult<WorkerProfile> {
        self.settle_worker_leases(worker).await?;
        let mut conn = self.store.pool().acquire().await?;
        let me = load_worker(&mut conn, worker).await?;
        let counted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM assignments WHERE worker_id = $1 GROUP BY status",
        )
        .bind(worker.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut counts = AssignmentCounts::default();
        for (status, n) in counted {
            match status.parse::<AssignmentStatus>() {
                Ok(AssignmentStatus::Claimed) => counts.claimed = n,
                Ok(AssignmentStatus::Submitted) => counts.submitted = n,
                Ok(AssignmentStatus::Approved) => counts.approved = n,
                Ok(AssignmentStatus::Rejected) => counts.rejected = n,
                Ok(AssignmentStatus::Abandoned) => counts.abandoned = n,
                Ok(AssignmentStatus::LeaseExpired) => counts.lease_expired = n,
                Ok(AssignmentStatus::TaskEnded) => counts.task_ended = n,
                Err(_) => {}
            }
        }
        let pending_rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT t.budget_cents, t.fee_bps FROM assignments a JOIN tasks t ON t.id = a.task_id \
             WHERE a.worker_id = $1 AND a.status = 'submitted'",
        )
        .bind(worker.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let pending: i64 = pending_rows
            .iter()
            .map(|(budget, bps)| Cents::new(*budget).split_fee(*bps as u32).worker.get())
            .sum();
        let totals = ledger::totals(&mut conn, &account::worker(worker))
            .await?
            .unwrap_or_default();
        let earned = totals.credits_posted - totals.debits_posted;
        let score = me.trust_score;
        let (tier, next) = trust::tier_for(&self.config.tiers, score);
        Ok(WorkerProfile {
            worker_id: worker.clone(),
            name: me.name,
            trust_score: score,
            tier: TierView::of(tier, score),
            next_tier: next.map(|n| TierView::of(n, score)),
            earned_cents: earned,
            earned: Cents::new(earned).to_string(),
            pending_cents: pending,
            pending: Cents::new(pending).to_string(),
            capabilities: me.capabilities,
            languages: me.languages,
            lat: me.lat,
            lng: me.lng,
            assignments: counts,
        })
    }

    /// Settles the tasks in which this worker's claim has run out.
    async fn settle_worker_leases(&self, worker: &WorkerId) -> ServiceResult<()> {
        let lapsed: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT task_id FROM assignments WHERE worker_id = $1 AND status = 'claimed' \
             AND lease_expires_at <= $2",
        )
        .bind(worker.as_str())
        .bind(self.clock.now_ms())
        .fetch_all(self.store.pool())
        .await?;
        for task in lapsed {
            self.settle_task(&TaskId::from_db(task)).await?;
        }
        Ok(())
    }
}

async fn load_assignment(
    conn: &mut AnyConnection,
    id: &AssignmentId,
) -> ServiceResult<Option<AssignmentRow>> {
    let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(AssignmentRow::from_row).transpose()
}

/// Locks the task of a worker's assignment, found by the assignment's id, in one statement;
/// `None` when the worker has no such assignment. The assignment itself is read after the
/// lock, so it cannot change between that read and the write.
async fn lock_task_of(
    conn: &mut AnyConnection,
    id: &AssignmentId,
    worker: &WorkerId,
    lock: &str,
) -> ServiceResult<Option<TaskRow>> {
    let sql = format!(
        "SELECT {columns} FROM tasks t WHERE t.id = \
         (SELECT a.task_id FROM assignments a WHERE a.id = $1 AND a.worker_id = $2){lock}",
        columns = *TASK_COLUMNS_T
    );
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .bind(worker.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(TaskRow::from_row).transpose()
}

async fn assignment_view(
    conn: &mut AnyConnection,
    id: &AssignmentId,
) -> ServiceResult<AssignmentView> {
    let assignment = load_assignment(conn, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no assignment {id}")))?;
    let task = load_task(conn, assignment.task_id.as_str(), "")
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no task {}", assignment.task_id)))?;
    let partner = match assignment.status {
        AssignmentStatus::Claimed => {
            super::partners::of(conn, &task.agent_id, &assignment.worker_id).await?
        }
        _ => None,
    };
    Ok(view_of(&assignment, &task, partner))
}

/// The worker's view of an assignment; `partner` is the worker's partnership with the task's
/// agent (its notes are shown while the claim runs).
fn view_of(
    assignment: &AssignmentRow,
    task: &TaskRow,
    partner: Option<(Option<String>, i64)>,
) -> AssignmentView {
    // What concerns third parties (a phone number, a contact, the agent's context) is shown
    // only to the worker who holds the claim, and only while they hold it.
    let holding = assignment.status == AssignmentStatus::Claimed;
    AssignmentView {
        assignment_id: assignment.id.clone(),
        task_id: task.id.clone(),
        status: assignment.status,
        claimed_at: timestamp(assignment.claimed_at),
        lease_expires_at: timestamp(assignment.lease_expires_at),
        submitted_at: assignment.submitted_at.map(timestamp),
        pay_cents: task.worker_pay().get() + assignment.bonus.get(),
        paid_cents: assignment.paid_cents,
        task: ClaimedTaskView {
            kind: task.kind,
            instruction: task.instruction.clone(),
            details: if holding {
                task.details.clone()
            } else {
                Map::new()
            },
            context: if holding { task.context.clone() } else { None },
            address: task.address.clone(),
            response_format: task.response.clone(),
            proof_required: task.proof.clone(),
            deadline: timestamp(task.deadline_at),
            partner_notes: match (holding, partner) {
                (true, Some((notes, _))) => notes,
                _ => None,
            },
        },
    }
}

/// What a worker who is a partner of the task's agent (notes, bonus in basis points) is
/// promised on top of the budget's share.
fn partner_bonus(task: &TaskRow, partner: Option<&(Option<String>, i64)>) -> Cents {
    match partner {
        Some((_, bps)) if task.partners != "none" => {
            super::partners::bonus_of(task.budget, *bps).min(task.bonus)
        }
        _ => Cents::ZERO,
    }
}

fn offer_view(
    task: &TaskRow,
    open_slots: i64,
    distance: Option<f64>,
    partner: Option<(Option<String>, i64)>,
) -> OfferView {
    let pay = task
        .worker_pay()
        .checked_add(partner_bonus(task, partner.as_ref()))
        .unwrap_or(task.worker_pay());
    OfferView {
        task_id: task.id.clone(),
        kind: task.kind,
        instruction: task.instruction.clone(),
        pay_cents: pay.get(),
        pay: pay.to_string(),
        currency: task.currency.clone(),
        deadline: timestamp(task.deadline_at),
        lease_minutes: task.kind.lease_secs() / 60,
        response_format: task.response.clone(),
        proof_required: task.proof.clone(),
        // An escalation's address is where a person in distress is: only the claim holder
        // learns it.
        address: (task.kind != TaskKind::Escalation)
            .then(|| task.address.clone())
            .flatten(),
        lat: private_place(task, task.lat),
        lng: private_place(task, task.lng),
        radius_m: task.radius_m,
        distance_m: distance.map(|d| d.round() as i64),
        language: task.language.clone(),
        open_slots,
        // Notes are shown to partners; a partner without notes still sees an empty text, so
        // the feed can rank partners first.
        partner_notes: partner.map(|(notes, _)| notes.unwrap_or_default()),
    }
}

/// A coordinate the feed may show: none for an escalation (the distance still shows).
fn private_place(task: &TaskRow, coordinate: Option<f64>) -> Option<f64> {
    coordinate.filter(|_| task.kind != TaskKind::Escalation)
}

fn bounded(name: &str, text: Option<&str>) -> ServiceResult<Option<String>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) if text.chars().count() > MAX_ANSWER_CHARS => {
            Err(ServiceError::invalid(format!(
                "{name} is {} characters long; the limit is {MAX_ANSWER_CHARS}",
                text.chars().count()
            )))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

/// The structured answer as text, if one was sent.
fn structured_text(input: &SubmissionInput) -> ServiceResult<Option<String>> {
    Ok(match &input.structured {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(true)) => Some("yes".to_owned()),
        Some(Value::Bool(false)) => Some("no".to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(ServiceError::invalid(
                "structured answer must be a string, number or true/false",
            ));
        }
    })
}

fn read_answer_text(input: &SubmissionInput) -> ServiceResult<String> {
    let from_structured = structured_text(input)?;
    let text = input.answer.clone().or(from_structured);
    bounded("answer", text.as_deref())?.ok_or_else(|| {
        ServiceError::invalid("answer is empty; send the answer to the task's question")
    })
}

fn check_proof(proof: &ProofInput) -> ServiceResult<()> {
    bounded("proof text", proof.text.as_deref())?;
    match (proof.lat, proof.lng) {
        (Some(lat), Some(lng))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) => {}
        (None, None) => {}
        _ => {
            return Err(ServiceError::invalid(
                "proof position needs both lat (-90..90) and lng (-180..180)",
            ));
        }
    }
    if let Some(urls) = &proof.photo_urls
        && (urls.len() > 20 || urls.iter().any(|u| u.trim().is_empty() || u.len() > 2_000))
    {
        return Err(ServiceError::invalid(
            "proof photo_urls: give 1 to 20 links of at most 2000 characters",
        ));
    }
    for link in proof.photo_urls.iter().flatten() {
        let web = url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !web && !link.starts_with('/') {
            return Err(ServiceError::invalid(format!(
                "proof photo link {link:?} is not an http(s) link; upload photos or link them \
                 with http:// or https://"
            )));
        }
    }
    Ok(())
}

/// The proof as stored: what the worker sent, plus the distance from the task's place when
/// both positions are known. A position beyond the task's radius (with the stated accuracy,
/// up to 500 m, as slack) is refused.
fn proof_record(proof: &ProofInput, task: &TaskRow) -> ServiceResult<String> {
    let mut record = serde_json::to_value(proof).expect("plain data serialises");
    if let (Some(lat), Some(lng), Some(tlat), Some(tlng), Some(radius)) =
        (proof.lat, proof.lng, task.lat, task.lng, task.radius_m)
    {
        let distance = distance_m(lat, lng, tlat, tlng);
        let slack = proof
            .accuracy_m
            .filter(|a| a.is_finite() && *a > 0.0)
            .unwrap_or(0.0)
            .min(500.0);
        if distance > radius as f64 + slack {
            return Err(ServiceError::invalid(format!(
                "your position is {:.1} km from the task's place, beyond its {radius} m radius; \
                 send the result from the place itself",
                distance / 1000.0
            )));
        }
        record["distance_m"] = serde_json::json!(distance.round() as i64);
    }
    Ok(record.to_string())
}

fn check_required_proof(
    required: &[ProofKind],
    proof: Option<&ProofInput>,
    notes: Option<&str>,
) -> ServiceResult<()> {
    for kind in required {
        let present = match kind {
            ProofKind::Text => {
                notes.is_some()
                    || proof
                        .and_then(|p| p.text.as_deref())
                        .is_some_and(|t| !t.trim().is_empty())
            }
            ProofKind::Photo => proof
                .and_then(|p| p.photo_urls.as_ref())
                .is_some_and(|u| !u.is_empty()),
            ProofKind::Gps => proof.is_some_and(|p| p.lat.is_some() && p.lng.is_some()),
        };
        if !present {
            let what = match kind {
                ProofKind::Text => "a written account (proof.text or notes)",
                ProofKind::Photo => "at least one photo (proof.photo_urls)",
                ProofKind::Gps => "your position (proof.lat and proof.lng)",
            };
            return Err(ServiceError::invalid(format!(
                "this task requires {what} as proof"
            )));
        }
    }
    Ok(())
}
