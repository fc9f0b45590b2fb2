//! Idle clients (`--idle N`): connections a server must hold while it serves the load —
//! the "10 000 devices connected, few of them talking" case.
//!
//! Before the load starts, each idle client sets itself up and then does nothing until
//! the run ends: an MQTT client connects (CONNECT/CONNACK) and only answers keep-alive;
//! a CoAP endpoint sends one confirmable request from its own UDP socket and waits for
//! the answer, so the server knows the endpoint, then stays silent with the socket open;
//! an HTTP client opens a keep-alive connection. They use the shared token (`--token`),
//! the admin key with `--provision`, or none; their one CoAP request is not counted in
//! the load's figures.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Shared, coap, mqtt, tcp_connect};
use crate::config::Protocol;
use crate::scenario::Message;

/// The running idle clients.
#[derive(Debug)]
pub(crate) struct IdleSet {
    tasks: Vec<JoinHandle<()>>,
    ready: mpsc::Receiver<bool>,
    count: usize,
}

/// Starts the idle clients of the run; they close when `stop` is cancelled.
pub(crate) fn spawn(shared: &Shared, stop: CancellationToken) -> IdleSet {
    let run = shared.run.clone();
    let count = run.config.idle;
    let (tx, ready) = mpsc::channel(count.max(1));
    let total = run.connections + count;
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let (run, tx, stop) = (run.clone(), tx.clone(), stop.clone());
        let connects = shared.connects.clone();
        let index = run.connections + i;
        tasks.push(tokio::spawn(async move {
            let c = &run.config;
            let token = c.idle_token.clone();
            let permit = connects.acquire().await;
            match c.protocol {
                Protocol::Mqtt => {
                    let name = format!("idle-{:05}", i + 1);
                    let client_id = format!("sim{}-i{i}", std::process::id());
                    let conn =
                        mqtt::connect(&run, index, total, client_id, Some(&name), token.as_deref())
                            .await;
                    drop(permit);
                    let _ = tx.send(conn.is_ok()).await;
                    if let Ok(conn) = conn {
                        mqtt::hold_idle(conn, c.mqtt_version(), c.mqtt.keep_alive, stop).await;
                    }
                }
                Protocol::Coap => {
                    let devices = run.devices + count;
                    let mut device = c.scenario.device(run.devices + i, devices);
                    let mut message = Message::default();
                    device.next(ingot_core::Timestamp::now(), &mut message);
                    let socket =
                        coap::introduce(&run, index, total, &message, token.as_deref()).await;
                    drop(permit);
                    if let Err(reason) = &socket {
                        tracing::debug!(%reason, "idle CoAP endpoint failed");
                    }
                    let _ = tx.send(socket.is_ok()).await;
                    if let Ok(socket) = socket {
                        stop.cancelled().await;
                        drop(socket);
                    }
                }
                Protocol::Http => {
                    let stream = tcp_connect(run.target.addr, index, total).await;
                    drop(permit);
                    let _ = tx.send(stream.is_ok()).await;
                    if let Ok(stream) = stream {
                        stop.cancelled().await;
                        drop(stream);
                    }
                }
            }
        }));
    }
    IdleSet {
        tasks,
        ready,
        count,
    }
}

impl IdleSet {
    /// Waits until every idle client is set up (or failed); returns how many failed.
    pub(crate) async fn wait_ready(&mut self, interrupt: &CancellationToken) -> u64 {
        let (mut answered, mut failed) = (0, 0);
        while answered < self.count {
            tokio::select! {
                ok = self.ready.recv() => match ok {
                    Some(true) => answered += 1,
                    Some(false) => {
                        answered += 1;
                        failed += 1;
                    }
                    None => break,
                },
                () = interrupt.cancelled() => break,
            }
        }
        failed
    }

    /// Waits for every idle client to close.
    pub(crate) async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
