// The dashboard shell: sign-in gate, header with the live-connection status, and the two views.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Api, ApiError } from './api';
import { useNow } from './clock';
import { EnvironmentDetail } from './EnvironmentDetail';
import { EnvironmentList } from './EnvironmentList';
import type { EnvIndex } from './envlist';
import { EnvironmentFeed, type FeedStatus } from './feed';
import { parseRoute, useHash } from './route';
import { clearToken, loadToken, saveToken } from './session';
import { SignIn } from './SignIn';

export function App() {
  const [token, setToken] = useState<string | null>(loadToken);
  const [message, setMessage] = useState<string | null>(null);

  const signOut = useCallback((why: string | null) => {
    clearToken();
    setToken(null);
    setMessage(why);
  }, []);

  if (!token) {
    return (
      <SignIn
        message={message}
        onSignedIn={(t) => {
          saveToken(t);
          setMessage(null);
          setToken(t);
        }}
      />
    );
  }
  return <Dashboard key={token} token={token} onSignOut={signOut} />;
}

function Dashboard({ token, onSignOut }: { token: string; onSignOut: (why: string | null) => void }) {
  const api = useMemo(
    () =>
      new Api({
        token,
        onUnauthorized: (e: ApiError) =>
          onSignOut(`You were signed out: ephd refused the token (${e.message}). Sign in again.`),
      }),
    [token, onSignOut],
  );
  const [index, setIndex] = useState<EnvIndex>(() => new Map());
  const [loaded, setLoaded] = useState(false);
  const [status, setStatus] = useState<FeedStatus>({ kind: 'connecting' });
  const [listError, setListError] = useState<string | null>(null);
  const [includeDestroyed, setIncludeDestroyed] = useState(false);
  const feed = useRef<EnvironmentFeed | null>(null);

  useEffect(() => {
    const f = new EnvironmentFeed(api, { includeDestroyed: false }, {
      onList: (next, isLoaded) => {
        setIndex(next);
        setLoaded(isLoaded);
        if (isLoaded) setListError(null);
      },
      onStatus: setStatus,
      onListError: (e) => {
        if (!e.unauthenticated) setListError(`Could not load the environments: ${e.message}`);
      },
    });
    feed.current = f;
    f.start();
    return () => {
      f.stop();
      feed.current = null;
    };
  }, [api]);

  const toggleDestroyed = useCallback((value: boolean) => {
    setIncludeDestroyed(value);
    feed.current?.setOptions({ includeDestroyed: value });
  }, []);

  const route = parseRoute(useHash());
  const title = route.page === 'environment' ? `${route.name} · Eph` : 'Eph · preview environments';
  useEffect(() => {
    document.title = title;
  }, [title]);

  return (
    <>
      <header className="topbar">
        <div className="topbar-inner">
          <a className="brand" href="#/">
            <span className="brand-mark" aria-hidden="true">
              e
            </span>
            Eph
            <span className="brand-sub">preview environments</span>
          </a>
          <div className="topbar-right">
            <LiveStatus status={status} />
            <button type="button" className="button button-quiet" onClick={() => onSignOut(null)}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main className="content">
        {route.page === 'environment' ? (
          <EnvironmentDetail
            key={route.name}
            api={api}
            name={route.name}
            live={index.get(route.name)}
            onChanged={(env) => feed.current?.applyLocal(env)}
          />
        ) : (
          <EnvironmentList
            index={index}
            loaded={loaded}
            listError={listError}
            includeDestroyed={includeDestroyed}
            onIncludeDestroyed={toggleDestroyed}
          />
        )}
      </main>
    </>
  );
}

/** The event stream's state; screen readers hear the change of state, not the countdown. */
function LiveStatus({ status }: { status: FeedStatus }) {
  return (
    <span className={`live live-${status.kind}`} title={status.kind === 'reconnecting' ? status.reason : undefined}>
      <span className="live-dot" aria-hidden="true" />
      <span aria-hidden="true">
        {status.kind === 'reconnecting' ? <Reconnecting retryAt={status.retryAt} /> : LIVE_TEXT[status.kind]}
      </span>
      <span className="visually-hidden" role="status">
        {status.kind === 'live' ? 'Live updates on' : `Live updates: ${LIVE_TEXT[status.kind]}`}
      </span>
    </span>
  );
}

const LIVE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'reconnecting',
  stopped: 'Offline',
} as const;

function Reconnecting({ retryAt }: { retryAt: number }) {
  const now = useNow();
  const seconds = Math.max(0, Math.ceil((retryAt - now) / 1000));
  return <>{seconds > 0 ? `Reconnecting in ${seconds}s` : 'Reconnecting…'}</>;
}
