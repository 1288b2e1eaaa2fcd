/** The vocabulary of a run's observed state, shared by the store, the reconcilers and the CLI. */

export const PHASES = ['Pending', 'Preparing', 'Deploying', 'Testing', 'TearingDown', 'Reporting', 'Done'] as const;
export type Phase = (typeof PHASES)[number];

/** Phases in which a run holds swarm resources and counts against capacity. */
export const ACTIVE_PHASES: readonly Phase[] = ['Preparing', 'Deploying', 'Testing', 'TearingDown'];

export const RESULTS = ['passed', 'failed', 'error', 'cancelled'] as const;
export type RunResult = (typeof RESULTS)[number];

export const TIER_NAMES = ['install', 'upgrade', 'backup', 'restore', 'custom'] as const;
export type TierName = (typeof TIER_NAMES)[number];

export type TierResult = 'pass' | 'fail' | 'n/a' | 'skipped';

export type AppState = 'leased' | 'created' | 'deployed' | 'tearing-down' | 'released';

export interface RunRecord {
  name: string;
  specJson: string;
  specHash: string;
  specPath: string | null;
  recipe: string;
  lane: string;
  phase: Phase;
  result: RunResult | null;
  reason: string | null;
  step: string | null;
  waitingReason: string | null;
  commitSha: string | null;
  attempt: number;
  retries: RetryRecord[];
  retryPending: boolean;
  teardownStartedAt: number | null;
  cancelRequested: boolean;
  cancelReason: string | null;
  owner: string | null;
  customization: unknown;
  /** What cc-ci understood of the recipe before deploying it (reconcilers/understand.ts). */
  understanding: unknown;
  /** How the run's lane was served when that differs from its name: a quick run that fell back to
   *  the cold ladder says why (docs/warm.md). */
  laneNote: string | null;
  /** A teardown that failed after the verdict: the server's problem, not the recipe's; the verdict stands. */
  teardownProblem: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
}

/** An infrastructure fault that made the controller start the run again: shown, never silent. */
export interface RetryRecord {
  attempt: number;
  reason: string;
  at: number;
}

export interface TierRecord {
  tier: TierName;
  position: number;
  result: TierResult | null;
  reason: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
}

export type EventKind = 'phase' | 'step' | 'tier' | 'info' | 'warn' | 'error' | 'out' | 'err' | 'result';

export interface RunEvent {
  seq: number;
  ts: number;
  kind: EventKind;
  text: string;
}

export interface StepRecord {
  id: number;
  attempt: number;
  name: string;
  state: 'started' | 'done' | 'failed';
  detail: string | null;
  startedAt: number;
  finishedAt: number | null;
}

export interface AppRecord {
  domain: string;
  run: string;
  attempt: number;
  purpose: string;
  stack: string;
  server: string;
  abraDir: string;
  port: number | null;
  state: AppState;
  leasedAt: number;
  releasedAt: number | null;
}

export interface SpecFileRecord {
  path: string;
  name: string | null;
  status: 'valid' | 'invalid';
  error: string | null;
  hash: string | null;
  seenAt: number;
}

export interface InstanceRecord {
  id: string;
  pid: number;
  pidStart: string | null;
  host: string;
  mode: string;
  startedAt: number;
  heartbeatAt: number;
  stoppedAt: number | null;
}

export interface ChildRecord {
  pid: number;
  run: string | null;
  startTicks: string | null;
  command: string;
  startedAt: number;
}
