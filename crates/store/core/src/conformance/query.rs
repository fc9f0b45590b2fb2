//! Conformance of filters, totals, histograms, series, bounds and retention.
//!
//! Every check writes the same generated data set (a few hundred events of four devices in
//! four cities over four days, in the collector format, with missing, null, string and
//! boolean fields mixed in) and compares the backend's answer with values computed here:
//! filters against [`Filter::matches`] (the language's reference semantics), aggregations
//! with plain arithmetic written in this file.

use std::collections::{BTreeMap, HashMap, HashSet};

use ingot_core::{Event, EventId, JsonText, TenantId, Timestamp};
use ingot_query::{Agg, Field, Filter, Interval, IntervalSpec, SeriesQuery};

use crate::{Checkpoint, GeoCell, GeoGrid, ListQuery, MAX_GEO_CELLS, MAX_PAGE, Store, StoreError};

const A: TenantId = TenantId(11);
const B: TenantId = TenantId(12);
const BASE: i64 = 1_527_811_200_000_000; // 2018-06-01T00:00:00Z
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const CITIES: [&str; 10] = [
    "seville", "seville", "seville", "seville", "london", "london", "london", "sydney", "sydney",
    "new-york",
];
const N: i64 = 600;

fn dataset(tenant: TenantId) -> Vec<Event> {
    (0..N)
        .map(|i| {
            let kind = if i % 3 == 0 { "humidity" } else { "temperature" };
            let city = CITIES[(i % 10) as usize];
            let payload_value = if i % 11 == 0 {
                serde_json::Value::Null
            } else if i % 13 == 0 {
                serde_json::json!("n/a")
            } else {
                serde_json::json!(((i * 104_729) % 500) as f64 / 4.0)
            };
            let mut data = serde_json::json!({
                "origin": city,
                "payload": { "type": kind },
                "seq": i,
                "flag": i % 5 == 0,
            });
            if !payload_value.is_null() {
                data["payload"]["value"] = payload_value;
            }
            if i % 2 == 0 {
                data["location"] = serde_json::json!({ "lat": (i % 180) as f64 - 90.0, "lon": (i % 360) as f64 - 180.0 });
            }
            Event {
                id: EventId::parse(&format!("q{i:04}")).unwrap_or_else(|e| panic!("{e}")),
                tenant,
                device: format!("dev-{}", i % 4),
                sensor: (i % 17 != 0).then(|| format!("s{}", i % 3)),
                ts: Timestamp::from_micros(BASE + i * 577_000_000),
                received: Timestamp::from_micros(BASE),
                kind: Some(kind.to_owned()),
                value: (i % 19 != 0).then(|| ((i * 7919) % 1000) as f64 / 10.0 - 20.0),
                data: Some(JsonText::from_value(&data)),
                payload: None,
            }
        })
        .collect()
}

async fn load<S: Store + ?Sized>(store: &S) -> Vec<Event> {
    let events = dataset(A);
    let checkpoint = Checkpoint {
        consumer: "conformance".into(),
        topic: "events".into(),
        offsets: vec![],
    };
    for chunk in events.chunks(250) {
        store
            .write_batch(chunk.to_vec(), &checkpoint)
            .await
            .unwrap_or_else(|e| panic!("write_batch: {e}"));
    }
    // Tenant B has look-alike events that must never show up in A's answers.
    store
        .write_batch(dataset(B)[..50].to_vec(), &checkpoint)
        .await
        .unwrap_or_else(|e| panic!("write_batch: {e}"));
    events
}

