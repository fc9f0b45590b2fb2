//! Serving a part of the API: the route groups of `ingot serve --roles`.
//!
//! In scale-out, ingest replicas and query replicas are separate deployments behind
//! separate services, so each answers only its part: an ingest replica takes
//! `POST /api/v1/events`, a query replica everything else (listing, series, admin, the
//! UI, the OpenAPI document), and every replica answers `/healthz`, `/readyz` and
//! `/metrics` for its orchestrator. A request for a part the replica does not serve gets
//! a 404 that says which role serves it.
//!
//! The split is a filter in front of the one [`router`](crate::router) rather than a
//! second router: the routes stay declared once, and a route added later falls in the
//! query group unless it is the ingest route.

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ingot_core::ErrorKind;

use crate::{ApiDeps, ApiError, router};

/// Which route groups a replica serves; health, readiness and metrics are always served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// `POST /api/v1/events` (the `ingest` role).
    pub ingest: bool,
    /// Everything else under `/api/v1/`, and the UI (the `query` role).
    pub query: bool,
}

impl Routes {
    /// Every route (one server doing everything).
    pub const ALL: Routes = Routes {
        ingest: true,
        query: true,
    };
}

/// The API's routes, restricted to `routes`.
pub fn router_for(deps: ApiDeps, routes: Routes) -> Router {
    let full = router(deps);
    if routes == Routes::ALL {
        return full;
    }
    full.layer(middleware::from_fn(move |request: Request, next: Next| {
        filter(routes, request, next)
    }))
}

/// The group a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Always,
    Ingest,
    Query,
}

fn group(method: &Method, path: &str) -> Group {
    match path {
        "/healthz" | "/readyz" | "/metrics" => Group::Always,
        "/api/v1/events" | "/api/v1/events/" if method == Method::POST => Group::Ingest,
        _ => Group::Query,
    }
}

async fn filter(routes: Routes, request: Request, next: Next) -> Response {
    let served = match group(request.method(), request.uri().path()) {
        Group::Always => true,
        Group::Ingest => routes.ingest,
        Group::Query => routes.query,
    };
    if served {
        return next.run(request).await;
    }
    let role = match group(request.method(), request.uri().path()) {
        Group::Ingest => "ingest",
        _ => "query",
    };
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "this replica does not serve {} {}: replicas with the `{role}` role do (ingot serve --roles)",
            request.method(),
            request.uri().path()
        ),
    )
    .with("role", role)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_in_the_documented_groups() {
        assert_eq!(group(&Method::POST, "/api/v1/events"), Group::Ingest);
        assert_eq!(group(&Method::GET, "/api/v1/events"), Group::Query);
        assert_eq!(group(&Method::GET, "/api/v1/events/01H"), Group::Query);
        assert_eq!(group(&Method::POST, "/api/v1/devices"), Group::Query);
        assert_eq!(group(&Method::GET, "/"), Group::Query);
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(group(&Method::GET, path), Group::Always);
        }
    }
}
