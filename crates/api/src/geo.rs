//! `GET /api/v1/geo`: events counted per cell of a latitude/longitude grid, for heat maps.
//!
//! The counting happens in the store ([`EventStore::geo_grid`](ingot_store::EventStore::geo_grid)),
//! so a heat map of a month of vehicle positions costs an aggregation or three, not a
//! download of every event. `cell=auto` (the default) sizes the grid to the data: a first
//! pass counts 1° cells over the whole world (at most 181 × 361 of them), which gives the
//! extent of the positions to within a degree; the cell is then the ladder step giving
//! about [`AUTO_CELLS`] cells across the wider side of that extent. Steps of 1° and more
//! are summed from the first pass (a whole number of 1° cells makes each coarser cell, so
//! the sums are exact). A finer step needs another pass, which also measures the extent
//! more closely, so one more refinement may follow: at most [`AUTO_PASSES`] passes, each
//! bounded to about `AUTO_CELLS²` cells by the extent the previous one measured.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ingot_core::name;
use ingot_query::Field;
use ingot_store::{GeoCell, GeoGrid, ListQuery, MAX_GEO_CELLS, MIN_GEO_CELL, Role};
use serde_json::json;

use crate::events::{key_with, parse_filter, parse_time};
use crate::{ApiError, AppState};

/// The cells `auto` aims for across the wider side of the data's extent.
const AUTO_CELLS: f64 = 64.0;

/// The most store passes `auto` makes.
const AUTO_PASSES: usize = 3;

/// The most cells an answer with an explicit `cell` may hold.
const MAX_CELLS: usize = 10_000;

/// The cell sizes `auto` chooses from, in degrees, coarsest first. Those of 1° and more are
/// whole numbers, so they are sums of 1° cells.
const LADDER: [f64; 18] = [
    45.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005,
    0.0002, 0.0001,
];

/// What a request asks for.
struct Request {
    query: ListQuery,
    lat: Field,
    lon: Field,
    /// `None` for `auto`.
    cell: Option<f64>,
}

fn data_path(key: &str, value: &str) -> Result<Field, ApiError> {
    match Field::parse(value).map_err(|e| ApiError::param(key, e))? {
        field @ Field::Data(_) => Ok(field),
        other => Err(ApiError::param(
            key,
            format!("must be a path into data (such as location.lat), not `{other}`"),
        )),
    }
}