fn filter(text: &str) -> Filter {
    ingot_query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn interval(text: &str) -> Interval {
    match Interval::parse_spec(text) {
        Ok(IntervalSpec::Fixed(i)) => i,
        other => panic!("{text}: {other:?}"),
    }
}

async fn ids_matching<S: Store + ?Sized>(store: &S, query: &ListQuery) -> Vec<String> {
    let page = store
        .list_events(A, query)
        .await
        .unwrap_or_else(|e| panic!("list_events {query:?}: {e}"));
    assert!(page.next.is_none(), "the data set fits one page");
    page.events.into_iter().map(|e| e.id.to_string()).collect()
}

fn all(filter: Filter) -> ListQuery {
    ListQuery {
        filter,
        limit: MAX_PAGE,
        ..ListQuery::default()
    }
}

/// Filters select exactly what the reference semantics select, newest first.
pub async fn filters_match_the_reference<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let texts = [
        "origin:seville",
        "origin:sev*",
        "origin:*ney",
        "not origin:seville",
        "origin:(london or sydney)",
        "origin > m",
        "payload.value > 50",
        "payload.value >= 50 and kind:humidity",
        "payload.value:*",
        "not payload.value:*",
        "payload.value:\"n/a\"",
        "payload.value:n/a",
        "payload.value:62.5 or payload.value:0",
        "flag:true",
        "flag:false and seq < 100",
        "seq:42",
        "seq < 10 or seq > 590",
        "device:(dev-1 or dev-2) and value < 0",
        "device > dev-2",
        "device:dev* and not device:dev-0",
        "sensor:*",
        "not sensor:*",
        "sensor:s1 kind:temperature",
        "value:*",
        "not value:*",
        "value <= -10.5",
        "ts >= 2018-06-02T00:00:00Z and ts < 2018-06-03T00:00:00Z",
        "ts:2018-06-01T00:09:37Z",
        "location.lat > 0",
        "location:*",
        "data.origin:london",
        "kind:hum*",
        "id:q00*",
        "missing.field:1",
        "not (origin:seville or origin:london) and (payload.value < 20 or flag:true)",
    ];
    for text in texts {
        let f = filter(text);
        let mut expected: Vec<&Event> = events.iter().filter(|e| f.matches(e)).collect();
        expected.sort_by(|a, b| (b.ts, b.id.as_str()).cmp(&(a.ts, a.id.as_str())));
        let expected: Vec<String> = expected.iter().map(|e| e.id.to_string()).collect();
        let got = ids_matching(store, &all(f)).await;
        assert_eq!(got, expected, "filter {text:?}");
    }
    // Hand-counted anchors, so the reference itself is checked too.
    assert_eq!(
        ids_matching(store, &all(filter("origin:seville")))
            .await
            .len(),
        240
    );
    assert_eq!(
        ids_matching(store, &all(filter("seq < 10 or seq > 590")))
            .await
            .len(),
        19
    );
    assert_eq!(
        ids_matching(store, &all(filter("payload.value:\"n/a\"")))
            .await
            .len(),
        600 / 13 + 1 - 600 / 143 - 1
    );
    // Filters combine with the device, sensor, kind and time parameters.
    let query = ListQuery {
        device: Some("dev-1".into()),
        from: Some(ts("2018-06-02T00:00:00Z")),
        to: Some(ts("2018-06-03T00:00:00Z")),
        ..all(filter("origin:seville or origin:london"))
    };
    let f = filter("origin:seville or origin:london");
    let expected = events
        .iter()
        .filter(|e| {
            e.device == "dev-1"
                && e.ts >= ts("2018-06-02T00:00:00Z")
                && e.ts < ts("2018-06-03T00:00:00Z")
                && f.matches(e)
        })
        .count();
    assert!(expected > 0);
    assert_eq!(ids_matching(store, &query).await.len(), expected);
}

