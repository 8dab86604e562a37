// The shapes ephd's API returns (see docs/dashboard.md and the OpenAPI document).

export const ENV_STATES = [
  'pending',
  'provisioning',
  'ready',
  'updating',
  'destroying',
  'destroyed',
  'failed',
  'sleeping',
] as const;

export type EnvState = (typeof ENV_STATES)[number];

export interface Environment {
  name: string;
  project: string;
  pr: number;
  // A known state above; typed as string so an older dashboard still shows a newer server's states.
  state: EnvState | string;
  url: string;
  reason: string;
  provider?: string;
  head_sha?: string;
  created_at: string | null;
  updated_at: string | null;
  expires_at: string | null;
  last_activity_at?: string | null;
}

/** One state transition from the environment's history. */
export interface StateEvent {
  id: number | string;
  from_state: string | null;
  to_state: string;
  reason: string;
  at: string | null;
}

export interface EnvironmentDetail extends Environment {
  events?: StateEvent[];
}

export type ExtendBy = '4h' | '24h' | '72h';
export const EXTEND_CHOICES: readonly ExtendBy[] = ['4h', '24h', '72h'];
