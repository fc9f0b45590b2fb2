//! `GET /api/v1/series`: aggregations per time bucket, grouped, for several filters.
//!
//! `q` may be repeated: each filter gives its own series (named by `"q"` in the answer),
//! each grouped by `group_by` if asked. Without `from`/`to` the range is that of the events
//! the filters match. `interval=auto` (the default) picks a width giving at most `buckets`
//! buckets (default 100), so a chart of a long range stays light.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ingot_core::Timestamp;
use ingot_query::{Agg, Field, Filter, Interval, IntervalSpec, SeriesQuery};
use ingot_store::{ListQuery, MAX_BUCKETS, Role};
use serde_json::{Value, json};

use crate::events::{AUTO_BUCKETS, key_with, parse_bool, parse_filter, parse_time};
use crate::{ApiError, AppState};

/// The most filters one request may compare.
const MAX_QUERIES: usize = 10;
/// The most groups one series request may return.
const MAX_TOP: usize = 100;

struct Request {
    filters: Vec<(String, Filter)>,
    field: Field,
    agg: Agg,
    interval: IntervalSpec,
    buckets: usize,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    group_by: Option<Field>,
    top: usize,
    other: bool,
}

fn parse(params: &[(String, String)]) -> Result<Request, ApiError> {
    let mut r = Request {
        filters: Vec::new(),
        field: Field::Value,
        agg: Agg::Avg,
        interval: IntervalSpec::Auto,
        buckets: AUTO_BUCKETS,
        from: None,
        to: None,
        group_by: None,
        top: 10,
        other: false,
    };
    for (key, value) in params {
        match key.as_str() {
            "q" => {
                // With `q` repeated, `index` says which one is wrong (0-based).
                let filter =
                    parse_filter(key, value).map_err(|e| e.with("index", r.filters.len()))?;
                r.filters.push((value.clone(), filter));
            }
            "field" => r.field = Field::parse(value).map_err(|e| ApiError::param(key, e))?,
            "agg" => {
                r.agg = Agg::parse(value).ok_or_else(|| {
                    ApiError::param(
                        key,
                        "must be one of count, avg, min, max, sum, p50, p90, p95, p99",
                    )
                })?;
            }
            "interval" => {
                r.interval = Interval::parse_spec(value).map_err(|e| ApiError::param(key, e))?
            }
            "buckets" => {
                r.buckets = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_BUCKETS as usize).contains(n))
                    .ok_or_else(|| {
                        ApiError::param(
                            key,
                            format!("must be a whole number from 1 to {MAX_BUCKETS}"),
                        )
                    })?;
            }
            "from" if !value.is_empty() => r.from = Some(parse_time(key, value)?),
            "to" if !value.is_empty() => r.to = Some(parse_time(key, value)?),
            "from" | "to" => {}
            "group_by" if value.is_empty() => {}
            "group_by" => {
                r.group_by = Some(Field::parse(value).map_err(|e| ApiError::param(key, e))?)
            }
            "top" => {
                r.top = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| {
                        ApiError::param(key, format!("must be a whole number from 1 to {MAX_TOP}"))
                    })?;
            }
            "other" => r.other = parse_bool(key, value)?,
            other => {
                return Err(ApiError::param(
                    other,
                    "is not supported (use q, field, agg, interval, buckets, from, to, group_by, top, other)",
                ));
            }
        }
    }
    if r.filters.is_empty() {
        r.filters.push((String::new(), Filter::All));
    }
    if r.filters.len() > MAX_QUERIES {
        return Err(ApiError::param(
            "q",
            format!("is given more than {MAX_QUERIES} times"),
        ));
    }
    if let (Some(from), Some(to)) = (r.from, r.to)
        && from >= to
    {
        return Err(ApiError::param("from", "must be earlier than `to`"));
    }
    if r.agg != Agg::Count && !matches!(r.field, Field::Value | Field::Data(_)) {
        return Err(ApiError::param(
            "field",
            format!(
                "`{}` is not numeric: aggregate `value` or a numeric path in data",
                r.field
            ),
        ));
    }
    if r.group_by == Some(Field::Ts) {
        return Err(ApiError::param(
            "group_by",
            "cannot be `ts`: the interval already buckets by time",
        ));
    }
    Ok(r)
}

