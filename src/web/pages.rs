//! The pages, as maud templates compiled into the binary: one layout, small and mobile first.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::domain::kind::TaskKind;
use crate::domain::response::ResponseFormat;
use crate::input::ProofKind;
use crate::service::views::{AssignmentView, OfferView, WorkerProfile};
use crate::service::{PartnershipView, ServiceError};

const STYLE: &str = "
*{box-sizing:border-box}body{margin:0;font:16px/1.45 system-ui,sans-serif;color:#1b1b1b;background:#f6f6f4}
header{display:flex;gap:.75rem;align-items:center;padding:.6rem 1rem;background:#12355b;color:#fff}
header a{color:#fff}header nav{margin-left:auto;display:flex;gap:.75rem;align-items:center}
main{max-width:40rem;margin:0 auto;padding:1rem}
.card{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:.9rem;margin:0 0 .9rem}
.meta{color:#555;font-size:.9rem}.pay{font-weight:700;color:#0a6b2d}
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.75rem;border-radius:.5rem}
.notice{background:#e8f4fd;border:1px solid #a0c4e0;padding:.75rem;border-radius:.5rem}
button,input,textarea,select{font:inherit}button{padding:.6rem 1rem;border-radius:.4rem;border:1px solid #12355b;background:#12355b;color:#fff;min-height:44px}
button.secondary{background:#fff;color:#12355b}label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],input[type=number],textarea{width:100%;padding:.55rem;border:1px solid #999;border-radius:.4rem}
input[type=file]{width:100%;max-width:100%;padding:.4rem 0}
fieldset{border:1px solid #ccc;border-radius:.4rem}.choices label{font-weight:400;display:flex;gap:.5rem;align-items:center}
.linkbutton{background:none;border:none;color:#fff;text-decoration:underline;padding:0;min-height:0}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}
";

/// A failure shown as a page, in plain words.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> PageError {
        let status = match &error {
            ServiceError::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Internal(inner) => {
                tracing::error!(error = %format!("{inner:#}"), "web app request failed");
                return PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on our side; try again in a moment",
                );
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        PageError {
            status,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = layout(
            "Something went wrong",
            None,
            html! {
                p.error role="alert" { (self.message) }
                p { a href="/app" { "Back to the tasks" } }
            },
        );
        (self.status, body).into_response()
    }
}

/// The page around every view. `csrf` is given when a worker is signed in.
pub(crate) fn layout(title: &str, csrf: Option<&str>, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = csrf { meta name="csrf-token" content=(csrf); }
                title { (title) " · HumanPing" }
                style { (maud::PreEscaped(STYLE)) }
                script src="/app/app.js" defer {}
            }
            body {
                header {
                    a href="/app" { strong { "HumanPing" } }
                    @if let Some(csrf) = csrf {
                        nav {
                            a href="/app/me" { "Me" }
                            form method="post" action="/app/sign-out" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.linkbutton type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    };
    Html(page.into_string())
}

pub(crate) fn sign_in(error: Option<&str>) -> Html<String> {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/app/sign-in" {
                label for="key" { "Your worker key" }
                input #key type="password" name="key" autocomplete="current-password" required
                    placeholder="hp_test_…";
                p { button type="submit" { "Sign in" } }
            }
            p.meta { "No key? Ask the operator for a sign-in link." }
        },
    )
}

pub(crate) fn link(token: &str) -> Html<String> {
    layout(
        "Sign in",
        None,
        html! {
            p { "This one-time link signs you in on this device." }
            form method="post" action="/app/sign-in/link" {
                input type="hidden" name="token" value=(token);
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub(crate) fn feed(csrf: &str, offers: &[OfferView]) -> Html<String> {
    layout(
        "Tasks near you",
        Some(csrf),
        html! {
            p.meta #location-status aria-live="polite" { "Share your location to see the nearest tasks first." }
            div #feed data-refresh="/app/feed" { (feed_list(csrf, offers)) }
        },
    )
}

pub(crate) fn feed_list(csrf: &str, offers: &[OfferView]) -> Markup {
    html! {
        @if offers.is_empty() {
            p.notice { "No task for you right now. This page checks again every 20 seconds." }
        }
        @for offer in offers {
            article.card {
                h2 { (kind_label(offer.kind.as_str())) }
                p { (offer.instruction) }
                p {
                    span.pay { "$" (offer.pay) } " after fee · "
                    span.meta { "due " time datetime=(offer.deadline) { (readable_time(&offer.deadline)) } }
                }
                @if let Some(notes) = &offer.partner_notes {
                    p.meta { "From an agent you partner with" @if !notes.is_empty() { ": " (notes) } }
                }
                p.meta {
                    @if let Some(distance) = offer.distance_m { (format_distance(distance)) " away · " }
                    @else if let Some(address) = public_address(offer) { (address) " · " }
                    "proof: " (proof_label(&offer.proof_required))
                    " · " (offer.lease_minutes) " min to do it once claimed"
                }
                form method="post" action={ "/app/tasks/" (offer.task_id) "/claim" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Claim this task" }
                }
            }
        }
    }
}

pub(crate) fn assignment(csrf: &str, view: &AssignmentView, error: Option<&str>) -> Html<String> {
    let task = &view.task;
    let holding = view.status.as_str() == "claimed";
    let action = format!("/app/assignments/{}", view.assignment_id);
    layout(
        kind_label(task.kind.as_str()),
        Some(csrf),
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            article.card {
                p { (task.instruction) }
                p { span.pay { "$" (format_cents(view.pay_cents)) } " after fee" }
                @if holding {
                    p {
                        "Your claim runs out in "
                        strong { span.countdown data-until=(view.lease_expires_at) { (view.lease_expires_at) } }
                    }
                } @else {
                    p.notice { "Status: " (view.status.as_str().replace('_', " ")) }
                }
                @if holding {
                    @if let Some(address) = &task.address { p { "Where: " (address) } }
                    @if let Some(context) = &task.context { p { "Context: " (context) } }
                    @for (name, value) in &task.details {
                        p { (name.replace('_', " ")) ": " (value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())) }
                    }
                } @else {
                    p.meta { "Private details (numbers, contacts, context) are shown only while you hold the claim." }
                }
                p.meta { "Proof required: " (proof_label(&task.proof_required)) " · due " time datetime=(task.deadline) { (readable_time(&task.deadline)) } }
            }
            @if holding {
                form.card method="post" action={ (action) "/submit" } enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="lat" class="geo-lat" value="";
                    input type="hidden" name="lng" class="geo-lng" value="";
                    input type="hidden" name="accuracy_m" class="geo-accuracy" value="";
                    (answer_input(&task.response_format))
                    label for="notes" { "Notes for the agent (optional)" }
                    textarea #notes name="notes" rows="3" {}
                    label for="photos" { "Photos" }
                    input #photos type="file" name="photos" accept="image/*" capture="environment" multiple;
                    p.meta.geo-status aria-live="polite" { "Your location is added when your browser shares it." }
                    @if !matches!(task.response_format, ResponseFormat::YesNo) {
                        p { button type="submit" { "Send result" } }
                    }
                }
                form method="post" action={ (action) "/release" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button.secondary type="submit" { "Give this task back" }
                }
            }
        },
    )
}

fn answer_input(format: &ResponseFormat) -> Markup {
    html! {
        @match format {
            ResponseFormat::YesNo => {
                fieldset.choices {
                    legend { "Your answer (this sends the result)" }
                    button type="submit" name="answer" value="yes" { "Yes" } " "
                    button type="submit" name="answer" value="no" { "No" }
                }
            }
            ResponseFormat::Choice { options } => {
                fieldset.choices {
                    legend { "Your answer" }
                    @for (i, option) in options.iter().enumerate() {
                        label { input type="radio" name="answer" value=(option) required[i == 0]; (option) }
                    }
                }
            }
            ResponseFormat::Rating { min, max } if max - min <= 10 => {
                fieldset.choices {
                    legend { "Your rating (" (min) " to " (max) ")" }
                    @for value in *min..=*max {
                        label { input type="radio" name="answer" value=(value) required[value == *min]; (value) }
                    }
                }
            }
            ResponseFormat::Rating { min, max } => {
                label for="answer" { "Your rating (" (min) " to " (max) ")" }
                input #answer type="number" name="answer" min=(min) max=(max) step="1" required;
            }
            ResponseFormat::Number { unit, .. } => {
                label for="answer" {
                    "Your answer"
                    @if let Some(unit) = unit { " (" (unit) ")" }
                }
                input #answer type="number" name="answer" step="any" required;
            }
            ResponseFormat::Text => {
                label for="answer" { "Your answer" }
                textarea #answer name="answer" rows="4" required {}
            }
        }
    }
}

pub(crate) fn me(
    csrf: &str,
    profile: &WorkerProfile,
    assignments: &[AssignmentView],
    partners: &[PartnershipView],
) -> Html<String> {
    layout(
        "Your work",
        Some(csrf),
        html! {
            section.card {
                p { "Earned: " span.pay { "$" (profile.earned) } }
                p { "Waiting for review: $" (profile.pending) }
                p { "Trust score: " strong { (profile.trust_score) } " / 100" }
                p {
                    "Tier: " strong { (profile.tier.name) }
                    " (tasks up to $" (format_cents(profile.tier.max_budget_cents)) ")"
                }
                @if let Some(next) = &profile.next_tier {
                    p.meta {
                        (next.points_needed) " more points reach " (next.name)
                        " (a score of " (next.min_score) ", tasks up to $"
                        (format_cents(next.max_budget_cents)) ")."
                    }
                }
                p.meta { "Approved results raise it; rejected results, given-back tasks and claims that run out lower it." }
            }
            h2 { "Agents you partner with" }
            @if partners.is_empty() {
                p { "None yet. Agents who like your work can partner with you: you then see their tasks first, sometimes with a bonus." }
            }
            @for partner in partners {
                article.card {
                    p { strong { (partner.agent_name) } " since " (readable_time(&partner.since)) }
                    @if partner.bonus_bps > 0 {
                        p.meta { "Bonus: " (format_bps(partner.bonus_bps)) " of each budget" }
                    }
                    @if let Some(notes) = &partner.notes { p.meta { (notes) } }
                    form method="post" action={ "/app/partners/" (partner.agent_id) "/leave" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Leave" }
                    }
                }
            }
            h2 { "Past assignments" }
            @if assignments.is_empty() { p { "None yet." } }
            @else {
                table {
                    thead { tr { th { "Task" } th { "Status" } th { "Pay" } } }
                    tbody {
                        @for a in assignments {
                            tr {
                                td { a href={ "/app/assignments/" (a.assignment_id) } { (kind_label(a.task.kind.as_str())) } }
                                td { (a.status.as_str().replace('_', " ")) }
                                td { "$" (format_cents(if a.paid_cents > 0 { a.paid_cents } else { a.pay_cents })) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The address a feed may show: none for an escalation, whose address is a person's.
fn public_address(offer: &OfferView) -> Option<&str> {
    match offer.kind {
        TaskKind::Escalation => None,
        _ => offer.address.as_deref(),
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "verification" => "Check a fact",
        "voice_proxy" => "Make a phone call",
        "gut_check" => "Gut check",
        "field_mission" => "Go on site",
        "escalation" => "Talk to someone who needs help",
        "vibe_read" => "Read the mood",
        "reality_check" => "Check some work",
        _ => "Task",
    }
}

fn proof_label(required: &[ProofKind]) -> String {
    if required.is_empty() {
        return "the answer only".into();
    }
    required
        .iter()
        .map(|kind| match kind {
            ProofKind::Text => "a written account",
            ProofKind::Photo => "a photo",
            ProofKind::Gps => "your location",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RFC 3339 time as a person reads it ("7 Dec 17:09 UTC"); anything else as it is.
fn readable_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%-d %b %H:%M UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

fn format_distance(metres: i64) -> String {
    if metres < 1000 {
        format!("{metres} m")
    } else {
        format!("{:.1} km", metres as f64 / 1000.0)
    }
}

/// Basis points as a percentage ("12.5%").
fn format_bps(bps: i64) -> String {
    let text = format!("{:.2}", bps as f64 / 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

fn format_cents(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_read_as_percentages() {
        assert_eq!(format_bps(1000), "10%");
        assert_eq!(format_bps(1250), "12.5%");
        assert_eq!(format_bps(5), "0.05%");
    }

    #[test]
    fn times_read_as_day_month_and_utc_clock() {
        assert_eq!(readable_time("2026-12-07T17:09:55Z"), "7 Dec 17:09 UTC");
        assert_eq!(readable_time("soon"), "soon");
    }
}
