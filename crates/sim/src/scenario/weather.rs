//! `weather`: one station per city reporting temperature, humidity and pressure in turn
//! (one canonical event per report, `kind` rotating), with the day's cycle.
//!
//! The model, per city: temperature = annual mean + seasonal swing (peaking in July in
//! the north, January in the south) + daily swing (warmest at 15:00 local solar time,
//! from the longitude) + a slow random "weather" offset + noise. Relative humidity falls
//! as the day warms; pressure wanders around 1013 hPa. Plausible numbers for charts and
//! comparisons across cities, not a forecast.

use std::f64::consts::TAU;

use ingot_core::Timestamp;

use super::{Message, push_num, push_ts};
use crate::error::SimError;
use crate::rng::Rng;

/// A city the scenario knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// Its name on the command line and in events.
    pub name: &'static str,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Annual mean temperature, °C.
    pub mean: f64,
    /// Half the difference between the warmest and coldest month, °C.
    pub seasonal: f64,
    /// Half the typical daily range, °C.
    pub daily: f64,
    /// Mean relative humidity, %.
    pub humidity: f64,
}

const fn city(
    name: &'static str,
    lat: f64,
    lon: f64,
    mean: f64,
    seasonal: f64,
    daily: f64,
    humidity: f64,
) -> City {
    City {
        name,
        lat,
        lon,
        mean,
        seasonal,
        daily,
        humidity,
    }
}

/// Every city `--cities` accepts.
pub const CITIES: [City; 16] = [
    city("seville", 37.3891, -5.9845, 19.2, 8.5, 7.0, 60.0),
    city("london", 51.5072, -0.1276, 11.3, 6.5, 4.0, 75.0),
    city("sydney", -33.8688, 151.2093, 18.0, 4.5, 4.0, 65.0),
    city("new-york", 40.7128, -74.0060, 12.9, 11.0, 4.5, 63.0),
    city("madrid", 40.4168, -3.7038, 15.0, 9.5, 7.0, 57.0),
    city("paris", 48.8566, 2.3522, 12.3, 7.5, 4.5, 72.0),
    city("berlin", 52.5200, 13.4050, 10.0, 9.5, 4.5, 74.0),
    city("tokyo", 35.6762, 139.6503, 15.8, 10.5, 4.0, 65.0),
    city("moscow", 55.7558, 37.6173, 5.8, 14.0, 4.0, 77.0),
    city("singapore", 1.3521, 103.8198, 27.5, 1.0, 3.5, 82.0),
    city("sao-paulo", -23.5505, -46.6333, 19.5, 3.5, 5.0, 78.0),
    city("cape-town", -33.9249, 18.4241, 16.7, 4.5, 5.0, 70.0),
    city("mumbai", 19.0760, 72.8777, 27.2, 2.5, 3.5, 75.0),
    city("cairo", 30.0444, 31.2357, 22.1, 7.5, 6.5, 55.0),
    city("reykjavik", 64.1466, -21.9426, 4.7, 5.5, 2.5, 78.0),
    city("nairobi", -1.2921, 36.8219, 17.8, 1.5, 6.0, 68.0),
];

/// Options of the `weather` scenario.
#[derive(Debug, Clone)]
pub struct WeatherOptions {
    /// The stations' cities, in order; devices beyond them reuse the list with a suffix.
    pub cities: Vec<City>,
}

impl Default for WeatherOptions {
    fn default() -> Self {
        WeatherOptions {
            cities: CITIES[..4].to_vec(),
        }
    }
}

impl WeatherOptions {
    /// Parses a comma-separated list of city names.
    pub fn parse_cities(list: &str) -> Result<Vec<City>, SimError> {
        let mut cities = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let known = CITIES.iter().find(|c| c.name.eq_ignore_ascii_case(name));
            match known {
                Some(city) => cities.push(*city),
                None => {
                    let names: Vec<&str> = CITIES.iter().map(|c| c.name).collect();
                    return Err(SimError::option(
                        "cities",
                        format!("unknown city `{name}` (known: {})", names.join(", ")),
                    ));
                }
            }
        }
        if cities.is_empty() {
            return Err(SimError::option("cities", "name at least one city"));
        }
        Ok(cities)
    }

    pub(super) fn validate(&self) -> Result<(), SimError> {
        if self.cities.is_empty() {
            return Err(SimError::option("cities", "name at least one city"));
        }
        Ok(())
    }
}