pub(crate) async fn series(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let tenant = identity.tenant();
    let r = parse(&params)?;
    // The range: as asked, or spanning what any of the filters matches.
    let (from, to) = match (r.from, r.to) {
        (Some(from), Some(to)) => (from, to),
        (from, to) => {
            let mut range: Option<(Timestamp, Timestamp)> = None;
            for (_, filter) in &r.filters {
                let probe = ListQuery {
                    filter: filter.clone(),
                    from,
                    to,
                    limit: 1,
                    ..ListQuery::default()
                };
                if let Some((min, max)) = state.store.bounds(tenant, &probe).await? {
                    range = Some(match range {
                        Some((a, b)) => (a.min(min), b.max(max)),
                        None => (min, max),
                    });
                }
            }
            match range {
                Some((min, max)) => (
                    from.unwrap_or(min),
                    to.unwrap_or(max.saturating_add_micros(1)),
                ),
                None => {
                    let interval = match r.interval {
                        IntervalSpec::Fixed(i) => i.to_string(),
                        IntervalSpec::Auto => "auto".to_owned(),
                    };
                    return Ok(Json(json!({ "interval": interval, "series": [] })).into_response());
                }
            }
        }
    };
    if from >= to {
        return Err(ApiError::param("from", "must be earlier than `to`"));
    }
    let interval = Interval::resolve(r.interval, from, to, r.buckets);
    let mut out = Vec::new();
    let named = r.filters.len() > 1;
    for (text, filter) in &r.filters {
        let query = SeriesQuery {
            filter: filter.clone(),
            field: r.field.clone(),
            agg: r.agg,
            interval,
            from,
            to,
            group_by: r.group_by.clone(),
            top: r.top,
            other: r.other,
        };
        for s in state.store.series(tenant, &query).await? {
            let points: Vec<Value> = s
                .points
                .iter()
                .map(|(ts, v)| json!([ts.to_rfc3339(), v]))
                .collect();
            let group = if s.other {
                Some("other".to_owned())
            } else {
                s.group
            };
            let mut entry = json!({ "group": group, "points": points });
            if s.other {
                entry["other"] = Value::Bool(true);
            }
            if named {
                entry["q"] = Value::String(text.clone());
            }
            out.push(entry);
        }
    }
    Ok(Json(json!({ "interval": interval.to_string(), "series": out })).into_response())
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
    fn parses_the_brief_example() {
        let r = parse(&params(&[
            ("q", "origin:seville"),
            ("q", "origin:london"),
            ("field", "payload.value"),
            ("agg", "p95"),
            ("interval", "1h"),
            ("group_by", "origin"),
            ("top", "5"),
            ("other", "true"),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.filters.len(), 2);
        assert_eq!(r.agg, Agg::Percentile(95.0));
        assert_eq!(r.field, Field::Data(vec!["payload".into(), "value".into()]));
        assert_eq!(r.top, 5);
        assert!(r.other);
    }

    #[test]
    fn names_the_bad_parameter() {
        for (bad, name) in [
            (vec![("agg", "median")], "agg"),
            (vec![("field", "a..b")], "field"),
            (vec![("field", "device"), ("agg", "avg")], "field"),
            (vec![("interval", "1w")], "interval"),
            (vec![("q", "a:1 or")], "q"),
            (vec![("top", "0")], "top"),
            (vec![("group_by", "ts")], "group_by"),
            (vec![("buckets", "0")], "buckets"),
            (
                vec![
                    ("from", "2018-06-02T00:00:00Z"),
                    ("to", "2018-06-01T00:00:00Z"),
                ],
                "from",
            ),
            (vec![("colour", "red")], "colour"),
        ] {
            let err = parse(&params(&bad))
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(
                err.details.get("parameter").and_then(|v| v.as_str()),
                Some(name),
                "{bad:?}"
            );
        }
        assert!(
            parse(&params(&[("field", "device"), ("agg", "count")])).is_ok(),
            "count needs no numeric field"
        );
    }
}
