//! The demo fleet of `ingot serve --demo`: the same scenarios, in process, so the
//! dashboard is alive at first start.
//!
//! Four weather stations (Seville, London, Sydney, New York) report every 10 s and
//! twelve vehicles drive around the default centre reporting every 2 s. Their documents
//! are parsed by `ingot_core::format::parse_body` and written through
//! [`Ingest::ingest`] — the one ingest path, with its validation and durability — as
//! [`Protocol::internal`] under a writer identity of the given tenant; no socket, no
//! credentials to manage.
//!
//! At start the stations also report the last 24 hours every 15 minutes, so charts have
//! a history at once. Those events carry ids derived from station, time and kind
//! (`demo-weather-seville-1790812800000-temperature`), so a restart with `--demo`
//! writes them again without duplicating them (the store is idempotent on id).
//!
//! Failures (the log closing at shutdown, a full disk) are logged and the fleet carries
//! on at its next tick; it never stops the server.

use std::sync::Arc;
use std::time::Duration;

use ingot_auth::Identity;
use ingot_core::format::{self, BodyFormat};
use ingot_core::{Draft, EventId, TenantId, Timestamp};
use ingot_ingest::{Ingest, Protocol};
use ingot_store::Role;
use tokio_util::sync::CancellationToken;

use crate::scenario::{Device, Message, ScenarioConfig, ScenarioKind, WeatherOptions};

/// Weather stations of the demo.
const CITIES: &str = "seville,london,sydney,new-york";
/// Vehicles of the demo.
const VEHICLES: usize = 12;
const WEATHER_EVERY: Duration = Duration::from_secs(10);
const VEHICLE_EVERY: Duration = Duration::from_secs(2);
const HISTORY: Duration = Duration::from_secs(24 * 3600);
const HISTORY_STEP: Duration = Duration::from_secs(15 * 60);

struct Member {
    device: Device,
    every: Duration,
    next: tokio::time::Instant,
}

fn fleet() -> Vec<Member> {
    let start = tokio::time::Instant::now();
    let mut weather = ScenarioConfig::new(ScenarioKind::Weather);
    if let Ok(cities) = WeatherOptions::parse_cities(CITIES) {
        weather.weather.cities = cities;
    }
    let stations = weather.weather.cities.len();
    let vehicles = ScenarioConfig::new(ScenarioKind::Vehicles);
    let mut members = Vec::new();
    for i in 0..stations {
        members.push(Member {
            device: weather.device(i, stations),
            every: WEATHER_EVERY,
            // Spread the reports over the interval.
            next: start + WEATHER_EVERY.mul_f64(i as f64 / stations as f64),
        });
    }
    for i in 0..VEHICLES {
        members.push(Member {
            device: vehicles.device(i, VEHICLES),
            every: VEHICLE_EVERY,
            next: start + VEHICLE_EVERY.mul_f64(i as f64 / VEHICLES as f64),
        });
    }
    members
}

fn parse(message: &Message, limits: &ingot_core::Limits) -> Option<Draft> {
    match format::parse_body(&message.body, BodyFormat::Json, limits) {
        Ok(mut drafts) if drafts.len() == 1 => drafts.pop(),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "demo fleet produced an invalid event");
            None
        }
    }
}

/// The last day of weather, with ids that make it idempotent across restarts.
fn history(limits: &ingot_core::Limits) -> Vec<Draft> {
    let mut weather = ScenarioConfig::new(ScenarioKind::Weather);
    if let Ok(cities) = WeatherOptions::parse_cities(CITIES) {
        weather.weather.cities = cities;
    }
    let stations = weather.weather.cities.len();
    let step = HISTORY_STEP.as_micros() as i64;
    let now = Timestamp::now().as_micros();
    let last = now - now.rem_euclid(step);
    let first = last - HISTORY.as_micros() as i64;
    let mut drafts = Vec::new();
    let mut message = Message::default();
    for i in 0..stations {
        let mut station = weather.device(i, stations);
        let mut t = first;
        while t <= last {
            let ts = Timestamp::from_micros(t);
            // Three reports at one instant: temperature, humidity and pressure.
            for _ in 0..3 {
                station.next(ts, &mut message);
                let Some(mut draft) = parse(&message, limits) else {
                    continue;
                };
                let kind = draft.kind.clone().unwrap_or_default();
                let id = format!("demo-{}-{}-{kind}", station.name(), ts.as_millis());
                draft.id = EventId::parse(&id).ok();
                drafts.push(draft);
            }
            t += step;
        }
    }
    drafts
}

