//! Tenants, devices and API keys.
//!
//! Who may do what: a reader key reads (devices included), an admin key manages its own
//! tenant's devices and keys and its retention, a system key manages tenants. Another
//! tenant's names are answered like missing ones, so nothing of another tenant leaks.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ingot_auth::{Identity, SecretKind, generate_key_id, generate_secret, hash_secret};
use ingot_core::time::{format_duration, parse_duration};
use ingot_core::{ErrorKind, Timestamp, name};
use ingot_store::{ApiKey, Device, DeviceUpdate, Role, Tenant};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::events::key_with;
use crate::{ApiError, AppState};

/// Parses a small JSON request body, naming what is wrong with it.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("invalid request body: {e}"),
        )
        .with("line", e.line())
        .with("column", e.column())
    })
}

pub(crate) fn checked_name(what: &str, text: &str) -> Result<(), ApiError> {
    name::validate(text).map_err(|r| {
        ApiError::new(ErrorKind::InvalidInput, format!("{what} name `{text}` {r}"))
            .with("field", "name")
    })
}

fn field_error(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, format!("{field}: {message}")).with("field", field)
}

/// A duration (`30d`) or an instant (RFC 3339) for `field`, as an instant.
fn instant_or_duration(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(d) = parse_duration(text) {
        return Ok(Timestamp::now()
            .saturating_add_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)));
    }
    Timestamp::parse_rfc3339(text).map_err(|_| {
        field_error(
            field,
            format!("`{text}` is neither a duration like 30d nor an RFC 3339 time"),
        )
    })
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > 32 {
        return Err(field_error("labels", "at most 32 labels"));
    }
    for (key, value) in labels {
        name::validate(key).map_err(|r| field_error("labels", format!("key `{key}` {r}")))?;
        if value.len() > 256 {
            return Err(field_error(
                "labels",
                format!("the value of `{key}` is longer than 256 bytes"),
            ));
        }
    }
    Ok(())
}

fn device_json(device: &Device, activity: Option<(u64, Timestamp)>) -> Value {
    let mut out = json!({
        "device": device.name,
        "enabled": device.enabled,
        "labels": device.labels,
        "created": device.created.to_rfc3339(),
        "last_seen": device.last_seen.map(Timestamp::to_rfc3339),
    });
    if let Some(until) = device
        .previous_token_until
        .filter(|&until| until > Timestamp::now())
    {
        out["previous_token_valid_until"] = Value::String(until.to_rfc3339());
    }
    if let Some((events, newest)) = activity {
        out["events_last_hour"] = json!(events);
        out["events_per_minute"] = json!((events as f64 / 60.0 * 100.0).round() / 100.0);
        out["last_event"] = json!(newest.to_rfc3339());
    }
    out
}

fn no_device(name: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no device `{name}`"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDevice {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub(crate) async fn create_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let NewDevice { name, labels } = parse(&body)?;
    checked_name("device", &name)?;
    check_labels(&labels)?;
    let token = generate_secret(SecretKind::DeviceToken);
    let tenant = identity.tenant();
    let mut device = state
        .store
        .create_device(tenant, &name, &hash_secret(&token))
        .await?;
    if !labels.is_empty() {
        let update = DeviceUpdate {
            enabled: None,
            labels: Some(labels),
        };
        device = state
            .store
            .update_device(tenant, &name, &update)
            .await?
            .unwrap_or(device);
    }
    tracing::info!(tenant = %tenant, device = %device.name, "device registered");
    let mut out = device_json(&device, None);
    out["token"] = Value::String(token);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// The activity window of the devices list.
const ACTIVITY_WINDOW: Duration = Duration::from_secs(3600);

pub(crate) async fn list_devices(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let tenant = identity.tenant();
    let devices = state.store.list_devices(tenant).await?;
    let now = Timestamp::now();
    let from = now.saturating_add_micros(-(ACTIVITY_WINDOW.as_micros() as i64));
    let activity: BTreeMap<String, (u64, Timestamp)> = state
        .store
        .device_activity(tenant, from, now.saturating_add_micros(1))
        .await?
        .into_iter()
        .map(|(name, n, newest)| (name, (n, newest)))
        .collect();
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            device_json(
                d,
                Some(activity.get(&d.name).copied().unwrap_or((0, d.created))),
            )
        })
        .map(|mut v| {
            if v["events_last_hour"] == 0 {
                v["last_event"] = Value::Null;
            }
            v
        })
        .collect();
    Ok(Json(json!({ "devices": devices })).into_response())
}

