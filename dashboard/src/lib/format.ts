// Numbers and JSON for display.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const small = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

/** `12,345`, `15.25`, `0.00123`; an empty string for null. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '';
  if (Number.isInteger(value)) return integer.format(value);
  if (Math.abs(value) < 1) return small.format(value);
  return decimal.format(value);
}

/** `1.2k`, `3.4M`: for axis ticks and legends where space is short. */
export function compactNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${formatNumber(value / 1e9)}G`;
  if (abs >= 1e6) return `${formatNumber(value / 1e6)}M`;
  if (abs >= 1e4) return `${formatNumber(value / 1e3)}k`;
  return formatNumber(value);
}

export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
