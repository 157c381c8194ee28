//! What an agent sends to create a task. The MCP tools and `POST /v1/tasks` share these types,
//! so a field means the same thing everywhere; each field's doc comment becomes the JSON schema
//! the agent reads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::kind::TaskKind;
use crate::domain::money::{Cents, Dollars};
use crate::domain::response::ResponseFormat;
use crate::service::error::{ServiceError, ServiceResult};

/// Where the task happens: an address, or a place with coordinates.
#[derive(Clone, Debug, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LocationInput {
    /// A street address or place name, e.g. "245 Rue St-Paul, Montréal".
    Address(String),
    /// A place given by parts.
    Place(Place),
}

impl<'de> Deserialize<'de> for LocationInput {
    /// A string is an address; an object is a place. Anything else, or a malformed place, is
    /// refused with a message that says which (serde's untagged enums only say "no variant").
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(address) => Ok(LocationInput::Address(address)),
            place @ Value::Object(_) => serde_json::from_value(place)
                .map(LocationInput::Place)
                .map_err(|e| {
                    let message = e.to_string();
                    let message = message.strip_prefix("location: ").unwrap_or(&message);
                    D::Error::custom(format!("location: {message}"))
                }),
            other => Err(D::Error::custom(format!(
                "location must be an address string or an object with address, lat, lng and \
                 radius_m, not {other}"
            ))),
        }
    }
}

/// A place given by address and/or coordinates.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Street address or place name.
    #[serde(default)]
    pub address: Option<String>,
    /// Latitude in degrees (-90 to 90).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude in degrees (-180 to 180).
    #[serde(default)]
    pub lng: Option<f64>,
    /// How far from the point the worker may be, in metres (50 to 100000; default 1000).
    #[serde(default)]
    pub radius_m: Option<u32>,
}

/// A kind of proof the worker must send with the answer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// A written account of what the worker did or saw.
    Text,
    /// One or more photos.
    Photo,
    /// The worker's GPS position when answering.
    Gps,
}

/// Fields every task tool takes besides its own.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CommonFields {
    pub context: Option<String>,
    pub location: Option<LocationInput>,
    pub language: Option<String>,
    pub budget: Option<Dollars>,
    pub deadline: Option<String>,
    pub response: Option<ResponseFormat>,
    pub proof: Option<Vec<ProofKind>>,
    pub metadata: Option<Map<String, Value>>,
    pub callback_url: Option<String>,
    pub idempotency_key: Option<String>,
    pub wait_seconds: Option<u32>,
    pub workers: Option<u32>,
    pub agreement: Option<u32>,
    pub max_workers: Option<u32>,
    pub weighting: Option<Weighting>,
    pub partners: Option<PartnerMode>,
    pub first_look_minutes: Option<u32>,
}

/// Who among the agent's partners and everyone else may take a task.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PartnerMode {
    /// Partners alone during the first-look window, then everyone.
    #[default]
    Prefer,
    /// Partners only.
    Only,
    /// Everyone at once; no partner bonus.
    None,
}

impl PartnerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerMode::Prefer => "prefer",
            PartnerMode::Only => "only",
            PartnerMode::None => "none",
        }
    }
}

/// How consensus votes are weighed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// Every vote counts 1.
    #[default]
    None,
    /// A vote counts the worker's trust score / 50.
    Trust,
}

impl Weighting {
    pub fn as_str(self) -> &'static str {
        match self {
            Weighting::None => "none",
            Weighting::Trust => "trust",
        }
    }
}

/// The most humans one task may use.
pub const MAX_WORKERS: u32 = 15;

/// A task request before validation: the kind, its main text, kind-specific details and the
/// common fields.
#[derive(Clone, Debug, Serialize)]
pub struct TaskDraft {
    pub kind: TaskKind,
    pub instruction: String,
    pub details: Map<String, Value>,
    pub common: CommonFields,
}

