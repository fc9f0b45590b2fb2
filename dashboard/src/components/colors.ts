// The series palette: ten hues that stay apart for common colour-vision deficiencies
// (after Okabe-Ito and Tableau 10), dark enough for text contrast on white.

export const PALETTE = [
  '#2f6fde', // blue
  '#e0702b', // orange
  '#1e9e77', // green
  '#c8458f', // pink
  '#7b58c9', // violet
  '#8c6d1f', // ochre
  '#14a0b8', // teal
  '#d6483f', // red
  '#5e7a28', // olive
  '#6b7280', // grey
] as const;

export function colorAt(index: number): string {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length] ?? PALETTE[0];
}

/** Threshold colour names of a dashboard spec (`"orange"`), or any CSS colour as given. */
export function namedColor(name: string): string {
  const named: Record<string, string> = {
    green: '#1e9e77',
    orange: '#e0702b',
    red: '#d6483f',
    yellow: '#d9a521',
    blue: '#2f6fde',
  };
  return named[name] ?? name;
}
