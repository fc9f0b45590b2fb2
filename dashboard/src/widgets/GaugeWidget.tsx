// A gauge of the newest value matching a filter, coloured by thresholds.

import { namedColor } from '../components/colors';
import { api, type IngotEvent } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { ago } from '../lib/time';
import { type WidgetProps, WidgetState } from './common';

/** The number at `field` (`value`, or a path into data) of an event. */
export function numberAt(event: IngotEvent, field: string): number | null {
  if (field === 'value') return event.value;
  let at: unknown = event.data;
  for (const segment of field.replace(/^data\./, '').split('.')) {
    if (at === null || typeof at !== 'object' || Array.isArray(at)) return null;
    at = (at as Record<string, unknown>)[segment];
  }
  return typeof at === 'number' ? at : null;
}

export function GaugeWidget({ widget, span, width, height }: WidgetProps) {
  const field = widget.query.field ?? 'value';
  const result = useLoad(
    (signal) =>
      api.events(
        { q: widget.query.q, limit: 1, to: new Date(span.to).toISOString() },
        signal,
      ),
    [widget.query.q, span.to],
  );
  const event = result.data?.events[0];
  const value = event ? numberAt(event, field) : null;
  const thresholds = widget.thresholds ?? [];
  const min = widget.min ?? 0;
  const max = widget.max ?? Math.max(100, ...thresholds.map((t) => t.value * 1.25));
  const color = namedColor(
    [...thresholds].reverse().find((t) => value !== null && value >= t.value)?.color ?? 'green',
  );
  // The value on an arc of radius r, the thresholds on a thin arc just outside it.
  const r = Math.max(30, Math.min(width / 2 - 24, height - 64));
  const outer = r + 15;
  const share = value === null ? 0 : Math.max(0, Math.min(1, (value - min) / (max - min || 1)));
  const point = (t: number, radius: number) => {
    const a = Math.PI * (1 - t);
    return `${(radius * Math.cos(a)).toFixed(2)} ${(-radius * Math.sin(a)).toFixed(2)}`;
  };
  const band = (from: number, to: number, radius = r) =>
    `M${point(from, radius)} A${radius} ${radius} 0 0 1 ${point(to, radius)}`;
  const box = { x: -outer - 6, y: -outer - 6, w: 2 * outer + 12, h: outer + 30 };
  return (
    <WidgetState result={result} empty={result.data !== undefined && value === null}>
      <figure class="gauge" role="figure" aria-label={widget.title} data-value={value ?? ''}>
        <svg width={box.w} height={box.h} viewBox={`${box.x} ${box.y} ${box.w} ${box.h}`} role="meter"
          aria-valuemin={min} aria-valuemax={max} aria-valuenow={value ?? undefined} aria-label={widget.title}>
          <path class="gauge-track" d={band(0, 1)} />
          {thresholds.map((t, i) => {
            const from = (t.value - min) / (max - min || 1);
            const to = i + 1 < thresholds.length ? ((thresholds[i + 1]?.value ?? max) - min) / (max - min || 1) : 1;
            return from < 1 ? (
              <path
                key={t.value}
                class="gauge-threshold"
                d={band(Math.max(0, from), Math.min(1, to), outer)}
                stroke={namedColor(t.color)}
              />
            ) : null;
          })}
          {share > 0 && <path class="gauge-value" d={band(0, share)} stroke={color} />}
          <text class="gauge-number" y={-6} text-anchor="middle">
            {formatNumber(value)}
            {widget.unit ? ` ${widget.unit}` : ''}
          </text>
          <text class="gauge-scale" x={-r} y={18} text-anchor="middle">{formatNumber(min)}</text>
          <text class="gauge-scale" x={r} y={18} text-anchor="middle">{formatNumber(max)}</text>
        </svg>
        {event && (
          <figcaption class="muted small">
            {event.device} · {ago(Date.parse(event.ts))}
          </figcaption>
        )}
      </figure>
    </WidgetState>
  );
}