pub(crate) async fn get_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let tenant = identity.tenant();
    let device = state
        .store
        .get_device(tenant, &name)
        .await?
        .ok_or_else(|| no_device(&name))?;
    let now = Timestamp::now();
    let from = now.saturating_add_micros(-(ACTIVITY_WINDOW.as_micros() as i64));
    let activity = state
        .store
        .device_activity(tenant, from, now.saturating_add_micros(1))
        .await?
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, count, newest)| (count, newest));
    let mut out = device_json(&device, Some(activity.unwrap_or((0, device.created))));
    if activity.is_none() {
        out["last_event"] = Value::Null;
    }
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicePatch {
    enabled: Option<bool>,
    labels: Option<BTreeMap<String, String>>,
}

pub(crate) async fn update_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let DevicePatch { enabled, labels } = parse(&body)?;
    if let Some(labels) = &labels {
        check_labels(labels)?;
    }
    let tenant = identity.tenant();
    let device = state
        .store
        .update_device(tenant, &name, &DeviceUpdate { enabled, labels })
        .await?
        .ok_or_else(|| no_device(&name))?;
    state.auth.forget_device(tenant, &name);
    tracing::info!(tenant = %tenant, device = %name, enabled = device.enabled, "device updated");
    Ok(Json(device_json(&device, None)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the current token keeps working (`1h`, the default).
    grace: Option<String>,
}

/// The longest rotation grace accepted.
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

pub(crate) async fn rotate_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let Rotate { grace } = if body.is_empty() {
        Rotate::default()
    } else {
        parse(&body)?
    };
    let grace = match grace {
        Some(text) => parse_duration(&text).map_err(|e| field_error("grace", e))?,
        None => Duration::from_secs(3600),
    };
    if grace > MAX_GRACE {
        return Err(field_error("grace", "at most 30d"));
    }
    let tenant = identity.tenant();
    let token = generate_secret(SecretKind::DeviceToken);
    let until = Timestamp::now().saturating_add_micros(grace.as_micros() as i64);
    if !state
        .store
        .rotate_device_token(tenant, &name, &hash_secret(&token), until)
        .await?
    {
        return Err(no_device(&name));
    }
    // The old token keeps working until `until`; cached lookups of it are dropped so the
    // registry's answer (which knows the deadline) is asked again.
    state.auth.forget_device(tenant, &name);
    tracing::info!(tenant = %tenant, device = %name, grace = %format_duration(grace), "device token rotated");
    let out =
        json!({ "device": name, "token": token, "previous_token_valid_until": until.to_rfc3339() });
    Ok(Json(out).into_response())
}

pub(crate) async fn delete_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    if !state.store.delete_device(identity.tenant(), &name).await? {
        return Err(no_device(&name));
    }
    state.auth.forget_device(identity.tenant(), &name);
    tracing::info!(tenant = %identity.tenant(), device = %name, "device removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "role": key.role.as_str(),
        "created": key.created.to_rfc3339(),
        "expires": key.expires.map(Timestamp::to_rfc3339),
        "expired": key.expires.is_some_and(|e| e <= Timestamp::now()),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    role: String,
    /// `30d` from now, or an RFC 3339 instant.
    expires: Option<String>,
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let NewKey { role, expires } = parse(&body)?;
    let role = match Role::parse(&role) {
        Some(role @ (Role::Reader | Role::Writer | Role::Admin)) => role,
        _ => {
            return Err(field_error(
                "role",
                format!("`{role}` is not one of reader, writer, admin"),
            ));
        }
    };
    let expires = match expires {
        Some(text) => {
            let at = instant_or_duration("expires", &text)?;
            if at <= Timestamp::now() {
                return Err(field_error("expires", "is in the past"));
            }
            Some(at)
        }
        None => None,
    };
    let key = generate_secret(SecretKind::ApiKey);
    let id = generate_key_id();
    let record = state
        .store
        .create_api_key(identity.tenant(), &id, role, &hash_secret(&key), expires)
        .await?;
    tracing::info!(tenant = %identity.tenant(), key = %id, role = role.as_str(), "API key created");
    let mut out = key_json(&record);
    out["key"] = Value::String(key);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(crate) async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let keys = state.store.list_api_keys(identity.tenant()).await?;
    Ok(Json(json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() })).into_response())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
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
        .create_api_key(tenant.id, &id, Role::Admin, &hash_secret(&key), None)
        .await?;
    crate::dashboards::create_builtin(&state, tenant.id).await?;
    tracing::info!(tenant = %tenant.name, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tenant": tenant.name, "id": id, "key": key, "role": "admin" })),
    )
        .into_response())
}

