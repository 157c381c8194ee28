//! The OpenAPI document at `/openapi.json`: valid JSON in OpenAPI 3.1, every `/v1` route the
//! code mounts is in it, every route in it is mounted, every reference resolves, and it states
//! the API's conventions (keys, the error shape, `Idempotency-Key`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

/// The paths given to `.route(…)` anywhere under `src/`, read from the source: a route added
/// later is checked without this test changing.
fn mounted_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            for (at, _) in text.match_indices(".route(") {
                let rest = text[at + ".route(".len()..].trim_start();
                let Some(literal) = rest.strip_prefix('"') else {
                    continue;
                };
                let route = &literal[..literal.find('"').expect("a closed string")];
                paths.insert(route.to_owned());
            }
        }
    }
    paths
}

async fn document(base: &str) -> Value {
    let response = common::server::http_client()
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let text = response.text().await.expect("the document");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/openapi.json is not JSON: {e}"))
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => found.push(reference),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_mounted_route() {
    let db = common::sqlite_database();
    let svc = common::service(&db).await;
    let api = common::server::serve_in_process(&svc).await;
    let doc = document(&api.base).await;

    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1"), "{version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");

    let mounted = mounted_paths();
    let v1: Vec<&String> = mounted.iter().filter(|p| p.starts_with("/v1/")).collect();
    assert!(
        v1.len() >= 15,
        "too few /v1 routes found in the source: {v1:?}"
    );
    let missing: Vec<&&String> = v1
        .iter()
        .filter(|p| !paths.contains_key(p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "mounted /v1 routes missing from the document: {missing:?}"
    );
    for route in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(paths.contains_key(route), "{route} is not in the document");
    }

    // Every reference resolves.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut found = Vec::new();
    references(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {reference}"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }

    // The conventions: both ways to send a key, the error shape, Idempotency-Key.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert!(schemas["Error"]["properties"]["error"].is_object());
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"]["default"].is_object(),
                "{method} {path} has no error response"
            );
            if path.starts_with("/v1/") && path != "/v1/stripe/webhook" {
                assert!(
                    operation["security"]
                        .as_array()
                        .is_some_and(|s| !s.is_empty()),
                    "{method} {path} does not say which key it needs"
                );
            }
        }
    }
    for (method, path) in [
        ("post", "/v1/tasks"),
        ("post", "/v1/tasks/{id}/approve"),
        ("post", "/v1/tasks/{id}/dispute"),
        ("post", "/v1/tasks/{id}/cancel"),
    ] {
        let parameters = paths[path][method]["parameters"].as_array().unwrap();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{method} {path} does not document Idempotency-Key"
        );
    }
    // The task body names every kind, by its kind and by its tool name.
    let body = serde_json::to_string(&schemas["CreateTaskBody"]).unwrap();
    for kind in [
        "verification",
        "verify",
        "voice_proxy",
        "call",
        "field_mission",
        "vibe",
    ] {
        assert!(body.contains(&format!("\"{kind}\"")), "no {kind} in {body}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_mounted() {
    let db = common::sqlite_database();
    let svc = common::service(&db).await;
    let (_, key) = common::funded_agent(&svc, "5").await;
    let api = common::server::serve_in_process(&svc).await;
    let doc = document(&api.base).await;
    let client = common::server::http_client();

    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|part| if part.starts_with('{') { "x" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client
                .request(method.clone(), format!("{}{concrete}", api.base))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("the server answers");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {text}"
            );
            assert!(
                !text.contains("there is no"),
                "{method} {path} is documented but not mounted: {status} {text}"
            );
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {text}"
            );
        }
    }
}
