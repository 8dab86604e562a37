// Hash routes (#/ and #/environments/NAME), so ephd serves one index.html for every view and a
// reload or a shared link lands on the same view.
import { useSyncExternalStore } from 'react';

export type Route = { page: 'list' } | { page: 'environment'; name: string };

export function parseRoute(hash: string): Route {
  const m = /^#\/environments\/([^/?#]+)\/?$/.exec(hash);
  if (m && m[1]) {
    try {
      return { page: 'environment', name: decodeURIComponent(m[1]) };
    } catch {
      return { page: 'list' };
    }
  }
  return { page: 'list' };
}

export function environmentHref(name: string): string {
  return `#/environments/${encodeURIComponent(name)}`;
}

function subscribe(cb: () => void): () => void {
  window.addEventListener('hashchange', cb);
  return () => window.removeEventListener('hashchange', cb);
}

export function useHash(): string {
  return useSyncExternalStore(subscribe, () => window.location.hash);
}
