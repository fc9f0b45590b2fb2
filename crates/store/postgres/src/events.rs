//! The event store's statements: batch write with checkpoint, listing, lookup.
//!
//! # Writing a batch
//!
//! One transaction on one connection:
//!
//! 1. The batch is deduplicated here on `(tenant, id)`, first occurrence kept (so "first
//!    write wins" holds inside a batch, and the staging rows are unique).
//! 2. The rows are sent with `COPY … FROM STDIN (FORMAT binary)` into
//!    `pg_temp.ingot_staging`, a temporary table of this session (`ON COMMIT DELETE
//!    ROWS`; not WAL-logged, no index), created the first time the connection writes.
//! 3. One `INSERT INTO events … SELECT … FROM staging ORDER BY tenant, id ON CONFLICT DO
//!    NOTHING` stores the new ones; its row count is `inserted`, the rest of the batch is
//!    `duplicates`. Sorting by `(tenant, id)` makes every writer take the unique index's
//!    entries in the same order, so concurrent writers of overlapping batches wait for
//!    each other instead of deadlocking. Payloads are inserted in the same statement, for
//!    the rows the insert returned only (so a duplicate never replaces a payload).
//! 4. The checkpoint is upserted, and the transaction commits.
//!
//! In the hypertable layout step 3 first inserts `(tenant, id, ts)` into `event_ids`
//! (its primary key is the idempotency check) and then the events whose ids it returned.

use std::borrow::Cow;
use std::collections::HashSet;

use bytes::Bytes;
use ingot_core::{Event, EventId, JsonText, Payload, TenantId, Timestamp};
use ingot_query::Filter;
use ingot_store::{Checkpoint, Cursor, EventPage, ListQuery, StoreError, Upper, WriteOutcome};
use tokio_postgres::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::error::{self, corrupt};
use crate::json::{Jsonb, JsonbText, for_jsonb};
use crate::pool::{Conn, prepare_cached};
use crate::query::{self, Params, compile};
use crate::schema::Layout;

const CREATE_STAGING: &str = r#"CREATE TEMPORARY TABLE IF NOT EXISTS ingot_staging (
    tenant       bigint NOT NULL,
    ts           bigint NOT NULL,
    received     bigint NOT NULL,
    value        double precision,
    id           text COLLATE "C" NOT NULL,
    device       text NOT NULL,
    sensor       text,
    kind         text,
    data         jsonb,
    data_text    text,
    content_type text,
    bytes        bytea
) ON COMMIT DELETE ROWS"#;

const COPY_STAGING: &str = "COPY pg_temp.ingot_staging \
     (tenant, ts, received, value, id, device, sensor, kind, data, data_text, content_type, bytes) \
     FROM STDIN (FORMAT binary)";

/// The staging columns' types, in [`COPY_STAGING`] order.
const STAGING_TYPES: [Type; 12] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::FLOAT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
];

/// Plain layout, no payload in the batch: the row count is the number inserted.
const INSERT_PLAIN: &str = "INSERT INTO events \
     (tenant, ts, received, value, id, device, sensor, kind, data, data_text) \
     SELECT tenant, ts, received, value, id, device, sensor, kind, data, data_text \
     FROM pg_temp.ingot_staging ORDER BY tenant, id ON CONFLICT DO NOTHING";

/// Plain layout with payloads: also stores the payloads of the inserted rows.
const INSERT_PLAIN_PAYLOADS: &str = "WITH ins AS (INSERT INTO events \
     (tenant, ts, received, value, id, device, sensor, kind, data, data_text) \
     SELECT tenant, ts, received, value, id, device, sensor, kind, data, data_text \
     FROM pg_temp.ingot_staging ORDER BY tenant, id ON CONFLICT DO NOTHING \
     RETURNING tenant, id), \
     pay AS (INSERT INTO payloads (tenant, id, content_type, bytes) \
     SELECT s.tenant, s.id, s.content_type, s.bytes FROM pg_temp.ingot_staging s \
     JOIN ins ON ins.tenant = s.tenant AND ins.id = s.id WHERE s.bytes IS NOT NULL \
     ON CONFLICT (tenant, id) DO UPDATE SET content_type = excluded.content_type, \
     bytes = excluded.bytes) \
     SELECT count(*) FROM ins";

