// Tunables of the live engine, with the defaults the product brief names.

import type { DispatchOptions } from '../core/policy.ts';

export interface EngineConfig {
  /** Seconds a unit has to acknowledge an offer for an immediate-response type (default 30). */
  ackTimeoutS: number;
  /** The same for every other type (default 60). */
  ackTimeoutOtherS: number;
  /** A unit reporting on scene farther than this from the incident is flagged (default 300 m). */
  onSceneFarM: number;
  /** Triggers within this window are coalesced into one decision (default 2 ms). */
  decideDebounceMs: number;
  /**
   * A change that asks for a decision (a report, a freed unit…) has it made at the end of its
   * own batch, so the offer commits with its cause (default true). False: only through the
   * decisions queue, after the debounce (tests that step decisions themselves).
   */
  decideInline: boolean;
  /**
   * The work of the next batch runs while a batch commits (src/engine/lane.ts). Default true.
   * It pays where the commit takes the longer part and runs off the event loop: embedded
   * PGlite in its worker thread. With the local PostgreSQL at 300 reports/s, where the event
   * loop is what runs out, it made batches bigger and offers slower, so `dispatch serve`
   * turns it off when DATABASE_URL is set (DISPATCH_ENGINE_CONFIG may turn it back on).
   */
  overlapCommits: boolean;
  /**
   * An offer's acknowledgement deadline and a new incident's target timer go to the queue only
   * once they are this old (default 0: at once). Most are cancelled long before: an offer is
   * answered in tens of milliseconds, and arming and removing its timer cost two Redis scripts.
   * Nothing is lost to a crash meanwhile: a starting engine's sweep re-arms every timer the
   * store says is due. `dispatch serve` sets 2000.
   */
  timerArmDelayMs: number;
  /** Wall-clock budget of one optimiser call; past it the anytime solver returns its best (default 50 ms). */
  decideBudgetMs: number;
  /** A report of the same type within this distance of an open incident … (default 100 m) */
  duplicateRadiusM: number;
  /** … and within this many seconds of its report is merged into it (default 300 s). */
  duplicateWindowS: number;
  /** After a decline or a missed ack the unit is not offered the same incident again for this long (default 600 s). */
  declineExcludeS: number;
  /** Non-responses (declines + missed acks) within the window that raise `repeated_non_response` (default 3). */
  nonResponseThreshold: number;
  /** The window: one shift (default 8 h). */
  nonResponseWindowS: number;
  /** At most one `unit:updated` per unit per this many ms from location reports (default 1000). */
  locationPublishMs: number;
  /** Positions are written to the store at most this often per unit (default 15 s). */
  locationPersistS: number;
  /** Period of the sweep that re-arms missing timers and re-runs decisions for waiting incidents (default 30 s; 0 = off). */
  sweepIntervalMs: number;
  /** Options handed to the dispatch policy (pre-emption, max ETA, penalties…). */
  dispatch?: Partial<DispatchOptions>;
  /** Reporter callbacks may use plain http:// (default false: https only). */
  callbackAllowHttp: boolean;
  /** Reporter callbacks may point at loopback, private or local addresses (default false; tests). */
  callbackAllowPrivate: boolean;
  /** Timeout of one reporter callback POST (default 5000 ms). */
  callbackTimeoutMs: number;
  /** Decisions re-run at once after stale mirror data, at most this many times in a row (default 3). */
  maxChainedRedecides: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  ackTimeoutS: 30,
  ackTimeoutOtherS: 60,
  onSceneFarM: 300,
  decideDebounceMs: 2,
  decideInline: true,
  overlapCommits: true,
  timerArmDelayMs: 0,
  decideBudgetMs: 50,
  duplicateRadiusM: 100,
  duplicateWindowS: 300,
  declineExcludeS: 600,
  nonResponseThreshold: 3,
  nonResponseWindowS: 8 * 3600,
  locationPublishMs: 1000,
  locationPersistS: 15,
  sweepIntervalMs: 30_000,
  callbackAllowHttp: false,
  callbackAllowPrivate: false,
  callbackTimeoutMs: 5000,
  maxChainedRedecides: 3,
};

export function resolveConfig(c: Partial<EngineConfig> = {}): EngineConfig {
  const out: EngineConfig = { ...DEFAULT_ENGINE_CONFIG, ...c };
  for (const k of Object.keys(DEFAULT_ENGINE_CONFIG) as (keyof EngineConfig)[]) {
    const v = out[k];
    if (
      typeof DEFAULT_ENGINE_CONFIG[k] === 'number' &&
      (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    ) {
      throw new RangeError(`engine config ${k} must be a finite number ≥ 0, got ${String(v)}`);
    }
    if (typeof DEFAULT_ENGINE_CONFIG[k] === 'boolean' && typeof v !== 'boolean') {
      throw new RangeError(`engine config ${k} must be true or false, got ${String(v)}`);
    }
  }
  return out;
}
