//! Ingot's query language, independent of any store.
//!
//! - [`filter`]: the `q=` filter expressions, in the style of Kibana's query bar
//!   (`origin:probe1 and payload.type:temperature and payload.value > 20`), parsed into a
//!   typed [`Filter`] whose every literal is a value, never SQL: backends compile it to their
//!   dialect with bound parameters only.
//! - [`Field`]: the canonical columns (`id device sensor kind value ts`) or any path into an
//!   event's `data` (`origin`, `payload.value`, `location.lat`, `vehicle_speed`).
//! - [`Interval`]: bucket widths (`1s` … `1d`, or `auto`), aligned to the Unix epoch in UTC.
//! - [`Agg`] and [`SeriesQuery`]: aggregations per bucket and group, percentiles included.
//!
//! This crate does no IO and knows nothing of SQL.

pub mod filter;
mod interval;
mod series;

pub use filter::{Filter, ParseError, Predicate, Wildcard, WildcardPart, parse};
pub use interval::{Interval, IntervalError, IntervalSpec};
pub use series::{Agg, SeriesQuery, percentile};

use std::fmt;

/// A field of an event that a filter, an aggregation or a grouping can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The event id.
    Id,
    /// The device name.
    Device,
    /// The sensor name.
    Sensor,
    /// The kind of measurement.
    Kind,
    /// The measured number.
    Value,
    /// The measurement time.
    Ts,
    /// A path into `data`: `["payload", "value"]` for `payload.value`.
    Data(Vec<String>),
}

/// The longest field path accepted, in segments.
pub const MAX_PATH_DEPTH: usize = 16;

impl Field {
    /// Resolves a dotted name: a canonical field, or a path into `data`. A leading `data.`
    /// names the root of `data` explicitly (`data.unit` is the same as `unit`).
    ///
    /// Segments are letters, digits, `_` and `-`.
    pub fn parse(name: &str) -> Result<Field, String> {
        match name {
            "id" => return Ok(Field::Id),
            "device" => return Ok(Field::Device),
            "sensor" => return Ok(Field::Sensor),
            "kind" => return Ok(Field::Kind),
            "value" => return Ok(Field::Value),
            "ts" => return Ok(Field::Ts),
            "data" => {
                return Err(
                    "`data` is the whole document; name a field inside it, e.g. `data.unit`".into(),
                );
            }
            _ => {}
        }
        let path = name.strip_prefix("data.").unwrap_or(name);
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_DEPTH {
            return Err(format!(
                "`{name}` is nested deeper than {MAX_PATH_DEPTH} levels"
            ));
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err(format!("`{name}` has an empty path segment"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "`{name}`: field names may only contain letters, digits, _ and -"
                ));
            }
        }
        Ok(Field::Data(segments))
    }

    /// Whether the field is one of the canonical text columns.
    pub fn is_text_column(&self) -> bool {
        matches!(
            self,
            Field::Id | Field::Device | Field::Sensor | Field::Kind
        )
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Id => f.write_str("id"),
            Field::Device => f.write_str("device"),
            Field::Sensor => f.write_str("sensor"),
            Field::Kind => f.write_str("kind"),
            Field::Value => f.write_str("value"),
            Field::Ts => f.write_str("ts"),
            // A data path named like a canonical field keeps its `data.` prefix, so the text
            // parses back to the same field.
            Field::Data(path) => {
                let first = path.first().map_or("", String::as_str);
                if matches!(
                    first,
                    "id" | "device" | "sensor" | "kind" | "value" | "ts" | "data"
                ) {
                    f.write_str("data.")?;
                }
                f.write_str(&path.join("."))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_resolve() {
        assert_eq!(Field::parse("device"), Ok(Field::Device));
        assert_eq!(
            Field::parse("payload.value"),
            Ok(Field::Data(vec!["payload".into(), "value".into()]))
        );
        assert_eq!(
            Field::parse("data.unit"),
            Ok(Field::Data(vec!["unit".into()]))
        );
        assert_eq!(
            Field::parse("vehicle_speed").unwrap().to_string(),
            "vehicle_speed"
        );
        assert!(Field::parse("a..b").is_err());
        assert!(Field::parse("a.b c").is_err());
        assert!(Field::parse("data").is_err());
        assert!(Field::parse(&vec!["a"; 17].join(".")).is_err());
    }
}
