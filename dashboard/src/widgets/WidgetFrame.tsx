// A widget on the dashboard grid: its card, title and body, and in edit mode the handles
// to move it (drag, or arrow keys), resize it (drag the corner, or Shift+arrows), edit
// and remove it.

import type { ComponentType } from 'preact';
import { useRef } from 'preact/hooks';
import { useWidth } from '../lib/hooks';
import { COLUMNS, GAP, ROW_HEIGHT, type Widget, type WidgetType } from '../lib/spec';
import { GaugeWidget } from './GaugeWidget';
import { HeatmapWidget, MapWidget } from './MapWidgets';
import { PieWidget } from './PieWidget';
import { TableWidget } from './TableWidget';
import { TimeseriesWidget } from './TimeseriesWidget';
import type { WidgetProps } from './common';

const BODIES: Record<WidgetType, ComponentType<WidgetProps>> = {
  timeseries: TimeseriesWidget,
  pie: PieWidget,
  gauge: GaugeWidget,
  table: TableWidget,
  map: MapWidget,
  heatmap: HeatmapWidget,
};

/** Height of a widget's title bar, in pixels. */
const HEADER = 38;

interface Props {
  widget: Widget;
  span: { from: number; to: number };
  editing: boolean;
  /** The grid's column width in pixels (to turn a drag into cells). */
  columnWidth: number;
  onChange: (widget: Widget) => void;
  onEdit: () => void;
  onRemove: () => void;
}

export function WidgetFrame({ widget, span, editing, columnWidth, onChange, onEdit, onRemove }: Props) {
  const [bodyRef, width] = useWidth<HTMLDivElement>();
  const drag = useRef<{ x: number; y: number; start: Widget; mode: 'move' | 'resize' } | null>(null);
  const height = widget.h * ROW_HEIGHT + (widget.h - 1) * GAP - HEADER - 12;
  const Body = BODIES[widget.type];

  const cellX = columnWidth + GAP;
  const cellY = ROW_HEIGHT + GAP;
  const onPointerDown = (mode: 'move' | 'resize') => (e: PointerEvent) => {
    if (e.button !== 0) return;
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY, start: widget, mode };
    e.preventDefault();
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const dx = Math.round((e.clientX - d.x) / cellX);
    const dy = Math.round((e.clientY - d.y) / cellY);
    const next =
      d.mode === 'move'
        ? { ...d.start, x: clamp(d.start.x + dx, 0, COLUMNS - d.start.w), y: Math.max(0, d.start.y + dy) }
        : { ...d.start, w: clamp(d.start.w + dx, 2, COLUMNS - d.start.x), h: clamp(d.start.h + dy, 2, 16) };
    if (next.x !== widget.x || next.y !== widget.y || next.w !== widget.w || next.h !== widget.h) onChange(next);
  };
  const onPointerUp = () => {
    drag.current = null;
  };
  const onKey = (mode: 'move' | 'resize') => (e: KeyboardEvent) => {
    const step: Record<string, [number, number]> = {
      ArrowLeft: [-1, 0],
      ArrowRight: [1, 0],
      ArrowUp: [0, -1],
      ArrowDown: [0, 1],
    };
    const delta = step[e.key];
    if (!delta) return;
    e.preventDefault();
    const [dx, dy] = delta;
    const resize = mode === 'resize' || e.shiftKey;
    onChange(
      resize
        ? { ...widget, w: clamp(widget.w + dx, 2, COLUMNS - widget.x), h: clamp(widget.h + dy, 2, 16) }
        : { ...widget, x: clamp(widget.x + dx, 0, COLUMNS - widget.w), y: Math.max(0, widget.y + dy) },
    );
  };

  return (
    <article
      class={`card widget widget-${widget.type}${editing ? ' editing' : ''}`}
      style={{ gridColumn: `${widget.x + 1} / span ${widget.w}`, gridRow: `${widget.y + 1} / span ${widget.h}` }}
      aria-labelledby={`title-${widget.id}`}
      data-widget={widget.type}
    >
      <header class="widget-head">
        {editing && (
          <button
            type="button"
            class="handle move"
            aria-label={`Move ${widget.title} (arrow keys; Shift+arrows resize)`}
            title="Drag to move"
            onPointerDown={onPointerDown('move')}
            onPointerMove={onPointerMove}
            onPointerUp={onPointerUp}
            onKeyDown={onKey('move')}
          >
            <span aria-hidden="true">⠿</span>
          </button>
        )}
        <h2 id={`title-${widget.id}`}>{widget.title}</h2>
        {editing && (
          <div class="widget-actions">
            <button type="button" class="link" onClick={onEdit} aria-label={`Edit ${widget.title}`}>
              Edit
            </button>
            <button type="button" class="link danger" onClick={onRemove} aria-label={`Remove ${widget.title}`}>
              Remove
            </button>
          </div>
        )}
      </header>
      <div class="widget-body" ref={bodyRef} style={{ height: `${height}px` }}>
        {width > 0 && <Body widget={widget} span={span} width={width} height={height} />}
      </div>
      {editing && (
        <button
          type="button"
          class="handle resize"
          aria-label={`Resize ${widget.title} (arrow keys)`}
          title="Drag to resize"
          onPointerDown={onPointerDown('resize')}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onKeyDown={onKey('resize')}
        >
          <span aria-hidden="true">◢</span>
        </button>
      )}
    </article>
  );
}

function clamp(n: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, n));
}
