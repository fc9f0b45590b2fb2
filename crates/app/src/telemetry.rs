//! Diagnostics: `tracing` to stderr, human-readable or JSON.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Parses a level (`info`: Ingot's own crates at that level, dependencies at `warn`) or a
/// directive list (`info,ingot_log=debug`), applied as written.
pub fn filter(text: &str) -> Result<Targets, String> {
    let text = text.trim();
    if let Ok(level) = tracing::Level::from_str(text) {
        return Ok(Targets::new()
            .with_default(tracing::Level::WARN.min(level))
            .with_target("ingot", level));
    }
    Targets::from_str(text).map_err(|e| e.to_string())
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat, level: &str) {
    let filter =
        filter(level).unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // Already installed (a test that starts several servers): keep the first one.
    let _ = result;
}
