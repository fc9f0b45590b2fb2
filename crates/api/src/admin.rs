//! Devices, API keys and tenants.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingot_auth::{SecretKind, generate_key_id, generate_secret, hash_secret};
use ingot_core::{ErrorKind, name};
use ingot_store::Role;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::events::key_with;
use crate::{ApiError, AppState};

/// Parses a small JSON request body, naming what is wrong with it.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("invalid request body: {e}"),
        )
        .with("line", e.line())
        .with("column", e.column())
    })
}

fn checked_name(what: &str, text: &str) -> Result<(), ApiError> {
    name::validate(text).map_err(|r| {
        ApiError::new(ErrorKind::InvalidInput, format!("{what} name `{text}` {r}"))
            .with("field", "name")
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

pub(crate) async fn create_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let NameBody { name } = parse(&body)?;
    checked_name("device", &name)?;
    let token = generate_secret(SecretKind::DeviceToken);
    let device = state
        .store
        .create_device(identity.tenant(), &name, &hash_secret(&token))
        .await?;
    tracing::info!(tenant = %identity.tenant(), device = %device.name, "device registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "device": device.name, "token": token })),
    )
        .into_response())
}

pub(crate) async fn delete_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    if !state.store.delete_device(identity.tenant(), &name).await? {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no device `{name}`"),
        ));
    }
    state.auth.forget_device(identity.tenant(), &name);
    tracing::info!(tenant = %identity.tenant(), device = %name, "device removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    role: String,
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let KeyBody { role } = parse(&body)?;
    let role = match Role::parse(&role) {
        Some(role @ (Role::Reader | Role::Writer | Role::Admin)) => role,
        _ => {
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                format!("role `{role}` is not one of reader, writer, admin"),
            )
            .with("field", "role"));
        }
    };
    let key = generate_secret(SecretKind::ApiKey);
    let id = generate_key_id();
    state
        .store
        .create_api_key(identity.tenant(), &id, role, &hash_secret(&key))
        .await?;
    tracing::info!(tenant = %identity.tenant(), key = %id, role = role.as_str(), "API key created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "key": key, "role": role.as_str() })),
    )
        .into_response())
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    if !state.store.revoke_api_key(identity.tenant(), &id).await? {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no live API key `{id}`"),
        ));
    }
    state.auth.forget_key(identity.tenant(), &id);
    tracing::info!(tenant = %identity.tenant(), key = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    key_with(&state, &headers, Role::System).await?;
    let NameBody { name } = parse(&body)?;
    checked_name("tenant", &name)?;
    let tenant = state.store.create_tenant(&name).await?;
    let key = generate_secret(SecretKind::ApiKey);
    let id = generate_key_id();
    state
        .store
        .create_api_key(tenant.id, &id, Role::Admin, &hash_secret(&key))
        .await?;
    tracing::info!(tenant = %tenant.name, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tenant": tenant.name, "id": id, "key": key, "role": "admin" })),
    )
        .into_response())
}

fn tenant_json(tenant: &ingot_store::Tenant) -> serde_json::Value {
    json!({
        "name": tenant.name,
        "created": tenant.created.to_rfc3339(),
        "retention": tenant.retention.map(ingot_core::time::format_duration),
    })
}

/// The tenants this key may see: every one for a system key, its own for the others.
async fn visible_tenants(
    state: &AppState,
    identity: &ingot_auth::Identity,
) -> Result<Vec<ingot_store::Tenant>, ApiError> {
    let tenants = state.store.list_tenants().await?;
    Ok(if identity.role() == Some(Role::System) {
        tenants
    } else {
        tenants
            .into_iter()
            .filter(|t| t.id == identity.tenant())
            .collect()
    })
}

pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let tenants = visible_tenants(&state, &identity).await?;
    Ok(
        Json(json!({ "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>() }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPatch {
    /// `"30d"`, or `null` for the server's default.
    retention: Option<String>,
}

pub(crate) async fn update_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let TenantPatch { retention } = parse(&body)?;
    let retention = match retention {
        None => None,
        Some(text) => {
            let d = ingot_core::time::parse_duration(&text).map_err(|e| {
                ApiError::new(ErrorKind::InvalidInput, format!("retention: {e}"))
                    .with("field", "retention")
            })?;
            if d < std::time::Duration::from_secs(3600) {
                return Err(ApiError::new(
                    ErrorKind::InvalidInput,
                    "retention: keep events at least 1h",
                )
                .with("field", "retention"));
            }
            Some(d)
        }
    };
    // Another tenant's name is answered like a missing one: its existence is not disclosed.
    let tenant = visible_tenants(&state, &identity)
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no tenant `{name}`")))?;
    state
        .store
        .set_tenant_retention(tenant.id, retention)
        .await?;
    let updated = ingot_store::Tenant {
        retention,
        ..tenant
    };
    tracing::info!(tenant = %updated.name, retention = ?retention, "tenant retention set");
    Ok(Json(tenant_json(&updated)).into_response())
}
