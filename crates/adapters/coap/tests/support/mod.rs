//! Shared setup of the CoAP integration tests: the endpoint in-process on 127.0.0.1:0
//! with the real log (fsync per batch), the real SQLite store, the store writer, the
//! authenticator, and helpers to run the external clients (libcoap's `coap-client`,
//! `aiocoap`) and to speak raw CoAP from a UDP socket.
//!
//! External clients: when one is missing the test prints a note and returns, except with
//! `CI=true`, where it fails (CI must install them: `apt-get install libcoap3-bin`,
//! `pip install aiocoap`).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use coap_lite::{CoapOption, MessageClass, MessageType, Packet};
use ingot_adapter_coap::{CoapConfig, CoapDeps, CoapError, CoapMetrics, serve};
use ingot_auth::{
    Authenticator, SecretKind, bootstrap, generate_key_id, generate_secret, hash_secret,
};
use ingot_core::{Event, Limits, TenantId};
use ingot_ingest::{EVENTS_TOPIC, Ingest, IngestMetrics};
use ingot_log::Log;
use ingot_log::file::{FileLog, FileLogConfig, LogMetrics};
use ingot_store::{EventStore, ListQuery, Registry, Role};
use ingot_store_sqlite::SqliteStore;
use ingot_writer::{StoreWriter, WriterMetrics};
use prometheus_client::registry::Registry as Metrics;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One running endpoint with everything behind it.
pub struct Server {
    pub addr: SocketAddr,
    pub tenant: TenantId,
    pub store: Arc<SqliteStore>,
    pub metrics: CoapMetrics,
    pub registry: Metrics,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), CoapError>>>,
    writer_stop: CancellationToken,
    writer: Option<JoinHandle<()>>,
    log: Arc<dyn Log>,
}

impl Server {
    /// The endpoint with the default configuration, no anonymous ingest.
    pub async fn start() -> Server {
        Server::start_with(CoapConfig::default(), false).await
    }

    pub async fn start_with(config: CoapConfig, allow_anonymous: bool) -> Server {
        Server::try_start(config, allow_anonymous)
            .await
            .expect("the CoAP test server starts")
    }

    async fn try_start(config: CoapConfig, allow_anonymous: bool) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let log_config = FileLogConfig {
            dir: dir.path().join("log"),
            ..FileLogConfig::default()
        };
        let log: Arc<dyn Log> = Arc::new(FileLog::open(log_config, LogMetrics::default())?);
        let store = Arc::new(SqliteStore::open(&dir.path().join("store.db"))?);
        let boot = bootstrap(&*store, dir.path()).await?;
        let ingest = Arc::new(Ingest::new(
            log.clone(),
            Limits::default(),
            IngestMetrics::default(),
        ));
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            boot.default_tenant,
            allow_anonymous,
        ));
        let writer_stop = CancellationToken::new();
        let writer = StoreWriter::new(
            log.clone(),
            store.clone(),
            EVENTS_TOPIC,
            1000,
            WriterMetrics::default(),
        );
        let writer_token = writer_stop.clone();
        let writer = tokio::spawn(async move {
            if let Err(error) = writer.run(writer_token).await {
                eprintln!("store writer failed: {error}");
            }
        });
        let mut registry = Metrics::default();
        let metrics = CoapMetrics::register(&mut registry);
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let shutdown = CancellationToken::new();
        let deps = CoapDeps {
            ingest,
            auth,
            store: store.clone(),
        };
        let task = tokio::spawn(serve(
            socket,
            config,
            deps,
            metrics.clone(),
            shutdown.clone(),
        ));
        Ok(Server {
            addr,
            tenant: boot.default_tenant,
            store,
            metrics,
            registry,
            dir,
            shutdown,
            task: Some(task),
            writer_stop,
            writer: Some(writer),
            log,
        })
    }

    /// `coap://127.0.0.1:<port>/<path_and_query>`.
    pub fn uri(&self, path_and_query: &str) -> String {
        format!("coap://{}/{path_and_query}", self.addr)
    }

    /// Registers a device; returns its token.
    pub async fn device(&self, name: &str) -> String {
        let token = generate_secret(SecretKind::DeviceToken);
        self.store
            .create_device(self.tenant, name, &hash_secret(&token))
            .await
            .expect("device created");
        token
    }

    /// A new API key with `role`.
    pub async fn key(&self, role: Role) -> String {
        let key = generate_secret(SecretKind::ApiKey);
        self.store
            .create_api_key(
                self.tenant,
                &generate_key_id(),
                role,
                &hash_secret(&key),
                None,
            )
            .await
            .expect("key created");
        key
    }

    /// Newest-first events of `device` in the store.
    pub async fn events(&self, device: &str) -> Vec<Event> {
        let query = ListQuery {
            device: Some(device.to_owned()),
            limit: 1000,
            ..ListQuery::default()
        };
        self.store
            .list_events(self.tenant, &query)
            .await
            .expect("listing works")
            .events
    }

    /// Waits (at most 10 s) until the store has at least `n` events of `device`.
    pub async fn wait_for_events(&self, device: &str, n: usize) -> Vec<Event> {
        for _ in 0..200 {
            let events = self.events(device).await;
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let events = self.events(device).await;
        panic!(
            "expected {n} events of {device} in the store, found {}",
            events.len()
        );
    }

    /// Waits until everything in the log is in the store, then returns the events.
    pub async fn settled_events(&self, device: &str) -> Vec<Event> {
        let ends = self
            .log
            .end_offsets(EVENTS_TOPIC)
            .await
            .expect("log offsets");
        let total: u64 = ends.iter().sum();
        for _ in 0..200 {
            let lag = self
                .store
                .checkpoint(ingot_writer::WRITER_GROUP, EVENTS_TOPIC)
                .await
                .expect("checkpoint");
            let stored: u64 = lag.iter().map(|(_, offset)| offset).sum();
            if stored >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.events(device).await
    }

    /// The metrics as Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encodes");
        text
    }

    /// Waits (at most 10 s) until `check` holds.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Server) -> bool) {
        for _ in 0..200 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// Starts the drain.
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Stops the endpoint and waits (at most 10 s) for it to return.
    pub async fn stop(mut self) -> Result<(), CoapError> {
        self.shutdown.cancel();
        let result = match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the endpoint stops within 10 s")
                .expect("the endpoint task did not panic"),
            None => Ok(()),
        };
        self.writer_stop.cancel();
        if let Some(writer) = self.writer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
        }
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.writer_stop.cancel();
    }
}

