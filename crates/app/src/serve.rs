//! `ingot serve`: opens the log and the store, wires ingest, the store writer and the API,
//! and runs until a stop signal, then drains in order.
//!
//! Start-up order: lock the data directory, recover the log, open the store, bootstrap the
//! default tenant and admin key, bind the listeners, start the store writer, mark ready.
//!
//! Drain order on SIGTERM / SIGINT (bounded by `shutdown_grace`):
//! 1. `/readyz` answers 503 so load balancers stop sending;
//! 2. listeners stop accepting; in-flight requests finish and get their acknowledgements
//!    (every acknowledged event is already durable in the log);
//! 3. the store writer catches up with the end of the log and commits;
//! 4. the log syncs and closes.
//!
//! Past the deadline the process names what is still running and exits non-zero; whatever
//! was acknowledged is in the log and is stored on the next start.
//!
//! # Scale-out: backends and roles
//!
//! With `log_url = "nats://..."` the log is NATS JetStream ([`NatsLog`]); with
//! `store_url = "postgres://..."` the store is PostgreSQL ([`PostgresStore`]). The data
//! directory then only holds `admin.key` (of the replica that created tenant `default`),
//! and is locked only while it holds an embedded log or store.
//!
//! `roles` decides what starts; a role that is off starts nothing of its own:
//!
//! | role | starts |
//! |---|---|
//! | `ingest` | the log connection, ingest, `POST /api/v1/events`, the CoAP and MQTT listeners |
//! | `store-writer` | the log connection, the store writer, store retention |
//! | `query` | the query and admin routes and the UI |
//! | every replica | the store (credentials live there), the HTTP listener with `/healthz`, `/readyz`, `/metrics` |
//!
//! The drain is the same on every replica, for the parts it runs: an ingest replica stops
//! accepting and finishes its in-flight acknowledgements (each one is a JetStream
//! acknowledgement), a store writer on a shared engine stores and commits the batch in
//! hand and hands back anything else it was given (see `ingot-writer`), then the log
//! connection flushes and closes and the store's connections close. Whatever was
//! acknowledged is in JetStream, and another replica stores it.
//!
//! Replicas starting together on an empty PostgreSQL race to create tenant `default`: the
//! one that loses sees the winner's tenant on a second look and continues (the winner
//! prints the admin key, once).

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use bytes::Bytes;
use ingot_adapter_coap::{CoapDeps, CoapMetrics};
use ingot_adapter_mqtt::{MqttDeps, MqttMetrics, TlsListener};
use ingot_api::{ApiDeps, HttpMetrics, Routes};
use ingot_auth::{Authenticator, Bootstrap, bootstrap};
use ingot_ingest::{EVENTS_TOPIC, Ingest, IngestMetrics};
use ingot_log::file::{FileLog, FileLogConfig, LogMetrics, Retention};
use ingot_log::{AppendAck, Consumer, Log, LogError};
use ingot_log_nats::{NatsLog, NatsUrl};
use ingot_store::Store;
use ingot_store_postgres::PostgresStore;
use ingot_store_sqlite::SqliteStore;
use ingot_writer::retention::{self, RetentionConfig, RetentionMetrics};
use ingot_writer::{StoreWriter, WriterMetrics};
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::config::{LogBackend, Roles, ServeConfig, StoreBackend, redact_url};

/// How often devices' last-seen times are written to the store.
const LAST_SEEN_EVERY: Duration = Duration::from_secs(5);

/// A started server: its bound addresses and the handles to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP listener is bound (useful with port 0).
    pub http_addr: SocketAddr,
    /// Where the CoAP endpoint is bound (with the `ingest` role).
    pub coap_addr: Option<SocketAddr>,
    /// Where the MQTT broker is bound (with the `ingest` role).
    pub mqtt_addr: Option<SocketAddr>,
    /// Where the MQTT broker takes TLS connections, if configured.
    pub mqtt_tls_addr: Option<SocketAddr>,
    /// The admin key, on the start that created it.
    pub admin_key: Option<String>,
    stop: CancellationToken,
    drained: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts draining (as a stop signal does).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the server has drained and stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.drained.await.context("the server task panicked")?
    }
}

