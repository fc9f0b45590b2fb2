// The format of a saved dashboard's `spec` (the server stores it as given; this file is its
// definition). Version 1:
//
//   { "version": 1, "range": "24h" | {"from", "to"}, "refresh": "off" | "5s" | "30s",
//     "widgets": [ { "id", "type", "title", "x", "y", "w", "h", "query": {...}, ...options } ] }
//
// - `x`, `y`, `w`, `h`: the widget's place on a grid of 12 columns and rows of fixed height.
// - `type` and what its `query` means:
//   - `timeseries`: `GET /series` with q, field, agg, interval, group_by, top; `style`
//     `"line"` (default) or `"bar"`.
//   - `pie`: `GET /series` with q, field, agg (count or sum), group_by, top, summed over
//     the range: one slice per group.
//   - `gauge`: the newest event matching q; its `field` (`value` or a data path), against
//     `min`, `max` and `thresholds` ([{value, color}], ascending: the colour of the highest
//     threshold reached).
//   - `table`: the newest `limit` events matching q.
//   - `map`: the newest position (`data.location.lat/lon`) of each device among the newest
//     `limit` (default 1,000) events matching q.
//   - `heatmap`: `GET /geo` with q: events per latitude/longitude cell over the range.
//
// `normalize` accepts anything and returns a valid spec, so a hand-edited or older spec
// never breaks the page: unknown widget types are dropped, sizes are clamped.

import { type Refresh, type SpecRange, isRefresh } from './time';

export const COLUMNS = 12;
export const ROW_HEIGHT = 64;
export const GAP = 12;

export const WIDGET_TYPES = ['timeseries', 'pie', 'gauge', 'table', 'map', 'heatmap'] as const;
export type WidgetType = (typeof WIDGET_TYPES)[number];

export const WIDGET_LABELS: Record<WidgetType, string> = {
  timeseries: 'Time series',
  pie: 'Pie',
  gauge: 'Gauge',
  table: 'Table',
  map: 'Map of latest positions',
  heatmap: 'Geo heat map',
};

export interface WidgetQuery {
  q: string;
  field?: string;
  agg?: string;
  interval?: string;
  group_by?: string;
  top?: number;
  limit?: number;
}

export interface Threshold {
  value: number;
  color: string;
}

export interface Widget {
  id: string;
  type: WidgetType;
  title: string;
  x: number;
  y: number;
  w: number;
  h: number;
  query: WidgetQuery;
  style?: 'line' | 'bar';
  thresholds?: Threshold[];
  min?: number;
  max?: number;
  unit?: string;
}

export interface DashboardSpec {
  version: 1;
  range: SpecRange;
  refresh: Refresh;
  widgets: Widget[];
}

export function emptySpec(): DashboardSpec {
  return { version: 1, range: '24h', refresh: '30s', widgets: [] };
}

const clamp = (n: unknown, min: number, max: number, fallback: number) =>
  typeof n === 'number' && Number.isFinite(n) ? Math.max(min, Math.min(max, Math.round(n))) : fallback;

const text = (v: unknown, fallback = '') => (typeof v === 'string' ? v : fallback);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function isType(t: unknown): t is WidgetType {
  return (WIDGET_TYPES as readonly unknown[]).includes(t);
}

function normalizeWidget(raw: Record<string, unknown>, index: number): Widget | null {
  if (!isType(raw.type)) return null;
  const q = (raw.query ?? {}) as Record<string, unknown>;
  const w = clamp(raw.w, 2, COLUMNS, 6);
  const widget: Widget = {
    id: text(raw.id) || `w${index + 1}`,
    type: raw.type,
    title: text(raw.title, WIDGET_LABELS[raw.type]),
    x: clamp(raw.x, 0, COLUMNS - w, 0),
    y: clamp(raw.y, 0, 1000, 0),
    w,
    h: clamp(raw.h, 2, 16, 4),
    query: {
      q: text(q.q),
      field: text(q.field) || undefined,
      agg: text(q.agg) || undefined,
      interval: text(q.interval) || undefined,
      group_by: text(q.group_by) || undefined,
      top: num(q.top),
      limit: num(q.limit),
    },
  };
  if (raw.style === 'bar' || raw.style === 'line') widget.style = raw.style;
  if (Array.isArray(raw.thresholds)) {
    widget.thresholds = raw.thresholds
      .map((t) => t as Record<string, unknown>)
      .filter((t) => num(t.value) !== undefined)
      .map((t) => ({ value: num(t.value) ?? 0, color: text(t.color, 'orange') }))
      .sort((a, b) => a.value - b.value);
  }
  const min = num(raw.min);
  const max = num(raw.max);
  if (min !== undefined) widget.min = min;
  if (max !== undefined) widget.max = max;
  if (typeof raw.unit === 'string') widget.unit = raw.unit;
  return widget;
}

