// The live environment list: one server-sent event stream plus a snapshot GET.
//
// On every (re)connection the stream is opened first and the list fetched second; events that
// arrive while the list is in flight are held and applied on top of it, so no change is lost
// between the two. (At start the list is also fetched straight away, so the page is not empty
// while the stream connects.) When the stream drops, the feed reconnects with exponential backoff (with
// jitter, capped), sending Last-Event-ID so ephd can replay what was missed, and refetches the
// list so it is right even if the replay window has passed. While the stream cannot be opened
// at all, the list is still refreshed on each retry. A 401 stops the feed for good (the Api has
// already signed the user out).
//
// Not thread-safe in any interesting sense: it lives on the page's single event loop.

import { Api, ApiError, isAbort } from './api';
import {
  applyEnvironment,
  fromSnapshot,
  parseEnvironmentEvent,
  removeEnvironment,
  withOptions,
  type EnvIndex,
  type ListOptions,
} from './envlist';
import { readText, SseParser, type SseMessage } from './sse';
import type { Environment } from './types';

export type FeedStatus =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; retryAt: number; attempt: number; reason: string }
  | { kind: 'stopped'; reason: string };

export interface FeedListener {
  onList(index: EnvIndex, loaded: boolean): void;
  onStatus(status: FeedStatus): void;
  /** A list refresh failed (the stream may still be up). */
  onListError?(error: ApiError): void;
}

export interface FeedTiming {
  baseDelayMs: number;
  maxDelayMs: number;
  /** A connection that stayed up this long resets the backoff. */
  healthyAfterMs: number;
  random: () => number;
  now: () => number;
}

export const DEFAULT_TIMING: FeedTiming = {
  baseDelayMs: 1000,
  maxDelayMs: 30000,
  healthyAfterMs: 10000,
  random: Math.random,
  now: () => Date.now(),
};

/** The delay before reconnection attempt `attempt` (1-based): base·2^(n-1), capped, ±25 % jitter. */
export function backoffDelay(attempt: number, timing: Pick<FeedTiming, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const raw = Math.min(timing.maxDelayMs, timing.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.75 + timing.random() * 0.5));
}

class SnapshotFailed extends Error {
  constructor(readonly cause: unknown) {
    super('snapshot failed');
  }
}

export class EnvironmentFeed {
  private index: EnvIndex = new Map();
  private loaded = false;
  private options: ListOptions;
  private lastEventId = '';
  private stopped = false;
  private running = false;
  private readonly stopController = new AbortController();
  private held: SseMessage[] | null = null;
  private snapshotSeq = 0;
  private readonly timing: FeedTiming;

  constructor(
    private readonly api: Api,
    options: ListOptions,
    private readonly listener: FeedListener,
    timing: Partial<FeedTiming> = {},
  ) {
    this.options = options;
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.stopController.abort();
  }

  /** Changes "show destroyed"; refetches the list when destroyed ones must now appear. */
  setOptions(options: ListOptions): void {
    const widen = options.includeDestroyed && !this.options.includeDestroyed;
    this.options = options;
    this.setIndex(withOptions(this.index, options));
    if (widen) void this.refresh();
  }

  /** Applies an environment the page learnt from a direct API call (destroy, extend). */
  applyLocal(env: Environment): void {
    this.setIndex(applyEnvironment(this.index, env, this.options));
  }

