//! Proof photos: checked by their first bytes, stored content-addressed (the SHA-256 hex of the
//! file is its name), their EXIF GPS position and time read, and served to the task's agent.

use std::io::Cursor;
use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::auth::sha256_hex;
use crate::http::auth::presented_key;
use crate::http::error::ApiError;
use crate::service::web::ProofPhoto;

/// The image types a worker may upload, known by their first bytes.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Reads what the photo's EXIF data says about where and when it was taken.
pub(crate) fn read_exif(bytes: &[u8]) -> (Option<(f64, f64)>, Option<String>) {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) else {
        return (None, None);
    };
    let degrees = |tag, reference, negative: &str| -> Option<f64> {
        let field = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Rational(parts) = &field.value else {
            return None;
        };
        let mut value = 0.0;
        for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
            value += part.to_f64() / scale;
        }
        let sign = exif
            .get_field(reference, exif::In::PRIMARY)
            .map(|f| f.display_value().to_string())
            .filter(|r| r.trim().eq_ignore_ascii_case(negative))
            .map_or(1.0, |_| -1.0);
        value.is_finite().then_some(sign * value)
    };
    let lat = degrees(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, "S");
    let lng = degrees(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, "W");
    let position = lat
        .zip(lng)
        .filter(|(lat, lng)| lat.abs() <= 90.0 && lng.abs() <= 180.0);
    let taken = [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .into_iter()
        .find_map(|tag| exif.get_field(tag, exif::In::PRIMARY))
        .map(|f| f.display_value().to_string());
    (position, taken)
}

/// Checks an uploaded photo, stores it under its hash in `folder` (once), and describes it.
pub(crate) async fn store(folder: &Path, bytes: Vec<u8>) -> Result<ProofPhoto, String> {
    let content_type = sniff(&bytes)
        .ok_or("a photo must be a JPEG, PNG or WebP image; this file is none of them")?;
    let sha256 = sha256_hex(&bytes);
    let (position, taken) = read_exif(&bytes);
    let photo = ProofPhoto {
        sha256: sha256.clone(),
        content_type: content_type.to_owned(),
        size_bytes: bytes.len() as i64,
        exif_lat: position.map(|p| p.0),
        exif_lng: position.map(|p| p.1),
        exif_taken_at: taken,
    };
    let folder = folder.to_owned();
    tokio::task::spawn_blocking(move || write_once(&folder, &sha256, &bytes))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|error| {
            tracing::error!(%error, "could not store a proof photo");
            "the photo could not be saved on our side; try again in a moment".to_owned()
        })?;
    Ok(photo)
}

/// Writes the file unless a file of that name (hence those bytes) is already there; a
/// temporary name and a rename keep a half-written file from ever carrying the final name.
fn write_once(folder: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let target = folder.join(name);
    if target.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let temporary = folder.join(format!(".{name}.{}", crate::domain::ids::random_token(6)));
    std::fs::write(&temporary, bytes).map_err(|e| format!("{}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &target).map_err(|e| format!("{}: {e}", target.display()))
}

/// `GET /v1/tasks/{id}/proofs/{sha256}`: a proof photo, for the agent that owns the task only;
/// anyone else gets 404.
pub(crate) async fn fetch(
    State(state): State<WebState>,
    UrlPath((task_id, sha256)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let key = match presented_key(&headers) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    let agent = match state.service.authenticate_agent(key).await {
        Ok(agent) => agent,
        // An unknown key is 401, another role's key 403, as on every route.
        Err(e) => return ApiError::from(e).into_response(),
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such proof photo among your tasks",
        )
        .into_response()
    };
    let well_formed = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return not_found();
    }
    let photo = match state
        .service
        .proof_photo_for_agent(&agent, &task_id, &sha256)
        .await
    {
        Ok(Some(photo)) => photo,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "could not look up a proof photo");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; try again",
            )
            .into_response();
        }
    };
    let path = state.settings.proof_dir.join(&photo.sha256);
    let bytes = match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => bytes,
        _ => return not_found(),
    };
    let mut response = bytes.into_response();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&photo.content_type) {
        out.insert(CONTENT_TYPE, value);
    }
    out.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    if let (Some(lat), Some(lng)) = (photo.exif_lat, photo.exif_lng)
        && let Ok(value) = HeaderValue::from_str(&format!("{lat:.6},{lng:.6}"))
    {
        out.insert("x-humanping-exif-gps", value);
    }
    if let Some(value) = photo
        .exif_taken_at
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        out.insert("x-humanping-exif-time", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_are_known_by_their_first_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<svg"), None);
    }
}
