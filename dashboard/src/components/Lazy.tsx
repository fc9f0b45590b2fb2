// Code-split views: `lazy(() => import('./views/Discover'))` gives a component that loads
// its chunk on first render (once; later renders reuse it).

import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export function lazy<P extends object>(load: () => Promise<{ default: ComponentType<P> }>): ComponentType<P> {
  let loaded: ComponentType<P> | undefined;
  let pending: Promise<ComponentType<P>> | undefined;
  const get = () => (pending ??= load().then((m) => (loaded = m.default)));
  return function Lazy(props: P) {
    const [component, setComponent] = useState<ComponentType<P> | undefined>(() => loaded);
    const [failed, setFailed] = useState(false);
    useEffect(() => {
      if (component) return;
      let live = true;
      get()
        .then((c) => live && setComponent(() => c))
        .catch(() => live && setFailed(true));
      return () => {
        live = false;
      };
    }, []);
    if (failed) {
      return (
        <p role="alert" class="notice error">
          This part of the UI could not be loaded. Reload the page to try again.
        </p>
      );
    }
    if (!component) return <p class="loading" aria-busy="true">Loading…</p>;
    const View = component;
    return <View {...props} />;
  };
}
