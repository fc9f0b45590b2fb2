// Discover: search events with the filter language over a time range, see their count
// over time (drag across the histogram to zoom in), read them newest first, open any to
// its JSON, page back with the cursor, and refresh live.
//
// The query, range and refresh live in the URL, so a search can be reloaded and shared.

import { useEffect, useState } from 'preact/hooks';
import { EventTable } from '../components/EventTable';
import { QueryBar } from '../components/QueryBar';
import { RefreshPicker, TimePicker } from '../components/TimePicker';
import { TimeChart } from '../components/TimeChart';
import { ApiError, type EventPage, aborted, api } from '../lib/api';
import { formatNumber } from '../lib/format';
import { useAutoRefresh, useWidth } from '../lib/hooks';
import { setParams, useLocation } from '../lib/router';
import { type Refresh, type TimeRange, describe, isRefresh, rangeFromParams, rangeToParams, resolve } from '../lib/time';

const PAGE = 50;

interface View {
  /** The range as resolved when the first page was loaded; later pages keep it. */
  span: { from: number; to: number };
  page: EventPage;
  /** Cursors of the pages before this one (empty on the first page). */
  before: (string | undefined)[];
  cursor: string | undefined;
  total: number | undefined;
  histogram: [number, number | null][];
}

export default function Discover() {
  const { params } = useLocation();
  const q = params.get('q') ?? '';
  const range = rangeFromParams(params, '24h');
  const refresh: Refresh = isRefresh(params.get('refresh')) ? (params.get('refresh') as Refresh) : 'off';
  const rangeKey = JSON.stringify(range);

  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [loading, setLoading] = useState(false);
  const [generation, setGeneration] = useState(0);
  const [chartRef, width] = useWidth<HTMLDivElement>();

  const load = (cursor: string | undefined, before: (string | undefined)[], signal?: AbortSignal) => {
    const first = cursor === undefined;
    const span = first || !view ? resolve(range) : view.span;
    setLoading(true);
    return api
      .events(
        {
          q,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
          limit: PAGE,
          cursor,
          total: first ? true : undefined,
          histogram: first ? 'auto' : undefined,
        },
        signal,
      )
      .then((page) => {
        setError(null);
        setView((old) => ({
          span,
          page,
          before,
          cursor,
          total: first ? page.total : old?.total,
          histogram: first
            ? (page.histogram ?? []).map(([t, n]) => [Date.parse(t), n] as [number, number])
            : (old?.histogram ?? []),
        }));
      })
      .catch((e: unknown) => {
        if (aborted(e)) return;
        setError(e instanceof Error ? e : new Error(String(e)));
        if (e instanceof ApiError && e.parameter === 'q') setView(null);
      })
      .finally(() => setLoading(false));
  };

  // The first page, again whenever the search changes or the refresh ticks.
  useEffect(() => {
    const controller = new AbortController();
    void load(undefined, [], controller.signal);
    return () => controller.abort();
  }, [q, rangeKey, generation]);

  useAutoRefresh(refresh, () => {
    // Only the first page follows the live edge; a reader paging back is left alone.
    if (!view || view.cursor === undefined) setGeneration((g) => g + 1);
  });

  const setRange = (r: TimeRange) => setParams(rangeToParams(r));
  const syntax = error instanceof ApiError && error.parameter === 'q' ? error : undefined;
  const events = view?.page.events ?? [];
  const offset = (view?.before.length ?? 0) * PAGE;

  return (
    <section class="page discover" aria-labelledby="discover-title">
      <div class="page-head">
        <h1 id="discover-title">Discover</h1>
        <div class="toolbar">
          <TimePicker id="discover-range" range={range} onChange={setRange} />
          <RefreshPicker id="discover-refresh" value={refresh} onChange={(r) => setParams({ refresh: r === 'off' ? undefined : r })} />
        </div>
      </div>
      <QueryBar id="discover-q" label="Query" value={q} onSubmit={(text) => setParams({ q: text })} error={syntax} />
      {error && !syntax && (
        <p class="notice error" role="alert">
          {error.message}
        </p>
      )}
      <div class="summary" aria-live="polite" aria-busy={loading}>
        {view && (
          <p>
            <strong class="total">{formatNumber(view.total ?? 0)}</strong> {view.total === 1 ? 'event' : 'events'} ·{' '}
            {describe(range)}
            {loading && <span class="muted"> · updating…</span>}
          </p>
        )}
      </div>
      <div class="card histogram" ref={chartRef} hidden={!view}>
        {view && width > 0 && (
          <TimeChart
            label="Events over time"
            style="bar"
            legend={false}
            width={width - 24}
            height={140}
            range={view.span}
            series={[{ label: 'Events', points: view.histogram }]}
            onSelect={(from, to) => setRange({ kind: 'absolute', from, to })}
          />
        )}
        <p class="hint">Drag across the chart to zoom into a time range.</p>
      </div>
      {view && (
        <>
          <EventTable events={events} label="Events, newest first" />
          <nav class="pager" aria-label="Pages of events">
            <button
              type="button"
              disabled={!view.before.length || loading}
              onClick={() => {
                const before = view.before.slice(0, -1);
                void load(view.before[view.before.length - 1], before);
              }}
            >
              ← Newer
            </button>
            <span class="muted">
              {events.length ? `${formatNumber(offset + 1)}–${formatNumber(offset + events.length)}` : '0'}
              {view.total !== undefined && ` of ${formatNumber(view.total)}`}
            </span>
            <button
              type="button"
              disabled={!view.page.next || loading}
              onClick={() => void load(view.page.next ?? undefined, [...view.before, view.cursor])}
            >
              Older →
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