/// Hypertable layout: `event_ids` decides what is new (untested here, see `schema.rs`).
const INSERT_HYPERTABLE: &str = "WITH ids AS (INSERT INTO event_ids (tenant, id, ts) \
     SELECT tenant, id, ts FROM pg_temp.ingot_staging ORDER BY tenant, id \
     ON CONFLICT DO NOTHING RETURNING tenant, id), \
     ins AS (INSERT INTO events \
     (tenant, ts, received, value, id, device, sensor, kind, data, data_text) \
     SELECT s.tenant, s.ts, s.received, s.value, s.id, s.device, s.sensor, s.kind, s.data, \
     s.data_text FROM pg_temp.ingot_staging s \
     JOIN ids ON ids.tenant = s.tenant AND ids.id = s.id RETURNING tenant, id), \
     pay AS (INSERT INTO payloads (tenant, id, content_type, bytes) \
     SELECT s.tenant, s.id, s.content_type, s.bytes FROM pg_temp.ingot_staging s \
     JOIN ins ON ins.tenant = s.tenant AND ins.id = s.id WHERE s.bytes IS NOT NULL \
     ON CONFLICT (tenant, id) DO UPDATE SET content_type = excluded.content_type, \
     bytes = excluded.bytes) \
     SELECT count(*) FROM ins";

const UPSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (consumer, topic, partition, next_offset) \
     SELECT $1::text, $2::text, p, o FROM unnest($3::bigint[], $4::bigint[]) AS t (p, o) \
     ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset";

const SELECT_CHECKPOINT: &str = "SELECT partition, next_offset FROM checkpoints \
     WHERE consumer = $1 AND topic = $2 ORDER BY partition";

/// The columns [`event_from_row`] reads, in order.
pub(crate) const COLUMNS: &str = "ts, id, device, sensor, kind, value, received, data, data_text";

const GET_PLAIN: &str = "SELECT e.ts, e.id, e.device, e.sensor, e.kind, e.value, e.received, \
     e.data, e.data_text, p.content_type, p.bytes \
     FROM events e LEFT JOIN payloads p ON p.tenant = e.tenant AND p.id = e.id \
     WHERE e.tenant = $1 AND e.id = $2";

/// Hypertable layout: `ts` from `event_ids` first, so the lookup uses the primary key of
/// one chunk instead of probing every chunk.
const GET_HYPERTABLE: &str = "SELECT e.ts, e.id, e.device, e.sensor, e.kind, e.value, \
     e.received, e.data, e.data_text, p.content_type, p.bytes \
     FROM event_ids i JOIN events e ON e.tenant = i.tenant AND e.ts = i.ts AND e.id = i.id \
     LEFT JOIN payloads p ON p.tenant = e.tenant AND p.id = e.id \
     WHERE i.tenant = $1 AND i.id = $2";

/// Checks what can be checked before touching the database: offsets must fit `bigint`.
/// Returns `(partition, offset)` pairs, one per partition (the last one named wins).
pub(crate) fn checkpoint_offsets(cp: &Checkpoint) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(cp.offsets.len());
    for &(partition, offset) in &cp.offsets {
        let offset = i64::try_from(offset).map_err(|_| {
            StoreError::InvalidQuery(format!(
                "checkpoint offset {offset} of partition {partition} is above {}",
                i64::MAX
            ))
        })?;
        let partition = i64::from(partition);
        match out.iter_mut().find(|(p, _)| *p == partition) {
            Some(slot) => slot.1 = offset,
            None => out.push((partition, offset)),
        }
    }
    Ok(out)
}

