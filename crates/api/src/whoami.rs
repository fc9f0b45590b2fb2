//! `GET /api/v1/whoami`: the tenant and role of the API key a request carries, so a client
//! (the web UI) can show who it acts as and offer only what the key may do.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ingot_auth::Identity;
use ingot_core::ErrorKind;
use ingot_store::Role;
use serde_json::json;

use crate::events::key_with;
use crate::{ApiError, AppState};

pub(crate) async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let Identity::Key {
        tenant,
        role,
        key_id,
    } = &identity
    else {
        // `key_with` accepts API keys only.
        return Err(ApiError::new(
            ErrorKind::Internal,
            "whoami without an API key",
        ));
    };
    let name = state
        .store
        .tenant(*tenant)
        .await?
        .map(|t| t.name)
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, format!("tenant {tenant} is gone")))?;
    Ok(Json(json!({ "tenant": name, "role": role.as_str(), "key_id": key_id })).into_response())
}
