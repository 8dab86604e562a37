import { describe, expect, it } from 'vitest';
import {
  applyEnvironment,
  fromSnapshot,
  parseEnvironmentEvent,
  removeEnvironment,
  sortedEnvironments,
  withOptions,
  type EnvIndex,
} from './envlist';
import type { Environment } from './types';

function env(name: string, over: Partial<Environment> = {}): Environment {
  return {
    name,
    project: 'acme/shop',
    pr: 7,
    state: 'ready',
    url: `https://${name}.preview.example`,
    reason: '',
    created_at: '2025-11-27T10:00:00Z',
    updated_at: '2025-11-27T10:00:00Z',
    expires_at: '2025-11-28T10:00:00Z',
    ...over,
  };
}

const hide = { includeDestroyed: false };
const show = { includeDestroyed: true };
const empty: EnvIndex = new Map();

describe('applyEnvironment', () => {
  it('adds an environment it has not seen', () => {
    const next = applyEnvironment(empty, env('shop-a-1', { state: 'pending' }), hide);
    expect([...next.keys()]).toEqual(['shop-a-1']);
    expect(next.get('shop-a-1')?.state).toBe('pending');
  });

  it('replaces by name with the newer version', () => {
    const one = applyEnvironment(empty, env('shop-a-1', { state: 'provisioning' }), hide);
    const two = applyEnvironment(one, env('shop-a-1', { state: 'ready', updated_at: '2025-11-27T10:01:00Z' }), hide);
    expect(two.size).toBe(1);
    expect(two.get('shop-a-1')?.state).toBe('ready');
  });

  it('ignores an event older than what it holds (a replay after reconnecting)', () => {
    const held = applyEnvironment(empty, env('e', { state: 'ready', updated_at: '2025-11-27T10:05:00Z' }), hide);
    const next = applyEnvironment(held, env('e', { state: 'provisioning', updated_at: '2025-11-27T10:01:00Z' }), hide);
    expect(next).toBe(held);
    expect(next.get('e')?.state).toBe('ready');
  });

  it('takes a same-timestamp event (later on the stream wins)', () => {
    const held = applyEnvironment(empty, env('e', { state: 'provisioning' }), hide);
    const next = applyEnvironment(held, env('e', { state: 'ready' }), hide);
    expect(next.get('e')?.state).toBe('ready');
  });

  it('removes an environment once destroyed unless destroyed ones are shown', () => {
    const held = applyEnvironment(empty, env('e'), hide);
    const gone = applyEnvironment(held, env('e', { state: 'destroyed', updated_at: '2025-11-27T11:00:00Z' }), hide);
    expect(gone.has('e')).toBe(false);
    const kept = applyEnvironment(held, env('e', { state: 'destroyed', updated_at: '2025-11-27T11:00:00Z' }), show);
    expect(kept.get('e')?.state).toBe('destroyed');
  });

  it('keeps destroying environments visible', () => {
    const next = applyEnvironment(applyEnvironment(empty, env('e'), hide), env('e', { state: 'destroying' }), hide);
    expect(next.get('e')?.state).toBe('destroying');
  });

  it('does not add an unseen destroyed environment', () => {
    expect(applyEnvironment(empty, env('e', { state: 'destroyed' }), hide)).toBe(empty);
  });

  it('returns the same index when nothing changed, so nothing re-renders', () => {
    const held = applyEnvironment(empty, env('e'), hide);
    expect(applyEnvironment(held, env('e'), hide)).toBe(held);
  });

  it('never mutates the index it was given', () => {
    const held = applyEnvironment(empty, env('e'), hide);
    applyEnvironment(held, env('f'), hide);
    applyEnvironment(held, env('e', { state: 'destroyed' }), hide);
    expect([...held.keys()]).toEqual(['e']);
    expect(empty.size).toBe(0);
  });

  it('ignores payloads without a name', () => {
    expect(applyEnvironment(empty, { ...env('x'), name: '' }, hide)).toBe(empty);
  });
});

describe('snapshot and options', () => {
  it('builds the index from a list, dropping destroyed ones when hidden', () => {
    const items = [env('a'), env('b', { state: 'destroyed' })];
    expect([...fromSnapshot(items, hide).keys()]).toEqual(['a']);
    expect([...fromSnapshot(items, show).keys()]).toEqual(['a', 'b']);
  });

  it('drops destroyed ones when "show destroyed" is turned off', () => {
    const all = fromSnapshot([env('a'), env('b', { state: 'destroyed' })], show);
    expect([...withOptions(all, hide).keys()]).toEqual(['a']);
    expect(withOptions(all, show)).toBe(all);
    const live = fromSnapshot([env('a')], hide);
    expect(withOptions(live, hide)).toBe(live);
  });

  it('removes by name', () => {
    const held = fromSnapshot([env('a'), env('b')], hide);
    expect([...removeEnvironment(held, 'a').keys()]).toEqual(['b']);
    expect(removeEnvironment(held, 'zzz')).toBe(held);
  });

  it('sorts newest first, then by name', () => {
    const idx = fromSnapshot(
      [
        env('old', { created_at: '2025-11-01T00:00:00Z' }),
        env('new-b', { created_at: '2025-11-27T00:00:00Z' }),
        env('new-a', { created_at: '2025-11-27T00:00:00Z' }),
        env('no-time', { created_at: null }),
      ],
      hide,
    );
    expect(sortedEnvironments(idx).map((e) => e.name)).toEqual(['new-a', 'new-b', 'old', 'no-time']);
  });
});

describe('parseEnvironmentEvent', () => {
  it('reads an environment event', () => {
    const parsed = parseEnvironmentEvent('environment', JSON.stringify(env('e', { state: 'updating' })));
    expect(parsed.kind).toBe('upsert');
    expect(parsed.env?.state).toBe('updating');
  });

  it('accepts an unnamed (message) event with an environment too', () => {
    expect(parseEnvironmentEvent('message', JSON.stringify(env('e'))).kind).toBe('upsert');
  });

  it('treats a deletion as removal by name', () => {
    expect(parseEnvironmentEvent('environment.deleted', JSON.stringify({ name: 'e' }))).toEqual({ kind: 'remove', name: 'e' });
    expect(parseEnvironmentEvent('environment', JSON.stringify({ name: 'e', deleted: true }))).toEqual({
      kind: 'remove',
      name: 'e',
    });
  });

  it('ignores junk rather than breaking the stream', () => {
    expect(parseEnvironmentEvent('environment', 'not json').kind).toBe('ignore');
    expect(parseEnvironmentEvent('environment', '42').kind).toBe('ignore');
    expect(parseEnvironmentEvent('environment', '{"state":"ready"}').kind).toBe('ignore');
    expect(parseEnvironmentEvent('something-else', JSON.stringify(env('e'))).kind).toBe('ignore');
  });
});
