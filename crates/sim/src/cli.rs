//! `ingot sim`: the command line of the simulator (the `ingot` binary's subcommand).
//!
//! Exit codes: 0 when the run finished without errors, 3 when it finished with some
//! (refusals, timeouts, lost connections), 2 for bad options, 1 when it could not run
//! (no connection, provisioning failed). The report goes to stdout (a table, or JSON with
//! `--json`); the progress line to stderr, only on a terminal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ingot_codec_mqtt::{QoS, Version};
use ingot_core::error::{ErrorExt as _, ErrorKind};
use tokio_util::sync::CancellationToken;

use crate::config::{Credentials, Protocol, Rate, SimConfig};
use crate::error::SimError;
use crate::report::Report;
use crate::scenario::{
    ProbeOptions, Resolution, ScenarioConfig, ScenarioKind, VehicleOptions, WeatherOptions,
};

fn duration(text: &str) -> Result<Duration, String> {
    ingot_core::time::parse_duration(text)
}

/// MQTT protocol versions on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[value(name = "3.1.1")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

/// Simulate devices and generate load against Ingot or any CoAP, MQTT or HTTP endpoint.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  ingot sim probe --sender demoMemoria --origin probe1 --kind temperature --start 15 --factor 1.1 --count 10 --provision
  ingot sim weather --cities seville,london,sydney,new-york --protocol mqtt --provision
  ingot sim vehicles --devices 500 --protocol coap --token \"$WRITER_KEY\" --duration 10m
  ingot sim flat --protocol mqtt --target 127.0.0.1:1883 --qos 1 --devices 64 --concurrency 4096 --max --duration 10s")]
pub struct SimArgs {
    /// What the devices send.
    #[arg(value_enum)]
    pub scenario: ScenarioKind,

    /// Protocol to the target.
    #[arg(long, value_enum, default_value = "http")]
    pub protocol: Protocol,
    /// Where to send: a URL (http://…, coap://…, mqtt://…) or host:port [default: this machine, the protocol's default port].
    #[arg(long)]
    pub target: Option<String>,
    /// HTTP or CoAP path [default: /api/v1/events, /events].
    #[arg(long)]
    pub path: Option<String>,
    /// MQTT topic, with {device} and {sensor} [default: ingot/{device}/events].
    #[arg(long)]
    pub topic: Option<String>,

    /// Simulated devices [default: the scenario's].
    #[arg(long, help_heading = "Load")]
    pub devices: Option<usize>,
    /// Connections (CoAP: UDP sockets) [default: one per device for MQTT and CoAP, 8 for HTTP].
    #[arg(long, help_heading = "Load")]
    pub connections: Option<usize>,
    /// Requests awaiting an answer at once, in total [default: CoAP 1 and MQTT 16 per connection, HTTP 1 per connection].
    #[arg(long, help_heading = "Load")]
    pub concurrency: Option<usize>,
    /// Events per second in total, paced precisely.
    #[arg(long, help_heading = "Load", conflicts_with_all = ["max", "interval"])]
    pub rate: Option<f64>,
    /// As fast as the connections and --concurrency allow.
    #[arg(long, help_heading = "Load", conflicts_with = "interval")]
    pub max: bool,
    /// Each device sends once per this interval (e.g. 2s) [default: the scenario's].
    #[arg(long, help_heading = "Load", value_parser = duration)]
    pub interval: Option<Duration>,
    /// Stop after this long (e.g. 30s, 10m).
    #[arg(long, help_heading = "Load", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events [default: 10 for probe; others run until --duration or Ctrl-C].
    #[arg(long, help_heading = "Load")]
    pub count: Option<u64>,
    /// How long to wait for an answer, and for the last answers at the end.
    #[arg(long, help_heading = "Load", value_parser = duration, default_value = "5s")]
    pub timeout: Duration,
    /// Events per request: HTTP NDJSON, CoAP JSON array, MQTT NDJSON.
    #[arg(long, help_heading = "Load", default_value_t = 1)]
    pub batch: usize,
    /// Idle clients to connect (CoAP: to make known with one request) before the load, held open during it.
    #[arg(long, help_heading = "Load", default_value_t = 0)]
    pub idle: usize,
    /// Runtime threads [default: one per core].
    #[arg(long, help_heading = "Load")]
    pub threads: Option<usize>,
    /// Seed of the devices' randomness.
    #[arg(long, help_heading = "Load", default_value_t = 1)]
    pub seed: u64,

