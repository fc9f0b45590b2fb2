//! Scale-out: replicas of the real binary with `--roles`, sharing one NATS JetStream and one
//! PostgreSQL. Two ingest replicas behind a client-side "load balancer" (each batch goes
//! to one of them, and is retried on the other when the first fails, with the same event
//! ids, as a device behind a real balancer would) and two store writers. One replica of
//! each kind goes away mid-load, killed (SIGKILL) or scaled down (SIGTERM): every event
//! acknowledged with a 201 is stored exactly once.
//!
//! Needs `nats-server` (Debian package) and `INGOT_TEST_POSTGRES_URL` (`.ci/postgres`):
//! without them the tests print a note and pass, except with `CI=true`, where they fail.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ingot_log_nats::testing::{NatsServer, in_ci, nats_server_binary};
use serde_json::Value;

use crate::support::Server;

const DEVICES: usize = 4;
const BATCH: usize = 50;
/// Bounds of each device's loop, whatever happens to the replicas.
const MAX_BATCHES: usize = 400;
const MAX_LOAD_TIME: Duration = Duration::from_secs(12);

/// A schema of its own on the test PostgreSQL, named like the store tests' so their
/// clean-up of old leftovers also removes ours after a killed run.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    async fn create() -> Option<Schema> {
        let url = match std::env::var("INGOT_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if in_ci() => {
                panic!("CI=true and INGOT_TEST_POSTGRES_URL is not set (eval \"$(.ci/postgres)\")")
            }
            _ => {
                eprintln!(
                    "note: skipping a scale-out test: INGOT_TEST_POSTGRES_URL is not set (eval \"$(.ci/postgres)\")"
                );
                return None;
            }
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!(
            "ingot_t_{now}_{}_{}",
            std::process::id(),
            100 + NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Schema { url, name })
    }

    async fn drop_it(&self) {
        let Ok((client, connection)) =
            tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await
        else {
            return;
        };
        tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await;
    }
}

/// One NATS server, one schema, and the configuration file every replica reads.
struct Shared {
    nats: NatsServer,
    schema: Schema,
    dir: tempfile::TempDir,
}

impl Shared {
    async fn start() -> Option<Shared> {
        let binary = nats_server_binary()?;
        let schema = Schema::create().await?;
        let nats = NatsServer::start(&binary)
            .await
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "log_url = \"{}\"\nstore_url = \"{}\"\nshutdown_grace = \"10s\"\n\
             [nats]\n# Messages a killed writer held go to the other one after this.\nack_wait = \"3s\"\n\
             [postgres]\nschema = \"{}\"\npool_size = 4\n\
             [store]\nwriter_batch = 2000\n",
            nats.url(),
            schema.url,
            schema.name
        );
        std::fs::write(dir.path().join("ingot.toml"), config).unwrap();
        Some(Shared { nats, schema, dir })
    }

    async fn replica(&self, name: &str, roles: &str) -> Server {
        let config = self.dir.path().join("ingot.toml");
        let data = self.dir.path().join(name);
        Server::start(
            &data,
            &["--config", config.to_str().unwrap(), "--roles", roles],
        )
        .await
    }
}

