import { afterEach, describe, expect, it, vi } from 'vitest';
import { Api } from './api';
import type { EnvIndex } from './envlist';
import { backoffDelay, EnvironmentFeed, type FeedStatus } from './feed';
import type { Environment } from './types';

function env(name: string, state: string, updated = '2025-11-27T10:00:00Z'): Environment {
  return {
    name,
    project: 'acme/shop',
    pr: 7,
    state,
    url: '',
    reason: '',
    created_at: '2025-11-27T10:00:00Z',
    updated_at: updated,
    expires_at: null,
  };
}

/** An event stream the test writes to. */
class Stream {
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly body = new ReadableStream<Uint8Array>({ start: (c) => void (this.controller = c) });
  send(env: Environment, id: number) {
    this.write(`id: ${id}\nevent: environment\ndata: ${JSON.stringify(env)}\n\n`);
  }
  write(text: string) {
    this.controller.enqueue(new TextEncoder().encode(text));
  }
  end() {
    this.controller.close();
  }
}

interface Call {
  url: string;
  headers: Headers;
}

/**
 * Answers /events from a queue the test fills, and /environments from `items` (what the server
 * holds now), after `gate` if the test set one.
 */
function server() {
  const calls: Call[] = [];
  const events: Array<() => Response | Promise<Response>> = [];
  const state = {
    items: [] as Environment[],
    gate: null as Promise<void> | null,
  };
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, headers: new Headers(init?.headers) });
    let res: Response;
    if (url.includes('/events')) {
      const next = events.shift();
      if (!next) return new Promise<Response>(() => {}); // hang: nothing scripted
      res = await next();
    } else {
      if (state.gate) await state.gate;
      const all = url.includes('all=true');
      res = json({ items: state.items.filter((e) => all || e.state !== 'destroyed') });
    }
    init?.signal?.addEventListener('abort', () => void res.body?.cancel().catch(() => {}));
    return res;
  }) as typeof globalThis.fetch;
  return { calls, events, state, fetch };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const sse = (s: Stream) => new Response(s.body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });

function start(srv: ReturnType<typeof server>, includeDestroyed = false) {
  const seen: { index: EnvIndex; loaded: boolean; statuses: FeedStatus[] } = {
    index: new Map(),
    loaded: false,
    statuses: [],
  };
  const onUnauthorized = vi.fn();
  const api = new Api({ token: 't', fetch: srv.fetch, onUnauthorized });
  const feed = new EnvironmentFeed(
    api,
    { includeDestroyed },
    {
      onList: (index, loaded) => {
        seen.index = index;
        seen.loaded = loaded;
      },
      onStatus: (s) => seen.statuses.push(s),
    },
    { baseDelayMs: 5, maxDelayMs: 20, healthyAfterMs: 60_000 },
  );
  feed.start();
  feeds.push(feed);
  return { feed, seen, onUnauthorized };
}

const feeds: EnvironmentFeed[] = [];
afterEach(() => {
  for (const f of feeds.splice(0)) f.stop();
});

const names = (index: EnvIndex) => [...index.keys()].sort();

