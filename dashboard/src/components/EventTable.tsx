// The event table: time, device, sensor, kind, value; each row opens to its JSON.

import { useState } from 'preact/hooks';
import type { IngotEvent } from '../lib/api';
import { formatNumber, prettyJson } from '../lib/format';
import { follow } from '../lib/router';
import { formatTime } from '../lib/time';

interface Props {
  events: IngotEvent[];
  label: string;
  /** Link device names to their page (default true). */
  deviceLinks?: boolean;
}

export function EventTable({ events, label, deviceLinks = true }: Props) {
  const [open, setOpen] = useState<Set<string>>(new Set());
  const toggle = (id: string) =>
    setOpen((o) => {
      const next = new Set(o);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  if (events.length === 0) return <p class="empty">No events match.</p>;
  return (
    <div class="table-wrap">
      <table class="events" aria-label={label}>
        <thead>
          <tr>
            <th scope="col" class="expand-col">
              <span class="sr-only">Details</span>
            </th>
            <th scope="col">Time</th>
            <th scope="col">Device</th>
            <th scope="col">Sensor</th>
            <th scope="col">Kind</th>
            <th scope="col" class="num">
              Value
            </th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => {
            const expanded = open.has(e.id);
            const detailId = `event-${e.id}`;
            return [
              <tr key={e.id} class={expanded ? 'open' : undefined}>
                <td class="expand-col">
                  <button
                    type="button"
                    class="expander"
                    aria-expanded={expanded}
                    aria-controls={detailId}
                    aria-label={`${expanded ? 'Hide' : 'Show'} JSON of event ${e.id}`}
                    onClick={() => toggle(e.id)}
                  >
                    <span aria-hidden="true">{expanded ? '▾' : '▸'}</span>
                  </button>
                </td>
                <td class="time">
                  <time dateTime={e.ts}>{formatTime(Date.parse(e.ts), { ms: true })}</time>
                </td>
                <td>
                  {deviceLinks ? (
                    <a href={`/devices/${encodeURIComponent(e.device)}`} onClick={follow}>
                      {e.device}
                    </a>
                  ) : (
                    e.device
                  )}
                </td>
                <td>{e.sensor ?? <span class="muted">—</span>}</td>
                <td>{e.kind ?? <span class="muted">—</span>}</td>
                <td class="num">{e.value === null ? <span class="muted">—</span> : formatNumber(e.value)}</td>
              </tr>,
              expanded && (
                <tr key={`${e.id}-json`} class="json-row">
                  <td colSpan={6} id={detailId}>
                    <pre class="json" aria-label={`JSON of event ${e.id}`}>
                      <code>{prettyJson(e)}</code>
                    </pre>
                  </td>
                </tr>
              ),
            ];
          })}
        </tbody>
      </table>
    </div>
  );
}
