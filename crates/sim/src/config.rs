//! A run's configuration, and its resolution into what the drivers use: the target's
//! address, connections, per-connection windows, rate and bounds.
//!
//! Defaults follow what each protocol's devices do: an MQTT client and a CoAP endpoint
//! are one device each (one connection or UDP socket per device), a CoAP device waits for
//! its answer before the next request (RFC 7252's NSTART = 1), an MQTT client pipelines a
//! few QoS 1 publishes, HTTP clients share a pool of keep-alive connections.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ingot_codec_mqtt::{QoS, Version};

use crate::error::SimError;
use crate::scenario::ScenarioConfig;

/// The protocol spoken to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 `POST` (Ingot: `/api/v1/events`).
    Http,
    /// CoAP over UDP (Ingot: `POST /events`).
    Coap,
    /// MQTT over TCP (Ingot: `ingot/<device>/events`).
    Mqtt,
}

impl Protocol {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Coap => "coap",
            Protocol::Mqtt => "mqtt",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 8080,
            Protocol::Coap => 5683,
            Protocol::Mqtt => 1883,
        }
    }
}

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// The scenario's natural pace (each device every its interval), or as fast as
    /// possible for scenarios without one.
    Natural,
    /// Each device sends once per this interval.
    Interval(Duration),
    /// This many events per second in total.
    PerSecond(f64),
    /// As fast as the connections and windows allow.
    Max,
}

/// Which credentials requests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None (a server with anonymous access, a plain broker).
    None,
    /// The same token (or API key) for every device.
    Shared(String),
    /// One token per device, in device order (from provisioning).
    PerDevice(Vec<String>),
}

impl Credentials {
    /// The token of device `index`.
    pub fn for_device(&self, index: usize) -> Option<&str> {
        match self {
            Credentials::None => None,
            Credentials::Shared(token) => Some(token),
            Credentials::PerDevice(tokens) => tokens.get(index).map(String::as_str),
        }
    }
}

/// MQTT options.
#[derive(Debug, Clone)]
pub struct MqttOptions {
    /// QoS of the publishes.
    pub qos: QoS,
    /// Protocol version; `None`: 3.1.1, or 5 for binary payloads (which need a content
    /// type).
    pub version: Option<Version>,
    /// Keep-alive in seconds.
    pub keep_alive: u16,
}

impl Default for MqttOptions {
    fn default() -> Self {
        MqttOptions {
            qos: QoS::AtLeastOnce,
            version: None,
            keep_alive: 60,
        }
    }
}

/// CoAP options.
#[derive(Debug, Clone)]
pub struct CoapOptions {
    /// Confirmable (true) or non-confirmable requests.
    pub confirmable: bool,
    /// First retransmission timeout of a confirmable request (RFC 7252: 2 s).
    pub ack_timeout: Duration,
    /// Retransmissions before giving up (RFC 7252: 4).
    pub max_retransmit: u32,
    /// Bodies larger than this go block-wise (RFC 7959); 0: never.
    pub block_size: usize,
}