pub(super) fn device_name(options: &WeatherOptions, index: usize) -> String {
    let n = options.cities.len().max(1);
    let city = options.cities.get(index % n).map_or("nowhere", |c| c.name);
    if index < n {
        format!("weather-{city}")
    } else {
        format!("weather-{city}-{}", index / n + 1)
    }
}

/// A station's state.
#[derive(Debug)]
pub struct Station {
    name: String,
    city: City,
    rng: Rng,
    /// Slowly wandering offset from the climatological temperature, °C.
    front: f64,
    /// Current pressure, hPa.
    pressure: f64,
    /// Which measure is next (0 temperature, 1 humidity, 2 pressure).
    turn: u8,
    /// `,"data":{"city":"…","location":{…},"unit":"` — constant but for the unit.
    data_head: Vec<u8>,
}

impl Station {
    pub(super) fn new(options: &WeatherOptions, name: String, index: usize, seed: u64) -> Station {
        let n = options.cities.len().max(1);
        let city = options.cities.get(index % n).copied().unwrap_or(CITIES[0]);
        let mut rng = Rng::new(seed, 0x5745_4154 ^ index as u64);
        // Stations of one city beyond the first sit a few km apart.
        let spread = if index < n { 0.0 } else { 0.05 };
        let lat = city.lat + rng.range(-spread, spread);
        let lon = city.lon + rng.range(-spread, spread);
        let front = rng.range(-2.0, 2.0);
        let pressure = 1013.0 + rng.range(-8.0, 8.0);
        let turn = (index % 3) as u8;
        let mut data_head =
            format!(r#","data":{{"city":"{}","location":{{"lat":"#, city.name).into_bytes();
        push_num(&mut data_head, lat, 5);
        data_head.extend_from_slice(br#","lon":"#);
        push_num(&mut data_head, lon, 5);
        data_head.extend_from_slice(br#"},"unit":""#);
        Station {
            name,
            city: City { lat, lon, ..city },
            rng,
            front,
            pressure,
            turn,
            data_head,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Temperature and humidity of the city at `now`, before noise.
    pub(super) fn climate(&self, now: Timestamp) -> (f64, f64) {
        let secs = now.as_micros() as f64 / 1e6;
        let day_of_year = (secs / 86_400.0).rem_euclid(365.2425);
        // Warmest around 20 July (day 200) in the north, 20 January in the south.
        let peak = if self.city.lat >= 0.0 { 200.0 } else { 17.0 };
        let seasonal = self.city.seasonal * (TAU * (day_of_year - peak) / 365.2425).cos();
        let local_hour = ((secs / 3600.0) + self.city.lon / 15.0).rem_euclid(24.0);
        let daily_phase = (TAU * (local_hour - 15.0) / 24.0).cos();
        let temperature = self.city.mean + seasonal + self.city.daily * daily_phase + self.front;
        // Drier in the warm afternoon, wetter at dawn.
        let humidity = self.city.humidity - 12.0 * daily_phase;
        (temperature, humidity)
    }

    pub(super) fn next(&mut self, now: Timestamp, out: &mut Message) {
        // The weather drifts a little between reports.
        self.front = (self.front + self.rng.gauss() * 0.15).clamp(-4.0, 4.0);
        self.pressure = (self.pressure + self.rng.gauss() * 0.3 + (1013.0 - self.pressure) * 0.01)
            .clamp(960.0, 1050.0);
        let (temperature, humidity) = self.climate(now);
        let (kind, value, unit, decimals) = match self.turn {
            0 => ("temperature", temperature + self.rng.gauss() * 0.2, "C", 1),
            1 => (
                "humidity",
                (humidity + self.rng.gauss() * 2.0).clamp(3.0, 100.0),
                "%",
                1,
            ),
            _ => ("pressure", self.pressure, "hPa", 1),
        };
        self.turn = (self.turn + 1) % 3;
        let body = &mut out.body;
        body.extend_from_slice(br#"{"device":""#);
        body.extend_from_slice(self.name.as_bytes());
        body.extend_from_slice(br#"","sensor":"station","ts":""#);
        push_ts(body, now);
        body.extend_from_slice(br#"","kind":""#);
        body.extend_from_slice(kind.as_bytes());
        body.extend_from_slice(br#"","value":"#);
        push_num(body, value, decimals);
        body.extend_from_slice(&self.data_head);
        body.extend_from_slice(unit.as_bytes());
        body.extend_from_slice(br#""}}"#);
    }
}
