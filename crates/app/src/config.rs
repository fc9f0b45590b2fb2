//! The server's configuration: command-line flags, `INGOT_*` environment variables and a
//! TOML file, in that order of precedence, over built-in defaults.
//!
//! Every flag `--foo-bar` is also the variable `INGOT_FOO_BAR` and the top-level TOML key
//! `foo_bar`; tuning without a flag lives in the TOML sections `[log]`, `[store]`,
//! `[limits]`, `[nats]` and `[postgres]`. One exception: `--log` and `--store` (`INGOT_LOG`,
//! `INGOT_STORE`) are `log_url` and `store_url` in the file, because `[log]` and `[store]`
//! are sections. `config/ingot.example.toml` lists every key with its default. All problems
//! are reported together, each with the key it concerns.
//!
//! # Modes
//!
//! With no `log_url` and no `store_url`, one process keeps the log and a SQLite store in
//! the data directory (embedded). With `log_url = "nats://..."` and
//! `store_url = "postgres://..."`, replicas share NATS JetStream and PostgreSQL, and
//! `roles` chooses what each one does (`docs/scale-out.md`): a replica without every role
//! needs both, since what it leaves to other replicas must reach them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ingot_adapter_coap::CoapConfig;
use ingot_adapter_mqtt::MqttConfig;
use ingot_core::Limits;
use ingot_log::SyncPolicy;
use ingot_log_nats::{NatsLogConfig, NatsUrl};
use ingot_store_postgres::PostgresOptions;
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

    /// The durable log shared by replicas: NATS JetStream at
    /// `nats://[user:password@]host:4222[,host:4222...]` (or `tls://`); tuning under `[nats]`
    /// [default: the embedded log in the data directory]. TOML key: `log_url`.
    #[arg(long = "log", env = "INGOT_LOG", value_name = "URL")]
    pub log_url: Option<String>,

    /// The event store shared by replicas: PostgreSQL at
    /// `postgres://user:password@host:5432/dbname`; tuning under `[postgres]`
    /// [default: SQLite in the data directory]. TOML key: `store_url`.
    #[arg(long = "store", env = "INGOT_STORE", value_name = "URL")]
    pub store_url: Option<String>,

    /// What this replica does, comma-separated: `ingest` (HTTP, CoAP and MQTT ingest),
    /// `store-writer` (log to store, retention), `query` (query and admin API, UI); or
    /// `all`. Health, readiness and metrics are always served [default: all].
    #[arg(long, env = "INGOT_ROLES", value_name = "ROLES")]
    pub roles: Option<String>,

    /// PEM certificate chain: the HTTP listener serves HTTPS, and MQTT also listens with
    /// TLS (`[mqtt] tls_addr`, 8883) unless `[mqtt]` names its own files. Needs `--tls-key`;
    /// `ingot cert self-signed` writes a development pair.
    #[arg(long, env = "INGOT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "INGOT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Keep the plain (unencrypted) MQTT listener open next to the TLS one; `false` needs
    /// TLS and leaves only TLS listeners for HTTP and MQTT [default: true].
    #[arg(long = "plain", env = "INGOT_PLAIN", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub plain_listeners: Option<bool>,

    /// Run a small simulated fleet in-process (weather stations and vehicles over HTTP
    /// ingest into tenant `default`) so the dashboard is alive at first start.
    #[arg(long, env = "INGOT_DEMO", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub demo: Option<bool>,
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
    log_url: Option<String>,
    store_url: Option<String>,
    roles: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    plain_listeners: Option<bool>,
    demo: Option<bool>,
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
    #[serde(default)]
    nats: NatsSection,
    #[serde(default)]
    postgres: PostgresSection,
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
            writer_batch: 50_000,
            retention: String::new(),
            retention_check: "10m".into(),
        }
    }
}

/// `[nats]`: the NATS JetStream log (with `log_url = "nats://..."`). Partitions and
/// retention come from `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// Replicas of each partition's stream: 1 on a single server, 3 in a cluster.
    pub replicas: usize,
    /// Streams are `<stream_prefix>_<topic>_<partition>`.
    pub stream_prefix: String,
    /// Subjects are `<subject_prefix>.<topic>.<partition>`.
    pub subject_prefix: String,
    /// How long JetStream remembers message ids to drop retried publishes.
    pub duplicate_window: String,
    /// A message handed to a store writer that dies is redelivered after this.
    pub ack_wait: String,
    /// Messages per partition handed out and not yet acknowledged, over all writers.
    pub max_ack_pending: i64,
    /// An ingest fails (503) if JetStream has not acknowledged within this.
    pub publish_timeout: String,
    /// JetStream API requests time out after this.
    pub request_timeout: String,
}

