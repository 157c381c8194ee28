//! Each fraud rule, triggered and not triggered, on every backend; and the AI-image detector
//! against a local fake of Sightengine that answers a high and a low score.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Multipart;
use axum::routing::post;
use axum::{Json, Router};
use humanping::input::CreateTaskBody;
use humanping::service::web::ProofPhoto;
use humanping::service::{
    Clock, Config, NewWorker, ProofInput, SightengineConfig, SubmissionInput,
};
use serde_json::{Value, json};

const START: i64 = 1_800_000_000_000;
const TASK_PLACE: (f64, f64) = (45.5088, -73.5540);

/// How a case ties the worker to the agent, if at all.
#[derive(Clone, Copy)]
enum Tie {
    None,
    SameEmail,
    OtherEmail,
    SamePublicAddress,
    SameLoopbackAddress,
    OtherPublicAddresses,
}

/// A photo: its content name, EXIF position and camera time, and its AI-image score.
type Photo = (&'static str, (f64, f64), &'static str, Option<f64>);

struct Case {
    name: &'static str,
    /// Seconds from claim to result.
    took_secs: u64,
    photo: Option<Photo>,
    tie: Tie,
    expected: &'static [&'static str],
}

/// The camera time of a photo taken now, on the manual clock.
const NOW_EXIF: &str = "now";

fn cases() -> Vec<Case> {
    let near = (45.5089, -73.5541);
    let tokyo = (35.68, 139.69);
    vec![
        Case {
            name: "a careful result",
            took_secs: 120,
            photo: Some(("a1", near, NOW_EXIF, Some(0.10))),
            tie: Tie::None,
            expected: &[],
        },
        Case {
            name: "too fast",
            took_secs: 5,
            photo: None,
            tie: Tie::None,
            expected: &["too_fast"],
        },
        Case {
            name: "just slow enough",
            took_secs: 30,
            photo: None,
            tie: Tie::None,
            expected: &[],
        },
        Case {
            name: "a photo already sent for another task",
            took_secs: 120,
            photo: Some(("a1", near, NOW_EXIF, None)),
            tie: Tie::None,
            expected: &["photo_reused"],
        },
        Case {
            name: "a photo taken far away",
            took_secs: 120,
            photo: Some(("b2", tokyo, NOW_EXIF, None)),
            tie: Tie::None,
            expected: &["photo_far"],
        },
        Case {
            name: "a photo taken years ago",
            took_secs: 120,
            photo: Some(("c3", near, "2001:01:01 12:00:00", None)),
            tie: Tie::None,
            expected: &["photo_time"],
        },
        Case {
            name: "an AI-generated photo",
            took_secs: 120,
            photo: Some(("d4", near, NOW_EXIF, Some(0.95))),
            tie: Tie::None,
            expected: &["ai_generated"],
        },
        Case {
            name: "a photo just under the AI threshold",
            took_secs: 120,
            photo: Some(("e5", near, NOW_EXIF, Some(0.79))),
            tie: Tie::None,
            expected: &[],
        },
        Case {
            name: "a worker with the agent's email",
            took_secs: 120,
            photo: None,
            tie: Tie::SameEmail,
            expected: &["tied_account"],
        },
        Case {
            name: "a worker with an email of their own",
            took_secs: 120,
            photo: None,
            tie: Tie::OtherEmail,
            expected: &[],
        },
        Case {
            name: "a worker seen at the agent's public address",
            took_secs: 120,
            photo: None,
            tie: Tie::SamePublicAddress,
            expected: &["tied_account"],
        },
        Case {
            name: "a worker on the same machine as the agent (loopback is not a tie)",
            took_secs: 120,
            photo: None,
            tie: Tie::SameLoopbackAddress,
            expected: &[],
        },
        Case {
            name: "a worker at another public address",
            took_secs: 120,
            photo: None,
            tie: Tie::OtherPublicAddresses,
            expected: &[],
        },
    ]
}

fn sightengine_config(base_url: String) -> SightengineConfig {
    let mut config = SightengineConfig::new("user-1".into(), "secret-1".into());
    config.base_url = base_url;
    config.timeout = Duration::from_secs(2);
    config
}