/// The load: `DEVICES` devices posting NDJSON batches with their own event ids, each to
/// one ingest replica in turn, retried on the other on failure; returns the ids that got
/// a 201.
fn start_devices(
    tokens: Vec<String>,
    ingest: [String; 2],
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    tokens
        .into_iter()
        .enumerate()
        .map(|(d, token)| {
            let (ingest, stop) = (ingest.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let started = Instant::now();
                let mut acked = Vec::new();
                for b in 0..MAX_BATCHES {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > MAX_LOAD_TIME {
                        break;
                    }
                    let ids: Vec<String> = (0..BATCH).map(|i| format!("s{d}-{b}-{i}")).collect();
                    let body: String = ids
                        .iter()
                        .map(|id| format!("{{\"id\":\"{id}\",\"kind\":\"load\",\"value\":{b}}}\n"))
                        .collect();
                    // Up to 6 tries over both replicas, with the same ids every time.
                    for attempt in 0..6 {
                        let url = format!("{}/api/v1/events", ingest[(b + attempt) % 2]);
                        let response = http
                            .post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status() == 201 => {
                                let answer: Value = r.json().await.expect("a 201 carries the ids");
                                let got: Vec<&str> = answer["ids"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .map(|v| v.as_str().unwrap())
                                    .collect();
                                assert_eq!(got, ids, "the ids chosen by the client");
                                acked.extend(ids.iter().cloned());
                                break;
                            }
                            // Refused while draining, or the replica is gone: try the other.
                            Ok(_) | Err(_) => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
                acked
            })
        })
        .collect()
}

/// Waits until the store holds every acknowledged id, then checks none is there twice.
async fn assert_stored_exactly_once(query: &Server, acked: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, page) = query.get("/api/v1/events?limit=1&total=true").await;
        assert_eq!(status, 200, "{page}");
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        if total >= acked.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of {} acknowledged events stored",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored: Vec<String> = query
        .all_events("kind=load")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

async fn device_tokens(query: &Server, admin_key: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for d in 0..DEVICES {
        let response = query
            .http
            .post(query.url("/api/v1/devices"))
            .bearer_auth(admin_key)
            .json(&serde_json::json!({ "name": format!("scale-{d}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    tokens
}

/// GET with a bearer key from any replica (whose data directory may hold no admin key).
async fn get_with(server: &Server, path: &str, key: &str) -> (u16, Value) {
    let response = server
        .http
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn admin_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.key"))
        .expect("the first replica wrote the admin key")
        .trim()
        .to_owned()
}

/// Which way one replica of each kind leaves mid-load.
#[derive(Clone, Copy, PartialEq)]
enum Leave {
    Kill,
    ScaleDown,
}

async fn run_scenario(leave: Leave) {
    let Some(shared) = Shared::start().await else {
        return;
    };
    // The query replica starts first, so it creates tenant `default` and its admin key.
    let query = shared.replica("query", "query").await;
    let key = admin_key(&query.data_dir);
    let mut ingest_1 = shared.replica("ingest-1", "ingest").await;
    let ingest_2 = shared.replica("ingest-2", "ingest").await;
    let mut writer_1 = shared.replica("writer-1", "store-writer").await;
    let writer_2 = shared.replica("writer-2", "store-writer").await;

    // Each replica serves its part only.
    let (status, body) = get_with(&ingest_1, "/api/v1/events", &key).await;
    assert_eq!(status, 404, "an ingest replica does not list: {body}");
    assert!(body.to_string().contains("query"), "{body}");
    let (status, body) = query
        .post(Some(&key), "application/json", "{\"device\":\"x\"}")
        .await;
    assert_eq!(status, 404, "a query replica does not ingest: {body}");
    for replica in [&query, &ingest_1, &writer_1] {
        for path in ["/metrics", "/healthz", "/readyz"] {
            let (status, _) = get_with(replica, path, &key).await;
            assert_eq!(status, 200, "every replica serves {path}");
        }
    }
    let (_, metrics) = get_with(&writer_1, "/metrics", &key).await;
    assert!(
        metrics
            .to_string()
            .contains("ingot_store_writer_lag_messages"),
        "the autoscaling metric"
    );

    let tokens = device_tokens(&query, &key).await;
    let stop = Arc::new(AtomicBool::new(false));
    let devices = start_devices(
        tokens,
        [ingest_1.base.clone(), ingest_2.base.clone()],
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    match leave {
        Leave::Kill => {
            ingest_1.signal("KILL");
            tokio::time::sleep(Duration::from_secs(1)).await;
            writer_1.signal("KILL");
        }
        Leave::ScaleDown => {
            ingest_1.signal("TERM");
            writer_1.signal("TERM");
        }
    }
    let status_1 = ingest_1.wait_exit(Duration::from_secs(15)).await;
    let status_2 = writer_1.wait_exit(Duration::from_secs(15)).await;
    if leave == Leave::ScaleDown {
        assert!(
            status_1.success(),
            "ingest drained and exited 0: {status_1}"
        );
        assert!(
            status_2.success(),
            "writer drained and exited 0: {status_2}"
        );
        assert!(writer_1.stderr.lock().unwrap().contains("drained; bye"));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for device in devices {
        acked.extend(device.await.unwrap());
    }
    assert!(
        acked.len() >= 20 * BATCH,
        "only {} events acknowledged",
        acked.len()
    );
    eprintln!(
        "{} events acknowledged by two ingest replicas, one of which {}",
        acked.len(),
        if leave == Leave::Kill {
            "was killed"
        } else {
            "was scaled down"
        }
    );
    assert_stored_exactly_once(&query, &acked).await;
    for replica in [ingest_2, writer_2, query] {
        assert!(replica.stop().await.success());
    }
    shared.schema.drop_it().await;
    drop(shared.nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_mid_load_lose_nothing_and_store_nothing_twice() {
    run_scenario(Leave::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_with_sigterm_loses_nothing() {
    run_scenario(Leave::ScaleDown).await;
}
