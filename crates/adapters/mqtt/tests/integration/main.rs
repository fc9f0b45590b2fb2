//! Integration tests of the MQTT endpoint, in-process over the real log and store.
//!
//! - `clients`: stock clients nobody here wrote (mosquitto_pub/mosquitto_sub, Eclipse
//!   Paho), both protocol versions.
//! - `protocol`: protocol corner cases through a raw client on our codec (malformed
//!   packets, limits, keep-alive, shutdown, redelivery).

#[path = "../support/mod.rs"]
mod support;

mod clients;
mod protocol;