/// Paging with a filter visits every match once.
pub async fn filtered_paging_visits_every_match_once<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let f = filter("kind:temperature and payload.value:*");
    let expected: HashSet<String> = events
        .iter()
        .filter(|e| f.matches(e))
        .map(|e| e.id.to_string())
        .collect();
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let query = ListQuery {
            filter: f.clone(),
            limit: 37,
            cursor: cursor.clone(),
            ..ListQuery::default()
        };
        let page = store
            .list_events(A, &query)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        seen.extend(page.events.iter().map(|e| e.id.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len(), "no event twice");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

/// `total` counts every match; the histogram counts them per aligned bucket.
pub async fn totals_and_histograms<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let f = filter("origin:seville or flag:true");
    let from = ts("2018-06-01T06:30:00Z");
    let to = ts("2018-06-03T18:00:00Z");
    let query = ListQuery {
        filter: f.clone(),
        from: Some(from),
        to: Some(to),
        limit: 5,
        total: true,
        histogram: Some(interval("6h")),
        ..ListQuery::default()
    };
    let page = store
        .list_events(A, &query)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let matching: Vec<&Event> = events
        .iter()
        .filter(|e| e.ts >= from && e.ts < to && f.matches(e))
        .collect();
    assert_eq!(page.total, Some(matching.len() as u64));
    assert_eq!(page.events.len(), 5);
    // Buckets of 6 h aligned on the epoch: the first starts at 06:00, not 06:30.
    let mut expected: BTreeMap<i64, u64> = BTreeMap::new();
    let first = BASE + 6 * HOUR;
    let mut b = first;
    while b < to.as_micros() {
        expected.insert(b, 0);
        b += 6 * HOUR;
    }
    for e in &matching {
        let bucket = e.ts.as_micros() - (e.ts.as_micros() - BASE) % (6 * HOUR);
        *expected
            .get_mut(&bucket)
            .unwrap_or_else(|| panic!("bucket {bucket}")) += 1;
    }
    let expected: Vec<(Timestamp, u64)> = expected
        .into_iter()
        .map(|(b, n)| (Timestamp::from_micros(b), n))
        .collect();
    assert_eq!(page.histogram, Some(expected));
    assert_eq!(page.histogram.as_ref().map(Vec::len), Some(10));

    // Without total or histogram, neither is computed.
    let plain = store
        .list_events(
            A,
            &ListQuery {
                limit: 1,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((plain.total, plain.histogram), (None, None));
    // A histogram needs a range, and a bounded number of buckets.
    for (from, to, width) in [
        (None, Some(to), "1h"),
        (Some(from), None, "1h"),
        (Some(ts("2000-01-01T00:00:00Z")), Some(to), "1s"),
    ] {
        let query = ListQuery {
            from,
            to,
            limit: 1,
            histogram: Some(interval(width)),
            ..ListQuery::default()
        };
        match store.list_events(A, &query).await {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("expected InvalidQuery for {from:?}..{to:?} by {width}, got {other:?}"),
        }
    }
}

/// `bounds` gives the oldest and newest matching `ts`.
pub async fn bounds_follow_the_filters<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let f = filter("origin:sydney");
    let matching: Vec<Timestamp> = events
        .iter()
        .filter(|e| f.matches(e))
        .map(|e| e.ts)
        .collect();
    let query = ListQuery {
        filter: f,
        limit: 1,
        ..ListQuery::default()
    };
    let bounds = store
        .bounds(A, &query)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bounds,
        Some((
            *matching.iter().min().unwrap_or(&Timestamp::EPOCH),
            *matching.iter().max().unwrap_or(&Timestamp::EPOCH)
        ))
    );
    let none = ListQuery {
        filter: filter("origin:atlantis"),
        limit: 1,
        ..ListQuery::default()
    };
    assert_eq!(
        store
            .bounds(A, &none)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    assert_eq!(
        store
            .bounds(
                TenantId(99),
                &ListQuery {
                    limit: 1,
                    ..ListQuery::default()
                }
            )
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
}

/// Positions of every shape the geo grid must handle: fractional and negative, on the
/// edges of the ranges, out of range, strings, half missing, and under another path.
fn geo_extras(tenant: TenantId) -> Vec<Event> {
    let positions = [
        serde_json::json!({ "location": { "lat": 38.95618, "lon": -77.39835 } }),
        serde_json::json!({ "location": { "lat": 38.95, "lon": -77.3 } }),
        serde_json::json!({ "location": { "lat": -33.8688, "lon": 151.2093 } }),
        serde_json::json!({ "location": { "lat": 90, "lon": 180 } }),
        serde_json::json!({ "location": { "lat": -90, "lon": -180 } }),
        serde_json::json!({ "location": { "lat": -0.0001, "lon": -0.0001 } }),
        serde_json::json!({ "location": { "lat": 90.5, "lon": 10 } }),
        serde_json::json!({ "location": { "lat": 10, "lon": -180.25 } }),
        serde_json::json!({ "location": { "lat": "38.9", "lon": "-77.3" } }),
        serde_json::json!({ "location": { "lat": 38.9 } }),
        serde_json::json!({ "location": [38.9, -77.3] }),
        serde_json::json!({ "location": { "lat": null, "lon": 1 } }),
        serde_json::json!({ "pos": { "lat": 51.5072, "lon": -0.1276 } }),
    ];
    positions
        .into_iter()
        .enumerate()
        .map(|(i, data)| Event {
            id: EventId::parse(&format!("g{i:04}")).unwrap_or_else(|e| panic!("{e}")),
            tenant,
            device: format!("car-{}", i % 3),
            sensor: None,
            ts: Timestamp::from_micros(BASE + i as i64 * HOUR),
            received: Timestamp::from_micros(BASE),
            kind: Some("position".to_owned()),
            value: None,
            data: Some(JsonText::from_value(&data)),
            payload: None,
        })
        .collect()
}

/// This file's own grid: `(floor(lat / cell), floor(lon / cell))` of the positioned
/// events `query` selects, counted.
fn own_grid(events: &[Event], query: &ListQuery, grid: &GeoGrid) -> Vec<GeoCell> {
    let mut cells: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for e in events {
        let in_range =
            query.from.is_none_or(|from| e.ts >= from) && query.to.is_none_or(|to| e.ts < to);
        if !in_range || !query.filter.matches(e) {
            continue;
        }
        let lat = numbers_at(e, &Field::Data(grid.lat.clone()));
        let lon = numbers_at(e, &Field::Data(grid.lon.clone()));
        if let (Some(lat), Some(lon)) = (lat, lon)
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
        {
            let key = (
                (lat / grid.cell).floor() as i64,
                (lon / grid.cell).floor() as i64,
            );
            *cells.entry(key).or_default() += 1;
        }
    }
    cells
        .into_iter()
        .map(|((row, col), count)| GeoCell { row, col, count })
        .collect()
}

fn path(text: &str) -> Vec<String> {
    text.split('.').map(str::to_owned).collect()
}

/// `geo_grid` counts positioned events per cell as the reference does, bounded by its
/// limit, for the filters and time ranges of a listing; other tenants never count.
pub async fn geo_grid_counts_positions<S: Store + ?Sized>(store: &S) {
    let mut events = load(store).await;
    let extras = geo_extras(A);
    let checkpoint = Checkpoint {
        consumer: "conformance".into(),
        topic: "events".into(),
        offsets: vec![],
    };
    store
        .write_batch(extras.clone(), &checkpoint)
        .await
        .unwrap_or_else(|e| panic!("write_batch: {e}"));
    events.extend(extras);
    let grid = |lat: &str, lon: &str, cell: f64| GeoGrid {
        lat: path(lat),
        lon: path(lon),
        cell,
        limit: MAX_GEO_CELLS,
    };
    let queries = [
        all(Filter::All),
        all(filter("origin:seville or kind:position")),
        all(filter("not location.lat < 0")),
        ListQuery {
            from: Some(ts("2018-06-01T02:00:00Z")),
            to: Some(ts("2018-06-02T12:00:00Z")),
            ..all(Filter::All)
        },
    ];
    for query in &queries {
        for cell in [1.0, 0.25, 7.5, 0.001, 45.0] {
            for (lat, lon) in [("location.lat", "location.lon"), ("pos.lat", "pos.lon")] {
                let grid = grid(lat, lon, cell);
                let got = store
                    .geo_grid(A, query, &grid)
                    .await
                    .unwrap_or_else(|e| panic!("geo_grid {query:?} {grid:?}: {e}"));
                assert_eq!(got, own_grid(&events, query, &grid), "{query:?} {grid:?}");
            }
        }
    }
    let everything = own_grid(
        &events,
        &queries[0],
        &grid("location.lat", "location.lon", 1.0),
    );
    assert!(
        everything.len() > 100,
        "the data set spreads over many cells"
    );
    assert!(
        everything.iter().any(|c| c.row < 0 && c.col < 0),
        "negative cells are covered"
    );

    // Exactly `limit` cells is an answer; one more is an error.
    let exact = GeoGrid {
        limit: everything.len(),
        ..grid("location.lat", "location.lon", 1.0)
    };
    assert_eq!(
        store.geo_grid(A, &queries[0], &exact).await.ok(),
        Some(everything.clone())
    );
    let fewer = GeoGrid {
        limit: everything.len() - 1,
        ..exact.clone()
    };
    for bad in [
        fewer,
        GeoGrid {
            cell: 0.0,
            ..exact.clone()
        },
        GeoGrid {
            cell: f64::NAN,
            ..exact.clone()
        },
        GeoGrid {
            limit: 0,
            ..exact.clone()
        },
    ] {
        match store.geo_grid(A, &queries[0], &bad).await {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("{bad:?}: expected InvalidQuery, got {other:?}"),
        }
    }

    // Tenant B has 50 look-alike events, half with a position; nobody else has any.
    let b: u64 = store
        .geo_grid(B, &queries[0], &exact)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(b, 25);
    let none = store
        .geo_grid(TenantId(99), &queries[0], &exact)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty());
}

fn numbers_at(event: &Event, field: &Field) -> Option<f64> {
    match field {
        Field::Value => event.value,
        Field::Data(path) => {
            let data = event.data.as_ref()?.to_value();
            let mut at = &data;
            for segment in path {
                at = at.get(segment)?;
            }
            at.as_f64().filter(|_| at.is_number())
        }
        _ => None,
    }
}

/// This file's own percentile: rank (q/100)(n-1), linear between the nearest ranks.
fn own_percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (rank - lo as f64))
}