/// The CoAP and MQTT listeners of the `ingest` role.
struct DeviceListeners {
    coap: UdpSocket,
    mqtt: Option<TcpListener>,
    mqtt_tls: Option<TlsListener>,
}

/// Starts every part of the server; returns once it is ready.
pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    let started = Instant::now();
    let roles = config.roles;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let uses_log = roles.ingest || roles.store_writer;
    let embedded = (uses_log && config.log_backend == LogBackend::Embedded)
        || config.store_backend == StoreBackend::Embedded;
    let lock = if embedded {
        Some(lock_data_dir(&config.data_dir)?)
    } else {
        None
    };

    let mut registry = Registry::default();
    let log_metrics = LogMetrics::register(&mut registry);
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let writer_metrics = WriterMetrics::register(&mut registry);
    let retention_metrics = RetentionMetrics::register(&mut registry);
    let http_metrics = HttpMetrics::register(&mut registry);
    let coap_metrics = CoapMetrics::register(&mut registry);
    let mqtt_metrics = MqttMetrics::register(&mut registry);

    let log = if uses_log {
        Some(open_log(&config, log_metrics).await?)
    } else {
        None
    };
    let (store, postgres) = open_store(&config).await?;
    let boot = bootstrap_default_tenant(&*store, &config.data_dir, postgres.is_some()).await?;
    if boot.admin_key.is_some() {
        ingot_api::dashboards::ensure_builtin(&*store, boot.default_tenant)
            .await
            .context("cannot save the built-in dashboard of tenant `default`")?;
    }
    let http_tls = match &config.http_tls {
        // The MQTT adapter's loader: the same PEM rules and errors for both listeners.
        Some((cert, key)) => Some(
            ingot_adapter_mqtt::tls_server_config(cert, key)
                .context("cannot load the HTTP TLS certificate")?,
        ),
        None => None,
    };

    let http = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_addr))?;
    let http_addr = http.local_addr()?;
    let devices = if roles.ingest {
        Some(bind_device_listeners(&config).await?)
    } else {
        None
    };
    let coap_addr = match &devices {
        Some(d) => Some(d.coap.local_addr()?),
        None => None,
    };
    let mqtt_addr = match devices.as_ref().and_then(|d| d.mqtt.as_ref()) {
        Some(mqtt) => Some(mqtt.local_addr()?),
        None => None,
    };
    let mqtt_tls_addr = match devices.as_ref().and_then(|d| d.mqtt_tls.as_ref()) {
        Some(tls) => Some(tls.listener.local_addr()?),
        None => None,
    };

    // A replica without the ingest role never appends; its ingest service (which the API
    // state carries) sits on a log that refuses, behind routes that are not served.
    let ingest_log: Arc<dyn Log> = match (&log, roles.ingest) {
        (Some(log), true) => log.clone(),
        _ => Arc::new(NoIngestLog),
    };
    let ingest = Arc::new(Ingest::new(
        ingest_log,
        config.limits.clone(),
        ingest_metrics,
    ));
    let demo_ingest = ingest.clone();
    let auth = Arc::new(Authenticator::new(
        store.clone(),
        boot.default_tenant,
        config.allow_anonymous,
    ));
    let ready = Arc::new(AtomicBool::new(false));
    let coap_deps = CoapDeps {
        ingest: ingest.clone(),
        auth: auth.clone(),
        store: store.clone(),
    };
    let mqtt_deps = MqttDeps {
        ingest: ingest.clone(),
        auth: auth.clone(),
    };
    let last_seen_auth = auth.clone();
    let router = ingot_api::router_for(
        ApiDeps {
            ingest,
            store: store.clone(),
            auth,
            registry: Arc::new(registry),
            ready: ready.clone(),
            metrics: http_metrics,
        },
        Routes {
            ingest: roles.ingest,
            query: roles.query,
        },
    );

    let stop = CancellationToken::new();
    let writer_stop = CancellationToken::new();
    let writer_task = match (&log, roles.store_writer) {
        (Some(log), true) => {
            let writer = StoreWriter::new(
                log.clone(),
                store.clone(),
                EVENTS_TOPIC,
                config.store.writer_batch,
                writer_metrics,
            );
            let retention_config = RetentionConfig {
                default: config.store_retention,
                check_every: config.store_retention_check,
                ..RetentionConfig::default()
            };
            // Retention stops as soon as the drain starts; an interrupted sweep resumes next start.
            tokio::spawn(retention::run(
                store.clone(),
                retention_config,
                retention_metrics,
                stop.clone(),
            ));
            Some(tokio::spawn(writer.run(writer_stop.clone())))
        }
        _ => None,
    };
    // The protocol listeners, in the order the drain waits for them. Each stops accepting
    // as soon as `stop` is cancelled and returns once its in-flight requests are answered.
    let http_stop = stop.clone();
    let http_options = ingot_api::ServeOptions {
        tls: http_tls,
        ..ingot_api::ServeOptions::default()
    };
    let http_task = tokio::spawn(async move {
        ingot_api::server::serve(http, router, http_options, async move {
            http_stop.cancelled().await;
        })
        .await
        .context("the HTTP server failed")
    });
    let mut listeners = vec![("http", http_task)];
    if let Some(devices) = devices {
        let coap_task = tokio::spawn({
            let (config, stop) = (config.coap.clone(), stop.clone());
            async move {
                ingot_adapter_coap::serve(devices.coap, config, coap_deps, coap_metrics, stop)
                    .await
                    .context("the CoAP endpoint failed")
            }
        });
        let mqtt_task = tokio::spawn({
            let (config, stop) = (config.mqtt.clone(), stop.clone());
            async move {
                ingot_adapter_mqtt::serve(
                    devices.mqtt,
                    devices.mqtt_tls,
                    config,
                    mqtt_deps,
                    mqtt_metrics,
                    stop,
                )
                .await
                .context("the MQTT broker failed")
            }
        });
        listeners.push(("coap", coap_task));
        listeners.push(("mqtt", mqtt_task));
        if config.demo {
            ingot_sim::demo::register(&*store, boot.default_tenant)
                .await
                .context("cannot register the demo fleet's devices")?;
            let (tenant, stop) = (boot.default_tenant, stop.clone());
            let demo = tokio::spawn(async move {
                ingot_sim::demo::run(demo_ingest, tenant, stop).await;
                Ok(())
            });
            listeners.push(("demo fleet", demo));
        }
    }
    // Last-seen times of devices are batched in memory and written every few seconds,
    // and once more when the drain starts.
    let last_seen = tokio::spawn({
        let stop = stop.clone();
        async move {
            last_seen_auth.run_last_seen(LAST_SEEN_EVERY, stop).await;
            Ok(())
        }
    });
    listeners.push(("last-seen", last_seen));

    ingot_api::set_ready(&ready, true);
    tracing::info!(
        http = %http_addr,
        coap = ?coap_addr,
        mqtt = ?mqtt_addr,
        data_dir = %config.data_dir.display(),
        fsync = ?config.fsync,
        anonymous = config.allow_anonymous,
        https = config.http_tls.is_some(),
        mqtt_tls = ?mqtt_tls_addr,
        demo = config.demo && roles.ingest,
        roles = %roles.names(),
        log = ?config.log_backend,
        store = ?config.store_backend,
        startup_ms = started.elapsed().as_secs_f64() * 1e3,
        "ingot is ready"
    );
    if config.allow_anonymous {
        tracing::warn!(
            "--allow-anonymous: devices WITHOUT credentials may write into tenant `default`; use only for development"
        );
    }

    let drain_stop = stop.clone();
    let grace = config.shutdown_grace;
    let shared_log = !matches!(config.log_backend, LogBackend::Embedded);
    let drained = tokio::spawn(async move {
        drain_stop.cancelled().await;
        let _lock = lock; // held until the log is closed
        let parts = Draining {
            ready,
            listeners,
            writer_stop,
            writer_task,
            log,
            postgres,
            shared_log,
        };
        drain(parts, grace).await
    });
    Ok(Running {
        http_addr,
        coap_addr,
        mqtt_addr,
        mqtt_tls_addr,
        admin_key: boot.admin_key,
        stop,
        drained,
    })
}

