//! The conformance suite every [`Store`] backend runs unchanged (feature `testing`).
//!
//! Each check is a public async function taking a fresh, empty store. A backend's test crate
//! stamps out one `#[tokio::test]` per check with
//! [`store_conformance_tests!`](crate::store_conformance_tests):
//!
//! ```text
//! // crates/store/<backend>/tests/conformance.rs
//! struct Fresh { store: MyStore, _dir: tempfile::TempDir }
//! impl std::ops::Deref for Fresh {
//!     type Target = MyStore;
//!     fn deref(&self) -> &MyStore { &self.store }
//! }
//! async fn fresh() -> Fresh { /* a new, empty store */ }
//!
//! ingot_store::store_conformance_tests!(fresh());
//! ```
//!
//! The factory expression is evaluated once per test and awaited; its output must deref to
//! the store (a `Box<MyStore>`, an `Arc<MyStore>`, or a guard that also owns what must
//! outlive the store, such as its temp dir). A backend that needs an outside service can
//! write `store_conformance_tests!(optional maybe_fresh())` instead: the factory then
//! yields an `Option`, and `None` ends each test early (the factory decides whether a
//! missing service is a skip, or, in CI, a panic). The calling crate needs `tokio` (with
//! `macros` and `rt`) as a dev-dependency, and should invoke the macro in a module of its
//! own, since the generated tests are named after the checks.
//!
//! Expected results are always computed here from the events the check wrote (a small
//! in-memory model of filtering and ordering), never copied from a backend's output.
//!
//! Events are compared with their `data` as JSON values, not as text (`kept`): a
//! backend keeps the document whole, but may reorder its keys and print its numbers its
//! own way (PostgreSQL's `jsonb` does both). What it returns must still be valid, compact
//! JSON text, which [`fields_round_trip`] checks.

use std::collections::HashSet;

mod query;
mod registry;
pub use query::*;
pub use registry::*;

use bytes::Bytes;
use ingot_core::{Event, EventId, JsonText, Payload, TenantId, Timestamp};

use crate::{
    Checkpoint, Cursor, EventPage, ListQuery, MAX_PAGE, Role, SecretHash, Store, StoreError,
    WriteOutcome,
};