fn own_agg(agg: Agg, events: &[&Event], field: &Field) -> Option<f64> {
    if events.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = events.iter().filter_map(|e| numbers_at(e, field)).collect();
    match agg {
        Agg::Count => Some(events.len() as f64),
        _ if values.is_empty() => None,
        Agg::Sum => Some(values.iter().sum()),
        Agg::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
        Agg::Min => values.iter().copied().reduce(f64::min),
        Agg::Max => values.iter().copied().reduce(f64::max),
        Agg::Percentile(q) => own_percentile(&mut values, q),
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

/// The expected points of one series, bucketed here.
fn expected_points(events: &[&Event], query: &SeriesQuery) -> Vec<(Timestamp, Option<f64>)> {
    let width = query.interval.micros();
    let mut start = query.from.as_micros() - query.from.as_micros().rem_euclid(width);
    let mut points = Vec::new();
    while start < query.to.as_micros() {
        let in_bucket: Vec<&Event> = events
            .iter()
            .copied()
            .filter(|e| e.ts.as_micros() >= start && e.ts.as_micros() < start + width)
            .collect();
        points.push((
            Timestamp::from_micros(start),
            own_agg(query.agg, &in_bucket, &query.field),
        ));
        start += width;
    }
    points
}

fn assert_points(
    got: &[(Timestamp, Option<f64>)],
    expected: &[(Timestamp, Option<f64>)],
    what: &str,
) {
    assert_eq!(got.len(), expected.len(), "{what}: bucket count");
    for ((gt, gv), (et, ev)) in got.iter().zip(expected) {
        assert_eq!(gt, et, "{what}: bucket start");
        assert!(
            close(*gv, *ev),
            "{what} at {gt}: got {gv:?}, expected {ev:?}"
        );
    }
}

fn series(
    filter_text: &str,
    field: &str,
    agg: &str,
    width: &str,
    from: &str,
    to: &str,
) -> SeriesQuery {
    SeriesQuery {
        filter: filter(filter_text),
        field: Field::parse(field).unwrap_or_else(|e| panic!("{e}")),
        agg: Agg::parse(agg).unwrap_or_else(|| panic!("{agg}")),
        interval: interval(width),
        from: ts(from),
        to: ts(to),
        group_by: None,
        top: 10,
        other: false,
    }
}

/// Hourly averages of one device over four days, checked hour by hour.
pub async fn series_hourly_average<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let query = series(
        "device:dev-1",
        "payload.value",
        "avg",
        "1h",
        "2018-06-01T00:00:00Z",
        "2018-06-05T00:00:00Z",
    );
    let got = store
        .series(A, &query)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].group.as_deref(), got[0].other), (None, false));
    let matching: Vec<&Event> = events.iter().filter(|e| e.device == "dev-1").collect();
    let expected = expected_points(&matching, &query);
    assert_eq!(expected.len(), 96);
    assert!(
        expected.iter().any(|(_, v)| v.is_none()),
        "the data set has empty hours"
    );
    assert_points(&got[0].points, &expected, "avg payload.value by 1h");
}

