//! Who is signed in: the `hp_session` cookie, resolved to a worker, and the CSRF check.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use super::WebState;
use super::pages;
use crate::service::web::WebSession;

/// The cookie that carries the session token.
pub(crate) const COOKIE_NAME: &str = "hp_session";
/// How long the browser keeps the cookie, in seconds (the session's own lifetime).
const COOKIE_MAX_AGE: i64 = 30 * 24 * 60 * 60;

/// A signed-in worker; pages that need one redirect to the sign-in page without it.
pub(crate) struct SignedIn {
    /// The cookie's token, to end the session on sign-out.
    pub token: String,
    pub session: WebSession,
}

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let Some(token) = session_token(&parts.headers) else {
            return Err(Redirect::to("/app/sign-in").into_response());
        };
        match state.service.web_session(&token).await {
            Ok(Some(session)) => {
                tracing::Span::current()
                    .record("caller", tracing::field::display(&session.worker_id));
                let worker = session.worker_id.as_str();
                crate::http::auth::note_address(parts, &state.service, worker).await;
                Ok(SignedIn { token, session })
            }
            Ok(None) => Err(Redirect::to("/app/sign-in").into_response()),
            Err(error) => Err(pages::PageError::from(error).into_response()),
        }
    }
}

impl SignedIn {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), pages::PageError> {
        if constant_time_eq(presented.as_bytes(), self.session.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(pages::PageError::forbidden(
                "this form is out of date or did not come from HumanPing; reload the page and try again",
            ))
        }
    }
}

/// The session token in the request's cookies, if any.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A response that sets the session cookie and goes to `to`.
pub(crate) fn start(token: &str, secure: bool, to: &str) -> Response {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Lax; Path=/app; Max-Age={COOKIE_MAX_AGE}{secure}"
    );
    with_cookie(Redirect::to(to).into_response(), &cookie)
}

/// A response that clears the session cookie and goes to the sign-in page.
pub(crate) fn end(secure: bool) -> Response {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE_NAME}=; HttpOnly; SameSite=Lax; Path=/app; Max-Age=0{secure}");
    with_cookie(Redirect::to("/app/sign-in").into_response(), &cookie)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; hp_session=tok123; b=2"),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("tok123"));
        headers.insert(COOKIE, HeaderValue::from_static("hp_session="));
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
