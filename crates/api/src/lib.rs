//! Ingot's HTTP API (default port 8080): event ingest and listing, admin, health, metrics.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/v1/events` | device token, writer+ key, anyone with `--allow-anonymous` | ingest JSON, a JSON array, NDJSON, or a binary body |
//! | `GET /api/v1/events` | reader+ key | newest-first listing with filters and a cursor |
//! | `GET /api/v1/events/{id}` | reader+ key | one event |
//! | `GET /api/v1/events/{id}/payload` | reader+ key | an event's binary payload |
//! | `GET /api/v1/series` | reader+ key | aggregations per time bucket, grouped |
//! | `GET /api/v1/geo` | reader+ key | events counted per latitude/longitude cell (heat maps) |
//! | `GET /api/v1/whoami` | reader+ key | the key's tenant, role and id |
//! | `POST /api/v1/devices`, `DELETE /api/v1/devices/{name}` | admin key | register / remove a device |
//! | `POST /api/v1/keys`, `DELETE /api/v1/keys/{id}` | admin key | create / revoke API keys |
//! | `POST /api/v1/tenants` | system key | create a tenant with its first admin key |
//! | `GET /api/v1/tenants`, `PATCH /api/v1/tenants/{name}` | admin key (own tenant), system key (all) | list tenants, set retention |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | anyone | liveness, readiness, Prometheus |
//! | `GET /api/v1/openapi.json` | anyone | this API as OpenAPI 3.1 |
//! | `GET /`, `/discover`, `/series`, `/dashboards/…`, `/devices/…`, `/assets/…` | anyone (the UI signs in with an API key) | the web UI, embedded ([`ui`](crate::ui)) |
//!
//! Handlers only translate HTTP: ingest rules live in `ingot-ingest`, credentials in
//! `ingot-auth`, storage behind `ingot-store`'s traits. Every error is JSON,
//! `{"error": {"code", "message", ...where}}`, with the status chosen from the error's
//! [`ErrorKind`](ingot_core::ErrorKind).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use ingot_auth::Authenticator;
use ingot_ingest::Ingest;
use ingot_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

mod admin;
pub mod dashboards;
mod error;
mod events;
mod geo;
mod ops;
mod roles;
mod series;
pub mod server;
mod ui;
mod whoami;

pub use server::ServeOptions;

pub use error::ApiError;
pub use roles::{Routes, router_for};

/// What the API needs from the rest of the server.
#[derive(Debug, Clone)]
pub struct ApiDeps {
    /// The ingest service.
    pub ingest: Arc<Ingest>,
    /// Events and registry.
    pub store: Arc<dyn Store>,
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// Everything `/metrics` shows (complete before the API starts).
    pub registry: Arc<Registry>,
    /// What `/readyz` answers; the server clears it when it starts draining.
    pub ready: Arc<AtomicBool>,
    /// The HTTP metrics, registered in `registry`.
    pub metrics: HttpMetrics,
}

type AppState = Arc<ApiDeps>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Request counters and latency histograms, by route.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RouteLabels, Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.5, 14))
            }),
        }
    }
}

impl HttpMetrics {
    /// Registers `ingot_http_requests_total` and `ingot_http_request_seconds`.
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics::default();
        registry.register(
            "ingot_http_requests",
            "HTTP requests by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "ingot_http_request_seconds",
            "HTTP request latency by route, in seconds",
            m.seconds.clone(),
        );
        m
    }
}

/// The API's routes.
pub fn router(deps: ApiDeps) -> Router {
    let state: AppState = Arc::new(deps);
    Router::new()
        .route("/", get(ui::index))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(ops::openapi))
        .route("/api/v1/events", post(events::ingest).get(events::list))
        .route("/api/v1/events/{id}", get(events::get_one))
        .route("/api/v1/events/{id}/payload", get(events::payload))
        .route("/api/v1/series", get(series::series))
        .route("/api/v1/geo", get(geo::geo))
        .route("/api/v1/whoami", get(whoami::whoami))
        .route(
            "/api/v1/devices",
            post(admin::create_device).get(admin::list_devices),
        )
        .route(
            "/api/v1/devices/{name}",
            get(admin::get_device)
                .patch(admin::update_device)
                .delete(admin::delete_device),
        )
        .route("/api/v1/devices/{name}/rotate", post(admin::rotate_device))
        .route(
            "/api/v1/keys",
            post(admin::create_key).get(admin::list_keys),
        )
        .route("/api/v1/keys/{id}", delete(admin::revoke_key))
        .route(
            "/api/v1/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route(
            "/api/v1/tenants/{name}",
            patch(admin::update_tenant).delete(admin::delete_tenant),
        )
        .route("/api/v1/dashboards", get(dashboards::list))
        .route(
            "/api/v1/dashboards/{id}",
            get(dashboards::get)
                .put(dashboards::put)
                .delete(dashboards::delete),
        )
        .fallback(ui::fallback)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .seconds
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Serves `router` on `listener` as plain HTTP with the default timeouts until `shutdown`
/// resolves, then lets in-flight requests finish (see [`server`] for TLS and timeouts).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router, ServeOptions::default(), shutdown).await
}

/// Marks the server ready or not for `/readyz`.
pub fn set_ready(flag: &AtomicBool, ready: bool) {
    flag.store(ready, Ordering::SeqCst);
}
