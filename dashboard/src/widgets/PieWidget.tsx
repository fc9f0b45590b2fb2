// A pie (donut) of a count or sum per group over the dashboard's range, from one
// `GET /series` with a bucket as wide as the range.

import { colorAt } from '../components/colors';
import { api } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { type WidgetProps, WidgetState } from './common';

/** The widest bucket the API takes; a range of up to a year falls in one or two of them. */
const WHOLE_RANGE = '365d';

export function PieWidget({ widget, span, width, height }: WidgetProps) {
  const { query } = widget;
  const agg = query.agg === 'sum' ? 'sum' : 'count';
  const result = useLoad(
    (signal) =>
      api.series(
        {
          q: query.q,
          field: query.field ?? 'value',
          agg,
          interval: WHOLE_RANGE,
          group_by: query.group_by ?? 'kind',
          top: query.top ?? 8,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      ),
    [JSON.stringify(query), span.from, span.to],
  );
  // Counts and sums add up across the (at most two) buckets.
  const slices = (result.data?.series ?? [])
    .map((s) => ({
      label: s.group ?? '(none)',
      value: s.points.reduce((sum, [, v]) => sum + (v ?? 0), 0),
    }))
    .filter((s) => s.value > 0);
  const total = slices.reduce((sum, s) => sum + s.value, 0);
  const size = Math.max(60, Math.min(height - 8, width * 0.55));
  const r = size / 2;
  const inner = r * 0.58;
  let angle = -Math.PI / 2;
  const arcs = slices.map((s, i) => {
    const sweep = (s.value / total) * Math.PI * 2;
    const d = arc(r, inner, angle, angle + sweep);
    angle += sweep;
    return { ...s, d, color: colorAt(i) };
  });
  return (
    <WidgetState result={result} empty={result.data !== undefined && slices.length === 0}>
      <figure class="pie" role="figure" aria-label={widget.title} data-slices={slices.length}>
        <svg width={size} height={size} viewBox={`${-r} ${-r} ${size} ${size}`} role="img" aria-label={`${widget.title}: ${slices.length} groups`}>
          {arcs.map((a) => (
            <path key={a.label} class="slice" d={a.d} fill={a.color}>
              <title>{`${a.label}: ${formatNumber(a.value)} (${((a.value / total) * 100).toFixed(1)} %)`}</title>
            </path>
          ))}
          <text class="pie-total" text-anchor="middle" dominant-baseline="middle">
            {formatNumber(total)}
          </text>
        </svg>
        <ul class="pie-legend">
          {arcs.map((a) => (
            <li key={a.label}>
              <span class="swatch" style={{ background: a.color }} aria-hidden="true" />
              <span class="pie-label">{a.label}</span>
              <span class="muted">{((a.value / total) * 100).toFixed(1)} %</span>
            </li>
          ))}
        </ul>
      </figure>
    </WidgetState>
  );
}

/** An annular sector from angle `a0` to `a1` (radians, clockwise from east). */
function arc(r: number, inner: number, a0: number, a1: number): string {
  // A full circle is two halves (an arc cannot start and end at the same point).
  if (a1 - a0 >= Math.PI * 2 - 1e-9) {
    const mid = a0 + Math.PI;
    return `${arc(r, inner, a0, mid)} ${arc(r, inner, mid, a1)}`;
  }
  const large = a1 - a0 > Math.PI ? 1 : 0;
  const p = (radius: number, a: number) => `${(radius * Math.cos(a)).toFixed(2)} ${(radius * Math.sin(a)).toFixed(2)}`;
  return `M${p(r, a0)} A${r} ${r} 0 ${large} 1 ${p(r, a1)} L${p(inner, a1)} A${inner} ${inner} 0 ${large} 0 ${p(inner, a0)} Z`;
}
