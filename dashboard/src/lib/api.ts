// The typed client of Ingot's HTTP API (crates/api/openapi.json), for the routes the UI uses.
//
// Every request carries the API key of the session. The API answers errors as
// `{"error": {"code", "message", ...where}}`; they surface as `ApiError`, with the column of
// a query's syntax error when there is one. A 401 ends the session (see session.ts).

import { session } from './session';

/** An event as listed by `GET /api/v1/events`. */
export interface IngotEvent {
  id: string;
  device: string;
  sensor: string | null;
  ts: string;
  kind: string | null;
  value: number | null;
  data: unknown;
}

export interface EventPage {
  events: IngotEvent[];
  next: string | null;
  total?: number;
  histogram?: [string, number][];
  histogram_interval?: string;
}

export interface SeriesAnswer {
  interval: string;
  series: {
    group: string | null;
    other?: boolean;
    q?: string;
    points: [string, number | null][];
  }[];
}

export interface GeoAnswer {
  cell: number;
  lat: string;
  lon: string;
  total: number;
  /** `[south, west, count]`. */
  cells: [number, number, number][];
}

export type Role = 'reader' | 'writer' | 'admin' | 'system';

export interface WhoAmI {
  tenant: string;
  role: Role;
  key_id: string;
}

export interface Device {
  device: string;
  enabled: boolean;
  labels: Record<string, string>;
  created: string;
  last_seen: string | null;
  events_last_hour?: number;
  events_per_minute?: number;
  last_event?: string | null;
}

export interface DashboardSummary {
  id: string;
  name: string;
  updated: string;
}

export interface SavedDashboard<Spec> extends DashboardSummary {
  spec: Spec;
}

/** An error answer of the API, or a failure to reach it. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The 1-based column of a filter's syntax error, if that is what this is. */
  get column(): number | undefined {
    const column = this.details.column;
    return typeof column === 'number' ? column : undefined;
  }

  /** Which repeated `q` was wrong (series), 0-based. */
  get index(): number | undefined {
    const index = this.details.index;
    return typeof index === 'number' ? index : undefined;
  }

  get parameter(): string | undefined {
    const parameter = this.details.parameter;
    return typeof parameter === 'string' ? parameter : undefined;
  }

  /** The reason of a syntax error without the API's preamble ("query parameter `q` has ..."). */
  get reason(): string {
    const match = /at column \d+: (.*)$/s.exec(this.message);
    return match?.[1] ?? this.message;
  }
}

/** Query parameters: repeated keys as arrays; empty and undefined values are left out. */
export type Params = Record<string, string | number | boolean | undefined | (string | undefined)[]>;

export function query(params: Params): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v !== undefined && v !== '') search.append(key, String(v));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function request<T>(
  method: string,
  path: string,
  options: { params?: Params; body?: unknown; key?: string; signal?: AbortSignal } = {},
): Promise<T> {
  const key = options.key ?? session.key();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}${query(options.params ?? {})}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError('the server cannot be reached', 0, 'unreachable');
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: reported below if the status says so.
  }
  if (!response.ok) {
    const error = (body as { error?: Record<string, unknown> } | undefined)?.error ?? {};
    const { code, message, ...details } = error;
    const failure = new ApiError(
      typeof message === 'string' ? message : `${response.status} ${response.statusText}`,
      response.status,
      typeof code === 'string' ? code : 'error',
      details,
    );
    if (response.status === 401 && !options.key) session.expire(failure.message);
    throw failure;
  }
  return body as T;
}

export const api = {
  whoami: (key: string) => request<WhoAmI>('GET', '/whoami', { key }),

  events: (params: Params, signal?: AbortSignal) =>
    request<EventPage>('GET', '/events', { params, signal }),

  series: (params: Params, signal?: AbortSignal) =>
    request<SeriesAnswer>('GET', '/series', { params, signal }),

  geo: (params: Params, signal?: AbortSignal) =>
    request<GeoAnswer>('GET', '/geo', { params, signal }),

  devices: (signal?: AbortSignal) =>
    request<{ devices: Device[] }>('GET', '/devices', { signal }),

  device: (name: string, signal?: AbortSignal) =>
    request<Device>('GET', `/devices/${encodeURIComponent(name)}`, { signal }),

  dashboards: (signal?: AbortSignal) =>
    request<{ dashboards: DashboardSummary[] }>('GET', '/dashboards', { signal }),

  dashboard: <Spec>(id: string, signal?: AbortSignal) =>
    request<SavedDashboard<Spec>>('GET', `/dashboards/${encodeURIComponent(id)}`, { signal }),

  saveDashboard: <Spec>(id: string, name: string, spec: Spec) =>
    request<SavedDashboard<Spec>>('PUT', `/dashboards/${encodeURIComponent(id)}`, {
      body: { name, spec },
    }),

  deleteDashboard: (id: string) =>
    request<void>('DELETE', `/dashboards/${encodeURIComponent(id)}`),
};

/** Whether `e` is the abort of a superseded request (not worth showing). */
export function aborted(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}