fn exif_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y:%m:%d %H:%M:%S")
        .to_string()
}

#[tokio::test]
async fn each_fraud_rule_fires_when_it_should_and_only_then() {
    for db in common::databases().await {
        let clock = Clock::manual(START);
        let config = Config {
            sightengine: Some(sightengine_config("http://127.0.0.1:9".into())),
            ..Config::default()
        };
        let svc = common::service_with(&db, config, clock.clone()).await;
        for (n, case) in cases().into_iter().enumerate() {
            let (agent, _) = common::funded_agent(&svc, "20").await;
            let (worker, _) = svc
                .create_worker(NewWorker {
                    name: format!("w{n}"),
                    lat: Some(TASK_PLACE.0),
                    lng: Some(TASK_PLACE.1),
                    capabilities: vec![],
                    languages: vec!["en".into()],
                })
                .await
                .unwrap();
            match case.tie {
                Tie::None => {}
                Tie::SameEmail | Tie::OtherEmail => {
                    let theirs = format!("Owner{n}@Example.com");
                    svc.set_email(agent.as_str(), Some(&theirs)).await.unwrap();
                    let mine = match case.tie {
                        Tie::SameEmail => format!(" owner{n}@example.COM "),
                        _ => format!("someone{n}@example.com"),
                    };
                    svc.set_email(worker.as_str(), Some(&mine)).await.unwrap();
                }
                Tie::SamePublicAddress => {
                    let at = format!("203.0.113.{}", 10 + n).parse().unwrap();
                    svc.note_address(agent.as_str(), at).await.unwrap();
                    svc.note_address(worker.as_str(), at).await.unwrap();
                }
                Tie::SameLoopbackAddress => {
                    let at = "127.0.0.1".parse().unwrap();
                    svc.note_address(agent.as_str(), at).await.unwrap();
                    svc.note_address(worker.as_str(), at).await.unwrap();
                }
                Tie::OtherPublicAddresses => {
                    let a = format!("198.51.100.{}", 10 + n).parse().unwrap();
                    let b = format!("198.51.100.{}", 100 + n).parse().unwrap();
                    svc.note_address(agent.as_str(), a).await.unwrap();
                    svc.note_address(worker.as_str(), b).await.unwrap();
                }
            }

            let body = json!({"kind": "verify", "question": "Is the door green?",
                "location": {"lat": TASK_PLACE.0, "lng": TASK_PLACE.1, "radius_m": 200}});
            let draft = serde_json::from_value::<CreateTaskBody>(body)
                .unwrap()
                .into_draft();
            let task = svc.create_task(&agent, draft).await.unwrap();
            let lease = svc.claim(&worker, task.task_id.as_str()).await.unwrap();
            let mut links = Vec::new();
            if let Some((name, (lat, lng), taken, score)) = case.photo {
                let taken = if taken == NOW_EXIF {
                    exif_time(clock.now_ms())
                } else {
                    taken.to_owned()
                };
                let photo = ProofPhoto {
                    sha256: name.repeat(32),
                    content_type: "image/jpeg".into(),
                    size_bytes: 2048,
                    exif_lat: Some(lat),
                    exif_lng: Some(lng),
                    exif_taken_at: Some(taken),
                };
                svc.record_proof_photo(&worker, &lease, &photo, score)
                    .await
                    .unwrap();
                links.push(format!(
                    "/v1/tasks/{}/proofs/{}",
                    task.task_id, photo.sha256
                ));
            }
            clock.advance(Duration::from_secs(case.took_secs));
            let input = SubmissionInput {
                answer: Some("yes".into()),
                structured: None,
                notes: None,
                proof: (!links.is_empty()).then_some(ProofInput {
                    text: None,
                    lat: None,
                    lng: None,
                    accuracy_m: None,
                    photo_urls: Some(links),
                }),
            };
            svc.submit(&worker, lease.assignment_id.as_str(), input)
                .await
                .unwrap();
            let view = svc.get_task(&agent, task.task_id.as_str()).await.unwrap();
            let mut rules: Vec<String> = view.results[0]
                .flags
                .iter()
                .map(|f| f.rule.clone())
                .collect();
            rules.sort();
            assert_eq!(rules, case.expected, "{} on {}", case.name, db.name);
            for flag in &view.results[0].flags {
                assert!(!flag.detail.is_empty(), "{}: a flag says why", case.name);
            }

            // A flagged result waits for the agent; a clean one is approved after the window.
            clock.advance(Duration::from_secs(73 * 3600));
            let later = svc.get_task(&agent, task.task_id.as_str()).await.unwrap();
            let approved = later.status.as_str() == "approved";
            assert_eq!(approved, case.expected.is_empty(), "{}", case.name);
        }
        common::assert_books_balanced(&svc).await;
    }
}

