//! What an acknowledged append survives on one server: `nats-server` killed with SIGKILL
//! right after the acknowledgements (a crash of the process, not of the machine) and
//! started again on its storage keeps every acknowledged message. (A power loss is not
//! testable here; see the crate docs for what the file store syncs and when.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ingot_log::{Log, LogMetrics};
use ingot_log_nats::testing::{NatsServer, nats_server_binary};
use ingot_log_nats::{NatsLog, NatsLogConfig};
use tokio::time::Instant;

async fn connect(server: &NatsServer) -> Arc<NatsLog> {
    let config = NatsLogConfig {
        url: server.url(),
        partitions: 4,
        ..NatsLogConfig::default()
    };
    Arc::new(
        NatsLog::connect(config, LogMetrics::default())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log_tail())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_killed_server() {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let mut server = NatsServer::start(&binary)
        .await
        .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
    let log = connect(&server).await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for b in 0..25 {
                    let batch: Vec<Bytes> = (0..200)
                        .map(|i| Bytes::from(format!("k{t}/{b}/{i}")))
                        .collect();
                    log.append("events", format!("dev-{t}").as_bytes(), batch.clone())
                        .await
                        .expect("append");
                    acked.extend(batch);
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("appender"));
    }
    // The last acknowledgement just arrived: kill at once, no shutdown of any kind.
    server.kill();
    drop(log);
    server.restart().await.expect("restart");

    let log = connect(&server).await;
    let mut consumer = log
        .consumer("events", "after-crash")
        .await
        .expect("consumer");
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < acked.len() && Instant::now() < deadline {
        for d in consumer
            .poll(10_000, Duration::from_millis(500))
            .await
            .expect("poll")
        {
            assert!(seen.insert(d.payload.clone()), "{:?} twice", d.payload);
        }
    }
    let missing = acked.iter().filter(|p| !seen.contains(*p)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages lost when nats-server was killed",
        acked.len()
    );
    log.close().await.expect("close");
}