/// Text PostgreSQL can hold: it has no NUL character, so one becomes U+FFFD. Names are
/// validated at ingest and never hold one; this keeps a stray one from failing a batch
/// on every retry.
fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Stores the events not yet stored, their payloads, and the checkpoint, in one
/// transaction (see the module docs).
pub(crate) async fn write_batch(
    conn: &mut Conn,
    layout: Layout,
    events: &[Event],
    consumer: &str,
    topic: &str,
    offsets: &[(i64, i64)],
) -> Result<WriteOutcome, StoreError> {
    let mut seen: HashSet<(TenantId, &str)> = HashSet::with_capacity(events.len());
    let firsts: Vec<&Event> = events
        .iter()
        .filter(|e| seen.insert((e.tenant, e.id.as_str())))
        .collect();
    if !firsts.is_empty() && !conn.staging {
        conn.client
            .batch_execute(CREATE_STAGING)
            .await
            .map_err(error::pg)?;
        conn.staging = true;
    }
    let (client, cache) = conn.parts();
    let tx = client.transaction().await.map_err(error::pg)?;
    let mut inserted = 0u64;
    if !firsts.is_empty() {
        copy_to_staging(&tx, &firsts).await?;
        let with_payloads = firsts.iter().any(|e| e.payload.is_some());
        let (sql, counted) = match (layout, with_payloads) {
            (Layout::Plain, false) => (INSERT_PLAIN, false),
            (Layout::Plain, true) => (INSERT_PLAIN_PAYLOADS, true),
            (Layout::Hypertable, _) => (INSERT_HYPERTABLE, true),
        };
        let statement = prepare_cached(cache, &tx, sql).await?;
        inserted = if counted {
            let row = tx.query_one(&statement, &[]).await.map_err(error::pg)?;
            u64::try_from(row.try_get::<_, i64>(0).map_err(error::pg)?).unwrap_or(0)
        } else {
            tx.execute(&statement, &[]).await.map_err(error::pg)?
        };
    }
    if !offsets.is_empty() {
        let partitions: Vec<i64> = offsets.iter().map(|&(p, _)| p).collect();
        let next: Vec<i64> = offsets.iter().map(|&(_, o)| o).collect();
        let statement = prepare_cached(cache, &tx, UPSERT_CHECKPOINT).await?;
        tx.execute(&statement, &[&consumer, &topic, &partitions, &next])
            .await
            .map_err(error::pg)?;
    }
    tx.commit().await.map_err(error::pg)?;
    let inserted = usize::try_from(inserted)
        .unwrap_or(usize::MAX)
        .min(events.len());
    Ok(WriteOutcome {
        inserted,
        duplicates: events.len() - inserted,
    })
}

/// Sends `events` into the staging table with a binary COPY.
async fn copy_to_staging(
    tx: &tokio_postgres::Transaction<'_>,
    events: &[&Event],
) -> Result<(), StoreError> {
    let sink = tx.copy_in(COPY_STAGING).await.map_err(error::pg)?;
    let writer = BinaryCopyInWriter::new(sink, &STAGING_TYPES);
    let mut writer = std::pin::pin!(writer);
    for e in events {
        let tenant = i64::from(e.tenant.0);
        let ts = e.ts.as_micros();
        let received = e.received.as_micros();
        let device = pg_text(&e.device);
        let device: &str = &device;
        let id = e.id.as_str();
        let sensor = e.sensor.as_deref().map(pg_text);
        let kind = e.kind.as_deref().map(pg_text);
        let (data, data_text) = match &e.data {
            Some(json) => {
                let text = json.as_str();
                match for_jsonb(text) {
                    Cow::Borrowed(same) => (Some(Cow::Borrowed(same)), None),
                    // jsonb holds a lossless-enough copy; `data_text` the exact text.
                    Cow::Owned(sanitized) => (Some(Cow::Owned(sanitized)), Some(text)),
                }
            }
            None => (None, None),
        };
        let data = data.as_deref().map(Jsonb);
        let content_type = e.payload.as_ref().map(|p| pg_text(&p.content_type));
        let bytes = e.payload.as_ref().map(|p| &p.bytes[..]);
        let row: [&(dyn ToSql + Sync); 12] = [
            &tenant,
            &ts,
            &received,
            &e.value,
            &id,
            &device,
            &sensor.as_deref(),
            &kind.as_deref(),
            &data,
            &data_text,
            &content_type.as_deref(),
            &bytes,
        ];
        writer.as_mut().write(&row).await.map_err(error::pg)?;
    }
    writer.as_mut().finish().await.map_err(error::pg)?;
    Ok(())
}

