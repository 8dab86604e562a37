import { describe, expect, it } from 'vitest';
import { formatDuration, formatRelative, formatTimestamp, formatTtl } from './time';

const NOW = Date.parse('2025-11-27T12:00:00Z');
const at = (ms: number) => new Date(NOW + ms).toISOString();
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('formatDuration', () => {
  it('shows the two largest units, zero-padding the second', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42 * S)).toBe('42s');
    expect(formatDuration(12 * M + 5 * S)).toBe('12m 05s');
    expect(formatDuration(5 * H + 3 * M + 59 * S)).toBe('5h 03m');
    expect(formatDuration(2 * D + 4 * H + 30 * M)).toBe('2d 4h');
  });
  it('rounds partial seconds down and never goes negative', () => {
    expect(formatDuration(59_999)).toBe('59s');
    expect(formatDuration(-5 * S)).toBe('0s');
  });
});

describe('formatTtl', () => {
  it('says so when there is no expiry', () => {
    expect(formatTtl(null, NOW)).toEqual({ text: 'no expiry', tone: 'none', remainingMs: null });
    expect(formatTtl(undefined, NOW).tone).toBe('none');
  });
  it('counts down to the expiry', () => {
    expect(formatTtl(at(72 * H), NOW)).toMatchObject({ text: '3d 0h', tone: 'ok' });
    expect(formatTtl(at(23 * H + 59 * M + 30 * S), NOW)).toMatchObject({ text: '23h 59m', tone: 'ok' });
    expect(formatTtl(at(H), NOW)).toMatchObject({ text: '1h 00m', tone: 'ok' });
  });
  it('flags the last hour as soon', () => {
    expect(formatTtl(at(H - S), NOW)).toMatchObject({ text: '59m 59s', tone: 'soon' });
    expect(formatTtl(at(7 * S), NOW)).toMatchObject({ text: '7s', tone: 'soon', remainingMs: 7 * S });
  });
  it('is expired from the last second on, and after', () => {
    expect(formatTtl(at(999), NOW)).toMatchObject({ text: 'expired', tone: 'expired' });
    expect(formatTtl(at(0), NOW)).toMatchObject({ text: 'expired', tone: 'expired', remainingMs: 0 });
    expect(formatTtl(at(-3 * H), NOW)).toMatchObject({ text: 'expired', remainingMs: -3 * H });
  });
  it('ticks as time passes', () => {
    const expires = at(10 * M);
    expect(formatTtl(expires, NOW).text).toBe('10m 00s');
    expect(formatTtl(expires, NOW + S).text).toBe('9m 59s');
    expect(formatTtl(expires, NOW + 10 * M).text).toBe('expired');
  });
  it('accepts RFC 3339 with an offset and fractional seconds', () => {
    expect(formatTtl('2025-11-27T14:00:00+01:00', NOW).text).toBe('1h 00m');
    expect(formatTtl('2025-11-27T12:00:30.500Z', NOW).text).toBe('30s');
  });
  it('does not invent a countdown for a malformed time', () => {
    expect(formatTtl('tomorrow', NOW)).toEqual({ text: 'unknown', tone: 'none', remainingMs: null });
  });
});

describe('formatRelative', () => {
  it('describes the past', () => {
    expect(formatRelative(at(-2 * S), NOW)).toBe('just now');
    expect(formatRelative(at(-45 * S), NOW)).toBe('45s ago');
    expect(formatRelative(at(-12 * M), NOW)).toBe('12 min ago');
    expect(formatRelative(at(-3 * H - 10 * M), NOW)).toBe('3 h ago');
    expect(formatRelative(at(-2 * D), NOW)).toBe('2 d ago');
  });
  it('describes the future and missing times', () => {
    expect(formatRelative(at(5 * M), NOW)).toBe('in 5 min');
    expect(formatRelative(null, NOW)).toBe('—');
    expect(formatRelative('garbage', NOW)).toBe('—');
  });
});

describe('formatTimestamp', () => {
  it('prints UTC to the second', () => {
    expect(formatTimestamp('2025-11-27T14:31:05.123Z')).toBe('2025-11-27 14:31:05 UTC');
    expect(formatTimestamp('2025-11-27T15:31:05+01:00')).toBe('2025-11-27 14:31:05 UTC');
    expect(formatTimestamp(null)).toBe('—');
  });
});
