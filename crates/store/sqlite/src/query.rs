//! Filters, totals, histograms, bounds, series and retention deletes.
//!
//! # Filters
//!
//! [`compile`] turns an `ingot_query::Filter` into a SQL condition whose every value is a
//! named parameter (`:f0`, `:f1`, …): the SQL text depends only on the filter's shape.
//! Each predicate is built to be two-valued (0 or 1, never NULL), so `NOT` means what the
//! language says (a missing field makes a predicate false and its negation true) rather
//! than SQL's three-valued logic:
//!
//! - columns: `(col IS NOT NULL AND col <op> :v)`;
//! - data paths: the JSON type is tested first, null-safely (`json_type(data, :p) IS
//!   'text'`, `COALESCE(json_type(...), '') IN ('integer', 'real')`), so a string never
//!   compares as a number and a missing path is simply false;
//! - wildcards: `GLOB`, with the pattern's literal `*`, `?` and `[` escaped as `[*]`, `[?]`,
//!   `[[]`.
//!
//! JSON paths are written `$."a"."b"`; path segments are letters, digits, `_` and `-`, and
//! the path is bound as a parameter anyway.
//!
//! # Series
//!
//! One statement reads the matching events once, grouped by bucket and group value (for
//! `count avg min max sum`, SQLite aggregates; for percentiles, it returns each value and
//! they are sorted here). The top groups and the `other` series are then merged here from
//! the per-group partial aggregates, so no second pass over the events is needed.

use std::collections::HashMap;

use ingot_core::{TenantId, Timestamp};
use ingot_query::filter::CmpOp;
use ingot_query::{Agg, Field, Filter, Interval, Predicate, SeriesQuery, Wildcard, WildcardPart};
use ingot_store::{GeoCell, GeoGrid, ListQuery, MAX_BUCKETS, Series, StoreError};
use rusqlite::types::ToSql;
use rusqlite::{Connection, TransactionBehavior};

use crate::error;
use crate::events::Conditions;

/// Named parameters collected while building a statement.
#[derive(Default)]
pub(crate) struct Binds {
    names: Vec<String>,
    values: Vec<Box<dyn ToSql>>,
}

impl Binds {
    /// Binds `value` and returns its name.
    pub(crate) fn add(&mut self, value: impl ToSql + 'static) -> String {
        let name = format!(":f{}", self.names.len());
        self.names.push(name.clone());
        self.values.push(Box::new(value));
        name
    }