    /// A device token or API key for every device.
    #[arg(
        long,
        help_heading = "Credentials",
        env = "INGOT_SIM_TOKEN",
        hide_env_values = true,
        conflicts_with = "provision"
    )]
    pub token: Option<String>,
    /// Create the devices with the admin API first and use their tokens.
    #[arg(long, help_heading = "Credentials", conflicts_with = "tokens_file")]
    pub provision: bool,
    /// Device tokens, one per line in device order (as --provision creates them).
    #[arg(long, help_heading = "Credentials", conflicts_with = "token")]
    pub tokens_file: Option<PathBuf>,
    /// Credentials of the --idle clients [default: --token, or the admin key with --provision].
    #[arg(long, help_heading = "Credentials", hide_env_values = true)]
    pub idle_token: Option<String>,
    /// Ingot's HTTP base URL for --provision [default: the HTTP target, else http://127.0.0.1:8080].
    #[arg(long, help_heading = "Credentials", env = "INGOT_SERVER")]
    pub server: Option<String>,
    /// Admin API key for --provision [default: the contents of admin.key in --data-dir].
    #[arg(
        long,
        help_heading = "Credentials",
        env = "INGOT_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Where to find admin.key when no --api-key is given.
    #[arg(
        long,
        help_heading = "Credentials",
        env = "INGOT_DATA_DIR",
        default_value = "ingot-data"
    )]
    pub data_dir: PathBuf,

    /// MQTT QoS (0, 1 or 2).
    #[arg(long, help_heading = "MQTT", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// MQTT version [default: 3.1.1; 5 for camera, whose pictures need a content type].
    #[arg(long, help_heading = "MQTT", value_enum)]
    pub mqtt_version: Option<MqttVersion>,
    /// MQTT keep-alive, seconds.
    #[arg(long, help_heading = "MQTT", default_value_t = 60)]
    pub keep_alive: u16,

    /// Confirmable CoAP requests (the default).
    #[arg(long, help_heading = "CoAP", conflicts_with = "non")]
    pub con: bool,
    /// Non-confirmable CoAP requests.
    #[arg(long, help_heading = "CoAP")]
    pub non: bool,
    /// First retransmission timeout of confirmable requests.
    #[arg(long, help_heading = "CoAP", value_parser = duration, default_value = "2s")]
    pub ack_timeout: Duration,
    /// Retransmissions of a confirmable request.
    #[arg(long, help_heading = "CoAP", default_value_t = 4)]
    pub max_retransmit: u32,
    /// Bodies larger than this go block-wise (16 to 1024; 0: never).
    #[arg(long, help_heading = "CoAP", default_value_t = 1024)]
    pub block_size: usize,

    /// probe: the collector namespace.
    #[arg(long, help_heading = "Scenarios", default_value = "default")]
    pub namespace: String,
    /// probe: the device (sender).
    #[arg(long, help_heading = "Scenarios", default_value = "demoMemoria")]
    pub sender: String,
    /// probe: the sensor (origin).
    #[arg(long, help_heading = "Scenarios", default_value = "probe1")]
    pub origin: String,
    /// probe: what is measured (payload.type).
    #[arg(long, help_heading = "Scenarios", default_value = "temperature")]
    pub kind: String,
    /// probe: the first value.
    #[arg(
        long,
        help_heading = "Scenarios",
        default_value_t = 15.0,
        allow_negative_numbers = true
    )]
    pub start: f64,
    /// probe: each value is the previous one times this.
    #[arg(
        long,
        help_heading = "Scenarios",
        default_value_t = 1.1,
        allow_negative_numbers = true
    )]
    pub factor: f64,
    /// weather: cities, comma-separated (seville, london, sydney, new-york, madrid, paris, berlin, tokyo, moscow, singapore, sao-paulo, cape-town, mumbai, cairo, reykjavik, nairobi).
    #[arg(
        long,
        help_heading = "Scenarios",
        default_value = "seville,london,sydney,new-york"
    )]
    pub cities: String,
    /// vehicles: the centre of the area, `lat,lon`.
    #[arg(
        long,
        help_heading = "Scenarios",
        default_value = "38.95618,-77.39835",
        allow_hyphen_values = true
    )]
    pub center: String,
    /// vehicles: how far from the centre they drive, km.
    #[arg(long, help_heading = "Scenarios", default_value_t = 8.0)]
    pub radius: f64,
    /// camera: picture resolution.
    #[arg(
        long,
        help_heading = "Scenarios",
        value_enum,
        default_value = "640x480"
    )]
    pub resolution: Resolution,
    /// camera: the sensor name.
    #[arg(long, help_heading = "Scenarios", default_value = "front")]
    pub sensor: String,
    /// flat: bytes per event.
    #[arg(long, help_heading = "Scenarios", default_value_t = 100)]
    pub size: usize,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl SimArgs {
    /// The configuration these options describe (credentials not yet provisioned).
    pub fn config(&self) -> Result<SimConfig, SimError> {
        let mut scenario = ScenarioConfig::new(self.scenario);
        scenario.seed = self.seed;
        scenario.probe = ProbeOptions {
            namespace: self.namespace.clone(),
            sender: self.sender.clone(),
            origin: self.origin.clone(),
            kind: self.kind.clone(),
            start: self.start,
            factor: self.factor,
        };
        if self.scenario == ScenarioKind::Weather {
            scenario.weather.cities = WeatherOptions::parse_cities(&self.cities)?;
        }
        if self.scenario == ScenarioKind::Vehicles {
            let (lat, lon) = VehicleOptions::parse_center(&self.center)?;
            scenario.vehicles = VehicleOptions {
                lat,
                lon,
                radius_km: self.radius,
            };
        }
        scenario.camera.resolution = self.resolution;
        scenario.camera.sensor = self.sensor.clone();
        scenario.flat.size = self.size;
        let mut config = SimConfig::new(scenario, self.protocol);
        config.target = self.target.clone();
        config.path = self.path.clone();
        config.topic = self.topic.clone();
        config.devices = self.devices;
        config.connections = self.connections;
        config.concurrency = self.concurrency;
        config.rate = match (self.rate, self.max, self.interval) {
            (Some(rate), _, _) => Rate::PerSecond(rate),
            (None, true, _) => Rate::Max,
            (None, false, Some(interval)) => Rate::Interval(interval),
            (None, false, None) => Rate::Natural,
        };
        config.duration = self.duration;
        config.count = self.count;
        config.timeout = self.timeout;
        config.credentials = match &self.token {
            Some(token) => Credentials::Shared(token.clone()),
            None => Credentials::None,
        };
        config.idle_token = self.token.clone();
        config.mqtt.qos =
            QoS::from_u8(self.qos).ok_or_else(|| SimError::option("qos", "0, 1 or 2"))?;
        config.mqtt.version = self.mqtt_version.map(|v| match v {
            MqttVersion::V311 => Version::V311,
            MqttVersion::V5 => Version::V5,
        });
        config.mqtt.keep_alive = self.keep_alive;
        config.coap.confirmable = !self.non;
        config.coap.ack_timeout = self.ack_timeout;
        config.coap.max_retransmit = self.max_retransmit;
        if self.block_size != 0
            && !(self.block_size.is_power_of_two() && (16..=1024).contains(&self.block_size))
        {
            return Err(SimError::option(
                "block-size",
                "a power of two from 16 to 1024, or 0",
            ));
        }
        config.coap.block_size = self.block_size;
        config.batch = self.batch;
        config.idle = self.idle;
        config.progress = true;
        Ok(config)
    }

    /// The admin API's base URL for provisioning.
    fn server(&self) -> String {
        if let Some(server) = &self.server {
            return server.clone();
        }
        match (&self.protocol, &self.target) {
            (Protocol::Http, Some(target)) if target.starts_with("http://") => {
                match reqwest::Url::parse(target) {
                    Ok(url) => url.origin().ascii_serialization(),
                    Err(_) => target.clone(),
                }
            }
            (Protocol::Http, Some(target)) if !target.contains("://") => {
                format!("http://{target}")
            }
            _ => "http://127.0.0.1:8080".into(),
        }
    }
}