impl Default for CoapOptions {
    fn default() -> Self {
        CoapOptions {
            confirmable: true,
            ack_timeout: Duration::from_secs(2),
            max_retransmit: 4,
            block_size: 1024,
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// What devices send.
    pub scenario: ScenarioConfig,
    /// How.
    pub protocol: Protocol,
    /// `host:port` or a URL (`http://…`, `coap://…`, `mqtt://…`); `None`: this machine,
    /// the protocol's default port.
    pub target: Option<String>,
    /// HTTP or CoAP path (defaults: `/api/v1/events`, `/events`).
    pub path: Option<String>,
    /// MQTT topic template with `{device}` and `{sensor}` (default
    /// `ingot/{device}/events`).
    pub topic: Option<String>,
    /// Simulated devices; `None`: the scenario's default.
    pub devices: Option<usize>,
    /// Connections (CoAP: UDP sockets); `None`: the protocol's default.
    pub connections: Option<usize>,
    /// Requests in flight at most, in total; `None`: the protocol's default.
    pub concurrency: Option<usize>,
    /// How fast.
    pub rate: Rate,
    /// Stop issuing after this long.
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// How long to wait for an answer, and for the last answers at the end.
    pub timeout: Duration,
    /// Credentials of the load's devices.
    pub credentials: Credentials,
    /// Credentials of the idle clients (a shared token or key), if any.
    pub idle_token: Option<String>,
    /// MQTT options.
    pub mqtt: MqttOptions,
    /// CoAP options.
    pub coap: CoapOptions,
    /// Events per request (HTTP: NDJSON; CoAP: a JSON array; MQTT: NDJSON payloads).
    pub batch: usize,
    /// Idle clients to open (and, for CoAP, make known with one request) before the load,
    /// held open until it ends.
    pub idle: usize,
    /// Print a progress line on a terminal.
    pub progress: bool,
}

impl SimConfig {
    /// A run of `scenario` over `protocol` with every other option at its default.
    pub fn new(scenario: ScenarioConfig, protocol: Protocol) -> SimConfig {
        SimConfig {
            scenario,
            protocol,
            target: None,
            path: None,
            topic: None,
            devices: None,
            connections: None,
            concurrency: None,
            rate: Rate::Natural,
            duration: None,
            count: None,
            timeout: Duration::from_secs(5),
            credentials: Credentials::None,
            idle_token: None,
            mqtt: MqttOptions::default(),
            coap: CoapOptions::default(),
            batch: 1,
            idle: 0,
            progress: false,
        }
    }

    /// The number of devices this run simulates.
    pub fn device_count(&self) -> usize {
        self.devices
            .unwrap_or_else(|| self.scenario.default_devices())
    }

    /// The MQTT version used.
    pub fn mqtt_version(&self) -> Version {
        self.mqtt.version.unwrap_or(if self.scenario.is_binary() {
            Version::V5
        } else {
            Version::V311
        })
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    /// `host[:port]` as given (the HTTP `Host` header).
    pub authority: String,
    /// HTTP/CoAP path, starting with `/`.
    pub path: String,
    /// MQTT topic template.
    pub topic: String,
}

/// A configuration with every default decided and checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The configuration.
    pub config: SimConfig,
    /// Where.
    pub target: Target,
    /// Devices.
    pub devices: usize,
    /// Connections (never more than devices for MQTT and CoAP).
    pub connections: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// Events per second in total; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Events in total; `None`: until the duration or an interruption.
    pub count: Option<u64>,
}

impl Resolved {
    /// Requests in flight at most, in total.
    pub fn concurrency(&self) -> usize {
        self.window * self.connections
    }

    /// Whether a request gets an answer.
    pub fn answered(&self) -> bool {
        !(self.config.protocol == Protocol::Mqtt && self.config.mqtt.qos == QoS::AtMostOnce)
    }

    /// A short description of the protocol options.
    pub fn mode(&self) -> String {
        let c = &self.config;
        let mut mode = match c.protocol {
            Protocol::Http => "HTTP/1.1".to_owned(),
            Protocol::Coap => (if c.coap.confirmable { "CON" } else { "NON" }).to_owned(),
            Protocol::Mqtt => format!(
                "QoS {}, MQTT {}",
                c.mqtt.qos.as_u8(),
                if c.mqtt_version() == Version::V5 {
                    "5"
                } else {
                    "3.1.1"
                }
            ),
        };
        if c.batch > 1 {
            mode.push_str(&format!(", batches of {}", c.batch));
        }
        mode
    }
}

/// Splits a target into host, port and path.
fn parse_target(protocol: Protocol, text: &str) -> Result<(String, u16, Option<String>), SimError> {
    let bad = |reason: String| SimError::Target {
        target: text.to_owned(),
        reason,
    };
    if text.contains("://") {
        let url = reqwest::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let expected: &[&str] = match protocol {
            Protocol::Http => &["http"],
            Protocol::Coap => &["coap"],
            Protocol::Mqtt => &["mqtt", "tcp"],
        };
        if !expected.contains(&url.scheme()) {
            return Err(bad(format!(
                "the scheme `{}` does not fit --protocol {} (use {}://…)",
                url.scheme(),
                protocol.name(),
                expected[0]
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(match protocol {
            Protocol::Http => 80,
            other => other.default_port(),
        });
        let path = match url.path() {
            "" | "/" => None,
            p => Some(p.to_owned()),
        };
        return Ok((host, port, path));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port(), None));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip.to_string(), protocol.default_port(), None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse()
                .map_err(|_| bad(format!("`{port}` is not a port")))?;
            Ok((host.to_owned(), port, None))
        }
        None => Ok((text.to_owned(), protocol.default_port(), None)),
    }
}

impl SimConfig {
    /// Decides every default, checks the options together and resolves the target.
    pub async fn resolve(self) -> Result<Resolved, SimError> {
        self.scenario.validate()?;
        let protocol = self.protocol;
        let devices = self.device_count();
        if devices == 0 || devices > 1_000_000 {
            return Err(SimError::option("devices", "must be between 1 and 1000000"));
        }
        if self.batch == 0 || self.batch > 50_000 {
            return Err(SimError::option("batch", "must be between 1 and 50000"));
        }
        if self.batch > 1 && self.scenario.is_binary() {
            return Err(SimError::option(
                "batch",
                "binary payloads (camera) go one per request",
            ));
        }
        if self.idle > 100_000 {
            return Err(SimError::option("idle", "at most 100000"));
        }
        if let Credentials::PerDevice(tokens) = &self.credentials
            && tokens.len() < devices
        {
            return Err(SimError::option(
                "provision",
                format!("{} tokens for {devices} devices", tokens.len()),
            ));
        }
        if self.timeout.is_zero() {
            return Err(SimError::option("timeout", "must be more than 0"));
        }
        let text = self.target.clone().unwrap_or_else(|| match protocol {
            Protocol::Http => "http://127.0.0.1:8080".into(),
            Protocol::Coap => "coap://127.0.0.1:5683".into(),
            Protocol::Mqtt => "mqtt://127.0.0.1:1883".into(),
        });
        let (host, port, url_path) = parse_target(protocol, &text)?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| SimError::Target {
                target: text.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| SimError::Target {
                target: text.clone(),
                reason: "the name has no address".into(),
            })?;
        let path = self
            .path
            .clone()
            .or(url_path)
            .unwrap_or_else(|| match protocol {
                Protocol::Coap => "/events".into(),
                _ => "/api/v1/events".into(),
            });
        if !path.starts_with('/') {
            return Err(SimError::option("path", "must start with /"));
        }
        let topic = self.topic.clone().unwrap_or_else(|| {
            if self.scenario.is_binary() {
                "ingot/{device}/events/{sensor}".into()
            } else {
                "ingot/{device}/events".into()
            }
        });
        if topic.contains(['+', '#']) || topic.is_empty() {
            return Err(SimError::option(
                "topic",
                "must be a topic name (no wildcards)",
            ));
        }
        let authority = if port == 80 && protocol == Protocol::Http {
            host.clone()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let (connections, window) = match protocol {
            Protocol::Http => {
                let n = self
                    .connections
                    .or(self.concurrency)
                    .unwrap_or_else(|| devices.min(8));
                (n, 1)
            }
            Protocol::Coap | Protocol::Mqtt => {
                let n = self.connections.unwrap_or(devices);
                let default_window = if protocol == Protocol::Coap { 1 } else { 16 };
                let total = self.concurrency.unwrap_or(n * default_window);
                (n, total.div_ceil(n.max(1)))
            }
        };
        if connections == 0 || connections > 100_000 {
            return Err(SimError::option(
                "connections",
                "must be between 1 and 100000",
            ));
        }
        if connections > devices && protocol != Protocol::Http {
            return Err(SimError::option(
                "connections",
                format!(
                    "{connections} connections for {devices} devices: each connection sends for at least one device"
                ),
            ));
        }
        if window == 0 || window > crate::pending::MAX_CAPACITY / 2 {
            return Err(SimError::option(
                "concurrency",
                format!(
                    "between 1 and {} per connection",
                    crate::pending::MAX_CAPACITY / 2
                ),
            ));
        }
        let natural = |interval: Duration| devices as f64 / interval.as_secs_f64();
        let rate = match self.rate {
            Rate::Max => None,
            Rate::PerSecond(r) if r > 0.0 && r.is_finite() => Some(r),
            Rate::PerSecond(_) => {
                return Err(SimError::option("rate", "must be a positive number"));
            }
            Rate::Interval(interval) if !interval.is_zero() => Some(natural(interval)),
            Rate::Interval(_) => return Err(SimError::option("interval", "must be more than 0")),
            Rate::Natural => self.scenario.default_interval().map(natural),
        };
        let count = self.count.or(if self.duration.is_none() {
            self.scenario.default_count()
        } else {
            None
        });
        Ok(Resolved {
            target: Target {
                addr,
                authority,
                path,
                topic,
            },
            devices,
            connections,
            window,
            rate,
            count,
            config: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ScenarioConfig, ScenarioKind};

    #[test]
    fn targets_parse_in_every_form() {
        let p = |proto, text| parse_target(proto, text).unwrap();
        assert_eq!(
            p(Protocol::Http, "http://localhost:8080/x/y"),
            ("localhost".into(), 8080, Some("/x/y".into()))
        );
        assert_eq!(
            p(Protocol::Coap, "coap://127.0.0.1"),
            ("127.0.0.1".into(), 5683, None)
        );
        assert_eq!(
            p(Protocol::Mqtt, "127.0.0.1:1884"),
            ("127.0.0.1".into(), 1884, None)
        );
        assert_eq!(
            p(Protocol::Mqtt, "broker.local"),
            ("broker.local".into(), 1883, None)
        );
        assert_eq!(p(Protocol::Coap, "::1"), ("::1".into(), 5683, None));
        assert!(parse_target(Protocol::Coap, "http://x").is_err());
    }

    #[tokio::test]
    async fn defaults_follow_the_protocol() {
        let r = SimConfig::new(ScenarioConfig::new(ScenarioKind::Vehicles), Protocol::Coap)
            .resolve()
            .await
            .unwrap();
        assert_eq!((r.devices, r.connections, r.window), (10, 10, 1));
        assert_eq!(r.rate, Some(5.0), "10 vehicles every 2 s");
        assert_eq!(r.target.path, "/events");
        let r = SimConfig::new(ScenarioConfig::new(ScenarioKind::Probe), Protocol::Http)
            .resolve()
            .await
            .unwrap();
        assert_eq!(r.count, Some(10));
        assert_eq!(r.rate, None);
        assert_eq!(r.target.authority, "127.0.0.1:8080");
        let mut c = SimConfig::new(ScenarioConfig::new(ScenarioKind::Flat), Protocol::Mqtt);
        c.devices = Some(64);
        c.concurrency = Some(4096);
        let r = c.resolve().await.unwrap();
        assert_eq!((r.connections, r.window), (64, 64));
        let mut c = SimConfig::new(ScenarioConfig::new(ScenarioKind::Camera), Protocol::Http);
        c.batch = 10;
        assert!(c.resolve().await.is_err());
    }
}
