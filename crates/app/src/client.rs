//! The admin commands: thin wrappers over the HTTP API (`ingot device add`, ...).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};

/// Where the server is and which key to use.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(
        long,
        env = "INGOT_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,

    /// An API key [default: the contents of <data-dir>/admin.key].
    #[arg(long, env = "INGOT_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,

    /// Where to find admin.key when no --api-key is given.
    #[arg(
        long,
        env = "INGOT_DATA_DIR",
        default_value = "ingot-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Print the server's JSON answer as is.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    fn key(&self) -> anyhow::Result<String> {
        if let Some(key) = &self.api_key {
            return Ok(key.clone());
        }
        let path = self.data_dir.join(ingot_auth::ADMIN_KEY_FILE);
        let key = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no --api-key given and cannot read {} (is this the server's data directory?)",
                path.display()
            )
        })?;
        Ok(key.trim().to_owned())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    /// Sends one request and returns the JSON answer, or the server's error message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let client = reqwest::Client::new();
        let mut request = client
            .request(method.clone(), self.url(path))
            .bearer_auth(self.key()?);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.server))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("{method} {path} failed ({status}): {message}");
        }
        Ok(value)
    }

    fn print(&self, value: &Value, lines: &[(&str, &str)], note: Option<&str>) {
        if self.json {
            println!("{value}");
            return;
        }
        for (label, key) in lines {
            println!("{label:<8} {}", value[*key].as_str().unwrap_or_default());
        }
        if let Some(note) = note {
            println!("\n{note}");
        }
    }
}

/// Parses `--label key=value`.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// `ingot device add NAME [--label k=v]...`.
pub async fn device_add(
    args: &ClientArgs,
    name: &str,
    labels: &[(String, String)],
) -> anyhow::Result<()> {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/devices",
            Some(json!({ "name": name, "labels": labels })),
        )
        .await?;
    args.print(
        &value,
        &[("device", "device"), ("token", "token")],
        Some("The token is shown only now: store it on the device."),
    );
    Ok(())
}

/// `ingot device rm NAME`.
pub async fn device_rm(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    args.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/devices/{name}"),
        None,
    )
    .await?;
    if !args.json {
        println!("device {name} removed; its token no longer works");
    }
    Ok(())
}

/// `ingot key add --role ROLE [--expires WHEN]`.
pub async fn key_add(args: &ClientArgs, role: &str, expires: Option<&str>) -> anyhow::Result<()> {
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(json!({ "role": role, "expires": expires })),
        )
        .await?;
    args.print(
        &value,
        &[
            ("id", "id"),
            ("role", "role"),
            ("expires", "expires"),
            ("key", "key"),
        ],
        Some("The key is shown only now."),
    );
    Ok(())
}

/// `ingot key rm ID`.
pub async fn key_rm(args: &ClientArgs, id: &str) -> anyhow::Result<()> {
    args.call(reqwest::Method::DELETE, &format!("/api/v1/keys/{id}"), None)
        .await?;
    if !args.json {
        println!("key {id} revoked");
    }
    Ok(())
}

/// `ingot tenant add NAME`.
pub async fn tenant_add(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(json!({ "name": name })),
        )
        .await?;
    args.print(
        &value,
        &[("tenant", "tenant"), ("key id", "id"), ("key", "key")],
        Some("This is the tenant's first admin key, shown only now."),
    );
    Ok(())
}

/// `ingot tenant retention NAME (DURATION | default)`.
pub async fn tenant_retention(
    args: &ClientArgs,
    name: &str,
    retention: &str,
) -> anyhow::Result<()> {
    let value = match retention {
        "default" | "none" => Value::Null,
        text => Value::String(text.to_owned()),
    };
    let answer = args
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/tenants/{name}"),
            Some(json!({ "retention": value })),
        )
        .await?;
    if args.json {
        println!("{answer}");
    } else {
        let kept = answer["retention"]
            .as_str()
            .unwrap_or("the server's default");
        println!("tenant {name} keeps events for {kept}");
    }
    Ok(())
}

/// How `ingot query` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// The server's JSON answer.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// `ingot query events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Filter, e.g. `origin:probe1 and payload.value > 20`.
    #[arg(short, long)]
    pub q: Option<String>,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Only this sensor.
    #[arg(long)]
    pub sensor: Option<String>,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// From this time (RFC 3339 or Unix seconds/milliseconds), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time, exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// How many events, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Also count every match (printed after the table).
    #[arg(long)]
    pub total: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `ingot query series`.
