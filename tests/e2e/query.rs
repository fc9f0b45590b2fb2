//! Filters, totals, histograms, series and retention through the real binary, from HTTP and
//! from `ingot query`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Server, run_cli};

const CITIES: [&str; 4] = ["seville", "london", "sydney", "new-york"];

/// Two days of hourly weather in the collector format: 4 cities × 48 hours.
fn weather() -> Vec<Value> {
    let mut docs = Vec::new();
    for hour in 0..48 {
        for (c, city) in CITIES.iter().enumerate() {
            let temp = 10.0 + c as f64 * 5.0 + (hour % 24) as f64 / 2.0;
            docs.push(json!({
                "namespace": "default", "sender": format!("station-{city}"), "origin": city,
                "payload": {"type": "temperature", "value": temp},
                "timestamp": format!("2018-06-{:02}T{:02}:30:00Z", 1 + hour / 24, hour % 24),
            }));
        }
    }
    docs
}

async fn seeded() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let response = server
        .http
        .post(server.url("/api/v1/keys"))
        .bearer_auth(server.admin_key())
        .json(&json!({"role": "writer"}))
        .send()
        .await
        .unwrap();
    let writer = response.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = server
        .post(
            Some(&writer),
            "application/json",
            Value::Array(weather()).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    server.wait_for_events("", 192).await;
    (dir, server)
}

fn temp(doc: &Value) -> f64 {
    doc["payload"]["value"].as_f64().unwrap()
}

#[tokio::test]
async fn filters_totals_and_histograms() {
    let (_dir, server) = seeded().await;
    let q = "origin:seville and payload.value > 15";
    let docs = weather();
    let expected: Vec<&Value> = docs
        .iter()
        .filter(|d| d["origin"] == "seville" && temp(d) > 15.0)
        .collect();
    let path = format!(
        "/api/v1/events?q={}&total=true&histogram=6h&limit=3",
        urlencode(q)
    );
    let (status, page) = server.get(&path).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], expected.len() as u64);
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert_eq!(page["histogram_interval"], "6h");
    let histogram = page["histogram"].as_array().unwrap();
    // The range is that of the matching events, from 2018-06-01T06:30 (the first value
    // above 15) to 2018-06-02T23:30, in buckets aligned on 00, 06, 12 and 18 h.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for d in &expected {
        let ts = d["timestamp"].as_str().unwrap();
        let hour: u32 = ts[11..13].parse().unwrap();
        *counts
            .entry(format!("{}T{:02}:00:00.000Z", &ts[..10], hour / 6 * 6))
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = histogram
        .iter()
        .map(|b| (b[0].as_str().unwrap().to_owned(), b[1].as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(got, counts);
    assert_eq!(
        histogram
            .iter()
            .map(|b| b[1].as_u64().unwrap())
            .sum::<u64>(),
        expected.len() as u64
    );

    // A syntax error names its column.
    let (status, body) = server
        .get(&format!(
            "/api/v1/events?q={}",
            urlencode("origin:seville and (payload.value >")
        ))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "q");
    assert_eq!(
        body["error"]["column"], 36,
        "the end of the 35-character filter: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("column 36"),
        "{body}"
    );
}

