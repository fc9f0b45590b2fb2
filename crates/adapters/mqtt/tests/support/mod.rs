//! Shared setup of the MQTT integration tests: a server with the real parts (file log,
//! SQLite store, authenticator, ingest, store writer) on 127.0.0.1:0, credentials, the
//! external clients (`mosquitto_pub`/`mosquitto_sub`, Eclipse Paho through
//! `paho_client.py`), and a minimal raw client built on our codec for the protocol-level
//! cases no stock client can produce.
//!
//! External clients are required in CI (`CI=true`: a missing one fails the test);
//! locally a test whose client is missing prints a note and passes without running.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use ingot_adapter_mqtt::{MqttConfig, MqttDeps, MqttMetrics, TlsListener};
use ingot_auth::{Authenticator, SecretKind, generate_key_id, generate_secret, hash_secret};
use ingot_codec_mqtt::{Packet, Version};
use ingot_core::{Event, Limits, TenantId};
use ingot_ingest::{EVENTS_TOPIC, Ingest, IngestMetrics};
use ingot_log::file::{FileLog, FileLogConfig};
use ingot_log::{Log, LogMetrics};
use ingot_store::{EventStore, ListQuery, Registry, Role};
use ingot_store_sqlite::SqliteStore;
use ingot_writer::{StoreWriter, WriterMetrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How a test server is set up.
#[derive(Debug, Default)]
pub struct Options {
    /// Let clients without credentials in (the `--allow-anonymous` mode).
    pub anonymous: bool,
    /// `[mqtt]`; the default if `None`.
    pub config: Option<MqttConfig>,
    /// A TLS listener with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running MQTT endpoint over the real log and store.
pub struct Server {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub port: u16,
    pub store: Arc<SqliteStore>,
    pub default_tenant: TenantId,
    pub metrics: MqttMetrics,
    pub ingest_metrics: IngestMetrics,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    writer_stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ingot_adapter_mqtt::MqttError>>,
    writer: tokio::task::JoinHandle<Result<(), ingot_writer::WriterError>>,
    log: Arc<dyn Log>,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_config = FileLogConfig {
            dir: dir.path().join("log"),
            ..FileLogConfig::default()
        };
        let log: Arc<dyn Log> =
            Arc::new(FileLog::open(log_config, LogMetrics::default()).expect("open the log"));
        let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).expect("store"));
        let boot = ingot_auth::bootstrap(&*store, dir.path())
            .await
            .expect("bootstrap");
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            boot.default_tenant,
            options.anonymous,
        ));
        let ingest_metrics = IngestMetrics::default();
        let ingest = Arc::new(Ingest::new(
            log.clone(),
            Limits::default(),
            ingest_metrics.clone(),
        ));
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(
            StoreWriter::new(
                log.clone(),
                store.clone(),
                EVENTS_TOPIC,
                1000,
                WriterMetrics::default(),
            )
            .run(writer_stop.clone()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tls, tls_addr) = match options.tls {
            Some((cert, key)) => {
                let config = ingot_adapter_mqtt::tls_server_config(&cert, &key).expect("tls");
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
                let tls_addr = listener.local_addr().expect("tls addr");
                (Some(TlsListener { listener, config }), Some(tls_addr))
            }
            None => (None, None),
        };
        let metrics = MqttMetrics::default();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ingot_adapter_mqtt::serve(
            Some(listener),
            tls,
            options.config.unwrap_or_default(),
            MqttDeps { ingest, auth },
            metrics.clone(),
            shutdown.clone(),
        ));
        Server {
            addr,
            tls_addr,
            port: addr.port(),
            store,
            default_tenant: boot.default_tenant,
            metrics,
            ingest_metrics,
            dir,
            shutdown,
            writer_stop,
            task,
            writer,
            log,
        }
    }

    /// Registers a device in the default tenant; returns its token.
    pub async fn device(&self, name: &str) -> String {
        self.device_in(self.default_tenant, name).await
    }

    pub async fn device_in(&self, tenant: TenantId, name: &str) -> String {
        let token = generate_secret(SecretKind::DeviceToken);
        self.store
            .create_device(tenant, name, &hash_secret(&token))
            .await
            .expect("create device");
        token
    }

    /// An API key with `role` in `tenant`.
    pub async fn key(&self, tenant: TenantId, role: Role) -> String {
        let key = generate_secret(SecretKind::ApiKey);
        self.store
            .create_api_key(tenant, &generate_key_id(), role, &hash_secret(&key), None)
            .await
            .expect("create key");
        key
    }

    pub async fn tenant(&self, name: &str) -> TenantId {
        self.store.create_tenant(name).await.expect("tenant").id
    }

    /// The tenant's stored events, newest first.
    pub async fn events(&self, tenant: TenantId) -> Vec<Event> {
        let query = ListQuery {
            limit: 1000,
            ..ListQuery::default()
        };
        self.store
            .list_events(tenant, &query)
            .await
            .expect("list events")
            .events
    }

    /// Waits (bounded) until the store holds at least `n` events of `tenant`.
    pub async fn wait_events(&self, tenant: TenantId, n: usize) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events(tenant).await;
            if events.len() >= n || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the server has received `n` SUBSCRIBE packets in total.
    pub async fn wait_subscribes(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.metrics.packets_received("subscribe") < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            self.metrics.packets_received("subscribe") >= n,
            "the subscribers never subscribed"
        );
    }

    /// Stops the endpoint (as `ingot serve` does on SIGTERM) and checks it returned.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let served = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown");
        served.expect("serve task").expect("serve result");
        self.writer_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.writer).await;
        let _ = self.log.close().await;
    }

    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    pub async fn join(self) -> Result<(), ingot_adapter_mqtt::MqttError> {
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
        self.writer_stop.cancel();
        let _ = self.writer.await;
        result
    }
}

