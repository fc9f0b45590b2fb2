// The tenant's registered devices: status, when they were last seen, and their event rate
// over the last hour.

import { type Device, api } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useAutoRefresh, useLoad, useNow } from '../lib/hooks';
import { follow } from '../lib/router';
import { ago, formatTime } from '../lib/time';

/** A device is online when its newest event is less than five minutes old. */
const ONLINE_MS = 5 * 60_000;

export function deviceStatus(d: Device, now: number): { label: string; tone: 'ok' | 'idle' | 'off' } {
  if (!d.enabled) return { label: 'Disabled', tone: 'off' };
  const last = d.last_event ?? d.last_seen;
  if (last && now - Date.parse(last) < ONLINE_MS) return { label: 'Online', tone: 'ok' };
  if (last) return { label: 'Idle', tone: 'idle' };
  return { label: 'Never seen', tone: 'off' };
}

export default function Devices() {
  const list = useLoad((signal) => api.devices(signal), []);
  useAutoRefresh('30s', list.reload);
  const now = useNow();
  const devices = list.data?.devices ?? [];
  return (
    <section class="page" aria-labelledby="devices-title">
      <div class="page-head">
        <h1 id="devices-title">Devices</h1>
        <p class="muted small">Rates over the last hour; refreshed every 30 s.</p>
      </div>
      {list.error !== undefined && (
        <p class="notice error" role="alert">
          {list.error instanceof Error ? list.error.message : String(list.error)}
        </p>
      )}
      {list.data && devices.length === 0 && (
        <p class="empty">
          No devices are registered. Register one with <code>ingot device add probe-7</code>.
        </p>
      )}
      {devices.length > 0 && (
        <div class="table-wrap">
          <table class="devices" aria-label="Devices">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Status</th>
                <th scope="col">Last seen</th>
                <th scope="col" class="num">
                  Events / min
                </th>
                <th scope="col" class="num">
                  Last hour
                </th>
                <th scope="col">Labels</th>
              </tr>
            </thead>
            <tbody>
              {devices.map((d) => {
                const status = deviceStatus(d, now);
                const last = d.last_event ?? d.last_seen;
                return (
                  <tr key={d.device}>
                    <td>
                      <a href={`/devices/${encodeURIComponent(d.device)}`} onClick={follow}>
                        {d.device}
                      </a>
                    </td>
                    <td>
                      <span class={`status status-${status.tone}`}>{status.label}</span>
                    </td>
                    <td>{last ? <time dateTime={last} title={formatTime(Date.parse(last))}>{ago(Date.parse(last), now)}</time> : <span class="muted">never</span>}</td>
                    <td class="num">{formatNumber(d.events_per_minute ?? 0)}</td>
                    <td class="num">{formatNumber(d.events_last_hour ?? 0)}</td>
                    <td>
                      {Object.entries(d.labels).map(([k, v]) => (
                        <span class="label-chip" key={k}>
                          {k}={v}
                        </span>
                      ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
