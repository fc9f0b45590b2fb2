import { TimeChart } from '../components/TimeChart';
import { api } from '../lib/api';
import { useLoad } from '../lib/hooks';
import { bucketsFor, chartSeries } from '../lib/series';
import { type WidgetProps, WidgetState } from './common';

export function TimeseriesWidget({ widget, span, width, height }: WidgetProps) {
  const { query } = widget;
  const buckets = bucketsFor(width, widget.style ?? 'line');
  const result = useLoad(
    (signal) =>
      api.series(
        {
          q: query.q,
          field: query.field ?? 'value',
          agg: query.agg ?? 'avg',
          interval: query.interval ?? 'auto',
          buckets: (query.interval ?? 'auto') === 'auto' ? buckets : undefined,
          group_by: query.group_by,
          top: query.group_by ? query.top : undefined,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      ),
    [JSON.stringify(query), span.from, span.to, buckets],
  );
  const series = chartSeries(result.data, `${query.agg ?? 'avg'} of ${query.field ?? 'value'}`);
  return (
    <WidgetState result={result} empty={result.data !== undefined && series.length === 0}>
      <TimeChart
        label={widget.title}
        series={series}
        style={widget.style ?? 'line'}
        width={width}
        height={Math.max(80, height - (series.length > 1 ? 34 : 8))}
        legend={series.length > 1}
        range={span}
      />
    </WidgetState>
  );
}
