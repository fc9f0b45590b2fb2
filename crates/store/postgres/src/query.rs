//! Filters, totals, histograms, bounds, series and retention deletes.
//!
//! # Filters
//!
//! [`compile`] turns an `ingot_query::Filter` into a PostgreSQL condition whose every
//! value is a `$n` parameter ([`Params`]): the SQL text depends only on the filter's
//! shape. The predicates are those of the SQLite backend (`crates/store/sqlite/src/
//! query.rs`), in PostgreSQL's terms, each built to be two-valued (true or false, never
//! NULL) so that `NOT` means what the language says (a missing field makes a predicate
//! false and its negation true):
//!
//! - columns: `(col IS NOT NULL AND col <op> $v)`; the text columns are `COLLATE "C"`, so
//!   comparisons are bytewise like the reference's;
//! - data paths: `CASE jsonb_typeof(x) WHEN 'string' THEN … ELSE false END`, where `x` is
//!   `data #> $p::text[]`: the JSON type is tested first (a string never compares as a
//!   number, a missing path is false), and `CASE` also guarantees that `x::float8` only
//!   ever sees a number. Strings compare `COLLATE "C"`; numbers as `float8`, like the
//!   reference's `f64`;
//! - `#>` also indexes arrays by a segment that reads as an integer (`n.0`), where the
//!   reference only looks into objects; a path with such a segment checks that the
//!   container is an object first (see `at`);
//! - wildcards: `LIKE`, with the pattern's literal `%`, `_` and `\` escaped by `\`.
//!
//! # Series
//!
//! One statement per call. Without `group_by`, the events of the range are grouped by
//! bucket and aggregated in SQL (`count avg min max sum`, and `percentile_cont(q) WITHIN
//! GROUP (ORDER BY v)`, which is exactly [`ingot_query::percentile`]). With it, a
//! materialized CTE computes bucket, group and value once; a second CTE ranks the groups
//! (most events first, ties bytewise) and keeps the top ones; the aggregation then runs
//! per bucket over each top group and, with `other`, over everything else, so even the
//! `other` percentile is exact and nothing is merged outside the database.

use std::collections::HashMap;

use ingot_core::{TenantId, Timestamp};
use ingot_query::{Agg, Field, Filter, Interval, Predicate, SeriesQuery, Wildcard, WildcardPart};
use ingot_store::{GeoCell, GeoGrid, ListQuery, MAX_BUCKETS, Series, StoreError};
use tokio_postgres::types::ToSql;

use crate::error;
use crate::events::Conditions;
use crate::pool::Conn;
use crate::schema::Layout;

/// A statement's parameters, in `$n` order.
#[derive(Default)]
pub(crate) struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Binds `value` and returns its placeholder (`$1`, `$2`, …).
    pub(crate) fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    /// The values, as tokio-postgres takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// How many are bound.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

fn column(field: &Field) -> Option<&'static str> {
    match field {
        Field::Id => Some("id"),
        Field::Device => Some("device"),
        Field::Sensor => Some("sensor"),
        Field::Kind => Some("kind"),
        Field::Value => Some("value"),
        Field::Ts => Some("ts"),
        Field::Data(_) => None,
    }
}

