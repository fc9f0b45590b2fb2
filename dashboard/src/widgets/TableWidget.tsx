import { EventTable } from '../components/EventTable';
import { api } from '../lib/api';
import { useLoad } from '../lib/hooks';
import { type WidgetProps, WidgetState } from './common';

export function TableWidget({ widget, span }: WidgetProps) {
  const limit = Math.max(1, Math.min(200, widget.query.limit ?? 20));
  const result = useLoad(
    (signal) =>
      api.events(
        {
          q: widget.query.q,
          limit,
          from: new Date(span.from).toISOString(),
          to: new Date(span.to).toISOString(),
        },
        signal,
      ),
    [widget.query.q, limit, span.from, span.to],
  );
  return (
    <WidgetState result={result} empty={false}>
      <div class="widget-scroll">
        <EventTable events={result.data?.events ?? []} label={widget.title} />
      </div>
    </WidgetState>
  );
}
