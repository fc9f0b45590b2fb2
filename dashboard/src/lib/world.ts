// The world outline for maps: Natural Earth 1:110m land and country borders from the
// `world-atlas` package (bundled, about 100 KB of TopoJSON, 35 KB gzipped), turned into
// SVG path data in Web Mercator unit coordinates once. Loaded only with the first map.

import type { GeometryCollection, Topology } from 'topojson-specification';
import { feature, mesh } from 'topojson-client';
import atlas from 'world-atlas/countries-110m.json';
import { project } from './mercator';

type Position = number[];

/** `M x y L ...` of rings in Mercator units scaled to 0..1000. */
function ringsPath(rings: Position[][]): string {
  let d = '';
  for (const ring of rings) {
    ring.forEach((p, i) => {
      const [x, y] = project(p[1] ?? 0, p[0] ?? 0);
      d += `${i ? 'L' : 'M'}${(x * 1000).toFixed(2)} ${(y * 1000).toFixed(2)}`;
    });
    d += 'Z';
  }
  return d;
}

function linesPath(lines: Position[][]): string {
  return ringsPath(lines).replace(/Z/g, '');
}

export interface World {
  /** Land, filled. */
  land: string;
  /** Borders between countries, stroked. */
  borders: string;
}

const topology = atlas as unknown as Topology<{ countries: GeometryCollection; land: GeometryCollection }>;

function build(): World {
  const land = feature(topology, topology.objects.land);
  const rings: Position[][] = [];
  for (const f of land.features) {
    const g = f.geometry;
    if (g.type === 'Polygon') rings.push(...g.coordinates);
    else if (g.type === 'MultiPolygon') for (const poly of g.coordinates) rings.push(...poly);
  }
  const borders = mesh(topology, topology.objects.countries, (a, b) => a !== b);
  const lines = borders.type === 'MultiLineString' ? borders.coordinates : [];
  return { land: ringsPath(rings), borders: linesPath(lines) };
}

export const world: World = build();
