// Sign-in with an API key. The key is checked with `GET /api/v1/whoami` and kept in
// sessionStorage for this browser session only.

import { useState } from 'preact/hooks';
import { ApiError, api } from '../lib/api';
import { session } from '../lib/session';

export function SignIn() {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(() => session.takeExpiredReason());
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const secret = key.trim();
    if (!secret) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const who = await api.whoami(secret);
      session.signIn(secret, who);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setError(`This key was refused: ${e.message}`);
      else if (e instanceof ApiError && e.status === 403) setError(`This is not an API key: ${e.message}`);
      else setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <div class="brand big">
          <svg viewBox="0 0 32 32" width="34" height="34" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#1f3a5f" />
            <path d="M7 21l4-10h10l4 10z" fill="#f2b84b" />
          </svg>
          Ingot
        </div>
        <h1 id="signin-title">Sign in</h1>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="current-password"
          spellcheck={false}
          placeholder="ik_…"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error signin-help' : 'signin-help'}
          autofocus
        />
        {error && (
          <p id="signin-error" class="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p id="signin-help" class="help">
          A new server writes its admin key to <code>ingot-data/admin.key</code>. For read-only access, create a
          key with <code>ingot key add --role reader</code>. The key is kept only for this browser session.
        </p>
        <p class="help">
          API reference: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>
        </p>
      </form>
    </main>
  );
}
