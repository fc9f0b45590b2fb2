//! `vehicles`: cars driving a street grid around a centre, reporting a flat telemetry
//! document with `location: {lat, lon}` — the shape of the brief's example:
//!
//! ```json
//! {"timestamp":"…","vin":"BSTZ9EK39HH000001","vehicle_speed":48.3,"engine_speed":1790,
//!  "fuel_level":76.8,"fuel_consumption":6.9,"odometer":48210.4,"gear":4,"brake":false,
//!  "heading":90,"location":{"lat":38.95618,"lon":-77.39835}}
//! ```
//!
//! # The model
//!
//! Streets form a grid with a block of 400 m; every fifth street is an arterial road
//! (90 km/h), the others urban (50 km/h). A car drives along a street, accelerating at
//! most 2 m/s² and braking at most 4.5 m/s²; at each crossing it goes straight (60 %) or
//! turns, and turns back towards the centre when it would leave `--radius`. A quarter of
//! the crossings have a red light: the car brakes to a stop before it and waits 5 to 40
//! s. Gear and engine speed follow the speed; fuel consumption follows speed and
//! acceleration, the tank drains with the distance (and idling) and is refilled below 6 %.
//! The state is advanced in steps of at most 0.5 s between two reports, so positions are
//! continuous and speeds change plausibly whatever the reporting interval.

use ingot_core::Timestamp;

use super::{Message, push_num, push_ts};
use crate::error::SimError;
use crate::rng::Rng;

/// Options of the `vehicles` scenario.
#[derive(Debug, Clone)]
pub struct VehicleOptions {
    /// Latitude of the centre.
    pub lat: f64,
    /// Longitude of the centre.
    pub lon: f64,
    /// How far from the centre cars drive, km.
    pub radius_km: f64,
}

impl Default for VehicleOptions {
    fn default() -> Self {
        // The brief's example position (Dulles, Virginia).
        VehicleOptions {
            lat: 38.95618,
            lon: -77.39835,
            radius_km: 8.0,
        }
    }
}

impl VehicleOptions {
    /// Parses `lat,lon`.
    pub fn parse_center(text: &str) -> Result<(f64, f64), SimError> {
        let bad = || SimError::option("center", format!("`{text}` is not `lat,lon`"));
        let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
        let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
        let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
        Ok((lat, lon))
    }

    pub(super) fn validate(&self) -> Result<(), SimError> {
        if !(self.lat.abs() <= 85.0 && self.lon.abs() <= 180.0) {
            return Err(SimError::option(
                "center",
                "latitude must be within ±85 and longitude within ±180",
            ));
        }
        if !(self.radius_km >= 0.5 && self.radius_km <= 200.0) {
            return Err(SimError::option("radius", "must be between 0.5 and 200 km"));
        }
        Ok(())
    }
}

const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
const BLOCK_M: f64 = 400.0;
const ACCEL: f64 = 2.0;
const BRAKE: f64 = 4.5;
const TANK_L: f64 = 55.0;
const METERS_PER_DEGREE: f64 = 111_320.0;
/// (dx, dy) per heading: north, east, south, west.
const DIRS: [(f64, f64); 4] = [(0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)];

/// A vehicle identification number: 11 random characters (I, O, Q excluded, as in real
/// VINs) and a 6-digit serial, so a fleet's VINs are distinct.
pub(super) fn vin(seed: u64, index: usize) -> String {
    let mut rng = Rng::new(seed, 0x0056_494E ^ index as u64);
    let mut vin: String = (0..11)
        .map(|_| VIN_CHARS[rng.below(VIN_CHARS.len() as u64) as usize] as char)
        .collect();
    vin.push_str(&format!("{:06}", (index + 1) % 1_000_000));
    vin
}