/// Stamps out one `#[tokio::test]` per conformance check, each on a fresh store from
/// `$factory` (an expression evaluated and awaited per test; its output derefs to the
/// store). See the [module docs](crate::conformance).
#[macro_export]
macro_rules! store_conformance_tests {
    (@tests $fixture:tt; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fixture = $fixture;
                $crate::conformance::$check(&*fixture).await;
            }
        )+
    };
    // Every public check of this module must be listed here, or no backend runs it.
    (@each $fixture:tt) => {
        $crate::store_conformance_tests!(@tests $fixture;
            write_batch_counts_duplicates_and_first_write_wins,
            same_id_in_two_tenants_is_two_events,
            checkpoint_is_stored_with_the_batch,
            checkpoint_offset_out_of_range_stores_nothing,
            list_is_newest_first_with_filters,
            list_time_range_is_half_open,
            paging_visits_every_event_once,
            paging_with_filters_ends_without_an_empty_page,
            list_limit_is_checked,
            tenants_are_isolated,
            fields_round_trip,
            payload_only_from_get_event,
            registry_tenants,
            registry_devices,
            registry_api_keys,
            concurrent_writes_and_reads,
            filters_match_the_reference,
            filtered_paging_visits_every_match_once,
            totals_and_histograms,
            bounds_follow_the_filters,
            geo_grid_counts_positions,
            series_hourly_average,
            series_every_aggregation,
            series_grouped_top_and_other,
            series_limits_and_isolation,
            delete_before_is_bounded_and_scoped,
            registry_tenant_retention,
            registry_tenant_lifecycle,
            registry_device_lifecycle,
            registry_api_key_expiry_and_listing,
            registry_dashboards,
            device_activity_counts_a_window,
        );
    };
    (optional $factory:expr) => {
        $crate::store_conformance_tests!(@each (
            match $factory.await {
                Some(fixture) => fixture,
                None => return,
            }
        ));
    };
    ($factory:expr) => {
        $crate::store_conformance_tests!(@each ($factory.await));
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const CONSUMER: &str = "store-writer";
const TOPIC: &str = "events";

fn id(text: &str) -> EventId {
    EventId::parse(text).unwrap_or_else(|e| panic!("test id {text:?} {e}"))
}

fn json(text: &str) -> JsonText {
    JsonText::parse(text).unwrap_or_else(|e| panic!("test JSON {text:?}: {e}"))
}

/// `event` as a backend may return it: `data` rewritten to one canonical text of its JSON
/// value (keys sorted; numbers by value, so `1e3`, `1000` and `1000.0` are one, as are
/// `-0` and `0`), so that two events are equal exactly when their fields are and their
/// documents are the same JSON value.
fn kept(event: Event) -> Event {
    Event {
        data: event
            .data
            .map(|d| JsonText::from_trusted(canonical_json(&d.to_value()))),
        ..event
    }
}

/// [`kept`] of every event.
fn kept_all(events: impl IntoIterator<Item = Event>) -> Vec<Event> {
    events.into_iter().map(kept).collect()
}

fn canonical_json(value: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", J::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        J::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            // Whole floats within the exact integer range of f64 are integers.
            (_, _, Some(f)) if f == f.trunc() && f.abs() < 9_007_199_254_740_992.0 => {
                (f as i64).to_string()
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A plain event: device, ts and an id; sensor, kind, value and data filled from `ts`.
fn event(tenant: TenantId, event_id: &str, device: &str, ts: i64) -> Event {
    Event {
        id: id(event_id),
        tenant,
        device: device.to_owned(),
        sensor: Some("probe1".to_owned()),
        ts: Timestamp::from_micros(ts),
        received: Timestamp::from_micros(ts + 1_000),
        kind: Some("temperature".to_owned()),
        value: Some(ts as f64 / 1000.0),
        data: Some(json(&format!(r#"{{"seq":{ts},"unit":"C"}}"#))),
        payload: None,
    }
}

fn no_checkpoint() -> Checkpoint {
    Checkpoint {
        consumer: CONSUMER.to_owned(),
        topic: TOPIC.to_owned(),
        offsets: Vec::new(),
    }
}

fn checkpoint(offsets: &[(u32, u64)]) -> Checkpoint {
    Checkpoint {
        consumer: CONSUMER.to_owned(),
        topic: TOPIC.to_owned(),
        offsets: offsets.to_vec(),
    }
}

async fn write<S: Store + ?Sized>(store: &S, events: Vec<Event>) -> WriteOutcome {
    store
        .write_batch(events, &no_checkpoint())
        .await
        .expect("write_batch")
}

async fn tenant<S: Store + ?Sized>(store: &S, name: &str) -> TenantId {
    store.create_tenant(name).await.expect("create_tenant").id
}

fn query(limit: usize) -> ListQuery {
    ListQuery {
        limit,
        ..ListQuery::default()
    }
}

/// A deterministic pseudo-random sequence (xorshift64*), so checks need no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The model of a listing: the tenant's events matching the query's filters, newest first
/// by `(ts, id)`, without payloads. The cursor is ignored (pages are checked by walking).
fn model(all: &[Event], tenant: TenantId, q: &ListQuery) -> Vec<Event> {
    let mut out: Vec<Event> = all
        .iter()
        .filter(|e| e.tenant == tenant)
        .filter(|e| q.device.as_ref().is_none_or(|d| &e.device == d))
        .filter(|e| q.sensor.is_none() || e.sensor == q.sensor)
        .filter(|e| q.kind.is_none() || e.kind == q.kind)
        .filter(|e| q.from.is_none_or(|from| e.ts >= from))
        .filter(|e| q.to.is_none_or(|to| e.ts < to))
        .map(|e| {
            kept(Event {
                payload: None,
                ..e.clone()
            })
        })
        .collect();
    out.sort_by(|a, b| (b.ts, &b.id).cmp(&(a.ts, &a.id)));
    out
}

/// Walks every page of `q` from the start, checking each page's shape, and returns the
/// events in the order listed ([`kept`], like the model's).
async fn walk<S: Store + ?Sized>(store: &S, tenant: TenantId, q: &ListQuery) -> Vec<Event> {
    let mut q = ListQuery {
        cursor: None,
        ..q.clone()
    };
    let mut out: Vec<Event> = Vec::new();
    loop {
        let EventPage { events, next, .. } =
            store.list_events(tenant, &q).await.expect("list_events");
        assert!(
            events.len() <= q.limit,
            "page of {} over limit {}",
            events.len(),
            q.limit
        );
        match next {
            Some(cursor) => {
                assert_eq!(
                    events.len(),
                    q.limit,
                    "a page with a continuation must be full"
                );
                let last = events.last().expect("a full page is not empty");
                assert_eq!(
                    cursor,
                    Cursor::after(last),
                    "next must continue after the last event"
                );
                if let Some(prev) = &q.cursor {
                    // Catches a backend that repeats events before it loops forever.
                    assert!(
                        (cursor.ts, &cursor.id) < (prev.ts, &prev.id),
                        "paging went backwards"
                    );
                }
                // Round-trip through the client form, as the API does.
                q.cursor = Some(Cursor::decode(&cursor.encode()).expect("cursor decodes"));
                out.extend(kept_all(events));
            }
            None => {
                out.extend(kept_all(events));
                return out;
            }
        }
    }
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn hash(seed: u64) -> SecretHash {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    out
}

fn assert_recent(created: Timestamp, before: Timestamp, after: Timestamp) {
    // Backends may take the time from their own clock; allow a little skew.
    let slack = 5_000_000;
    assert!(
        created >= before.saturating_add_micros(-slack)
            && created <= after.saturating_add_micros(slack),
        "created {created} is not between {before} and {after}"
    );
}

fn assert_already_exists(result: Result<impl std::fmt::Debug, StoreError>, what: Option<&str>) {
    match result {
        Err(StoreError::AlreadyExists { what: got }) => {
            if let Some(what) = what {
                assert_eq!(got, what);
            }
        }
        other => panic!("expected AlreadyExists {what:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Writes and checkpoints
// ---------------------------------------------------------------------------------------

/// Duplicates across batches and within one batch are counted and skipped; the first write
/// of an id wins.
pub async fn write_batch_counts_duplicates_and_first_write_wins<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let mut rng = Rng(7);
    let mut seen = HashSet::new();
    let mut first: Vec<Event> = Vec::new();
    for round in 0..4 {
        // Ids drawn from a small space, so batches repeat ids of earlier batches and of
        // themselves; each copy differs in device and value so "first wins" is visible.
        let batch: Vec<Event> = (0..40)
            .map(|i| {
                let n = rng.below(60);
                let mut e = event(t, &format!("ev-{n}"), &format!("dev-{round}-{i}"), n as i64);
                e.value = Some((round * 100 + i) as f64);
                e
            })
            .collect();
        let mut expected = WriteOutcome::default();
        for e in &batch {
            if seen.insert(e.id.clone()) {
                expected.inserted += 1;
                first.push(e.clone());
            } else {
                expected.duplicates += 1;
            }
        }
        assert!(
            expected.duplicates > 0,
            "the check must exercise duplicates"
        );
        let got = write(store, batch).await;
        assert_eq!(got, expected, "round {round}");
    }
    for e in &first {
        let stored = store.get_event(t, &e.id).await.expect("get_event");
        assert_eq!(
            stored.map(kept),
            Some(kept(e.clone())),
            "the first write of {} wins",
            e.id
        );
    }
    let listed = walk(store, t, &query(MAX_PAGE)).await;
    assert_eq!(listed, model(&first, t, &query(MAX_PAGE)));

    // A whole batch of already stored events inserts nothing.
    let again: Vec<Event> = first.iter().take(10).cloned().collect();
    let n = again.len();
    assert_eq!(
        write(store, again).await,
        WriteOutcome {
            inserted: 0,
            duplicates: n
        }
    );
}

/// The same id in two tenants is two events, each in its tenant.
pub async fn same_id_in_two_tenants_is_two_events<S: Store + ?Sized>(store: &S) {
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let ea = event(a, "shared-id", "probe-a", 1_000);
    let eb = Event {
        value: Some(-1.5),
        ..event(b, "shared-id", "probe-b", 2_000)
    };
    let got = write(store, vec![ea.clone(), eb.clone()]).await;
    assert_eq!(
        got,
        WriteOutcome {
            inserted: 2,
            duplicates: 0
        }
    );
    assert_eq!(
        store.get_event(a, &ea.id).await.expect("get").map(kept),
        Some(kept(ea))
    );
    assert_eq!(
        store.get_event(b, &eb.id).await.expect("get").map(kept),
        Some(kept(eb))
    );
}

/// The checkpoint is readable once the batch is; partial updates keep the other
/// partitions; consumers and topics are independent; an empty batch still stores it.
pub async fn checkpoint_is_stored_with_the_batch<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        vec![]
    );

    let events: Vec<Event> = (0..10)
        .map(|i| event(t, &format!("e{i}"), "d", i))
        .collect();
    let cp = checkpoint(&[(2, 30), (0, 10), (1, 20)]);
    let got = store
        .write_batch(events.clone(), &cp)
        .await
        .expect("write_batch");
    assert_eq!(got.inserted, events.len());
    let mut expected = cp.offsets.clone();
    expected.sort_unstable();
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        expected
    );
    assert_eq!(walk(store, t, &query(100)).await.len(), events.len());

    // Only partition 1 moves (and a new partition 3 appears), with no events at all.
    let update = checkpoint(&[(1, 25), (3, 7)]);
    let got = store
        .write_batch(Vec::new(), &update)
        .await
        .expect("empty write_batch");
    assert_eq!(got, WriteOutcome::default());
    for &(p, o) in &update.offsets {
        match expected.iter_mut().find(|(q, _)| *q == p) {
            Some(slot) => slot.1 = o,
            None => expected.push((p, o)),
        }
    }
    expected.sort_unstable();
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        expected
    );

    // Other consumers and topics are separate.
    assert_eq!(
        store
            .checkpoint("someone-else", TOPIC)
            .await
            .expect("checkpoint"),
        vec![]
    );
    assert_eq!(
        store
            .checkpoint(CONSUMER, "other-topic")
            .await
            .expect("checkpoint"),
        vec![]
    );
    let other = Checkpoint {
        consumer: CONSUMER.to_owned(),
        topic: "other-topic".to_owned(),
        offsets: vec![(0, u64::try_from(i64::MAX).expect("fits"))],
    };
    store
        .write_batch(Vec::new(), &other)
        .await
        .expect("write_batch");
    assert_eq!(
        store.checkpoint(CONSUMER, "other-topic").await.expect("cp"),
        other.offsets
    );
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        expected
    );
}

/// An offset a backend cannot store fails the whole batch: no events, no checkpoint.
pub async fn checkpoint_offset_out_of_range_stores_nothing<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let events = vec![event(t, "e1", "d", 1), event(t, "e2", "d", 2)];
    let too_big = u64::try_from(i64::MAX).expect("fits") + 1;
    let cp = checkpoint(&[(0, 5), (1, too_big)]);
    match store.write_batch(events, &cp).await {
        Err(StoreError::InvalidQuery(_)) => {}
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        vec![]
    );
    assert_eq!(walk(store, t, &query(10)).await, vec![]);
}

// ---------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------

/// A varied data set for listing checks: several devices, sensors (some none), kinds (some
/// none), repeated and negative timestamps, ids not in time order.
fn fleet(t: TenantId, n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let devices = ["probe-7", "cam-1", "truck-42"];
    let sensors = [Some("probe1"), Some("probe2"), None];
    let kinds = [Some("temperature"), Some("co2"), None];
    (0..n)
        .map(|i| {
            // Timestamps from a small range so many collide; some before the epoch.
            let ts = rng.below(40) as i64 * 1_000_000 - 5_000_000;
            // 10_007 is prime, so `i * 7919 % 10_007` is a permutation: unique, unordered ids.
            let event_id = format!("id-{:05}", i as u64 * 7919 % 10_007);
            let mut e = event(t, &event_id, devices[rng.below(3) as usize], ts);
            e.sensor = sensors[rng.below(3) as usize].map(str::to_owned);
            e.kind = kinds[rng.below(3) as usize].map(str::to_owned);
            e
        })
        .collect()
}

/// Newest first by `(ts, id)`; each filter and their combinations select what the model
/// selects.
pub async fn list_is_newest_first_with_filters<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let all = fleet(t, 300, 11);
    assert_eq!(write(store, all.clone()).await.inserted, all.len());

    let mid = all[all.len() / 2].ts;
    let late = all[all.len() / 3].ts;
    let (from, to) = (mid.min(late), mid.max(late).saturating_add_micros(1));
    let mut queries = Vec::new();
    for device in [None, Some("probe-7"), Some("cam-1"), Some("nobody")] {
        for sensor in [None, Some("probe2")] {
            for kind in [None, Some("co2")] {
                for range in [
                    (None, None),
                    (Some(from), None),
                    (None, Some(to)),
                    (Some(from), Some(to)),
                ] {
                    queries.push(ListQuery {
                        device: device.map(str::to_owned),
                        sensor: sensor.map(str::to_owned),
                        kind: kind.map(str::to_owned),
                        from: range.0,
                        to: range.1,
                        limit: MAX_PAGE,
                        ..ListQuery::default()
                    });
                }
            }
        }
    }
    for q in &queries {
        let page = store.list_events(t, q).await.expect("list_events");
        let expected = model(&all, t, q);
        assert_eq!(ids(&page.events), ids(&expected), "{q:?}");
        assert_eq!(kept_all(page.events), expected, "{q:?}");
        assert_eq!(page.next, None, "everything fits in one page: {q:?}");
    }

    // A small limit returns the newest events only.
    let page = store.list_events(t, &query(5)).await.expect("list_events");
    let expected = model(&all, t, &query(5));
    assert_eq!(ids(&page.events), ids(&expected[..5]));
    assert_eq!(page.next, Some(Cursor::after(&expected[4])));
}

/// `from` is inclusive and `to` exclusive, exactly at event timestamps.
pub async fn list_time_range_is_half_open<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let all: Vec<Event> = (0..20)
        .map(|i| event(t, &format!("e{i:02}"), "d", (i - 10) * 1_000))
        .collect();
    write(store, all.clone()).await;
    let from = all[5].ts;
    let to = all[15].ts;
    let q = ListQuery {
        from: Some(from),
        to: Some(to),
        ..query(100)
    };
    let page = store.list_events(t, &q).await.expect("list_events");
    let expected: Vec<&str> = all[5..15].iter().rev().map(|e| e.id.as_str()).collect();
    assert_eq!(ids(&page.events), expected);
    assert_eq!(
        page.events.first().map(|e| e.ts),
        Some(to.saturating_add_micros(-1_000))
    );
    assert_eq!(page.events.last().map(|e| e.ts), Some(from));

    // An empty or inverted range lists nothing.
    for (from, to) in [(from, from), (to, from)] {
        let q = ListQuery {
            from: Some(from),
            to: Some(to),
            ..query(100)
        };
        assert_eq!(store.list_events(t, &q).await.expect("list").events, vec![]);
    }
}

/// Paging with a cursor visits every event exactly once, in order, even when hundreds of
/// events share a timestamp; the last page has no `next`, whatever the page size.
pub async fn paging_visits_every_event_once<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let n = 250u64;
    // Three timestamps only; ids a permutation of 0..n, so id order is not write order.
    let all: Vec<Event> = (0..n)
        .map(|i| event(t, &format!("p{:05}", i * 7919 % n), "d", (i % 3) as i64 - 1))
        .collect();
    for chunk in all.chunks(100) {
        write(store, chunk.to_vec()).await;
    }
    let expected = model(&all, t, &query(1));
    for limit in [1, 7, 50, 125, 250, 251, MAX_PAGE] {
        let listed = walk(store, t, &query(limit)).await;
        assert_eq!(ids(&listed), ids(&expected), "limit {limit}");
        let unique: HashSet<&str> = ids(&listed).into_iter().collect();
        assert_eq!(unique.len(), all.len(), "limit {limit}");
    }
}

