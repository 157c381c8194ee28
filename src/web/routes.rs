//! The web app's handlers: sign in and out, the feed, claims, the assignment page with its
//! submit form, and the worker's own page.

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{self, PageError};
use super::session::{self, SignedIn};
use super::{MAX_PHOTO_BYTES, MAX_PHOTOS, WebState, photos};
use crate::service::{ProofInput, ServiceError, SubmissionInput};

type PageResult<T = Response> = Result<T, PageError>;

/// The page's script: location for distances and proof, feed refresh, lease countdown.
const SCRIPT: &str = r#"(function () {
  var csrf = document.querySelector('meta[name=csrf-token]');
  csrf = csrf && csrf.content;
  var feed = document.getElementById('feed');
  function refresh() {
    if (!feed) return;
    fetch(feed.dataset.refresh, {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) feed.innerHTML = html; })
      .catch(function () {});
  }
  if (feed) setInterval(refresh, 20000);
  function say(selector, text) {
    document.querySelectorAll(selector).forEach(function (el) { el.textContent = text; });
  }
  if (navigator.geolocation && csrf) {
    navigator.geolocation.getCurrentPosition(function (p) {
      var c = p.coords;
      document.querySelectorAll('.geo-lat').forEach(function (el) { el.value = c.latitude; });
      document.querySelectorAll('.geo-lng').forEach(function (el) { el.value = c.longitude; });
      document.querySelectorAll('.geo-accuracy').forEach(function (el) { el.value = c.accuracy; });
      say('.geo-status', 'Your location will be sent with the result.');
      say('#location-status', 'Nearest tasks first.');
      var body = new URLSearchParams({csrf: csrf, lat: c.latitude, lng: c.longitude});
      fetch('/app/location', {method: 'POST', body: body, credentials: 'same-origin'})
        .then(refresh).catch(function () {});
    }, function () {
      say('.geo-status', 'Location not shared: tasks that need it will refuse the result.');
    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  }
  function tick() {
    document.querySelectorAll('.countdown').forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.until) - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = (h ? h + ' h ' : '') + m + ' min ' + s + ' s';
    });
  }
  tick();
  setInterval(tick, 1000);
})();
"#;

/// `GET /app/app.js`.
pub(crate) async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// `GET /app/sign-in`.
pub(crate) async fn sign_in_page() -> Html<String> {
    pages::sign_in(None)
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    key: String,
}