/// Whether this run is CI, where a missing external client fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Reports a missing external client: a failure in CI, a skip with a note elsewhere.
fn missing(what: &str, install: &str) {
    if in_ci() {
        panic!("{what} is required in CI but was not found; install it with `{install}`");
    }
    eprintln!("note: skipping: {what} not found (install it with `{install}`)");
}

/// libcoap's command-line client. Debian's `libcoap3-bin` installs it as
/// `coap-client-notls` (and `-gnutls`, `-openssl`); some systems also have `coap-client`.
pub fn coap_client() -> Option<PathBuf> {
    for name in [
        "coap-client",
        "coap-client-notls",
        "coap-client-openssl",
        "coap-client-gnutls",
    ] {
        if let Some(path) = find_in_path(name) {
            return Some(path);
        }
    }
    missing("libcoap's coap-client", "apt-get install libcoap3-bin");
    None
}

/// A Python 3 that can import aiocoap.
pub fn aiocoap_python() -> Option<PathBuf> {
    for name in ["python3", "python"] {
        if let Some(path) = find_in_path(name) {
            let ok = std::process::Command::new(&path)
                .args(["-c", "import aiocoap"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(path);
            }
        }
    }
    missing("Python 3 with aiocoap", "pip install aiocoap");
    None
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What an external client printed.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl Run {
    /// Response codes in a `coap-client -v 6` message log (`v:1 t:ACK c:2.01 ...`), in order.
    pub fn codes(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("v:1 t:")?;
                let code = rest.split(" c:").nth(1)?.split(' ').next()?;
                code.contains('.').then(|| code.to_owned())
            })
            .collect()
    }

    /// Message types of responses in a `coap-client -v 6` log (`ACK`, `NON`, `CON`).
    pub fn response_types(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("v:1 t:")?;
                let (kind, rest) = rest.split_once(' ')?;
                let code = rest.strip_prefix("c:")?.split(' ').next()?;
                code.contains('.').then(|| kind.to_owned())
            })
            .collect()
    }
}

/// Runs a program with a time limit, killing it (it is ours) when the limit passes.
pub async fn run(program: &Path, args: &[String], limit: Duration) -> anyhow::Result<Run> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output?,
        Err(_) => bail!(
            "{} {:?} did not finish within {limit:?}",
            program.display(),
            args
        ),
    };
    Ok(Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    })
}

/// The aiocoap helper script next to these tests.
pub fn aiocoap_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/aiocoap_client.py")
}

/// A raw CoAP request for tests that need exact datagrams.
pub fn request(
    kind: MessageType,
    code: u8,
    mid: u16,
    token: &[u8],
    path: &str,
    query: &[&str],
) -> Packet {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(kind);
    packet.header.code = MessageClass::from(code);
    packet.header.message_id = mid;
    packet.set_token(token.to_vec());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        packet.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
    }
    for arg in query {
        packet.add_option(CoapOption::UriQuery, arg.as_bytes().to_vec());
    }
    packet
}

/// A UDP client socket on loopback.
pub async fn client_socket(server: &Server) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(server.addr).await.expect("connect");
    socket
}

/// Receives one datagram within `limit`.
pub async fn recv(socket: &UdpSocket, limit: Duration) -> Option<Packet> {
    let mut buf = vec![0u8; 65_536];
    let len = tokio::time::timeout(limit, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Packet::from_bytes(&buf[..len]).ok()
}

/// The dotted code of a packet.
pub fn code(packet: &Packet) -> String {
    packet.header.code.to_string()
}

/// A JPEG-looking body of `len` bytes (SOI marker, deterministic filler, EOI marker).
pub fn fake_jpeg(len: usize) -> Vec<u8> {
    let mut body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    if len >= 4 {
        body[..2].copy_from_slice(&[0xFF, 0xD8]);
        body[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
    }
    body
}

/// POSTs one JSON body as a CON request from a fresh socket; returns the response.
pub async fn post_json(server: &Server, token: &str, body: &str) -> Packet {
    let socket = client_socket(server).await;
    let query = format!("token={token}");
    let mut packet = request(
        MessageType::Confirmable,
        0x02,
        0x5151,
        b"pj",
        "events",
        &[&query],
    );
    packet.add_option(CoapOption::ContentFormat, vec![50]);
    packet.payload = body.as_bytes().to_vec();
    socket
        .send(&packet.to_bytes_with_limit(65_000).expect("encodes"))
        .await
        .expect("send");
    recv(&socket, Duration::from_secs(10))
        .await
        .expect("a response")
}

/// The value of one sample in Prometheus text (`name` with its labels, as printed).
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
}
