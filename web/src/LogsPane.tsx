// Live logs: follows GET /environments/{name}/logs?follow=true for one component (or all) and
// keeps the newest lines. Scrolls with the output unless the reader has scrolled up.
import { memo, useEffect, useLayoutEffect, useRef, useState, type FormEvent } from 'react';
import { Api, ApiError, isAbort } from './api';
import { LineSplitter, readText } from './sse';

const MAX_LINES = 5000;

type LogStatus =
  | { kind: 'waiting' }
  | { kind: 'connecting' }
  | { kind: 'following' }
  | { kind: 'ended' }
  | { kind: 'error'; message: string };

interface Props {
  api: Api;
  name: string;
  /** Whether the environment is in a state that has logs; otherwise the pane waits for a click. */
  running: boolean;
  state: string;
  components: readonly string[];
}

export const LogsPane = memo(function LogsPane({ api, name, running, state, components }: Props) {
  const [component, setComponent] = useState('');
  const [draft, setDraft] = useState('');
  const [forced, setForced] = useState(false);
  const [generation, setGeneration] = useState(0);
  const [lines, setLines] = useState<string[]>([]);
  const [status, setStatus] = useState<LogStatus>({ kind: 'waiting' });
  const viewport = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  const enabled = running || forced;

  useEffect(() => {
    if (!enabled) {
      setStatus({ kind: 'waiting' });
      return;
    }
    const controller = new AbortController();
    setLines([]);
    stick.current = true;
    setStatus({ kind: 'connecting' });
    const append = (more: string[]) => {
      if (more.length === 0) return;
      setLines((prev) => {
        const next = prev.concat(more);
        return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
      });
    };
    (async () => {
      try {
        const res = await api.openLogs(name, component, controller.signal);
        setStatus({ kind: 'following' });
        const splitter = new LineSplitter();
        if (res.body) await readText(res.body, (chunk) => append(splitter.push(chunk)));
        append(splitter.flush());
        setStatus({ kind: 'ended' });
      } catch (e) {
        if (isAbort(e) || controller.signal.aborted) return;
        const message = e instanceof ApiError ? e.message : e instanceof Error ? e.message : String(e);
        setStatus({ kind: 'error', message });
      }
    })();
    return () => controller.abort();
  }, [api, name, component, enabled, generation]);

  useLayoutEffect(() => {
    const el = viewport.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  function choose(e: FormEvent) {
    e.preventDefault();
    const next = draft.trim();
    setForced(true);
    if (next === component) setGeneration((g) => g + 1);
    else setComponent(next);
  }

  const listId = `log-components-${name}`;
  return (
    <section className="card logs" aria-labelledby="logs-title">
      <div className="section-head">
        <h2 id="logs-title">Logs</h2>
        <form className="logs-form" onSubmit={choose}>
          <label htmlFor="log-component">Component</label>
          <input
            id="log-component"
            list={listId}
            value={draft}
            placeholder="all components"
            onChange={(e) => setDraft(e.target.value)}
            spellCheck={false}
          />
          <datalist id={listId}>
            {components.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
          <button type="submit" className="button">
            {enabled ? 'Follow' : 'Follow anyway'}
          </button>
        </form>
      </div>
      <p className="logs-status muted" role="status">
        {statusText(status, component, state, enabled)}
        {(status.kind === 'ended' || status.kind === 'error') && (
          <>
            {' '}
            <button type="button" className="link-button" onClick={() => setGeneration((g) => g + 1)}>
              Reconnect
            </button>
          </>
        )}
      </p>
      <pre
        ref={viewport}
        className={lines.length === 0 ? 'logs-view logs-view-empty' : 'logs-view'}
        role="log"
        aria-label={`Log lines of ${component || 'all components'}`}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
        }}
      >
        {lines.length === 0 ? <span className="muted">{emptyText(status, enabled)}</span> : lines.join('\n')}
      </pre>
    </section>
  );
});

function statusText(status: LogStatus, component: string, state: string, enabled: boolean): string {
  const which = component ? `component ${component}` : 'all components';
  if (!enabled) return `The environment is ${state}; logs appear once it runs.`;
  switch (status.kind) {
    case 'waiting':
    case 'connecting':
      return `Connecting to the logs of ${which}…`;
    case 'following':
      return `Following ${which}.`;
    case 'ended':
      return `The log stream of ${which} ended.`;
    case 'error':
      return `Logs are unavailable: ${status.message}`;
  }
}

function emptyText(status: LogStatus, enabled: boolean): string {
  if (!enabled) return 'No logs yet.';
  if (status.kind === 'following') return 'Waiting for output…';
  if (status.kind === 'error') return 'No logs.';
  return status.kind === 'ended' ? 'No output.' : '…';
}
