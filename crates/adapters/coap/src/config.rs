//! The `[coap]` configuration section: protocol timers, limits and back-pressure bounds.
//!
//! Every key has a default (the values below), so an empty or missing section is valid.
//! [`CoapConfig::validate`] checks the values together and reports every problem with its
//! key, without doing any IO.

use std::fmt;
use std::time::Duration;

use ingot_core::time::parse_duration;

use serde::{Deserialize, Deserializer};

/// The CoAP endpoint's tuning, read from the `[coap]` TOML section.
///
/// Durations are written as `10ms`, `2s`, `5m`, `1h` or `1d`. The protocol timers default to
/// RFC 7252's values (`ACK_TIMEOUT` 2 s, `MAX_RETRANSMIT` 4, `EXCHANGE_LIFETIME` 247 s,
/// `NON_LIFETIME` 145 s).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoapConfig {
    /// Largest request body reassembled from Block1 blocks (a camera picture).
    pub max_body_bytes: usize,
    /// Block size of Block2 responses unless the client asks for smaller ones: a power of
    /// two from 16 to 1024.
    pub block_size: usize,
    /// A confirmable request not answered within this time gets an empty ACK at once and its
    /// response later as a separate confirmable message; `0ms` always answers separately.
    #[serde(deserialize_with = "duration")]
    pub separate_response_after: Duration,
    /// Most requests being processed at once (ingests, listings), over all clients.
    pub max_in_flight: usize,
    /// Most requests being processed at once for one client endpoint (address and port).
    pub max_in_flight_per_endpoint: usize,
    /// The Max-Age of a 5.03 answer when a bound above is reached: when to try again.
    #[serde(deserialize_with = "duration")]
    pub overload_max_age: Duration,
    /// Most answered exchanges remembered for duplicate detection; the oldest are forgotten
    /// first when it is full.
    pub dedup_capacity: usize,
    /// How long a confirmable exchange is remembered (RFC 7252 `EXCHANGE_LIFETIME`).
    #[serde(deserialize_with = "duration")]
    pub exchange_lifetime: Duration,
    /// How long a non-confirmable exchange is remembered (RFC 7252 `NON_LIFETIME`).
    #[serde(deserialize_with = "duration")]
    pub non_lifetime: Duration,
    /// First retransmission timeout of the server's own confirmable messages (separate
    /// responses, confirmable notifications); doubled on every retransmission.
    #[serde(deserialize_with = "duration")]
    pub ack_timeout: Duration,
    /// Retransmissions of a confirmable message before the server gives up on it.
    pub max_retransmit: u32,
    /// An incomplete Block1 upload is dropped after this long without a new block.
    #[serde(deserialize_with = "duration")]
    pub block_transfer_timeout: Duration,
    /// Most Block1 uploads in progress at once, over all clients.
    pub max_block_transfers: usize,
    /// Most Block1 uploads in progress at once for one client endpoint.
    pub max_block_transfers_per_endpoint: usize,
    /// Memory for large responses kept so their Block2 blocks can be fetched one by one.
    pub block2_cache_bytes: usize,
    /// Most Observe registrations, over all clients.
    pub max_observers: usize,
    /// Most Observe registrations of one client endpoint.
    pub max_observers_per_endpoint: usize,
    /// A notification is sent confirmable (so a vanished observer is noticed and dropped) at
    /// least this often per observer; the others are non-confirmable.
    #[serde(deserialize_with = "duration")]
    pub observe_con_interval: Duration,
    /// Most client endpoints the server keeps state for (message-id counters, counts).
    pub max_endpoints: usize,
}

impl Default for CoapConfig {
    fn default() -> Self {
        CoapConfig {
            max_body_bytes: 1 << 20,
            block_size: 1024,
            separate_response_after: Duration::from_secs(1),
            max_in_flight: 4096,
            max_in_flight_per_endpoint: 32,
            overload_max_age: Duration::from_secs(1),
            dedup_capacity: 100_000,
            exchange_lifetime: Duration::from_secs(247),
            non_lifetime: Duration::from_secs(145),
            ack_timeout: Duration::from_secs(2),
            max_retransmit: 4,
            block_transfer_timeout: Duration::from_secs(60),
            max_block_transfers: 64,
            max_block_transfers_per_endpoint: 2,
            block2_cache_bytes: 16 << 20,
            max_observers: 10_000,
            max_observers_per_endpoint: 8,
            observe_con_interval: Duration::from_secs(60),
            max_endpoints: 100_000,
        }
    }
}

