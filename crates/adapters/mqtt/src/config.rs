//! `[mqtt]`: the broker's limits and the optional TLS listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The `[mqtt]` section of the server's TOML file. Every key is optional; the defaults
/// suit a small machine with thousands of devices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Largest packet a client may send (and the Maximum Packet Size told to MQTT 5
    /// clients). Bigger packets close the connection (0x95) before they are buffered.
    pub max_packet_size: u32,
    /// QoS 1/2 publishes a client may have unacknowledged towards the server (the Receive
    /// Maximum told to MQTT 5 clients). An MQTT 3.1.1 client that sends more waits: the
    /// server stops reading until acknowledgements go out.
    pub receive_maximum: u16,
    /// QoS 1/2 messages the server sends a client before waiting for its
    /// acknowledgements (lowered further by an MQTT 5 client's own Receive Maximum).
    pub max_inflight: u16,
    /// Messages waiting per session (connected or not). When full, QoS 0 messages are
    /// dropped; a QoS 1/2 message is dropped and a connected client is disconnected
    /// (0x97 quota exceeded) as a slow consumer. All drops are counted.
    pub max_queued_messages: usize,
    /// Bytes of encoded packets waiting for a slow socket before the server stops
    /// reading from the client and stops taking messages from its queue.
    pub max_write_buffer: usize,
    /// Highest keep-alive in seconds; an MQTT 5 client asking for more, or for none (0),
    /// is told this one (Server Keep Alive). 0 lets clients choose freely. MQTT 3.1.1
    /// clients keep their own value. A client silent for 1.5 × its keep-alive is
    /// disconnected.
    pub max_keep_alive_secs: u16,
    /// How long a new connection may take to send CONNECT (and finish the TLS handshake).
    pub connect_timeout_secs: u64,
    /// Longest session expiry in seconds. MQTT 5 clients asking for more are told this
    /// one; MQTT 3.1.1 persistent sessions (clean session 0) expire after it too.
    pub max_session_expiry_secs: u32,
    /// Most sessions (connected and stored) per tenant; a new session beyond it is
    /// refused (0x97 quota exceeded; 3.1.1: server unavailable).
    pub max_sessions: usize,
    /// Most retained messages per tenant; a new retained topic beyond it is delivered but
    /// not retained (counted as dropped).
    pub max_retained_messages: usize,
    /// Most subscriptions per session; more are refused in SUBACK (0x97).
    pub max_subscriptions: usize,
    /// Highest topic alias an MQTT 5 client may use (Topic Alias Maximum); 0 disables them.
    pub max_topic_alias: u16,
    /// Most open connections; more are closed right after accept.
    pub max_connections: usize,
    /// Where the TLS listener binds (used only with `tls_cert` and `tls_key`).
    pub tls_addr: SocketAddr,
    /// PEM file with the server's certificate chain, leaf first.
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_packet_size: 1 << 20,
            receive_maximum: 1024,
            max_inflight: 256,
            max_queued_messages: 1000,
            max_write_buffer: 256 << 10,
            max_keep_alive_secs: 3600,
            connect_timeout_secs: 10,
            max_session_expiry_secs: 86_400,
            max_sessions: 100_000,
            max_retained_messages: 10_000,
            max_subscriptions: 100,
            max_topic_alias: 64,
            max_connections: 100_000,
            tls_addr: SocketAddr::from(([0, 0, 0, 0], 8883)),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl MqttConfig {
    /// Every problem of the section, each naming its key (`mqtt.<key>`); pure, no IO.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, problem: &str| {
            if !ok {
                problems.push(format!("mqtt.{problem}"));
            }
        };
        need(
            self.max_packet_size >= 64 && self.max_packet_size <= 268_435_460,
            "max_packet_size must be 64 to 268435460 bytes",
        );
        need(
            self.receive_maximum > 0,
            "receive_maximum must be at least 1",
        );
        need(self.max_inflight > 0, "max_inflight must be at least 1");
        need(
            self.max_queued_messages > 0,
            "max_queued_messages must be at least 1",
        );
        need(
            self.max_write_buffer >= 4096,
            "max_write_buffer must be at least 4096 bytes",
        );
        need(
            self.connect_timeout_secs > 0,
            "connect_timeout_secs must be at least 1",
        );
        need(self.max_sessions > 0, "max_sessions must be at least 1");
        need(
            self.max_subscriptions > 0,
            "max_subscriptions must be at least 1",
        );
        need(
            self.max_connections > 0,
            "max_connections must be at least 1",
        );
        need(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "tls_cert and tls_key must be given together",
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the TLS listener is configured.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_toml_section_overrides_them() {
        assert_eq!(MqttConfig::default().validate(), Ok(()));
        let config: MqttConfig = toml::from_str(
            "max_packet_size = 4096\nreceive_maximum = 10\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.max_packet_size, 4096);
        assert_eq!(config.receive_maximum, 10);
        assert_eq!(config.max_inflight, MqttConfig::default().max_inflight);
        assert!(config.tls_enabled());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_key() {
        assert!(toml::from_str::<MqttConfig>("max_pakcet_size = 1").is_err());
        let config = MqttConfig {
            receive_maximum: 0,
            tls_cert: Some("c.pem".into()),
            ..MqttConfig::default()
        };
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("mqtt.receive_maximum"));
        assert!(problems[1].starts_with("mqtt.tls_cert"));
    }
}