/// Opens the configured log: the embedded segment files, or NATS JetStream.
async fn open_log(config: &ServeConfig, metrics: LogMetrics) -> anyhow::Result<Arc<dyn Log>> {
    match &config.log_backend {
        LogBackend::Embedded => {
            let log_config = FileLogConfig {
                dir: config.data_dir.join("log"),
                partitions: config.log.partitions,
                segment_bytes: config.log.segment_bytes,
                sync: config.fsync,
                retention: Retention {
                    max_age: config.retention_age,
                    max_bytes_per_partition: (config.log.retention_bytes > 0)
                        .then_some(config.log.retention_bytes),
                },
                ..FileLogConfig::default()
            };
            Ok(Arc::new(
                tokio::task::spawn_blocking(move || FileLog::open(log_config, metrics))
                    .await
                    .context("log recovery panicked")?
                    .context("cannot open the event log")?,
            ))
        }
        LogBackend::Nats(nats) => {
            let servers = NatsUrl::parse(&nats.url).map_or_else(|_| "?".into(), |u| u.redacted());
            Ok(Arc::new(
                NatsLog::connect(nats.as_ref().clone(), metrics)
                    .await
                    .with_context(|| format!("cannot open the NATS JetStream log at {servers}"))?,
            ))
        }
    }
}