#[derive(Debug, Clone, Args)]
pub struct SeriesArgs {
    /// Filter; repeat to compare several series.
    #[arg(short, long)]
    pub q: Vec<String>,
    /// Numeric field: `value` or a path in data such as `payload.value`.
    #[arg(long, default_value = "value")]
    pub field: String,
    /// count, avg, min, max, sum, p50, p90, p95 or p99.
    #[arg(long, default_value = "avg")]
    pub agg: String,
    /// Bucket width (`1h`, `1d`) or `auto`.
    #[arg(long, default_value = "auto")]
    pub interval: String,
    /// One series per value of this field (`origin`, `device`, ...).
    #[arg(long)]
    pub group_by: Option<String>,
    /// With --group-by: how many groups (the ones with the most events).
    #[arg(long)]
    pub top: Option<usize>,
    /// With --group-by: add a series `other` for the remaining events.
    #[arg(long)]
    pub other: bool,
    /// From this time, inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time, exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

impl ClientArgs {
    async fn get(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
        let query: String = params
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let path = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        self.call(reqwest::Method::GET, &path, None).await
    }
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_table(header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row);
    }
}

fn print_rows(format: Format, header: &[String], rows: &[Vec<String>]) {
    match format {
        Format::Csv => {
            println!(
                "{}",
                header
                    .iter()
                    .map(|h| csv_field(h))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for row in rows {
                println!(
                    "{}",
                    row.iter()
                        .map(|c| csv_field(c))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        _ => print_table(header, rows),
    }
}

/// `ingot query events`.
pub async fn query_events(args: &ClientArgs, e: &EventsArgs) -> anyhow::Result<()> {
    let mut params: Vec<(&str, String)> = vec![("limit", e.limit.to_string())];
    for (name, value) in [
        ("q", &e.q),
        ("device", &e.device),
        ("sensor", &e.sensor),
        ("kind", &e.kind),
        ("from", &e.from),
        ("to", &e.to),
    ] {
        if let Some(value) = value {
            params.push((name, value.clone()));
        }
    }
    if e.total {
        params.push(("total", "true".into()));
    }
    let answer = args.get("/api/v1/events", &params).await?;
    if e.format == Format::Json || args.json {
        println!("{answer}");
        return Ok(());
    }
    let header: Vec<String> = ["ts", "device", "sensor", "kind", "value", "data", "id"]
        .map(String::from)
        .into();
    let events = answer["events"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|ev| {
            let mut data = cell(&ev["data"]);
            if e.format == Format::Table && data.chars().count() > 60 {
                data = data.chars().take(59).collect::<String>() + "…";
            }
            vec![
                cell(&ev["ts"]),
                cell(&ev["device"]),
                cell(&ev["sensor"]),
                cell(&ev["kind"]),
                cell(&ev["value"]),
                data,
                cell(&ev["id"]),
            ]
        })
        .collect();
    print_rows(e.format, &header, &rows);
    if e.format == Format::Table {
        if let Some(total) = answer["total"].as_u64() {
            println!("\n{} of {total} matching events", rows.len());
        } else if answer["next"].is_string() {
            println!("\n(more events match; raise --limit or narrow the filter)");
        }
    }
    Ok(())
}

/// `ingot query series`.
pub async fn query_series(args: &ClientArgs, s: &SeriesArgs) -> anyhow::Result<()> {
    let mut params: Vec<(&str, String)> = s.q.iter().map(|q| ("q", q.clone())).collect();
    params.extend([
        ("field", s.field.clone()),
        ("agg", s.agg.clone()),
        ("interval", s.interval.clone()),
    ]);
    for (name, value) in [("group_by", &s.group_by), ("from", &s.from), ("to", &s.to)] {
        if let Some(value) = value {
            params.push((name, value.clone()));
        }
    }
    if let Some(top) = s.top {
        params.push(("top", top.to_string()));
    }
    if s.other {
        params.push(("other", "true".into()));
    }
    let answer = args.get("/api/v1/series", &params).await?;
    if s.format == Format::Json || args.json {
        println!("{answer}");
        return Ok(());
    }
    let series = answer["series"].as_array().cloned().unwrap_or_default();
    let mut header = vec!["ts".to_owned()];
    for one in &series {
        let mut label = match (&one["q"], &one["group"]) {
            (Value::String(q), Value::String(g)) => format!("{q} / {g}"),
            (Value::String(q), _) => q.clone(),
            (_, Value::String(g)) => g.clone(),
            _ => format!("{}({})", s.agg, s.field),
        };
        if label.is_empty() {
            label = format!("{}({})", s.agg, s.field);
        }
        header.push(label);
    }
    let buckets = series
        .first()
        .and_then(|one| one["points"].as_array())
        .map_or(0, Vec::len);
    let rows: Vec<Vec<String>> = (0..buckets)
        .map(|i| {
            let mut row = vec![cell(&series[0]["points"][i][0])];
            row.extend(series.iter().map(|one| cell(&one["points"][i][1])));
            row
        })
        .collect();
    print_rows(s.format, &header, &rows);
    if s.format == Format::Table {
        println!("\ninterval {}", cell(&answer["interval"]));
    }
    Ok(())
}

/// `ingot device list`.
pub async fn device_list(args: &ClientArgs) -> anyhow::Result<()> {
    let answer = args.get("/api/v1/devices", &[]).await?;
    if args.json {
        println!("{answer}");
        return Ok(());
    }
    let header: Vec<String> = ["device", "enabled", "last seen", "events/min", "labels"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = answer["devices"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let labels = d["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", cell(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                cell(&d["device"]),
                cell(&d["enabled"]),
                cell(&d["last_seen"]),
                cell(&d["events_per_minute"]),
                labels,
            ]
        })
        .collect();
    print_table(&header, &rows);
    Ok(())
}

/// `ingot device show NAME`.
pub async fn device_show(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let answer = args
        .get(&format!("/api/v1/devices/{}", url_encode(name)), &[])
        .await?;
    if args.json {
        println!("{answer}");
        return Ok(());
    }
    if let Some(fields) = answer.as_object() {
        for (key, value) in fields {
            println!("{key:<28} {}", cell(value));
        }
    }
    Ok(())
}

/// `ingot device disable|enable NAME`.
pub async fn device_set_enabled(
    args: &ClientArgs,
    name: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/devices/{}", url_encode(name));
    let answer = args
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "enabled": enabled })),
        )
        .await?;
    if args.json {
        println!("{answer}");
    } else if enabled {
        println!("device {name} enabled");
    } else {
        println!("device {name} disabled: its token is refused until it is enabled again");
    }
    Ok(())
}

/// `ingot device rotate NAME [--grace 1h]`.
pub async fn device_rotate(args: &ClientArgs, name: &str, grace: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/devices/{}/rotate", url_encode(name));
    let answer = args
        .call(
            reqwest::Method::POST,
            &path,
            Some(json!({ "grace": grace })),
        )
        .await?;
    args.print(
        &answer,
        &[
            ("device", "device"),
            ("token", "token"),
            ("old until", "previous_token_valid_until"),
        ],
        Some("The new token is shown only now. The old one keeps working until the time above."),
    );
    Ok(())
}

/// `ingot key list`.
pub async fn key_list(args: &ClientArgs) -> anyhow::Result<()> {
    let answer = args.get("/api/v1/keys", &[]).await?;
    if args.json {
        println!("{answer}");
        return Ok(());
    }
    let header: Vec<String> = ["id", "role", "created", "expires"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = answer["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let mut expires = cell(&k["expires"]);
            if k["expired"] == Value::Bool(true) {
                expires.push_str(" (expired)");
            }
            vec![
                cell(&k["id"]),
                cell(&k["role"]),
                cell(&k["created"]),
                expires,
            ]
        })
        .collect();
    print_table(&header, &rows);
    Ok(())
}

/// `ingot tenant list`.
pub async fn tenant_list(args: &ClientArgs) -> anyhow::Result<()> {
    let answer = args.get("/api/v1/tenants", &[]).await?;
    if args.json {
        println!("{answer}");
        return Ok(());
    }
    let header: Vec<String> = ["tenant", "created", "retention", "status"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = answer["tenants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let status = if t["deleting"] == Value::Bool(true) {
                "deleting"
            } else if t["disabled"] == Value::Bool(true) {
                "disabled"
            } else {
                "active"
            };
            let retention = t["retention"].as_str().unwrap_or("default").to_owned();
            vec![
                cell(&t["name"]),
                cell(&t["created"]),
                retention,
                status.to_owned(),
            ]
        })
        .collect();
    print_table(&header, &rows);
    Ok(())
}

/// `ingot tenant disable|enable NAME`.
pub async fn tenant_set_disabled(
    args: &ClientArgs,
    name: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/tenants/{}", url_encode(name));
    let answer = args
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "disabled": disabled })),
        )
        .await?;
    if args.json {
        println!("{answer}");
    } else {
        println!(
            "tenant {name} {}",
            if disabled {
                "disabled: its credentials are refused"
            } else {
                "enabled"
            }
        );
    }
    Ok(())
}

/// `ingot tenant rm NAME`.
pub async fn tenant_rm(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/tenants/{}", url_encode(name));
    let answer = args.call(reqwest::Method::DELETE, &path, None).await?;
    if args.json {
        println!("{answer}");
    } else {
        println!(
            "tenant {name} is refused from now on; its data is being deleted in the background"
        );
    }
    Ok(())
}
