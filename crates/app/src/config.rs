//! The server's configuration: command-line flags, `INGOT_*` environment variables and a
//! TOML file, in that order of precedence, over built-in defaults.
//!
//! Every flag `--foo-bar` is also the variable `INGOT_FOO_BAR` and the top-level TOML key
//! `foo_bar`; tuning without a flag lives in the TOML sections `[log]`, `[store]` and
//! `[limits]`. `config/ingot.example.toml` lists every key with its default. All problems
//! are reported together, each with the key it concerns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ingot_adapter_coap::CoapConfig;
use ingot_adapter_mqtt::MqttConfig;
use ingot_core::Limits;
use ingot_log::SyncPolicy;
use serde::Deserialize;

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `ingot serve`'s flags. Defaults are applied after the file is read, so every field is
/// optional here.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys: see `ingot generate-config`).
    #[arg(long, env = "INGOT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the event log, the store and the admin key [default: ./ingot-data].
    #[arg(long, env = "INGOT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// HTTP listener: REST API, HTTP ingest, UI, /metrics, /healthz, /readyz [default: 0.0.0.0:8080].
    #[arg(long, env = "INGOT_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// CoAP listener (UDP): `POST /events`, `GET /events`, observable `/events/latest`
    /// [default: 0.0.0.0:5683].
    #[arg(long, env = "INGOT_COAP_ADDR", value_name = "ADDR")]
    pub coap_addr: Option<SocketAddr>,

    /// MQTT 3.1.1 and 5 listener (TCP): devices publish to `ingot/<device>/events`
    /// [default: 0.0.0.0:1883]. TLS (8883) is configured under `[mqtt]`.
    #[arg(long, env = "INGOT_MQTT_ADDR", value_name = "ADDR")]
    pub mqtt_addr: Option<SocketAddr>,

    /// Let devices without credentials write into tenant `default` (development only).
    #[arg(long, env = "INGOT_ALLOW_ANONYMOUS", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub allow_anonymous: Option<bool>,

    /// When acknowledged events are fsynced: `per-batch` (every group commit, before the
    /// acknowledgement; survives power loss), an interval such as `10ms` (acknowledge after
    /// the write; survives a crash of the process), or `never` [default: per-batch].
    #[arg(long, env = "INGOT_FSYNC", value_name = "POLICY")]
    pub fsync: Option<String>,

    /// How long a stop (SIGTERM, Ctrl-C) may take to drain before the process gives up
    /// and exits non-zero [default: 25s].
    #[arg(long, env = "INGOT_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,

    /// Diagnostics format [default: text].
    #[arg(long, env = "INGOT_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Diagnostics level or per-target directives, e.g. `debug` or `info,ingot_log=debug`
    /// [default: info].
    #[arg(long, env = "INGOT_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The TOML file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<String>,
    coap_addr: Option<String>,
    mqtt_addr: Option<String>,
    allow_anonymous: Option<bool>,
    fsync: Option<String>,
    shutdown_grace: Option<String>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    coap: CoapConfig,
    #[serde(default)]
    mqtt: MqttConfig,
}

/// `[log]`: the embedded durable log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Partitions per topic (devices are spread over them; each has its own writer thread).
    pub partitions: u32,
    /// Segment file size before rolling to a new one.
    pub segment_bytes: u64,
    /// Delete log segments older than this (`7d`); empty for never. Segments the store
    /// writer has not consumed are never deleted.
    pub retention_age: String,
    /// Keep at most this many bytes per partition; 0 for no limit.
    pub retention_bytes: u64,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            partitions: 4,
            segment_bytes: 64 << 20,
            retention_age: "7d".into(),
            retention_bytes: 0,
        }
    }
}

/// `[store]`: the event store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Most events the store writer commits in one transaction.
    pub writer_batch: usize,
    /// Delete events older than this (`90d`) in tenants without their own retention;
    /// empty keeps everything.
    pub retention: String,
    /// How often retention looks for expired events.
    pub retention_check: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            writer_batch: 10_000,
            retention: String::new(),
            retention_check: "10m".into(),
        }
    }
}