impl Default for NatsSection {
    fn default() -> Self {
        let d = NatsLogConfig::default();
        NatsSection {
            replicas: d.replicas,
            stream_prefix: d.stream_prefix,
            subject_prefix: d.subject_prefix,
            duplicate_window: "30s".into(),
            ack_wait: "30s".into(),
            max_ack_pending: d.max_ack_pending,
            publish_timeout: "15s".into(),
            request_timeout: "5s".into(),
        }
    }
}

/// `[postgres]`: the PostgreSQL store (with `store_url = "postgres://..."`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSection {
    /// Keep the tables in this schema instead of `public` ("" for `public`).
    pub schema: String,
    /// Connections this replica opens at most.
    pub pool_size: usize,
    /// How long opening one connection may take.
    pub connect_timeout: String,
    /// Make `events` a TimescaleDB hypertable when the extension is available.
    pub timescale: bool,
}

impl Default for PostgresSection {
    fn default() -> Self {
        let d = PostgresOptions::default();
        PostgresSection {
            schema: String::new(),
            pool_size: d.pool_size,
            connect_timeout: "10s".into(),
            timescale: d.timescale,
        }
    }
}

/// What a replica does (`--roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// HTTP, CoAP and MQTT ingest into the log.
    pub ingest: bool,
    /// The store writer (log to store) and store retention.
    pub store_writer: bool,
    /// The query and admin API and the UI.
    pub query: bool,
}

impl Roles {
    /// Everything: one server on its own.
    pub const ALL: Roles = Roles {
        ingest: true,
        store_writer: true,
        query: true,
    };

    /// Parses `all` or a comma-separated list of `ingest`, `store-writer`, `query`.
    pub fn parse(text: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            store_writer: false,
            query: false,
        };
        for name in text.split(',').map(str::trim) {
            match name {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "store-writer" => roles.store_writer = true,
                "query" => roles.query = true,
                "" => return Err(format!("`{text}` has an empty role")),
                other => {
                    return Err(format!(
                        "`{other}` is not a role (ingest, store-writer, query, all)"
                    ));
                }
            }
        }
        Ok(roles)
    }

    /// The roles as `--roles` takes them (`all` when every one).
    pub fn names(&self) -> String {
        if *self == Roles::ALL {
            return "all".into();
        }
        [
            (self.ingest, "ingest"),
            (self.store_writer, "store-writer"),
            (self.query, "query"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// Where the log is.
#[derive(Clone, PartialEq)]
pub enum LogBackend {
    /// Segment files in `<data_dir>/log`.
    Embedded,
    /// NATS JetStream.
    Nats(Box<NatsLogConfig>),
}

impl std::fmt::Debug for LogBackend {
    // The URL may hold credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogBackend::Embedded => f.write_str("Embedded"),
            LogBackend::Nats(c) => write!(
                f,
                "Nats({}, partitions {}, replicas {})",
                NatsUrl::parse(&c.url).map_or_else(|_| "?".into(), |u| u.redacted()),
                c.partitions,
                c.replicas
            ),
        }
    }
}

/// Where the store is.
#[derive(Clone, PartialEq)]
pub enum StoreBackend {
    /// SQLite in `<data_dir>/store.db`.
    Embedded,
    /// PostgreSQL.
    Postgres {
        /// `postgres://user:password@host:port/dbname`.
        url: String,
        /// Pool and schema.
        options: PostgresOptions,
    },
}

impl std::fmt::Debug for StoreBackend {
    // The URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Embedded => f.write_str("Embedded"),
            StoreBackend::Postgres { url, options } => {
                write!(f, "Postgres({}, {options:?})", redact_url(url))
            }
        }
    }
}