macro_rules! task_request {
    (
        $(#[$doc:meta])*
        $name:ident => $kind:expr,
        { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? },
        |$this:ident| ($instruction:expr, $details:expr)
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )*
            /// Background the human needs: who is asking, why, what matters. Shown to the
            /// worker who takes the task.
            #[serde(default)]
            pub context: Option<String>,
            /// Where the task happens: an address string, or an object with `address`, `lat`,
            /// `lng` and `radius_m`.
            #[serde(default)]
            pub location: Option<LocationInput>,
            /// Language the worker must speak, as a code such as "en" or "fr".
            #[serde(default)]
            pub language: Option<String>,
            /// Dollars paid per human, e.g. 5.00. Defaults to the kind's standard budget.
            /// Held in escrow from your balance when the task is created.
            #[serde(default)]
            #[schema(value_type = Option<crate::http::openapi::Dollars>)]
            pub budget: Option<Dollars>,
            /// When the task must be done: an RFC 3339 time ("2026-12-05T18:00:00Z") or a
            /// duration from now ("30m", "2h", "3d"). Unfinished tasks expire then and are refunded.
            #[serde(default)]
            pub deadline: Option<String>,
            /// The form of answer you want: {"type": "yes_no"}, {"type": "choice", "options": [...]},
            /// {"type": "rating", "min": 1, "max": 5}, {"type": "number"} or {"type": "text"}.
            #[serde(default)]
            #[schema(value_type = Option<crate::http::openapi::ResponseFormat>)]
            pub response: Option<ResponseFormat>,
            /// Proof the worker must send with the answer: any of "text", "photo", "gps".
            #[serde(default)]
            pub proof: Option<Vec<ProofKind>>,
            /// Your own key-value data, returned with the task (at most 16 KB).
            #[serde(default)]
            #[schema(value_type = Option<Object>)]
            pub metadata: Option<Map<String, Value>>,
            /// A URL that receives a signed POST each time the task changes state (claimed,
            /// completed, approved …); public addresses only.
            #[serde(default)]
            pub callback_url: Option<String>,
            /// A key of your choosing that makes retries safe: the same key returns the first
            /// result and never creates or charges twice.
            #[serde(default)]
            pub idempotency_key: Option<String>,
            /// How long to wait for the human's answer before returning a handle, in seconds
            /// (0 to 120, default 30). Pick the result up later with `get_task`.
            #[serde(default)]
            pub wait_seconds: Option<u32>,
            /// Consensus: how many different humans answer (1 to 15, default 1). The hold is
            /// budget × the most workers the task may use.
            #[serde(default)]
            pub workers: Option<u32>,
            /// Consensus: how many answers must agree (default a strict majority of `workers`).
            #[serde(default)]
            pub agreement: Option<u32>,
            /// Consensus: when answers split, add workers up to this many (default `workers`;
            /// at most 15). Held up front; unused slots are refunded.
            #[serde(default)]
            pub max_workers: Option<u32>,
            /// Consensus: "none" (each vote counts 1, the default) or "trust" (a vote counts the
            /// worker's trust score / 50).
            #[serde(default)]
            pub weighting: Option<Weighting>,
            /// Your partners (workers you partnered with): "prefer" (they see the task alone
            /// for the first-look window, then everyone does; the default), "only" (only they
            /// may take it) or "none" (everyone at once, no partner bonus).
            #[serde(default)]
            pub partners: Option<PartnerMode>,
            /// Minutes your partners see the task alone when `partners` is "prefer" (0 to 1440;
            /// default the server's setting, 10).
            #[serde(default)]
            pub first_look_minutes: Option<u32>,
        }

        impl $name {
            /// Splits the request into the kind's own part and the common fields.
            pub fn into_draft(self) -> TaskDraft {
                let $this = &self;
                let instruction: String = $instruction;
                let details: Map<String, Value> = $details;
                TaskDraft {
                    kind: $kind,
                    instruction,
                    details,
                    common: CommonFields {
                        context: self.context,
                        location: self.location,
                        language: self.language,
                        budget: self.budget,
                        deadline: self.deadline,
                        response: self.response,
                        proof: self.proof,
                        metadata: self.metadata,
                        callback_url: self.callback_url,
                        idempotency_key: self.idempotency_key,
                        wait_seconds: self.wait_seconds,
                        workers: self.workers,
                        agreement: self.agreement,
                        max_workers: self.max_workers,
                        weighting: self.weighting,
                        partners: self.partners,
                        first_look_minutes: self.first_look_minutes,
                    },
                }
            }
        }
    };
}

