//! A three-node JetStream cluster on loopback ports, R3 streams, and one node killed
//! (SIGKILL) under sustained appends: the log stays available, and every acknowledged
//! message is in it exactly once (retried publishes are dropped by the duplicate window).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ingot_log::{Log, LogMetrics};
use ingot_log_nats::testing::{NatsCluster, nats_server_binary};
use ingot_log_nats::{NatsLog, NatsLogConfig};
use tokio::time::Instant;

const TOPIC: &str = "events";
const APPENDERS: usize = 6;
/// Bounds of each appender's loop, whatever happens to the cluster.
const MAX_APPENDS: usize = 4_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(30);

fn config(url: String) -> NatsLogConfig {
    NatsLogConfig {
        url,
        partitions: 4,
        replicas: 3,
        // A leader election in nats-server 2.9 takes 4 to 9 s: retry for longer than that.
        publish_timeout: Duration::from_secs(20),
        duplicate_window: Duration::from_secs(60),
        ..NatsLogConfig::default()
    }
}

/// The outcome of one appender: payloads acknowledged, appends that failed.
struct Appended {
    acked: Vec<Bytes>,
    failed: usize,
}

fn start_appenders(
    log: &Arc<NatsLog>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Appended>> {
    (0..APPENDERS)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut out = Appended {
                    acked: Vec::new(),
                    failed: 0,
                };
                for i in 0..MAX_APPENDS {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > MAX_LOAD_TIME {
                        break;
                    }
                    let key = format!("tenant/dev-{t}-{}", i % 5);
                    let batch: Vec<Bytes> = (0..1 + i % 3)
                        .map(|j| Bytes::from(format!("a{t}/{i}/{j}")))
                        .collect();
                    match log.append(TOPIC, key.as_bytes(), batch.clone()).await {
                        Ok(ack) => {
                            assert_eq!(ack.count as usize, batch.len());
                            out.acked.extend(batch);
                        }
                        // Not acknowledged: it may or may not be in the log, never twice.
                        Err(_) => out.failed += 1,
                    }
                }
                out
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_cluster_keeps_every_acknowledged_message_once_when_a_node_dies() {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let mut cluster = NatsCluster::start(&binary, 3)
        .await
        .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"));
    let log = Arc::new(
        NatsLog::connect(config(cluster.url()), LogMetrics::default())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}")),
    );
    // Create the streams, then find the node leading partition 0: that one dies.
    log.append(TOPIC, b"warm-up", vec![Bytes::from_static(b"warm-up")])
        .await
        .expect("first append");
    let client = async_nats::connect(
        cluster
            .nodes
            .iter()
            .map(|n| n.url())
            .collect::<Vec<_>>()
            .as_slice(),
    )
    .await
    .expect("inspection client");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(log.stream_name(TOPIC, 0))
        .await
        .expect("partition 0's stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3, "R3 streams");
    let victim = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("partition 0 has a leader");

    let stop = Arc::new(AtomicBool::new(false));
    let appenders = start_appenders(&log, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let node = cluster
        .node_mut(&victim)
        .expect("the leader is one of ours");
    node.kill();
    let killed_at = Instant::now();
    // Keep appending through the election and after it.
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, Ordering::SeqCst);

    let mut acked = Vec::new();
    let mut failed = 0;
    for task in appenders {
        let out = task.await.expect("appender");
        acked.extend(out.acked);
        failed += out.failed;
    }
    assert!(
        acked.len() > 1000,
        "only {} messages acknowledged",
        acked.len()
    );
    eprintln!(
        "{} messages acknowledged, {failed} appends failed, {:?} after the kill of {victim}",
        acked.len(),
        killed_at.elapsed()
    );

    // The two survivors still serve: appends after the load are acknowledged.
    let after = log
        .append(TOPIC, b"after", vec![Bytes::from_static(b"after-the-kill")])
        .await
        .expect("an append after the node died");
    acked.push(Bytes::from_static(b"after-the-kill"));
    assert_eq!(after.count, 1);

    // Read everything back as a new group: every acknowledged message exactly once.
    let ends: u64 = log.end_offsets(TOPIC).await.expect("ends").iter().sum();
    let mut consumer = log.consumer(TOPIC, "verify").await.expect("consumer");
    let mut seen: HashMap<Bytes, usize> = HashMap::new();
    let mut read = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < ends {
        assert!(
            Instant::now() < deadline,
            "read only {read} of {ends} messages"
        );
        for d in consumer
            .poll(5_000, Duration::from_millis(500))
            .await
            .expect("poll")
        {
            read += 1;
            *seen.entry(d.payload).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<_> = acked.iter().filter(|p| !seen.contains_key(*p)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(read, seen.len() as u64, "dense offsets, nothing twice");
    log.close().await.expect("close");
}
