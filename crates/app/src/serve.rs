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

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ingot_adapter_coap::{CoapDeps, CoapMetrics};
use ingot_adapter_mqtt::{MqttDeps, MqttMetrics, TlsListener};
use ingot_api::{ApiDeps, HttpMetrics};
use ingot_auth::{Authenticator, bootstrap};
use ingot_ingest::{EVENTS_TOPIC, Ingest, IngestMetrics};
use ingot_log::Log;
use ingot_log::file::{FileLog, FileLogConfig, LogMetrics, Retention};
use ingot_store::Store;
use ingot_store_sqlite::SqliteStore;
use ingot_writer::retention::{self, RetentionConfig, RetentionMetrics};
use ingot_writer::{StoreWriter, WriterMetrics};
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;

/// A started server: its bound addresses and the handles to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP listener is bound (useful with port 0).
    pub http_addr: SocketAddr,
    /// Where the CoAP endpoint is bound.
    pub coap_addr: SocketAddr,
    /// Where the MQTT broker is bound.
    pub mqtt_addr: SocketAddr,
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

/// Starts every part of the server; returns once it is ready.
pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let lock = lock_data_dir(&config.data_dir)?;

    let mut registry = Registry::default();
    let log_metrics = LogMetrics::register(&mut registry);
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let writer_metrics = WriterMetrics::register(&mut registry);
    let retention_metrics = RetentionMetrics::register(&mut registry);
    let http_metrics = HttpMetrics::register(&mut registry);
    let coap_metrics = CoapMetrics::register(&mut registry);
    let mqtt_metrics = MqttMetrics::register(&mut registry);

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
    let log: Arc<dyn Log> = Arc::new(
        tokio::task::spawn_blocking(move || FileLog::open(log_config, log_metrics))
            .await
            .context("log recovery panicked")?
            .context("cannot open the event log")?,
    );
    let store_path = config.data_dir.join("store.db");
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SqliteStore::open(&store_path))
            .await
            .context("store open panicked")?
            .context("cannot open the store")?,
    );
    let boot = bootstrap(&*store, &config.data_dir)
        .await
        .context("cannot create the default tenant")?;

    let http = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_addr))?;
    let http_addr = http.local_addr()?;
    let coap = UdpSocket::bind(config.coap_addr)
        .await
        .with_context(|| format!("cannot listen for CoAP on udp {}", config.coap_addr))?;
    let coap_addr = coap.local_addr()?;
    let mqtt = TcpListener::bind(config.mqtt_addr)
        .await
        .with_context(|| format!("cannot listen for MQTT on {}", config.mqtt_addr))?;
    let mqtt_addr = mqtt.local_addr()?;
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
    let mqtt_tls_addr = match &mqtt_tls {
        Some(tls) => Some(tls.listener.local_addr()?),
        None => None,
    };

    let ingest = Arc::new(Ingest::new(
        log.clone(),
        config.limits.clone(),
        ingest_metrics,
    ));
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
    let router = ingot_api::router(ApiDeps {
        ingest,
        store: store.clone(),
        auth,
        registry: Arc::new(registry),
        ready: ready.clone(),
        metrics: http_metrics,
    });

    let stop = CancellationToken::new();
    let writer_stop = CancellationToken::new();
    let writer = StoreWriter::new(
        log.clone(),
        store.clone(),
        EVENTS_TOPIC,
        config.store.writer_batch,
        writer_metrics,
    );
    let writer_task = tokio::spawn(writer.run(writer_stop.clone()));
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
    // The protocol listeners, in the order the drain waits for them. Each stops accepting
    // as soon as `stop` is cancelled and returns once its in-flight requests are answered.
    let http_stop = stop.clone();
    let http_task = tokio::spawn(async move {
        ingot_api::serve(http, router, async move { http_stop.cancelled().await })
            .await
            .context("the HTTP server failed")
    });
    let coap_task = tokio::spawn({
        let (config, stop) = (config.coap.clone(), stop.clone());
        async move {
            ingot_adapter_coap::serve(coap, config, coap_deps, coap_metrics, stop)
                .await
                .context("the CoAP endpoint failed")
        }
    });
    let mqtt_task = tokio::spawn({
        let (config, stop) = (config.mqtt.clone(), stop.clone());
        async move {
            ingot_adapter_mqtt::serve(mqtt, mqtt_tls, config, mqtt_deps, mqtt_metrics, stop)
                .await
                .context("the MQTT broker failed")
        }
    });
    let listeners = vec![
        ("http", http_task),
        ("coap", coap_task),
        ("mqtt", mqtt_task),
    ];

    ingot_api::set_ready(&ready, true);
    tracing::info!(
        http = %http_addr,
        coap = %coap_addr,
        mqtt = %mqtt_addr,
        data_dir = %config.data_dir.display(),
        fsync = ?config.fsync,
        anonymous = config.allow_anonymous,
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
    let drained = tokio::spawn(async move {
        drain_stop.cancelled().await;
        let _lock = lock; // held until the log is closed
        drain(ready, listeners, writer_stop, writer_task, log, grace).await
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

async fn drain(
    ready: Arc<AtomicBool>,
    listeners: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    writer_stop: CancellationToken,
    writer_task: tokio::task::JoinHandle<Result<(), ingot_writer::WriterError>>,
    log: Arc<dyn Log>,
    grace: Duration,
) -> anyhow::Result<()> {
    ingot_api::set_ready(&ready, false);
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "draining: no new requests; finishing in-flight ones"
    );
    let late = |stage: &str| {
        anyhow::anyhow!(
            "the drain did not finish within {grace:?} ({stage} was still running); \
             acknowledged events are safe in the log and will be stored on the next start"
        )
    };
    for (stage, task) in listeners {
        let result = tokio::time::timeout_at(deadline, task)
            .await
            .map_err(|_| late(stage))?;
        stage_done(stage, result.map_err(anyhow::Error::from).and_then(|r| r));
    }
    writer_stop.cancel();
    let writer = tokio::time::timeout_at(deadline, writer_task)
        .await
        .map_err(|_| late("the store writer"))?;
    stage_done(
        "store-writer",
        writer
            .map_err(anyhow::Error::from)
            .and_then(|r| r.map_err(Into::into)),
    );
    tokio::time::timeout_at(deadline, log.close())
        .await
        .map_err(|_| late("the log"))?
        .context("closing the log")?;
    tracing::info!("drained; bye");
    Ok(())
}

fn stage_done(stage: &str, result: anyhow::Result<()>) {
    match result {
        Ok(()) => tracing::info!(stage, "stopped"),
        Err(error) => tracing::error!(stage, %error, "stopped with an error"),
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
    let base = format!("http://{}", dialable(running.http_addr));
    let data_dir = config.data_dir.display();
    let mut out = format!(
        "\nIngot {} is ready.\n\n  UI and API   {base}/\n  CoAP         coap://{}/events\n  MQTT         mqtt://{}\n",
        env!("CARGO_PKG_VERSION"),
        dialable(running.coap_addr),
        dialable(running.mqtt_addr),
    );
    if let Some(tls) = running.mqtt_tls_addr {
        out.push_str(&format!("  MQTT (TLS)   mqtts://{}\n", dialable(tls)));
    }
    out.push_str(&format!("  Data         {data_dir}\n"));
    match &running.admin_key {
        Some(key) => out.push_str(&format!(
            "  Admin key    {key}\n               (saved to {data_dir}/admin.key; shown only this once)\n"
        )),
        None => out.push_str(&format!("  Admin key    in {data_dir}/admin.key\n")),
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
