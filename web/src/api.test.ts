import { describe, expect, it, vi } from 'vitest';
import { Api, ApiError, errorFromBody, networkError } from './api';

function respond(status: number, body: string, type = 'application/json') {
  return new Response(status === 204 ? null : body, { status, headers: { 'Content-Type': type } });
}

function fakeFetch(...responses: Array<Response | Error>) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), init: init ?? {} });
    const next = responses.shift();
    if (!next) throw new Error('no more responses');
    if (next instanceof Error) throw next;
    return next;
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

describe('errorFromBody', () => {
  it('takes code and message from ephd JSON errors', () => {
    const e = errorFromBody(404, '{"error":{"code":"not_found","message":"no environment named x"}}');
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 404, code: 'not_found', message: 'no environment named x' });
  });

  it('falls back to the status for bodies that are not ephd errors', () => {
    expect(errorFromBody(502, '<html>Bad Gateway</html>')).toMatchObject({
      code: 'unavailable',
      message: 'ephd is not reachable.',
    });
    expect(errorFromBody(401, '')).toMatchObject({ code: 'unauthenticated', unauthenticated: true });
    expect(errorFromBody(418, '{"error":"teapot"}')).toMatchObject({ code: 'http_418', message: 'ephd answered HTTP 418.' });
    expect(errorFromBody(500, 'null')).toMatchObject({ code: 'internal' });
  });

  it('keeps the status message when the JSON error lacks one', () => {
    expect(errorFromBody(403, '{"error":{"code":"permission_denied"}}')).toMatchObject({
      code: 'permission_denied',
      message: 'This token may not do that (it is read-only).',
    });
  });

  it('describes a request that never got an answer', () => {
    expect(networkError(new TypeError('Failed to fetch'))).toMatchObject({
      status: 0,
      code: 'network',
      message: 'Cannot reach ephd (Failed to fetch).',
    });
  });
});

describe('Api', () => {
  it('sends the bearer token and reads the list', async () => {
    const { fetch, calls } = fakeFetch(respond(200, '{"items":[{"name":"a"}]}'));
    const items = await new Api({ token: 'tok', fetch }).listEnvironments(true);
    expect(items).toEqual([{ name: 'a' }]);
    expect(calls[0]?.url).toBe('api/v1/environments?all=true');
    expect(new Headers(calls[0]?.init.headers).get('Authorization')).toBe('Bearer tok');
  });

  it('posts extend with a JSON body and escapes names', async () => {
    const { fetch, calls } = fakeFetch(respond(200, '{"name":"a b"}'));
    await new Api({ token: 't', fetch }).extendEnvironment('a b', '72h');
    expect(calls[0]?.url).toBe('api/v1/environments/a%20b/extend');
    expect(calls[0]?.init.method).toBe('POST');
    expect(calls[0]?.init.body).toBe('{"by":"72h"}');
    expect(new Headers(calls[0]?.init.headers).get('Content-Type')).toBe('application/json');
  });

  it('destroys with DELETE and returns the environment', async () => {
    const { fetch, calls } = fakeFetch(respond(202, '{"name":"a","state":"destroying"}'));
    const env = await new Api({ token: 't', fetch }).destroyEnvironment('a');
    expect(env.state).toBe('destroying');
    expect(calls[0]?.init.method).toBe('DELETE');
  });

  it('signs out on 401 and still throws', async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = fakeFetch(respond(401, '{"error":{"code":"unauthenticated","message":"token refused"}}'));
    const api = new Api({ token: 'bad', fetch, onUnauthorized });
    await expect(api.getEnvironment('a')).rejects.toMatchObject({ status: 401, message: 'token refused' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(onUnauthorized.mock.calls[0]?.[0]).toBeInstanceOf(ApiError);
  });

  it('does not sign out on 403 (a read-only token) or 404', async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = fakeFetch(
      respond(403, '{"error":{"code":"permission_denied","message":"token is read-only"}}'),
      respond(404, '{"error":{"code":"not_found","message":"no environment named a"}}'),
    );
    const api = new Api({ token: 't', fetch, onUnauthorized });
    await expect(api.destroyEnvironment('a')).rejects.toMatchObject({ status: 403, message: 'token is read-only' });
    await expect(api.getEnvironment('a')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('turns a network failure into an ApiError', async () => {
    const { fetch } = fakeFetch(new TypeError('Failed to fetch'));
    await expect(new Api({ token: 't', fetch }).listEnvironments(false)).rejects.toMatchObject({ code: 'network' });
  });

  it('rethrows aborts untouched', async () => {
    const abort = new DOMException('aborted', 'AbortError');
    const { fetch } = fakeFetch(abort);
    await expect(new Api({ token: 't', fetch }).listEnvironments(false)).rejects.toBe(abort);
  });

  it('reports a 200 that is not JSON', async () => {
    const { fetch } = fakeFetch(respond(200, '<html></html>', 'text/html'));
    await expect(new Api({ token: 't', fetch }).listEnvironments(false)).rejects.toMatchObject({ code: 'bad_response' });
  });

  it('opens streams with the resume id and the log query', async () => {
    const { fetch, calls } = fakeFetch(respond(200, '', 'text/event-stream'), respond(200, '', 'text/plain'));
    const api = new Api({ token: 't', fetch });
    const signal = new AbortController().signal;
    await api.openEvents('42', signal);
    await api.openLogs('env-1', 'web', signal);
    const events = new Headers(calls[0]?.init.headers);
    expect(calls[0]?.url).toBe('api/v1/events');
    expect(events.get('Last-Event-ID')).toBe('42');
    expect(events.get('Accept')).toBe('text/event-stream');
    expect(calls[1]?.url).toBe('api/v1/environments/env-1/logs?follow=true&component=web');
  });
});