/// Whether the external tool `name` can run: in CI a missing tool fails the test, locally
/// the test is skipped with a note.
pub fn have(name: &str) -> bool {
    let found = match name {
        "paho" => Command::new("python3")
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        tool => Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    };
    if !found {
        let install = match name {
            "paho" => "pip install paho-mqtt",
            "openssl" => "apt-get install openssl",
            _ => "apt-get install mosquitto-clients",
        };
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{name} is required in CI but missing: {install}");
        }
        eprintln!("note: skipping, {name} is not installed ({install})");
    }
    found
}

/// Runs a command to completion (bounded), off the async runtime.
pub async fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null());
    let text = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait().expect("wait") {
                Some(_) => break,
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        child.wait_with_output().expect("output")
    })
    .await
    .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `mosquitto_pub` / `mosquitto_sub` against the server, with the protocol `version`.
pub fn mosquitto(tool: &str, port: u16, version: Version) -> Command {
    let mut cmd = Command::new(tool);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V"]);
    cmd.arg(match version {
        Version::V311 => "mqttv311",
        Version::V5 => "mqttv5",
    });
    cmd
}

/// A background process (e.g. `mosquitto_sub`), killed by PID when dropped.
pub struct Background {
    child: Option<std::process::Child>,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Background { child: Some(child) }
    }

    /// Waits (bounded) for the process to exit and returns its output.
    pub async fn output(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("child");
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + limit;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            child.wait_with_output().expect("output")
        })
        .await
        .expect("join")
    }

    /// Kills the process at once (SIGKILL): its connection drops without DISCONNECT.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of the Paho client script.
pub fn paho_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/paho_client.py")
}

/// Runs the Paho client with `spec` (see `paho_client.py`) and returns its JSON report.
pub async fn paho(spec: serde_json::Value) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(paho_script()).arg(spec.to_string());
    let out = run(cmd, Duration::from_secs(20)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "paho client printed no report ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Starts the Paho client in the background; its report comes with [`Background::output`].
pub fn paho_background(spec: serde_json::Value) -> Background {
    let mut cmd = Command::new("python3");
    cmd.arg(paho_script()).arg(spec.to_string());
    Background::spawn(cmd)
}

pub fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A self-signed certificate for 127.0.0.1 / localhost, made with the `openssl` command.
pub fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run openssl")?;
    if !status.success() {
        bail!("openssl req failed: {status}");
    }
    Ok((cert, key))
}

/// A minimal client on our own codec, for malformed input and protocol corner cases.
pub struct Raw {
    pub stream: TcpStream,
    pub version: Version,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, version: Version) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw {
            stream,
            version,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.encode(self.version, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet, or `None` if the server closed the connection (bounded wait).
    pub async fn recv(&mut self) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(p) = ingot_codec_mqtt::decode(&mut self.buf, self.version, 1 << 24)
                .expect("server sent a valid packet")
            {
                return Some(p);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the server answered in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