/// Every aggregation, on the value column and on a data path, with a filter.
pub async fn series_every_aggregation<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    for agg in [
        "count", "avg", "min", "max", "sum", "p50", "p90", "p95", "p99",
    ] {
        for field in ["value", "payload.value"] {
            let query = series(
                "kind:temperature and not origin:sydney",
                field,
                agg,
                "6h",
                "2018-06-01T03:00:00Z",
                "2018-06-04T21:00:00Z",
            );
            let got = store
                .series(A, &query)
                .await
                .unwrap_or_else(|e| panic!("{agg} {field}: {e}"));
            let matching: Vec<&Event> = events
                .iter()
                .filter(|e| e.ts >= query.from && e.ts < query.to && query.filter.matches(e))
                .collect();
            assert_points(
                &got[0].points,
                &expected_points(&matching, &query),
                &format!("{agg}({field})"),
            );
        }
    }
}

/// p95 per day, grouped by city: the top groups by count, then the rest as `other`.
pub async fn series_grouped_top_and_other<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let mut query = series(
        "",
        "payload.value",
        "p95",
        "1d",
        "2018-06-01T00:00:00Z",
        "2018-06-05T00:00:00Z",
    );
    query.group_by = Some(Field::parse("origin").unwrap_or_else(|e| panic!("{e}")));
    query.top = 2;
    query.other = true;
    let got = store
        .series(A, &query)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let groups: Vec<(Option<&str>, bool)> =
        got.iter().map(|s| (s.group.as_deref(), s.other)).collect();
    // seville 4/10 and london 3/10 of the events are the top two; sydney and new-york are other.
    assert_eq!(
        groups,
        vec![
            (Some("seville"), false),
            (Some("london"), false),
            (None, true)
        ]
    );
    let city = |e: &Event| {
        e.data
            .as_ref()
            .map(|d| d.to_value()["origin"].as_str().unwrap_or("").to_owned())
    };
    for s in &got {
        let members: Vec<&Event> = events
            .iter()
            .filter(|e| match &s.group {
                Some(g) => city(e).as_deref() == Some(g.as_str()),
                None => matches!(city(e).as_deref(), Some("sydney" | "new-york")),
            })
            .collect();
        assert_points(
            &s.points,
            &expected_points(&members, &query),
            &format!("p95 of {:?}", s.group),
        );
    }

    // Grouping by a canonical column, with a tie broken by value: dev-0 … dev-3 have 150
    // events each, so the top two are dev-0 and dev-1.
    let mut by_device = series(
        "",
        "value",
        "count",
        "1d",
        "2018-06-01T00:00:00Z",
        "2018-06-05T00:00:00Z",
    );
    by_device.group_by = Some(Field::Device);
    by_device.top = 2;
    let got = store
        .series(A, &by_device)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<Option<&str>> = got.iter().map(|s| s.group.as_deref()).collect();
    assert_eq!(names, vec![Some("dev-0"), Some("dev-1")]);
    let total: f64 = got[0].points.iter().filter_map(|(_, v)| *v).sum();
    assert_eq!(total, 150.0);

    // Numbers and booleans group by their JSON text; events without the field are in no group.
    let mut by_flag = series(
        "seq < 20",
        "value",
        "count",
        "1d",
        "2018-06-01T00:00:00Z",
        "2018-06-02T00:00:00Z",
    );
    by_flag.group_by = Some(Field::parse("flag").unwrap_or_else(|e| panic!("{e}")));
    let got = store
        .series(A, &by_flag)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let counts: HashMap<Option<String>, Option<f64>> = got
        .iter()
        .map(|s| (s.group.clone(), s.points[0].1))
        .collect();
    assert_eq!(counts.get(&Some("false".to_owned())), Some(&Some(16.0)));
    assert_eq!(counts.get(&Some("true".to_owned())), Some(&Some(4.0)));
    let mut by_missing = by_flag.clone();
    by_missing.group_by = Some(Field::parse("payload.value").unwrap_or_else(|e| panic!("{e}")));
    by_missing.top = 100;
    let got = store
        .series(A, &by_missing)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let grouped: f64 = got.iter().filter_map(|s| s.points[0].1).sum();
    let expected = events
        .iter()
        .filter(|e| by_flag.filter.matches(e))
        .filter(|e| {
            numbers_at(e, &Field::parse("payload.value").unwrap_or(Field::Value)).is_some()
                || e.data
                    .as_ref()
                    .is_some_and(|d| d.to_value()["payload"]["value"].is_string())
        })
        .count();
    assert_eq!(
        grouped, expected as f64,
        "events without the field are in no group"
    );
}