fn details(pairs: &[(&str, Option<Value>)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter_map(|(key, value)| value.clone().map(|v| ((*key).to_owned(), v)))
        .collect()
}

task_request!(
    /// Ask a human to check a real-world fact.
    VerifyRequest => TaskKind::Verification,
    {
        /// The fact to check, as a question, e.g. "Is this restaurant still open?".
        question: String,
    },
    |r| (r.question.clone(), Map::new())
);

task_request!(
    /// Ask a human to make a phone call for you.
    CallRequest => TaskKind::VoiceProxy,
    {
        /// The number to call, in international form, e.g. "+1 514 555 0100". Shown only to
        /// the worker who claims the task.
        phone: String,
        /// What the call must achieve, e.g. "Book a table for 4 at 7pm on Friday".
        goal: String,
    },
    |r| (r.goal.clone(), details(&[("phone", Some(Value::String(r.phone.clone())))]))
);

task_request!(
    /// Ask a human for their gut feeling on a question.
    GutCheckRequest => TaskKind::GutCheck,
    {
        /// The question, e.g. "Does this email sound passive-aggressive?".
        question: String,
        /// Answers to pick from. With options the answer is one of them; without, yes or no.
        #[serde(default)]
        options: Option<Vec<String>>,
    },
    |r| (r.question.clone(), details(&[("options", r.options.clone().map(|o| o.into()))]))
);

task_request!(
    /// Send a human on site, with photo and GPS proof.
    FieldRequest => TaskKind::FieldMission,
    {
        /// What to do on site, e.g. "Photograph the queue outside and count the people in it".
        mission: String,
    },
    |r| (r.mission.clone(), Map::new())
);

task_request!(
    /// Hand a person in distress or anger over to an empathetic human.
    EscalateRequest => TaskKind::Escalation,
    {
        /// What happened and what the person needs.
        situation: String,
        /// How to reach the person (phone, email or chat link). Shown only to the worker who
        /// claims the task.
        #[serde(default)]
        contact: Option<String>,
    },
    |r| (r.situation.clone(), details(&[("contact", r.contact.clone().map(Value::String))]))
);

task_request!(
    /// Ask a human to read the mood of a text, image or situation.
    VibeRequest => TaskKind::VibeRead,
    {
        /// The text, link or description to read.
        content: String,
        /// What to judge, e.g. "Is this customer about to churn?". Defaults to "What is the mood?".
        #[serde(default)]
        question: Option<String>,
    },
    |r| (
        r.question.clone().unwrap_or_else(|| "What is the mood?".into()),
        details(&[("content", Some(Value::String(r.content.clone())))])
    )
);

task_request!(
    /// Ask a human to check your own work product.
    RealityCheckRequest => TaskKind::RealityCheck,
    {
        /// The work to check: text, code, a plan, a link.
        work: String,
        /// What to check, e.g. "Would a customer understand this reply?". Defaults to
        /// "Is this correct and sensible?".
        #[serde(default)]
        question: Option<String>,
    },
    |r| (
        r.question.clone().unwrap_or_else(|| "Is this correct and sensible?".into()),
        details(&[("work", Some(Value::String(r.work.clone())))])
    )
);

/// The body of `POST /v1/tasks`: the kind (or tool name) plus that kind's fields.
#[derive(Clone, Debug, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreateTaskBody {
    #[serde(alias = "verify")]
    Verification(VerifyRequest),
    #[serde(alias = "call")]
    VoiceProxy(CallRequest),
    GutCheck(GutCheckRequest),
    #[serde(alias = "field")]
    FieldMission(FieldRequest),
    #[serde(alias = "escalate")]
    Escalation(EscalateRequest),
    #[serde(alias = "vibe")]
    VibeRead(VibeRequest),
    RealityCheck(RealityCheckRequest),
}

