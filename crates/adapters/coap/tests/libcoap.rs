//! The endpoint against libcoap's `coap-client` (Debian package `libcoap3-bin`), a client
//! nobody here wrote. Without it these tests skip with a note, except in CI (`CI=true`),
//! where they fail.

mod support;

use std::path::Path;
use std::time::Duration;

use ingot_adapter_coap::CoapConfig;
use ingot_core::EventId;
use ingot_store::{EventStore, Role};
use support::{Run, Server, coap_client, fake_jpeg, run};

const LIMIT: Duration = Duration::from_secs(20);

async fn coap(client: &Path, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    run(client, &args, LIMIT).await.expect("coap-client runs")
}

fn ids(json: &str) -> Vec<EventId> {
    let start = json.find('{').expect("a JSON payload");
    let end = json.rfind('}').expect("a JSON payload") + 1;
    let value: serde_json::Value = serde_json::from_str(&json[start..end]).expect("JSON");
    value["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| EventId::parse(id.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn con_and_non_posts_are_created_once_durable() {
    let Some(client) = coap_client() else { return };
    let server = Server::start().await;
    let token = server.device("probe-7").await;
    let uri = server.uri(&format!("events?token={token}"));

    let con = coap(
        &client,
        &[
            "-v",
            "6",
            "-B",
            "5",
            "-m",
            "post",
            "-t",
            "50",
            "-e",
            r#"{"kind":"temperature","value":21.5}"#,
            &uri,
        ],
    )
    .await;
    assert_eq!(con.codes(), ["2.01"], "{con:?}");
    assert_eq!(con.response_types(), ["ACK"], "{con:?}");
    assert!(con.stdout.contains("\"ids\""), "{con:?}");

    let non = coap(
        &client,
        &[
            "-v",
            "6",
            "-B",
            "5",
            "-N",
            "-m",
            "post",
            "-t",
            "json",
            "-e",
            r#"[{"value":1},{"value":2}]"#,
            &uri,
        ],
    )
    .await;
    assert_eq!(non.codes(), ["2.01"], "{non:?}");
    assert_eq!(non.response_types(), ["NON"], "{non:?}");

    let events = server.wait_for_events("probe-7", 3).await;
    let mut values: Vec<f64> = events.iter().filter_map(|e| e.value).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [1.0, 2.0, 21.5]);
    assert_eq!(server.metrics.responses("2.01"), 2);
}

#[tokio::test]
async fn a_300_kb_picture_uploads_in_block1_blocks() {
    let Some(client) = coap_client() else { return };
    let server = Server::start().await;
    let token = server.device("cam-1").await;
    let picture = fake_jpeg(300 * 1024);
    let file = server.dir.path().join("picture.jpg");
    std::fs::write(&file, &picture).unwrap();
    let uri = server.uri(&format!("events?token={token}&kind=picture&sensor=front"));

    let upload = coap(
        &client,
        &[
            "-B",
            "15",
            "-m",
            "post",
            "-t",
            "22",
            "-b",
            "1024",
            "-f",
            file.to_str().unwrap(),
            &uri,
        ],
    )
    .await;
    assert!(
        !upload.stderr.contains("4.") && !upload.stderr.contains("5."),
        "{upload:?}"
    );
    let ids = ids(&upload.stdout);
    assert_eq!(ids.len(), 1, "{upload:?}");
    assert!(
        server.metrics.responses("2.31") >= 299,
        "one 2.31 per block but the last"
    );
    assert_eq!(server.metrics.responses("2.01"), 1);

    server.wait_for_events("cam-1", 1).await;
    let stored = server
        .store
        .get_event(server.tenant, &ids[0])
        .await
        .unwrap()
        .expect("the picture is stored");
    assert_eq!(stored.kind.as_deref(), Some("picture"));
    assert_eq!(stored.sensor.as_deref(), Some("front"));
    let payload = stored.payload.expect("with its bytes");
    assert_eq!(payload.content_type, "image/jpeg");
    assert_eq!(&payload.bytes[..], &picture[..]);
    assert_eq!(server.metrics.block_transfers(), 0);
}

#[tokio::test]
async fn a_large_listing_arrives_in_block2_blocks() {
    let Some(client) = coap_client() else { return };
    let server = Server::start().await;
    let token = server.device("probe-9").await;
    let batch: Vec<serde_json::Value> = (0..40)
        .map(|i| serde_json::json!({"kind": "temperature", "value": i, "ts": 1_527_861_000 + i}))
        .collect();
    let body = serde_json::to_string(&batch).unwrap();
    let post = coap(
        &client,
        &[
            "-B",
            "10",
            "-m",
            "post",
            "-t",
            "50",
            "-b",
            "1024",
            "-e",
            &body,
            &server.uri(&format!("events?token={token}")),
        ],
    )
    .await;
    // 40 ids do not fit one block: the 2.01 payload summarises them.
    let created: serde_json::Value = serde_json::from_str(post.stdout.trim()).expect("JSON");
    assert_eq!(created["count"], 40, "{post:?}");
    server.wait_for_events("probe-9", 40).await;

    let reader = server.key(Role::Reader).await;
    let listing = coap(
        &client,
        &[
            "-B",
            "10",
            "-m",
            "get",
            &server.uri(&format!("events?token={reader}&device=probe-9&limit=40")),
        ],
    )
    .await;
    let json: serde_json::Value =
        serde_json::from_str(listing.stdout.trim()).expect("the whole listing");
    let events = json["events"].as_array().expect("events");
    assert_eq!(events.len(), 40);
    assert_eq!(events[0]["value"], 39.0, "newest first");
    assert_eq!(events[39]["value"], 0.0);
    assert!(listing.stdout.len() > 1024, "more than one block");
    assert!(
        server.metrics.responses("2.05") >= 2,
        "several Block2 blocks"
    );
}

