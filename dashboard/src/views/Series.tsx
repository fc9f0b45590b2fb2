// Series: aggregate a field per time bucket (count, avg, min, max, sum, p50 ... p99),
// grouped by a field and/or for several filters at once, overlaid on one chart with a
// legend and tooltips, or read as a table.
//
// The server downsamples: with `interval=auto` it is asked for about one bucket per two
// pixels of the chart (`buckets=`), so a 30-day range costs no more than an hour.

import { useEffect, useState } from 'preact/hooks';
import { QueryBar } from '../components/QueryBar';
import { RefreshPicker, TimePicker } from '../components/TimePicker';
import { TimeChart, type ChartSeries } from '../components/TimeChart';
import {
  AGGREGATIONS,
  AGG_LABELS,
  FIELD_SUGGESTIONS,
  GROUP_SUGGESTIONS,
  INTERVALS,
  bucketsFor,
  chartSeries,
} from '../lib/series';
import { ApiError, api } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useAutoRefresh, useLoad, useWidth } from '../lib/hooks';
import { navigate, setParams, useLocation } from '../lib/router';
import { type Refresh, type TimeRange, formatTime, isRefresh, rangeFromParams, rangeToParams, resolve } from '../lib/time';

interface Form {
  queries: string[];
  field: string;
  agg: string;
  interval: string;
  groupBy: string;
  top: string;
}

function formFrom(params: URLSearchParams): Form {
  const queries = params.getAll('q');
  return {
    queries: queries.length ? queries : [''],
    field: params.get('field') ?? 'value',
    agg: params.get('agg') ?? 'avg',
    interval: params.get('interval') ?? 'auto',
    groupBy: params.get('group_by') ?? '',
    top: params.get('top') ?? '10',
  };
}

