// The map of latest positions and the geo heat map. Both read positions from
// `data.location.lat/lon` (the vehicle documents of the brief).

import { colorAt } from '../components/colors';
import { WorldMap, type MapPoint } from '../components/WorldMap';
import { api, type IngotEvent } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { formatTime } from '../lib/time';
import { numberAt } from './GaugeWidget';
import { type WidgetProps, WidgetState } from './common';

/** The newest position of each device among `events` (newest first). */
export function latestPositions(events: IngotEvent[]): MapPoint[] {
  const seen = new Map<string, MapPoint>();
  for (const e of events) {
    if (seen.has(e.device)) continue;
    const lat = numberAt(e, 'location.lat');
    const lon = numberAt(e, 'location.lon');
    if (lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) continue;
    const speed = numberAt(e, 'vehicle_speed');
    seen.set(e.device, {
      lat,
      lon,
      label: e.device,
      detail: `${formatTime(Date.parse(e.ts))}${speed !== null ? `, ${formatNumber(speed)} km/h` : ''}`,
      color: colorAt(seen.size),
    });
  }
  return [...seen.values()];
}

export function MapWidget({ widget, span, width, height }: WidgetProps) {
  // Bounded: the newest `limit` events; a device with none among them is not shown.
  const limit = Math.max(1, Math.min(10_000, widget.query.limit ?? 1000));
  const result = useLoad(
    (signal) =>
      api.events(
        {
          q: widget.query.q,
          limit,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      ),
    [widget.query.q, limit, span.from, span.to],
  );
  const points = latestPositions(result.data?.events ?? []);
  return (
    <WidgetState result={result} empty={result.data !== undefined && points.length === 0}>
      <WorldMap width={width} height={height} label={widget.title} points={points} />
    </WidgetState>
  );
}

export function HeatmapWidget({ widget, span, width, height }: WidgetProps) {
  const result = useLoad(
    (signal) =>
      api.geo(
        {
          q: widget.query.q,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      ),
    [widget.query.q, span.from, span.to],
  );
  const answer = result.data;
  const cells = (answer?.cells ?? []).map(([south, west, count]) => ({ south, west, count, size: answer?.cell ?? 1 }));
  return (
    <WidgetState result={result} empty={answer !== undefined && cells.length === 0}>
      <WorldMap width={width} height={height - 22} label={widget.title} cells={cells} />
    </WidgetState>
  );
}
