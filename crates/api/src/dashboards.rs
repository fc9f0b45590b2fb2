//! Saved dashboards, per tenant: `GET /api/v1/dashboards`, `GET|PUT|DELETE
//! /api/v1/dashboards/{id}`.
//!
//! The server keeps a dashboard's `spec` (widgets, layout, time range) as the UI wrote it:
//! any JSON object of at most [`MAX_SPEC_BYTES`]. Readers may read; writers and admins may
//! save and delete. Every new tenant starts with the built-in "Fleet overview".

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingot_core::{ErrorKind, JsonText, TenantId, Timestamp};
use ingot_store::{Dashboard, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{checked_name, parse};
use crate::events::key_with;
use crate::{ApiError, AppState};

/// The largest dashboard spec accepted.
pub const MAX_SPEC_BYTES: usize = 256 << 10;

/// The id of the built-in dashboard.
pub const FLEET_OVERVIEW: &str = "fleet-overview";

/// The built-in dashboard's spec.
pub const FLEET_OVERVIEW_SPEC: &str = include_str!("fleet-overview.json");

/// Saves the built-in "Fleet overview" for a tenant (a new one, or an old one without it).
pub(crate) async fn create_builtin(state: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    ensure_builtin(&*state.store, tenant)
        .await
        .map_err(ApiError::from)
}

/// Saves the built-in "Fleet overview" unless the tenant already has a dashboard by that id.
pub async fn ensure_builtin(
    store: &dyn ingot_store::Store,
    tenant: TenantId,
) -> Result<(), ingot_store::StoreError> {
    if store.get_dashboard(tenant, FLEET_OVERVIEW).await?.is_some() {
        return Ok(());
    }
    let spec = JsonText::parse(FLEET_OVERVIEW_SPEC)
        .map_err(|e| ingot_store::StoreError::Backend(e.to_string()))?;
    let dashboard = Dashboard {
        tenant,
        id: FLEET_OVERVIEW.to_owned(),
        name: "Fleet overview".to_owned(),
        spec,
        updated: Timestamp::now(),
    };
    store.put_dashboard(&dashboard).await
}

fn dashboard_json(d: &Dashboard, with_spec: bool) -> Value {
    let mut out = json!({ "id": d.id, "name": d.name, "updated": d.updated.to_rfc3339() });
    if with_spec {
        out["spec"] = d.spec.to_value();
    }
    out
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let dashboards = state.store.list_dashboards(identity.tenant()).await?;
    let out: Vec<Value> = dashboards
        .iter()
        .map(|d| dashboard_json(d, false))
        .collect();
    Ok(Json(json!({ "dashboards": out })).into_response())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no dashboard `{id}`"))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let dashboard = state
        .store
        .get_dashboard(identity.tenant(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(dashboard_json(&dashboard, true)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    name: String,
    spec: Box<serde_json::value::RawValue>,
}

pub(crate) async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Writer).await?;
    checked_name("dashboard", &id)?;
    if body.len() > MAX_SPEC_BYTES {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("a dashboard is at most {MAX_SPEC_BYTES} bytes"),
        )
        .with("limit", MAX_SPEC_BYTES));
    }
    let Put { name, spec } = parse(&body)?;
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(
            ApiError::new(ErrorKind::InvalidInput, "name: 1 to 128 characters")
                .with("field", "name"),
        );
    }
    if !spec.get().trim_start().starts_with('{') {
        return Err(
            ApiError::new(ErrorKind::InvalidInput, "spec: must be a JSON object")
                .with("field", "spec"),
        );
    }
    let spec = JsonText::parse(spec.get()).map_err(|e| {
        ApiError::new(ErrorKind::InvalidInput, format!("spec: {e}")).with("field", "spec")
    })?;
    let dashboard = Dashboard {
        tenant: identity.tenant(),
        id,
        name,
        spec,
        updated: Timestamp::now(),
    };
    state.store.put_dashboard(&dashboard).await?;
    Ok(Json(dashboard_json(&dashboard, true)).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Writer).await?;
    if !state.store.delete_dashboard(identity.tenant(), &id).await? {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_dashboard_is_a_valid_spec() {
        let spec: Value = serde_json::from_str(FLEET_OVERVIEW_SPEC).unwrap_or_default();
        let widgets = spec["widgets"].as_array().cloned().unwrap_or_default();
        let types: Vec<&str> = widgets.iter().filter_map(|w| w["type"].as_str()).collect();
        for t in ["timeseries", "pie", "gauge", "map", "heatmap", "table"] {
            assert!(types.contains(&t), "{t} missing");
        }
        for w in &widgets {
            if let Some(q) = w["query"]["q"].as_str() {
                assert!(ingot_query::parse(q).is_ok(), "{q}");
            }
        }
    }
}