/// Provisions if asked, runs, and returns the report.
pub async fn run(args: &SimArgs, stop: CancellationToken) -> Result<Report, SimError> {
    let mut config = args.config()?;
    if let Some(path) = &args.tokens_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SimError::option(
                "tokens-file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        config.credentials = Credentials::PerDevice(tokens);
    }
    if args.provision {
        let key = match &args.api_key {
            Some(key) => key.clone(),
            None => crate::provision::read_key(&args.data_dir.join("admin.key"))?,
        };
        let devices = config.device_count();
        let names: Vec<String> = (0..devices)
            .map(|i| config.scenario.device_name(i, devices))
            .collect();
        let server = args.server();
        let tokens = crate::provision::provision(&server, &key, &names).await?;
        config.credentials = Credentials::PerDevice(tokens);
        config.idle_token = Some(key);
    }
    if let Some(token) = &args.idle_token {
        config.idle_token = Some(token.clone());
    }
    crate::driver::run(config, stop).await
}

/// Runs `ingot sim` with parsed arguments; the process exits with the returned code.
pub fn main(args: SimArgs) -> ExitCode {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .max(1);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ingot-sim")
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stop = CancellationToken::new();
    let result = runtime.block_on(async {
        let interrupt = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the requests in flight (Ctrl-C again to quit)");
                interrupt.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        run(&args, stop).await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("error: cannot write the report: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.table());
            }
            if report.errors > 0 || !report.connect_errors.is_empty() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            if error.kind() == ErrorKind::InvalidInput {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        args: SimArgs,
    }

    fn parse(line: &[&str]) -> SimArgs {
        let mut all = vec!["sim"];
        all.extend_from_slice(line);
        Cmd::try_parse_from(all).unwrap().args
    }

    #[test]
    fn the_collector_smoke_test_parses_into_its_configuration() {
        let args = parse(&[
            "probe",
            "--sender",
            "demoMemoria",
            "--origin",
            "probe1",
            "--kind",
            "temperature",
            "--start",
            "15",
            "--factor",
            "1.1",
            "--count",
            "10",
        ]);
        let config = args.config().unwrap();
        assert_eq!(config.scenario.kind, ScenarioKind::Probe);
        assert_eq!(config.scenario.probe.sender, "demoMemoria");
        assert_eq!(config.scenario.probe.factor, 1.1);
        assert_eq!(config.count, Some(10));
        assert_eq!(config.protocol, Protocol::Http);
        assert_eq!(config.rate, Rate::Natural);
        assert_eq!(config.credentials, Credentials::None);
    }

    #[test]
    fn protocol_options_map_and_conflicts_are_refused() {
        let args = parse(&[
            "flat",
            "--protocol",
            "mqtt",
            "--qos",
            "0",
            "--mqtt-version",
            "5",
            "--max",
            "--duration",
            "10s",
            "--token",
            "ik_x",
        ]);
        let config = args.config().unwrap();
        assert_eq!(config.mqtt.qos, QoS::AtMostOnce);
        assert_eq!(config.mqtt.version, Some(Version::V5));
        assert_eq!(config.rate, Rate::Max);
        assert_eq!(config.duration, Some(Duration::from_secs(10)));
        assert_eq!(config.credentials, Credentials::Shared("ik_x".into()));
        let args = parse(&[
            "vehicles",
            "--protocol",
            "coap",
            "--non",
            "--center",
            "-33.9,18.4",
        ]);
        let config = args.config().unwrap();
        assert!(!config.coap.confirmable);
        assert_eq!(config.scenario.vehicles.lat, -33.9);
        for bad in [
            vec!["flat", "--rate", "10", "--max"],
            vec!["flat", "--con", "--non"],
            vec!["flat", "--qos", "3"],
            vec!["flat", "--token", "x", "--provision"],
        ] {
            let mut all = vec!["sim"];
            all.extend(bad.iter().copied());
            assert!(Cmd::try_parse_from(&all).is_err(), "{bad:?}");
        }
        assert!(parse(&["flat", "--block-size", "100"]).config().is_err());
        assert!(
            parse(&["weather", "--cities", "atlantis"])
                .config()
                .is_err()
        );
    }
}
