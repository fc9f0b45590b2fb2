// The time range: a preset (last 15 min ... 30 days) or absolute from/to, and the
// auto-refresh choice that goes with it.

import { useState } from 'preact/hooks';
import {
  PRESETS,
  PRESET_LABELS,
  REFRESH_CHOICES,
  type Refresh,
  type TimeRange,
  formatTime,
  fromLocalInput,
  isPreset,
  isRefresh,
  resolve,
  toLocalInput,
} from '../lib/time';

interface Props {
  id: string;
  range: TimeRange;
  onChange: (range: TimeRange) => void;
}

export function TimePicker({ id, range, onChange }: Props) {
  const [editing, setEditing] = useState(false);
  const span = resolve(range);
  const [from, setFrom] = useState(toLocalInput(span.from));
  const [to, setTo] = useState(toLocalInput(span.to));
  const [problem, setProblem] = useState<string | null>(null);

  const choose = (value: string) => {
    if (isPreset(value)) {
      setEditing(false);
      onChange({ kind: 'relative', last: value });
    } else {
      const now = resolve(range);
      setFrom(toLocalInput(now.from));
      setTo(toLocalInput(now.to));
      setEditing(true);
    }
  };

  const apply = (event: Event) => {
    event.preventDefault();
    const a = fromLocalInput(from);
    const b = fromLocalInput(to);
    if (a === undefined || b === undefined || a >= b) {
      setProblem('“From” must be earlier than “To”.');
      return;
    }
    setProblem(null);
    setEditing(false);
    onChange({ kind: 'absolute', from: a, to: b + 59_999 });
  };

  const selected = editing || range.kind === 'absolute' ? 'absolute' : range.last;
  return (
    <div class="time-picker">
      <label for={id}>Time range</label>
      <select id={id} value={selected} onChange={(e) => choose(e.currentTarget.value)}>
        {PRESETS.map((p) => (
          <option key={p} value={p}>
            {PRESET_LABELS[p]}
          </option>
        ))}
        <option value="absolute">
          {range.kind === 'absolute' && !editing
            ? `${formatTime(range.from)} – ${formatTime(range.to)}`
            : 'Absolute…'}
        </option>
      </select>
      {editing && (
        <form class="absolute-range" onSubmit={apply} aria-label="Absolute time range">
          <label>
            From <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required />
          </label>
          <label>
            To <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} required />
          </label>
          <button type="submit">Apply</button>
          <button type="button" class="link" onClick={() => setEditing(false)}>
            Cancel
          </button>
          {problem && (
            <p class="field-error" role="alert">
              {problem}
            </p>
          )}
        </form>
      )}
      {range.kind === 'absolute' && !editing && (
        <button type="button" class="link" onClick={() => choose('absolute')}>
          Edit
        </button>
      )}
    </div>
  );
}

export function RefreshPicker({ id, value, onChange }: { id: string; value: Refresh; onChange: (r: Refresh) => void }) {
  const labels: Record<Refresh, string> = { off: 'Off', '5s': 'Every 5 s', '30s': 'Every 30 s' };
  return (
    <div class="refresh-picker">
      <label for={id}>Auto-refresh</label>
      <select
        id={id}
        value={value}
        onChange={(e) => {
          const v = e.currentTarget.value;
          if (isRefresh(v)) onChange(v);
        }}
      >
        {REFRESH_CHOICES.map((r) => (
          <option key={r} value={r}>
            {labels[r]}
          </option>
        ))}
      </select>
    </div>
  );
}
