// A time-series chart on uPlot (canvas): lines or stacked bars, a legend that toggles
// series, a tooltip with every series' value at the cursor, and optional drag-to-select
// (Discover's histogram zooms with it). uPlot draws tens of thousands of points in a few
// milliseconds, and the server already reduced the data to about one bucket per two
// pixels (`buckets=`), so refreshes stay cheap.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { compactNumber, formatNumber } from '../lib/format';
import { formatTime } from '../lib/time';
import { colorAt } from './colors';

export interface ChartSeries {
  label: string;
  /** `[epoch ms, value or null]`, the same timestamps for every series. */
  points: [number, number | null][];
}

interface Props {
  series: ChartSeries[];
  /** Lines (default) or bars, stacked when there are several series. */
  style?: 'line' | 'bar';
  width: number;
  height: number;
  /** What the chart shows, for screen readers. */
  label: string;
  /** Drag across the chart to select `[from, to)` (epoch ms). */
  onSelect?: (from: number, to: number) => void;
  /** Hide the legend (a single unnamed series). */
  legend?: boolean;
  /** The scale of the x axis; defaults to the data's first and last timestamps. */
  range?: { from: number; to: number };
}

export function TimeChart({ series, style = 'line', width, height, label, onSelect, legend = true, range }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const tooltip = useRef<HTMLDivElement>(null);
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const selectRef = useRef(onSelect);
  selectRef.current = onSelect;

  const visible = series.filter((s) => !hidden.has(s.label));
  const data = useMemo(() => aligned(visible, style), [visible.map((s) => s.label).join('\u0000'), series, style]);
  const points = visible.reduce((n, s) => n + s.points.filter((p) => p[1] !== null).length, 0);
  const structure = `${style}|${visible.map((s) => s.label).join('\u0000')}|${onSelect ? 1 : 0}|${height}`;

  // Create the chart when its structure changes; feed it new data otherwise.
  useEffect(() => {
    if (!host.current || width <= 0) return;
    chart.current?.destroy();
    chart.current = new uPlot(options(visible, series, style, width, height, selectRef, tooltip, range), data, host.current);
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [structure, width > 0]);

  useEffect(() => {
    const u = chart.current;
    if (!u) return;
    u.setData(data, !range);
    if (range) u.setScale('x', { min: range.from, max: range.to });
  }, [data, range?.from, range?.to]);

  useEffect(() => {
    if (chart.current && width > 0) chart.current.setSize({ width, height });
  }, [width, height]);

  const toggle = (name: string) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(name)) next.delete(name);
      else next.add(name);
      return next;
    });

  return (
    <figure class="chart" role="figure" aria-label={label} data-series={visible.length} data-points={points}>
      <div class="chart-canvas" ref={host}>
        <div class="chart-tooltip" ref={tooltip} role="tooltip" hidden />
      </div>
      {legend && series.length > 0 && (
        <ul class="legend" aria-label={`${label}: legend`}>
          {series.map((s, i) => (
            <li key={s.label}>
              <button
                type="button"
                class="legend-item"
                aria-pressed={!hidden.has(s.label)}
                title={hidden.has(s.label) ? `Show ${s.label}` : `Hide ${s.label}`}
                onClick={() => toggle(s.label)}
              >
                <span class="swatch" style={{ background: colorAt(i) }} aria-hidden="true" />
                {s.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}

/** uPlot's columnar data; bars are stacked, so each series carries the running sum. */
function aligned(series: ChartSeries[], style: 'line' | 'bar'): uPlot.AlignedData {
  const xs = series[0]?.points.map((p) => p[0]) ?? [];
  const columns: (number | null)[][] = series.map((s) => s.points.map((p) => p[1]));
  if (style === 'bar' && columns.length > 1) {
    const sums = xs.map(() => 0);
    // Drawn last-to-first below, so the tallest (the total) is behind the others.
    for (const column of columns) {
      column.forEach((v, i) => {
        sums[i] = (sums[i] ?? 0) + (v ?? 0);
        column[i] = v === null && sums[i] === 0 ? null : (sums[i] ?? 0);
      });
    }
  }
  return [xs, ...(style === 'bar' ? columns.reverse() : columns)] as uPlot.AlignedData;
}

function options(
  visible: ChartSeries[],
  all: ChartSeries[],
  style: 'line' | 'bar',
  width: number,
  height: number,
  select: { current: ((from: number, to: number) => void) | undefined },
  tooltip: { current: HTMLDivElement | null },
  range: { from: number; to: number } | undefined,
): uPlot.Options {
  const ordered: Entry[] = (style === 'bar' ? [...visible].reverse() : visible).map((s) => ({
    ...s,
    color: colorAt(all.indexOf(s)),
  }));
  const bars = uPlot.paths.bars?.({ size: [0.8, 64], gap: 1 });
  const css = getComputedStyle(document.documentElement);
  const grid = css.getPropertyValue('--grid').trim() || '#e5e8ee';
  const ink = css.getPropertyValue('--muted').trim() || '#5b6473';
  const axis: uPlot.Axis = {
    stroke: ink,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    font: '11px Inter, system-ui, sans-serif',
  };
  return {
    width,
    height,
    ms: 1,
    legend: { show: false },
    padding: [8, 8, 0, 0],
    cursor: {
      drag: { x: !!select.current, y: false, setScale: false },
      points: { size: 6 },
      // Sparse series (a report every 15 min in 5-min buckets) leave most buckets empty:
      // each line's cursor snaps to its nearest value, within a tenth of the chart.
      dataIdx: (u, seriesIdx, closest) => {
        const ys = u.data[seriesIdx];
        if (style === 'bar' || !ys || ys[closest] != null) return closest;
        const reach = Math.max(3, Math.ceil(ys.length / 10));
        for (let d = 1; d <= reach; d += 1) {
          if (ys[closest - d] != null) return closest - d;
          if (ys[closest + d] != null) return closest + d;
        }
        return closest;
      },
    },
    scales: {
      x: { time: true, ...(range ? { range: () => [range.from, range.to] as uPlot.Range.MinMax } : {}) },
      y: { range: (_u, min, max) => yRange(min, max, style) },
    },
    axes: [
      { ...axis, space: 70, values: (_u, ticks) => timeTicks(ticks) },
      { ...axis, size: 52, values: (_u, ticks) => ticks.map(compactNumber) },
    ],
    series: [
      {},
      ...ordered.map((s) =>
        style === 'bar'
          ? { label: s.label, stroke: s.color, fill: s.color, width: 0, paths: bars, points: { show: false } }
          : { label: s.label, stroke: s.color, width: 1.75, spanGaps: true, points: { show: false } },
      ),
    ],
    hooks: {
      setSelect: [
        (u) => {
          const chosen = select.current;
          if (chosen && u.select.width > 3) {
            const from = u.posToVal(u.select.left, 'x');
            const to = u.posToVal(u.select.left + u.select.width, 'x');
            chosen(Math.floor(from), Math.ceil(to));
          }
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        },
      ],
      setCursor: [(u) => showTooltip(u, tooltip.current, ordered, style)],
    },
  };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * Tick labels in the tables' format: `14:30` within a day, with the date (`11-22`) under
 * the first tick of each day; dates only beyond a few days.
 */
export function timeTicks(ticks: number[]): string[] {
  const span = (ticks[ticks.length - 1] ?? 0) - (ticks[0] ?? 0);
  return ticks.map((t, i) => {
    const d = new Date(t);
    const date = `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    if (span > 3 * 86_400_000) return date;
    const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}${span < 600_000 ? `:${pad2(d.getSeconds())}` : ''}`;
    const previous = i > 0 ? new Date(ticks[i - 1] ?? t) : undefined;
    return !previous || previous.getDate() !== d.getDate() ? `${time}\n${date}` : time;
  });
}

function yRange(min: number | null, max: number | null, style: 'line' | 'bar'): uPlot.Range.MinMax {
  if (min === null || max === null) return [0, 1];
  if (style === 'bar') return [0, max <= 0 ? 1 : max * 1.08];
  if (min === max) return [min - 1, max + 1];
  const pad = (max - min) * 0.08;
  return [min - pad, max + pad];
}

interface Entry extends ChartSeries {
  color: string;
}

function showTooltip(u: uPlot, box: HTMLDivElement | null, series: Entry[], style: 'line' | 'bar'): void {
  if (!box) return;
  const idx = u.cursor.idx;
  if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
    box.hidden = true;
    return;
  }
  const x = u.data[0][idx];
  if (x === undefined) {
    box.hidden = true;
    return;
  }
  const rows = series
    .map((s, i) => {
      // Bars are stacked: the series' own value is in its points, not in the running sum.
      const point = s.points[u.cursor.idxs?.[i + 1] ?? idx];
      return { label: s.label, color: s.color, value: point ? point[1] : null };
    })
    .filter((r) => r.value !== null);
  if (style === 'bar') rows.reverse();
  box.replaceChildren();
  const head = document.createElement('div');
  head.className = 'chart-tooltip-time';
  head.textContent = formatTime(x);
  box.append(head);
  for (const row of rows.slice(0, 12)) {
    const line = document.createElement('div');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = row.color;
    const name = document.createElement('span');
    name.textContent = row.label;
    const value = document.createElement('strong');
    value.textContent = formatNumber(row.value);
    line.append(swatch, name, value);
    box.append(line);
  }
  box.hidden = false;
  const left = u.cursor.left + u.over.offsetLeft;
  const flip = left > u.over.clientWidth / 2 + u.over.offsetLeft;
  box.style.left = flip ? '' : `${left + 14}px`;
  box.style.right = flip ? `${u.root.clientWidth - left + 14}px` : '';
  box.style.top = `${Math.max(0, (u.cursor.top ?? 0) - 10)}px`;
}