/// Opens the configured store: SQLite in the data directory, or PostgreSQL (also returned
/// as itself, so the drain can close its connections).
async fn open_store(
    config: &ServeConfig,
) -> anyhow::Result<(Arc<dyn Store>, Option<Arc<PostgresStore>>)> {
    match &config.store_backend {
        StoreBackend::Embedded => {
            let store_path = config.data_dir.join("store.db");
            let store: Arc<dyn Store> = Arc::new(
                tokio::task::spawn_blocking(move || SqliteStore::open(&store_path))
                    .await
                    .context("store open panicked")?
                    .context("cannot open the store")?,
            );
            Ok((store, None))
        }
        StoreBackend::Postgres { url, options } => {
            let store = Arc::new(
                PostgresStore::connect_with(url, options.clone())
                    .await
                    .with_context(|| {
                        format!("cannot open the PostgreSQL store at {}", redact_url(url))
                    })?,
            );
            Ok((store.clone(), Some(store)))
        }
    }
}

/// [`bootstrap`], tolerating the race of replicas starting together on one shared store.
async fn bootstrap_default_tenant(
    store: &dyn Store,
    data_dir: &Path,
    shared: bool,
) -> anyhow::Result<Bootstrap> {
    let first = match bootstrap(store, data_dir).await {
        Ok(boot) => return Ok(boot),
        Err(e) if shared => e,
        Err(e) => return Err(e).context("cannot create the default tenant"),
    };
    // Another replica may have created tenant `default` at the same moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    match bootstrap(store, data_dir).await {
        Ok(boot) => {
            if boot.admin_key.is_none() {
                // The key this replica wrote before losing the race was never registered.
                let _ = std::fs::remove_file(&boot.admin_key_path);
                tracing::info!("another replica created tenant `default` at the same time");
            }
            Ok(boot)
        }
        Err(_) => Err(first).context("cannot create the default tenant"),
    }
}

async fn bind_device_listeners(config: &ServeConfig) -> anyhow::Result<DeviceListeners> {
    let coap = UdpSocket::bind(config.coap_addr)
        .await
        .with_context(|| format!("cannot listen for CoAP on udp {}", config.coap_addr))?;
    let mqtt = if config.plain_listeners {
        Some(
            TcpListener::bind(config.mqtt_addr)
                .await
                .with_context(|| format!("cannot listen for MQTT on {}", config.mqtt_addr))?,
        )
    } else {
        None
    };
    let mqtt_tls = match (&config.mqtt.tls_cert, &config.mqtt.tls_key) {
        (Some(cert), Some(key)) => {
            let tls_config = ingot_adapter_mqtt::tls_server_config(cert, key)
                .context("cannot load the MQTT TLS certificate")?;
            let addr = config.mqtt.tls_addr;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for MQTT over TLS on {addr}"))?;
            Some(TlsListener {
                listener,
                config: tls_config,
            })
        }
        _ => None,
    };
    Ok(DeviceListeners {
        coap,
        mqtt,
        mqtt_tls,
    })
}

