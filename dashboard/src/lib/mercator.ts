// Web Mercator in unit coordinates: x and y from 0 to 1, north up, latitudes clamped to
// ±85.0511° (the square's edges).

const MAX_LAT = 85.0511287798;

export function project(lat: number, lon: number): [number, number] {
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  const x = (lon + 180) / 360;
  const y = (1 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / Math.PI) / 2;
  return [x, y];
}

export function unproject(x: number, y: number): [number, number] {
  const lon = x * 360 - 180;
  const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  return [lat, lon];
}

export interface Viewport {
  /** Mercator units to pixels. */
  scale: number;
  /** Pixel offsets of Mercator (0, 0). */
  tx: number;
  ty: number;
  width: number;
  height: number;
}

/**
 * The viewport showing `[x0, y0, x1, y1]` (Mercator units) in `width` × `height` pixels,
 * with a margin, never zoomed in further than `minSpan` units across.
 */
export function fit(
  box: [number, number, number, number] | null,
  width: number,
  height: number,
  minSpan = 0.01,
): Viewport {
  let [x0, y0, x1, y1] = box ?? [0, 0.08, 1, 0.92];
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  let w = Math.max(x1 - x0, minSpan) * 1.3;
  let h = Math.max(y1 - y0, minSpan) * 1.3;
  // Keep the aspect of the widget.
  if (w / h > width / height) h = (w * height) / width;
  else w = (h * width) / height;
  w = Math.min(w, 1.2);
  x0 = cx - w / 2;
  y0 = cy - h / 2;
  const scale = Math.min(width / w, height / h);
  return { scale, tx: -x0 * scale, ty: -y0 * scale, width, height };
}

/** Degrees between graticule lines for a view spanning `degrees`. */
export function graticuleStep(degrees: number): number {
  const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30];
  return steps.find((s) => degrees / s <= 8) ?? 30;
}