#[tokio::test]
async fn series_grouped_and_compared() {
    let (_dir, server) = seeded().await;
    let path =
        "/api/v1/series?field=payload.value&agg=avg&interval=1d&group_by=origin&top=2&other=true";
    let (status, body) = server.get(path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["interval"], "1d");
    let series = body["series"].as_array().unwrap();
    // Every city has 48 events, so the tie is broken by name: london, new-york, then other.
    let groups: Vec<&str> = series
        .iter()
        .map(|s| s["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["london", "new-york", "other"]);
    assert_eq!(series[2]["other"], true);
    for s in series {
        let members: Vec<Value> = weather()
            .into_iter()
            .filter(|d| match s["group"].as_str().unwrap() {
                "other" => d["origin"] == "seville" || d["origin"] == "sydney",
                city => d["origin"] == city,
            })
            .collect();
        for (day, point) in s["points"].as_array().unwrap().iter().enumerate() {
            let values: Vec<f64> = members
                .iter()
                .filter(|d| d["timestamp"].as_str().unwrap()[8..10] == format!("{:02}", day + 1))
                .map(temp)
                .collect();
            let avg = values.iter().sum::<f64>() / values.len() as f64;
            assert!(
                (point[1].as_f64().unwrap() - avg).abs() < 1e-9,
                "{} day {day}: {point} vs {avg}",
                s["group"]
            );
        }
    }

    // Two filters compared in one request, p95 per day, and empty buckets as null.
    let path = format!(
        "/api/v1/series?q={}&q={}&field=payload.value&agg=p95&interval=12h&from=2018-05-31T00:00:00Z&to=2018-06-03T00:00:00Z",
        urlencode("origin:seville"),
        urlencode("origin:sydney")
    );
    let (status, body) = server.get(&path).await;
    assert_eq!(status, 200, "{body}");
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["q"], "origin:seville");
    let points = series[1]["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    assert!(
        points[0][1].is_null() && points[1][1].is_null(),
        "May 31 has no events: {points:?}"
    );
    // Sydney, June 1, 00:30 to 11:30: temperatures 20, 20.5, …, 25.5; p95 by interpolation.
    let mut values: Vec<f64> = (0..12).map(|h| 20.0 + h as f64 / 2.0).collect();
    values.sort_by(f64::total_cmp);
    let rank: f64 = 0.95 * 11.0;
    let p95 = values[rank as usize]
        + (values[rank as usize + 1] - values[rank as usize]) * (rank - rank.floor());
    assert!(
        (points[2][1].as_f64().unwrap() - p95).abs() < 1e-9,
        "{points:?}"
    );

    // Errors name the parameter.
    let (status, body) = server.get("/api/v1/series?agg=median").await;
    assert_eq!(
        (status, body["error"]["parameter"].as_str()),
        (400, Some("agg"))
    );
    let (status, body) = server
        .get("/api/v1/series?interval=1s&from=2000-01-01T00:00:00Z&to=2018-06-03T00:00:00Z")
        .await;
    assert_eq!(status, 400, "too many buckets: {body}");
}

#[tokio::test]
async fn the_command_line_prints_tables_and_csv() {
    let (dir, server) = seeded().await;
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let base = server.base.clone();
    let cli = move |args: &[&str]| {
        let mut full: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        full.extend([
            "--server".into(),
            base.clone(),
            "--data-dir".into(),
            data_dir.clone(),
        ]);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run_cli(&refs, &[])
    };
    let (code, out, err) = tokio::task::spawn_blocking({
        let cli = cli.clone();
        move || {
            cli(&[
                "query",
                "events",
                "-q",
                "origin:london",
                "--limit",
                "2",
                "--total",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ts "), "{out}");
    assert!(
        out.contains("station-london") && out.contains("2 of 48 matching events"),
        "{out}"
    );

    let (code, out, err) = tokio::task::spawn_blocking({
        let cli = cli.clone();
        move || {
            cli(&[
                "query",
                "series",
                "--field",
                "payload.value",
                "--agg",
                "max",
                "--interval",
                "1d",
                "--group-by",
                "origin",
                "--format",
                "csv",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ts,london,new-york,seville,sydney", "{out}");
    assert_eq!(
        lines[1], "2018-06-01T00:00:00.000Z,26.5,36.5,21.5,31.5",
        "{out}"
    );
    assert_eq!(lines.len(), 3);

    let (code, _, err) = tokio::task::spawn_blocking({
        let cli = cli.clone();
        move || cli(&["query", "events", "-q", "origin:(london"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("column 8"), "{err}");
}

#[tokio::test]
async fn retention_deletes_expired_events_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingot.toml");
    std::fs::write(&config, "[store]\nretention_check = \"1s\"\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]).await;
    let token = server.add_device("probe-7").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body: String = [
        (now - 3 * 86_400_000, "old"),
        (now - 2 * 3_600_000, "recent"),
        (now, "new"),
    ]
    .iter()
    .map(|(ts, kind)| format!("{{\"ts\":{ts},\"kind\":\"{kind}\",\"value\":1}}\n"))
    .collect();
    assert_eq!(
        server
            .post(Some(&token), "application/x-ndjson", body)
            .await
            .0,
        201
    );
    server.wait_for_events("", 3).await;

    let data_dir = data.to_str().unwrap().to_owned();
    let base = server.base.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_cli(
            &[
                "tenant",
                "retention",
                "default",
                "1d",
                "--server",
                &base,
                "--data-dir",
                &data_dir,
            ],
            &[],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "tenant default keeps events for 1d");
    let (_, tenants) = server.get("/api/v1/tenants").await;
    assert_eq!(tenants["tenants"][0]["retention"], "1d");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kinds: Vec<String> = server
            .all_events("")
            .await
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        if kinds == ["new", "recent"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not delete the old event: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let response = server
        .http
        .patch(server.url("/api/v1/tenants/default"))
        .bearer_auth(server.admin_key())
        .json(&json!({"retention": "5m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "less than an hour is refused");
    let response = server
        .http
        .patch(server.url("/api/v1/tenants/nope"))
        .bearer_auth(server.admin_key())
        .json(&json!({"retention": "5d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