/// What the drain stops, in order.
struct Draining {
    ready: Arc<AtomicBool>,
    listeners: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    writer_stop: CancellationToken,
    writer_task: Option<tokio::task::JoinHandle<Result<(), ingot_writer::WriterError>>>,
    log: Option<Arc<dyn Log>>,
    postgres: Option<Arc<PostgresStore>>,
    /// The log is a shared engine: what is acknowledged is stored by another replica.
    shared_log: bool,
}

async fn drain(parts: Draining, grace: Duration) -> anyhow::Result<()> {
    ingot_api::set_ready(&parts.ready, false);
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "draining: no new requests; finishing in-flight ones"
    );
    let where_safe = if parts.shared_log {
        "acknowledged events are safe in the shared log and another replica stores them"
    } else {
        "acknowledged events are safe in the log and will be stored on the next start"
    };
    let late = |stage: &str| {
        anyhow::anyhow!(
            "the drain did not finish within {grace:?} ({stage} was still running); {where_safe}"
        )
    };
    for (stage, task) in parts.listeners {
        let result = tokio::time::timeout_at(deadline, task)
            .await
            .map_err(|_| late(stage))?;
        stage_done(stage, result.map_err(anyhow::Error::from).and_then(|r| r));
    }
    parts.writer_stop.cancel();
    if let Some(writer_task) = parts.writer_task {
        let writer = tokio::time::timeout_at(deadline, writer_task)
            .await
            .map_err(|_| late("the store writer"))?;
        stage_done(
            "store-writer",
            writer
                .map_err(anyhow::Error::from)
                .and_then(|r| r.map_err(Into::into)),
        );
    }
    if let Some(log) = parts.log {
        tokio::time::timeout_at(deadline, log.close())
            .await
            .map_err(|_| late("the log"))?
            .context("closing the log")?;
    }
    if let Some(postgres) = parts.postgres {
        let closed = tokio::time::timeout_at(deadline, postgres.close())
            .await
            .map_err(|_| late("the store's connections"))?;
        stage_done("store", closed.map_err(Into::into));
    }
    tracing::info!("drained; bye");
    Ok(())
}

fn stage_done(stage: &str, result: anyhow::Result<()>) {
    match result {
        Ok(()) => tracing::info!(stage, "stopped"),
        Err(error) => tracing::error!(stage, %error, "stopped with an error"),
    }
}

/// The log of a replica without the `ingest` role: it never appends (its ingest route is
/// not served and it has no device listeners), so every call is refused.
#[derive(Debug)]
struct NoIngestLog;

impl NoIngestLog {
    fn refuse() -> LogError {
        LogError::Unavailable("this replica does not have the ingest role".into())
    }
}

#[async_trait]
impl Log for NoIngestLog {
    async fn append(&self, _: &str, _: &[u8], _: Vec<Bytes>) -> Result<AppendAck, LogError> {
        Err(NoIngestLog::refuse())
    }

    fn partitions(&self) -> u32 {
        1
    }

    async fn end_offsets(&self, _: &str) -> Result<Vec<u64>, LogError> {
        Err(NoIngestLog::refuse())
    }

    async fn committed(&self, _: &str, _: &str) -> Result<Vec<u64>, LogError> {
        Err(NoIngestLog::refuse())
    }

    async fn consumer(&self, _: &str, _: &str) -> Result<Box<dyn Consumer>, LogError> {
        Err(NoIngestLog::refuse())
    }

    async fn close(&self) -> Result<(), LogError> {
        Ok(())
    }
}

/// Takes an exclusive lock on `<data_dir>/LOCK` so two servers never share a data directory.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "the data directory {} is in use by another ingot process",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `host:port` as a client would dial it: an unspecified address is this machine.
fn dialable(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{host}:{}", addr.port())
}

