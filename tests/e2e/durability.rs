//! Acknowledged means durable: SIGTERM under load, and SIGKILL mid-stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Server;

const WRITERS: usize = 4;
const BATCH: usize = 50;
/// Bounds on each writer's loop, whatever happens to the server.
const MAX_BATCHES: usize = 400;
const MAX_WRITE_TIME: Duration = Duration::from_secs(20);

/// Starts `WRITERS` devices posting NDJSON batches until `stop` is set, the server goes away,
/// or the bounds run out; each returns the ids it got a 201 for.
async fn start_writers(
    server: &Server,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let token = server.add_device(&format!("writer-{w}")).await;
        let url = server.url("/api/v1/events");
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let started = Instant::now();
            let mut acked = Vec::new();
            for b in 0..MAX_BATCHES {
                if stop.load(Ordering::SeqCst) || started.elapsed() > MAX_WRITE_TIME {
                    break;
                }
                let body: String = (0..BATCH)
                    .map(|i| format!("{{\"kind\":\"load\",\"value\":{}}}\n", b * BATCH + i))
                    .collect();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => {
                        let body: Value = r.json().await.expect("a 201 carries the ids");
                        acked.extend(
                            body["ids"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|id| id.as_str().unwrap().to_owned()),
                        );
                    }
                    // Refused while draining, or the connection died with the server: not acknowledged.
                    Ok(_) | Err(_) => break,
                }
            }
            acked
        }));
    }
    writers
}

async fn acked_ids(writers: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    all
}

/// Every acknowledged id is stored exactly once, and no id is stored twice.
fn assert_exactly_once(stored: &[Value], acked: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in stored {
        *counts.entry(e["id"].as_str().unwrap()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "stored more than once: {duplicated:?}"
    );
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events are missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test]
async fn sigterm_under_load_exits_zero_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&server, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = acked_ids(writers).await;
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("store writer drained the log"),
        "the writer drained before exit:\n{stderr}"
    );
    assert!(
        acked.len() >= BATCH,
        "the load ran ({} acknowledged)",
        acked.len()
    );
    drop(server);

    let server = Server::start(dir.path(), &[]).await;
    let stored = server.all_events("kind=load").await;
    assert_exactly_once(&stored, &acked);
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn sigkill_mid_stream_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&server, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = acked_ids(writers).await;
    assert!(
        acked.len() >= BATCH,
        "the load ran ({} acknowledged)",
        acked.len()
    );
    drop(server);

    let server = Server::start(dir.path(), &[]).await;
    // The store writer replays from its checkpoint; wait until it has caught up.
    let stored = server.wait_for_events("kind=load", acked.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored_later = server.all_events("kind=load").await;
    assert_eq!(
        stored.len(),
        stored_later.len(),
        "no more events trickle in after catching up"
    );
    assert_exactly_once(&stored_later, &acked);
    // Whatever was appended but not acknowledged may be there, but nothing beyond what was sent.
    assert!(stored_later.len() <= WRITERS * MAX_BATCHES * BATCH);
}
