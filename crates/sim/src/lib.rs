//! Ingot's device simulator and load generator (`ingot sim`), and the demo fleet of
//! `ingot serve --demo`.
//!
//! Operators try the platform with simulated fleets before wiring real sensors, and every
//! performance figure Ingot publishes is measured with this generator, so it has to be
//! both: plausible devices (a collector probe, weather stations, vehicles on a street
//! grid, motion cameras) and a load generator that saturates a server without being the
//! bottleneck, and reports honestly what it saw.
//!
//! # Layout
//!
//! - [`scenario`]: what devices send — per-device state machines writing messages into
//!   reused buffers. Every JSON message is accepted by `ingot_core::format::parse_body`.
//! - [`config`]: a run's options and their resolution (defaults per protocol, target).
//! - [`pacing`]: scheduled send times from the start of the run (never a sleep per
//!   message), split over workers.
//! - `driver`: one task per connection — CoAP over UDP (requests encoded with
//!   `coap-lite`), MQTT over TCP (packets encoded and decoded with `ingot-codec-mqtt`, the
//!   broker's own codec), HTTP/1.1 — plus idle clients; connect first, start together,
//!   drain at the end.
//! - [`pending`]: requests in flight per connection, a ring indexed by sequence number.
//! - [`stats`] and [`report`]: counters and HDR latency histograms, the final table or
//!   JSON, the live progress line.
//! - [`provision`]: creating the devices through the admin API (`--provision`).
//! - [`demo`]: the in-process fleet for `ingot serve --demo`, through the one ingest path.
//! - [`sink`]: null peers to measure the generator itself.
//! - [`cli`]: the `ingot sim` command line.
//!
//! # Invariants
//!
//! - Every load loop is bounded: by `--count`, `--duration` or an interruption, and the
//!   drain by `--timeout`.
//! - Per event, `sent = acknowledged + errors + unanswered` at the end of a run whose
//!   requests expect answers.
//! - No per-message allocation on the hot paths of the benchmark scenario (`flat`):
//!   requests are pre-encoded templates patched in place, buffers are reused.
//!
//! In the layering of `STYLE.md`, this crate sits beside the adapters rather than with
//! `auth` and `log`: the demo fleet (which the brief asks to live here) calls
//! `ingot-ingest`. The simulator's network side depends only on `ingot-core`, the MQTT
//! codec and `coap-lite`.

pub mod cli;
pub mod config;
pub mod demo;
mod driver;
pub mod error;
pub mod pacing;
pub mod pending;
pub mod provision;
pub mod report;
mod rng;
pub mod scenario;
pub mod sink;
pub mod stats;

pub use config::{Credentials, Protocol, Rate, SimConfig};
pub use driver::run;
pub use error::SimError;
pub use report::Report;
