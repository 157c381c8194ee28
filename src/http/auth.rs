//! Who is calling: the API key from `Authorization: Bearer …` or `X-API-Key`, resolved by the
//! service to an agent or a worker. Keys are never logged; the caller's id goes on the span.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::ids::{AgentId, WorkerId};
use crate::service::HumanPing;

/// The agent whose key signed the request.
pub(crate) struct Agent(pub AgentId);

/// The worker whose key signed the request.
pub(crate) struct Worker(pub WorkerId);

/// An operator's key signed the request.
pub(crate) struct Operator;

/// Notes the caller's network address for the tied-account check; never fails the request.
pub(crate) async fn note_address(parts: &Parts, service: &HumanPing, principal: &str) {
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>()
        && let Err(error) = service.note_address(principal, peer.ip()).await
    {
        tracing::warn!(%error, "could not record the caller's address");
    }
}

impl FromRequestParts<HumanPing> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &HumanPing) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers)?;
        let agent = service.authenticate_agent(key).await?;
        tracing::Span::current().record("caller", tracing::field::display(&agent));
        note_address(parts, service, agent.as_str()).await;
        Ok(Agent(agent))
    }
}

impl FromRequestParts<HumanPing> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &HumanPing) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers)?;
        let worker = service.authenticate_worker(key).await?;
        tracing::Span::current().record("caller", tracing::field::display(&worker));
        note_address(parts, service, worker.as_str()).await;
        Ok(Worker(worker))
    }
}

impl FromRequestParts<HumanPing> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &HumanPing) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers)?;
        service.authenticate_operator(key).await?;
        tracing::Span::current().record("caller", "operator");
        Ok(Operator)
    }
}

/// The key the request carries. Two different keys (two `Authorization` headers, or an
/// `Authorization` and an `X-API-Key` that disagree) are refused rather than one picked.
pub(crate) fn presented_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    if headers.get_all(AUTHORIZATION).iter().count() > 1
        || headers.get_all("x-api-key").iter().count() > 1
    {
        return Err(ApiError::invalid("send one API key, in one header"));
    }
    let bearer = bearer_key(headers)?;
    let api_key = header_key(headers)?;
    match (bearer, api_key) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid(
            "the Authorization and X-API-Key headers name different keys; send one API key",
        )),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(ApiError::unauthorized(
            "no API key; send `Authorization: Bearer <key>` (or `X-API-Key: <key>`) with your \
             HumanPing API key",
        )),
    }
}

fn bearer_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().unwrap_or_default().trim();
        let (scheme, key) = text.split_once(' ').unwrap_or((text, ""));
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <key>` with your HumanPing API key",
            ));
        }
        return Ok(Some(key));
    }
    Ok(None)
}

fn header_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get("x-api-key") {
        let key = value.to_str().unwrap_or_default().trim();
        if key.is_empty() {
            return Err(ApiError::unauthorized(
                "the X-API-Key header is empty; send your HumanPing API key",
            ));
        }
        return Ok(Some(key));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn keys_are_read_from_either_header() {
        let bearer = headers(&[("authorization", "Bearer hp_test_abc")]);
        assert_eq!(presented_key(&bearer).unwrap(), "hp_test_abc");
        let lower = headers(&[("authorization", "bearer   hp_test_abc ")]);
        assert_eq!(presented_key(&lower).unwrap(), "hp_test_abc");
        let api_key = headers(&[("x-api-key", "hp_test_xyz")]);
        assert_eq!(presented_key(&api_key).unwrap(), "hp_test_xyz");
    }

    #[test]
    fn two_different_keys_are_refused() {
        let both = headers(&[
            ("authorization", "Bearer hp_test_a"),
            ("x-api-key", "hp_test_b"),
        ]);
        assert!(presented_key(&both).is_err());
        let same = headers(&[
            ("authorization", "Bearer hp_test_a"),
            ("x-api-key", "hp_test_a"),
        ]);
        assert_eq!(presented_key(&same).ok(), Some("hp_test_a"));
    }

    #[test]
    fn missing_or_malformed_keys_are_refused() {
        assert!(presented_key(&HeaderMap::new()).is_err());
        assert!(presented_key(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])).is_err());
        assert!(presented_key(&headers(&[("authorization", "Bearer")])).is_err());
        assert!(presented_key(&headers(&[("x-api-key", " ")])).is_err());
    }
}
