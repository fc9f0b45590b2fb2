//! The event store's statements: batch insert with checkpoint, listing, lookup.
//!
//! These are plain blocking functions over a [`Connection`]; `lib.rs` runs them in
//! blocking tasks.

use bytes::Bytes;
use ingot_core::{Event, EventId, JsonText, Payload, TenantId, Timestamp};
use ingot_store::{Checkpoint, Cursor, EventPage, ListQuery, StoreError, Upper, WriteOutcome};
use rusqlite::types::ToSql;
use rusqlite::{Connection, Row, TransactionBehavior};

use crate::error::{self, corrupt};
use crate::query::{self, Binds, compile};

const INSERT_EVENT: &str = "INSERT INTO events \
     (tenant, ts, id, device, sensor, kind, value, received, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING";

// The event row is new, so no payload row can exist for it; the upsert only guards
// against a stray row from outside, so that it can never wedge the writer.
const INSERT_PAYLOAD: &str = "INSERT INTO payloads (tenant, id, content_type, bytes) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (tenant, id) DO UPDATE SET content_type = excluded.content_type, \
     bytes = excluded.bytes";

const UPSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (consumer, topic, partition, next_offset) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset";

const SELECT_CHECKPOINT: &str = "SELECT partition, next_offset FROM checkpoints \
     WHERE consumer = ?1 AND topic = ?2 ORDER BY partition";

const COLUMNS: &str = "ts, id, device, sensor, kind, value, received, data";

const GET_EVENT: &str = "SELECT e.ts, e.id, e.device, e.sensor, e.kind, e.value, e.received, \
     e.data, p.content_type, p.bytes \
     FROM events e LEFT JOIN payloads p ON p.tenant = e.tenant AND p.id = e.id \
     WHERE e.tenant = ?1 AND e.id = ?2";

/// Checks what can be checked before touching the database: checkpoint offsets must fit
/// SQLite's signed 64-bit integers.
pub(crate) fn checkpoint_offsets(cp: &Checkpoint) -> Result<Vec<(u32, i64)>, StoreError> {
    cp.offsets
        .iter()
        .map(|&(partition, offset)| {
            i64::try_from(offset).map(|o| (partition, o)).map_err(|_| {
                StoreError::InvalidQuery(format!(
                    "checkpoint offset {offset} of partition {partition} is above {}",
                    i64::MAX
                ))
            })
        })
        .collect()
}

/// Inserts the events not yet stored, their payloads, and the checkpoint, in one
/// transaction.
pub(crate) fn write_batch(
    conn: &mut Connection,
    events: &[Event],
    consumer: &str,
    topic: &str,
    offsets: &[(u32, i64)],
) -> Result<WriteOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let mut outcome = WriteOutcome::default();
    {
        let mut insert = tx.prepare_cached(INSERT_EVENT).map_err(error::sqlite)?;
        for e in events {
            let changed = insert
                .execute((
                    e.tenant.0,
                    e.ts.as_micros(),
                    e.id.as_str(),
                    e.device.as_str(),
                    e.sensor.as_deref(),
                    e.kind.as_deref(),
                    e.value,
                    e.received.as_micros(),
                    e.data.as_ref().map(JsonText::as_str),
                ))
                .map_err(error::sqlite)?;
            if changed == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            if let Some(payload) = &e.payload {
                tx.prepare_cached(INSERT_PAYLOAD)
                    .and_then(|mut stmt| {
                        stmt.execute((
                            e.tenant.0,
                            e.id.as_str(),
                            payload.content_type.as_str(),
                            &payload.bytes[..],
                        ))
                    })
                    .map_err(error::sqlite)?;
            }
        }
        if !offsets.is_empty() {
            let mut upsert = tx
                .prepare_cached(UPSERT_CHECKPOINT)
                .map_err(error::sqlite)?;
            for &(partition, offset) in offsets {
                upsert
                    .execute((consumer, topic, partition, offset))
                    .map_err(error::sqlite)?;
            }
        }
    }
    tx.commit().map_err(error::sqlite)?;
    Ok(outcome)
}

