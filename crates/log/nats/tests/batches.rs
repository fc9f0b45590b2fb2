//! Batches far larger than the client's window of unacknowledged publishes, alone and many
//! at once: every one is acknowledged, with dense offsets, and nothing stalls.

use std::time::Duration;

use bytes::Bytes;
use ingot_log::{Log, LogMetrics};
use ingot_log_nats::testing::{NatsServer, nats_server_binary};
use ingot_log_nats::{NatsLog, NatsLogConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_concurrent_batches_are_acknowledged() {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let server = NatsServer::start(&binary)
        .await
        .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
    let config = NatsLogConfig {
        url: server.url(),
        partitions: 2,
        ..NatsLogConfig::default()
    };
    let log = std::sync::Arc::new(
        NatsLog::connect(config, LogMetrics::default())
            .await
            .expect("connect"),
    );
    let batch = |tag: &str, n: usize| -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("{tag}/{i}"))).collect()
    };
    // Ten times the window in one append.
    let ack = tokio::time::timeout(
        Duration::from_secs(60),
        log.append("big", b"one-device", batch("big", 10_240)),
    )
    .await
    .expect("a large append does not stall")
    .expect("append");
    assert_eq!((ack.first_offset, ack.count), (0, 10_240));

    // Eight appends of three windows each at once, on both partitions.
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(
                    "many",
                    format!("dev-{t}").as_bytes(),
                    batch(&format!("t{t}"), 3_072),
                )
                .await
            })
        })
        .collect();
    let mut total = 0u64;
    for task in tasks {
        let ack = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("concurrent large appends do not stall")
            .expect("task")
            .expect("append");
        total += u64::from(ack.count);
    }
    assert_eq!(total, 8 * 3_072);
    let ends: u64 = log.end_offsets("many").await.expect("ends").iter().sum();
    assert_eq!(ends, total, "every message once");
    log.close().await.expect("close");
}