/// Paging combined with filters and a time range; when the matches are an exact multiple
/// of the page size, the last full page already says there is no next one.
pub async fn paging_with_filters_ends_without_an_empty_page<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let all = fleet(t, 400, 23);
    write(store, all.clone()).await;
    let q = ListQuery {
        device: Some("cam-1".to_owned()),
        ..query(1)
    };
    let matches = model(&all, t, &q).len();
    assert!(matches > 4, "the data set must have enough matches");
    // Pick sizes that divide the match count exactly, and ones that do not.
    let exact: Vec<usize> = (2..=matches)
        .filter(|d| matches.is_multiple_of(*d))
        .take(2)
        .collect();
    for limit in exact.iter().copied().chain([3, matches - 1]) {
        for q in [
            ListQuery {
                device: Some("cam-1".to_owned()),
                ..query(limit)
            },
            ListQuery {
                kind: Some("temperature".to_owned()),
                from: Some(all[9].ts),
                ..query(limit)
            },
            ListQuery {
                sensor: Some("probe1".to_owned()),
                to: Some(all[3].ts),
                ..query(limit)
            },
        ] {
            let listed = walk(store, t, &q).await;
            assert_eq!(ids(&listed), ids(&model(&all, t, &q)), "{q:?}");
        }
    }
    // The page after an exact fit is never requested: the last page has next = None.
    let limit = matches;
    let q = ListQuery {
        device: Some("cam-1".to_owned()),
        ..query(limit)
    };
    let page = store.list_events(t, &q).await.expect("list_events");
    assert_eq!(page.events.len(), matches);
    assert_eq!(page.next, None);
}

