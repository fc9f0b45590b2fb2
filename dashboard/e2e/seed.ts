// Seed data, sent through the HTTP API as devices send it (each device with its own token):
//
// - four weather stations in the collector format (`sender` = device, `origin` = city,
//   `payload.type/value`): a temperature every 15 minutes and a humidity every 30 minutes
//   over the last 24 hours;
// - five vehicles in the flat telemetry format (`vin`, `vehicle_speed`, `fuel_level`,
//   `location: {lat, lon}`) around Dulles, Virginia, every minute over the last 40 minutes;
// - one registered device that never sent anything.
//
// Returns what the tests assert against.

import { readFileSync } from 'node:fs';

export const CITIES = [
  { name: 'seville', mean: 19, lon: -5.98 },
  { name: 'london', mean: 11, lon: -0.13 },
  { name: 'sydney', mean: 18, lon: 151.21 },
  { name: 'new-york', mean: 13, lon: -74.01 },
] as const;

export const VEHICLES = ['BSTZ9IEK39HHYZB6I', 'WVWZZZ1JZ3W386752', 'JH4KA7561PC008269', '1HGCM82633A004352', '5YJ3E1EA7KF317000'];

export interface Facts {
  /** Temperatures per city in the last 24 hours. */
  temperaturesPerCity: number;
  humiditiesPerCity: number;
  positionsPerVehicle: number;
  readerKey: string;
  /** The admin key of tenant `acme`, created through the API (no events). */
  acmeKey: string;
  /** A writer key (saves dashboards, cannot manage devices). */
  writerKey: string;
  /** The device token of `station-seville`, to send more while a test watches. */
  sevilleToken: string;
}

const MINUTE = 60_000;

/** A small deterministic generator, so every run seeds the same shapes. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function call(base: string, key: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function device(base: string, adminKey: string, name: string, labels: Record<string, string>): Promise<string> {
  const created = (await call(base, adminKey, 'POST', '/devices', { name, labels })) as { token: string };
  return created.token;
}

export async function seed(base: string, adminKey: string): Promise<Facts> {
  const now = Date.now();
  const next = random(42);
  const tokens: Record<string, string> = {};

  for (const city of CITIES) {
    const name = `station-${city.name}`;
    const token = await device(base, adminKey, name, { site: city.name, type: 'weather' });
    tokens[name] = token;
    const events = [];
    for (let k = 0; k < 96; k += 1) {
      const ts = now - 30_000 - k * 15 * MINUTE;
      const hour = new Date(ts).getUTCHours() + new Date(ts).getUTCMinutes() / 60 + city.lon / 15;
      const temperature = city.mean + 6 * Math.sin((2 * Math.PI * (hour - 9)) / 24) + (next() - 0.5);
      const timestamp = new Date(ts).toISOString();
      events.push({
        namespace: 'default',
        sender: name,
        origin: city.name,
        payload: { type: 'temperature', value: Math.round(temperature * 10) / 10 },
        timestamp,
      });
      if (k % 2 === 0) {
        const humidity = 65 - 15 * Math.sin((2 * Math.PI * (hour - 9)) / 24) + 4 * next();
        events.push({
          namespace: 'default',
          sender: name,
          origin: city.name,
          payload: { type: 'humidity', value: Math.round(humidity) },
          timestamp,
        });
      }
    }
    await call(base, token, 'POST', '/events', events);
  }

  for (const [i, vin] of VEHICLES.entries()) {
    const token = await device(base, adminKey, vin, { type: 'vehicle' });
    let lat = 38.956 + (next() - 0.5) * 0.08;
    let lon = -77.398 + (next() - 0.5) * 0.1;
    let fuel = 40 + 50 * next();
    const events = [];
    for (let k = 39; k >= 0; k -= 1) {
      const ts = now - 20_000 - i * 3_000 - k * MINUTE;
      const speed = Math.max(0, 45 + 40 * Math.sin(k / 4 + i) + 10 * next());
      lat += (next() - 0.5) * 0.01;
      lon += (next() - 0.5) * 0.012;
      fuel = Math.max(5, fuel - 0.05 * next());
      events.push({
        timestamp: new Date(ts).toISOString(),
        vin,
        vehicle_speed: Math.round(speed * 10) / 10,
        engine_speed: Math.round(800 + speed * 28),
        fuel_level: Math.round(fuel * 10) / 10,
        heading: Math.round(next() * 360),
        location: { lat: Math.round(lat * 1e5) / 1e5, lon: Math.round(lon * 1e5) / 1e5 },
      });
    }
    await call(base, token, 'POST', '/events', events);
  }

  await device(base, adminKey, 'probe-7', { type: 'probe' });

  // Every new tenant gets the built-in Fleet overview (crates/api/src/dashboards.rs).
  const acme = (await call(base, adminKey, 'POST', '/tenants', { name: 'acme' })) as { key: string };
  // Tenant `default` is created by the server's first start, outside the API; should that
  // path not have saved the Fleet overview, save the same spec so the views can be tested.
  const builtin = await fetch(`${base}/api/v1/dashboards/fleet-overview`, {
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  if (builtin.status === 404) {
    console.warn('seed: tenant `default` has no built-in Fleet overview; saving crates/api/src/fleet-overview.json');
    const spec = JSON.parse(readFileSync(new URL('../../crates/api/src/fleet-overview.json', import.meta.url), 'utf8')) as unknown;
    await call(base, adminKey, 'PUT', '/dashboards/fleet-overview', { name: 'Fleet overview', spec });
  }
  const reader = (await call(base, adminKey, 'POST', '/keys', { role: 'reader' })) as { key: string };
  const writer = (await call(base, adminKey, 'POST', '/keys', { role: 'writer' })) as { key: string };

  // The store writer moves events from the log into the store asynchronously: wait until
  // every one is queryable.
  const expected = CITIES.length * (96 + 48) + VEHICLES.length * 40;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const page = (await call(base, adminKey, 'GET', '/events?limit=1&total=true')) as { total: number };
    if (page.total >= expected) break;
    if (Date.now() > deadline) throw new Error(`only ${page.total} of ${expected} events were stored`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    temperaturesPerCity: 96,
    humiditiesPerCity: 48,
    positionsPerVehicle: 40,
    readerKey: reader.key,
    acmeKey: acme.key,
    writerKey: writer.key,
    sevilleToken: tokens['station-seville'] ?? '',
  };
}
