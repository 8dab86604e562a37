// The environment table. Rows come from the live feed; this component only renders them.
import { useMemo } from 'react';
import { Countdown, ExternalLink, pullRequestUrl, RelativeTime, StateBadge } from './components';
import { sortedEnvironments, type EnvIndex } from './envlist';
import { environmentHref } from './route';

interface Props {
  index: EnvIndex;
  loaded: boolean;
  listError: string | null;
  includeDestroyed: boolean;
  onIncludeDestroyed: (value: boolean) => void;
}

export function EnvironmentList({ index, loaded, listError, includeDestroyed, onIncludeDestroyed }: Props) {
  const rows = useMemo(() => sortedEnvironments(index), [index]);
  return (
    <section aria-labelledby="list-title">
      <div className="page-head">
        <h1 id="list-title">
          Environments {loaded && <span className="count">{rows.length}</span>}
        </h1>
        <label className="toggle">
          <input
            type="checkbox"
            checked={includeDestroyed}
            onChange={(e) => onIncludeDestroyed(e.target.checked)}
          />
          Show destroyed
        </label>
      </div>
      {listError && (
        <p className="alert alert-error" role="alert">
          {listError}
        </p>
      )}
      {!loaded ? (
        <p className="empty" role="status">
          Loading environments…
        </p>
      ) : rows.length === 0 ? (
        <div className="empty card">
          <p>
            <strong>No environments{includeDestroyed ? '' : ' running'}.</strong>
          </p>
          <p className="muted">
            Label a pull request <code>preview</code> and its environment appears here, or run{' '}
            <code>eph up --repo OWNER/REPO --pr N</code>.
          </p>
        </div>
      ) : (
        <div className="card table-wrap">
          <table className="env-table">
            <caption className="visually-hidden">Preview environments; the list updates live.</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Project</th>
                <th scope="col">PR</th>
                <th scope="col">State</th>
                <th scope="col">URL</th>
                <th scope="col">Expires in</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((env) => {
                const prUrl = pullRequestUrl(env.project, env.pr);
                return (
                  <tr key={env.name} data-environment={env.name}>
                    <th scope="row">
                      <a className="env-name" href={environmentHref(env.name)}>
                        {env.name}
                      </a>
                    </th>
                    <td>{env.project || <span className="muted">—</span>}</td>
                    <td>
                      {prUrl ? (
                        <ExternalLink href={prUrl}>#{env.pr}</ExternalLink>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      <StateBadge state={env.state} reason={env.reason} />
                    </td>
                    <td className="url-cell">
                      {env.url ? (
                        <ExternalLink href={env.url}>{env.url.replace(/^https?:\/\//, '')}</ExternalLink>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      <Countdown expiresAt={env.expires_at} />
                    </td>
                    <td>
                      <RelativeTime iso={env.updated_at} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