/// Page sizes outside `1..=MAX_PAGE` are refused.
pub async fn list_limit_is_checked<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    for limit in [0, MAX_PAGE + 1] {
        match store.list_events(t, &query(limit)).await {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("limit {limit}: expected InvalidQuery, got {other:?}"),
        }
    }
    assert_eq!(
        store
            .list_events(t, &query(MAX_PAGE))
            .await
            .expect("list")
            .events,
        vec![]
    );
}

/// Tenant B never sees tenant A's events, whatever it asks.
pub async fn tenants_are_isolated<S: Store + ?Sized>(store: &S) {
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let in_a = fleet(a, 100, 5);
    write(store, in_a.clone()).await;
    let only_a = event(a, "only-in-a", "probe-7", 123);
    write(store, vec![only_a.clone()]).await;

    assert_eq!(walk(store, b, &query(10)).await, vec![]);
    let q = ListQuery {
        device: Some("probe-7".to_owned()),
        ..query(10)
    };
    assert_eq!(walk(store, b, &q).await, vec![]);
    assert_eq!(store.get_event(b, &only_a.id).await.expect("get"), None);
    // A cursor taken from A's listing leads nowhere in B.
    let q = ListQuery {
        cursor: Some(Cursor::after(&only_a)),
        ..query(10)
    };
    assert_eq!(store.list_events(b, &q).await.expect("list").events, vec![]);

    // B's own events, some with A's ids, are B's alone.
    let in_b: Vec<Event> = in_a
        .iter()
        .take(30)
        .map(|e| Event {
            tenant: b,
            ..e.clone()
        })
        .collect();
    write(store, in_b.clone()).await;
    let listed_b = walk(store, b, &query(7)).await;
    assert_eq!(listed_b, model(&in_b, b, &query(7)));
    assert!(listed_b.iter().all(|e| e.tenant == b));
    let mut everything_a = in_a.clone();
    everything_a.push(only_a);
    assert_eq!(
        walk(store, a, &query(13)).await,
        model(&everything_a, a, &query(13))
    );
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// Every field round-trips through `get_event` and listing: absent and present optional
/// fields, negative timestamps, exact floats, and `data` as the same JSON value (escapes,
/// non-ASCII text, extreme and negative-zero numbers, nesting), read back as valid,
/// compact JSON text.
pub async fn fields_round_trip<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let bare = Event {
        id: id("bare"),
        tenant: t,
        device: "d".to_owned(),
        sensor: None,
        ts: Timestamp::from_micros(-1_234_567_890_123),
        received: Timestamp::from_micros(1_700_000_000_000_001),
        kind: None,
        value: None,
        data: None,
        payload: None,
    };
    let long_name = "n".repeat(128);
    let full = Event {
        id: id(&format!("{}{}", "A1.b_c:d~e-", "z".repeat(53))),
        tenant: t,
        device: long_name.clone(),
        sensor: Some("s@1:x~y".to_owned()),
        ts: Timestamp::parse_rfc3339("2018-06-01T14:08:24.771123Z").expect("ts"),
        received: Timestamp::parse_rfc3339("2018-06-01T14:08:25Z").expect("ts"),
        kind: Some(long_name),
        value: Some(0.1 + 0.2),
        data: Some(json(
            r#"{"name":"caf\u00e9 ☕ \ud83d\ude00","esc":"a\"b\\c\n\t","n":[1,-2.5,1e300,0.1,-0,12345678901234567890],"nested":{"deep":[{"x":null,"t":true,"f":false}]},"empty":{},"list":[]}"#,
        )),
        payload: None,
    };
    let mut events = vec![bare, full];
    // (Not -0.0: SQLite stores whole REALs as integers, so it reads back as 0.0, which is
    // equal under `==` and makes no difference to a reading.)
    let values = [-273.15, f64::MAX, f64::MIN_POSITIVE, -1e-310, 1e-300, 42.0];
    let datas = [
        "42",
        "\"just text\"",
        "[1,2,[3]]",
        "null",
        "true",
        "-1.5e-7",
    ];
    for (i, (value, data)) in values.iter().zip(datas).enumerate() {
        let mut e = event(t, &format!("v{i}"), "d", i as i64 - 3);
        e.value = Some(*value);
        e.data = Some(json(data));
        events.push(e);
    }
    write(store, events.clone()).await;

    for e in &events {
        let got = store
            .get_event(t, &e.id)
            .await
            .expect("get_event")
            .expect("stored");
        if let Some(data) = &got.data {
            let reparsed = JsonText::parse(data.as_str())
                .unwrap_or_else(|err| panic!("{}: data is not JSON ({err}): {data:?}", e.id));
            assert_eq!(
                reparsed.as_str(),
                data.as_str(),
                "{}: data is not compact",
                e.id
            );
        }
        assert_eq!(kept(got.clone()), kept(e.clone()));
        assert_eq!(
            got.value.map(f64::to_bits),
            e.value.map(f64::to_bits),
            "{}",
            e.id
        );
    }
    let listed = walk(store, t, &query(3)).await;
    assert_eq!(listed, model(&events, t, &query(3)));
    assert_eq!(
        store
            .get_event(t, &id("never-written"))
            .await
            .expect("get_event"),
        None
    );
}