    /// Adds these parameters to a parameter list.
    pub(crate) fn extend<'a>(&'a self, params: &mut Vec<(&'a str, &'a dyn ToSql)>) {
        for (name, value) in self.names.iter().zip(&self.values) {
            params.push((name.as_str(), value.as_ref()));
        }
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

/// The SQLite JSON path of a data path: `$."payload"."value"`.
pub(crate) fn json_path(path: &[String]) -> String {
    let mut out = String::from("$");
    for segment in path {
        out.push_str(".\"");
        out.push_str(segment);
        out.push('"');
    }
    out
}

fn glob(pattern: &Wildcard) -> String {
    let mut out = String::new();
    for part in &pattern.0 {
        match part {
            WildcardPart::Any => out.push('*'),
            WildcardPart::Literal(text) => {
                for c in text.chars() {
                    match c {
                        '*' => out.push_str("[*]"),
                        '?' => out.push_str("[?]"),
                        '[' => out.push_str("[[]"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// The SQL condition of `filter`; `"1"` for every event.
pub(crate) fn compile(filter: &Filter, binds: &mut Binds) -> String {
    match filter {
        Filter::All => "1".to_owned(),
        Filter::And(items) => join(items, " AND ", binds),
        Filter::Or(items) => join(items, " OR ", binds),
        Filter::Not(inner) => format!("(NOT {})", compile(inner, binds)),
        Filter::Pred(p) => predicate(p, binds),
    }
}

fn join(items: &[Filter], sep: &str, binds: &mut Binds) -> String {
    let parts: Vec<String> = items.iter().map(|f| compile(f, binds)).collect();
    format!("({})", parts.join(sep))
}

fn predicate(p: &Predicate, binds: &mut Binds) -> String {
    match p {
        Predicate::Exists(Field::Ts) => "1".to_owned(),
        Predicate::Exists(Field::Data(path)) => {
            let p = binds.add(json_path(path));
            format!("(json_type(data, {p}) IS NOT NULL AND json_type(data, {p}) <> 'null')")
        }
        Predicate::Exists(field) => format!("({} IS NOT NULL)", column(field).unwrap_or("NULL")),
        Predicate::Text {
            field: Field::Data(path),
            op,
            value,
        } => {
            let p = binds.add(json_path(path));
            let v = binds.add(value.clone());
            format!(
                "(json_type(data, {p}) IS 'text' AND json_extract(data, {p}) {} {v})",
                op.sql()
            )
        }
        Predicate::Text { field, op, value } => {
            let col = column(field).unwrap_or("NULL");
            let v = binds.add(value.clone());
            format!("({col} IS NOT NULL AND {col} {} {v})", op.sql())
        }
        Predicate::Like {
            field: Field::Data(path),
            pattern,
        } => {
            let p = binds.add(json_path(path));
            let g = binds.add(glob(pattern));
            format!("(json_type(data, {p}) IS 'text' AND json_extract(data, {p}) GLOB {g})")
        }
        Predicate::Like { field, pattern } => {
            let col = column(field).unwrap_or("NULL");
            let g = binds.add(glob(pattern));
            format!("({col} IS NOT NULL AND {col} GLOB {g})")
        }
        Predicate::Number {
            field: Field::Data(path),
            op,
            value,
        } => {
            let p = binds.add(json_path(path));
            let v = binds.add(*value);
            format!(
                "(COALESCE(json_type(data, {p}), '') IN ('integer', 'real') AND json_extract(data, {p}) {} {v})",
                op.sql()
            )
        }
        Predicate::Number { field, op, value } => {
            let col = column(field).unwrap_or("NULL");
            let v = binds.add(*value);
            format!("({col} IS NOT NULL AND {col} {} {v})", op.sql())
        }
        Predicate::Time { op, value } => {
            let v = binds.add(value.as_micros());
            format!("(ts {} {v})", op.sql())
        }
        Predicate::DataEquals {
            path,
            text,
            number,
            boolean,
        } => {
            let p = binds.add(json_path(path));
            let t = binds.add(text.clone());
            let number = match number {
                Some(n) => format!("json_extract(data, {p}) = {}", binds.add(*n)),
                None => "0".to_owned(),
            };
            let (yes, no) = match boolean {
                Some(true) => ("1", "0"),
                Some(false) => ("0", "1"),
                None => ("0", "0"),
            };
            format!(
                "(CASE json_type(data, {p}) WHEN 'text' THEN json_extract(data, {p}) = {t} \
                 WHEN 'integer' THEN {number} WHEN 'real' THEN {number} \
                 WHEN 'true' THEN {yes} WHEN 'false' THEN {no} ELSE 0 END)"
            )
        }
    }
}

/// A device every event `filter` matches must have: `device:x`, alone or in a top-level
/// `and`. Backends use it to read the device index instead of the whole time range.
pub(crate) fn required_device(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::Pred(Predicate::Text {
            field: Field::Device,
            op: CmpOp::Eq,
            value,
        }) => Some(value),
        Filter::And(items) => items.iter().find_map(required_device),
        _ => None,
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

/// A listing's conditions without its cursor, with its filter compiled: the `FROM … WHERE …`
/// of totals, histograms and bounds.
struct Matching {
    source_sql: String,
    binds: Binds,
    query: ListQuery,
}

impl Matching {
    fn of(query: &ListQuery) -> Matching {
        let query = ListQuery {
            cursor: None,
            ..query.clone()
        };
        let mut binds = Binds::default();
        let filter = compile(&query.filter, &mut binds);
        let source_sql = Conditions::of(&query).source_sql(&filter);
        Matching {
            source_sql,
            binds,
            query,
        }
    }

    /// Runs `{select} FROM … WHERE … {suffix}` and maps every row.
    fn run<T>(
        &self,
        conn: &Connection,
        tenant: TenantId,
        select: &str,
        suffix: &str,
        extra: &[(&str, &dyn ToSql)],
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let cond = Conditions::of(&self.query);
        let tenant_key = i64::from(tenant.0);
        let mut params = cond.params(&tenant_key);
        self.binds.extend(&mut params);
        params.extend_from_slice(extra);
        let sql = format!("{select} {}{suffix}", self.source_sql);
        let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
        let mut rows = stmt.query(params.as_slice()).map_err(error::sqlite)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error::sqlite)? {
            out.push(each(row)?);
        }
        Ok(out)
    }
}

/// How many events a listing matches, ignoring its cursor and limit.
pub(crate) fn total(
    conn: &Connection,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<u64, StoreError> {
    let m = Matching::of(query);
    let rows = m.run(conn, tenant, "SELECT count(*)", "", &[], |row| {
        row.get::<_, i64>(0).map_err(error::sqlite)
    })?;
    Ok(rows.first().copied().unwrap_or(0).max(0) as u64)
}

/// Events per bucket over the listing's `[from, to)`.
pub(crate) fn histogram(
    conn: &Connection,
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
    let m = Matching::of(query);
    let extra: [(&str, &dyn ToSql); 2] = [(":origin", &origin), (":width", &width)];
    let rows = m.run(
        conn,
        tenant,
        "SELECT (ts - :origin) / :width AS bucket, count(*)",
        " GROUP BY bucket",
        &extra,
        |row| {
            Ok((
                row.get::<_, i64>(0).map_err(error::sqlite)?,
                row.get::<_, i64>(1).map_err(error::sqlite)?,
            ))
        },
    )?;
    let mut counts = vec![0u64; usize::try_from(n).unwrap_or(0)];
    for (bucket, count) in rows {
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| counts.get_mut(b)) {
            *slot = count.max(0) as u64;
        }
    }
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (Timestamp::from_micros(origin + i as i64 * width), c))
        .collect())
}

/// The oldest and newest `ts` a listing matches.
pub(crate) fn bounds(
    conn: &Connection,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
    let m = Matching::of(query);
    let rows = m.run(conn, tenant, "SELECT min(ts), max(ts)", "", &[], |row| {
        let min: Option<i64> = row.get(0).map_err(error::sqlite)?;
        let max: Option<i64> = row.get(1).map_err(error::sqlite)?;
        Ok(min.zip(max))
    })?;
    Ok(rows
        .into_iter()
        .next()
        .flatten()
        .map(|(a, b)| (Timestamp::from_micros(a), Timestamp::from_micros(b))))
}

/// Events per cell of a latitude/longitude grid (see `EventStore::geo_grid`).
///
/// The position is read once per matching event; SQLite's `floor` needs the optional math
/// functions, so `floor(x)` is written `CAST(x AS INTEGER) - (x < CAST(x AS INTEGER))`
/// (the cast truncates towards zero).
pub(crate) fn geo_grid(
    conn: &Connection,
    tenant: TenantId,
    query: &ListQuery,
    grid: &GeoGrid,
) -> Result<Vec<GeoCell>, StoreError> {
    grid.check()?;
    let m = Matching::of(query);
    let (lat_path, lon_path) = (json_path(&grid.lat), json_path(&grid.lon));
    let number = |p: &str| {
        format!(
            "CASE WHEN COALESCE(json_type(data, {p}), '') IN ('integer', 'real') THEN json_extract(data, {p}) END"
        )
    };
    let floor = |x: &str| format!("(CAST({x} AS INTEGER) - ({x} < CAST({x} AS INTEGER)))");
    let select = format!(
        "SELECT {row} AS r, {col} AS c, count(*) FROM (SELECT {lat} AS lat, {lon} AS lon",
        row = floor("(lat / :cell)"),
        col = floor("(lon / :cell)"),
        lat = number(":lat"),
        lon = number(":lon"),
    );
    let suffix = ") WHERE lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 \
                  GROUP BY r, c ORDER BY r, c LIMIT :limit";
    let limit = i64::try_from(grid.limit)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    let extra: [(&str, &dyn ToSql); 4] = [
        (":lat", &lat_path),
        (":lon", &lon_path),
        (":cell", &grid.cell),
        (":limit", &limit),
    ];
    let cells = m.run(conn, tenant, &select, suffix, &extra, |row| {
        let count: i64 = row.get(2).map_err(error::sqlite)?;
        Ok(GeoCell {
            row: row.get(0).map_err(error::sqlite)?,
            col: row.get(1).map_err(error::sqlite)?,
            count: count.max(0) as u64,
        })
    })?;
    if cells.len() > grid.limit {
        return Err(grid.too_many_cells());
    }
    Ok(cells)
}

/// The numeric value an aggregation reads: `value`, or JSON numbers at a data path.
fn value_expr(field: &Field, binds: &mut Binds) -> Result<String, StoreError> {
    match field {
        Field::Value => Ok("value".to_owned()),
        Field::Data(path) => {
            let p = binds.add(json_path(path));
            Ok(format!(
                "CASE WHEN COALESCE(json_type(data, {p}), '') IN ('integer', 'real') THEN json_extract(data, {p}) END"
            ))
        }
        other => Err(StoreError::InvalidQuery(format!(
            "`{other}` is not numeric: aggregate `value` or a numeric path in data"
        ))),
    }
}

/// The text a group is named by, NULL for no group.
fn group_expr(field: &Field, binds: &mut Binds) -> Result<String, StoreError> {
    match field {
        Field::Id | Field::Device | Field::Sensor | Field::Kind => {
            Ok(column(field).unwrap_or("NULL").to_owned())
        }
        Field::Value => Ok("CAST(value AS TEXT)".to_owned()),
        Field::Ts => Err(StoreError::InvalidQuery(
            "grouping by `ts` is what the interval does".into(),
        )),
        Field::Data(path) => {
            let p = binds.add(json_path(path));
            Ok(format!(
                "CASE json_type(data, {p}) WHEN 'text' THEN json_extract(data, {p}) \
                 WHEN 'integer' THEN data -> {p} WHEN 'real' THEN data -> {p} \
                 WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END"
            ))
        }
    }
}

/// Partial aggregate of one bucket of one group.
#[derive(Debug, Clone, Default)]
struct Acc {
    events: u64,
    n: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    values: Vec<f64>,
}

impl Acc {
    fn merge(&mut self, other: &Acc) {
        self.events += other.events;
        self.n += other.n;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.values.extend_from_slice(&other.values);
    }

    fn result(&mut self, agg: Agg) -> Option<f64> {
        match agg {
            Agg::Count => (self.events > 0).then_some(self.events as f64),
            Agg::Sum => (self.n > 0).then_some(self.sum),
            Agg::Avg => (self.n > 0).then(|| self.sum / self.n as f64),
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Percentile(q) => {
                if self.values.is_empty() {
                    return None;
                }
                self.values.sort_by(f64::total_cmp);
                Some(ingot_query::percentile(&self.values, q))
            }
        }
    }
}

/// Aggregates per bucket and group (see `EventStore::series`).
pub(crate) fn series(
    conn: &Connection,
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
    let mut binds = Binds::default();
    let filter = compile(&query.filter, &mut binds);
    let value = match query.agg {
        Agg::Count => "NULL".to_owned(),
        _ => value_expr(&query.field, &mut binds)?,
    };
    let group = match &query.group_by {
        Some(field) => group_expr(field, &mut binds)?,
        None => "NULL".to_owned(),
    };
    let device = required_device(&query.filter);
    let source = match device {
        // As for listings: the device index narrows the range, the filter still checks.
        Some(_) => "events INDEXED BY events_by_device WHERE tenant = :tenant AND device = :device",
        None => "events WHERE tenant = :tenant",
    };
    let inner = format!(
        "SELECT (ts - :origin) / :width AS b, {group} AS g, {value} AS v FROM {source} \
         AND ts >= :from AND ts < :to AND {filter}"
    );
    let percentile = matches!(query.agg, Agg::Percentile(_));
    let sql = if percentile {
        inner
    } else {
        format!(
            "SELECT b, g, count(*), count(v), sum(v), min(v), max(v) FROM ({inner}) GROUP BY b, g"
        )
    };
    let tenant_key = i64::from(tenant.0);
    let (from, to) = (query.from.as_micros(), query.to.as_micros());
    let mut params: Vec<(&str, &dyn ToSql)> = vec![
        (":origin", &origin),
        (":width", &width),
        (":tenant", &tenant_key),
        (":from", &from),
        (":to", &to),
    ];
    if let Some(device) = &device {
        params.push((":device", device));
    }
    binds.extend(&mut params);

    let mut groups: HashMap<Option<String>, Vec<Acc>> = HashMap::new();
    let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
    let mut rows = stmt.query(params.as_slice()).map_err(error::sqlite)?;
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        let bucket: i64 = row.get(0).map_err(error::sqlite)?;
        let name: Option<String> = row.get(1).map_err(error::sqlite)?;
        let Some(bucket) = usize::try_from(bucket).ok().filter(|&b| b < n) else {
            continue;
        };
        let acc = &mut groups
            .entry(name)
            .or_insert_with(|| vec![Acc::default(); n])[bucket];
        if percentile {
            acc.events += 1;
            if let Some(v) = row.get::<_, Option<f64>>(2).map_err(error::sqlite)? {
                acc.n += 1;
                acc.values.push(v);
            }
        } else {
            acc.events += row.get::<_, i64>(2).map_err(error::sqlite)?.max(0) as u64;
            acc.n += row.get::<_, i64>(3).map_err(error::sqlite)?.max(0) as u64;
            acc.sum += row
                .get::<_, Option<f64>>(4)
                .map_err(error::sqlite)?
                .unwrap_or(0.0);
            acc.min = row.get(5).map_err(error::sqlite)?;
            acc.max = row.get(6).map_err(error::sqlite)?;
        }
    }
    drop(rows);
    Ok(assemble(groups, query, n, origin, width))
}

/// Picks the top groups, merges the rest into `other`, and turns accumulators into points.
fn assemble(
    mut groups: HashMap<Option<String>, Vec<Acc>>,
    query: &SeriesQuery,
    n: usize,
    origin: i64,
    width: i64,
) -> Vec<Series> {
    let points = |accs: &mut [Acc]| -> Vec<(Timestamp, Option<f64>)> {
        accs.iter_mut()
            .enumerate()
            .map(|(i, acc)| {
                (
                    Timestamp::from_micros(origin + i as i64 * width),
                    acc.result(query.agg),
                )
            })
            .collect()
    };
    if query.group_by.is_none() {
        let mut accs = groups
            .remove(&None)
            .unwrap_or_else(|| vec![Acc::default(); n]);
        return vec![Series {
            group: None,
            other: false,
            points: points(&mut accs),
        }];
    }
    let mut ranked: Vec<(String, u64)> = groups
        .iter()
        .filter_map(|(name, accs)| {
            name.as_ref()
                .map(|name| (name.clone(), accs.iter().map(|a| a.events).sum()))
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
    });
    ranked.truncate(query.top);
    let mut out = Vec::with_capacity(ranked.len() + 1);
    for (name, _) in &ranked {
        let mut accs = groups.remove(&Some(name.clone())).unwrap_or_default();
        out.push(Series {
            group: Some(name.clone()),
            other: false,
            points: points(&mut accs),
        });
    }
    if query.other {
        let mut rest = vec![Acc::default(); n];
        for accs in groups.values() {
            for (into, from) in rest.iter_mut().zip(accs) {
                into.merge(from);
            }
        }
        out.push(Series {
            group: None,
            other: true,
            points: points(&mut rest),
        });
    }
    out
}

/// Per device with events in `[from, to)`: how many and the newest `ts`.
pub(crate) fn device_activity(
    conn: &Connection,
    tenant: TenantId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(String, u64, Timestamp)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT device, count(*), max(ts) FROM events \
             WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY device ORDER BY device",
        )
        .map_err(error::sqlite)?;
    let mut rows = stmt
        .query((tenant.0, from.as_micros(), to.as_micros()))
        .map_err(error::sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        let count: i64 = row.get(1).map_err(error::sqlite)?;
        out.push((
            row.get(0).map_err(error::sqlite)?,
            count.max(0) as u64,
            Timestamp::from_micros(row.get(2).map_err(error::sqlite)?),
        ));
    }
    Ok(out)
}

/// Deletes up to `limit` of a tenant's oldest events before `before`, with their payloads.
pub(crate) fn delete_before(
    conn: &mut Connection,
    tenant: TenantId,
    before: Timestamp,
    limit: usize,
) -> Result<u64, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let oldest =
        "SELECT tenant, ts, id FROM events WHERE tenant = ?1 AND ts < ?2 ORDER BY ts, id LIMIT ?3";
    tx.execute(
        &format!("DELETE FROM payloads WHERE (tenant, id) IN (SELECT tenant, id FROM ({oldest}))"),
        (tenant.0, before.as_micros(), limit),
    )
    .map_err(error::sqlite)?;
    let deleted = tx
        .execute(
            &format!("DELETE FROM events WHERE (tenant, ts, id) IN ({oldest})"),
            (tenant.0, before.as_micros(), limit),
        )
        .map_err(error::sqlite)?;
    tx.commit().map_err(error::sqlite)?;
    Ok(deleted as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_parameters_only() {
        let filter =
            ingot_query::parse("origin:\"x' OR 1=1 --\" and payload.value > 12345 and device:ab*")
                .unwrap_or_default();
        let mut binds = Binds::default();
        let sql = compile(&filter, &mut binds);
        for value in ["x'", "12345", "ab", "origin", "payload"] {
            assert!(!sql.contains(value), "{value} spliced into {sql}");
        }
        assert_eq!(
            binds.names.len(),
            5,
            "two per data-path predicate, one for the glob"
        );
    }

    #[test]
    fn a_required_device_is_found_in_top_level_ands_only() {
        let f = |t: &str| ingot_query::parse(t).unwrap_or_default();
        assert_eq!(required_device(&f("device:d1")), Some("d1"));
        assert_eq!(required_device(&f("kind:t and device:d1")), Some("d1"));
        assert_eq!(required_device(&f("device:d1 or device:d2")), None);
        assert_eq!(required_device(&f("not device:d1")), None);
        assert_eq!(required_device(&f("device:d*")), None);
        assert_eq!(required_device(&f("device > d1")), None);
    }

    /// A series or listing of one device reads the device index, not the tenant's whole
    /// time range.
    #[test]
    fn device_filters_use_the_device_index() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn =
            crate::schema::open_writer(&dir.path().join("s.db")).unwrap_or_else(|e| panic!("{e}"));
        let plan = |sql: &str| -> String {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut rows = stmt.raw_query();
            let mut lines = Vec::new();
            while let Ok(Some(row)) = rows.next() {
                lines.push(row.get::<_, String>(3).unwrap_or_default());
            }
            lines.join("\n")
        };
        let filter = ingot_query::parse("device:dev-1 and kind:temperature").unwrap_or_default();
        let query = ListQuery {
            filter,
            limit: 10,
            ..ListQuery::default()
        };
        let mut binds = Binds::default();
        let compiled = compile(&query.filter, &mut binds);
        let listing = plan(&Conditions::of(&query).sql(&compiled));
        assert!(
            listing.contains("USING INDEX events_by_device (tenant=? AND device=?"),
            "{listing}"
        );
        assert!(!listing.contains("TEMP B-TREE"), "{listing}");
    }

    #[test]
    fn glob_escapes_its_metacharacters() {
        let w = Wildcard(vec![
            WildcardPart::Literal("a*b?[c".into()),
            WildcardPart::Any,
        ]);
        assert_eq!(glob(&w), "a[*]b[?][[]c*");
        assert_eq!(
            json_path(&["payload".into(), "value".into()]),
            "$.\"payload\".\"value\""
        );
    }
}