/// The resolved configuration of `ingot serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Where everything is kept.
    pub data_dir: PathBuf,
    /// HTTP listener.
    pub http_addr: SocketAddr,
    /// CoAP listener.
    pub coap_addr: SocketAddr,
    /// MQTT listener.
    pub mqtt_addr: SocketAddr,
    /// Anonymous ingest into `default`.
    pub allow_anonymous: bool,
    /// Durability of acknowledgements.
    pub fsync: SyncPolicy,
    /// Drain deadline.
    pub shutdown_grace: Duration,
    /// Diagnostics format.
    pub log_format: LogFormat,
    /// Diagnostics directives.
    pub log_level: String,
    /// The durable log.
    pub log: LogSection,
    /// Log retention by age, parsed from `log.retention_age`.
    pub retention_age: Option<Duration>,
    /// Store retention for tenants without their own, parsed from `store.retention`.
    pub store_retention: Option<Duration>,
    /// How often store retention runs, parsed from `store.retention_check`.
    pub store_retention_check: Duration,
    /// The store.
    pub store: StoreSection,
    /// Size limits.
    pub limits: Limits,
    /// The CoAP endpoint's tuning (`[coap]`).
    pub coap: CoapConfig,
    /// The MQTT broker's tuning and TLS (`[mqtt]`).
    pub mqtt: MqttConfig,
}

/// Every problem found in the configuration, each naming its key.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub use ingot_core::time::parse_duration;

fn parse_fsync(text: &str) -> Result<SyncPolicy, String> {
    match text {
        "per-batch" => Ok(SyncPolicy::PerBatch),
        "never" => Ok(SyncPolicy::Never),
        other => match parse_duration(other) {
            Ok(d) if !d.is_zero() => Ok(SyncPolicy::Interval(d)),
            _ => Err(format!(
                "`{other}` is not per-batch, never, or an interval such as 10ms"
            )),
        },
    }
}

/// The commented example configuration, identical to the defaults.
pub const EXAMPLE: &str = include_str!("../../../config/ingot.example.toml");

impl ServeConfig {
    /// Resolves flags (already merged with the environment by clap) over the file named by
    /// `--config` (if any) over the defaults.
    pub fn load(args: &ServeArgs) -> Result<ServeConfig, ConfigErrors> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        resolve(args, file)
    }

    /// Resolves a TOML text with no flags (for tests and `generate-config`).
    pub fn from_toml(text: &str) -> Result<ServeConfig, ConfigErrors> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        resolve(&ServeArgs::default(), file)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![format!(
            "cannot read config file {}: {e}",
            path.display()
        )])
    })?;
    toml::from_str(&text).map_err(|e| ConfigErrors(vec![format!("{}: {e}", path.display())]))
}