/// A consumer's stored offsets, by ascending partition.
pub(crate) fn checkpoint(
    conn: &Connection,
    consumer: &str,
    topic: &str,
) -> Result<Vec<(u32, u64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(SELECT_CHECKPOINT)
        .map_err(error::sqlite)?;
    let rows = stmt
        .query_map((consumer, topic), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(error::sqlite)?;
    let mut out = Vec::new();
    for row in rows {
        let (partition, offset) = row.map_err(error::sqlite)?;
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
            // A `device:x` the filter requires narrows the range through the device index
            // just as the `device` parameter does (the filter still checks it too).
            device: query
                .device
                .as_deref()
                .or_else(|| query::required_device(&query.filter)),
            sensor: query.sensor.as_deref(),
            kind: query.kind.as_deref(),
            from: query.from.map(Timestamp::as_micros),
            upper: query.upper(),
        }
    }

    /// `FROM events … WHERE …` for these conditions, with `filter` (a compiled filter
    /// condition, `"1"` for none) appended. Named parameters only: no value from the query
    /// is ever part of the SQL text.
    pub(crate) fn source_sql(&self, filter: &str) -> String {
        let mut sql = match self.device {
            // Without statistics SQLite takes `tenant = ?` for selective and would scan the
            // tenant's whole primary key range, filtering on device. The device index is
            // never worse: the same ts range plus the device, in the same order.
            Some(_) => "FROM events INDEXED BY events_by_device \
                 WHERE tenant = :tenant AND device = :device"
                .to_owned(),
            None => "FROM events WHERE tenant = :tenant".to_owned(),
        };
        if self.sensor.is_some() {
            sql.push_str(" AND sensor = :sensor");
        }
        if self.kind.is_some() {
            sql.push_str(" AND kind = :kind");
        }
        if self.from.is_some() {
            sql.push_str(" AND ts >= :from");
        }
        match self.upper {
            Upper::None => {}
            Upper::Before(_) => sql.push_str(" AND ts < :to"),
            // A row value comparison: SQLite makes it the upper end of one range over
            // (ts, id) of the primary key or of events_by_device.
            Upper::After(..) => sql.push_str(" AND (ts, id) < (:cursor_ts, :cursor_id)"),
        }
        if filter != "1" {
            sql.push_str(" AND ");
            sql.push_str(filter);
        }
        sql
    }

    /// The listing statement for these conditions. Without a filter there are 48 distinct
    /// texts (four optional filters, three kinds of upper end), so all stay in the
    /// statement cache.
    pub(crate) fn sql(&self, filter: &str) -> String {
        format!(
            "SELECT {COLUMNS} {} ORDER BY ts DESC, id DESC LIMIT :limit",
            self.source_sql(filter)
        )
    }

    /// The parameters of [`Conditions::source_sql`] (not the filter's, not `:limit`).
    pub(crate) fn params<'a>(&'a self, tenant_key: &'a i64) -> Vec<(&'a str, &'a dyn ToSql)> {
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":tenant", tenant_key)];
        for (name, value) in [
            (":device", &self.device),
            (":sensor", &self.sensor),
            (":kind", &self.kind),
        ] {
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        if let Some(from) = &self.from {
            params.push((":from", from));
        }
        match &self.upper {
            Upper::None => {}
            Upper::Before(to) => params.push((":to", to)),
            Upper::After(ts, id) => {
                params.extend([(":cursor_ts", ts as &dyn ToSql), (":cursor_id", id)])
            }
        }
        params
    }
}

/// One page of a tenant's events, newest first. Reads one row past the page to know
/// whether a next page exists.
pub(crate) fn list(
    conn: &Connection,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<EventPage, StoreError> {
    query.check()?;
    let cond = Conditions::of(query);
    let tenant_key = i64::from(tenant.0);
    // `ListQuery::check` bounds the limit by MAX_PAGE, far below i64::MAX.
    let fetch = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);

    let mut binds = Binds::default();
    let filter = compile(&query.filter, &mut binds);
    let mut params = cond.params(&tenant_key);
    params.push((":limit", &fetch));
    binds.extend(&mut params);
    let mut stmt = conn
        .prepare_cached(&cond.sql(&filter))
        .map_err(error::sqlite)?;
    let mut rows = stmt.query(params.as_slice()).map_err(error::sqlite)?;
    let mut events = Vec::with_capacity(query.limit.min(1024));
    let mut more = false;
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        if events.len() == query.limit {
            more = true;
            break;
        }
        events.push(event_from_row(tenant, row)?);
    }
    let next = if more {
        events.last().map(Cursor::after)
    } else {
        None
    };
    drop(rows);
    let total = if query.total {
        Some(query::total(conn, tenant, query)?)
    } else {
        None
    };
    let histogram = match query.histogram {
        Some(interval) => Some(query::histogram(conn, tenant, query, interval)?),
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
pub(crate) fn get(
    conn: &Connection,
    tenant: TenantId,
    id: &EventId,
) -> Result<Option<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(GET_EVENT).map_err(error::sqlite)?;
    let mut rows = stmt.query((tenant.0, id.as_str())).map_err(error::sqlite)?;
    let Some(row) = rows.next().map_err(error::sqlite)? else {
        return Ok(None);
    };
    let mut event = event_from_row(tenant, row)?;
    let content_type: Option<String> = row.get(8).map_err(error::sqlite)?;
    if let Some(content_type) = content_type {
        let bytes: Vec<u8> = row.get(9).map_err(error::sqlite)?;
        event.payload = Some(Payload {
            content_type,
            bytes: Bytes::from(bytes),
        });
    }
    Ok(Some(event))
}

