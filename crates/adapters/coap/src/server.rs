//! The socket driver: one task owns the [`Engine`] and the UDP socket; jobs run as tasks.
//!
//! The loop waits on four things — datagrams, finished jobs, the engine's next timer and
//! (while anyone observes) the ingest live feed — and after each wake-up sends what the
//! engine produced and spawns the jobs it handed out. Receiving drains up to
//! [`RECV_BATCH`] datagrams per wake-up into one reused buffer, so a busy socket costs one
//! readiness wake-up per batch rather than per datagram. Jobs are bounded by the engine's
//! in-flight limits (beyond them it answers 5.03), so the number of tasks and of queued
//! completions is bounded too; many concurrent ingest jobs are what lets the log's group
//! commit put many requests in one fsync.
//!
//! Shutdown: on cancellation the engine stops taking new work (5.03 with Max-Age), the
//! loop keeps running until every job has completed and its response was sent, then
//! returns. The caller bounds how long that may take.

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use ingot_core::Event;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::CoapConfig;
use crate::engine::{Engine, JobId, Outcome, Output};
use crate::error::{CoapError, RequestError};
use crate::metrics::CoapMetrics;
use crate::worker::{CoapDeps, Worker};

/// Most datagrams read per wake-up before the loop looks at its other inputs.
const RECV_BATCH: usize = 64;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// Serves CoAP on `socket` until `shutdown` is cancelled and in-flight requests are
/// answered.
///
/// The socket is bound by the caller (port 0 in tests). Errors: an invalid `config`, or a
/// socket that cannot be read at all.
pub async fn serve(
    socket: UdpSocket,
    config: CoapConfig,
    deps: CoapDeps,
    metrics: CoapMetrics,
    shutdown: CancellationToken,
) -> Result<(), CoapError> {
    let max_in_flight = config.max_in_flight;
    let mut engine = Engine::new(config, metrics, random_seed())?;
    engine.count_refusals(deps.ingest.metrics().clone());
    let local = socket.local_addr().map_err(CoapError::Socket)?;
    tracing::info!(addr = %local, "CoAP endpoint ready");
    let worker = Arc::new(Worker::new(deps.clone()));
    // Never full: at most `max_in_flight` jobs run, each sends one completion.
    let (done_tx, mut done_rx) = mpsc::channel::<(JobId, Outcome)>(max_in_flight + 1);
    let tasks = TaskTracker::new();
    let mut live: Option<broadcast::Receiver<Arc<Event>>> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Output::default();
    let mut draining = false;
    loop {
        let deadline = engine.next_timer();
        tokio::select! {
            biased;
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                tracing::info!(addr = %local, in_flight = engine.in_flight(), "CoAP endpoint draining");
                engine.begin_shutdown(&mut out);
            }
            Some((id, outcome)) = done_rx.recv() => {
                engine.complete(id, outcome, now(), &mut out);
                while let Ok((id, outcome)) = done_rx.try_recv() {
                    engine.complete(id, outcome, now(), &mut out);
                }
            }
            event = next_live(&mut live) => match event {
                Ok(event) => engine.notify(&event, now(), &mut out),
                // Best effort by design: a lagging observer skips events (the store has them).
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "CoAP observers skipped live events");
                }
                Err(broadcast::error::RecvError::Closed) => live = None,
            },
            ready = socket.readable() => {
                ready.map_err(CoapError::Socket)?;
                receive(&socket, &mut engine, &mut buf, &mut out);
            }
            () = sleep_until(deadline) => {}
        }
        // Timers run on every turn, not only when their arm wins: under a steady stream of
        // datagrams the socket arm is always ready, and separate-response ACKs and
        // retransmissions must not wait for a quiet moment.
        let turn = now();
        if engine.next_timer().is_some_and(|due| due <= turn) {
            engine.on_timer(turn, &mut out);
        }
        flush(&socket, &mut out).await;
        for job in out.jobs.drain(..) {
            let worker = worker.clone();
            let done = done_tx.clone();
            tasks.spawn(async move {
                let outcome = AssertUnwindSafe(worker.run(job.work))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        Outcome::Failed(RequestError::Internal("a CoAP job panicked".into()))
                    });
                // The receiver only goes away when the server stopped; nothing to answer then.
                let _ = done.send((job.id, outcome)).await;
            });
        }
        match (engine.observer_count() > 0, live.is_some()) {
            (true, false) => live = Some(deps.ingest.live().subscribe()),
            (false, true) => live = None,
            _ => {}
        }
        if draining && engine.in_flight() == 0 {
            break;
        }
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!(addr = %local, "CoAP endpoint stopped");
    Ok(())
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Reads up to [`RECV_BATCH`] datagrams without waiting.
fn receive(socket: &UdpSocket, engine: &mut Engine, buf: &mut [u8], out: &mut Output) {
    for _ in 0..RECV_BATCH {
        match socket.try_recv_from(buf) {
            Ok((len, peer)) => {
                let datagram = buf.get(..len).unwrap_or_default();
                engine.handle_datagram(peer, datagram, now(), out);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(error) => {
                // ICMP errors (on some systems) and the like concern one peer, not the server.
                tracing::debug!(%error, "CoAP receive error");
                return;
            }
        }
    }
}

/// Sends everything the engine produced, waiting for the socket only when it is full.
async fn flush(socket: &UdpSocket, out: &mut Output) {
    for transmit in out.transmits.drain(..) {
        let sent = match socket.try_send_to(&transmit.bytes, transmit.peer) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                socket.send_to(&transmit.bytes, transmit.peer).await
            }
            other => other,
        };
        if let Err(error) = sent {
            // UDP: a lost datagram is retransmitted by whoever expects it.
            tracing::debug!(%error, peer = %transmit.peer, "CoAP send failed");
        }
    }
}

async fn next_live(
    live: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match live {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

/// A per-process random seed for message ids, from the standard library's hasher keys.
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x1d07);
    hasher.finish()
}
