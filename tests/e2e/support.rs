//! Starting and stopping the real `ingot` binary for black-box tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ingot");

/// A running `ingot serve` on a free loopback port.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// `coap://127.0.0.1:<port>`.
    pub coap: String,
    /// The MQTT broker's `127.0.0.1:<port>`.
    pub mqtt: std::net::SocketAddr,
    /// The MQTT broker's TLS listener, when it has one.
    pub mqtt_tls: Option<std::net::SocketAddr>,
    pub data_dir: PathBuf,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `ingot serve` on `data_dir` with `extra` flags and waits until it is ready.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--coap-addr",
                "127.0.0.1:0",
                "--mqtt-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env_remove("INGOT_CONFIG")
            .env("INGOT_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn ingot");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take().unwrap(), stdout.clone());
        pump(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            // A replica without the query role prints `HTTP` (then what it serves).
            if let Some(base) = stdout.lock().unwrap().lines().find_map(|l| {
                let l = l.trim();
                l.strip_prefix("UI and API")
                    .or_else(|| l.strip_prefix("HTTP "))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(|url| url.trim_end_matches('/').to_owned())
            }) {
                break base;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "ingot exited early with {status}\nstdout:\n{}\nstderr:\n{}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ingot did not become ready; stderr:\n{}",
                stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // Only a replica with the ingest role (the default) has device listeners; the
        // others leave `coap` empty and `mqtt` unspecified.
        let ingest = extra
            .windows(2)
            .find(|w| w[0] == "--roles")
            .is_none_or(|w| w[1].split(',').any(|r| r == "ingest" || r == "all"));
        let coap = stdout.lock().unwrap().lines().find_map(|l| {
            l.trim()
                .strip_prefix("CoAP")
                .map(|rest| rest.trim().trim_end_matches("/events").to_owned())
        });
        let coap = match coap {
            Some(coap) => coap,
            None if !ingest => String::new(),
            None => panic!("the banner names the CoAP endpoint"),
        };
        let banner_addr = |prefix: &str, scheme: &str| {
            stdout.lock().unwrap().lines().find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)
                    .map(|rest| rest.trim().trim_start_matches(scheme).to_owned())
                    .map(|addr| addr.parse().expect("the MQTT address is host:port"))
            })
        };
        let mqtt_tls = banner_addr("MQTT (TLS)", "mqtts://");
        // Without plain listeners (`--plain=false`) only the TLS one is named.
        let plain = !extra.contains(&"--plain=false");
        let mqtt = match banner_addr("MQTT  ", "mqtt://") {
            Some(mqtt) => mqtt,
            None if !ingest || !plain => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            None => panic!("the banner names the MQTT broker"),
        };
        let server = Server {
            child: Some(child),
            base,
            coap,
            mqtt,
            mqtt_tls,
            data_dir: data_dir.to_owned(),
            stdout,
            stderr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        // The banner is printed once the server is ready; the test client speaks plain
        // HTTP only (HTTPS tests use curl).
        if server.base.starts_with("http://") {
            let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), 200);
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Registers a device with the admin key and returns its token.
    pub async fn add_device(&self, name: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/v1/devices"))
            .bearer_auth(self.admin_key())
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["device"], name);
        body["token"].as_str().unwrap().to_owned()
    }

    /// Posts a body with a bearer token and content type; returns status and JSON body.
    pub async fn post(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/api/v1/events"))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs a path with the admin key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(self.admin_key())
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

    /// Every event of the admin's tenant (following cursors), newest first.
    pub async fn all_events(&self, query: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor = String::new();
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let path = format!("/api/v1/events?limit=10000{sep}{query}{cursor}");
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "{page}");
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return events,
            }
        }
    }

    /// Waits until the listing holds at least `n` events matching `query`.
    pub async fn wait_for_events(&self, query: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.all_events(query).await;
            if events.len() >= n {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events stored",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ingot did not exit within {timeout:?}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub async fn stop(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pump(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut buf = into.lock().unwrap();
            buf.push_str(&line);
            buf.push('\n');
        }
    });
}

/// Runs the `ingot` binary with arguments (a CLI command) and returns (code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run ingot");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The first of `names` found on PATH. In CI (`CI=true`) a missing tool fails the test;
/// elsewhere the caller skips with a note.
pub fn tool(names: &[&str]) -> Option<String> {
    let found = names.iter().find(|name| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match found {
        Some(name) => Some((*name).to_owned()),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{} is required in CI (see .ci/run)", names.join(" or "))
        }
        None => {
            eprintln!("skipping: none of {names:?} is installed");
            None
        }
    }
}
