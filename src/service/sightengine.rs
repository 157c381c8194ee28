//! AI-generated image detection through Sightengine's `genai` model, when an API user and
//! secret are configured. The base URL is configuration too, so tests point it at a local fake.
//!
//! A photo is checked once, when it is uploaded, outside any database transaction; its score
//! (0 to 1) is stored with the photo, and a score at or above the threshold flags the result
//! it is sent with. When the service cannot be reached or answers with an error, the photo
//! keeps no score and nothing is flagged: the check is a help to the agent, not a gate.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use super::HumanPing;

/// How to reach Sightengine.
#[derive(Clone, Debug)]
pub struct SightengineConfig {
    pub api_user: String,
    pub api_secret: String,
    /// Where the API lives, `https://api.sightengine.com` in production.
    pub base_url: String,
    /// A score from this up (0 to 1) flags the photo as AI-generated.
    pub threshold: f64,
    /// How long one check may take.
    pub timeout: Duration,
}

impl SightengineConfig {
    /// Sightengine's production API, a threshold of 0.8 and a 10-second timeout.
    pub fn new(api_user: String, api_secret: String) -> SightengineConfig {
        SightengineConfig {
            api_user,
            api_secret,
            base_url: "https://api.sightengine.com".into(),
            threshold: 0.8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The part of Sightengine's answer we read.
#[derive(Deserialize)]
struct CheckAnswer {
    status: String,
    #[serde(default, rename = "type")]
    kind: Option<TypeScores>,
    #[serde(default)]
    error: Option<ErrorAnswer>,
}

#[derive(Deserialize)]
struct TypeScores {
    ai_generated: Option<f64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    message: String,
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

impl HumanPing {
    /// The likelihood that an image is AI-generated, from Sightengine; `None` when no detector
    /// is configured or it did not answer (logged).
    pub async fn ai_image_score(&self, bytes: &[u8], content_type: &str) -> Option<f64> {
        let config = self.config.sightengine.as_ref()?;
        match ask(config, bytes, content_type).await {
            Ok(score) => Some(score),
            Err(error) => {
                tracing::warn!(%error, "AI-image check failed; the photo is kept unchecked");
                None
            }
        }
    }
}

async fn ask(config: &SightengineConfig, bytes: &[u8], content_type: &str) -> Result<f64, String> {
    let file = reqwest::multipart::Part::bytes(bytes.to_vec())
        .file_name("proof")
        .mime_str(content_type)
        .map_err(|e| format!("bad content type: {e}"))?;
    let form = reqwest::multipart::Form::new()
        .text("models", "genai")
        .text("api_user", config.api_user.clone())
        .text("api_secret", config.api_secret.clone())
        .part("media", file);
    let url = format!("{}/1.0/check.json", config.base_url.trim_end_matches('/'));
    let response = client()
        .post(&url)
        .multipart(form)
        .timeout(config.timeout)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer failed: {}", e.without_url()))?;
    let answer: CheckAnswer = serde_json::from_slice(&body)
        .map_err(|e| format!("HTTP {status}, answer not understood: {e}"))?;
    if answer.status != "success" {
        let message = answer.error.map(|e| e.message).unwrap_or_default();
        return Err(format!("HTTP {status}, {}: {message}", answer.status));
    }
    answer
        .kind
        .and_then(|k| k.ai_generated)
        .filter(|score| (0.0..=1.0).contains(score))
        .ok_or_else(|| format!("HTTP {status}, the answer has no ai_generated score in 0..1"))
}
