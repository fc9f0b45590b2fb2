// An SVG map in Web Mercator: the bundled world outline (no tiles, nothing fetched from
// elsewhere), a graticule with degree labels, and either points (latest positions) or
// grid cells coloured by how many events fell in them (heat map). The view fits the data.

import { useEffect, useState } from 'preact/hooks';
import { compactNumber, formatNumber } from '../lib/format';
import { type Viewport, fit, graticuleStep, project, unproject } from '../lib/mercator';
import type { World } from '../lib/world';

export interface MapPoint {
  lat: number;
  lon: number;
  label: string;
  detail: string;
  color: string;
}

export interface MapCell {
  south: number;
  west: number;
  size: number;
  count: number;
}

interface Props {
  width: number;
  height: number;
  label: string;
  points?: MapPoint[];
  cells?: MapCell[];
}

let worldPromise: Promise<World> | undefined;
function loadWorld(): Promise<World> {
  worldPromise ??= import('../lib/world').then((m) => m.world);
  return worldPromise;
}

function extent(corners: [number, number][]): [number, number, number, number] | null {
  if (!corners.length) return null;
  const xs = corners.map((c) => c[0]);
  const ys = corners.map((c) => c[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** Heat colours from pale yellow to deep red, by the square root of the count's share. */
export function heat(count: number, max: number): string {
  const t = max <= 1 ? 1 : Math.sqrt((count - 1) / (max - 1));
  const stops = [
    [255, 237, 160],
    [254, 178, 76],
    [240, 59, 32],
    [160, 0, 38],
  ];
  const at = Math.min(stops.length - 1.001, t * (stops.length - 1));
  const i = Math.floor(at);
  const f = at - i;
  const a = stops[i] ?? stops[0]!;
  const b = stops[i + 1] ?? a;
  const mix = (k: number) => Math.round((a[k] ?? 0) + ((b[k] ?? 0) - (a[k] ?? 0)) * f);
  return `rgb(${mix(0)}, ${mix(1)}, ${mix(2)})`;
}

export function WorldMap({ width, height, label, points = [], cells = [] }: Props) {
  const [world, setWorld] = useState<World | null>(null);
  useEffect(() => {
    let live = true;
    void loadWorld().then((w) => live && setWorld(w));
    return () => {
      live = false;
    };
  }, []);

  const corners: [number, number][] = [
    ...points.map((p) => project(p.lat, p.lon)),
    ...cells.flatMap((c) => [project(c.south, c.west), project(c.south + c.size, c.west + c.size)]),
  ];
  // At least about 0.3° across: a city's vehicles spread out, a single one has context.
  const view = fit(extent(corners), width, height, 0.001);
  const toScreen = (lat: number, lon: number): [number, number] => {
    const [x, y] = project(lat, lon);
    return [x * view.scale + view.tx, y * view.scale + view.ty];
  };
  const max = cells.reduce((m, c) => Math.max(m, c.count), 0);

  return (
    <figure class="map" aria-label={label} role="figure" data-points={points.length} data-cells={cells.length}>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width={width}
        height={height}
        role="img"
        aria-label={`${label}: ${points.length ? `${points.length} positions` : `${cells.length} cells`}`}
      >
        <rect class="sea" width={width} height={height} />
        {world && (
          <g transform={`translate(${view.tx} ${view.ty}) scale(${view.scale / 1000})`}>
            <path class="land" d={world.land} />
            <path class="borders" d={world.borders} />
          </g>
        )}
        <Graticule view={view} />
        <g class="cells">
          {cells.map((c) => {
            const [x0, y0] = toScreen(c.south + c.size, c.west);
            const [x1, y1] = toScreen(c.south, c.west + c.size);
            return (
              <rect
                key={`${c.south},${c.west}`}
                class="cell"
                x={x0}
                y={y0}
                width={Math.max(1, x1 - x0)}
                height={Math.max(1, y1 - y0)}
                fill={heat(c.count, max)}
              >
                <title>{`${formatNumber(c.count)} events near ${c.south.toFixed(3)}, ${c.west.toFixed(3)}`}</title>
              </rect>
            );
          })}
        </g>
        <g class="points">
          {points.map((p) => {
            const [x, y] = toScreen(p.lat, p.lon);
            return (
              <g key={p.label} class="point" transform={`translate(${x} ${y})`}>
                <circle r={5.5} fill={p.color} />
                <title>{`${p.label}: ${p.detail}`}</title>
              </g>
            );
          })}
        </g>
      </svg>
      {cells.length > 0 && (
        <figcaption class="map-legend">
          <span>{formatNumber(1)}</span>
          <span class="ramp" aria-hidden="true" />
          <span>{compactNumber(max)} events per cell</span>
        </figcaption>
      )}
    </figure>
  );
}

function Graticule({ view }: { view: Viewport }) {
  const [north, west] = unproject(-view.tx / view.scale, -view.ty / view.scale);
  const [south, east] = unproject((view.width - view.tx) / view.scale, (view.height - view.ty) / view.scale);
  const step = graticuleStep(Math.max(east - west, north - south));
  const digits = step < 0.1 ? 2 : step < 1 ? 1 : 0;
  const lines = [];
  for (let lon = Math.ceil(west / step) * step, n = 0; lon <= east && n < 40; lon += step, n += 1) {
    const x = ((lon + 180) / 360) * view.scale + view.tx;
    lines.push(
      <g key={`lon${n}`}>
        <line x1={x} x2={x} y1={0} y2={view.height} />
        <text x={x + 3} y={view.height - 4}>
          {`${Math.abs(lon).toFixed(digits)}°${lon < 0 ? 'W' : lon > 0 ? 'E' : ''}`}
        </text>
      </g>,
    );
  }
  for (let lat = Math.ceil(south / step) * step, n = 0; lat <= north && n < 40; lat += step, n += 1) {
    const y = project(lat, 0)[1] * view.scale + view.ty;
    lines.push(
      <g key={`lat${n}`}>
        <line x1={0} x2={view.width} y1={y} y2={y} />
        <text x={3} y={y - 3}>
          {`${Math.abs(lat).toFixed(digits)}°${lat < 0 ? 'S' : lat > 0 ? 'N' : ''}`}
        </text>
      </g>,
    );
  }
  return (
    <g class="graticule" aria-hidden="true">
      {lines}
    </g>
  );
}
