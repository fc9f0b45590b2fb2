//! Ingot's MQTT endpoint: an MQTT 3.1.1 and 5.0 broker whose acknowledgements mean "on
//! disk" (default port 1883, 8883 with TLS).
//!
//! # What it does
//!
//! - **Telemetry.** A PUBLISH to `ingot/<device>/events[/<sensor>]` is parsed and
//!   validated like an HTTP body and ingested through [`ingot_ingest::Ingest`] — the one
//!   ingest path — and only once `Ingest::ingest` returned (the events are durable in the
//!   log) does the client get its PUBACK (QoS 1) or PUBREC (QoS 2). A refused payload gets
//!   a reason code (0x99 payload format invalid, 0x87 not authorized) and a reason string
//!   in MQTT 5; an MQTT 3.1.1 client, which has no way to hear a refusal, is disconnected.
//!   Then the message is routed like any other, so subscribers see live telemetry.
//! - **A broker.** Topic filters with `+` and `#` (`$` topics hidden from leading
//!   wildcards), retained messages, wills (with MQTT 5 will delay), persistent sessions
//!   with queued QoS 1/2 messages and redelivery, QoS 0/1/2, overlapping subscriptions,
//!   shared subscriptions (`$share/<group>/<filter>`), keep-alive enforcement (1.5×),
//!   receive maximum both ways, maximum packet size both ways, topic aliases from
//!   clients, message expiry, user properties, subscription identifiers, no-local,
//!   retain-as-published and retain handling.
//! - **Tenancy and permissions.** The password is a device token (user name = device) or
//!   an API key; see `acl` for who may publish and subscribe where. Every tenant has its
//!   own topic tree, retained messages and sessions.
//!
//! # Design
//!
//! [`serve`] takes listeners bound by the caller and a cancellation token, and runs an
//! accept loop per listener; every connection is one task (`connection`) that owns its
//! socket and drives a sans-IO codec (`ingot-codec-mqtt`). Shared state is in
//! `broker`: per-tenant subscription trees (`trie`), retained messages and sessions, in
//! memory and bounded by [`MqttConfig`]; wills are in `will`. Publishes decoded from one
//! socket read are ingested as one batch, and the connection keeps reading while batches
//! are in flight, so the log's group commit sees large appends from many connections.
//!
//! # Invariants
//!
//! - PUBACK/PUBREC of a telemetry publish is written only after its events are durable,
//!   and acknowledgements go out in the order the publishes came.
//! - A QoS 2 publish is ingested once: its packet id is remembered (with the session)
//!   from ingest until PUBREL, so a redelivery is acknowledged, not ingested again.
//! - No input from the network can panic the server or grow its memory without bound:
//!   packets are size-checked from their header, queues and buffers have limits, and a
//!   client that exceeds them is disconnected with the reason code saying so.
//! - On shutdown: no new connections; every connection stops reading, finishes what it
//!   was ingesting (acknowledging it), sends MQTT 5 clients DISCONNECT 0x8B, and closes;
//!   then [`serve`] returns. Sessions and retained messages are not kept across restarts.

mod acl;
mod broker;
mod config;
mod connection;
mod error;
mod metrics;
mod telemetry;
mod tls;
mod trie;
mod will;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ingot_auth::Authenticator;
use ingot_codec_mqtt::ReasonCode;
use ingot_ingest::Ingest;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::MqttConfig;
pub use error::MqttError;
pub use metrics::MqttMetrics;
pub use tls::tls_server_config;

use crate::broker::Broker;

/// What the endpoint needs from the rest of the server.
#[derive(Debug, Clone)]
pub struct MqttDeps {
    /// The one ingest path.
    pub ingest: Arc<Ingest>,
    /// Credentials.
    pub auth: Arc<Authenticator>,
}

/// The optional TLS listener: a bound socket and its configuration (see
/// [`tls_server_config`]).
#[derive(Debug)]
pub struct TlsListener {
    /// Bound by the caller (e.g. to `MqttConfig::tls_addr`).
    pub listener: TcpListener,
    /// Certificates and protocol versions.
    pub config: Arc<rustls::ServerConfig>,
}

/// Runs the MQTT endpoint on `listener` (plain, if given) and `tls` (if given) until
/// `shutdown` is cancelled and every connection has closed.
///
/// The only errors are configuration errors, reported before anything is served; a
/// failing accept (e.g. out of file descriptors) is logged and retried, and a failing
/// connection closes alone.
pub async fn serve(
    listener: Option<TcpListener>,
    tls: Option<TlsListener>,
    config: MqttConfig,
    deps: MqttDeps,
    metrics: MqttMetrics,
    shutdown: CancellationToken,
) -> Result<(), MqttError> {
    config.validate().map_err(MqttError::Config)?;
    if listener.is_none() && tls.is_none() {
        return Err(MqttError::Config(vec![
            "no listener: neither plain MQTT nor TLS is configured".into(),
        ]));
    }
    let tasks = TaskTracker::new();
    let broker = Arc::new(Broker::new(config, deps, metrics, tasks.clone(), shutdown));
    let plain = async {
        if let Some(listener) = listener {
            accept_loop(listener, None, broker.clone()).await;
        }
    };
    let secure = async {
        if let Some(tls) = tls {
            let acceptor = TlsAcceptor::from(tls.config);
            accept_loop(tls.listener, Some(acceptor), broker.clone()).await;
        }
    };
    tokio::join!(plain, secure);
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Frees a connection slot when the connection's task ends, however it ends.
struct Slot(Arc<Broker>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.connections().dec();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, broker: Arc<Broker>) {
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, tls = tls.is_some(), "MQTT listening");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = broker.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors: wait a little instead of spinning.
                tracing::warn!(%error, "MQTT accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = broker.shutdown.cancelled() => return,
                }
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let open = broker.connections.fetch_add(1, Ordering::Relaxed);
        broker.metrics.connections().inc();
        let slot = Slot(broker.clone());
        if open >= broker.config.max_connections {
            broker.metrics.refused(ReasonCode::SERVER_BUSY);
            tracing::warn!(%peer, open, "MQTT connection refused: max_connections reached");
            continue;
        }
        let (broker, tls) = (broker.clone(), tls.clone());
        let tasks = broker.tasks.clone();
        tasks.spawn(async move {
            let _slot = slot;
            serve_stream(stream, peer, tls, broker).await;
        });
    }
}

async fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    broker: Arc<Broker>,
) {
    let Some(acceptor) = tls else {
        return connection::run(stream, peer, broker).await;
    };
    // Boxed: the TLS handshake's state should not size the connection's task for life.
    let wait = Duration::from_secs(broker.config.connect_timeout_secs);
    let handshake = tokio::select! {
        h = tokio::time::timeout(wait, Box::pin(acceptor.accept(stream))) => h,
        _ = broker.shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => Box::pin(connection::run(stream, peer, broker)).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