fn parse(params: &[(String, String)]) -> Result<Request, ApiError> {
    let mut r = Request {
        query: ListQuery {
            limit: 1,
            ..ListQuery::default()
        },
        lat: Field::Data(vec!["location".into(), "lat".into()]),
        lon: Field::Data(vec!["location".into(), "lon".into()]),
        cell: None,
    };
    for (key, value) in params {
        match key.as_str() {
            "q" => r.query.filter = parse_filter(key, value)?,
            "device" if !value.is_empty() => {
                name::validate(value).map_err(|reason| ApiError::param(key, reason))?;
                r.query.device = Some(value.clone());
            }
            "from" if !value.is_empty() => r.query.from = Some(parse_time(key, value)?),
            "to" if !value.is_empty() => r.query.to = Some(parse_time(key, value)?),
            "device" | "from" | "to" => {}
            "lat" => r.lat = data_path(key, value)?,
            "lon" => r.lon = data_path(key, value)?,
            "cell" if value.is_empty() || value == "auto" => r.cell = None,
            "cell" => {
                let cell = value
                    .parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && (MIN_GEO_CELL..=90.0).contains(c))
                    .ok_or_else(|| {
                        ApiError::param(
                            key,
                            format!("must be `auto` or degrees from {MIN_GEO_CELL} to 90"),
                        )
                    })?;
                r.cell = Some(cell);
            }
            other => {
                return Err(ApiError::param(
                    other,
                    "is not supported (use q, device, from, to, cell, lat, lon)",
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (r.query.from, r.query.to)
        && from >= to
    {
        return Err(ApiError::param("from", "must be earlier than `to`"));
    }
    Ok(r)
}

fn path_of(field: &Field) -> Vec<String> {
    match field {
        Field::Data(path) => path.clone(),
        _ => Vec::new(),
    }
}

/// The ladder step giving about [`AUTO_CELLS`] cells across the wider side of the extent
/// of `cells` (cells of `cell` degrees).
fn auto_cell(cells: &[GeoCell], cell: f64) -> f64 {
    let rows = cells.iter().map(|c| c.row);
    let cols = cells.iter().map(|c| c.col);
    let span = |min: Option<i64>, max: Option<i64>| match (min, max) {
        (Some(min), Some(max)) => (max - min + 1) as f64,
        _ => 1.0,
    };
    let extent = span(rows.clone().min(), rows.max()).max(span(cols.clone().min(), cols.max()));
    let target = extent * cell / AUTO_CELLS;
    LADDER
        .iter()
        .copied()
        .rev()
        .find(|&step| step >= target)
        .unwrap_or(LADDER[0])
}

/// Sums 1° cells into cells of `step` whole degrees.
fn coarsen(cells: &[GeoCell], step: i64) -> Vec<GeoCell> {
    let mut sums: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for c in cells {
        *sums
            .entry((c.row.div_euclid(step), c.col.div_euclid(step)))
            .or_default() += c.count;
    }
    sums.into_iter()
        .map(|((row, col), count)| GeoCell { row, col, count })
        .collect()
}

/// A cell edge in degrees, without the float noise of `row * cell`.
fn edge(index: i64, cell: f64) -> f64 {
    (index as f64 * cell * 1e6).round() / 1e6
}

pub(crate) async fn geo(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = key_with(&state, &headers, Role::Reader).await?;
    let tenant = identity.tenant();
    let r = parse(&params)?;
    let grid = |cell: f64, limit: usize| GeoGrid {
        lat: path_of(&r.lat),
        lon: path_of(&r.lon),
        cell,
        limit,
    };
    let (cell, cells) = match r.cell {
        Some(cell) => {
            let cells = state
                .store
                .geo_grid(tenant, &r.query, &grid(cell, MAX_CELLS))
                .await?;
            (cell, cells)
        }
        None => {
            let degrees = state
                .store
                .geo_grid(tenant, &r.query, &grid(1.0, MAX_GEO_CELLS))
                .await?;
            let step = auto_cell(&degrees, 1.0);
            if step >= 1.0 {
                (step, coarsen(&degrees, step as i64))
            } else {
                let (mut cell, mut cells) = (1.0, degrees);
                for _ in 1..AUTO_PASSES {
                    let finer = auto_cell(&cells, cell);
                    if finer >= cell {
                        break;
                    }
                    cells = state
                        .store
                        .geo_grid(tenant, &r.query, &grid(finer, MAX_GEO_CELLS))
                        .await?;
                    cell = finer;
                }
                (cell, cells)
            }
        }
    };
    let total: u64 = cells.iter().map(|c| c.count).sum();
    let cells: Vec<(f64, f64, u64)> = cells
        .iter()
        .map(|c| (edge(c.row, cell), edge(c.col, cell), c.count))
        .collect();
    Ok(Json(json!({
        "cell": cell,
        "lat": r.lat.to_string(),
        "lon": r.lon.to_string(),
        "total": total,
        "cells": cells,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn cell(row: i64, col: i64, count: u64) -> GeoCell {
        GeoCell { row, col, count }
    }

    #[test]
    fn parses_and_names_bad_parameters() {
        let r = parse(&params(&[
            ("q", "vin:*"),
            ("cell", "0.05"),
            ("lat", "pos.y"),
            ("lon", "pos.x"),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.cell, Some(0.05));
        assert_eq!(r.lat, Field::Data(vec!["pos".into(), "y".into()]));
        assert!(parse(&params(&[("cell", "auto")])).is_ok_and(|r| r.cell.is_none()));
        for (bad, name) in [
            (vec![("cell", "0")], "cell"),
            (vec![("cell", "NaN")], "cell"),
            (vec![("cell", "91")], "cell"),
            (vec![("lat", "value")], "lat"),
            (vec![("lon", "a..b")], "lon"),
            (vec![("q", "a:1 or")], "q"),
            (vec![("device", "a/b")], "device"),
            (vec![("zoom", "3")], "zoom"),
            (
                vec![
                    ("from", "2018-06-02T00:00:00Z"),
                    ("to", "2018-06-01T00:00:00Z"),
                ],
                "from",
            ),
        ] {
            let err = parse(&params(&bad))
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(
                err.details.get("parameter").and_then(|v| v.as_str()),
                Some(name),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn auto_cells_fit_the_extent() {
        // One city: a 1° extent gives 0.02° cells (at most 64 across).
        assert_eq!(auto_cell(&[cell(38, -78, 5)], 1.0), 0.02);
        // Measured again with those: 8 cells across (0.16°) gives 0.005° cells.
        assert_eq!(
            auto_cell(&[cell(1947, -3870, 5), cell(1954, -3865, 1)], 0.02),
            0.005
        );
        // Seville to Sydney: 158° of longitude gives 5° cells.
        assert_eq!(auto_cell(&[cell(37, -6, 1), cell(-34, 151, 1)], 1.0), 5.0);
        // The whole world.
        assert_eq!(
            auto_cell(&[cell(-90, -180, 1), cell(90, 180, 1)], 1.0),
            10.0
        );
    }

    #[test]
    fn coarsening_sums_whole_degree_cells() {
        let cells = [
            cell(38, -78, 2),
            cell(39, -77, 3),
            cell(-1, -1, 1),
            cell(-5, 0, 4),
        ];
        assert_eq!(
            coarsen(&cells, 5),
            vec![cell(-1, -1, 1), cell(-1, 0, 4), cell(7, -16, 5)]
        );
    }

    #[test]
    fn edges_are_round() {
        assert_eq!(edge(779, 0.05), 38.95);
        assert_eq!(edge(-3868, 0.02), -77.36);
    }
}
