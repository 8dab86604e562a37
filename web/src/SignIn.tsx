// Sign-in with an API token (until OIDC lands). The token is checked against the API before it
// is kept, so a wrong one is refused here rather than after the dashboard opens.
import { useState, type FormEvent } from 'react';
import { Api, ApiError } from './api';

interface Props {
  /** Why the user is here again, e.g. the server refused the token mid-session. */
  message: string | null;
  onSignedIn: (token: string) => void;
}

export function SignIn({ message, onSignedIn }: Props) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const candidate = token.trim();
    if (!candidate) {
      setError('Paste an API token first.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await new Api({ token: candidate }).listEnvironments(false);
      onSignedIn(candidate);
    } catch (err) {
      const apiError = err instanceof ApiError ? err : null;
      if (apiError && apiError.status !== 401 && apiError.status !== 0) {
        // The token may well be right and the list broken; the dashboard shows that error.
        onSignedIn(candidate);
        return;
      }
      setError(
        apiError?.status === 401
          ? `ephd refused that token: ${apiError.message}`
          : (apiError?.message ?? 'Signing in failed.'),
      );
      setBusy(false);
    }
  }

  const shown = error ?? message;
  return (
    <main className="signin">
      <form className="card signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true">
            e
          </span>
          Eph
        </div>
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">
          Paste an API token. An operator creates one with{' '}
          <code>ephd token create --name you --scope write</code>. It is kept only in this tab.
        </p>
        {shown && (
          <p className="alert alert-error" role="alert">
            {shown}
          </p>
        )}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={error ? true : undefined}
          autoFocus
        />
        <button type="submit" className="button button-primary button-block" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
