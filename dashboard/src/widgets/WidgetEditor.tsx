// The dialog that adds or edits a widget: its type, title and query, and the options of
// its type (line or bars, gauge thresholds, table rows).

import { useEffect, useRef, useState } from 'preact/hooks';
import { AGGREGATIONS, AGG_LABELS, FIELD_SUGGESTIONS, GROUP_SUGGESTIONS, INTERVALS } from '../lib/series';
import { WIDGET_LABELS, WIDGET_TYPES, type Widget, type WidgetType, newWidget } from '../lib/spec';

interface Props {
  /** The widget to edit, or a fresh one to add. */
  initial: Widget;
  adding: boolean;
  widgets: Widget[];
  onSave: (widget: Widget) => void;
  onCancel: () => void;
}

export function WidgetEditor({ initial, adding, widgets, onSave, onCancel }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [w, setW] = useState<Widget>(initial);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);

  const setType = (type: WidgetType) => {
    // A new type brings its own sensible query; the place and title stay if edited.
    const fresh = newWidget(type, widgets);
    setW((old) => ({
      ...fresh,
      id: old.id,
      x: old.x,
      y: old.y,
      w: adding ? fresh.w : old.w,
      h: adding ? fresh.h : old.h,
      title: adding || old.title === WIDGET_LABELS[old.type] ? fresh.title : old.title,
    }));
  };
  const query = (patch: Partial<Widget['query']>) => setW((old) => ({ ...old, query: { ...old.query, ...patch } }));
  const t = w.type;
  const [warn, critical] = [w.thresholds?.[0]?.value, w.thresholds?.[1]?.value];
  const setThreshold = (i: 0 | 1, text: string) => {
    const value = text === '' ? undefined : Number(text);
    const list = [
      { value: i === 0 ? value : warn, color: 'orange' },
      { value: i === 1 ? value : critical, color: 'red' },
    ].filter((x): x is { value: number; color: string } => x.value !== undefined && Number.isFinite(x.value));
    setW((old) => ({ ...old, thresholds: list }));
  };
  const numberOrUndefined = (text: string) => (text === '' || !Number.isFinite(Number(text)) ? undefined : Number(text));

  return (
    <dialog
      ref={dialog}
      class="widget-editor"
      aria-labelledby="widget-editor-title"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          onSave({ ...w, title: w.title.trim() || WIDGET_LABELS[w.type] });
        }}
      >
        <h2 id="widget-editor-title">{adding ? 'Add a widget' : `Edit “${initial.title}”`}</h2>
        <div class="form-grid two">
          <label>
            Widget type
            <select value={t} onChange={(e) => setType(e.currentTarget.value as WidgetType)}>
              {WIDGET_TYPES.map((type) => (
                <option key={type} value={type}>
                  {WIDGET_LABELS[type]}
                </option>
              ))}
            </select>
          </label>
          <label>
            Title
            <input value={w.title} onInput={(e) => setW({ ...w, title: e.currentTarget.value })} required />
          </label>
          <label class="wide">
            Filter
            <input
              value={w.query.q}
              spellcheck={false}
              placeholder="e.g. kind:temperature (empty: everything)"
              onInput={(e) => query({ q: e.currentTarget.value })}
            />
          </label>
          {(t === 'timeseries' || t === 'pie' || t === 'gauge') && (
            <label>
              Field
              <input
                value={w.query.field ?? 'value'}
                list="widget-fields"
                spellcheck={false}
                onInput={(e) => query({ field: e.currentTarget.value })}
              />
              <datalist id="widget-fields">
                {FIELD_SUGGESTIONS.map((f) => (
                  <option key={f} value={f} />
                ))}
              </datalist>
            </label>
          )}
          {(t === 'timeseries' || t === 'pie') && (
            <label>
              Aggregation
              <select value={w.query.agg ?? (t === 'pie' ? 'count' : 'avg')} onChange={(e) => query({ agg: e.currentTarget.value })}>
                {(t === 'pie' ? (['count', 'sum'] as const) : AGGREGATIONS).map((a) => (
                  <option key={a} value={a}>
                    {AGG_LABELS[a]}
                  </option>
                ))}
              </select>
            </label>
          )}
          {t === 'timeseries' && (
            <label>
              Interval
              <select value={w.query.interval ?? 'auto'} onChange={(e) => query({ interval: e.currentTarget.value })}>
                {INTERVALS.map((i) => (
                  <option key={i} value={i}>
                    {i === 'auto' ? 'auto (fits the chart)' : i}
                  </option>
                ))}
              </select>
            </label>
          )}
          {(t === 'timeseries' || t === 'pie') && (
            <label>
              Group by
              <input
                value={w.query.group_by ?? ''}
                list="widget-groups"
                spellcheck={false}
                placeholder="none"
                onInput={(e) => query({ group_by: e.currentTarget.value || undefined })}
              />
              <datalist id="widget-groups">
                {GROUP_SUGGESTIONS.map((g) => (
                  <option key={g} value={g} />
                ))}
              </datalist>
            </label>
          )}
          {t === 'timeseries' && (
            <fieldset class="inline">
              <legend>Draw as</legend>
              {(['line', 'bar'] as const).map((style) => (
                <label key={style} class="radio">
                  <input
                    type="radio"
                    name="style"
                    value={style}
                    checked={(w.style ?? 'line') === style}
                    onChange={() => setW({ ...w, style })}
                  />
                  {style === 'line' ? 'Lines' : 'Bars'}
                </label>
              ))}
            </fieldset>
          )}
          {t === 'gauge' && (
            <>
              <label>
                Minimum
                <input type="number" step="any" value={w.min ?? 0} onInput={(e) => setW({ ...w, min: numberOrUndefined(e.currentTarget.value) })} />
              </label>
              <label>
                Maximum
                <input type="number" step="any" value={w.max ?? ''} onInput={(e) => setW({ ...w, max: numberOrUndefined(e.currentTarget.value) })} />
              </label>
              <label>
                Warning from
                <input type="number" step="any" value={warn ?? ''} onInput={(e) => setThreshold(0, e.currentTarget.value)} />
              </label>
              <label>
                Critical from
                <input type="number" step="any" value={critical ?? ''} onInput={(e) => setThreshold(1, e.currentTarget.value)} />
              </label>
              <label>
                Unit
                <input value={w.unit ?? ''} onInput={(e) => setW({ ...w, unit: e.currentTarget.value || undefined })} />
              </label>
            </>
          )}
          {(t === 'table' || t === 'map') && (
            <label>
              {t === 'table' ? 'Rows' : 'Newest events read'}
              <input
                type="number"
                min={1}
                max={t === 'table' ? 200 : 10000}
                value={w.query.limit ?? (t === 'table' ? 20 : 1000)}
                onInput={(e) => query({ limit: numberOrUndefined(e.currentTarget.value) })}
              />
            </label>
          )}
          {(t === 'map' || t === 'heatmap') && (
            <p class="help wide">
              Positions come from <code>data.location.lat</code> and <code>data.location.lon</code>; the filter{' '}
              <code>location:*</code> keeps the events that have one.
              {t === 'map'
                ? ' The map shows each device’s newest position among the newest events read.'
                : ' The heat map counts every event of the range per grid cell, on the server.'}
            </p>
          )}
        </div>
        <div class="dialog-actions">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" class="primary">
            {adding ? 'Add widget' : 'Apply'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
