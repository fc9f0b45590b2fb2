//! Liveness, readiness, metrics, the OpenAPI document and the JSON 404.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ingot_core::ErrorKind;
use serde_json::json;

use crate::{ApiError, AppState};

/// The OpenAPI document, kept beside the code and checked against the routes by a test.
pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

pub(crate) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "starting or draining" })),
        )
            .into_response()
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("encoding metrics failed: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    /// Every route the router serves is documented, with the same methods.
    #[test]
    fn openapi_documents_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        // The router's text without whitespace, cut at each `.route(`.
        let lib: String = include_str!("lib.rs")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let router = lib.split(".fallback(").next().unwrap();
        let mut routes = 0;
        for chunk in router.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            let documented = &doc["paths"][path];
            assert!(documented.is_object(), "{path} is not in openapi.json");
            for method in ["get", "post", "delete", "patch"] {
                let served = chunk.contains(&format!(",{method}("))
                    || chunk.contains(&format!(".{method}("));
                assert_eq!(documented.get(method).is_some(), served, "{method} {path}");
            }
            routes += 1;
        }
        assert_eq!(routes, doc["paths"].as_object().unwrap().len());
    }
}