fn resolve(args: &ServeArgs, file: FileConfig) -> Result<ServeConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut addr =
        |key: &str, flag: Option<SocketAddr>, text: Option<String>, default: &str| -> SocketAddr {
            if let Some(a) = flag {
                return a;
            }
            let text = text.unwrap_or_else(|| default.to_owned());
            text.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{key}: `{text}` is not an address like 0.0.0.0:8080"
                ));
                SocketAddr::from(([0, 0, 0, 0], 0))
            })
        };
    let http_addr = addr("http_addr", args.http_addr, file.http_addr, "0.0.0.0:8080");
    let coap_addr = addr("coap_addr", args.coap_addr, file.coap_addr, "0.0.0.0:5683");
    let mqtt_addr = addr("mqtt_addr", args.mqtt_addr, file.mqtt_addr, "0.0.0.0:1883");

    let fsync_text = args
        .fsync
        .clone()
        .or(file.fsync)
        .unwrap_or_else(|| "per-batch".into());
    let fsync = parse_fsync(&fsync_text).unwrap_or_else(|e| {
        errors.push(format!("fsync: {e}"));
        SyncPolicy::PerBatch
    });
    let grace_text = args
        .shutdown_grace
        .clone()
        .or(file.shutdown_grace)
        .unwrap_or_else(|| "25s".into());
    let shutdown_grace = parse_duration(&grace_text).unwrap_or_else(|e| {
        errors.push(format!("shutdown_grace: {e}"));
        Duration::ZERO
    });
    let retention_age = match file.log.retention_age.trim() {
        "" => None,
        text => match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(format!("log.retention_age: {e}"));
                None
            }
        },
    };
    let store_retention = match file.store.retention.trim() {
        "" => None,
        text => match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(format!("store.retention: {e}"));
                None
            }
        },
    };
    let store_retention_check = match parse_duration(&file.store.retention_check) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            errors.push("store.retention_check: must be more than 0".into());
            Duration::ZERO
        }
        Err(e) => {
            errors.push(format!("store.retention_check: {e}"));
            Duration::ZERO
        }
    };
    let log_level = args
        .log_level
        .clone()
        .or(file.log_level)
        .unwrap_or_else(|| "info".into());
    if crate::telemetry::filter(&log_level).is_err() {
        errors.push(format!("log_level: `{log_level}` is not a level (error, warn, info, debug, trace) or a directive list"));
    }
    if !(1..=1000).contains(&file.log.partitions) {
        errors.push(format!(
            "log.partitions: {} is not between 1 and 1000",
            file.log.partitions
        ));
    }
    if file.log.segment_bytes < 1 << 20 {
        errors.push(format!(
            "log.segment_bytes: {} is less than 1 MiB",
            file.log.segment_bytes
        ));
    }
    if !(1..=100_000).contains(&file.store.writer_batch) {
        errors.push(format!(
            "store.writer_batch: {} is not between 1 and 100000",
            file.store.writer_batch
        ));
    }
    let limits = &file.limits;
    for (key, value) in [
        ("limits.max_body_bytes", limits.max_body_bytes),
        ("limits.max_event_bytes", limits.max_event_bytes),
        ("limits.max_binary_bytes", limits.max_binary_bytes),
        ("limits.max_batch_events", limits.max_batch_events),
    ] {
        if value == 0 {
            errors.push(format!("{key}: must be more than 0"));
        }
    }
    if limits.max_event_bytes > limits.max_body_bytes {
        errors.push("limits.max_event_bytes: is larger than limits.max_body_bytes".into());
    }
    if let Err(coap) = file.coap.validate() {
        errors.extend(coap.0);
    }
    if let Err(mqtt) = file.mqtt.validate() {
        errors.extend(mqtt);
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(ServeConfig {
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("ingot-data")),
        http_addr,
        coap_addr,
        mqtt_addr,
        allow_anonymous: args
            .allow_anonymous
            .or(file.allow_anonymous)
            .unwrap_or(false),
        fsync,
        shutdown_grace,
        log_format: args
            .log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Text),
        log_level,
        log: file.log,
        retention_age,
        store_retention,
        store_retention_check,
        store: file.store,
        limits: file.limits,
        coap: file.coap,
        mqtt: file.mqtt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = ServeConfig::from_toml(EXAMPLE).unwrap();
        let defaults = ServeConfig::from_toml("").unwrap();
        assert_eq!(example, defaults);
        assert_eq!(defaults.http_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(defaults.data_dir, PathBuf::from("ingot-data"));
        assert_eq!(defaults.fsync, SyncPolicy::PerBatch);
        assert_eq!(
            defaults.retention_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert!(!defaults.allow_anonymous);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingot.toml");
        std::fs::write(
            &path,
            "http_addr = \"127.0.0.1:9000\"\nallow_anonymous = true\nfsync = \"10ms\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            http_addr: Some("127.0.0.1:9100".parse().unwrap()),
            allow_anonymous: Some(false),
            ..ServeArgs::default()
        };
        let config = ServeConfig::load(&args).unwrap();
        assert_eq!(config.http_addr, "127.0.0.1:9100".parse().unwrap());
        assert!(!config.allow_anonymous);
        assert_eq!(
            config.fsync,
            SyncPolicy::Interval(Duration::from_millis(10))
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = "http_addr = \"nowhere\"\nfsync = \"sometimes\"\nshutdown_grace = \"5 minutes\"\n\
                    [log]\npartitions = 0\nretention_age = \"7 days\"\n[limits]\nmax_batch_events = 0\n";
        let errors = ServeConfig::from_toml(text).unwrap_err().0;
        for key in [
            "http_addr:",
            "fsync:",
            "shutdown_grace:",
            "log.partitions:",
            "log.retention_age:",
            "limits.max_batch_events:",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(key)),
                "{key} missing from {errors:?}"
            );
        }
        let unknown = ServeConfig::from_toml("htp_addr = \"x\"\n").unwrap_err().0;
        assert!(
            unknown[0].contains("unknown field `htp_addr`"),
            "{unknown:?}"
        );
    }
}
