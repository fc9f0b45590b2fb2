//! Liveness, readiness, metrics, the OpenAPI document and the landing page.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
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

pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

const INDEX: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ingot</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1d2330}
code,pre{background:#f2f4f7;border-radius:4px;padding:.1rem .3rem}pre{padding:.8rem;overflow:auto}</style></head>
<body><h1>Ingot</h1>
<p>The server is running. Send an event with a device token (<code>ingot device add probe-7</code> prints one):</p>
<pre>curl -X POST http://HOST:8080/api/v1/events \
  -H 'Authorization: Bearer &lt;device token&gt;' -H 'Content-Type: application/json' \
  -d '{"sensor": "probe1", "kind": "temperature", "value": 15.0}'</pre>
<p>Read events back with an API key (the admin key is in <code>ingot-data/admin.key</code>):</p>
<pre>curl -H "Authorization: Bearer $(cat ingot-data/admin.key)" http://HOST:8080/api/v1/events</pre>
<ul><li><a href="/api/v1/openapi.json">API reference (OpenAPI)</a></li>
<li><a href="/metrics">Prometheus metrics</a></li>
<li><a href="/readyz">Readiness</a></li></ul>
</body></html>
"#;

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