describe('EnvironmentFeed', () => {
  it('loads the list after the stream opens, then applies events live', async () => {
    const srv = server();
    const stream = new Stream();
    srv.events.push(() => sse(stream));
    srv.state.items = [env('a', 'ready')];
    const { seen } = start(srv);
    await vi.waitFor(() => expect(seen.loaded).toBe(true));
    expect(names(seen.index)).toEqual(['a']);
    await vi.waitFor(() => expect(seen.statuses.map((s) => s.kind)).toEqual(['connecting', 'live']));
    // Once at start, once after the stream opened.
    await vi.waitFor(() => expect(srv.calls.filter((c) => c.url.includes('environments'))).toHaveLength(2));

    stream.send(env('b', 'pending', '2025-11-27T10:01:00Z'), 1);
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a', 'b']));
    stream.send(env('a', 'destroying', '2025-11-27T10:02:00Z'), 2);
    await vi.waitFor(() => expect(seen.index.get('a')?.state).toBe('destroying'));
    stream.send(env('a', 'destroyed', '2025-11-27T10:03:00Z'), 3);
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['b']));
  });

  it('applies events that arrive while the list is loading on top of it', async () => {
    const srv = server();
    const stream = new Stream();
    let open!: () => void;
    srv.state.gate = new Promise<void>((resolve) => (open = resolve));
    srv.state.items = [env('a', 'provisioning', '2025-11-27T10:00:00Z')];
    srv.events.push(() => sse(stream));
    const { seen } = start(srv);
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.kind).toBe('live'));
    // The list was read before these changes; its answer arrives after them.
    stream.send(env('a', 'ready', '2025-11-27T10:05:00Z'), 1);
    stream.send(env('c', 'pending', '2025-11-27T10:05:00Z'), 2);
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.loaded).toBe(false);
    open();
    await vi.waitFor(() => expect(seen.loaded).toBe(true));
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a', 'c']));
    expect(seen.index.get('a')?.state).toBe('ready');
  });

  it('shows the list before the event stream has answered', async () => {
    const srv = server();
    srv.state.items = [env('a', 'ready')];
    const { seen } = start(srv); // /events never answers
    await vi.waitFor(() => expect(seen.loaded).toBe(true));
    expect(names(seen.index)).toEqual(['a']);
    expect(seen.statuses.map((s) => s.kind)).toEqual(['connecting']);
  });

  it('reconnects with Last-Event-ID after the stream drops, and refetches the list', async () => {
    const srv = server();
    const first = new Stream();
    const second = new Stream();
    srv.events.push(() => sse(first), () => sse(second));
    srv.state.items = [env('a', 'ready')];
    const { seen } = start(srv);
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.kind).toBe('live'));
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a']));
    first.send(env('a', 'updating', '2025-11-27T10:01:00Z'), 17);
    await vi.waitFor(() => expect(seen.index.get('a')?.state).toBe('updating'));
    // While disconnected, b is created and the event for it is missed.
    srv.state.items = [env('a', 'updating', '2025-11-27T10:01:00Z'), env('b', 'ready')];
    first.end();

    await vi.waitFor(() => expect(srv.calls.filter((c) => c.url.includes('/events'))).toHaveLength(2));
    const resumed = srv.calls.filter((c) => c.url.includes('/events'))[1];
    expect(resumed?.headers.get('Last-Event-ID')).toBe('17');
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a', 'b']));
    const kinds = seen.statuses.map((s) => s.kind);
    expect(kinds).toContain('reconnecting');
    expect(kinds.at(-1)).toBe('live');
    second.send(env('b', 'destroyed', '2025-11-27T10:09:00Z'), 18);
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a']));
  });

  it('still shows the list when the event stream is not served', async () => {
    const srv = server();
    srv.events.push(() => json({ error: { code: 'not_found', message: 'no route' } }, 404));
    srv.state.items = [env('a', 'ready')];
    const { seen } = start(srv);
    await vi.waitFor(() => expect(seen.loaded).toBe(true));
    expect(names(seen.index)).toEqual(['a']);
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.kind).toBe('reconnecting'));
    const last = seen.statuses.at(-1);
    expect(last?.kind === 'reconnecting' && last.reason).toBe('no route');
  });

  it('stops for good on 401 and signs out', async () => {
    const srv = server();
    srv.events.push(() => json({ error: { code: 'unauthenticated', message: 'bad token' } }, 401));
    const { seen, onUnauthorized } = start(srv);
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.kind).toBe('stopped'));
    expect(onUnauthorized).toHaveBeenCalled();
    await new Promise((r) => setTimeout(r, 40));
    expect(srv.calls.filter((c) => c.url.includes('/events'))).toHaveLength(1);
  });

  it('fetches destroyed environments when "show destroyed" is turned on', async () => {
    const srv = server();
    const stream = new Stream();
    srv.events.push(() => sse(stream));
    srv.state.items = [env('a', 'ready'), env('old', 'destroyed')];
    const { seen, feed } = start(srv);
    await vi.waitFor(() => expect(seen.statuses.at(-1)?.kind).toBe('live'));
    await vi.waitFor(() => expect(seen.loaded).toBe(true));
    expect(names(seen.index)).toEqual(['a']);
    feed.setOptions({ includeDestroyed: true });
    await vi.waitFor(() => expect(names(seen.index)).toEqual(['a', 'old']));
    expect(srv.calls.at(-1)?.url).toBe('api/v1/environments?all=true');
    feed.setOptions({ includeDestroyed: false });
    expect(names(seen.index)).toEqual(['a']);
  });
});

describe('backoffDelay', () => {
  const timing = { baseDelayMs: 1000, maxDelayMs: 30000 };
  it('doubles per attempt up to the cap', () => {
    const mid = { ...timing, random: () => 0.5 };
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, mid))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]);
  });
  it('jitters by a quarter either way', () => {
    expect(backoffDelay(3, { ...timing, random: () => 0 })).toBe(3000);
    expect(backoffDelay(3, { ...timing, random: () => 1 })).toBe(5000);
  });
});