/// What `ingot serve` prints on the terminal once it is ready.
pub fn banner(config: &ServeConfig, running: &Running) -> String {
    if config.roles != Roles::ALL
        || config.log_backend != LogBackend::Embedded
        || config.store_backend != StoreBackend::Embedded
    {
        return replica_banner(config, running);
    }
    let base = format!("{}://{}", http_scheme(config), dialable(running.http_addr));
    let data_dir = config.data_dir.display();
    let mut out = format!(
        "\nIngot {} is ready.\n\n  UI and API   {base}/\n",
        env!("CARGO_PKG_VERSION"),
    );
    if let Some(coap) = running.coap_addr {
        out.push_str(&format!(
            "  CoAP         coap://{}/events\n",
            dialable(coap)
        ));
    }
    if let Some(mqtt) = running.mqtt_addr {
        out.push_str(&format!("  MQTT         mqtt://{}\n", dialable(mqtt)));
    }
    if let Some(tls) = running.mqtt_tls_addr {
        out.push_str(&format!("  MQTT (TLS)   mqtts://{}\n", dialable(tls)));
    }
    out.push_str(&format!("  Data         {data_dir}\n"));
    if config.demo {
        out.push_str("  Demo fleet   4 weather stations and 12 vehicles, in tenant `default`\n");
    }
    match &running.admin_key {
        Some(key) => out.push_str(&format!(
            "  Admin key    {key}\n               (saved to {data_dir}/admin.key; shown only this once)\n"
        )),
        None => out.push_str(&format!("  Admin key    in {data_dir}/admin.key\n")),
    }
    if config.allow_anonymous {
        out.push_str(
            "\n  WARNING: --allow-anonymous: devices without credentials may write into tenant \
             `default`.\n  Use it only for development.\n",
        );
    }
    if let Some((cert, _)) = &config.http_tls {
        out.push_str(&format!(
            "\nHTTPS with {}; with a self-signed certificate, add `--cacert {}` to curl.\n",
            cert.display(),
            cert.display()
        ));
    }
    out.push_str("\nSend a first event:\n\n");
    if config.allow_anonymous {
        out.push_str(&format!(
            "  curl -X POST {base}/api/v1/events -H 'Content-Type: application/json' \\\n    \
             -d '{{\"device\": \"probe-7\", \"kind\": \"temperature\", \"value\": 15.0}}'\n"
        ));
    } else {
        out.push_str(&format!(
            "  ingot device add probe-7 --server {base}     # prints the device's token\n  \
             curl -X POST {base}/api/v1/events -H 'Authorization: Bearer <token>' \\\n    \
             -H 'Content-Type: application/json' -d '{{\"kind\": \"temperature\", \"value\": 15.0}}'\n"
        ));
    }
    out.push_str(&format!(
        "\nRead it back:\n\n  curl -H \"Authorization: Bearer $(cat {data_dir}/admin.key)\" {base}/api/v1/events\n"
    ));
    out
}

fn http_scheme(config: &ServeConfig) -> &'static str {
    if config.http_tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// The banner of a scale-out replica: its roles, listeners and backends.