/// Binary payloads: listing leaves them out (the event's `data` records content type and
/// size); `get_event` returns them byte for byte; a duplicate never replaces one.
pub async fn payload_only_from_get_event<S: Store + ?Sized>(store: &S) {
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let mut rng = Rng(99);
    let size = 300 * 1024 + 17;
    let picture: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    let camera = |tenant: TenantId, bytes: &[u8], ts: i64| Event {
        sensor: Some("front".to_owned()),
        kind: Some("picture".to_owned()),
        value: None,
        data: Some(json(&format!(
            r#"{{"content_type":"image/jpeg","size":{}}}"#,
            bytes.len()
        ))),
        payload: Some(Payload {
            content_type: "image/jpeg".to_owned(),
            bytes: Bytes::copy_from_slice(bytes),
        }),
        ..event(tenant, "pic-1", "cam-1", ts)
    };
    let first = camera(a, &picture, 10);
    let plain = event(a, "plain", "cam-1", 5);
    write(store, vec![first.clone(), plain.clone()]).await;

    let page = store.list_events(a, &query(10)).await.expect("list_events");
    let stripped = Event {
        payload: None,
        ..first.clone()
    };
    assert_eq!(kept_all(page.events), kept_all([stripped, plain.clone()]));

    let got = store
        .get_event(a, &first.id)
        .await
        .expect("get_event")
        .expect("stored");
    let payload = got.payload.as_ref().expect("get_event returns the payload");
    assert_eq!(payload.content_type, "image/jpeg");
    assert_eq!(payload.bytes.len(), picture.len());
    assert!(payload.bytes[..] == picture[..], "payload bytes differ");
    assert_eq!(kept(got), kept(first.clone()));
    assert_eq!(
        store
            .get_event(a, &plain.id)
            .await
            .expect("get")
            .and_then(|e| e.payload),
        None
    );

    // A duplicate with other bytes changes nothing; the same id in another tenant is its own.
    let other: Vec<u8> = picture.iter().rev().copied().collect();
    let outcome = write(store, vec![camera(a, &other, 11), camera(b, &other, 12)]).await;
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 1,
            duplicates: 1
        }
    );
    assert_eq!(
        store.get_event(a, &first.id).await.expect("get").map(kept),
        Some(kept(first.clone()))
    );
    assert_eq!(
        store.get_event(b, &first.id).await.expect("get").map(kept),
        Some(kept(camera(b, &other, 12)))
    );
}

