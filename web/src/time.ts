// Time formatting for the dashboard: TTL countdowns and "updated 3 min ago". Pure functions of
// (timestamp, now) so they are unit-tested without a clock.

export type TtlTone = 'none' | 'ok' | 'soon' | 'expired';

export interface Ttl {
  text: string;
  /** For styling: no expiry, comfortably alive, under an hour left, past its expiry. */
  tone: TtlTone;
  /** Milliseconds left; null without an expiry. */
  remainingMs: number | null;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const pad = (n: number) => String(n).padStart(2, '0');

/** A duration as the two largest units: "2d 4h", "5h 03m", "12m 05s", "42s". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / SECOND));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

/** The countdown to `expiresAt` (RFC 3339 or null) as seen at `now` (ms since the epoch). */
export function formatTtl(expiresAt: string | null | undefined, now: number): Ttl {
  if (!expiresAt) return { text: 'no expiry', tone: 'none', remainingMs: null };
  const at = Date.parse(expiresAt);
  if (!Number.isFinite(at)) return { text: 'unknown', tone: 'none', remainingMs: null };
  const remaining = at - now;
  // Whole seconds: "0s left" would read as alive; anything under a second has expired.
  if (remaining < SECOND) return { text: 'expired', tone: 'expired', remainingMs: Math.min(remaining, 0) };
  return { text: formatDuration(remaining), tone: remaining < HOUR ? 'soon' : 'ok', remainingMs: remaining };
}

/** "just now", "45s ago", "12 min ago", "3 h ago", "2 d ago"; "in 5 min" for the future. */
export function formatRelative(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return '—';
  const delta = now - at;
  const abs = Math.abs(delta);
  if (abs < 5 * SECOND) return 'just now';
  let text: string;
  if (abs < MINUTE) text = `${Math.floor(abs / SECOND)}s`;
  else if (abs < HOUR) text = `${Math.floor(abs / MINUTE)} min`;
  else if (abs < DAY) text = `${Math.floor(abs / HOUR)} h`;
  else text = `${Math.floor(abs / DAY)} d`;
  return delta >= 0 ? `${text} ago` : `in ${text}`;
}

/** A timestamp for tooltips and the history: "2025-11-27 14:31:05 UTC". */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '—';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return at.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}