export default function SeriesView() {
  const { params } = useLocation();
  const applied = formFrom(params);
  const range = rangeFromParams(params, '24h');
  const refresh: Refresh = isRefresh(params.get('refresh')) ? (params.get('refresh') as Refresh) : 'off';
  const tab = params.get('view') === 'table' ? 'table' : 'chart';
  const [form, setForm] = useState<Form>(applied);
  const [chartRef, width] = useWidth<HTMLDivElement>();
  const buckets = bucketsFor(width || 800);
  // What the answer depends on (not the tab shown).
  const appliedKey = [...params].filter(([k]) => k !== 'view').map(([k, v]) => `${k}=${v}`).join('&');
  useEffect(() => setForm(formFrom(params)), [appliedKey]);

  const result = useLoad(
    (signal) => {
      const span = resolve(range);
      return api.series(
        {
          q: applied.queries,
          field: applied.field,
          agg: applied.agg,
          interval: applied.interval,
          buckets: applied.interval === 'auto' ? buckets : undefined,
          group_by: applied.groupBy,
          top: applied.groupBy ? applied.top : undefined,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      );
    },
    [appliedKey, buckets],
  );
  useAutoRefresh(refresh, result.reload);

  const submit = (event?: Event) => {
    event?.preventDefault();
    const search = new URLSearchParams();
    for (const q of form.queries) search.append('q', q.trim());
    const set = (k: string, v: string, skip: string) => v && v !== skip && search.set(k, v);
    set('field', form.field.trim(), '');
    set('agg', form.agg, '');
    set('interval', form.interval, 'auto');
    set('group_by', form.groupBy.trim(), '');
    if (form.groupBy.trim()) set('top', form.top, '10');
    for (const [k, v] of Object.entries(rangeToParams(range))) if (v) search.set(k, v);
    if (refresh !== 'off') search.set('refresh', refresh);
    if (tab === 'table') search.set('view', 'table');
    navigate(`/series?${search}`);
  };

  const error = result.error instanceof ApiError ? result.error : undefined;
  const qError = error?.parameter === 'q' ? error : undefined;
  const label = `${AGG_LABELS[applied.agg] ?? applied.agg} of ${applied.field}`;
  const series = chartSeries(result.data, label);
  const update = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));

  return (
    <section class="page series" aria-labelledby="series-title">
      <div class="page-head">
        <h1 id="series-title">Series</h1>
        <div class="toolbar">
          <TimePicker id="series-range" range={range} onChange={(r: TimeRange) => setParams(rangeToParams(r))} />
          <RefreshPicker id="series-refresh" value={refresh} onChange={(r) => setParams({ refresh: r === 'off' ? undefined : r })} />
        </div>
      </div>
      <form class="card series-form" onSubmit={submit} aria-label="Series to compare">
        <fieldset class="queries">
          <legend>Filters — one series each (or one per group)</legend>
          {form.queries.map((q, i) => (
            <div class="query-row" key={i}>
              <QueryBar
                id={`series-q-${i}`}
                label={`Filter ${i + 1}`}
                value={q}
                button={false}
                onSubmit={() => submit()}
                onChange={(text) => update({ queries: form.queries.map((old, j) => (j === i ? text : old)) })}
                error={qError && (qError.index ?? 0) === i ? qError : undefined}
                placeholder="Filter, e.g. origin:seville (empty: everything)"
              />
              {form.queries.length > 1 && (
                <button
                  type="button"
                  class="icon"
                  aria-label={`Remove filter ${i + 1}`}
                  onClick={() => update({ queries: form.queries.filter((_, j) => j !== i) })}
                >
                  ×
                </button>
              )}
            </div>
          ))}
          {form.queries.length < 10 && (
            <button type="button" class="link" onClick={() => update({ queries: [...form.queries, ''] })}>
              + Add a filter
            </button>
          )}
        </fieldset>
        <div class="form-grid">
          <label>
            Field
            <input
              value={form.field}
              list="series-fields"
              spellcheck={false}
              onInput={(e) => update({ field: e.currentTarget.value })}
            />
            <datalist id="series-fields">
              {FIELD_SUGGESTIONS.map((f) => (
                <option key={f} value={f} />
              ))}
            </datalist>
          </label>
          <label>
            Aggregation
            <select value={form.agg} onChange={(e) => update({ agg: e.currentTarget.value })}>
              {AGGREGATIONS.map((a) => (
                <option key={a} value={a}>
                  {AGG_LABELS[a]}
                </option>
              ))}
            </select>
          </label>
          <label>
            Interval
            <select value={form.interval} onChange={(e) => update({ interval: e.currentTarget.value })}>
              {INTERVALS.map((i) => (
                <option key={i} value={i}>
                  {i === 'auto' ? 'auto (fits the chart)' : i}
                </option>
              ))}
            </select>
          </label>
          <label>
            Group by
            <input
              value={form.groupBy}
              list="series-groups"
              spellcheck={false}
              placeholder="none"
              onInput={(e) => update({ groupBy: e.currentTarget.value })}
            />
            <datalist id="series-groups">
              {GROUP_SUGGESTIONS.map((g) => (
                <option key={g} value={g} />
              ))}
            </datalist>
          </label>
          <label>
            Top groups
            <input
              type="number"
              min={1}
              max={100}
              value={form.top}
              disabled={!form.groupBy.trim()}
              onInput={(e) => update({ top: e.currentTarget.value })}
            />
          </label>
          <button type="submit" class="primary">
            Show
          </button>
        </div>
      </form>
      {error && !qError && (
        <p class="notice error" role="alert">
          {error.message}
        </p>
      )}
      <div class="card result" ref={chartRef}>
        <div class="result-head">
          <h2>
            {label}
            {applied.groupBy && <span class="muted"> by {applied.groupBy}</span>}
            {result.data && <span class="muted small"> · per {result.data.interval}</span>}
          </h2>
          <div role="tablist" aria-label="Show as" class="tabs">
            {(['chart', 'table'] as const).map((t) => (
              <button
                key={t}
                type="button"
                role="tab"
                aria-selected={tab === t}
                onClick={() => setParams({ view: t === 'table' ? 'table' : undefined }, true)}
              >
                {t === 'chart' ? 'Chart' : 'Table'}
              </button>
            ))}
          </div>
        </div>
        <div role="tabpanel" aria-busy={result.loading}>
          {result.data && series.length === 0 && <p class="empty">No events match in this range.</p>}
          {tab === 'chart' && series.length > 0 && width > 0 && (
            <TimeChart label={`Series: ${label}`} series={series} width={width - 24} height={320} />
          )}
          {tab === 'table' && series.length > 0 && <SeriesTable series={series} label={label} />}
        </div>
      </div>
    </section>
  );
}

export function SeriesTable({ series, label }: { series: ChartSeries[]; label: string }) {
  const times = series[0]?.points.map((p) => p[0]) ?? [];
  // Newest first, and only buckets where some series has a value.
  const rows = times
    .map((t, i) => ({ t, values: series.map((s) => s.points[i]?.[1] ?? null) }))
    .filter((r) => r.values.some((v) => v !== null))
    .reverse();
  return (
    <div class="table-wrap tall">
      <table class="series-table" aria-label={`Table: ${label}`}>
        <thead>
          <tr>
            <th scope="col">Time</th>
            {series.map((s) => (
              <th scope="col" class="num" key={s.label}>
                {s.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.t}>
              <td class="time">{formatTime(r.t)}</td>
              {r.values.map((v, i) => (
                <td class="num" key={i}>
                  {v === null ? <span class="muted">—</span> : formatNumber(v)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
