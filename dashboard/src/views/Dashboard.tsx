// One dashboard: its widgets on a 12-column grid over a time range, refreshed live; with a
// writer key, edited in place (add, edit, drag to move and resize, remove) and saved to the
// server (`PUT /api/v1/dashboards/{id}`). `/dashboards/new` starts an empty one.

import { useEffect, useState } from 'preact/hooks';
import { RefreshPicker, TimePicker } from '../components/TimePicker';
import { ApiError, api } from '../lib/api';
import { useAutoRefresh, useLoad, useWidth } from '../lib/hooks';
import { follow, navigate } from '../lib/router';
import { session, canWrite } from '../lib/session';
import { COLUMNS, type DashboardSpec, GAP, ROW_HEIGHT, type Widget, bottom, emptySpec, newWidget, normalize, settle, slug } from '../lib/spec';
import { type Refresh, type TimeRange, rangeFromSpec, rangeToSpec, resolve } from '../lib/time';
import { WidgetEditor } from '../widgets/WidgetEditor';
import { WidgetFrame } from '../widgets/WidgetFrame';

/** A message for the next dashboard shown: saving a new one moves to its own URL. */
let flash: string | null = null;

interface Draft {
  name: string;
  spec: DashboardSpec;
}

export default function DashboardView({ id }: { id: string }) {
  const isNew = id === 'new';
  const writable = canWrite(session.who()?.role);
  const loaded = useLoad(
    (signal) =>
      isNew
        ? Promise.resolve({ id, name: 'New dashboard', updated: '', spec: emptySpec() as unknown })
        : api.dashboard<unknown>(id, signal),
    [id],
  );
  const saved: Draft | undefined = loaded.data && { name: loaded.data.name, spec: normalize(loaded.data.spec) };
  const [draft, setDraft] = useState<Draft | null>(null);
  const [editing, setEditing] = useState(isNew && writable);
  const [editor, setEditor] = useState<{ widget: Widget; adding: boolean } | null>(null);
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(() => {
    const text = flash;
    flash = null;
    return text ? { text } : null;
  });
  const [saving, setSaving] = useState(false);
  const current = editing ? (draft ?? saved) : saved;

  // The range and refresh: the spec's, changeable without editing (not saved then).
  const [range, setRange] = useState<TimeRange | null>(null);
  const [refresh, setRefresh] = useState<Refresh | null>(null);
  const [now, setNow] = useState(Date.now());
  const shownRange = range ?? rangeFromSpec(current?.spec.range);
  const shownRefresh = refresh ?? current?.spec.refresh ?? 'off';
  const span = resolve(shownRange, now);
  useAutoRefresh(shownRefresh, () => setNow(Date.now()));

  const [gridRef, gridWidth] = useWidth<HTMLDivElement>();
  const columnWidth = (gridWidth - GAP * (COLUMNS - 1)) / COLUMNS;

  useEffect(() => {
    if (editing && !draft && saved) setDraft(saved);
  }, [editing, saved !== undefined]);

  if (isNew && !writable) {
    return (
      <section class="page">
        <h1>New dashboard</h1>
        <p class="notice error" role="alert">
          This key cannot create dashboards: that needs the writer role or higher.
        </p>
      </section>
    );
  }
  if (loaded.error && !loaded.data) {
    const missing = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <section class="page">
        <h1>{missing ? 'No such dashboard' : 'Dashboard'}</h1>
        <p class="notice error" role="alert">
          {loaded.error instanceof Error ? loaded.error.message : String(loaded.error)}
        </p>
        <p>
          <a href="/dashboards" onClick={follow}>
            All dashboards
          </a>
        </p>
      </section>
    );
  }
  if (!current) return <p class="loading" aria-busy="true">Loading…</p>;

  const update = (change: (d: Draft) => Draft) => setDraft((d) => change(d ?? current));
  const setWidgets = (widgets: Widget[], first?: string) =>
    update((d) => ({ ...d, spec: { ...d.spec, widgets: settle(widgets, first) } }));

  const changeRange = (r: TimeRange) => {
    setRange(r);
    setNow(Date.now());
    if (editing) update((d) => ({ ...d, spec: { ...d.spec, range: rangeToSpec(r) } }));
  };
  const changeRefresh = (r: Refresh) => {
    setRefresh(r);
    if (editing) update((d) => ({ ...d, spec: { ...d.spec, refresh: r } }));
  };

  const save = async () => {
    const d = draft ?? current;
    const name = d.name.trim();
    if (!name) {
      setStatus({ text: 'Give the dashboard a name.', error: true });
      return;
    }
    setSaving(true);
    try {
      const target = isNew ? slug(name) : id;
      await api.saveDashboard(target, name, d.spec);
      setStatus({ text: `Saved “${name}”.` });
      setEditing(false);
      setDraft(null);
      if (isNew) {
        flash = `Saved “${name}”.`;
        navigate(`/dashboards/${encodeURIComponent(target)}`, { replace: true });
      }
      else loaded.reload();
    } catch (e) {
      setStatus({ text: `Not saved: ${e instanceof Error ? e.message : String(e)}`, error: true });
    } finally {
      setSaving(false);
    }
  };

  const remove = async () => {
    if (!window.confirm(`Delete the dashboard “${current.name}”? This cannot be undone.`)) return;
    try {
      await api.deleteDashboard(id);
      navigate('/dashboards');
    } catch (e) {
      setStatus({ text: `Not deleted: ${e instanceof Error ? e.message : String(e)}`, error: true });
    }
  };

  const cancel = () => {
    if (isNew) {
      navigate('/dashboards');
      return;
    }
    setEditing(false);
    setDraft(null);
    setRange(null);
    setRefresh(null);
    setStatus(null);
  };

  const widgets = current.spec.widgets;
  const rows = Math.max(bottom(widgets), editing ? bottom(widgets) + 2 : 1);

  return (
    <section class="page dashboard" aria-labelledby="dashboard-title">
      <div class="page-head">
        {editing ? (
          <div class="title-edit">
            <label for="dashboard-name" class="sr-only">
              Dashboard name
            </label>
            <input
              id="dashboard-name"
              class="title-input"
              value={current.name}
              onInput={(e) => {
                const name = e.currentTarget.value;
                update((d) => ({ ...d, name }));
              }}
            />
            <h1 id="dashboard-title" class="sr-only">
              {current.name}
            </h1>
          </div>
        ) : (
          <h1 id="dashboard-title">{current.name}</h1>
        )}
        <div class="toolbar">
          <TimePicker id="dashboard-range" range={shownRange} onChange={changeRange} />
          <RefreshPicker id="dashboard-refresh" value={shownRefresh} onChange={changeRefresh} />
          {writable && !editing && (
            <button type="button" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
        </div>
      </div>
      {editing && (
        <div class="edit-bar" role="toolbar" aria-label="Edit dashboard">
          <button type="button" onClick={() => setEditor({ widget: newWidget('timeseries', widgets), adding: true })}>
            + Add widget
          </button>
          <span class="muted small">Drag ⠿ to move and ◢ to resize (or focus them and use the arrow keys).</span>
          <span class="spacer" />
          {!isNew && (
            <button type="button" class="link danger" onClick={remove}>
              Delete dashboard
            </button>
          )}
          <button type="button" onClick={cancel}>
            Cancel
          </button>
          <button type="button" class="primary" onClick={save} disabled={saving}>
            {saving ? 'Saving…' : 'Save'}
          </button>
        </div>
      )}
      <div aria-live="polite">
        {status && <p class={`notice${status.error ? ' error' : ' ok'}`}>{status.text}</p>}
      </div>
      {widgets.length === 0 && (
        <p class="empty">
          {editing ? 'No widgets yet: add one.' : 'This dashboard has no widgets.'}
        </p>
      )}
      <div
        class={`grid${editing ? ' editing' : ''}`}
        ref={gridRef}
        style={{ gridTemplateRows: `repeat(${rows}, ${ROW_HEIGHT}px)` }}
      >
        {gridWidth > 0 &&
          widgets.map((w) => (
            <WidgetFrame
              key={w.id}
              widget={w}
              span={span}
              editing={editing}
              columnWidth={columnWidth}
              onChange={(next) => setWidgets(widgets.map((o) => (o.id === next.id ? next : o)), next.id)}
              onEdit={() => setEditor({ widget: w, adding: false })}
              onRemove={() => setWidgets(widgets.filter((o) => o.id !== w.id))}
            />
          ))}
      </div>
      {editor && (
        <WidgetEditor
          initial={editor.widget}
          adding={editor.adding}
          widgets={widgets}
          onCancel={() => setEditor(null)}
          onSave={(w) => {
            setEditor(null);
            setWidgets(editor.adding ? [...widgets, w] : widgets.map((o) => (o.id === w.id ? w : o)), w.id);
          }}
        />
      )}
    </section>
  );
}
