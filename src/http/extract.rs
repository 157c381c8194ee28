//! Extractors that turn every malformed request into the API's one error shape, with serde's
//! message naming the field at fault, instead of axum's plain-text rejections.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, is_json_media_type};
use crate::domain::kind::TaskKind;
use crate::input::{
    CallRequest, CreateTaskBody, EscalateRequest, FieldRequest, GutCheckRequest,
    RealityCheckRequest, VerifyRequest, VibeRequest,
};

/// The body size limit, in bytes; large enough that an oversized text field reaches validation
/// and gets a message naming its own limit.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A JSON request body, read into `T`.
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw bytes of a request body that says it is JSON, within the size limit.
pub(crate) struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str());
        match content_type {
            Some(Ok(value)) if is_json_media_type(value) => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the request body must be JSON; send it with `Content-Type: application/json`",
                ));
            }
        }
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(JsonBytes(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_input",
                rejection.body_text(),
            )),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the request body is larger than the limit of {} MiB; send less text or link to it",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
}

/// Reads JSON into `T`; a data error names the field at fault (`budget: amount 5.001 has more
/// than two decimal places …`).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Json::<T>::from_bytes(bytes)
        .map(|Json(value)| value)
        .map_err(json_error)
}

fn json_error(rejection: JsonRejection) -> ApiError {
    let inner = std::error::Error::source(&rejection).map(ToString::to_string);
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let message = inner.unwrap_or_else(|| rejection.body_text());
            ApiError::invalid(without_position(&message).to_owned())
        }
        JsonRejection::JsonSyntaxError(_) => {
            let detail = inner.unwrap_or_else(|| rejection.body_text());
            if detail.starts_with("EOF while parsing a value at line 1 column 0") {
                ApiError::invalid("the request body is empty; send a JSON object")
            } else {
                ApiError::invalid(format!("the request body is not valid JSON: {detail}"))
            }
        }
        other => ApiError::new(other.status(), "invalid_input", other.body_text()),
    }
}

/// serde_json ends data errors with " at line 1 column 57", which means nothing to a caller
/// who sent a JSON object built in code; syntax errors keep it.
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => {
            let tail = &message[at + " at line ".len()..];
            let mut words = tail.split(' ');
            let is_position = words.next().is_some_and(|n| n.parse::<u64>().is_ok())
                && words.next() == Some("column")
                && words.next().is_some_and(|n| n.parse::<u64>().is_ok())
                && words.next().is_none();
            if is_position { &message[..at] } else { message }
        }
        None => message,
    }
}

/// Reads the body of `POST /v1/tasks`.
///
/// The body is an internally tagged enum, and serde buffers such a body before reading the
/// variant, which loses the path of a bad field. When that happens the body is read again as
/// the variant its `kind` names, so the message says which field is wrong.
pub(crate) fn parse_task_body(bytes: &[u8]) -> Result<CreateTaskBody, ApiError> {
    let error = match parse_json::<CreateTaskBody>(bytes) {
        Ok(body) => return Ok(body),
        Err(error) => error,
    };
    if error.status() != StatusCode::BAD_REQUEST {
        return Err(error);
    }
    Err(explain_variant_error(bytes).unwrap_or(error))
}

fn explain_variant_error(bytes: &[u8]) -> Option<ApiError> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let Value::Object(mut object) = value else {
        return Some(ApiError::invalid(
            "the request body must be a JSON object such as \
             {\"kind\": \"verify\", \"question\": \"Is the shop open today?\"}",
        ));
    };
    let Some(kind) = object.remove("kind") else {
        let kinds: Vec<&str> = TaskKind::ALL.iter().map(|k| k.tool_name()).collect();
        return Some(ApiError::invalid(format!(
            "missing field `kind`: say what the human should do, one of {}",
            kinds.join(", ")
        )));
    };
    let kind: TaskKind = kind.as_str()?.parse().ok()?;
    let rest = serde_json::to_vec(&object).ok()?;
    match kind {
        TaskKind::Verification => parse_json::<VerifyRequest>(&rest).err(),
        TaskKind::VoiceProxy => parse_json::<CallRequest>(&rest).err(),
        TaskKind::GutCheck => parse_json::<GutCheckRequest>(&rest).err(),
        TaskKind::FieldMission => parse_json::<FieldRequest>(&rest).err(),
        TaskKind::Escalation => parse_json::<EscalateRequest>(&rest).err(),
        TaskKind::VibeRead => parse_json::<VibeRequest>(&rest).err(),
        TaskKind::RealityCheck => parse_json::<RealityCheckRequest>(&rest).err(),
    }
}

/// A query string read into `T`.
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let detail = std::error::Error::source(&rejection)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| rejection.body_text());
                Err(ApiError::invalid(format!("query string: {detail}")))
            }
        }
    }
}

/// Path parameters read into `T`.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                if rejection.status().is_server_error() {
                    "internal"
                } else {
                    "invalid_input"
                },
                rejection.body_text(),
            )),
        }
    }
}

/// The `Idempotency-Key` header, checked: 1 to 200 visible ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::invalid("the Idempotency-Key header must be 1 to 200 visible ASCII characters")
    })?;
    let key = crate::input::read_idempotency_key(text)
        .map_err(|error| ApiError::invalid(format!("Idempotency-Key header: {error}")))?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_cut_from_data_errors_only_when_they_are_positions() {
        assert_eq!(
            without_position("budget: bad at line 1 column 57"),
            "budget: bad"
        );
        assert_eq!(without_position("meet at line 4"), "meet at line 4");
        assert_eq!(without_position("plain"), "plain");
    }

    #[test]
    fn a_bad_budget_is_named_in_the_message() {
        let body = br#"{"kind": "verify", "question": "Open?", "budget": 5.001}"#;
        let error = parse_task_body(body).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        let message = format!("{error:?}");
        assert!(message.contains("budget"), "{message}");
        assert!(message.contains("two decimal"), "{message}");
    }
}
