// What Series and the time-series widgets share: the choices offered, the bucket count for
// a chart's width, and the labels of an answer's series.

import type { ChartSeries } from '../components/TimeChart';
import type { SeriesAnswer } from './api';

export const AGGREGATIONS = ['count', 'avg', 'min', 'max', 'sum', 'p50', 'p90', 'p95', 'p99'] as const;
export const INTERVALS = ['auto', '1m', '5m', '15m', '1h', '6h', '1d'] as const;
export const FIELD_SUGGESTIONS = ['value', 'payload.value', 'vehicle_speed', 'fuel_level', 'engine_speed'];
export const GROUP_SUGGESTIONS = ['device', 'kind', 'sensor', 'origin', 'city'];

export const AGG_LABELS: Record<string, string> = {
  count: 'count',
  avg: 'average',
  min: 'minimum',
  max: 'maximum',
  sum: 'sum',
  p50: 'median (p50)',
  p90: '90th percentile',
  p95: '95th percentile',
  p99: '99th percentile',
};

/**
 * The buckets to ask for a chart `width` pixels wide: one per two pixels for lines, one
 * per ten for bars (in steps of 5, so a small resize does not refetch).
 */
export function bucketsFor(width: number, style: 'line' | 'bar' = 'line'): number {
  const perBucket = style === 'bar' ? 10 : 2;
  return Math.max(10, Math.min(2000, Math.round(width / perBucket / 5) * 5));
}

/** Labels for the answer's series: the group, the filter, or both. */
export function chartSeries(answer: SeriesAnswer | undefined, fallback: string): ChartSeries[] {
  if (!answer) return [];
  const many = new Set(answer.series.map((s) => s.q ?? '')).size > 1;
  return answer.series.map((s) => {
    const parts = [many ? s.q || '(everything)' : undefined, s.group ?? undefined].filter(Boolean);
    return {
      label: parts.length ? parts.join(' · ') : fallback,
      points: s.points.map(([t, v]) => [Date.parse(t), v] as [number, number | null]),
    };
  });
}