impl CreateTaskBody {
    pub fn into_draft(self) -> TaskDraft {
        match self {
            CreateTaskBody::Verification(r) => r.into_draft(),
            CreateTaskBody::VoiceProxy(r) => r.into_draft(),
            CreateTaskBody::GutCheck(r) => r.into_draft(),
            CreateTaskBody::FieldMission(r) => r.into_draft(),
            CreateTaskBody::Escalation(r) => r.into_draft(),
            CreateTaskBody::VibeRead(r) => r.into_draft(),
            CreateTaskBody::RealityCheck(r) => r.into_draft(),
        }
    }
}

/// Limits on what a task may carry.
pub const MAX_INSTRUCTION_CHARS: usize = 4_000;
pub const MAX_CONTEXT_CHARS: usize = 20_000;
pub const MAX_DETAIL_CHARS: usize = 20_000;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MIN_BUDGET: Cents = Cents::new(50);
pub const MAX_BUDGET: Cents = Cents::new(1_000_000);
pub const MAX_WAIT_SECONDS: u32 = 120;
pub const DEFAULT_WAIT_SECONDS: u32 = 30;
const MAX_DEADLINE_SECS: i64 = 30 * 24 * 60 * 60;
const MIN_DEADLINE_SECS: i64 = 60;

/// A task request that passed every check, ready to store.
#[derive(Clone, Debug)]
pub struct NewTask {
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
    /// Where task changes are POSTed; checked against the operator's policy when stored.
    pub callback_url: Option<String>,
    pub budget: Cents,
    pub deadline_at_ms: i64,
    pub idempotency_key: Option<String>,
    /// Hash of the request as sent, to tell a retry from a different request under one key.
    pub request_hash: String,
    /// How many humans answer at first.
    pub workers: u32,
    /// How many answers must agree.
    pub agreement: u32,
    /// The most humans the task may grow to when answers split.
    pub max_workers: u32,
    pub weighting: Weighting,
    pub partners: PartnerMode,
    /// The first-look window asked for, in minutes; `None` for the server's setting.
    pub first_look_minutes: Option<u32>,
}

impl TaskDraft {
    /// Seconds to wait for the human's answer, within bounds.
    pub fn wait_seconds(&self) -> u32 {
        self.common
            .wait_seconds
            .unwrap_or(DEFAULT_WAIT_SECONDS)
            .min(MAX_WAIT_SECONDS)
    }

