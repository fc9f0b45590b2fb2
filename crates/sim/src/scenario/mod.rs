//! What simulated devices send: five scenarios, each a small state machine per device that
//! writes its next message into a reused buffer.
//!
//! | scenario | device | message | default pace |
//! |---|---|---|---|
//! | `probe` | `--sender` (`-2`, `-3`, … with several) | collector format, value `start × factor^n` | as fast as possible, 10 events |
//! | `weather` | `weather-<city>` | canonical event; temperature, humidity, pressure in turn, daily cycles | one per station every 10 s |
//! | `vehicles` | the VIN | flat telemetry document with `location` | one per vehicle every 2 s |
//! | `camera` | `cam-01`, … | a JPEG-sized binary picture; fields as metadata | one per camera every 5 s |
//! | `flat` | `flat-00001`, … | a canonical event of exactly `--size` bytes | as fast as possible |
//!
//! # Invariants
//!
//! - Every JSON message is one document that `ingot_core::format::parse_body` accepts, in
//!   the format the table names (tested per scenario), and names its device as the device
//!   name [`ScenarioConfig::device_name`] gives, so per-device tokens match.
//! - A device's state is its own: the drivers split devices over connections and each
//!   worker owns the [`Device`]s it sends for, so generation needs no locks.
//! - Generation reuses the [`Message`] buffers; in steady state the `flat` and `probe`
//!   scenarios allocate nothing per message, the others only a few small strings.
//! - With the same `--seed` a fleet starts in the same state (routes, noise, VINs).

mod camera;
mod flat;
mod probe;
mod vehicles;
mod weather;

use std::time::Duration;

use ingot_core::Timestamp;

pub use camera::{CameraOptions, Resolution};
pub use flat::FlatOptions;
pub use probe::ProbeOptions;
pub use vehicles::VehicleOptions;
pub use weather::{CITIES, City, WeatherOptions};

use crate::error::SimError;

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// One temperature probe in the collector format, value growing by a factor.
    Probe,
    /// Weather stations in several cities, with daily cycles.
    Weather,
    /// Vehicles driving around a centre: speed, engine, fuel, odometer, GPS.
    Vehicles,
    /// Motion cameras sending pictures.
    Camera,
    /// Minimal fixed-size events, for benchmarks.
    Flat,
}

impl ScenarioKind {
    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Probe => "probe",
            ScenarioKind::Weather => "weather",
            ScenarioKind::Vehicles => "vehicles",
            ScenarioKind::Camera => "camera",
            ScenarioKind::Flat => "flat",
        }
    }
}

/// A scenario and its options.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// Which scenario.
    pub kind: ScenarioKind,
    /// Seeds every device's randomness.
    pub seed: u64,
    /// `probe` options.
    pub probe: ProbeOptions,
    /// `weather` options.
    pub weather: WeatherOptions,
    /// `vehicles` options.
    pub vehicles: VehicleOptions,
    /// `camera` options.
    pub camera: CameraOptions,
    /// `flat` options.
    pub flat: FlatOptions,
}

impl ScenarioConfig {
    /// `kind` with every option at its default.
    pub fn new(kind: ScenarioKind) -> ScenarioConfig {
        ScenarioConfig {
            kind,
            seed: 1,
            probe: ProbeOptions::default(),
            weather: WeatherOptions::default(),
            vehicles: VehicleOptions::default(),
            camera: CameraOptions::default(),
            flat: FlatOptions::default(),
        }
    }

    /// Checks the options (names, numbers, sizes).
    pub fn validate(&self) -> Result<(), SimError> {
        match self.kind {
            ScenarioKind::Probe => self.probe.validate(),
            ScenarioKind::Weather => self.weather.validate(),
            ScenarioKind::Vehicles => self.vehicles.validate(),
            ScenarioKind::Camera => self.camera.validate(),
            ScenarioKind::Flat => self.flat.validate(),
        }
    }

    /// How many devices the scenario simulates unless `--devices` says otherwise.
    pub fn default_devices(&self) -> usize {
        match self.kind {
            ScenarioKind::Weather => self.weather.cities.len().max(1),
            ScenarioKind::Vehicles => 10,
            _ => 1,
        }
    }

    /// How often each device sends by default; `None`: as fast as possible.
    pub fn default_interval(&self) -> Option<Duration> {
        match self.kind {
            ScenarioKind::Probe | ScenarioKind::Flat => None,
            ScenarioKind::Weather => Some(Duration::from_secs(10)),
            ScenarioKind::Vehicles => Some(Duration::from_secs(2)),
            ScenarioKind::Camera => Some(Duration::from_secs(5)),
        }
    }

    /// How many events a run sends by default when neither `--count` nor `--duration` is
    /// given; `None`: until interrupted.
    pub fn default_count(&self) -> Option<u64> {
        match self.kind {
            ScenarioKind::Probe => Some(10),
            _ => None,
        }
    }