/// `url` without its password (`scheme://user:***@host...`), for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((info, host)) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    // Query parameters may hold a password too (`?password=`).
    let path = path.split('?').next().unwrap_or_default();
    format!("{scheme}://{host}{path}")
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
    /// Where the log is (`log_url`, `[nats]`).
    pub log_backend: LogBackend,
    /// Where the store is (`store_url`, `[postgres]`).
    pub store_backend: StoreBackend,
    /// What this replica does.
    pub roles: Roles,
    /// HTTPS instead of HTTP: certificate chain and private key (PEM).
    pub http_tls: Option<(PathBuf, PathBuf)>,
    /// Whether the plain MQTT listener is open (false only with TLS).
    pub plain_listeners: bool,
    /// Run the in-process demo fleet.
    pub demo: bool,
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
    if !(1..=1_000_000).contains(&file.store.writer_batch) {
        errors.push(format!(
            "store.writer_batch: {} is not between 1 and 1000000",
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
    let roles_text = args
        .roles
        .clone()
        .or(file.roles)
        .unwrap_or_else(|| "all".into());
    let roles = Roles::parse(&roles_text).unwrap_or_else(|e| {
        errors.push(format!("roles: {e}"));
        Roles::ALL
    });
    let log_url = args
        .log_url
        .clone()
        .or(file.log_url)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let log_backend = if log_url.is_empty() {
        LogBackend::Embedded
    } else {
        match nats_config(&log_url, &file.nats, &file.log, retention_age) {
            Ok(config) => LogBackend::Nats(Box::new(config)),
            Err(problems) => {
                errors.extend(problems);
                LogBackend::Embedded
            }
        }
    };
    let store_url = args
        .store_url
        .clone()
        .or(file.store_url)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let store_backend = if store_url.is_empty() {
        StoreBackend::Embedded
    } else {
        match postgres_options(&store_url, &file.postgres) {
            Ok(options) => StoreBackend::Postgres {
                url: store_url.clone(),
                options,
            },
            Err(problems) => {
                errors.extend(problems);
                StoreBackend::Embedded
            }
        }
    };
    if roles != Roles::ALL {
        let roles = roles.names();
        if log_url.is_empty() && roles != "query" {
            errors.push(format!(
                "roles: `{roles}` needs a log the other replicas share: set log_url (--log nats://...)"
            ));
        }
        if store_url.is_empty() {
            errors.push(format!(
                "roles: `{roles}` needs a store the other replicas share: set store_url (--store postgres://...)"
            ));
        }
    }
    let tls_cert = args.tls_cert.clone().or(file.tls_cert);
    let tls_key = args.tls_key.clone().or(file.tls_key);
    let http_tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            errors.push("tls_key: needed with tls_cert".into());
            None
        }
        (None, Some(_)) => {
            errors.push("tls_cert: needed with tls_key".into());
            None
        }
    };
    let mut mqtt = file.mqtt;
    if let Some((cert, key)) = &http_tls
        && !mqtt.tls_enabled()
    {
        mqtt.tls_cert = Some(cert.clone());
        mqtt.tls_key = Some(key.clone());
    }
    let plain_listeners = args
        .plain_listeners
        .or(file.plain_listeners)
        .unwrap_or(true);
    if !plain_listeners && (http_tls.is_none() || !mqtt.tls_enabled()) {
        errors.push(
            "plain_listeners: false needs TLS: set tls_cert and tls_key (--tls-cert, --tls-key)"
                .into(),
        );
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
        mqtt,
        log_backend,
        store_backend,
        roles,
        http_tls,
        plain_listeners,
        demo: args.demo.or(file.demo).unwrap_or(false),
    })
}