/// Registers the demo fleet's devices in `tenant` (those not registered yet), so they are
/// listed with their status and last-seen time like real ones. Their tokens are random and
/// never shown: the fleet writes in process, and an operator who wants to drive one of
/// them from outside rotates its token.
pub async fn register(
    store: &dyn ingot_store::Store,
    tenant: TenantId,
) -> Result<usize, ingot_store::StoreError> {
    let mut added = 0;
    for member in fleet() {
        let name = member.device.name();
        if store.get_device(tenant, name).await?.is_none() {
            let token = ingot_auth::generate_secret(ingot_auth::SecretKind::DeviceToken);
            match store
                .create_device(tenant, name, &ingot_auth::hash_secret(&token))
                .await
            {
                Ok(_) => added += 1,
                // Another replica registered it at the same moment.
                Err(ingot_store::StoreError::AlreadyExists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(added)
}

/// Runs the demo fleet into `ingest` for `tenant` until `shutdown` is cancelled.
pub async fn run(ingest: Arc<Ingest>, tenant: TenantId, shutdown: CancellationToken) {
    let identity = Identity::Key {
        tenant,
        role: Role::Writer,
        key_id: "demo".into(),
    };
    let limits = ingest.limits().clone();
    let past = history(&limits);
    let count = past.len();
    if let Err(error) = ingest.ingest(&identity, Protocol::internal, past).await {
        tracing::warn!(%error, "demo fleet could not write its history");
    } else {
        tracing::info!(events = count, "demo fleet wrote the last day of weather");
    }
    let mut members = fleet();
    let mut message = Message::default();
    tracing::info!(
        devices = members.len(),
        "demo fleet running: weather stations and vehicles"
    );
    loop {
        let Some(due) = members.iter().map(|m| m.next).min() else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = shutdown.cancelled() => return,
        }
        let now = tokio::time::Instant::now();
        let ts = Timestamp::now();
        let mut drafts = Vec::new();
        for member in members.iter_mut().filter(|m| m.next <= now) {
            member.device.next(ts, &mut message);
            if let Some(draft) = parse(&message, &limits) {
                drafts.push(draft);
            }
            // Keep the schedule; after a long stall, skip what was missed.
            member.next += member.every;
            if member.next <= now {
                member.next = now + member.every;
            }
        }
        if drafts.is_empty() {
            continue;
        }
        let ingested = tokio::select! {
            result = ingest.ingest(&identity, Protocol::internal, drafts) => result,
            () = shutdown.cancelled() => return,
        };
        if let Err(error) = ingested {
            tracing::warn!(%error, "demo fleet could not write its events");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_a_day_of_three_measures_per_station_with_stable_ids() {
        let limits = ingot_core::Limits::default();
        let a = history(&limits);
        // 4 stations × 97 instants × 3 measures.
        assert_eq!(a.len(), 4 * 97 * 3);
        let ids: std::collections::HashSet<_> = a.iter().map(|d| d.id.clone().unwrap()).collect();
        assert_eq!(ids.len(), a.len());
        let b = history(&limits);
        assert_eq!(a[0].id, b[0].id, "ids survive a restart");
        assert_eq!(fleet().len(), 16);
    }

    #[tokio::test]
    async fn the_fleet_writes_through_ingest_until_shutdown() {
        use ingot_log::file::{FileLog, FileLogConfig, LogMetrics};
        let dir = tempfile::tempdir().unwrap();
        let config = FileLogConfig {
            dir: dir.path().to_path_buf(),
            ..FileLogConfig::default()
        };
        let log: Arc<dyn ingot_log::Log> =
            Arc::new(FileLog::open(config, LogMetrics::default()).unwrap());
        let ingest = Arc::new(Ingest::new(
            log,
            ingot_core::Limits::default(),
            ingot_ingest::IngestMetrics::default(),
        ));
        let mut live = ingest.live().subscribe();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(ingest.clone(), TenantId(7), shutdown.clone()));
        let mut vehicles = std::collections::HashSet::new();
        let mut weather = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while vehicles.len() < VEHICLES || weather < 4 * 97 * 3 {
            let event = tokio::time::timeout_at(deadline, live.recv())
                .await
                .expect("the fleet keeps sending")
                .unwrap();
            assert_eq!(event.tenant, TenantId(7));
            if event.device.starts_with("weather-") {
                weather += 1;
            } else {
                assert!(
                    event
                        .data
                        .as_ref()
                        .unwrap()
                        .as_str()
                        .contains("\"location\"")
                );
                vehicles.insert(event.device.clone());
            }
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }
}
