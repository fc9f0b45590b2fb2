// The tenant's saved dashboards, and a way to start a new one (writer keys and above).

import { api } from '../lib/api';
import { useLoad } from '../lib/hooks';
import { follow } from '../lib/router';
import { canWrite, session } from '../lib/session';
import { ago } from '../lib/time';

export default function Dashboards() {
  const list = useLoad((signal) => api.dashboards(signal), []);
  const writable = canWrite(session.who()?.role);
  const dashboards = [...(list.data?.dashboards ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <section class="page" aria-labelledby="dashboards-title">
      <div class="page-head">
        <h1 id="dashboards-title">Dashboards</h1>
        <div class="toolbar">
          {writable ? (
            <a class="button primary" href="/dashboards/new" onClick={follow}>
              New dashboard
            </a>
          ) : (
            <span class="muted small">Read-only key: dashboards can be viewed, not changed.</span>
          )}
        </div>
      </div>
      {list.error !== undefined && (
        <p class="notice error" role="alert">
          {list.error instanceof Error ? list.error.message : String(list.error)}
        </p>
      )}
      {list.data && dashboards.length === 0 && <p class="empty">No dashboards yet.</p>}
      {dashboards.length > 0 && (
        <ul class="card-list" aria-label="Saved dashboards">
          {dashboards.map((d) => (
            <li key={d.id} class="card">
              <a href={`/dashboards/${encodeURIComponent(d.id)}`} onClick={follow} class="card-link">
                {d.name}
              </a>
              <span class="muted small">updated {ago(Date.parse(d.updated))}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
