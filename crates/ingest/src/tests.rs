use std::time::Duration;

use ingot_core::TenantId;
use ingot_log::file::{FileLog, FileLogConfig, LogMetrics};

use super::*;

fn open_log(dir: &std::path::Path) -> Arc<dyn Log> {
    let config = FileLogConfig {
        dir: dir.to_path_buf(),
        ..FileLogConfig::default()
    };
    Arc::new(FileLog::open(config, LogMetrics::default()).unwrap())
}

async fn read_all(log: &Arc<dyn Log>) -> Vec<Event> {
    let mut consumer = log.consumer(EVENTS_TOPIC, "test").await.unwrap();
    let mut events = Vec::new();
    loop {
        let batch = consumer
            .poll(1000, Duration::from_millis(50))
            .await
            .unwrap();
        if batch.is_empty() {
            return events;
        }
        events.extend(batch.iter().map(|d| record::decode(&d.payload).unwrap()));
    }
}

const TENANT: TenantId = TenantId(3);

fn device(name: &str) -> Identity {
    Identity::Device {
        tenant: TENANT,
        device: name.into(),
    }
}

fn key(role: Role) -> Identity {
    Identity::Key {
        tenant: TENANT,
        role,
        key_id: "k".into(),
    }
}

#[tokio::test]
async fn device_events_are_completed_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let ingest = Ingest::new(log.clone(), Limits::default(), IngestMetrics::default());
    let body = br#"[{"sensor":"s1","kind":"temperature","value":15},
        {"id":"client-1","ts":"2018-06-01T14:08:24.771Z","value":16.5},
        {"namespace":"default","sender":"probe-7","origin":"probe1","payload":{"type":"temperature","value":18.15}}]"#;
    let before = Timestamp::now();
    let ids = ingest
        .ingest_body(&device("probe-7"), Protocol::http, body, BodyFormat::Json)
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1].as_str(), "client-1");
    assert!(ids[0] < ids[2], "generated ids increase");

    let events = read_all(&log).await;
    assert_eq!(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    for event in &events {
        assert_eq!(event.tenant, TENANT);
        assert_eq!(event.device, "probe-7");
        assert!(event.received >= before);
    }
    assert_eq!(events[0].ts, events[0].received, "ts defaults to arrival");
    assert_eq!(events[1].ts.to_rfc3339(), "2018-06-01T14:08:24.771Z");
    assert_eq!(events[2].sensor.as_deref(), Some("probe1"));
    assert_eq!(events[2].value, Some(18.15));
}

#[tokio::test]
async fn authorisation_rules() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let ingest = Ingest::new(log.clone(), Limits::default(), IngestMetrics::default());
    let named = br#"{"device":"other","value":1}"#;
    let unnamed = br#"{"value":1}"#;

    let err = ingest
        .ingest_body(&device("probe-7"), Protocol::http, named, BodyFormat::Json)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::WrongDevice { index: 0, named, actual } if named == "other" && actual == "probe-7")
    );
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);

    let err = ingest
        .ingest_body(&key(Role::Reader), Protocol::http, named, BodyFormat::Json)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);

    for identity in [key(Role::Writer), Identity::Anonymous { tenant: TENANT }] {
        let err = ingest
            .ingest_body(&identity, Protocol::http, unnamed, BodyFormat::Json)
            .await
            .unwrap_err();
        assert!(
            matches!(err, IngestError::MissingDevice { index: 0 }),
            "{err}"
        );
        ingest
            .ingest_body(&identity, Protocol::http, named, BodyFormat::Json)
            .await
            .unwrap();
    }
    let events = read_all(&log).await;
    assert_eq!(
        events.len(),
        2,
        "only the two permitted writes reached the log"
    );
    assert!(events.iter().all(|e| e.device == "other"));
}

#[tokio::test]
async fn a_bad_element_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let metrics = IngestMetrics::default();
    let ingest = Ingest::new(log.clone(), Limits::default(), metrics.clone());
    let body = b"{\"device\":\"a\",\"value\":1}\n{\"device\":\"b\",\"value\":\"x\"}\n";
    let err = ingest
        .ingest_body(&key(Role::Writer), Protocol::http, body, BodyFormat::Ndjson)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("event 1 (line 2): field `value`"),
        "{err}"
    );
    assert!(read_all(&log).await.is_empty());
    let refused = metrics
        .refused
        .get_or_create(&RefusedLabels {
            protocol: Protocol::http,
            reason: RefusalReason::invalid,
        })
        .get();
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn many_devices_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let ingest = Ingest::new(log.clone(), Limits::default(), IngestMetrics::default());
    let mut body = String::new();
    for i in 0..400 {
        body.push_str(&format!("{{\"device\":\"d{}\",\"value\":{i}}}\n", i % 16));
    }
    let ids = ingest
        .ingest_body(
            &key(Role::Writer),
            Protocol::http,
            body.as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 400);
    let events = read_all(&log).await;
    assert_eq!(events.len(), 400);
    for d in 0..16 {
        let values: Vec<f64> = events
            .iter()
            .filter(|e| e.device == format!("d{d}"))
            .filter_map(|e| e.value)
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(values, sorted, "device d{d} in order");
        assert_eq!(values.len(), 25);
    }
}

#[tokio::test]
async fn the_live_feed_sees_durable_events_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let ingest = Ingest::new(log.clone(), Limits::default(), IngestMetrics::default());
    // Nobody listening: publishing is skipped.
    ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            br#"{"value":1}"#,
            BodyFormat::Json,
        )
        .await
        .unwrap();
    let mut live = ingest.live().subscribe();
    ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            br#"[{"value":2},{"value":3}]"#,
            BodyFormat::Json,
        )
        .await
        .unwrap();
    let _ = ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            br#"{"value":"bad"}"#,
            BodyFormat::Json,
        )
        .await;
    let first = live.recv().await.unwrap();
    let second = live.recv().await.unwrap();
    assert_eq!((first.value, second.value), (Some(2.0), Some(3.0)));
    assert_eq!(first.tenant, TENANT);
    assert!(
        live.try_recv().is_err(),
        "refused events never reach the feed"
    );
}

#[tokio::test]
async fn rate_limits_refuse_whole_batches_with_a_retry_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let limits = Limits {
        device_events_per_second: 10.0,
        device_burst: 5,
        ..Limits::default()
    };
    let ingest = Ingest::new(log.clone(), limits, IngestMetrics::default());
    let body = |n: usize| {
        (0..n)
            .map(|i| format!("{{\"value\":{i}}}\n"))
            .collect::<String>()
    };
    ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            body(4).as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap();
    let err = ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            body(3).as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_millis(150) && wait <= Duration::from_millis(200),
        "{wait:?}"
    );
    assert!(
        err.to_string()
            .contains("device probe-7 is over its rate limit"),
        "{err}"
    );
    // Another device has its own bucket; a batch beyond the burst can never fit.
    ingest
        .ingest_body(
            &device("probe-8"),
            Protocol::http,
            body(5).as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap();
    let err = ingest
        .ingest_body(
            &device("cam-1"),
            Protocol::http,
            body(6).as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    tokio::time::sleep(wait).await;
    ingest
        .ingest_body(
            &device("probe-7"),
            Protocol::http,
            body(3).as_bytes(),
            BodyFormat::Ndjson,
        )
        .await
        .unwrap();
    assert_eq!(
        read_all(&log).await.len(),
        12,
        "refused batches left nothing"
    );
}