#[tokio::test]
async fn an_observer_is_notified_of_each_new_event() {
    let Some(client) = coap_client() else { return };
    let server = Server::start().await;
    let token = server.device("probe-obs").await;
    let watch_uri = server.uri(&format!("events/latest?token={token}"));
    let post_uri = server.uri(&format!("events?token={token}"));
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move { coap(&client, &["-w", "-s", "4", "-B", "6", &watch_uri]).await })
    };
    server
        .wait_until("the observer is registered", |s| s.metrics.observers() == 1)
        .await;
    for value in [31, 32] {
        let posted = coap(
            &client,
            &[
                "-B",
                "5",
                "-m",
                "post",
                "-t",
                "50",
                "-e",
                &format!(r#"{{"value":{value}}}"#),
                &post_uri,
            ],
        )
        .await;
        assert!(posted.stdout.contains("ids"), "{posted:?}");
    }
    let watched = watcher.await.unwrap();
    let notes: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON event per notification"))
        .collect();
    assert_eq!(
        notes.first(),
        Some(&serde_json::Value::Null),
        "no event yet at registration: {watched:?}"
    );
    let values: Vec<f64> = notes.iter().filter_map(|n| n["value"].as_f64()).collect();
    assert_eq!(values, [31.0, 32.0], "{watched:?}");
    assert_eq!(notes[1]["device"], "probe-obs");
}

#[tokio::test]
async fn errors_carry_their_codes_and_diagnostics() {
    let Some(client) = coap_client() else { return };
    let server = Server::start_with(
        CoapConfig {
            max_body_bytes: 8 * 1024,
            ..CoapConfig::default()
        },
        false,
    )
    .await;
    let token = server.device("probe-1").await;
    let reader = server.key(Role::Reader).await;
    let big = server.dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 20 * 1024]).unwrap();
    let post = |query: &str| server.uri(&format!("events{query}"));

    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            args(&["-m", "post", "-t", "50", "-e", r#"{"value":1}"#, &post("")]),
            "4.01",
            "missing credentials",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "50",
                "-e",
                r#"{"value":1}"#,
                &post("?token=idt_wrong"),
            ]),
            "4.01",
            "invalid credentials",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "50",
                "-e",
                r#"{"value":"hot"}"#,
                &post(&format!("?token={token}")),
            ]),
            "4.00",
            "event 0 (line 1): field `value` must be a number",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "50",
                "-O",
                "65001,x",
                "-e",
                "{}",
                &post(&format!("?token={token}")),
            ]),
            "4.02",
            "option 65001",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "50",
                "-e",
                r#"{"device":"other","value":1}"#,
                &post(&format!("?token={token}")),
            ]),
            "4.03",
            "names device `other`",
        ),
        (
            args(&["-m", "get", &server.uri("nothing")]),
            "4.04",
            "no resource at `/nothing`",
        ),
        (
            args(&["-m", "put", "-e", "{}", &post("")]),
            "4.05",
            "PUT is not allowed",
        ),
        (
            args(&["-m", "get", "-A", "60", &post(&format!("?token={reader}"))]),
            "4.06",
            "Accept 60",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "42",
                "-b",
                "1024",
                "-f",
                big.to_str().unwrap(),
                &post(&format!("?token={token}")),
            ]),
            "4.13",
            "more than the limit of 8192",
        ),
        (
            args(&[
                "-m",
                "post",
                "-t",
                "0",
                "-e",
                "hello",
                &post(&format!("?token={token}")),
            ]),
            "4.15",
            "Content-Format 0 is not accepted",
        ),
        (
            args(&[
                "-m",
                "get",
                &post(&format!("?token={token}&device=probe-2")),
            ]),
            "4.03",
            "reads only its own events",
        ),
    ];
    for (case_args, expected, diagnostic) in cases {
        let mut full = args(&["-v", "6", "-B", "5"]);
        full.extend(case_args.iter().cloned());
        let result = run(&client, &full, LIMIT).await.expect("coap-client runs");
        let codes = result.codes();
        assert_eq!(
            codes.last().map(String::as_str),
            Some(expected),
            "{case_args:?}: {result:?}"
        );
        let all = format!("{}{}", result.stdout, result.stderr);
        assert!(
            all.contains(diagnostic),
            "{case_args:?} should say {diagnostic:?}: {result:?}"
        );
    }
    let health = coap(&client, &["-B", "5", &server.uri("health")]).await;
    assert_eq!(health.stdout.trim(), "ok");
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}
