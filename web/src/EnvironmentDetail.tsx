// One environment: its facts, state history, actions (extend, destroy) and live logs. The live
// feed's copy of the environment keeps the facts current; a change of state refetches the
// detail so the history gains the new transition.
import { useEffect, useState } from 'react';
import { Api, ApiError, isAbort } from './api';
import {
  ConfirmDialog,
  Countdown,
  ExternalLink,
  pullRequestUrl,
  RelativeTime,
  StateBadge,
} from './components';
import { LogsPane } from './LogsPane';
import { formatTimestamp } from './time';
import { EXTEND_CHOICES, type Environment, type EnvironmentDetail as Detail, type ExtendBy } from './types';
import { isStale } from './envlist';

interface Props {
  api: Api;
  name: string;
  /** The environment as the live feed last saw it (absent once it left the list). */
  live: Environment | undefined;
  /** Tells the feed about a change this page made, before the event arrives. */
  onChanged: (env: Environment) => void;
}

const RUNNING_STATES = new Set(['provisioning', 'ready', 'updating', 'failed']);
const FINISHED_STATES = new Set(['destroying', 'destroyed']);

type Dialog = null | 'destroy' | 'extend';

export function EnvironmentDetail({ api, name, live, onChanged }: Props) {
  const [detail, setDetail] = useState<Detail | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [reload, setReload] = useState(0);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [extendBy, setExtendBy] = useState<ExtendBy>('24h');
  const [notice, setNotice] = useState<string | null>(null);
  const liveKey = live ? `${live.state}|${live.updated_at}` : 'gone';

  useEffect(() => {
    const controller = new AbortController();
    api.getEnvironment(name, controller.signal).then(
      (d) => {
        setDetail(d);
        setError(null);
      },
      (e: unknown) => {
        if (isAbort(e)) return;
        setError(e instanceof ApiError ? e : new ApiError(0, 'unknown', String(e)));
      },
    );
    return () => controller.abort();
  }, [api, name, liveKey, reload]);

  if (!detail) {
    return (
      <section aria-labelledby="detail-title">
        <BackLink />
        <h1 id="detail-title" className="env-title">
          {name}
        </h1>
        {error ? (
          <p className="alert alert-error" role="alert">
            {error.status === 404 ? `There is no environment named ${name}.` : error.message}
          </p>
        ) : (
          <p className="empty" role="status">
            Loading…
          </p>
        )}
      </section>
    );
  }

  // The feed may be a step ahead of the last fetch; show whichever is newer.
  const env: Environment = live && !isStale(live, detail) ? { ...detail, ...live } : detail;
  const prUrl = pullRequestUrl(env.project, env.pr);
  const finished = FINISHED_STATES.has(env.state);
  const history = [...(detail.events ?? [])].reverse();

  async function act(kind: 'destroy' | 'extend') {
    setBusy(true);
    setActionError(null);
    try {
      const updated =
        kind === 'destroy' ? await api.destroyEnvironment(name) : await api.extendEnvironment(name, extendBy);
      setDetail((d) => (d ? { ...d, ...updated } : d));
      onChanged(updated);
      setNotice(
        kind === 'destroy'
          ? `${name} is being destroyed.`
          : `Extended by ${extendBy}; it now expires ${formatTimestamp(updated.expires_at)}.`,
      );
      setDialog(null);
      setReload((r) => r + 1);
    } catch (e) {
      if (e instanceof ApiError && e.unauthenticated) return; // signed out already
      setActionError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  function open(kind: Dialog) {
    setActionError(null);
    setExtendBy('24h');
    setDialog(kind);
  }

  return (
    <section aria-labelledby="detail-title">
      <BackLink />
      <div className="page-head">
        <div className="title-row">
          <h1 id="detail-title" className="env-title">
            {env.name}
          </h1>
          <StateBadge state={env.state} />
        </div>
        <div className="actions">
          <button type="button" className="button" onClick={() => open('extend')} disabled={finished}>
            Extend…
          </button>
          <button type="button" className="button button-danger" onClick={() => open('destroy')} disabled={finished}>
            Destroy…
          </button>
        </div>
      </div>

      {notice && (
        <p className="alert alert-info" role="status">
          {notice}
        </p>
      )}
      {env.reason && (
        <p className={env.state === 'failed' ? 'alert alert-error' : 'alert alert-info'}>
          <strong>{env.state === 'failed' ? 'Failed: ' : 'Reason: '}</strong>
          {env.reason}
        </p>
      )}

      <div className="detail-grid">
        <section className="card" aria-labelledby="facts-title">
          <h2 id="facts-title">Overview</h2>
          <dl className="facts">
            <dt>URL</dt>
            <dd>{env.url ? <ExternalLink href={env.url}>{env.url}</ExternalLink> : <span className="muted">not yet</span>}</dd>
            <dt>Pull request</dt>
            <dd>
              {prUrl ? (
                <ExternalLink href={prUrl}>
                  {env.project}#{env.pr}
                </ExternalLink>
              ) : (
                <span className="muted">none</span>
              )}
            </dd>
            <dt>Expires in</dt>
            <dd>
              <Countdown expiresAt={env.expires_at} />
              {env.expires_at && <span className="muted"> · {formatTimestamp(env.expires_at)}</span>}
            </dd>
            <dt>Provider</dt>
            <dd>{env.provider || <span className="muted">—</span>}</dd>
            <dt>Commit</dt>
            <dd>{env.head_sha ? <code title={env.head_sha}>{env.head_sha.slice(0, 12)}</code> : <span className="muted">—</span>}</dd>
            <dt>Created</dt>
            <dd>
              <RelativeTime iso={env.created_at} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <RelativeTime iso={env.updated_at} />
            </dd>
            <dt>Last activity</dt>
            <dd>
              <RelativeTime iso={env.last_activity_at} />
            </dd>
          </dl>
        </section>

        <section className="card" aria-labelledby="history-title">
          <h2 id="history-title">State history</h2>
          {history.length === 0 ? (
            <p className="muted">No transitions recorded yet.</p>
          ) : (
            <ol className="timeline">
              {history.map((ev, i) => (
                <li key={`${ev.id}-${i}`}>
                  <div className="timeline-head">
                    <StateBadge state={ev.to_state} />
                    {ev.from_state && <span className="muted">from {ev.from_state}</span>}
                    <time className="muted timeline-time" dateTime={ev.at ?? undefined}>
                      {formatTimestamp(ev.at)}
                    </time>
                  </div>
                  {ev.reason && <p className="timeline-reason">{ev.reason}</p>}
                </li>
              ))}
            </ol>
          )}
        </section>
      </div>

      <LogsPane
        api={api}
        name={env.name}
        running={RUNNING_STATES.has(env.state)}
        state={env.state}
        components={componentsOf(detail)}
      />

      {dialog === 'destroy' && (
        <ConfirmDialog
          title={`Destroy ${env.name}?`}
          confirmLabel="Destroy"
          danger
          busy={busy}
          error={actionError}
          onConfirm={() => void act('destroy')}
          onCancel={() => setDialog(null)}
        >
          <p>
            Everything it runs is deleted and <strong>{env.url || 'its URL'}</strong> stops answering. This
            cannot be undone.
          </p>
        </ConfirmDialog>
      )}
      {dialog === 'extend' && (
        <ConfirmDialog
          title={`Extend ${env.name}?`}
          confirmLabel={`Extend by ${extendBy}`}
          busy={busy}
          error={actionError}
          onConfirm={() => void act('extend')}
          onCancel={() => setDialog(null)}
        >
          <fieldset className="choices">
            <legend>Keep it for another</legend>
            {EXTEND_CHOICES.map((by) => (
              <label key={by} className="choice">
                <input
                  type="radio"
                  name="extend-by"
                  value={by}
                  checked={extendBy === by}
                  onChange={() => setExtendBy(by)}
                />
                {by}
              </label>
            ))}
          </fieldset>
          <p className="muted">
            {env.expires_at ? (
              <>
                Time left now: <Countdown expiresAt={env.expires_at} />.
              </>
            ) : (
              'It has no expiry now.'
            )}
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function BackLink() {
  return (
    <p className="back">
      <a href="#/">← All environments</a>
    </p>
  );
}

/** Component names, if the server lists them on the environment (optional in the API). */
function componentsOf(detail: Detail): string[] {
  const raw = (detail as { components?: unknown }).components;
  if (!Array.isArray(raw)) return [];
  return raw
    .map((c: unknown) => (typeof c === 'string' ? c : c && typeof c === 'object' ? (c as { name?: unknown }).name : null))
    .filter((c): c is string => typeof c === 'string' && c !== '');
}
