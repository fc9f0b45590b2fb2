// What every widget receives, and the loading / error / empty states they share.

import type { ComponentChildren } from 'preact';
import type { Loaded } from '../lib/hooks';
import type { Widget } from '../lib/spec';

export interface WidgetProps {
  widget: Widget;
  /** The dashboard's range, resolved (epoch ms). */
  span: { from: number; to: number };
  /** The body's size in CSS pixels. */
  width: number;
  height: number;
}

export function WidgetState<T>({
  result,
  empty,
  children,
}: {
  result: Loaded<T>;
  empty: boolean;
  children: ComponentChildren;
}) {
  if (result.error && result.data === undefined) {
    return (
      <p class="widget-message error" role="alert">
        {result.error instanceof Error ? result.error.message : String(result.error)}
      </p>
    );
  }
  if (result.data === undefined) return <p class="widget-message" aria-busy="true">Loading…</p>;
  if (empty) return <p class="widget-message">No data in this range.</p>;
  return <>{children}</>;
}
