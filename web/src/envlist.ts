// The environment list as the dashboard holds it: environments by name, changed only by pure
// functions so the live-update rules are unit-tested. Each returns the same Map when nothing
// changed, so React skips the render.

import type { Environment } from './types';

export type EnvIndex = ReadonlyMap<string, Environment>;

export interface ListOptions {
  /** Keep destroyed environments ("show destroyed" is on). */
  includeDestroyed: boolean;
}

function time(iso: string | null | undefined): number {
  if (!iso) return Number.NaN;
  return Date.parse(iso);
}

/** True when `candidate` is strictly older than `current` (a late or replayed event). */
export function isStale(current: Environment, candidate: Environment): boolean {
  const a = time(current.updated_at);
  const b = time(candidate.updated_at);
  return Number.isFinite(a) && Number.isFinite(b) && b < a;
}

function visible(env: Environment, opts: ListOptions): boolean {
  return opts.includeDestroyed || env.state !== 'destroyed';
}

function sameEnvironment(a: Environment, b: Environment): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof Environment>;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** Applies one environment from the event stream: upsert by name, or drop it once destroyed. */
export function applyEnvironment(index: EnvIndex, env: Environment, opts: ListOptions): EnvIndex {
  if (!env || typeof env.name !== 'string' || env.name === '') return index;
  const current = index.get(env.name);
  if (current && isStale(current, env)) return index;
  if (!visible(env, opts)) {
    if (!current) return index;
    const next = new Map(index);
    next.delete(env.name);
    return next;
  }
  if (current && sameEnvironment(current, env)) return index;
  const next = new Map(index);
  next.set(env.name, env);
  return next;
}

/** Removes an environment outright (the server deleted its record). */
export function removeEnvironment(index: EnvIndex, name: string): EnvIndex {
  if (!index.has(name)) return index;
  const next = new Map(index);
  next.delete(name);
  return next;
}

/** The list as a fresh GET returned it: it replaces whatever was held. */
export function fromSnapshot(items: readonly Environment[], opts: ListOptions): EnvIndex {
  const next = new Map<string, Environment>();
  for (const env of items) {
    if (env && typeof env.name === 'string' && visible(env, opts)) next.set(env.name, env);
  }
  return next;
}

/** Drops or keeps destroyed environments after "show destroyed" changes. */
export function withOptions(index: EnvIndex, opts: ListOptions): EnvIndex {
  if (opts.includeDestroyed) return index;
  let next: Map<string, Environment> | null = null;
  for (const [name, env] of index) {
    if (!visible(env, opts)) {
      next ??= new Map(index);
      next.delete(name);
    }
  }
  return next ?? index;
}

/** Newest first, then by name, so rows do not jump as their state changes. */
export function sortedEnvironments(index: EnvIndex): Environment[] {
  return [...index.values()].sort((a, b) => {
    const ta = time(a.created_at);
    const tb = time(b.created_at);
    const byTime = (Number.isFinite(tb) ? tb : 0) - (Number.isFinite(ta) ? ta : 0);
    return byTime !== 0 ? byTime : a.name.localeCompare(b.name);
  });
}

export interface ParsedEvent {
  kind: 'upsert' | 'remove' | 'ignore';
  env?: Environment;
  name?: string;
}

/**
 * Interprets one server-sent event. `environment` events carry the environment's JSON; an event
 * type that says the record was deleted (or a payload with `"deleted": true`) removes it by name.
 * Anything unparseable is ignored rather than breaking the stream.
 */
export function parseEnvironmentEvent(eventType: string, data: string): ParsedEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(data);
  } catch {
    return { kind: 'ignore' };
  }
  if (!payload || typeof payload !== 'object') return { kind: 'ignore' };
  const obj = payload as Partial<Environment> & { deleted?: unknown; environment?: unknown };
  // Tolerate an envelope {"environment": {...}} as well as the bare object.
  const env = (
    obj.environment && typeof obj.environment === 'object' ? obj.environment : obj
  ) as Environment & { deleted?: unknown };
  if (typeof env.name !== 'string' || env.name === '') return { kind: 'ignore' };
  const deleted = /delete|remove/i.test(eventType) || env.deleted === true || obj.deleted === true;
  if (deleted) return { kind: 'remove', name: env.name };
  if (eventType !== 'environment' && eventType !== 'message') return { kind: 'ignore' };
  return { kind: 'upsert', env };
}