/// `POST /app/sign-in`: the worker key for a session cookie.
// Limitation: sign-in attempts are not rate limited.
// Limitation: the sign-in forms carry no CSRF token (no session exists yet).
pub(crate) async fn sign_in(State(state): State<WebState>, Form(form): Form<KeyForm>) -> Response {
    let worker = match state.service.authenticate_worker(form.key.trim()).await {
        Ok(worker) => worker,
        Err(error) => {
            let status = match error {
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            return (
                status,
                pages::sign_in(Some(PageError::from(error).message())),
            )
                .into_response();
        }
    };
    open_session(&state, &worker).await
}

async fn open_session(state: &WebState, worker: &crate::domain::ids::WorkerId) -> Response {
    match state.service.create_web_session(worker).await {
        Ok((token, _)) => session::start(&token, state.settings.secure_cookies, "/app"),
        Err(error) => PageError::from(error).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    token: String,
}

/// `GET /app/sign-in/link?token=…`: asks before using the link, so a link preview cannot
/// use it up.
pub(crate) async fn link_page(Query(query): Query<TokenForm>) -> Html<String> {
    pages::link(&query.token)
}

/// `POST /app/sign-in/link`: uses up the one-time link for a session cookie.
pub(crate) async fn link_sign_in(
    State(state): State<WebState>,
    Form(form): Form<TokenForm>,
) -> Response {
    match state.service.redeem_sign_in_link(form.token.trim()).await {
        Ok(worker) => open_session(&state, &worker).await,
        Err(error) => {
            let message = PageError::from(error).message().to_owned();
            (StatusCode::UNAUTHORIZED, pages::sign_in(Some(&message))).into_response()
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/sign-out`.
pub(crate) async fn sign_out(
    State(state): State<WebState>,
    signed: SignedIn,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_csrf(&form.csrf)?;
    state.service.end_web_session(&signed.token).await?;
    Ok(session::end(state.settings.secure_cookies))
}

/// `GET /app`: the feed.
pub(crate) async fn feed_page(
    State(state): State<WebState>,
    signed: SignedIn,
) -> PageResult<Html<String>> {
    let offers = state.service.offers(&signed.session.worker_id).await?;
    Ok(pages::feed(&signed.session.csrf_token, &offers))
}

/// `GET /app/feed`: the feed's list alone, for the page's refreshes.
pub(crate) async fn feed_fragment(
    State(state): State<WebState>,
    signed: SignedIn,
) -> PageResult<Html<String>> {
    let offers = state.service.offers(&signed.session.worker_id).await?;
    Ok(Html(
        pages::feed_list(&signed.session.csrf_token, &offers).into_string(),
    ))
}

#[derive(Deserialize)]
pub(crate) struct LocationForm {
    #[serde(default)]
    csrf: String,
    lat: f64,
    lng: f64,
}

/// `POST /app/location`: where the browser says the worker is.
pub(crate) async fn location(
    State(state): State<WebState>,
    signed: SignedIn,
    Form(form): Form<LocationForm>,
) -> PageResult<StatusCode> {
    signed.check_csrf(&form.csrf)?;
    state
        .service
        .set_worker_location(&signed.session.worker_id, form.lat, form.lng)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /app/tasks/{id}/claim`: claims, then shows the assignment.
pub(crate) async fn claim(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(task_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_csrf(&form.csrf)?;
    let assignment = state
        .service
        .claim(&signed.session.worker_id, &task_id)
        .await?;
    Ok(Redirect::to(&format!("/app/assignments/{}", assignment.assignment_id)).into_response())
}

/// `GET /app/assignments/{id}`: one of the worker's own assignments.
pub(crate) async fn assignment_page(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> PageResult<Html<String>> {
    let view = state
        .service
        .worker_assignment(&signed.session.worker_id, &id)
        .await?;
    Ok(pages::assignment(&signed.session.csrf_token, &view, None))
}

/// `POST /app/assignments/{id}/release`: gives the claim back.
pub(crate) async fn release(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_csrf(&form.csrf)?;
    state
        .service
        .release_assignment(&signed.session.worker_id, &id)
        .await?;
    Ok(Redirect::to("/app").into_response())
}

/// What the submit form sent.
#[derive(Default)]
struct SubmitForm {
    csrf: String,
    answer: Option<String>,
    notes: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    accuracy_m: Option<f64>,
    photos: Vec<Vec<u8>>,
}

async fn read_submit_form(mut multipart: Multipart) -> PageResult<SubmitForm> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        PageError::bad_request(format!(
            "the form could not be read ({}); send it again",
            e.body_text()
        ))
    };
    let mut form = SubmitForm::default();
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "photos" {
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_PHOTO_BYTES {
                    return Err(PageError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "a photo is larger than {} MB; take a smaller one",
                            MAX_PHOTO_BYTES / 1024 / 1024
                        ),
                    ));
                }
            }
            // A file input left empty still sends an empty part.
            if !bytes.is_empty() {
                if form.photos.len() == MAX_PHOTOS {
                    return Err(PageError::bad_request(format!(
                        "send at most {MAX_PHOTOS} photos"
                    )));
                }
                form.photos.push(bytes);
            }
            continue;
        }
        let text = field.text().await.map_err(unreadable)?;
        let text = text.trim();
        let number = || text.parse::<f64>().ok().filter(|n| n.is_finite());
        match name.as_str() {
            "csrf" => form.csrf = text.to_owned(),
            "answer" if !text.is_empty() => form.answer = Some(text.to_owned()),
            "notes" if !text.is_empty() => form.notes = Some(text.to_owned()),
            "lat" => form.lat = number(),
            "lng" => form.lng = number(),
            "accuracy_m" => form.accuracy_m = number(),
            _ => {}
        }
    }
    Ok(form)
}

/// `POST /app/assignments/{id}/submit`: stores the photos, then sends the result. Sending the
/// same form again (a retry after a lost connection) stores nothing twice and is accepted as
/// the same result.
pub(crate) async fn submit(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(id): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let form = read_submit_form(multipart).await?;
    signed.check_csrf(&form.csrf)?;
    let worker = &signed.session.worker_id;
    let view = state.service.worker_assignment(worker, &id).await?;

    let again = |message: &str| {
        let page = pages::assignment(&signed.session.csrf_token, &view, Some(message));
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    // Limitation: photos of a refused result stay on disk, unreferenced.
    let mut photo_urls = Vec::new();
    for bytes in form.photos {
        let content_type = photos::sniff(&bytes).unwrap_or("application/octet-stream");
        let ai_score = state.service.ai_image_score(&bytes, content_type).await;
        let photo = match photos::store(&state.settings.proof_dir, bytes).await {
            Ok(photo) => photo,
            Err(message) => return Ok(again(&message)),
        };
        state
            .service
            .record_proof_photo(worker, &view, &photo, ai_score)
            .await?;
        // Limitation: photo links are relative paths; agents resolve them against the API's URL.
        photo_urls.push(format!(
            "/v1/tasks/{}/proofs/{}",
            view.task_id, photo.sha256
        ));
    }
    let has_proof = !photo_urls.is_empty() || form.lat.is_some();
    let proof = has_proof.then(|| ProofInput {
        text: None,
        lat: form.lat.zip(form.lng).map(|p| p.0),
        lng: form.lat.zip(form.lng).map(|p| p.1),
        accuracy_m: form.lat.and(form.accuracy_m),
        photo_urls: (!photo_urls.is_empty()).then_some(photo_urls),
    });
    let input = SubmissionInput {
        answer: form.answer,
        structured: None,
        notes: form.notes,
        proof,
    };
    match state.service.submit(worker, &id, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/app/assignments/{id}")).into_response()),
        Err(ServiceError::Internal(inner)) => Err(ServiceError::Internal(inner).into()),
        Err(error) => Ok(again(&error.to_string())),
    }
}

/// `GET /app/me`: earnings, trust score and past assignments.
pub(crate) async fn me_page(
    State(state): State<WebState>,
    signed: SignedIn,
) -> PageResult<Html<String>> {
    let worker = &signed.session.worker_id;
    let profile = state.service.worker_profile(worker).await?;
    let assignments = state.service.assignments(worker).await?;
    let partners = state.service.worker_partnerships(worker).await?;
    Ok(pages::me(
        &signed.session.csrf_token,
        &profile,
        &assignments,
        &partners,
    ))
}

/// `POST /app/partners/{agent_id}/leave`: the worker leaves an agent's partners.
pub(crate) async fn leave_partner(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(agent_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_csrf(&form.csrf)?;
    state
        .service
        .leave_partnership(&signed.session.worker_id, &agent_id)
        .await?;
    Ok(Redirect::to("/app/me").into_response())
}