/// Too many buckets is an error, not a huge answer; other tenants are never included.
pub async fn series_limits_and_isolation<S: Store + ?Sized>(store: &S) {
    load(store).await;
    let too_many = series(
        "",
        "value",
        "avg",
        "1s",
        "2018-06-01T00:00:00Z",
        "2018-06-05T00:00:00Z",
    );
    match store.series(A, &too_many).await {
        Err(StoreError::InvalidQuery(_)) => {}
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
    let count = series(
        "",
        "value",
        "count",
        "1d",
        "2018-06-01T00:00:00Z",
        "2018-06-06T00:00:00Z",
    );
    let a: f64 = store
        .series(A, &count)
        .await
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .points
        .iter()
        .filter_map(|p| p.1)
        .sum();
    let b: f64 = store
        .series(B, &count)
        .await
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .points
        .iter()
        .filter_map(|p| p.1)
        .sum();
    assert_eq!((a, b), (N as f64, 50.0));
    let empty = store
        .series(TenantId(99), &count)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        empty[0].points.iter().all(|p| p.1.is_none()),
        "no events: every bucket is null"
    );
}

/// Retention deletes old events in short batches, only of the tenant asked.
pub async fn delete_before_is_bounded_and_scoped<S: Store + ?Sized>(store: &S) {
    let events = load(store).await;
    let cut = Timestamp::from_micros(BASE + 2 * DAY);
    let old = events.iter().filter(|e| e.ts < cut).count() as u64;
    let mut deleted = 0;
    let mut calls = 0;
    loop {
        let n = store
            .delete_before(A, cut, 100)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(n <= 100);
        deleted += n;
        calls += 1;
        if n == 0 || calls > 100 {
            break;
        }
    }
    assert_eq!(deleted, old);
    assert!(calls >= 3, "deleted in several short batches");
    let left = store
        .list_events(A, &all(Filter::All))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .events;
    assert_eq!(left.len() as u64, N as u64 - old);
    assert!(left.iter().all(|e| e.ts >= cut));
    let b = store
        .list_events(B, &all(Filter::All))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .events;
    assert_eq!(b.len(), 50, "tenant B keeps its old events");
}

/// Tenants are listed and carry their retention.
pub async fn registry_tenant_retention<S: Store + ?Sized>(store: &S) {
    let acme = store
        .create_tenant("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let city = store
        .create_tenant("city")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(acme.retention, None);
    let week = std::time::Duration::from_secs(7 * 86_400);
    assert!(
        store
            .set_tenant_retention(acme.id, Some(week))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    assert!(
        !store
            .set_tenant_retention(TenantId(9999), Some(week))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    let tenants = store.list_tenants().await.unwrap_or_else(|e| panic!("{e}"));
    let found: Vec<(&str, Option<std::time::Duration>)> = tenants
        .iter()
        .map(|t| (t.name.as_str(), t.retention))
        .collect();
    assert_eq!(found, vec![("acme", Some(week)), ("city", None)]);
    let by_name = store
        .tenant_by_name("acme")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_name.map(|t| t.retention), Some(Some(week)));
    assert!(
        store
            .set_tenant_retention(acme.id, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    assert_eq!(
        store
            .tenant_by_name("acme")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|t| t.retention),
        Some(None)
    );
    assert_eq!(city.retention, None);
}