/// Every problem found in a `[coap]` section, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

/// The most requests processed at once that the server accepts as a setting.
const MAX_IN_FLIGHT: usize = 1 << 20;

/// The largest body a Block1 upload can carry: 2^20 blocks (the 20-bit block number) of
/// 1024 bytes.
const MAX_BLOCK1_BODY: usize = 1 << 30;

impl CoapConfig {
    /// Checks the values; the error lists every problem as `coap.<key> ...`.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut positive = |key: &str, value: usize| {
            if value == 0 {
                errors.push(format!("coap.{key} must be at least 1"));
            }
        };
        positive("max_in_flight", self.max_in_flight);
        positive(
            "max_in_flight_per_endpoint",
            self.max_in_flight_per_endpoint,
        );
        positive("dedup_capacity", self.dedup_capacity);
        positive("max_block_transfers", self.max_block_transfers);
        positive(
            "max_block_transfers_per_endpoint",
            self.max_block_transfers_per_endpoint,
        );
        positive("max_endpoints", self.max_endpoints);
        positive("max_body_bytes", self.max_body_bytes);
        if self.max_in_flight > MAX_IN_FLIGHT {
            errors.push(format!(
                "coap.max_in_flight must be at most {MAX_IN_FLIGHT}"
            ));
        }
        if self.max_body_bytes > MAX_BLOCK1_BODY {
            errors.push(format!(
                "coap.max_body_bytes must be at most {MAX_BLOCK1_BODY} (2^20 blocks of 1024 bytes)"
            ));
        }
        if !(16..=1024).contains(&self.block_size) || !self.block_size.is_power_of_two() {
            errors.push(format!(
                "coap.block_size must be one of 16, 32, 64, 128, 256, 512, 1024, not {}",
                self.block_size
            ));
        }
        for (key, value) in [
            ("exchange_lifetime", self.exchange_lifetime),
            ("non_lifetime", self.non_lifetime),
            ("ack_timeout", self.ack_timeout),
            ("block_transfer_timeout", self.block_transfer_timeout),
            ("observe_con_interval", self.observe_con_interval),
        ] {
            if value.is_zero() {
                errors.push(format!("coap.{key} must be longer than 0"));
            }
        }
        if self.overload_max_age.as_secs() > u64::from(u32::MAX) {
            errors.push("coap.overload_max_age is longer than CoAP's Max-Age can say".into());
        }
        if self.max_retransmit > 20 {
            errors.push("coap.max_retransmit must be at most 20".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The SZX (size exponent) of [`CoapConfig::block_size`].
    pub(crate) fn block_szx(&self) -> u8 {
        // 16 << szx == block_size; validated to be a power of two in 16..=1024.
        (self.block_size.max(16).trailing_zeros().saturating_sub(4)).min(6) as u8
    }

    /// Max-Age of an overload answer, in whole seconds (at least 1).
    pub(crate) fn overload_max_age_secs(&self) -> u32 {
        let secs =
            self.overload_max_age.as_secs() + u64::from(self.overload_max_age.subsec_nanos() > 0);
        u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_is_the_defaults_and_valid() {
        let config: CoapConfig = toml::from_str("").unwrap();
        assert_eq!(config, CoapConfig::default());
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.block_szx(), 6);
        assert_eq!(config.overload_max_age_secs(), 1);
    }

    #[test]
    fn reads_durations_and_refuses_unknown_keys() {
        let config: CoapConfig =
            toml::from_str("separate_response_after = \"250ms\"\nblock_size = 256\n").unwrap();
        assert_eq!(config.separate_response_after, Duration::from_millis(250));
        assert_eq!(config.block_szx(), 4);
        let err = toml::from_str::<CoapConfig>("block_sise = 16").unwrap_err();
        assert!(err.to_string().contains("block_sise"), "{err}");
        let err = toml::from_str::<CoapConfig>("ack_timeout = \"2\"").unwrap_err();
        assert!(err.to_string().contains("no unit"), "{err}");
    }

    #[test]
    fn validation_names_every_bad_key() {
        let config = CoapConfig {
            block_size: 100,
            max_in_flight: 0,
            ack_timeout: Duration::ZERO,
            ..CoapConfig::default()
        };
        let errors = config.validate().unwrap_err().0;
        assert_eq!(errors.len(), 3, "{errors:?}");
        for key in ["coap.block_size", "coap.max_in_flight", "coap.ack_timeout"] {
            assert!(
                errors.iter().any(|e| e.starts_with(key)),
                "{key}: {errors:?}"
            );
        }
    }
}