    /// Checks every field and resolves defaults; `now_ms` anchors relative deadlines.
    pub fn validate(self, now_ms: i64) -> ServiceResult<NewTask> {
        if let Some(wait) = self.common.wait_seconds.filter(|w| *w > MAX_WAIT_SECONDS) {
            return Err(ServiceError::invalid(format!(
                "wait_seconds {wait} is too long; give 0 to {MAX_WAIT_SECONDS} and pick the result \
                 up later with get_task"
            )));
        }
        let request_hash = self.request_hash();
        let TaskDraft {
            kind,
            instruction,
            details,
            common,
        } = self;
        let field = kind.tool_name();

        let instruction = required_text(
            &format!("{field}: the main text"),
            &instruction,
            MAX_INSTRUCTION_CHARS,
        )?;
        for (key, value) in &details {
            if let Value::String(text) = value {
                required_text(key, text, MAX_DETAIL_CHARS)?;
            }
        }
        let context = optional_text("context", common.context, MAX_CONTEXT_CHARS)?;

        let budget = common
            .budget
            .map(|d| d.0)
            .unwrap_or_else(|| kind.default_budget());
        if budget < MIN_BUDGET || budget > MAX_BUDGET {
            return Err(ServiceError::invalid(format!(
                "budget ${budget} is out of range; give ${MIN_BUDGET} to ${MAX_BUDGET} per human"
            )));
        }

        let (address, lat, lng, radius_m) = read_location(common.location)?;
        let language = common.language.map(|l| read_language(&l)).transpose()?;
        let deadline_at_ms = read_deadline(common.deadline.as_deref(), kind, now_ms)?;

        let options = details
            .get("options")
            .and_then(Value::as_array)
            .map(|options| {
                options
                    .iter()
                    .map(|o| o.as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            });
        let response = match (common.response, options) {
            (Some(format), _) => format,
            (None, Some(options)) => ResponseFormat::Choice { options },
            (None, None) if kind == crate::domain::kind::TaskKind::GutCheck => {
                ResponseFormat::YesNo
            }
            (None, None) => ResponseFormat::Text,
        };
        response.validate().map_err(ServiceError::invalid)?;

        let asked = common.proof.unwrap_or_else(|| match kind {
            TaskKind::FieldMission => vec![ProofKind::Photo, ProofKind::Gps],
            _ => Vec::new(),
        });
        let mut proof = Vec::new();
        for item in asked {
            if proof.contains(&item) {
                return Err(ServiceError::invalid(format!(
                    "proof lists {} twice; name each kind of proof once",
                    serde_json::to_value(item).unwrap_or_default()
                )));
            }
            proof.push(item);
        }
        if let Some(Value::String(phone)) = details.get("phone") {
            check_phone(phone)?;
        }

        if let Some(metadata) = &common.metadata {
            let size = serde_json::to_string(metadata)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if size > MAX_METADATA_BYTES {
                return Err(ServiceError::invalid(format!(
                    "metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}"
                )));
            }
        }
        let idempotency_key = common
            .idempotency_key
            .map(|k| read_idempotency_key(&k))
            .transpose()?;
        let (workers, agreement, max_workers) = read_consensus(
            common.workers,
            common.agreement,
            common.max_workers,
            &response,
        )?;

        Ok(NewTask {
            kind,
            instruction,
            details,
            context,
            address,
            lat,
            lng,
            radius_m,
            language,
            response,
            proof,
            metadata: common.metadata,
            callback_url: common
                .callback_url
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            budget,
            deadline_at_ms,
            idempotency_key,
            request_hash,
            workers,
            agreement,
            max_workers,
            weighting: common.weighting.unwrap_or_default(),
            partners: common.partners.unwrap_or_default(),
            first_look_minutes: match common.first_look_minutes {
                Some(minutes) if minutes > 24 * 60 => {
                    return Err(ServiceError::invalid(format!(
                        "first_look_minutes {minutes} is too long; give 0 to 1440"
                    )));
                }
                other => other,
            },
        })
    }

    /// A hash of everything that defines the request, leaving out how long to wait and the
    /// idempotency key itself.
    fn request_hash(&self) -> String {
        let mut copy = self.clone();
        copy.common.idempotency_key = None;
        copy.common.wait_seconds = None;
        crate::auth::sha256_hex(serde_json::to_string(&copy).unwrap_or_default().as_bytes())
    }
}

/// Reads the consensus fields: `workers` 1 to 15, `agreement` 1 to `workers` (default a strict
/// majority), `max_workers` from `workers` to 15 (default `workers`).
fn read_consensus(
    workers: Option<u32>,
    agreement: Option<u32>,
    max_workers: Option<u32>,
    response: &ResponseFormat,
) -> ServiceResult<(u32, u32, u32)> {
    let workers = workers.unwrap_or(1);
    if !(1..=MAX_WORKERS).contains(&workers) {
        return Err(ServiceError::invalid(format!(
            "workers {workers} is out of range; ask for 1 to {MAX_WORKERS} humans"
        )));
    }
    let max_workers = max_workers.unwrap_or(workers);
    if !(workers..=MAX_WORKERS).contains(&max_workers) {
        return Err(ServiceError::invalid(format!(
            "max_workers {max_workers} is out of range; give {workers} (the workers asked for) \
             to {MAX_WORKERS}"
        )));
    }
    let default = crate::domain::consensus::majority(workers);
    let agreement = match agreement {
        Some(n) if matches!(response, ResponseFormat::Text) && workers > 1 => {
            return Err(ServiceError::invalid(format!(
                "agreement {n} needs answers that can be compared; free text is collected, not \
                 compared: give the task options or another response format"
            )));
        }
        Some(n) if !(1..=workers).contains(&n) => {
            return Err(ServiceError::invalid(format!(
                "agreement {n} is out of range; give 1 to {workers} (the workers asked for)"
            )));
        }
        Some(n) => n,
        None => default,
    };
    Ok((workers, agreement, max_workers))
}

/// Checks an idempotency key: 1 to 200 visible ASCII characters.
pub fn read_idempotency_key(key: &str) -> ServiceResult<String> {
    let ok = !key.is_empty() && key.len() <= 200 && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(key.to_owned())
    } else {
        Err(ServiceError::invalid(
            "idempotency key must be 1 to 200 visible ASCII characters (letters, digits, -_.:)",
        ))
    }
}

