// The shell: sign-in gate, header (navigation, tenant and role, sign out) and the routes.

import { useEffect, useState } from 'preact/hooks';
import { lazy } from './components/Lazy';
import { follow, navigate, useLocation } from './lib/router';
import { session } from './lib/session';
import { SignIn } from './views/SignIn';

const Discover = lazy(() => import('./views/Discover'));
const SeriesView = lazy(() => import('./views/Series'));
const Dashboards = lazy(() => import('./views/Dashboards'));
const DashboardView = lazy(() => import('./views/Dashboard'));
const Devices = lazy(() => import('./views/Devices'));
const DeviceView = lazy(() => import('./views/Device'));

const NAV = [
  { href: '/discover', label: 'Discover' },
  { href: '/series', label: 'Series' },
  { href: '/dashboards', label: 'Dashboards' },
  { href: '/devices', label: 'Devices' },
];

function useSession() {
  const [who, setWho] = useState(session.who);
  useEffect(() => session.subscribe(() => setWho(session.who())), []);
  return who;
}

export function App() {
  const location = useLocation();
  const who = useSession();
  const path = location.path;

  // Not signed in: every route shows the sign-in page, then comes back to where it was.
  useEffect(() => {
    if (!who && path !== '/signin') {
      const back = `${path}${window.location.search}`;
      navigate(`/signin${back === '/' ? '' : `?next=${encodeURIComponent(back)}`}`, { replace: true });
    } else if (who && (path === '/' || path === '/signin')) {
      const next = location.params.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/discover', { replace: true });
    }
  }, [who, path]);

  useEffect(() => {
    const section = NAV.find((n) => path.startsWith(n.href))?.label;
    document.title = section ? `${section} · Ingot` : 'Ingot';
  }, [path]);

  if (!who) return <SignIn />;

  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  let view;
  switch (segments[0]) {
    case 'discover':
      view = <Discover />;
      break;
    case 'series':
      view = <SeriesView />;
      break;
    case 'dashboards':
      view = segments[1] ? <DashboardView id={segments[1]} key={segments[1]} /> : <Dashboards />;
      break;
    case 'devices':
      view = segments[1] ? <DeviceView name={segments[1]} key={segments[1]} /> : <Devices />;
      break;
    default:
      view = (
        <section class="page">
          <h1>Not found</h1>
          <p>
            Nothing lives at <code>{path}</code>. Try <a href="/discover" onClick={follow}>Discover</a>.
          </p>
        </section>
      );
  }

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/discover" onClick={follow} aria-label="Ingot home">
          <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#1f3a5f" />
            <path d="M7 21l4-10h10l4 10z" fill="#f2b84b" />
          </svg>
          Ingot
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.href}>
                <a href={n.href} onClick={follow} aria-current={path.startsWith(n.href) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who" aria-label="Signed in as">
          <span class="tenant" title="Tenant">
            <span class="muted">tenant</span> {who.tenant}
          </span>
          <span class={`role role-${who.role}`} title={`Key ${who.key_id}`}>
            {who.role}
          </span>
          <button type="button" class="link" onClick={() => session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {view}
      </main>
    </>
  );
}
