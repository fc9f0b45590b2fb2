// Time ranges (relative presets or absolute), their URL form, and time formatting.

export const PRESETS = ['15m', '1h', '24h', '7d', '30d'] as const;
export type Preset = (typeof PRESETS)[number];

export const PRESET_LABELS: Record<Preset, string> = {
  '15m': 'Last 15 minutes',
  '1h': 'Last hour',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
};

export type TimeRange =
  | { kind: 'relative'; last: Preset }
  | { kind: 'absolute'; from: number; to: number };

const UNIT_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** Milliseconds of `1h`, `15m`, `7d`, ...; `undefined` if it is not a duration. */
export function durationMs(text: string): number | undefined {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
}

export function isPreset(text: string | null | undefined): text is Preset {
  return (PRESETS as readonly string[]).includes(text ?? '');
}

/** `[from, to)` in epoch milliseconds at `now`. */
export function resolve(range: TimeRange, now = Date.now()): { from: number; to: number } {
  if (range.kind === 'absolute') return { from: range.from, to: range.to };
  return { from: now - (durationMs(range.last) ?? 3600e3), to: now };
}

/** Reads `range=1h` or `from=...&to=...` (RFC 3339) from URL parameters. */
export function rangeFromParams(params: URLSearchParams, fallback: Preset = '1h'): TimeRange {
  const from = Date.parse(params.get('from') ?? '');
  const to = Date.parse(params.get('to') ?? '');
  if (Number.isFinite(from) && Number.isFinite(to) && from < to) {
    return { kind: 'absolute', from, to };
  }
  const last = params.get('range');
  return { kind: 'relative', last: isPreset(last) ? last : fallback };
}

/** The URL parameters of a range (the keys not used are `undefined`, to be removed). */
export function rangeToParams(range: TimeRange): Record<string, string | undefined> {
  if (range.kind === 'relative') return { range: range.last, from: undefined, to: undefined };
  return {
    range: undefined,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
  };
}

/** A range as it is saved in a dashboard spec: `"24h"` or `{from, to}` in RFC 3339. */
export type SpecRange = string | { from: string; to: string };

export function rangeFromSpec(spec: SpecRange | undefined): TimeRange {
  if (typeof spec === 'string') return { kind: 'relative', last: isPreset(spec) ? spec : '24h' };
  if (spec && typeof spec === 'object') {
    const from = Date.parse(spec.from);
    const to = Date.parse(spec.to);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) {
      return { kind: 'absolute', from, to };
    }
  }
  return { kind: 'relative', last: '24h' };
}

export function rangeToSpec(range: TimeRange): SpecRange {
  if (range.kind === 'relative') return range.last;
  return { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `2026-11-22 14:08:24` in local time (`.771` with `ms`). */
export function formatTime(ms: number, options: { ms?: boolean } = {}): string {
  const d = new Date(ms);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return options.ms ? `${text}.${pad(d.getMilliseconds(), 3)}` : text;
}

/** The value of an `<input type="datetime-local">` for `ms`, and back. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(text: string): number | undefined {
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/** `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`. */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** How a range reads in a heading: the preset's name, or `from – to`. */
export function describe(range: TimeRange): string {
  if (range.kind === 'relative') return PRESET_LABELS[range.last];
  return `${formatTime(range.from)} – ${formatTime(range.to)}`;
}

export const REFRESH_CHOICES = ['off', '5s', '30s'] as const;
export type Refresh = (typeof REFRESH_CHOICES)[number];

export function isRefresh(text: string | null | undefined): text is Refresh {
  return (REFRESH_CHOICES as readonly string[]).includes(text ?? '');
}