/// Builds an event from the first eight columns, in [`COLUMNS`] order.
fn event_from_row(tenant: TenantId, row: &Row<'_>) -> Result<Event, StoreError> {
    let id: String = row.get(1).map_err(error::sqlite)?;
    let data: Option<String> = row.get(7).map_err(error::sqlite)?;
    Ok(Event {
        id: EventId::parse(&id).map_err(|reason| corrupt(format!("event id {id:?} {reason}")))?,
        tenant,
        device: row.get(2).map_err(error::sqlite)?,
        sensor: row.get(3).map_err(error::sqlite)?,
        ts: Timestamp::from_micros(row.get(0).map_err(error::sqlite)?),
        received: Timestamp::from_micros(row.get(6).map_err(error::sqlite)?),
        kind: row.get(4).map_err(error::sqlite)?,
        value: row.get(5).map_err(error::sqlite)?,
        // Only JsonText is ever written to this column.
        data: data.map(JsonText::from_trusted),
        payload: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        // Parameters stay unbound (NULL): the plan does not depend on their values.
        let mut rows = stmt.raw_query();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().expect("plan row") {
            lines.push(row.get::<_, String>(3).expect("plan detail"));
        }
        lines.join("\n")
    }

    /// Every shape of the listing statement reads one index in order: no full scan, no
    /// sort, and the time bounds and cursor narrow the range rather than filter it.
    /// Without a device the clustered primary key serves; with one, `events_by_device`.
    #[test]
    fn listing_plans_use_the_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = crate::schema::open_writer(&dir.path().join("s.db")).expect("open");
        let cursor = Cursor {
            ts: Timestamp::EPOCH,
            id: EventId::parse("x").expect("id"),
        };
        let mut texts = std::collections::HashSet::new();
        for shape in 0..128u32 {
            let on = |bit: u32| shape & (1 << bit) != 0;
            // Bit 6 puts `to` after the cursor (the cursor is the upper end) or not.
            let to = if on(6) {
                Timestamp::from_micros(1)
            } else {
                Timestamp::from_micros(-1)
            };
            let q = ListQuery {
                device: on(0).then(|| "d".to_owned()),
                sensor: on(1).then(|| "s".to_owned()),
                kind: on(2).then(|| "k".to_owned()),
                from: on(3).then_some(Timestamp::from_micros(-9)),
                to: on(4).then_some(to),
                limit: 10,
                cursor: on(5).then(|| cursor.clone()),
                ..ListQuery::default()
            };
            let cond = Conditions::of(&q);
            let sql = cond.sql("1");
            let plan = plan(&conn, &sql);
            texts.insert(sql);
            assert!(!plan.contains("TEMP B-TREE"), "sorts: {q:?}\n{plan}");
            assert!(!plan.contains("SCAN"), "full scan: {q:?}\n{plan}");
            let range = if on(0) {
                "SEARCH events USING INDEX events_by_device (tenant=? AND device=?"
            } else {
                "SEARCH events USING PRIMARY KEY (tenant=?"
            };
            assert!(plan.starts_with(range), "{q:?}\n{plan}");
            let upper = match cond.upper {
                Upper::None => None,
                Upper::Before(_) => Some("ts<?"),
                Upper::After(..) => Some("(ts,id)<(?,?)"),
            };
            if let Some(upper) = upper {
                assert!(
                    plan.contains(upper),
                    "upper end not in the range: {q:?}\n{plan}"
                );
            }
            if on(3) {
                assert!(
                    plan.contains("ts>?"),
                    "from not in the range: {q:?}\n{plan}"
                );
            }
        }
        assert_eq!(texts.len(), 48, "statement shapes");
    }

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
        let only_to = ListQuery {
            to: Some(Timestamp::from_micros(3)),
            ..ListQuery::default()
        };
        assert_eq!(Conditions::of(&only_to).upper, Upper::Before(3));
        assert_eq!(Conditions::of(&ListQuery::default()).upper, Upper::None);
    }

    #[test]
    fn lookups_use_the_unique_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = crate::schema::open_writer(&dir.path().join("s.db")).expect("open");
        let get = plan(&conn, GET_EVENT);
        assert!(
            get.contains("SEARCH e USING INDEX events_by_id (tenant=? AND id=?)"),
            "{get}"
        );
        assert!(
            get.contains("SEARCH p USING INDEX sqlite_autoindex_payloads_1 (tenant=? AND id=?)"),
            "{get}"
        );
        let cp = plan(&conn, SELECT_CHECKPOINT);
        assert!(
            cp.contains("USING PRIMARY KEY (consumer=? AND topic=?)"),
            "{cp}"
        );
        assert!(!cp.contains("TEMP B-TREE"), "{cp}");
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
            ..ListQuery::default()
        };
        let sql = Conditions::of(&q).sql("1");
        for value in [
            "x'",
            "probe1",
            "temperature",
            "123456",
            "654321",
            "77",
            "c1",
        ] {
            assert!(!sql.contains(value), "{value} spliced into {sql}");
        }
    }
}