/// A vehicle's state.
#[derive(Debug)]
pub struct Vehicle {
    name: String,
    rng: Rng,
    center_lat: f64,
    center_lon: f64,
    radius_m: f64,
    /// Position east and north of the centre, m.
    x: f64,
    y: f64,
    /// Index into `DIRS`.
    heading: usize,
    /// m/s.
    speed: f64,
    /// The driver's pace relative to the limit.
    pace: f64,
    /// Seconds left waiting at a red light.
    waiting: f64,
    /// Whether the next crossing has a red light.
    stop_ahead: bool,
    braking: bool,
    accel: f64,
    fuel_pct: f64,
    /// Smoothed consumption, L/100 km.
    consumption: f64,
    odometer_km: f64,
    last: Option<Timestamp>,
}

impl Vehicle {
    pub(super) fn new(options: &VehicleOptions, name: String, index: usize, seed: u64) -> Vehicle {
        let mut rng = Rng::new(seed, 0x0056_4548 ^ index as u64);
        let radius_m = options.radius_km * 1000.0;
        let blocks = (radius_m / BLOCK_M).floor().max(1.0) as u64;
        let coord = |rng: &mut Rng| (rng.below(2 * blocks + 1) as f64 - blocks as f64) * BLOCK_M;
        let x = coord(&mut rng);
        let y = coord(&mut rng);
        let heading = rng.below(4) as usize;
        let pace = rng.range(0.9, 1.08);
        let fuel_pct = rng.range(25.0, 100.0);
        let odometer_km = rng.range(2_000.0, 180_000.0);
        let stop_ahead = rng.chance(0.25);
        Vehicle {
            name,
            rng,
            center_lat: options.lat,
            center_lon: options.lon,
            radius_m,
            x,
            y,
            heading,
            speed: 0.0,
            pace,
            waiting: 0.0,
            stop_ahead,
            braking: false,
            accel: 0.0,
            fuel_pct,
            consumption: 6.5,
            odometer_km,
            last: None,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The coordinate along the direction of travel, and the street's index across it.
    fn along_and_street(&self) -> (f64, f64) {
        let (dx, dy) = DIRS[self.heading];
        if dx != 0.0 {
            (self.x * dx, self.y)
        } else {
            (self.y * dy, self.x)
        }
    }

    fn limit(&self) -> f64 {
        let (_, street) = self.along_and_street();
        let index = (street / BLOCK_M).round() as i64;
        let kmh = if index.rem_euclid(5) == 0 { 90.0 } else { 50.0 };
        kmh / 3.6 * self.pace
    }

    /// Distance to the next crossing ahead (0 when on one, heading away counts as ahead).
    fn to_crossing(&self) -> f64 {
        let (along, _) = self.along_and_street();
        let next = (along / BLOCK_M).floor() * BLOCK_M + BLOCK_M;
        let d = next - along;
        if d >= BLOCK_M - 1e-6 { BLOCK_M } else { d }
    }

    /// At a crossing: straight on, left or right, turning back towards the centre at the
    /// edge of the area; never a U-turn.
    fn choose_direction(&mut self) {
        let outside = |x: f64, y: f64, r: f64| x.abs() > r || y.abs() > r;
        let straight = self.heading;
        let left = (self.heading + 3) % 4;
        let right = (self.heading + 1) % 4;
        let roll = self.rng.unit();
        let mut choice = if roll < 0.6 {
            straight
        } else if roll < 0.8 {
            left
        } else {
            right
        };
        let ahead = |h: usize| (self.x + DIRS[h].0 * BLOCK_M, self.y + DIRS[h].1 * BLOCK_M);
        let (nx, ny) = ahead(choice);
        if outside(nx, ny, self.radius_m) {
            // Pick, among the three, the one that brings the car closest to the centre.
            choice = [straight, left, right]
                .into_iter()
                .min_by(|&a, &b| {
                    let (ax, ay) = ahead(a);
                    let (bx, by) = ahead(b);
                    (ax.abs().max(ay.abs())).total_cmp(&bx.abs().max(by.abs()))
                })
                .unwrap_or(straight);
        }
        self.heading = choice;
    }

    fn step(&mut self, dt: f64) {
        if self.waiting > 0.0 {
            self.waiting -= dt;
            self.speed = 0.0;
            self.accel = 0.0;
            self.braking = true;
            self.burn_idle(dt);
            if self.waiting <= 0.0 {
                self.waiting = 0.0;
                self.choose_direction();
                self.stop_ahead = self.rng.chance(0.25);
            }
            return;
        }
        let limit = self.limit();
        let dist = self.to_crossing();
        if self.stop_ahead && dist <= 4.0 && self.speed < 1.0 {
            // Crept up to the stop line: wait there.
            self.advance(dist);
            self.snap();
            self.speed = 0.0;
            self.accel = 0.0;
            self.waiting = self.rng.range(5.0, 40.0);
            return;
        }
        let desired = if self.stop_ahead {
            (2.0 * BRAKE * 0.7 * (dist - 3.0).max(0.0))
                .sqrt()
                .min(limit)
        } else {
            limit
        };
        let before = self.speed;
        if self.speed < desired {
            self.speed = (self.speed + ACCEL * dt).min(desired);
        } else {
            self.speed = (self.speed - BRAKE * dt).max(desired).max(0.0);
        }
        self.accel = (self.speed - before) / dt;
        self.braking = self.accel < -0.5;
        let mut travel = (before + self.speed) / 2.0 * dt;
        if travel >= dist - 1e-9 {
            // Reach the crossing; stop there for a red light, or go on.
            self.advance(dist);
            travel -= dist;
            self.snap();
            if self.stop_ahead && self.speed < 3.0 {
                self.speed = 0.0;
                self.waiting = self.rng.range(5.0, 40.0);
                return;
            }
            self.choose_direction();
            self.stop_ahead = self.rng.chance(0.25);
        }
        self.advance(travel);
    }

    fn advance(&mut self, meters: f64) {
        let (dx, dy) = DIRS[self.heading];
        self.x += dx * meters;
        self.y += dy * meters;
        self.odometer_km += meters / 1000.0;
        let kmh = self.speed * 3.6;
        if meters > 0.0 && kmh > 3.0 {
            let instant = 4.0 + 0.0006 * kmh * kmh + 3.0 * self.accel.max(0.0);
            self.consumption += (instant - self.consumption) * 0.05;
            self.burn(instant * meters / 100_000.0);
        }
    }

    fn burn_idle(&mut self, dt: f64) {
        // About 0.8 L/h at idle.
        self.burn(0.8 * dt / 3600.0);
    }

    fn burn(&mut self, liters: f64) {
        self.fuel_pct -= liters / TANK_L * 100.0;
        if self.fuel_pct < 6.0 {
            self.fuel_pct = self.rng.range(92.0, 100.0);
        }
    }

    /// Removes rounding drift: on a crossing, both coordinates are on the grid.
    fn snap(&mut self) {
        self.x = (self.x / BLOCK_M).round() * BLOCK_M;
        self.y = (self.y / BLOCK_M).round() * BLOCK_M;
    }

    fn gear(kmh: f64) -> u8 {
        match kmh {
            k if k < 1.0 => 0,
            k if k < 20.0 => 1,
            k if k < 35.0 => 2,
            k if k < 50.0 => 3,
            k if k < 65.0 => 4,
            k if k < 85.0 => 5,
            _ => 6,
        }
    }

    pub(super) fn next(&mut self, now: Timestamp, out: &mut Message) {
        if let Some(last) = self.last {
            // Simulate at most the last two minutes of a long gap.
            let mut left = ((now.as_micros() - last.as_micros()) as f64 / 1e6).clamp(0.0, 120.0);
            while left > 1e-6 {
                let dt = left.min(0.5);
                self.step(dt);
                left -= dt;
            }
        }
        self.last = Some(now);
        let kmh = self.speed * 3.6;
        let gear = Self::gear(kmh);
        const RATIO: [f64; 7] = [0.0, 110.0, 68.0, 48.0, 37.0, 30.0, 25.0];
        let rpm = if gear == 0 {
            780.0 + self.rng.range(0.0, 40.0)
        } else {
            (kmh * RATIO[usize::from(gear)]).max(900.0) + self.rng.range(-30.0, 30.0)
        };
        let lat = self.center_lat + self.y / METERS_PER_DEGREE;
        let lon = self.center_lon
            + self.x / (METERS_PER_DEGREE * self.center_lat.to_radians().cos().max(0.01));
        let body = &mut out.body;
        body.extend_from_slice(br#"{"timestamp":""#);
        push_ts(body, now);
        body.extend_from_slice(br#"","vin":""#);
        body.extend_from_slice(self.name.as_bytes());
        body.extend_from_slice(br#"","vehicle_speed":"#);
        push_num(body, kmh, 1);
        body.extend_from_slice(br#","engine_speed":"#);
        push_num(body, rpm, 0);
        body.extend_from_slice(br#","fuel_level":"#);
        push_num(body, self.fuel_pct, 1);
        body.extend_from_slice(br#","fuel_consumption":"#);
        push_num(body, self.consumption, 1);
        body.extend_from_slice(br#","odometer":"#);
        push_num(body, self.odometer_km, 1);
        body.extend_from_slice(br#","gear":"#);
        push_num(body, f64::from(gear), 0);
        body.extend_from_slice(if self.braking {
            br#","brake":true,"heading":"#.as_slice()
        } else {
            br#","brake":false,"heading":"#.as_slice()
        });
        push_num(body, (self.heading * 90) as f64, 0);
        body.extend_from_slice(br#","location":{"lat":"#);
        push_num(body, lat, 6);
        body.extend_from_slice(br#","lon":"#);
        push_num(body, lon, 6);
        body.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cars_stay_in_the_area_move_plausibly_and_stop_at_lights() {
        let options = VehicleOptions::default();
        for index in 0..20 {
            let mut car = Vehicle::new(&options, vin(3, index), index, 3);
            let (mut max_speed, mut stops) = (0.0f64, 0);
            let mut was_waiting = false;
            for _ in 0..7_200 {
                // Two simulated hours at 1 s.
                let (x0, y0) = (car.x, car.y);
                car.step(1.0);
                let moved = ((car.x - x0).powi(2) + (car.y - y0).powi(2)).sqrt();
                assert!(moved <= 28.0, "jumped {moved} m in 1 s");
                max_speed = max_speed.max(car.speed);
                if car.waiting > 0.0 && !was_waiting {
                    stops += 1;
                }
                was_waiting = car.waiting > 0.0;
                let r = car.radius_m + 2.0 * BLOCK_M;
                assert!(car.x.abs() <= r && car.y.abs() <= r, "left the area");
                // On a street: one coordinate is on the grid.
                let on_grid = |v: f64| ((v / BLOCK_M).round() * BLOCK_M - v).abs() < 1e-3;
                assert!(
                    on_grid(car.x) || on_grid(car.y),
                    "off-road at {} {}",
                    car.x,
                    car.y
                );
                assert!((0.0..=100.0).contains(&car.fuel_pct));
            }
            assert!(max_speed * 3.6 > 40.0, "never got going");
            assert!(max_speed * 3.6 < 100.0, "too fast: {}", max_speed * 3.6);
            assert!(stops > 0, "never stopped at a light");
        }
    }

    #[test]
    fn vins_are_valid_names_and_distinct() {
        let vins: std::collections::HashSet<String> = (0..1000).map(|i| vin(1, i)).collect();
        assert_eq!(vins.len(), 1000);
        for v in &vins {
            assert_eq!(v.len(), 17);
            assert!(!v.contains(['I', 'O', 'Q']));
            ingot_core::name::validate(v).unwrap();
        }
    }
}