fn required_text(name: &str, text: &str, max: usize) -> ServiceResult<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(format!(
            "{name} is empty; say what the human should do"
        )));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(ServiceError::invalid(format!(
            "{name} is {chars} characters long; the limit is {max}"
        )));
    }
    Ok(trimmed.to_owned())
}

fn optional_text(name: &str, text: Option<String>, max: usize) -> ServiceResult<Option<String>> {
    match text {
        Some(text) if !text.trim().is_empty() => required_text(name, &text, max).map(Some),
        _ => Ok(None),
    }
}

type ReadLocation = (Option<String>, Option<f64>, Option<f64>, Option<i64>);

fn read_location(location: Option<LocationInput>) -> ServiceResult<ReadLocation> {
    let place = match location {
        None => return Ok((None, None, None, None)),
        Some(LocationInput::Address(address)) => Place {
            address: Some(address),
            lat: None,
            lng: None,
            radius_m: None,
        },
        Some(LocationInput::Place(place)) => place,
    };
    let address = optional_text("location address", place.address, 500)?;
    let (lat, lng) = match (place.lat, place.lng) {
        (Some(lat), Some(lng)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(ServiceError::invalid(format!(
                    "location ({lat}, {lng}) is not a place on Earth; latitude must be within \
                     -90..90 and longitude within -180..180"
                )));
            }
            (Some(lat), Some(lng))
        }
        (None, None) => (None, None),
        _ => {
            return Err(ServiceError::invalid(
                "location needs both lat and lng, or neither",
            ));
        }
    };
    if address.is_none() && lat.is_none() {
        return Err(ServiceError::invalid(
            "location is empty; give an address or lat and lng",
        ));
    }
    let radius_m = match place.radius_m {
        Some(r) if !(50..=100_000).contains(&r) => {
            return Err(ServiceError::invalid(format!(
                "location radius_m {r} is out of range; give 50 to 100000 metres"
            )));
        }
        Some(r) => Some(i64::from(r)),
        None if lat.is_some() => Some(1_000),
        None => None,
    };
    Ok((address, lat, lng, radius_m))
}

/// Checks a phone number: an optional `+`, then 7 to 15 digits, with spaces, dots, dashes and
/// brackets allowed between them, and an optional extension (`ext 12`, `x12`).
fn check_phone(phone: &str) -> ServiceResult<()> {
    let lower = phone.trim().to_ascii_lowercase();
    let number = lower.split(['x', 'e']).next().unwrap_or("");
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    let allowed = number
        .trim_start_matches('+')
        .bytes()
        .all(|b| b.is_ascii_digit() || b" .-()".contains(&b));
    if allowed && (7..=15).contains(&digits) {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "phone {phone:?} is not a phone number; give it in international form, \
             e.g. \"+1 514 555 0100\""
        )))
    }
}