  private setIndex(next: EnvIndex): void {
    if (next === this.index && this.loaded) return;
    this.index = next;
    this.listener.onList(this.index, this.loaded);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    this.listener.onStatus({ kind: 'connecting' });
    // Show the list at once, even if the stream's first bytes are slow to come; it is fetched
    // again once the stream is open, to close the gap between the two.
    void this.refresh();
    while (!this.stopped) {
      const connection = new AbortController();
      const onStop = () => connection.abort();
      this.stopController.signal.addEventListener('abort', onStop);
      let openedAt = 0;
      let failure: unknown;
      try {
        const res = await this.api.openEvents(this.lastEventId, connection.signal);
        if (!res.body) throw new ApiError(res.status, 'bad_response', 'The event stream has no body.');
        openedAt = this.timing.now();
        this.held = [];
        void this.snapshotThenRelease(connection);
        this.listener.onStatus({ kind: 'live' });
        const parser = new SseParser(this.lastEventId);
        await readText(res.body, (chunk) => {
          for (const msg of parser.push(chunk)) this.receive(msg);
          this.lastEventId = parser.currentLastEventId;
        });
        failure = new Error('the event stream ended');
      } catch (e) {
        failure = e;
      } finally {
        this.stopController.signal.removeEventListener('abort', onStop);
        this.held = null;
      }
      if (this.stopped) return;
      const cause = failure instanceof SnapshotFailed ? failure.cause : failure;
      if (cause instanceof ApiError && cause.unauthenticated) {
        this.stopped = true;
        this.listener.onStatus({ kind: 'stopped', reason: cause.message });
        return;
      }
      if (openedAt && this.timing.now() - openedAt >= this.timing.healthyAfterMs) attempt = 0;
      attempt++;
      // Keep the list useful while the stream is down (or not served at all).
      if (!(connection.signal.reason instanceof SnapshotFailed)) {
        const listed = await this.refresh();
        if (this.stopped) return;
        if (listed instanceof ApiError && listed.unauthenticated) {
          this.stopped = true;
          this.listener.onStatus({ kind: 'stopped', reason: listed.message });
          return;
        }
      }
      const delay = backoffDelay(attempt, this.timing);
      this.listener.onStatus({
        kind: 'reconnecting',
        retryAt: this.timing.now() + delay,
        attempt,
        reason: describe(connection.signal.reason instanceof SnapshotFailed ? connection.signal.reason.cause : cause),
      });
      await sleep(delay, this.stopController.signal);
    }
  }

  /** After the stream opens: load the list, then apply the events held meanwhile. */
  private async snapshotThenRelease(connection: AbortController): Promise<void> {
    const result = await this.refresh();
    if (result instanceof Error) {
      // Retry the whole connection with backoff rather than showing a list that may be wrong.
      if (!connection.signal.aborted) connection.abort(new SnapshotFailed(result));
    }
  }

  /**
   * Fetches the list and replaces the index with it, then applies the events that arrived while
   * the request was in flight. Returns the error instead of throwing.
   */
  private async refresh(): Promise<ApiError | null> {
    const seq = ++this.snapshotSeq;
    this.held ??= [];
    try {
      const items = await this.api.listEnvironments(this.options.includeDestroyed, this.stopController.signal);
      if (seq !== this.snapshotSeq || this.stopped) return null;
      this.loaded = true;
      this.release(fromSnapshot(items, this.options));
      return null;
    } catch (e) {
      if (seq === this.snapshotSeq) this.release(this.index);
      if (isAbort(e) || this.stopped) return null;
      const error = e instanceof ApiError ? e : new ApiError(0, 'unknown', String(e));
      this.listener.onListError?.(error);
      return error;
    }
  }

  private release(base: EnvIndex): void {
    let next = base;
    for (const msg of this.held ?? []) next = this.applyMessage(next, msg);
    this.held = null;
    this.setIndex(next);
  }

  private receive(msg: SseMessage): void {
    if (this.held) {
      this.held.push(msg);
      return;
    }
    this.setIndex(this.applyMessage(this.index, msg));
  }

  private applyMessage(index: EnvIndex, msg: SseMessage): EnvIndex {
    const parsed = parseEnvironmentEvent(msg.event, msg.data);
    if (parsed.kind === 'upsert' && parsed.env) return applyEnvironment(index, parsed.env, this.options);
    if (parsed.kind === 'remove' && parsed.name) return removeEnvironment(index, parsed.name);
    return index;
  }
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return 'the connection was lost';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
