// The ephd API client. Every call carries the signed-in token as a bearer token; every failure
// becomes an ApiError with the server's code and message (or a synthetic one when the server
// could not be reached or did not answer in JSON). A 401 from any call also tells the app to
// sign out, through `onUnauthorized`, before the error is thrown.

import type { Environment, EnvironmentDetail, ExtendBy } from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  get unauthenticated(): boolean {
    return this.status === 401;
  }
}

const STATUS_CODES: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'conflict',
  429: 'resource_exhausted',
  500: 'internal',
  501: 'unimplemented',
  502: 'unavailable',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

const STATUS_MESSAGES: Record<number, string> = {
  401: 'The token was refused. Sign in again.',
  403: 'This token may not do that (it is read-only).',
  404: 'Not found.',
  502: 'ephd is not reachable.',
  503: 'ephd is not ready; try again shortly.',
  504: 'ephd took too long to answer.',
};

/**
 * Turns a failed response's status and body into an ApiError. ephd answers
 * `{"error":{"code","message"}}`; anything else (a proxy's HTML page, an empty body) still yields
 * a message a person can act on, never the raw body.
 */
export function errorFromBody(status: number, body: string): ApiError {
  let code = STATUS_CODES[status] ?? (status >= 500 ? 'internal' : 'http_' + status);
  let message = STATUS_MESSAGES[status] ?? `ephd answered HTTP ${status}.`;
  try {
    const parsed: unknown = JSON.parse(body);
    const err = (parsed as { error?: unknown } | null)?.error;
    if (err && typeof err === 'object') {
      const e = err as { code?: unknown; message?: unknown };
      if (typeof e.code === 'string' && e.code) code = e.code;
      if (typeof e.message === 'string' && e.message) message = e.message;
    }
  } catch {
    // Not JSON: keep the message derived from the status.
  }
  return new ApiError(status, code, message);
}

/** The error for a request that never got an HTTP answer. */
export function networkError(cause: unknown): ApiError {
  const detail = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
  return new ApiError(0, 'network', `Cannot reach ephd${detail}.`);
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}

export interface ApiOptions {
  token: string;
  /** Called once per 401, before the ApiError is thrown. */
  onUnauthorized?: (error: ApiError) => void;
  /** Where the API lives; relative by default so a path prefix in front of ephd still works. */
  baseUrl?: string;
  fetch?: typeof fetch;
}

export class Api {
  private readonly token: string;
  private readonly onUnauthorized: ((error: ApiError) => void) | undefined;
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ApiOptions) {
    this.token = options.token;
    this.onUnauthorized = options.onUnauthorized;
    this.baseUrl = options.baseUrl ?? 'api/v1/';
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  listEnvironments(all: boolean, signal?: AbortSignal): Promise<Environment[]> {
    return this.json<{ items: Environment[] }>('GET', 'environments' + (all ? '?all=true' : ''), {
      signal,
    }).then((r) => (Array.isArray(r.items) ? r.items : []));
  }

  getEnvironment(name: string, signal?: AbortSignal): Promise<EnvironmentDetail> {
    return this.json('GET', 'environments/' + encodeURIComponent(name), { signal });
  }

  destroyEnvironment(name: string): Promise<Environment> {
    return this.json('DELETE', 'environments/' + encodeURIComponent(name));
  }

  extendEnvironment(name: string, by: ExtendBy): Promise<Environment> {
    return this.json('POST', 'environments/' + encodeURIComponent(name) + '/extend', {
      body: { by },
    });
  }

  /** Opens the log stream; the caller reads the body. */
  openLogs(name: string, component: string, signal: AbortSignal): Promise<Response> {
    const q = new URLSearchParams({ follow: 'true' });
    if (component) q.set('component', component);
    return this.stream(`environments/${encodeURIComponent(name)}/logs?${q}`, {
      signal,
      accept: 'text/plain',
    });
  }

  /** Opens the server-sent event stream of environment changes. */
  openEvents(lastEventId: string, signal: AbortSignal): Promise<Response> {
    return this.stream('events', {
      signal,
      accept: 'text/event-stream',
      headers: lastEventId ? { 'Last-Event-ID': lastEventId } : {},
    });
  }

  private async json<T>(
    method: string,
    path: string,
    opts: { body?: unknown; signal?: AbortSignal | undefined } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.send(path, {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: opts.signal ?? null,
    });
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'bad_response', 'ephd answered with something other than JSON.');
    }
  }

  private stream(
    path: string,
    opts: { signal: AbortSignal; accept: string; headers?: Record<string, string> },
  ): Promise<Response> {
    return this.send(path, {
      method: 'GET',
      headers: { Accept: opts.accept, ...opts.headers },
      signal: opts.signal,
      cache: 'no-store',
    });
  }

  /** Sends with the token; resolves only for 2xx, otherwise throws an ApiError. */
  private async send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${this.token}`);
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, { ...init, headers });
    } catch (e) {
      if (isAbort(e)) throw e;
      throw networkError(e);
    }
    if (res.ok) return res;
    let body = '';
    try {
      body = await res.text();
    } catch {
      // The body is only for the message; the status is enough.
    }
    const error = errorFromBody(res.status, body);
    if (error.unauthenticated) this.onUnauthorized?.(error);
    throw error;
  }
}