    /// The name of device `index` of `devices` (what provisioning registers and what the
    /// messages name).
    pub fn device_name(&self, index: usize, devices: usize) -> String {
        match self.kind {
            ScenarioKind::Probe => probe::device_name(&self.probe, index, devices),
            ScenarioKind::Weather => weather::device_name(&self.weather, index),
            ScenarioKind::Vehicles => vehicles::vin(self.seed, index),
            ScenarioKind::Camera => format!("cam-{:02}", index + 1),
            ScenarioKind::Flat => format!("flat-{:05}", index + 1),
        }
    }

    /// The sensor a device reports as, if the scenario has one (used by MQTT topics with
    /// `{sensor}`).
    pub fn sensor(&self) -> Option<&str> {
        match self.kind {
            ScenarioKind::Probe => Some(&self.probe.origin),
            ScenarioKind::Weather => Some("station"),
            ScenarioKind::Camera => Some(&self.camera.sensor),
            ScenarioKind::Vehicles | ScenarioKind::Flat => None,
        }
    }

    /// Whether messages are binary (sent with metadata instead of a JSON body).
    pub fn is_binary(&self) -> bool {
        self.kind == ScenarioKind::Camera
    }

    /// The state machine of device `index` of `devices`.
    pub fn device(&self, index: usize, devices: usize) -> Device {
        let name = self.device_name(index, devices);
        match self.kind {
            ScenarioKind::Probe => Device::Probe(probe::Probe::new(&self.probe, name)),
            ScenarioKind::Weather => {
                Device::Weather(weather::Station::new(&self.weather, name, index, self.seed))
            }
            ScenarioKind::Vehicles => Device::Vehicle(Box::new(vehicles::Vehicle::new(
                &self.vehicles,
                name,
                index,
                self.seed,
            ))),
            ScenarioKind::Camera => {
                Device::Camera(camera::Camera::new(&self.camera, name, index, self.seed))
            }
            ScenarioKind::Flat => Device::Flat(flat::Flat::new(&self.flat, &name, index)),
        }
    }
}

/// One message, written by [`Device::next`] into reused buffers.
#[derive(Debug, Default)]
pub struct Message {
    /// The JSON document, or the binary payload.
    pub body: Vec<u8>,
    /// `Some(media type)` for a binary body, whose event fields are in `meta`.
    pub binary: Option<&'static str>,
    /// The event fields of a binary body (`device`, `sensor`, `kind`, `ts`): query
    /// parameters over HTTP and CoAP, user properties (or the topic) over MQTT 5.
    pub meta: Vec<(&'static str, String)>,
}

impl Message {
    /// Empties the message, keeping its buffers.
    pub fn clear(&mut self) {
        self.body.clear();
        self.binary = None;
        self.meta.clear();
    }
}

/// A simulated device of some scenario.
#[derive(Debug)]
pub enum Device {
    /// A collector-format probe.
    Probe(probe::Probe),
    /// A weather station.
    Weather(weather::Station),
    /// A vehicle (boxed: the largest state).
    Vehicle(Box<vehicles::Vehicle>),
    /// A camera.
    Camera(camera::Camera),
    /// A flat benchmark device.
    Flat(flat::Flat),
}

impl Device {
    /// The device's name.
    pub fn name(&self) -> &str {
        match self {
            Device::Probe(d) => d.name(),
            Device::Weather(d) => d.name(),
            Device::Vehicle(d) => d.name(),
            Device::Camera(d) => d.name(),
            Device::Flat(d) => d.name(),
        }
    }

    /// Writes the device's next message at `now` into `out` (cleared first).
    pub fn next(&mut self, now: Timestamp, out: &mut Message) {
        out.clear();
        match self {
            Device::Probe(d) => d.next(now, out),
            Device::Weather(d) => d.next(now, out),
            Device::Vehicle(d) => d.next(now, out),
            Device::Camera(d) => d.next(now, out),
            Device::Flat(d) => d.next(out),
        }
    }
}

/// Appends `value` rounded to `decimals` places, as the shortest JSON number.
pub(crate) fn push_num(out: &mut Vec<u8>, value: f64, decimals: i32) {
    use std::io::Write as _;
    let scale = 10f64.powi(decimals);
    let rounded = (value * scale).round() / scale;
    let finite = if rounded.is_finite() { rounded } else { 0.0 };
    // `0.0 == -0.0`: never write `-0`.
    let finite = if finite == 0.0 { 0.0 } else { finite };
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{finite}");
}

/// Appends `now` at millisecond precision (`2018-06-01T14:08:24.771Z`).
pub(crate) fn push_ts(out: &mut Vec<u8>, now: Timestamp) {
    let mut text = String::with_capacity(24);
    Timestamp::from_millis(now.as_millis()).write_rfc3339(&mut text);
    out.extend_from_slice(text.as_bytes());
}

/// `now` at millisecond precision as text.
pub(crate) fn ts_text(now: Timestamp) -> String {
    Timestamp::from_millis(now.as_millis()).to_rfc3339()
}

/// Checks a name the way the server will.
pub(crate) fn check_name(option: &'static str, value: &str) -> Result<(), SimError> {
    ingot_core::name::validate(value).map_err(|reason| SimError::InvalidOption {
        option,
        reason: format!("`{value}` {reason}"),
    })
}

#[cfg(test)]
mod tests;
