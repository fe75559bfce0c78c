// The follow-up side of the live engine, built once per process: review flags (scanner +
// the supervisor's list) and reporter webhooks (recording + sender), on the follow-up store
// beside the main store. Thresholds and callback rules default to the engine's own
// configuration (onSceneFarM, nonResponseThreshold, nonResponseWindowS as the shift,
// callbackAllowHttp, callbackAllowPrivate, callbackTimeoutMs), so one setting governs both
// the live alert and the review flag.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_REVIEW_CONFIG, type ReviewConfig } from '../kpi/review-rules.ts';
import { followUpStoreFor } from '../store/followup-open.ts';
import type { FollowUpStore } from '../store/followup-store.ts';
import type { Store } from '../store/store.ts';
import type { EngineConfig } from './config.ts';
import { type Clock, systemClock } from './ports.ts';
import { type ReviewScannerOptions, Reviews } from './reviews.ts';
import { type WebhookOptions, Webhooks } from './webhooks.ts';

export interface FollowUpOptions {
  store: Store;
  /** The engine's configuration (thresholds and callback rules). */
  engineConfig: EngineConfig;
  /** Shared secret of the webhook signatures (≥ 16 characters). */
  webhookSecret: string;
  clock?: Clock;
  webhooks?: Partial<Omit<WebhookOptions, 'secret'>>;
  /** Review thresholds beyond the engine's (declineThreshold, speedFactor, minTravelCheckM…). */
  reviews?: Partial<ReviewConfig>;
  scanner?: Partial<ReviewScannerOptions>;
  log?: (msg: string, err?: unknown) => void;
}

export class FollowUp {
  readonly side: FollowUpStore;
  readonly reviews: Reviews;
  readonly webhooks: Webhooks;

  constructor(o: FollowUpOptions) {
    const clock = o.clock ?? systemClock;
    this.side = followUpStoreFor(o.store);
    const c = o.engineConfig;
    this.reviews = new Reviews({
      store: o.store,
      side: this.side,
      clock,
      config: {
        ...DEFAULT_REVIEW_CONFIG,
        onSceneFarM: c.onSceneFarM,
        nonResponseThreshold: c.nonResponseThreshold,
        shiftS: c.nonResponseWindowS,
        ...o.reviews,
      },
      ...(o.scanner ? { options: o.scanner } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    this.webhooks = new Webhooks({
      store: o.store,
      side: this.side,
      clock,
      options: {
        allowHttp: c.callbackAllowHttp,
        allowPrivate: c.callbackAllowPrivate,
        timeoutMs: c.callbackTimeoutMs,
        ...o.webhooks,
        secret: o.webhookSecret,
      },
      ...(o.log ? { log: o.log } : {}),
    });
  }

  /**
   * Starts the review scanner and the webhook sender; `webhookSender: false` leaves the sender
   * to other processes (`dispatch serve` with DISPATCH_WORKERS=core, beside `dispatch worker`).
   */
  start(opts: { reviews?: boolean; webhookSender?: boolean } = {}): void {
    if (opts.reviews !== false) this.reviews.start();
    if (opts.webhookSender !== false) this.webhooks.start();
  }

  async stop(): Promise<void> {
    await this.reviews.stop();
    await this.webhooks.stop();
  }
}

/**
 * The webhook signing secret: `DISPATCH_WEBHOOK_SECRET`, else `<dataDir>/webhook-secret`,
 * created on first use (mode 0600) unless `create` is false (then a missing one throws).
 * Give receivers this value.
 */
export function resolveWebhookSecret(opts: { dataDir: string; env?: NodeJS.ProcessEnv; create?: boolean }): {
  secret: string;
  source: 'env' | 'file' | 'generated';
  path?: string;
} {
  const env = opts.env ?? process.env;
  const fromEnv = env.DISPATCH_WEBHOOK_SECRET?.trim();
  if (fromEnv) {
    if (fromEnv.length < 16) throw new Error('DISPATCH_WEBHOOK_SECRET: at least 16 characters');
    return { secret: fromEnv, source: 'env' };
  }
  const path = join(opts.dataDir, 'webhook-secret');
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 16) return { secret, source: 'file', path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (opts.create === false) {
    throw new Error(
      `no webhook signing secret: DISPATCH_WEBHOOK_SECRET is not set and ${path} is missing (or shorter than 16 characters)`,
    );
  }
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { secret: readFileSync(path, 'utf8').trim(), source: 'file', path };
  }
  return { secret, source: 'generated', path };
}