// ---------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------

/// Tenants: names are unique, lookups by name, ids distinct.
pub async fn registry_tenants<S: Store + ?Sized>(store: &S) {
    assert_eq!(
        store.tenant_by_name("acme").await.expect("tenant_by_name"),
        None
    );
    let before = Timestamp::now();
    let acme = store.create_tenant("acme").await.expect("create_tenant");
    let globex = store.create_tenant("globex").await.expect("create_tenant");
    let after = Timestamp::now();
    assert_eq!(acme.name, "acme");
    assert_eq!(globex.name, "globex");
    assert_ne!(acme.id, globex.id);
    assert_recent(acme.created, before, after);
    assert_already_exists(store.create_tenant("acme").await, Some("tenant acme"));
    assert_eq!(
        store.tenant_by_name("acme").await.expect("lookup"),
        Some(acme.clone())
    );
    assert_eq!(
        store.tenant_by_name("globex").await.expect("lookup"),
        Some(globex)
    );
    assert_eq!(
        store.tenant_by_name("ACME").await.expect("lookup"),
        None,
        "names are exact"
    );
}

/// Devices: unique names per tenant, lookup by token hash, deletion invalidates the token.
pub async fn registry_devices<S: Store + ?Sized>(store: &S) {
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let (ta, tb, tc) = (hash(1), hash(2), hash(3));
    let before = Timestamp::now();
    let dev = store
        .create_device(a, "probe-7", &ta)
        .await
        .expect("create_device");
    let after = Timestamp::now();
    assert_eq!((dev.tenant, dev.name.as_str()), (a, "probe-7"));
    assert_recent(dev.created, before, after);

    assert_already_exists(
        store.create_device(a, "probe-7", &tc).await,
        Some("device probe-7"),
    );
    assert_already_exists(store.create_device(a, "probe-8", &ta).await, None);
    let dev_b = store
        .create_device(b, "probe-7", &tb)
        .await
        .expect("same name, other tenant");
    assert_eq!(dev_b.tenant, b);

    assert_eq!(
        store
            .device_by_token(&ta, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(dev.clone())
    );
    assert_eq!(
        store
            .device_by_token(&tb, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(dev_b.clone())
    );
    assert_eq!(
        store
            .device_by_token(&tc, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        None
    );

    // Deleting in the wrong tenant does nothing.
    let unknown_name = store
        .create_device(b, "only-b", &tc)
        .await
        .expect("create_device");
    assert!(!store.delete_device(a, "only-b").await.expect("delete"));
    assert_eq!(
        store
            .device_by_token(&tc, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(unknown_name)
    );

    assert!(store.delete_device(a, "probe-7").await.expect("delete"));
    assert_eq!(
        store
            .device_by_token(&ta, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        None
    );
    assert!(
        !store
            .delete_device(a, "probe-7")
            .await
            .expect("second delete")
    );
    assert_eq!(
        store
            .device_by_token(&tb, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(dev_b),
        "B's device stays"
    );

    // The name can be registered again, with a new token; the old one stays dead.
    let td = hash(4);
    let again = store
        .create_device(a, "probe-7", &td)
        .await
        .expect("re-register");
    assert_eq!(
        store
            .device_by_token(&td, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(again)
    );
    assert_eq!(
        store
            .device_by_token(&ta, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        None
    );
}

/// API keys: every role round-trips; revoked keys stop resolving; revoking in the wrong
/// tenant does nothing.
pub async fn registry_api_keys<S: Store + ?Sized>(store: &S) {
    let a = tenant(store, "acme").await;
    let b = tenant(store, "globex").await;
    let roles = [Role::Reader, Role::Writer, Role::Admin, Role::System];
    let mut keys = Vec::new();
    for (i, role) in roles.into_iter().enumerate() {
        let secret = hash(100 + i as u64);
        let before = Timestamp::now();
        let key = store
            .create_api_key(a, &format!("k{i}"), role, &secret, None)
            .await
            .expect("create");
        let after = Timestamp::now();
        assert_eq!(
            (key.id.as_str(), key.tenant, key.role),
            (format!("k{i}").as_str(), a, role)
        );
        assert_recent(key.created, before, after);
        keys.push((key, secret));
    }
    for (key, secret) in &keys {
        assert_eq!(
            store
                .api_key_by_hash(secret, Timestamp::EPOCH)
                .await
                .expect("lookup")
                .as_ref(),
            Some(key)
        );
    }
    assert_eq!(
        store
            .api_key_by_hash(&hash(999), Timestamp::EPOCH)
            .await
            .expect("lookup"),
        None
    );
    assert_already_exists(
        store
            .create_api_key(b, "k0", Role::Reader, &hash(200), None)
            .await,
        Some("api key k0"),
    );
    assert_already_exists(
        store
            .create_api_key(a, "fresh", Role::Reader, &keys[1].1, None)
            .await,
        None,
    );

    let (k0, s0) = &keys[0];
    assert!(
        !store.revoke_api_key(b, &k0.id).await.expect("revoke"),
        "wrong tenant"
    );
    assert_eq!(
        store
            .api_key_by_hash(s0, Timestamp::EPOCH)
            .await
            .expect("lookup")
            .as_ref(),
        Some(k0)
    );
    assert!(store.revoke_api_key(a, &k0.id).await.expect("revoke"));
    assert_eq!(
        store
            .api_key_by_hash(s0, Timestamp::EPOCH)
            .await
            .expect("lookup"),
        None
    );
    assert!(
        !store
            .revoke_api_key(a, &k0.id)
            .await
            .expect("second revoke")
    );
    assert!(
        !store
            .revoke_api_key(a, "no-such-key")
            .await
            .expect("revoke unknown")
    );
    for (key, secret) in &keys[1..] {
        assert_eq!(
            store
                .api_key_by_hash(secret, Timestamp::EPOCH)
                .await
                .expect("lookup")
                .as_ref(),
            Some(key)
        );
    }
    let kb = store
        .create_api_key(b, "kb", Role::Admin, &hash(300), None)
        .await
        .expect("create");
    assert_eq!(
        store
            .api_key_by_hash(&hash(300), Timestamp::EPOCH)
            .await
            .expect("lookup"),
        Some(kb)
    );
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

/// Writers and readers at once: nothing is lost, and every page a reader sees is in
/// order and whole.
pub async fn concurrent_writes_and_reads<S: Store + ?Sized>(store: &S) {
    let t = tenant(store, "acme").await;
    let writers = 4;
    let batches = 8;
    let per_batch = 50;
    let writer = move |w: usize| async move {
        let mut written = Vec::new();
        for b in 0..batches {
            let batch: Vec<Event> = (0..per_batch)
                .map(|i| {
                    event(
                        t,
                        &format!("w{w}-b{b}-{i}"),
                        &format!("dev-{w}"),
                        ((b * per_batch + i) % 17) as i64,
                    )
                })
                .collect();
            let cp = checkpoint(&[(w as u32, (b + 1) as u64)]);
            let got = store
                .write_batch(batch.clone(), &cp)
                .await
                .expect("write_batch");
            assert_eq!(
                got,
                WriteOutcome {
                    inserted: per_batch,
                    duplicates: 0
                }
            );
            written.extend(batch);
        }
        written
    };
    let reader = move || async move {
        for _ in 0..10 {
            let page = store.list_events(t, &query(40)).await.expect("list_events");
            assert!(page.events.len() <= 40);
            let sorted = page
                .events
                .windows(2)
                .all(|w| (w[0].ts, &w[0].id) > (w[1].ts, &w[1].id));
            assert!(sorted, "a page out of order");
            if page.events.len() < 40 {
                assert_eq!(page.next, None);
            }
        }
    };
    let (w0, w1, w2, w3, (), ()) = tokio::join!(
        writer(0),
        writer(1),
        writer(2),
        writer(3),
        reader(),
        reader()
    );
    let all: Vec<Event> = [w0, w1, w2, w3].concat();
    assert_eq!(all.len(), writers * batches * per_batch);
    assert_eq!(
        walk(store, t, &query(MAX_PAGE)).await,
        model(&all, t, &query(1))
    );
    let expected: Vec<(u32, u64)> = (0..writers as u32).map(|w| (w, batches as u64)).collect();
    assert_eq!(
        store.checkpoint(CONSUMER, TOPIC).await.expect("checkpoint"),
        expected
    );
}