/// A consumer's stored offsets, by ascending partition.
pub(crate) async fn checkpoint(
    conn: &mut Conn,
    consumer: &str,
    topic: &str,
) -> Result<Vec<(u32, u64)>, StoreError> {
    let statement = conn.prepare(SELECT_CHECKPOINT).await?;
    let rows = conn
        .client
        .query(&statement, &[&consumer, &topic])
        .await
        .map_err(error::pg)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let partition: i64 = row.try_get(0).map_err(error::pg)?;
        let offset: i64 = row.try_get(1).map_err(error::pg)?;
        let partition = u32::try_from(partition).map_err(|_| corrupt("checkpoint partition"))?;
        let offset = u64::try_from(offset).map_err(|_| corrupt("checkpoint offset"))?;
        out.push((partition, offset));
    }
    Ok(out)
}

/// A listing's conditions, with the upper end already reduced to the stricter bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conditions<'q> {
    pub(crate) device: Option<&'q str>,
    pub(crate) sensor: Option<&'q str>,
    pub(crate) kind: Option<&'q str>,
    pub(crate) from: Option<i64>,
    pub(crate) upper: Upper<'q>,
}

impl<'q> Conditions<'q> {
    pub(crate) fn of(query: &'q ListQuery) -> Conditions<'q> {
        Conditions {
            device: query.device.as_deref(),
            sensor: query.sensor.as_deref(),
            kind: query.kind.as_deref(),
            from: query.from.map(Timestamp::as_micros),
            upper: query.upper(),
        }
    }

    /// `FROM events WHERE …` for these conditions and `filter`, binding every value in
    /// `params`: no value from the query is ever part of the SQL text.
    pub(crate) fn selection(
        &self,
        tenant: TenantId,
        filter: &Filter,
        params: &mut Params,
    ) -> String {
        let mut sql = format!(
            "FROM events WHERE tenant = {}::bigint",
            params.bind(i64::from(tenant.0))
        );
        for (column, value) in [
            ("device", self.device),
            ("sensor", self.sensor),
            ("kind", self.kind),
        ] {
            if let Some(value) = value {
                let v = params.bind(value.to_owned());
                sql.push_str(&format!(" AND {column} = {v}::text"));
            }
        }
        if let Some(from) = self.from {
            sql.push_str(&format!(" AND ts >= {}::bigint", params.bind(from)));
        }
        match self.upper {
            Upper::None => {}
            Upper::Before(to) => sql.push_str(&format!(" AND ts < {}::bigint", params.bind(to))),
            // A row comparison: the B-tree makes it the upper end of one range over
            // (ts, id) of the primary key or of events_by_device.
            Upper::After(ts, id) => {
                let t = params.bind(ts);
                let i = params.bind(id.to_owned());
                sql.push_str(&format!(" AND (ts, id) < ({t}::bigint, {i}::text)"));
            }
        }
        if !filter.is_all() {
            sql.push_str(" AND ");
            sql.push_str(&compile(filter, params));
        }
        sql
    }

    /// The listing statement: newest first, `LIMIT` bound last.
    pub(crate) fn sql(
        &self,
        tenant: TenantId,
        filter: &Filter,
        limit: i64,
        params: &mut Params,
    ) -> String {
        let selection = self.selection(tenant, filter, params);
        let limit = params.bind(limit);
        format!("SELECT {COLUMNS} {selection} ORDER BY ts DESC, id DESC LIMIT {limit}::bigint")
    }
}

/// One page of a tenant's events, newest first. Reads one row past the page to know
/// whether a next page exists.
pub(crate) async fn list(
    conn: &mut Conn,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<EventPage, StoreError> {
    query.check()?;
    let cond = Conditions::of(query);
    // `ListQuery::check` bounds the limit by MAX_PAGE, far below i64::MAX.
    let fetch = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
    let mut params = Params::default();
    let sql = cond.sql(tenant, &query.filter, fetch, &mut params);
    let statement = conn.prepare(&sql).await?;
    let rows = conn
        .client
        .query(&statement, &params.refs())
        .await
        .map_err(error::pg)?;
    let more = rows.len() > query.limit;
    let mut events = Vec::with_capacity(rows.len().min(query.limit));
    for row in rows.iter().take(query.limit) {
        events.push(event_from_row(tenant, row)?);
    }
    let next = if more {
        events.last().map(Cursor::after)
    } else {
        None
    };
    let total = if query.total {
        Some(query::total(conn, tenant, query).await?)
    } else {
        None
    };
    let histogram = match query.histogram {
        Some(interval) => Some(query::histogram(conn, tenant, query, interval).await?),
        None => None,
    };
    Ok(EventPage {
        events,
        next,
        total,
        histogram,
    })
}

/// One event with its payload.
pub(crate) async fn get(
    conn: &mut Conn,
    layout: Layout,
    tenant: TenantId,
    id: &EventId,
) -> Result<Option<Event>, StoreError> {
    let sql = match layout {
        Layout::Plain => GET_PLAIN,
        Layout::Hypertable => GET_HYPERTABLE,
    };
    let statement = conn.prepare(sql).await?;
    let row = conn
        .client
        .query_opt(&statement, &[&i64::from(tenant.0), &id.as_str()])
        .await
        .map_err(error::pg)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut event = event_from_row(tenant, &row)?;
    let content_type: Option<String> = row.try_get(9).map_err(error::pg)?;
    if let Some(content_type) = content_type {
        let bytes: Vec<u8> = row.try_get(10).map_err(error::pg)?;
        event.payload = Some(Payload {
            content_type,
            bytes: Bytes::from(bytes),
        });
    }
    Ok(Some(event))
}

/// Builds an event from the first columns, in [`COLUMNS`] order.
fn event_from_row(tenant: TenantId, row: &Row) -> Result<Event, StoreError> {
    let id: &str = row.try_get(1).map_err(error::pg)?;
    let data: Option<JsonbText> = row.try_get(7).map_err(error::pg)?;
    let data_text: Option<String> = row.try_get(8).map_err(error::pg)?;
    // `data_text` is set only when jsonb could not hold the text exactly; it was written
    // from a JsonText. The jsonb column is compacted server output, valid JSON.
    let data = data_text
        .map(JsonText::from_trusted)
        .or_else(|| data.map(|d| JsonText::from_trusted(d.0)));
    Ok(Event {
        id: EventId::parse(id).map_err(|reason| corrupt(format!("event id {id:?} {reason}")))?,
        tenant,
        device: row.try_get(2).map_err(error::pg)?,
        sensor: row.try_get(3).map_err(error::pg)?,
        ts: Timestamp::from_micros(row.try_get(0).map_err(error::pg)?),
        received: Timestamp::from_micros(row.try_get(6).map_err(error::pg)?),
        kind: row.try_get(4).map_err(error::pg)?,
        value: row.try_get(5).map_err(error::pg)?,
        data,
        payload: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stricter_upper_end_wins() {
        let id = EventId::parse("m").expect("id");
        let q = |to: i64, ts: i64| ListQuery {
            to: Some(Timestamp::from_micros(to)),
            cursor: Some(Cursor {
                ts: Timestamp::from_micros(ts),
                id: id.clone(),
            }),
            ..ListQuery::default()
        };
        assert_eq!(Conditions::of(&q(10, 9)).upper, Upper::After(9, "m"));
        assert_eq!(Conditions::of(&q(10, 10)).upper, Upper::Before(10));
        assert_eq!(Conditions::of(&q(10, 11)).upper, Upper::Before(10));
        assert_eq!(Conditions::of(&ListQuery::default()).upper, Upper::None);
    }

    #[test]
    fn listing_sql_holds_no_values() {
        let q = ListQuery {
            device: Some("x' OR 1=1 --".to_owned()),
            sensor: Some("probe1".to_owned()),
            kind: Some("temperature".to_owned()),
            from: Some(Timestamp::from_micros(123_456)),
            to: Some(Timestamp::from_micros(654_321)),
            limit: 77,
            cursor: Some(Cursor {
                ts: Timestamp::from_micros(5),
                id: EventId::parse("c1").expect("id"),
            }),
            filter: ingot_query::parse("origin:seville").unwrap_or_default(),
            ..ListQuery::default()
        };
        let mut params = Params::default();
        let sql = Conditions::of(&q).sql(TenantId(42), &q.filter, 78, &mut params);
        for value in [
            "x'",
            "probe1",
            "temperature",
            "123456",
            "654321",
            "78",
            "c1",
            "42",
            "seville",
            "origin",
        ] {
            assert!(!sql.contains(value), "{value} spliced into {sql}");
        }
        // tenant, device, sensor, kind, from, cursor ts + id, path, text, limit.
        assert_eq!(params.len(), 10, "{sql}");
    }

    #[test]
    fn checkpoint_offsets_are_checked_and_deduplicated() {
        let cp = |offsets: &[(u32, u64)]| Checkpoint {
            consumer: "c".into(),
            topic: "t".into(),
            offsets: offsets.to_vec(),
        };
        assert_eq!(
            checkpoint_offsets(&cp(&[(1, 5), (0, 3), (1, 9)])).expect("fits"),
            vec![(1, 9), (0, 3)]
        );
        assert!(matches!(
            checkpoint_offsets(&cp(&[(0, u64::MAX)])),
            Err(StoreError::InvalidQuery(_))
        ));
    }

    /// A store with a realistic table: two tenants, 200 devices, three sensors and kinds,
    /// 40,000 events over a day, with planner statistics.
    async fn loaded() -> Option<(crate::PostgresStore, crate::support::TestDb)> {
        let db = crate::support::test_db().await?;
        let options = crate::PostgresOptions {
            schema: Some(db.schema.clone()),
            pool_size: 2,
            ..crate::PostgresOptions::default()
        };
        let store = crate::PostgresStore::connect_with(&db.url, options)
            .await
            .expect("connect");
        let event = |tenant: u32, n: i64| Event {
            id: EventId::parse(&format!("e{n:06}")).expect("id"),
            tenant: TenantId(tenant),
            device: format!("dev-{}", n % 200),
            sensor: Some(format!("s{}", n % 3)),
            ts: Timestamp::from_micros(n * 2_000_000),
            received: Timestamp::from_micros(n * 2_000_000),
            kind: Some(["temperature", "co2", "humidity"][(n % 3) as usize].to_owned()),
            value: Some(n as f64 / 10.0),
            data: Some(JsonText::from_trusted(format!(
                r#"{{"n":{n},"city":"c{}"}}"#,
                n % 7
            ))),
            payload: None,
        };
        let cp = Checkpoint {
            consumer: "c".into(),
            topic: "t".into(),
            offsets: vec![],
        };
        for chunk in 0..8i64 {
            let tenant = if chunk < 6 { 1 } else { 2 };
            let events: Vec<Event> = (chunk * 5_000..(chunk + 1) * 5_000)
                .map(|n| event(tenant, n))
                .collect();
            ingot_store::EventStore::write_batch(&store, events, &cp)
                .await
                .expect("write");
        }
        let conn = store.inner.pool.get().await.expect("conn");
        conn.client
            .batch_execute("ANALYZE events")
            .await
            .expect("analyze");
        drop(conn);
        Some((store, db))
    }

    /// A parameter as an SQL literal, for `EXECUTE` of a generic plan (test values only).
    fn literal(param: &(dyn ToSql + Sync)) -> String {
        let text = format!("{param:?}");
        match text.parse::<i64>() {
            Ok(n) => n.to_string(),
            Err(_) => format!("'{}'", text.trim_matches('"')),
        }
    }

    /// Every shape of the listing statement reads one index backwards in order: no
    /// sequential scan, no sort, and the time bounds and the cursor are index conditions,
    /// not filters. Without a device, `events_pkey` serves; with one, `events_by_device`.
    /// Checked for the plan of the actual values and for the generic plan PostgreSQL may
    /// switch a prepared statement to.
    #[tokio::test]
    async fn listing_plans_use_the_indexes() {
        let Some((store, _db)) = loaded().await else {
            return;
        };
        let conn = store.inner.pool.get().await.expect("conn");
        let cursor = Cursor {
            ts: Timestamp::from_micros(30_000 * 2_000_000),
            id: EventId::parse("e030000").expect("id"),
        };
        let mut shapes = HashSet::new();
        for shape in 0..128u32 {
            let on = |bit: u32| shape & (1 << bit) != 0;
            // Bit 6 puts `to` after the cursor (the cursor is the upper end) or not.
            let to = if on(6) { 50_000 } else { 20_000 } * 2_000_000;
            let q = ListQuery {
                device: on(0).then(|| "dev-7".to_owned()),
                sensor: on(1).then(|| "s1".to_owned()),
                kind: on(2).then(|| "co2".to_owned()),
                from: on(3).then_some(Timestamp::from_micros(10_000 * 2_000_000)),
                to: on(4).then_some(Timestamp::from_micros(to)),
                limit: 100,
                cursor: on(5).then(|| cursor.clone()),
                ..ListQuery::default()
            };
            let cond = Conditions::of(&q);
            let mut params = Params::default();
            let sql = cond.sql(TenantId(1), &q.filter, 101, &mut params);
            shapes.insert(sql.clone());
            let custom: Vec<String> = conn
                .client
                .query(&format!("EXPLAIN (COSTS OFF) {sql}"), &params.refs())
                .await
                .expect("explain")
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect();
            let args: Vec<String> = params.refs().into_iter().map(literal).collect();
            conn.client
                .batch_execute(&format!(
                    "SET plan_cache_mode = force_generic_plan; PREPARE listing AS {sql}"
                ))
                .await
                .expect("prepare");
            let generic: Vec<String> = conn
                .client
                .query(
                    &format!("EXPLAIN (COSTS OFF) EXECUTE listing({})", args.join(", ")),
                    &[],
                )
                .await
                .expect("explain generic")
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect();
            conn.client
                .batch_execute("DEALLOCATE listing; RESET plan_cache_mode")
                .await
                .expect("deallocate");
            for (kind, lines) in [("custom", custom), ("generic", generic)] {
                let plan = lines.join("\n");
                let index = if on(0) {
                    "events_by_device"
                } else {
                    "events_pkey"
                };
                assert!(
                    plan.contains(&format!("Index Scan Backward using {index} on events")),
                    "{kind} plan of {q:?} does not read {index}:\n{plan}"
                );
                assert!(!plan.contains("Sort"), "{kind} plan sorts: {q:?}\n{plan}");
                assert!(
                    !plan.contains("Seq Scan"),
                    "{kind} plan scans: {q:?}\n{plan}"
                );
                let cond_line = lines
                    .iter()
                    .find(|l| l.trim_start().starts_with("Index Cond"))
                    .cloned()
                    .unwrap_or_default();
                match cond.upper {
                    Upper::None => {}
                    Upper::Before(_) => assert!(
                        cond_line.contains("ts <"),
                        "{kind}: `to` is not in the index range: {q:?}\n{plan}"
                    ),
                    Upper::After(..) => assert!(
                        cond_line.contains("ROW(ts, id) <"),
                        "{kind}: the cursor is not in the index range: {q:?}\n{plan}"
                    ),
                }
                if on(3) {
                    assert!(
                        cond_line.contains("ts >="),
                        "{kind}: `from` is not in the index range: {q:?}\n{plan}"
                    );
                }
            }
        }
        assert_eq!(shapes.len(), 48, "statement shapes");
    }

    /// The page statement returns what the plans promise: one page of one device, deep in
    /// the table, with the cursor, equals the tail of the full listing.
    #[tokio::test]
    async fn deep_pages_match_the_full_listing() {
        let Some((store, _db)) = loaded().await else {
            return;
        };
        let mut conn = store.inner.pool.get().await.expect("conn");
        let all = ListQuery {
            device: Some("dev-7".into()),
            limit: ingot_store::MAX_PAGE,
            ..ListQuery::default()
        };
        let everything = list(&mut conn, TenantId(1), &all)
            .await
            .expect("list")
            .events;
        assert_eq!(everything.len(), 150);
        let page = list(
            &mut conn,
            TenantId(1),
            &ListQuery {
                limit: 10,
                cursor: Some(Cursor::after(&everything[99])),
                ..all.clone()
            },
        )
        .await
        .expect("page");
        assert_eq!(page.events, everything[100..110].to_vec());
        assert_eq!(page.next, Some(Cursor::after(&everything[109])));
    }

    #[test]
    fn nul_is_the_only_text_changed() {
        assert!(matches!(pg_text("probe-7"), Cow::Borrowed("probe-7")));
        assert_eq!(pg_text("a\0b"), "a\u{FFFD}b");
    }
}