/// Reads a language code such as "en", "FR" or "pt-BR" into its lowercase form.
pub(crate) fn read_language(code: &str) -> ServiceResult<String> {
    let code = code.trim().to_ascii_lowercase();
    let (primary, region) = code.split_once('-').unwrap_or((&code, ""));
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = region.len() <= 8 && region.bytes().all(|b| b.is_ascii_alphanumeric());
    if primary_ok && region_ok {
        Ok(code)
    } else {
        Err(ServiceError::invalid(format!(
            "language {code:?} is not a language code; use a code such as \"en\", \"fr\" or \"pt-br\""
        )))
    }
}

/// Reads an absolute RFC 3339 time or a duration such as "30m", "2h", "3d".
fn read_deadline(deadline: Option<&str>, kind: TaskKind, now_ms: i64) -> ServiceResult<i64> {
    let Some(text) = deadline.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(now_ms + kind.default_deadline_secs() * 1000);
    };
    let at_ms = if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.timestamp_millis()
    } else {
        let unit = text.chars().last().unwrap_or(' ');
        let scale = match unit {
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => 0,
        };
        let digits = &text[..text.len() - unit.len_utf8()];
        let is_duration =
            scale > 0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match digits.parse::<i64>() {
            Ok(n) if is_duration && n <= 100_000 => now_ms + n * scale * 1000,
            // Too many digits to be a sensible duration: far beyond the longest deadline.
            _ if is_duration => now_ms + MAX_DEADLINE_SECS * 1000 + 1_000,
            _ => {
                return Err(ServiceError::invalid(format!(
                    "deadline {text:?} is neither an RFC 3339 time nor a duration such as \
                     \"30m\", \"2h\" or \"3d\""
                )));
            }
        }
    };
    let secs_ahead = (at_ms - now_ms) / 1000;
    if secs_ahead < MIN_DEADLINE_SECS {
        return Err(ServiceError::invalid(format!(
            "deadline {text:?} is less than a minute away (or past); give the human time"
        )));
    }
    if secs_ahead > MAX_DEADLINE_SECS {
        return Err(ServiceError::invalid(format!(
            "deadline {text:?} is more than 30 days away; the longest deadline is 30 days"
        )));
    }
    Ok(at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn body(value: Value) -> Result<TaskDraft, String> {
        serde_json::from_value::<CreateTaskBody>(value)
            .map(CreateTaskBody::into_draft)
            .map_err(|e| e.to_string())
    }

    fn error(value: Value) -> String {
        match body(value) {
            Ok(draft) => draft.validate(NOW).unwrap_err().to_string(),
            Err(message) => message,
        }
    }

    #[test]
    fn the_quick_start_request_validates_with_defaults() {
        let draft = body(json!({
            "kind": "verify",
            "question": "Is this restaurant still open?",
            "location": "245 Rue St-Paul, Montréal",
            "budget": 5.00
        }))
        .unwrap();
        let task = draft.validate(NOW).unwrap();
        assert_eq!(task.kind, TaskKind::Verification);
        assert_eq!(task.budget, Cents::new(500));
        assert_eq!(task.address.as_deref(), Some("245 Rue St-Paul, Montréal"));
        assert_eq!(task.deadline_at_ms, NOW + 24 * 3600 * 1000);
        assert_eq!(task.response, ResponseFormat::Text);
    }

    #[test]
    fn bad_budgets_are_refused_with_the_reason() {
        let base = |budget: Value| json!({"kind": "verify", "question": "q?", "budget": budget});
        assert!(error(base(json!(0))).contains("out of range"));
        assert!(error(base(json!(-5))).contains("negative"));
        assert!(error(base(json!("abc"))).contains("not a number"));
        assert!(error(base(json!(5.001))).contains("two decimal"));
        assert!(error(base(json!(1e308))).contains("too large"));
        assert!(error(base(json!("NaN"))).contains("not a number"));
    }

    #[test]
    fn bad_text_is_refused_with_the_reason() {
        assert!(error(json!({"kind": "verify", "question": "  "})).contains("empty"));
        let huge = "x".repeat(1 << 20);
        assert!(error(json!({"kind": "verify", "question": huge})).contains("limit is 4000"));
        assert!(
            error(json!({"kind": "verify", "question": "q", "budgett": 5})).contains("budgett")
        );
        assert!(error(json!({"kind": "lunch", "question": "q"})).contains("lunch"));
    }

    #[test]
    fn deadlines_locations_and_languages_are_read() {
        let draft = body(json!({
            "kind": "field", "mission": "Count the queue", "deadline": "2h",
            "location": {"lat": 45.5, "lng": -73.55}, "language": "FR"
        }))
        .unwrap();
        let task = draft.validate(NOW).unwrap();
        assert_eq!(task.deadline_at_ms, NOW + 2 * 3600 * 1000);
        assert_eq!(task.radius_m, Some(1000));
        assert_eq!(task.language.as_deref(), Some("fr"));
        assert_eq!(task.proof, vec![ProofKind::Photo, ProofKind::Gps]);
        assert!(
            error(json!({"kind": "verify", "question": "q", "deadline": "soon"}))
                .contains("deadline")
        );
        assert!(
            error(json!({"kind": "verify", "question": "q", "deadline": "90d"}))
                .contains("30 days")
        );
        assert!(
            error(
                json!({"kind": "verify", "question": "q", "location": {"lat": 91.0, "lng": 0.0}})
            )
            .contains("Earth")
        );
        assert!(
            error(json!({"kind": "verify", "question": "q", "language": "english!"}))
                .contains("language")
        );
        let bad_place = error(json!({"kind": "verify", "question": "q", "location": {"lat": "a"}}));
        assert!(bad_place.contains("location: invalid type"), "{bad_place}");
        let bad_kind = error(json!({"kind": "verify", "question": "q", "location": 5}));
        assert!(bad_kind.contains("address string"), "{bad_kind}");
    }

    #[test]
    fn gut_check_options_become_a_choice() {
        let draft =
            body(json!({"kind": "gut_check", "question": "Which logo?", "options": ["A", "B"]}))
                .unwrap();
        let task = draft.validate(NOW).unwrap();
        assert_eq!(
            task.response,
            ResponseFormat::Choice {
                options: vec!["A".into(), "B".into()]
            }
        );
        let plain = body(json!({"kind": "gut_check", "question": "Cringe?"}))
            .unwrap()
            .validate(NOW)
            .unwrap();
        assert_eq!(plain.response, ResponseFormat::YesNo);
    }

    #[test]
    fn the_request_hash_ignores_wait_and_key_only() {
        let a = body(
            json!({"kind": "verify", "question": "q", "wait_seconds": 1, "idempotency_key": "k1"}),
        )
        .unwrap();
        let b = body(
            json!({"kind": "verify", "question": "q", "wait_seconds": 9, "idempotency_key": "k2"}),
        )
        .unwrap();
        let c = body(json!({"kind": "verify", "question": "other"})).unwrap();
        assert_eq!(a.request_hash(), b.request_hash());
        assert_ne!(a.request_hash(), c.request_hash());
    }

    #[test]
    fn odd_deadlines_phones_and_proofs_get_precise_refusals() {
        let deadline = |d: &str| error(json!({"kind": "verify", "question": "q", "deadline": d}));
        assert!(deadline("2562047788h").contains("30 days"));
        assert!(deadline("0h").contains("less than a minute"));
        let phone = error(json!({"kind": "call", "phone": "not a phone", "goal": "g"}));
        assert!(phone.contains("phone number"), "{phone}");
        let ok = body(json!({"kind": "call", "phone": "+1 (514) 555-0100 ext 12", "goal": "g"}));
        assert!(ok.unwrap().validate(NOW).is_ok());
        let twice = error(json!({"kind": "verify", "question": "q", "proof": ["photo", "photo"]}));
        assert!(twice.contains("twice"), "{twice}");
        let radius = error(json!({"kind": "verify", "question": "q",
            "location": {"lat": 1.0, "lng": 1.0, "radius_m": -1}}));
        assert!(!radius.contains("location: location"), "{radius}");
    }
}
