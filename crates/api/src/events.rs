//! `POST /api/v1/events` (ingest) and `GET /api/v1/events` (listing).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ingot_auth::Identity;
use ingot_core::error::ErrorExt as _;
use ingot_core::format::{self, BodyError, BodyFormat};
use ingot_core::{ErrorKind, EventId, Timestamp, name};
use ingot_ingest::{Protocol, RefusalReason};
use ingot_query::{Interval, IntervalSpec};
use ingot_store::{Cursor, ListQuery, MAX_PAGE, Role};
use serde_json::json;

use crate::{ApiError, AppState};

/// The page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// The bearer secret of a request, if it sent one.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().ok();
    match value.and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) {
        Some(secret) if !secret.trim().is_empty() => Ok(Some(secret.trim())),
        _ => Err(ApiError::new(
            ErrorKind::Unauthenticated,
            "malformed Authorization header: expected `Bearer <device token or API key>`",
        )),
    }
}

/// Authenticates a request that needs an API key with at least `min`.
pub(crate) async fn key_with(
    state: &AppState,
    headers: &HeaderMap,
    min: Role,
) -> Result<Identity, ApiError> {
    let secret = bearer(headers)?;
    if secret.is_none() {
        return Err(ApiError::new(
            ErrorKind::Unauthenticated,
            "missing credentials: send `Authorization: Bearer <API key>`",
        ));
    }
    let identity = state.auth.authenticate(secret).await?;
    identity.require(min)?;
    Ok(identity)
}