/// Whether `#>` would take `segment` as an array index (it parses it with `strtol`;
/// segments are letters, digits, `_` and `-`, so that means an optional `-` and digits).
fn reads_as_index(segment: &str) -> bool {
    let digits = segment.strip_prefix('-').unwrap_or(segment);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The `jsonb` value at `path` in `data`, or NULL. Objects only: before a segment that
/// `#>` would use as an array index, the container must be an object.
pub(crate) fn at(path: &[String], params: &mut Params) -> String {
    let p = params.bind(path.to_vec());
    let access = format!("(data #> {p}::text[])");
    let guards: Vec<String> = path
        .iter()
        .enumerate()
        .filter(|(_, segment)| reads_as_index(segment))
        .map(|(i, _)| {
            if i == 0 {
                "jsonb_typeof(data) = 'object'".to_owned()
            } else {
                let prefix = params.bind(path[..i].to_vec());
                format!("jsonb_typeof(data #> {prefix}::text[]) = 'object'")
            }
        })
        .collect();
    if guards.is_empty() {
        access
    } else {
        format!("(CASE WHEN {} THEN {access} END)", guards.join(" AND "))
    }
}

/// A `LIKE` pattern for a wildcard: `*` is `%`; literal `%`, `_` and `\` are escaped with
/// `\` (`LIKE`'s default escape character).
fn like(pattern: &Wildcard) -> String {
    let mut out = String::new();
    for part in &pattern.0 {
        match part {
            WildcardPart::Any => out.push('%'),
            WildcardPart::Literal(text) => {
                for c in text.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}

/// The SQL condition of `filter`; `TRUE` for every event.
pub(crate) fn compile(filter: &Filter, params: &mut Params) -> String {
    match filter {
        Filter::All => "TRUE".to_owned(),
        Filter::And(items) => join(items, " AND ", params),
        Filter::Or(items) => join(items, " OR ", params),
        Filter::Not(inner) => format!("(NOT {})", compile(inner, params)),
        Filter::Pred(p) => predicate(p, params),
    }
}

fn join(items: &[Filter], sep: &str, params: &mut Params) -> String {
    let parts: Vec<String> = items.iter().map(|f| compile(f, params)).collect();
    format!("({})", parts.join(sep))
}

fn predicate(p: &Predicate, params: &mut Params) -> String {
    match p {
        Predicate::Exists(Field::Ts) => "TRUE".to_owned(),
        Predicate::Exists(Field::Data(path)) => {
            let x = at(path, params);
            format!("COALESCE(jsonb_typeof({x}) <> 'null', false)")
        }
        Predicate::Exists(field) => format!("({} IS NOT NULL)", column(field).unwrap_or("NULL")),
        Predicate::Text {
            field: Field::Data(path),
            op,
            value,
        } => {
            let x = at(path, params);
            let v = params.bind(value.clone());
            format!(
                "(CASE WHEN jsonb_typeof({x}) = 'string' \
                 THEN ({x} #>> '{{}}') COLLATE \"C\" {} {v} ELSE false END)",
                op.sql()
            )
        }
        Predicate::Text { field, op, value } => {
            let col = column(field).unwrap_or("NULL");
            let v = params.bind(value.clone());
            format!("({col} IS NOT NULL AND {col} {} {v})", op.sql())
        }
        Predicate::Like {
            field: Field::Data(path),
            pattern,
        } => {
            let x = at(path, params);
            let l = params.bind(like(pattern));
            format!(
                "(CASE WHEN jsonb_typeof({x}) = 'string' \
                 THEN ({x} #>> '{{}}') COLLATE \"C\" LIKE {l} ELSE false END)"
            )
        }
        Predicate::Like { field, pattern } => {
            let col = column(field).unwrap_or("NULL");
            let l = params.bind(like(pattern));
            format!("({col} IS NOT NULL AND {col} LIKE {l})")
        }
        Predicate::Number {
            field: Field::Data(path),
            op,
            value,
        } => {
            let x = at(path, params);
            let v = params.bind(*value);
            format!(
                "(CASE WHEN jsonb_typeof({x}) = 'number' \
                 THEN {x}::float8 {} {v}::float8 ELSE false END)",
                op.sql()
            )
        }
        Predicate::Number { field, op, value } => {
            let col = column(field).unwrap_or("NULL");
            let v = params.bind(*value);
            format!("({col} IS NOT NULL AND {col} {} {v}::float8)", op.sql())
        }
        Predicate::Time { op, value } => {
            let v = params.bind(value.as_micros());
            format!("(ts {} {v}::bigint)", op.sql())
        }
        Predicate::DataEquals {
            path,
            text,
            number,
            boolean,
        } => {
            let x = at(path, params);
            let t = params.bind(text.clone());
            let number = match number {
                Some(n) => format!("{x}::float8 = {}::float8", params.bind(*n)),
                None => "false".to_owned(),
            };
            let boolean = match boolean {
                Some(b) => format!("{x}::boolean = {}::boolean", params.bind(*b)),
                None => "false".to_owned(),
            };
            format!(
                "(CASE jsonb_typeof({x}) WHEN 'string' THEN ({x} #>> '{{}}') = {t}::text \
                 WHEN 'number' THEN {number} WHEN 'boolean' THEN {boolean} ELSE false END)"
            )
        }
    }
}

/// Checks a histogram's or a series' bucket count.
pub(crate) fn check_buckets(
    interval: Interval,
    from: Timestamp,
    to: Timestamp,
) -> Result<u64, StoreError> {
    let n = interval.buckets(from, to);
    if n > MAX_BUCKETS {
        return Err(StoreError::InvalidQuery(format!(
            "{n} buckets of {interval} between {from} and {to}; at most {MAX_BUCKETS}: choose a wider interval"
        )));
    }
    Ok(n)
}

/// Runs `sql` with `params` as a cached prepared statement and returns its rows.
async fn rows(
    conn: &mut Conn,
    sql: &str,
    params: &Params,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = conn.prepare(sql).await?;
    conn.client
        .query(&statement, &params.refs())
        .await
        .map_err(error::pg)
}

/// `FROM events WHERE …` of a listing's conditions without its cursor, filter included.
fn matching(tenant: TenantId, query: &ListQuery, params: &mut Params) -> String {
    let query = ListQuery {
        cursor: None,
        ..query.clone()
    };
    Conditions::of(&query).selection(tenant, &query.filter, params)
}

/// How many events a listing matches, ignoring its cursor and limit.
pub(crate) async fn total(
    conn: &mut Conn,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<u64, StoreError> {
    let mut params = Params::default();
    let sql = format!("SELECT count(*) {}", matching(tenant, query, &mut params));
    let rows = rows(conn, &sql, &params).await?;
    let count: i64 = match rows.first() {
        Some(row) => row.try_get(0).map_err(error::pg)?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Events per bucket over the listing's `[from, to)`.
pub(crate) async fn histogram(
    conn: &mut Conn,
    tenant: TenantId,
    query: &ListQuery,
    interval: Interval,
) -> Result<Vec<(Timestamp, u64)>, StoreError> {
    let (Some(from), Some(to)) = (query.from, query.to) else {
        return Err(StoreError::InvalidQuery(
            "a histogram needs both `from` and `to`".into(),
        ));
    };
    let n = check_buckets(interval, from, to)?;
    let origin = interval.floor(from).as_micros();
    let width = interval.micros();
    let mut params = Params::default();
    let o = params.bind(origin);
    let w = params.bind(width);
    let sql = format!(
        "SELECT (ts - {o}::bigint) / {w}::bigint AS b, count(*) {} GROUP BY b",
        matching(tenant, query, &mut params)
    );
    let mut counts = vec![0u64; usize::try_from(n).unwrap_or(0)];
    for row in rows(conn, &sql, &params).await? {
        let bucket: i64 = row.try_get(0).map_err(error::pg)?;
        let count: i64 = row.try_get(1).map_err(error::pg)?;
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| counts.get_mut(b)) {
            *slot = u64::try_from(count).unwrap_or(0);
        }
    }
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (Timestamp::from_micros(origin + i as i64 * width), c))
        .collect())
}

/// The oldest and newest `ts` a listing matches.
pub(crate) async fn bounds(
    conn: &mut Conn,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
    let mut params = Params::default();
    let sql = format!(
        "SELECT min(ts), max(ts) {}",
        matching(tenant, query, &mut params)
    );
    let rows = rows(conn, &sql, &params).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let min: Option<i64> = row.try_get(0).map_err(error::pg)?;
    let max: Option<i64> = row.try_get(1).map_err(error::pg)?;
    Ok(min
        .zip(max)
        .map(|(a, b)| (Timestamp::from_micros(a), Timestamp::from_micros(b))))
}

/// Events per cell of a latitude/longitude grid (see `EventStore::geo_grid`): the
/// position is read once per matching event, in a subquery.
pub(crate) async fn geo_grid(
    conn: &mut Conn,
    tenant: TenantId,
    query: &ListQuery,
    grid: &GeoGrid,
) -> Result<Vec<GeoCell>, StoreError> {
    grid.check()?;
    let mut params = Params::default();
    let lat = value_expr(&Field::Data(grid.lat.clone()), &mut params)?;
    let lon = value_expr(&Field::Data(grid.lon.clone()), &mut params)?;
    let source = matching(tenant, query, &mut params);
    let cell = params.bind(grid.cell);
    let limit = params.bind(
        i64::try_from(grid.limit)
            .unwrap_or(i64::MAX)
            .saturating_add(1),
    );
    let sql = format!(
        "SELECT floor(lat / {cell}::float8)::bigint AS r, floor(lon / {cell}::float8)::bigint AS c, count(*) \
         FROM (SELECT {lat} AS lat, {lon} AS lon {source}) AS positions \
         WHERE lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 \
         GROUP BY r, c ORDER BY r, c LIMIT {limit}::bigint"
    );
    let mut cells = Vec::new();
    for row in rows(conn, &sql, &params).await? {
        let count: i64 = row.try_get(2).map_err(error::pg)?;
        cells.push(GeoCell {
            row: row.try_get(0).map_err(error::pg)?,
            col: row.try_get(1).map_err(error::pg)?,
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    if cells.len() > grid.limit {
        return Err(grid.too_many_cells());
    }
    Ok(cells)
}

/// The numeric value an aggregation reads: `value`, or JSON numbers at a data path.
fn value_expr(field: &Field, params: &mut Params) -> Result<String, StoreError> {
    match field {
        Field::Value => Ok("value".to_owned()),
        Field::Data(path) => {
            let x = at(path, params);
            Ok(format!(
                "(CASE WHEN jsonb_typeof({x}) = 'number' THEN {x}::float8 END)"
            ))
        }
        other => Err(StoreError::InvalidQuery(format!(
            "`{other}` is not numeric: aggregate `value` or a numeric path in data"
        ))),
    }
}

/// The text a group is named by; NULL for no group.
fn group_expr(field: &Field, params: &mut Params) -> Result<String, StoreError> {
    match field {
        Field::Id | Field::Device | Field::Sensor | Field::Kind => {
            Ok(column(field).unwrap_or("NULL").to_owned())
        }
        Field::Value => Ok("value::text".to_owned()),
        Field::Ts => Err(StoreError::InvalidQuery(
            "grouping by `ts` is what the interval does".into(),
        )),
        Field::Data(path) => {
            let x = at(path, params);
            Ok(format!(
                "(CASE jsonb_typeof({x}) WHEN 'string' THEN {x} #>> '{{}}' \
                 WHEN 'number' THEN {x}::text WHEN 'boolean' THEN {x}::text END)"
            ))
        }
    }
}

/// The aggregate of `v` (or of the rows, for count) in SQL.
fn agg_expr(agg: Agg, params: &mut Params) -> String {
    match agg {
        Agg::Count => "count(*)::float8".to_owned(),
        Agg::Avg => "avg(v)".to_owned(),
        Agg::Min => "min(v)".to_owned(),
        Agg::Max => "max(v)".to_owned(),
        Agg::Sum => "sum(v)".to_owned(),
        Agg::Percentile(q) => {
            let q = params.bind(q / 100.0);
            format!("percentile_cont({q}::float8) WITHIN GROUP (ORDER BY v)")
        }
    }
}

/// Aggregates per bucket and group (see `EventStore::series`).
pub(crate) async fn series(
    conn: &mut Conn,
    tenant: TenantId,
    query: &SeriesQuery,
) -> Result<Vec<Series>, StoreError> {
    if query.from >= query.to {
        return Err(StoreError::InvalidQuery(
            "`from` must be earlier than `to`".into(),
        ));
    }
    let n = usize::try_from(check_buckets(query.interval, query.from, query.to)?).unwrap_or(0);
    let origin = query.interval.floor(query.from).as_micros();
    let width = query.interval.micros();

    let mut params = Params::default();
    let o = params.bind(origin);
    let w = params.bind(width);
    let t = params.bind(i64::from(tenant.0));
    let from = params.bind(query.from.as_micros());
    let to = params.bind(query.to.as_micros());
    let filter = compile(&query.filter, &mut params);
    let value = match query.agg {
        Agg::Count => "NULL::float8".to_owned(),
        _ => value_expr(&query.field, &mut params)?,
    };
    let group = match &query.group_by {
        Some(field) => Some(group_expr(field, &mut params)?),
        None => None,
    };
    let agg = agg_expr(query.agg, &mut params);
    let inner = format!(
        "SELECT (ts - {o}::bigint) / {w}::bigint AS b, {} AS g, {value} AS v FROM events \
         WHERE tenant = {t}::bigint AND ts >= {from}::bigint AND ts < {to}::bigint AND {filter}",
        group.as_deref().unwrap_or("NULL::text"),
    );
    let sql = if group.is_none() {
        format!("SELECT b, NULL::text, count(*), {agg} FROM ({inner}) m GROUP BY b")
    } else {
        let top = params.bind(i64::try_from(query.top).unwrap_or(i64::MAX));
        let others = if query.other {
            ""
        } else {
            " AND top.g IS NOT NULL"
        };
        format!(
            "WITH m AS MATERIALIZED ({inner}), \
             top AS (SELECT g FROM m WHERE g IS NOT NULL GROUP BY g \
                     ORDER BY count(*) DESC, g COLLATE \"C\" LIMIT {top}::bigint) \
             SELECT m.b, top.g, count(*), {agg} FROM m LEFT JOIN top ON top.g = m.g \
             WHERE m.g IS NOT NULL{others} GROUP BY m.b, top.g"
        )
    };

    // (group, events, points); group `None` is `other` when grouping, the only series when
    // not.
    let mut found: Vec<(Option<String>, u64, Vec<Option<f64>>)> = Vec::new();
    let mut index: HashMap<Option<String>, usize> = HashMap::new();
    for row in rows(conn, &sql, &params).await? {
        let bucket: i64 = row.try_get(0).map_err(error::pg)?;
        let name: Option<String> = row.try_get(1).map_err(error::pg)?;
        let events: i64 = row.try_get(2).map_err(error::pg)?;
        let value: Option<f64> = row.try_get(3).map_err(error::pg)?;
        let Some(bucket) = usize::try_from(bucket).ok().filter(|&b| b < n) else {
            continue;
        };
        let slot = *index.entry(name.clone()).or_insert_with(|| {
            found.push((name, 0, vec![None; n]));
            found.len() - 1
        });
        let (_, count, points) = &mut found[slot];
        *count += u64::try_from(events).unwrap_or(0);
        points[bucket] = value;
    }
    Ok(assemble(found, query, n, origin, width))
}

/// Orders the series: the top groups by events (most first, ties bytewise, as the SQL
/// chose them), then `other`; fills in series the rows did not mention.
fn assemble(
    mut found: Vec<(Option<String>, u64, Vec<Option<f64>>)>,
    query: &SeriesQuery,
    n: usize,
    origin: i64,
    width: i64,
) -> Vec<Series> {
    let stamp = |values: Vec<Option<f64>>| -> Vec<(Timestamp, Option<f64>)> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Timestamp::from_micros(origin + i as i64 * width), v))
            .collect()
    };
    let rest = found
        .iter()
        .position(|(g, _, _)| g.is_none())
        .map(|i| found.swap_remove(i).2);
    if query.group_by.is_none() {
        return vec![Series {
            group: None,
            other: false,
            points: stamp(rest.unwrap_or_else(|| vec![None; n])),
        }];
    }
    found.sort_by(|a, b| {
        b.1.cmp(&a.1).then_with(|| {
            a.0.as_deref()
                .map(str::as_bytes)
                .cmp(&b.0.as_deref().map(str::as_bytes))
        })
    });
    let mut out: Vec<Series> = found
        .into_iter()
        .map(|(group, _, values)| Series {
            group,
            other: false,
            points: stamp(values),
        })
        .collect();
    if query.other {
        out.push(Series {
            group: None,
            other: true,
            points: stamp(rest.unwrap_or_else(|| vec![None; n])),
        });
    }
    out
}

/// Per device with events in `[from, to)`: how many and the newest `ts`.
pub(crate) async fn device_activity(
    conn: &mut Conn,
    tenant: TenantId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(String, u64, Timestamp)>, StoreError> {
    let statement = conn
        .prepare(
            "SELECT device, count(*), max(ts) FROM events \
             WHERE tenant = $1 AND ts >= $2 AND ts < $3 GROUP BY device ORDER BY device",
        )
        .await?;
    let rows = conn
        .client
        .query(
            &statement,
            &[&i64::from(tenant.0), &from.as_micros(), &to.as_micros()],
        )
        .await
        .map_err(error::pg)?;
    rows.iter()
        .map(|row| {
            let count: i64 = row.try_get(1).map_err(error::pg)?;
            Ok((
                row.try_get(0).map_err(error::pg)?,
                u64::try_from(count).unwrap_or(0),
                Timestamp::from_micros(row.try_get(2).map_err(error::pg)?),
            ))
        })
        .collect()
}

/// Deletes up to `limit` of a tenant's oldest events before `before`, with their payloads
/// (and, in the hypertable layout, their ids): one statement, so one short transaction.
pub(crate) async fn delete_before(
    conn: &mut Conn,
    layout: Layout,
    tenant: TenantId,
    before: Timestamp,
    limit: usize,
) -> Result<u64, StoreError> {
    const PLAIN: &str = "WITH old AS (SELECT ts, id FROM events \
             WHERE tenant = $1 AND ts < $2 ORDER BY ts, id LIMIT $3), \
         gone AS (DELETE FROM events e USING old \
             WHERE e.tenant = $1 AND e.ts = old.ts AND e.id = old.id RETURNING e.id), \
         pay AS (DELETE FROM payloads p USING gone WHERE p.tenant = $1 AND p.id = gone.id) \
         SELECT count(*) FROM gone";
    const HYPERTABLE: &str = "WITH old AS (SELECT ts, id FROM events \
             WHERE tenant = $1 AND ts < $2 ORDER BY ts, id LIMIT $3), \
         gone AS (DELETE FROM events e USING old \
             WHERE e.tenant = $1 AND e.ts = old.ts AND e.id = old.id RETURNING e.id), \
         pay AS (DELETE FROM payloads p USING gone WHERE p.tenant = $1 AND p.id = gone.id), \
         ids AS (DELETE FROM event_ids i USING gone WHERE i.tenant = $1 AND i.id = gone.id) \
         SELECT count(*) FROM gone";
    let sql = match layout {
        Layout::Plain => PLAIN,
        Layout::Hypertable => HYPERTABLE,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let statement = conn.prepare(sql).await?;
    let row = conn
        .client
        .query_one(
            &statement,
            &[&i64::from(tenant.0), &before.as_micros(), &limit],
        )
        .await
        .map_err(error::pg)?;
    let deleted: i64 = row.try_get(0).map_err(error::pg)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_parameters_only() {
        let filter = ingot_query::parse(
            "origin:\"x' OR 1=1 --\" and payload.value > 12345 and device:ab* and flag:true",
        )
        .unwrap_or_default();
        let mut params = Params::default();
        let sql = compile(&filter, &mut params);
        for value in ["x'", "12345", "ab", "origin", "payload", "flag", "true"] {
            assert!(!sql.contains(value), "{value} spliced into {sql}");
        }
        // path + text; path + number; pattern; path + text + number (none) + boolean.
        assert_eq!(params.len(), 8, "{sql}");
    }

    #[test]
    fn like_escapes_its_metacharacters() {
        let w = Wildcard(vec![
            WildcardPart::Literal("a%b_c\\d*".into()),
            WildcardPart::Any,
        ]);
        assert_eq!(like(&w), "a\\%b\\_c\\\\d*%");
    }

    #[test]
    fn array_index_segments_are_guarded() {
        assert!(reads_as_index("0") && reads_as_index("-12") && reads_as_index("007"));
        assert!(!reads_as_index("-") && !reads_as_index("a1") && !reads_as_index("1a"));
        let mut params = Params::default();
        assert_eq!(
            at(&["payload".into(), "value".into()], &mut params),
            "(data #> $1::text[])"
        );
        let mut params = Params::default();
        let guarded = at(&["0".into(), "n".into(), "-1".into()], &mut params);
        assert_eq!(
            guarded,
            "(CASE WHEN jsonb_typeof(data) = 'object' AND jsonb_typeof(data #> $2::text[]) = 'object' \
             THEN (data #> $1::text[]) END)"
        );
        assert_eq!(params.len(), 2);
    }
}