/// A stand-in for Sightengine's `check.json`: it checks the credentials and the model, and
/// scores an image holding the bytes "AI" high and any other low.
async fn fake_check(mut form: Multipart) -> Json<Value> {
    let (mut user, mut secret, mut models, mut media) = (None, None, None, None);
    while let Some(field) = form.next_field().await.unwrap() {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.unwrap();
        match name.as_str() {
            "api_user" => user = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "api_secret" => secret = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "models" => models = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "media" => media = Some(bytes.to_vec()),
            _ => {}
        }
    }
    if user.as_deref() != Some("user-1") || secret.as_deref() != Some("secret-1") {
        return Json(json!({"status": "failure",
            "error": {"type": "credentials_error", "code": 1, "message": "Incorrect API user or secret"}}));
    }
    if models.as_deref() != Some("genai") {
        return Json(json!({"status": "failure",
            "error": {"type": "argument_error", "code": 21, "message": "unknown model"}}));
    }
    let media = media.unwrap_or_default();
    let score = if media.windows(2).any(|w| w == b"AI") {
        0.97
    } else {
        0.03
    };
    Json(json!({"status": "success", "request": {"id": "req_1"},
        "type": {"ai_generated": score}, "media": {"id": "med_1"}}))
}

/// A fake that never answers, to prove the timeout.
async fn hang() -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Json(json!({}))
}

async fn start_fake() -> SocketAddr {
    let app = Router::new()
        .route("/1.0/check.json", post(fake_check))
        .route("/slow/1.0/check.json", post(hang));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_ai_image_detector_is_asked_with_a_timeout_and_its_failures_flag_nothing() {
    let fake = start_fake().await;
    let db = common::sqlite_database();
    let with = |config: Option<SightengineConfig>| Config {
        sightengine: config,
        ..Config::default()
    };
    let jpeg_ai = b"\xff\xd8\xff\xe0 made by AI \xff\xd9".to_vec();
    let jpeg_camera = b"\xff\xd8\xff\xe0 a real door \xff\xd9".to_vec();

    let svc = common::service_with(
        &db,
        with(Some(sightengine_config(format!("http://{fake}")))),
        Clock::system(),
    )
    .await;
    assert_eq!(svc.ai_image_score(&jpeg_ai, "image/jpeg").await, Some(0.97));
    assert_eq!(
        svc.ai_image_score(&jpeg_camera, "image/jpeg").await,
        Some(0.03)
    );

    // Wrong credentials: Sightengine's failure answer gives no score.
    let mut wrong = sightengine_config(format!("http://{fake}"));
    wrong.api_secret = "nope".into();
    let svc = common::service_with(&db, with(Some(wrong)), Clock::system()).await;
    assert_eq!(svc.ai_image_score(&jpeg_ai, "image/jpeg").await, None);

    // A detector that does not answer in time gives no score, within the timeout.
    let mut slow = sightengine_config(format!("http://{fake}/slow"));
    slow.timeout = Duration::from_millis(300);
    let svc = common::service_with(&db, with(Some(slow)), Clock::system()).await;
    let started = std::time::Instant::now();
    assert_eq!(svc.ai_image_score(&jpeg_ai, "image/jpeg").await, None);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Not configured: nothing is asked.
    let svc = common::service_with(&db, with(None), Clock::system()).await;
    assert_eq!(svc.ai_image_score(&jpeg_ai, "image/jpeg").await, None);
}