fn tenant_json(tenant: &Tenant) -> Value {
    json!({
        "name": tenant.name,
        "created": tenant.created.to_rfc3339(),
        "retention": tenant.retention.map(format_duration),
        "disabled": tenant.disabled,
        "deleting": tenant.deleting,
    })
}

/// The tenants this key may see: every one for a system key, its own for the others.
async fn visible_tenants(state: &AppState, identity: &Identity) -> Result<Vec<Tenant>, ApiError> {
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

/// The tenant `name` if this key may see it; another tenant is answered like a missing one.
async fn visible_tenant(
    state: &AppState,
    identity: &Identity,
    name: &str,
) -> Result<Tenant, ApiError> {
    visible_tenants(state, identity)
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no tenant `{name}`")))
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
    /// `"30d"`, or `null` for the server's default. Absent: unchanged.
    #[serde(default, deserialize_with = "some")]
    retention: Option<Option<String>>,
    /// System keys only.
    disabled: Option<bool>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub(crate) async fn update_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Admin).await?;
    let TenantPatch {
        retention,
        disabled,
    } = parse(&body)?;
    let mut tenant = visible_tenant(&state, &identity, &name).await?;
    if let Some(retention) = retention {
        let retention = match retention {
            None => None,
            Some(text) => {
                let d = parse_duration(&text).map_err(|e| field_error("retention", e))?;
                if d < Duration::from_secs(3600) {
                    return Err(field_error("retention", "keep events at least 1h"));
                }
                Some(d)
            }
        };
        state
            .store
            .set_tenant_retention(tenant.id, retention)
            .await?;
        tenant.retention = retention;
        tracing::info!(tenant = %tenant.name, retention = ?retention, "tenant retention set");
    }
    if let Some(disabled) = disabled {
        identity.require(Role::System)?;
        if tenant.id == identity.tenant() {
            return Err(field_error(
                "disabled",
                "a key cannot disable its own tenant",
            ));
        }
        if !state.store.set_tenant_disabled(tenant.id, disabled).await? {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("no tenant `{name}`"),
            ));
        }
        state.auth.forget_tenant(tenant.id);
        tenant.disabled = disabled;
        tracing::info!(tenant = %tenant.name, disabled, "tenant access changed");
    }
    Ok(Json(tenant_json(&tenant)).into_response())
}

/// Events deleted per step of a tenant purge.
const PURGE_BATCH: usize = 5_000;

pub(crate) async fn delete_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::System).await?;
    let tenant = visible_tenant(&state, &identity, &name).await?;
    if tenant.id == identity.tenant() {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            "a key cannot delete its own tenant",
        ));
    }
    state.store.mark_tenant_deleting(tenant.id).await?;
    state.auth.forget_tenant(tenant.id);
    tracing::info!(tenant = %tenant.name, "tenant marked for deletion; purging in the background");
    // Refused everywhere from now on; the data goes in short steps. Should the process stop
    // meanwhile, retention resumes the purge on its next sweep.
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut deleted = 0u64;
        loop {
            match store.purge_tenant(tenant.id, PURGE_BATCH).await {
                Ok(step) => {
                    deleted += step.events;
                    if step.done {
                        tracing::info!(tenant = %tenant.name, events = deleted, "tenant deleted");
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(tenant = %tenant.name, %error, "tenant purge paused; retention resumes it");
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "tenant": name, "deleting": true })),
    )
        .into_response())
}