/** A valid spec from whatever was stored. */
export function normalize(raw: unknown): DashboardSpec {
  const spec = (raw ?? {}) as Record<string, unknown>;
  const widgets = Array.isArray(spec.widgets) ? spec.widgets : [];
  const seen = new Set<string>();
  const normalized = widgets
    .map((w, i) => normalizeWidget((w ?? {}) as Record<string, unknown>, i))
    .filter((w): w is Widget => w !== null)
    .map((w, i) => {
      // Ids must be unique within a dashboard (they key the layout).
      let id = w.id;
      for (let n = i + 1; seen.has(id); n += 1) id = `${w.id}-${n}`;
      seen.add(id);
      return { ...w, id };
    });
  const range = spec.range;
  return {
    version: 1,
    range:
      typeof range === 'string' || (range && typeof range === 'object')
        ? (range as SpecRange)
        : '24h',
    refresh: isRefresh(spec.refresh as string) ? (spec.refresh as Refresh) : 'off',
    widgets: settle(normalized),
  };
}

type Box = Pick<Widget, 'x' | 'y' | 'w' | 'h'>;

export function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/**
 * Resolves overlaps and closes gaps: `first` (the widget just moved or resized) keeps its
 * place, the others keep their order and are pushed below anything they would overlap,
 * then every widget floats up as far as it can.
 */
export function settle(widgets: Widget[], first?: string): Widget[] {
  const ordered = [...widgets].sort((a, b) =>
    a.id === first ? -1 : b.id === first ? 1 : a.y - b.y || a.x - b.x,
  );
  const placed: Widget[] = [];
  for (const w of ordered) {
    const box = { ...w, x: Math.max(0, Math.min(COLUMNS - w.w, w.x)), y: Math.max(0, w.y) };
    while (placed.some((p) => overlaps(box, p))) box.y += 1;
    placed.push(box);
  }
  // Float up, top to bottom.
  const result: Widget[] = [];
  for (const w of [...placed].sort((a, b) => a.y - b.y || a.x - b.x)) {
    const box = { ...w };
    while (box.y > 0 && !result.some((p) => overlaps({ ...box, y: box.y - 1 }, p))) box.y -= 1;
    result.push(box);
  }
  return result;
}

/** The first row below every widget. */
export function bottom(widgets: Widget[]): number {
  return widgets.reduce((m, w) => Math.max(m, w.y + w.h), 0);
}

/** A dashboard id from its name: `city-weather-4k2x` (the API takes letters, digits, `-`, `_`). */
export function slug(name: string): string {
  const base = name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  const suffix = Math.random().toString(36).slice(2, 6);
  return `${base || 'dashboard'}-${suffix}`;
}

export function newWidget(type: WidgetType, widgets: Widget[]): Widget {
  const id = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  const at = { x: 0, y: bottom(widgets) };
  switch (type) {
    case 'timeseries':
      return { id, type, title: 'Average value by device', ...at, w: 8, h: 4, style: 'line',
        query: { q: '', field: 'value', agg: 'avg', interval: 'auto', group_by: 'device', top: 10 } };
    case 'pie':
      return { id, type, title: 'Events by kind', ...at, w: 4, h: 4,
        query: { q: '', field: 'value', agg: 'count', group_by: 'kind', top: 8 } };
    case 'gauge':
      return { id, type, title: 'Latest value', ...at, w: 4, h: 4, min: 0, max: 50,
        thresholds: [{ value: 30, color: 'orange' }, { value: 40, color: 'red' }],
        query: { q: 'kind:temperature', field: 'value' } };
    case 'table':
      return { id, type, title: 'Newest events', ...at, w: 12, h: 5, query: { q: '', limit: 20 } };
    case 'map':
      return { id, type, title: 'Latest positions', ...at, w: 6, h: 5, query: { q: 'location:*', limit: 1000 } };
    case 'heatmap':
      return { id, type, title: 'Event density', ...at, w: 6, h: 5, query: { q: 'location:*' } };
  }
}
