//! Aggregations per time bucket and group.

use std::fmt;

use ingot_core::Timestamp;

use crate::{Field, Filter, Interval};

/// An aggregation of a numeric field over the events of one bucket (and group).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    /// How many events (the field is not used).
    Count,
    /// The mean.
    Avg,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The total.
    Sum,
    /// The `q`-th percentile (0 < q < 100), exact, linearly interpolated between the two
    /// nearest ranks (PostgreSQL's `percentile_cont`; see [`percentile`]).
    Percentile(f64),
}

impl Agg {
    /// Parses `count avg min max sum p50 p90 p95 p99` (and any `pNN` from p1 to p99).
    pub fn parse(text: &str) -> Option<Agg> {
        match text {
            "count" => Some(Agg::Count),
            "avg" => Some(Agg::Avg),
            "min" => Some(Agg::Min),
            "max" => Some(Agg::Max),
            "sum" => Some(Agg::Sum),
            p => {
                let n: u8 = p.strip_prefix('p')?.parse().ok()?;
                (1..=99)
                    .contains(&n)
                    .then_some(Agg::Percentile(f64::from(n)))
            }
        }
    }

    /// Applies the aggregation to values (all finite). Empty input gives `None`, except
    /// `count` which gives 0.
    pub fn apply(self, values: &mut [f64]) -> Option<f64> {
        if values.is_empty() {
            return matches!(self, Agg::Count).then_some(0.0);
        }
        Some(match self {
            Agg::Count => values.len() as f64,
            Agg::Sum => values.iter().sum(),
            Agg::Avg => values.iter().sum::<f64>() / values.len() as f64,
            Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Agg::Percentile(q) => {
                values.sort_by(f64::total_cmp);
                percentile(values, q)
            }
        })
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agg::Count => f.write_str("count"),
            Agg::Avg => f.write_str("avg"),
            Agg::Min => f.write_str("min"),
            Agg::Max => f.write_str("max"),
            Agg::Sum => f.write_str("sum"),
            Agg::Percentile(q) => write!(f, "p{q}"),
        }
    }
}

/// The `q`-th percentile of sorted, non-empty values: the value at rank
/// `(q / 100) × (n − 1)`, interpolated linearly between the two nearest ranks.
///
/// # Panics
///
/// If `sorted` is empty (callers aggregate only non-empty buckets).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no values");
    let rank = (q / 100.0) * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let frac = rank - low as f64;
    sorted[low] + (sorted[high] - sorted[low]) * frac
}

/// One series request, resolved: what to aggregate, over which events and range, bucketed
/// and grouped how.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// Which events.
    pub filter: Filter,
    /// The numeric field aggregated (ignored by `count`).
    pub field: Field,
    /// The aggregation.
    pub agg: Agg,
    /// Bucket width.
    pub interval: Interval,
    /// `ts >= from` (the first bucket starts at `interval.floor(from)`).
    pub from: Timestamp,
    /// `ts < to`.
    pub to: Timestamp,
    /// Group by this field's value, if any.
    pub group_by: Option<Field>,
    /// With `group_by`: keep the `top` groups with the most events.
    pub top: usize,
    /// With `group_by`: add a group `other` aggregating every event of the other groups.
    pub other: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregations() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(Agg::Count.apply(&mut v), Some(4.0));
        assert_eq!(Agg::Sum.apply(&mut v), Some(10.0));
        assert_eq!(Agg::Avg.apply(&mut v), Some(2.5));
        assert_eq!(Agg::Min.apply(&mut v), Some(1.0));
        assert_eq!(Agg::Max.apply(&mut v), Some(4.0));
        assert_eq!(Agg::Percentile(50.0).apply(&mut v), Some(2.5));
        assert_eq!(Agg::Percentile(99.0).apply(&mut v), Some(3.0 + 0.97));
        assert_eq!(Agg::Avg.apply(&mut []), None);
        assert_eq!(Agg::Count.apply(&mut []), Some(0.0));
        assert_eq!(Agg::Percentile(95.0).apply(&mut [7.0]), Some(7.0));
    }

    #[test]
    fn names() {
        for name in [
            "count", "avg", "min", "max", "sum", "p50", "p90", "p95", "p99",
        ] {
            assert_eq!(Agg::parse(name).unwrap().to_string(), name);
        }
        for bad in ["median", "p0", "p100", "p", "P50", "avg "] {
            assert_eq!(Agg::parse(bad), None, "{bad}");
        }
    }
}
