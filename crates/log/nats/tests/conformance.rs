//! The shared log conformance suite on a real JetStream server: each test starts its own
//! `nats-server` (see `ingot_log_nats::testing` for when tests skip or fail).

use std::sync::Arc;

use async_trait::async_trait;
use ingot_log::conformance::LogFactory;
use ingot_log::{Log, LogMetrics};
use ingot_log_nats::testing::{NatsServer, nats_server_binary};
use ingot_log_nats::{NatsLog, NatsLogConfig};

/// A NATS log on a server of its own, opened again on the same server by `reopen`.
struct NatsFactory {
    server: NatsServer,
}

impl NatsFactory {
    async fn start() -> Option<NatsFactory> {
        let binary = nats_server_binary()?;
        let server = NatsServer::start(&binary)
            .await
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        Some(NatsFactory { server })
    }
}

#[async_trait]
impl LogFactory for NatsFactory {
    async fn open(&self) -> Arc<dyn Log> {
        let config = NatsLogConfig {
            url: self.server.url(),
            partitions: 4,
            ..NatsLogConfig::default()
        };
        let log = NatsLog::connect(config, LogMetrics::default())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.server.log_tail()));
        Arc::new(log)
    }
}

ingot_log::log_conformance_tests!(optional NatsFactory::start());