enum BodyKind {
    Json(BodyFormat),
    Binary(String),
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        // curl and many device libraries send JSON without saying so.
        return Ok(BodyKind::Json(BodyFormat::Json));
    };
    let text = value.to_str().unwrap_or_default();
    let media = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "text/json" => Ok(BodyKind::Json(BodyFormat::Json)),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyKind::Json(BodyFormat::Ndjson)),
        "application/octet-stream" => Ok(BodyKind::Binary(media)),
        m if m.starts_with("image/") || m.starts_with("video/") || m.starts_with("audio/") => {
            Ok(BodyKind::Binary(media))
        }
        _ => {
            let hint = if media == "application/x-www-form-urlencoded" {
                " (curl -d sends this unless you add -H 'Content-Type: application/json')"
            } else {
                ""
            };
            Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type `{text}`{hint}: send application/json (one event or an array), \
                     application/x-ndjson (one event per line), or a binary type (image/*, application/octet-stream)"
                ),
            ))
        }
    }
}

/// Reads the body, refusing it as soon as it is known to exceed `max`.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, ApiError> {
    let too_large = |size: usize| ApiError::from(BodyError::BodyTooLarge { size, max });
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|&size| size > max) {
        return Err(too_large(size));
    }
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, max)).await;
    let Ok(read) = read else {
        // A client trickling its body ties up a connection and a buffer: give up on it.
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "the body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )
        .with_status(StatusCode::REQUEST_TIMEOUT));
    };
    read.map_err(|e| {
        // The only error a size-limited read of a live request gives is the limit.
        tracing::debug!(error = %e, "request body read failed");
        ApiError::new(
            ErrorKind::TooLarge,
            format!("the body is more than the limit of {max} bytes"),
        )
        .with("limit", max)
    })
}

/// How long a request body may take to arrive in full.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let metrics = state.ingest.metrics();
    let refuse = |reason: RefusalReason, e: ApiError| {
        metrics.refused(Protocol::http, reason);
        e
    };
    let identity = match bearer(&headers) {
        Ok(secret) => state
            .auth
            .authenticate(secret)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let identity = identity.map_err(|e| refuse(RefusalReason::unauthenticated, e))?;
    let kind = body_kind(&headers).map_err(|e| refuse(RefusalReason::media_type, e))?;
    let limits = state.ingest.limits().clone();
    let ids = match kind {
        BodyKind::Json(body_format) => {
            if let Some((name, _)) = params.first() {
                let e = ApiError::param(
                    name,
                    "is not accepted with a JSON body: put the fields in the event",
                );
                return Err(refuse(RefusalReason::invalid, e));
            }
            let body = read_body(&headers, body, limits.max_body_bytes)
                .await
                .map_err(|e| refuse(RefusalReason::too_large, e))?;
            state
                .ingest
                .ingest_body(&identity, Protocol::http, &body, body_format)
                .await?
        }
        BodyKind::Binary(content_type) => {
            let body = read_body(&headers, body, limits.max_binary_bytes)
                .await
                .map_err(|e| refuse(RefusalReason::too_large, e))?;
            let mut draft = format::binary(&content_type, body, &limits).map_err(|e| {
                let reason = if e.kind() == ErrorKind::TooLarge {
                    RefusalReason::too_large
                } else {
                    RefusalReason::invalid
                };
                refuse(reason, e.into())
            })?;
            for (key, value) in &params {
                format::apply_meta(&mut draft, key, value)
                    .map_err(|e| refuse(RefusalReason::invalid, ApiError::param(key, e.reason)))?;
            }
            state
                .ingest
                .ingest(&identity, Protocol::http, vec![draft])
                .await?
        }
    };
    let ids: Vec<&str> = ids.iter().map(EventId::as_str).collect();
    Ok((StatusCode::CREATED, Json(json!({ "ids": ids }))).into_response())
}

pub(crate) fn parse_time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(n) = text.parse::<f64>() {
        return format::number_ts(n)
            .ok_or_else(|| ApiError::param(name, "is not a valid Unix time"));
    }
    Timestamp::parse_rfc3339(text)
        .map_err(|e| ApiError::param(name, format!("is not a valid time: {e}")))
}

/// Parses `q`, reporting a syntax error with its column.
pub(crate) fn parse_filter(name: &str, text: &str) -> Result<ingot_query::Filter, ApiError> {
    ingot_query::parse(text).map_err(|e| {
        ApiError::param(
            name,
            format!("has a syntax error at column {}: {}", e.column, e.message),
        )
        .with("column", e.column)
    })
}

/// A listing request and the histogram width it asks for.
#[derive(Debug)]
pub(crate) struct ListRequest {
    pub(crate) query: ListQuery,
    pub(crate) histogram: Option<IntervalSpec>,
}

fn parse_list_query(params: &[(String, String)]) -> Result<ListRequest, ApiError> {
    let mut query = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    let mut histogram = None;
    for (key, value) in params {
        let checked_name = || -> Result<Option<String>, ApiError> {
            if value.is_empty() {
                return Ok(None);
            }
            name::validate(value).map_err(|r| ApiError::param(key, r))?;
            Ok(Some(value.clone()))
        };
        match key.as_str() {
            "device" => query.device = checked_name()?,
            "sensor" => query.sensor = checked_name()?,
            "kind" => query.kind = checked_name()?,
            "from" if !value.is_empty() => query.from = Some(parse_time(key, value)?),
            "to" if !value.is_empty() => query.to = Some(parse_time(key, value)?),
            "from" | "to" => {}
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::param(key, format!("must be a whole number from 1 to {MAX_PAGE}"))
                    })?;
            }
            "cursor" if !value.is_empty() => {
                query.cursor =
                    Some(Cursor::decode(value).ok_or_else(|| {
                        ApiError::param(key, "is not a cursor this server returned")
                    })?);
            }
            "cursor" => {}
            "q" => query.filter = parse_filter(key, value)?,
            "total" => {
                query.total = parse_bool(key, value)?;
            }
            "histogram" if value.is_empty() || value == "false" => {}
            "histogram" => {
                histogram = Some(Interval::parse_spec(value).map_err(|e| ApiError::param(key, e))?);
            }
            other => {
                return Err(ApiError::param(
                    other,
                    "is not supported (use q, device, sensor, kind, from, to, limit, cursor, total, histogram)",
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(ApiError::param("from", "must be earlier than `to`"));
    }
    Ok(ListRequest { query, histogram })
}

pub(crate) fn parse_bool(name: &str, text: &str) -> Result<bool, ApiError> {
    match text {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::param(name, "must be true or false")),
    }
}

/// The buckets `auto` aims for.
pub(crate) const AUTO_BUCKETS: usize = 100;

#[derive(serde::Serialize)]
struct Page<'a> {
    events: &'a [ingot_core::Event],
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    histogram: Option<Vec<(String, u64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    histogram_interval: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let ListRequest {
        mut query,
        histogram,
    } = parse_list_query(&params)?;
    let tenant = identity.tenant();
    // A histogram spans the requested range, or else the matching events' own range
    // (which selects the same events, so the listing is unchanged).
    let mut histogram_interval = None;
    let mut empty_histogram = false;
    if let Some(spec) = histogram {
        let range = match (query.from, query.to) {
            (Some(from), Some(to)) => Some((from, to)),
            (from, to) => state.store.bounds(tenant, &query).await?.map(|(min, max)| {
                (
                    from.unwrap_or(min),
                    to.unwrap_or(max.saturating_add_micros(1)),
                )
            }),
        };
        match range {
            Some((from, to)) if from < to => {
                let interval = Interval::resolve(spec, from, to, AUTO_BUCKETS);
                histogram_interval = Some(interval.to_string());
                query.from = Some(from);
                query.to = Some(to);
                query.histogram = Some(interval);
            }
            _ => empty_histogram = true,
        }
    }
    let mut page = state.store.list_events(tenant, &query).await?;
    if empty_histogram {
        page.histogram = Some(Vec::new());
    }
    Ok(page_response(page, histogram_interval))
}

fn page_response(page: ingot_store::EventPage, histogram_interval: Option<String>) -> Response {
    let next = page.next.as_ref().map(Cursor::encode);
    let histogram = page.histogram.map(|buckets| {
        buckets
            .into_iter()
            .map(|(ts, n)| (ts.to_rfc3339(), n))
            .collect()
    });
    // A struct, not `json!`, so each event keeps its documented key order.
    Json(Page {
        events: &page.events,
        next,
        total: page.total,
        histogram,
        histogram_interval,
    })
    .into_response()
}

fn event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::parse(text)
        .map_err(|r| ApiError::new(ErrorKind::InvalidInput, format!("event id {r}")))
}

pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let id = event_id(&id)?;
    match state.store.get_event(identity.tenant(), &id).await? {
        Some(event) => Ok(Json(event).into_response()),
        None => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no event with id `{id}`"),
        )),
    }
}

pub(crate) async fn payload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let id = event_id(&id)?;
    let event = state.store.get_event(identity.tenant(), &id).await?;
    match event.and_then(|e| e.payload) {
        Some(payload) => Ok((
            [(header::CONTENT_TYPE, payload.content_type)],
            payload.bytes,
        )
            .into_response()),
        None => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no event with id `{id}` carrying a binary payload"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn list_query_parses_and_names_bad_parameters() {
        let q = parse_list_query(&params(&[
            ("device", "probe-7"),
            ("from", "2018-06-01T00:00:00Z"),
            ("to", "1527897600000"),
            ("limit", "5"),
        ]))
        .unwrap()
        .query;
        assert_eq!(q.device.as_deref(), Some("probe-7"));
        assert_eq!(q.limit, 5);
        assert_eq!(q.to.unwrap().to_rfc3339(), "2018-06-02T00:00:00.000Z");
        for (bad, param) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("device", "a/b")], "device"),
            (vec![("from", "noon")], "from"),
            (vec![("cursor", "zzz")], "cursor"),
            (vec![("q", "origin:probe1 and")], "q"),
            (vec![("histogram", "5x")], "histogram"),
            (vec![("total", "maybe")], "total"),
            (vec![("color", "red")], "color"),
            (
                vec![
                    ("from", "2018-06-02T00:00:00Z"),
                    ("to", "2018-06-01T00:00:00Z"),
                ],
                "from",
            ),
        ] {
            let err = parse_list_query(&params(&bad)).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert!(
                err.details.get("parameter").is_some_and(|p| p == param),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn content_types() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            body_kind(&headers),
            Ok(BodyKind::Json(BodyFormat::Json))
        ));
        for (ct, ndjson) in [
            ("application/json; charset=utf-8", false),
            ("application/x-ndjson", true),
        ] {
            headers.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert!(
                matches!(body_kind(&headers), Ok(BodyKind::Json(f)) if (f == BodyFormat::Ndjson) == ndjson)
            );
        }
        headers.insert(header::CONTENT_TYPE, "image/jpeg".parse().unwrap());
        assert!(matches!(body_kind(&headers), Ok(BodyKind::Binary(t)) if t == "image/jpeg"));
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let err = body_kind(&headers).err().unwrap();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