fn replica_banner(config: &ServeConfig, running: &Running) -> String {
    let roles = config.roles;
    let base = format!("{}://{}", http_scheme(config), dialable(running.http_addr));
    let mut out = format!(
        "\nIngot {} is ready (roles: {}).\n\n",
        env!("CARGO_PKG_VERSION"),
        roles.names()
    );
    let http_label = if roles.query {
        "UI and API"
    } else {
        "HTTP      "
    };
    let serves = match (roles.ingest, roles.query) {
        (true, true) => "",
        (true, false) => "  (ingest, /healthz, /readyz, /metrics)",
        (false, true) => "",
        (false, false) => "  (/healthz, /readyz, /metrics)",
    };
    out.push_str(&format!("  {http_label}   {base}/{serves}\n"));
    if let Some(coap) = running.coap_addr {
        out.push_str(&format!(
            "  CoAP         coap://{}/events\n",
            dialable(coap)
        ));
    }
    if let Some(mqtt) = running.mqtt_addr {
        out.push_str(&format!("  MQTT         mqtt://{}\n", dialable(mqtt)));
    }
    if let Some(tls) = running.mqtt_tls_addr {
        out.push_str(&format!("  MQTT (TLS)   mqtts://{}\n", dialable(tls)));
    }
    match &config.log_backend {
        LogBackend::Nats(nats) => out.push_str(&format!(
            "  Log          NATS JetStream {} (R{})\n",
            NatsUrl::parse(&nats.url).map_or_else(|_| "?".into(), |u| u.redacted()),
            nats.replicas
        )),
        LogBackend::Embedded => out.push_str(&format!(
            "  Log          {}\n",
            config.data_dir.join("log").display()
        )),
    }
    match &config.store_backend {
        StoreBackend::Postgres { url, .. } => {
            out.push_str(&format!("  Store        {}\n", redact_url(url)));
        }
        StoreBackend::Embedded => out.push_str(&format!(
            "  Store        {}\n",
            config.data_dir.join("store.db").display()
        )),
    }
    let key_file = config.data_dir.join("admin.key");
    match &running.admin_key {
        Some(key) => out.push_str(&format!(
            "  Admin key    {key}\n               (saved to {}; shown only this once)\n",
            key_file.display()
        )),
        None if key_file.exists() => {
            out.push_str(&format!("  Admin key    in {}\n", key_file.display()));
        }
        None => out
            .push_str("  Admin key    printed once by the replica that created tenant `default`\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(roles: Roles) -> Running {
        Running {
            http_addr: "127.0.0.1:8080".parse().unwrap(),
            coap_addr: roles.ingest.then(|| "127.0.0.1:5683".parse().unwrap()),
            mqtt_addr: roles.ingest.then(|| "127.0.0.1:1883".parse().unwrap()),
            mqtt_tls_addr: None,
            admin_key: None,
            stop: CancellationToken::new(),
            drained: tokio::spawn(async { Ok(()) }),
        }
    }

    #[tokio::test]
    async fn a_replica_banner_names_its_roles_and_hides_passwords() {
        let mut config = crate::config::ServeConfig::from_toml(
            "log_url = \"nats://ingot:hunter2@n1:4222,n2:4222\"\n\
             store_url = \"postgres://ingot:hunter2@pg:5432/ingot\"\nroles = \"store-writer\"\n\
             data_dir = \"/nonexistent/ingot\"\n",
        )
        .unwrap();
        let text = banner(&config, &running(config.roles));
        assert!(text.contains("roles: store-writer"), "{text}");
        assert!(
            text.contains("HTTP         http://127.0.0.1:8080/"),
            "{text}"
        );
        assert!(
            text.contains("nats://n1:4222,nats://n2:4222 (R1)"),
            "{text}"
        );
        assert!(
            text.contains("postgres://ingot:***@pg:5432/ingot"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("CoAP"), "no device listeners: {text}");

        config.roles = Roles::parse("ingest").unwrap();
        let text = banner(&config, &running(config.roles));
        assert!(
            text.contains("CoAP         coap://127.0.0.1:5683/events"),
            "{text}"
        );
        assert!(
            text.contains("(ingest, /healthz, /readyz, /metrics)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_default_banner_is_unchanged() {
        let config = crate::config::ServeConfig::from_toml("").unwrap();
        let text = banner(&config, &running(Roles::ALL));
        assert!(text.contains("  UI and API   http://127.0.0.1:8080/\n  CoAP         coap://127.0.0.1:5683/events\n  MQTT         mqtt://127.0.0.1:1883\n  Data         ingot-data\n"), "{text}");
        assert!(text.contains("Send a first event"), "{text}");
        assert!(!text.contains("roles"), "{text}");
    }

    #[tokio::test]
    async fn a_replica_without_ingest_refuses_appends() {
        let log = NoIngestLog;
        let error = log
            .append("events", b"k", vec![Bytes::from_static(b"x")])
            .await
            .unwrap_err();
        assert!(matches!(error, LogError::Unavailable(_)), "{error}");
        assert!(log.close().await.is_ok());
    }
}
