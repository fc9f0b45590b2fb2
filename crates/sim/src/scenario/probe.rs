//! `probe`: the collector smoke test. One probe (or several) sends the collector format
//! with a value that starts at `--start` and is multiplied by `--factor` at each event:
//! `15, 16.5, 18.15, …` for `--start 15 --factor 1.1`.
//!
//! Values are rounded to 6 decimals so they read as people expect (`18.15`, not
//! `18.150000000000002`). A value that would overflow to infinity starts over at `start`.

use ingot_core::Timestamp;

use super::{Message, check_name, push_num, push_ts};
use crate::error::SimError;

/// Options of the `probe` scenario.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The collector's `namespace`.
    pub namespace: String,
    /// The device (`sender`); with several devices, `-2`, `-3`, … are appended.
    pub sender: String,
    /// The sensor (`origin`).
    pub origin: String,
    /// `payload.type`.
    pub kind: String,
    /// The first value.
    pub start: f64,
    /// Each value is the previous one times this.
    pub factor: f64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            namespace: "default".into(),
            sender: "demoMemoria".into(),
            origin: "probe1".into(),
            kind: "temperature".into(),
            start: 15.0,
            factor: 1.1,
        }
    }
}

impl ProbeOptions {
    pub(super) fn validate(&self) -> Result<(), SimError> {
        check_name("sender", &self.sender)?;
        check_name("origin", &self.origin)?;
        check_name("kind", &self.kind)?;
        if !self.start.is_finite() {
            return Err(SimError::option("start", "must be a finite number"));
        }
        if !self.factor.is_finite() {
            return Err(SimError::option("factor", "must be a finite number"));
        }
        Ok(())
    }
}

pub(super) fn device_name(options: &ProbeOptions, index: usize, devices: usize) -> String {
    if devices <= 1 || index == 0 {
        options.sender.clone()
    } else {
        format!("{}-{}", options.sender, index + 1)
    }
}

/// A probe's state: how many values it has sent.
#[derive(Debug)]
pub struct Probe {
    name: String,
    /// `{"namespace":…,"payload":{"type":"…","value":` — constant.
    head: Vec<u8>,
    start: f64,
    factor: f64,
    value: f64,
}

impl Probe {
    pub(super) fn new(options: &ProbeOptions, name: String) -> Probe {
        let head = format!(
            r#"{{"namespace":{},"sender":"{name}","origin":"{}","payload":{{"type":"{}","value":"#,
            serde_json::Value::from(options.namespace.as_str()),
            options.origin,
            options.kind,
        );
        Probe {
            name,
            head: head.into_bytes(),
            start: options.start,
            factor: options.factor,
            value: options.start,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn next(&mut self, now: Timestamp, out: &mut Message) {
        out.body.extend_from_slice(&self.head);
        push_num(&mut out.body, self.value, 6);
        out.body.extend_from_slice(br#"},"timestamp":""#);
        push_ts(&mut out.body, now);
        out.body.extend_from_slice(br#""}"#);
        let next = self.value * self.factor;
        self.value = if next.is_finite() { next } else { self.start };
    }
}