/// The NATS log's configuration from `log_url`, `[nats]` and `[log]`; every problem with
/// its key.
fn nats_config(
    url: &str,
    nats: &NatsSection,
    log: &LogSection,
    retention_age: Option<Duration>,
) -> Result<NatsLogConfig, Vec<String>> {
    let mut problems = Vec::new();
    if let Err(e) = NatsUrl::parse(url) {
        problems.push(format!("log_url: {e}"));
    }
    let mut duration = |key: &str, text: &str| match parse_duration(text) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("nats.{key}: {e}"));
            Duration::ZERO
        }
    };
    let config = NatsLogConfig {
        url: url.to_owned(),
        partitions: log.partitions,
        replicas: nats.replicas,
        stream_prefix: nats.stream_prefix.clone(),
        subject_prefix: nats.subject_prefix.clone(),
        max_age: retention_age,
        max_bytes_per_partition: (log.retention_bytes > 0).then_some(log.retention_bytes),
        duplicate_window: duration("duplicate_window", &nats.duplicate_window),
        ack_wait: duration("ack_wait", &nats.ack_wait),
        max_ack_pending: nats.max_ack_pending,
        publish_timeout: duration("publish_timeout", &nats.publish_timeout),
        request_timeout: duration("request_timeout", &nats.request_timeout),
        connection_name: format!("ingot {}", env!("CARGO_PKG_VERSION")),
    };
    if problems.is_empty()
        && let Err(e) = config.validate()
    {
        // The URL was checked above; these are the `[nats]` values.
        problems.push(format!(
            "nats: {}",
            e.to_string().trim_start_matches("invalid log request: ")
        ));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// The PostgreSQL store's options from `store_url` and `[postgres]`.
fn postgres_options(url: &str, pg: &PostgresSection) -> Result<PostgresOptions, Vec<String>> {
    let mut problems = Vec::new();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        problems.push(format!(
            "store_url: `{}` is not a postgres:// URL",
            redact_url(url)
        ));
    }
    if !(1..=1000).contains(&pg.pool_size) {
        problems.push(format!(
            "postgres.pool_size: {} is not between 1 and 1000",
            pg.pool_size
        ));
    }
    let connect_timeout = match parse_duration(&pg.connect_timeout) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            problems.push("postgres.connect_timeout: must be more than 0".into());
            Duration::ZERO
        }
        Err(e) => {
            problems.push(format!("postgres.connect_timeout: {e}"));
            Duration::ZERO
        }
    };
    if problems.is_empty() {
        Ok(PostgresOptions {
            pool_size: pg.pool_size,
            schema: (!pg.schema.trim().is_empty()).then(|| pg.schema.trim().to_owned()),
            connect_timeout,
            timescale: pg.timescale,
        })
    } else {
        Err(problems)
    }
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

    #[test]
    fn scale_out_backends_and_roles() {
        let defaults = ServeConfig::from_toml("").unwrap();
        assert_eq!(defaults.roles, Roles::ALL);
        assert_eq!(defaults.log_backend, LogBackend::Embedded);
        assert_eq!(defaults.store_backend, StoreBackend::Embedded);

        let text = "log_url = \"nats://ingot:secret@n1:4222,n2:4222\"\n\
                    store_url = \"postgres://ingot:secret@pg:5432/ingot\"\n\
                    roles = \"ingest, query\"\n\
                    [log]\npartitions = 8\nretention_age = \"2d\"\n\
                    [nats]\nreplicas = 3\nack_wait = \"10s\"\n\
                    [postgres]\nschema = \"ingot_a\"\npool_size = 4\n";
        let config = ServeConfig::from_toml(text).unwrap();
        assert_eq!(
            config.roles,
            Roles {
                ingest: true,
                store_writer: false,
                query: true
            }
        );
        assert_eq!(config.roles.names(), "ingest,query");
        let LogBackend::Nats(nats) = &config.log_backend else {
            panic!("{:?}", config.log_backend)
        };
        assert_eq!(nats.partitions, 8, "partitions come from [log]");
        assert_eq!(nats.replicas, 3);
        assert_eq!(nats.ack_wait, Duration::from_secs(10));
        assert_eq!(nats.max_age, Some(Duration::from_secs(2 * 86_400)));
        let StoreBackend::Postgres { options, .. } = &config.store_backend else {
            panic!("{:?}", config.store_backend)
        };
        assert_eq!(options.schema.as_deref(), Some("ingot_a"));
        assert_eq!(options.pool_size, 4);
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");

        // Flags (and so INGOT_LOG, INGOT_STORE, INGOT_ROLES) win over the file.
        let args = ServeArgs {
            roles: Some("store-writer".into()),
            log_url: Some("nats://other:4222".into()),
            ..ServeArgs::default()
        };
        let file: FileConfig = toml::from_str(text).unwrap();
        let config = resolve(&args, file).unwrap();
        assert_eq!(config.roles.names(), "store-writer");
        assert!(matches!(&config.log_backend, LogBackend::Nats(n) if n.url == "nats://other:4222"));
    }

    #[test]
    fn roles_need_shared_backends_and_bad_values_are_named() {
        let errors = ServeConfig::from_toml("roles = \"ingest\"\n")
            .unwrap_err()
            .0;
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("roles:") && e.contains("log_url")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("roles:") && e.contains("store_url")),
            "{errors:?}"
        );
        // A query replica needs only the store.
        let errors = ServeConfig::from_toml("roles = \"query\"\n").unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            ServeConfig::from_toml("roles = \"query\"\nstore_url = \"postgres://u:p@h/db\"\n")
                .is_ok()
        );

        let text = "roles = \"ingest,reader\"\nlog_url = \"http://n1:4222\"\n\
                    store_url = \"mysql://u:hunter2@h/db\"\n\
                    [nats]\nreplicas = 7\nduplicate_window = \"forever\"\n\
                    [postgres]\npool_size = 0\n";
        let errors = ServeConfig::from_toml(text).unwrap_err().0;
        for key in [
            "roles:",
            "log_url:",
            "nats.duplicate_window:",
            "store_url:",
            "postgres.pool_size:",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(key)),
                "{key} missing from {errors:?}"
            );
        }
        assert!(!errors.join(" ").contains("hunter2"), "{errors:?}");
        let errors = ServeConfig::from_toml("log_url = \"nats://n1:4222\"\n[nats]\nreplicas = 7\n")
            .unwrap_err()
            .0;
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("nats:") && e.contains("replicas")),
            "{errors:?}"
        );
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/db?sslmode=disable&password=x"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("nats://tok@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_url("host=h password=x"), "<not a URL>");
    }
}
