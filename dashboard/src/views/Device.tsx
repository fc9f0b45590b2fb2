// One device: its status, a chart of its values by kind over the last 24 hours, and its
// newest events.

import { EventTable } from '../components/EventTable';
import { TimeChart } from '../components/TimeChart';
import { api } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useAutoRefresh, useLoad, useNow, useWidth } from '../lib/hooks';
import { follow } from '../lib/router';
import { bucketsFor, chartSeries } from '../lib/series';
import { ago, formatTime } from '../lib/time';
import { deviceStatus } from './Devices';

const DAY = 86_400_000;

/** `device:"name"`: a filter for exactly this device (names never hold quotes). */
function deviceFilter(name: string): string {
  return `device:"${name}"`;
}

export default function DeviceView({ name }: { name: string }) {
  const now = useNow(30_000);
  const device = useLoad((signal) => api.device(name, signal), [name]);
  const events = useLoad((signal) => api.events({ device: name, limit: 20 }, signal), [name]);
  const [chartRef, width] = useWidth<HTMLDivElement>();
  const buckets = bucketsFor(width || 800);
  const series = useLoad(
    (signal) =>
      api.series(
        {
          q: deviceFilter(name),
          field: 'value',
          agg: 'avg',
          group_by: 'kind',
          buckets,
          from: new Date(now - DAY).toISOString(),
          to: new Date(now).toISOString(),
        },
        signal,
      ),
    [name, buckets, Math.floor(now / 60_000)],
  );
  useAutoRefresh('30s', () => {
    device.reload();
    events.reload();
  });

  const d = device.data;
  const status = d ? deviceStatus(d, now) : undefined;
  const lines = chartSeries(series.data, 'value');
  const last = d?.last_event ?? d?.last_seen;
  return (
    <section class="page device" aria-labelledby="device-title">
      <p class="crumbs">
        <a href="/devices" onClick={follow}>
          Devices
        </a>{' '}
        /
      </p>
      <div class="page-head">
        <h1 id="device-title">{name}</h1>
        {status && <span class={`status status-${status.tone}`}>{status.label}</span>}
      </div>
      {device.error !== undefined && (
        <p class="notice error" role="alert">
          {device.error instanceof Error ? device.error.message : String(device.error)}
        </p>
      )}
      {d && (
        <dl class="facts">
          <div>
            <dt>Last seen</dt>
            <dd>{last ? `${ago(Date.parse(last), now)} (${formatTime(Date.parse(last))})` : 'never'}</dd>
          </div>
          <div>
            <dt>Events / min (last hour)</dt>
            <dd>{formatNumber(d.events_per_minute ?? 0)}</dd>
          </div>
          <div>
            <dt>Registered</dt>
            <dd>{formatTime(Date.parse(d.created))}</dd>
          </div>
          {Object.keys(d.labels).length > 0 && (
            <div>
              <dt>Labels</dt>
              <dd>
                {Object.entries(d.labels).map(([k, v]) => (
                  <span class="label-chip" key={k}>
                    {k}={v}
                  </span>
                ))}
              </dd>
            </div>
          )}
        </dl>
      )}
      <div class="card" ref={chartRef}>
        <h2>Average value by kind, last 24 hours</h2>
        {series.data && lines.length === 0 && <p class="empty">No values in the last 24 hours.</p>}
        {lines.length > 0 && width > 0 && (
          <TimeChart label={`Values of ${name} by kind`} series={lines} width={width - 24} height={240} />
        )}
      </div>
      <h2>Newest events</h2>
      {events.data && <EventTable events={events.data.events} label={`Newest events of ${name}`} deviceLinks={false} />}
    </section>
  );
}
