// `dispatch worker [--concurrency 4] [--data-dir DIR] [--lock-ms 5000] [--stalled-check-ms 1000]
//                  [--max-stalled 10] [--lease-s 60]`
//
// A queue worker process beside `dispatch serve`: it runs the queues that need no engine —
// the notifications queue (`reporter.notify` → record an incident's public updates for its
// reporter's webhook, workers/notifications.ts) — and the webhook sender that delivers them
// (src/engine/webhooks.ts). Start serve with DISPATCH_WORKERS=core so that it leaves both to
// the workers; run as many workers as wanted, on any host that reaches the database and Redis.
//
// Environment, as for serve: DATABASE_URL and REDIS_URL (required: the worker shares serve's
// PostgreSQL database and BullMQ queues; exit 2 without them), DISPATCH_QUEUE_PREFIX,
// DISPATCH_ENGINE_CONFIG (the callback rules: callbackAllowHttp, callbackAllowPrivate,
// callbackTimeoutMs), the webhook signing secret — DISPATCH_WEBHOOK_SECRET, else
// <data-dir>/webhook-secret as serve wrote it (the worker never makes one: receivers verify
// serve's; exit 2 when there is none) — and LOG_LEVEL.
//
// Crashes. A SIGKILLed worker's jobs stay locked in Redis until their lock lapses; the other
// workers' stalled-job check then gives them back, so they run again within about
// --lock-ms + --stalled-check-ms (BullMQ's defaults, 30 s + 30 s, are what serve keeps for the
// engine's own queues). A job survives --max-stalled such returns before BullMQ fails it.
// The handler is idempotent (an update recorded already is not recorded again). Deliveries a
// killed sender had claimed go out from another sender when the claim lapses (--lease-s);
// one whose POST had reached the receiver arrives twice with the same Idempotency-Key.
//
// SIGINT / SIGTERM: stop the sender (its round finishes), stop taking jobs and wait for the
// running ones, close the queue and the store; exit 0. A second signal exits at once (130).

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { CONCURRENCY, DELEGABLE, startDelegatedWorkers } from '../../../workers/index.ts';
import { resolveConfig } from '../../engine/config.ts';
import { createEngineDeps, type EngineInfra } from '../../engine/factory.ts';
import { FollowUp, resolveWebhookSecret } from '../../engine/followup.ts';
import { QUEUES } from '../../engine/jobs.ts';
import { DEFAULT_WEBHOOK_OPTIONS } from '../../engine/webhooks.ts';
import { type BullmqProcessOptions, BullmqQueue } from '../../queue/bullmq-queue.ts';
import { defaultDataDir } from '../../server/auth.ts';
import { engineConfigFrom, engineEnvFrom, UsageError } from '../engine-env.ts';
import { runUntilSignal } from '../until-signal.ts';

/** Stalled-job recovery of the worker's queues (faster than BullMQ's 30 s + 30 s). */
export const WORKER_RECOVERY = { lockDurationMs: 5000, stalledIntervalMs: 1000, maxStalledCount: 10 };

const USAGE = `usage: dispatch worker [--concurrency ${CONCURRENCY[QUEUES.notifications]}] [--data-dir DIR] [--lock-ms ${WORKER_RECOVERY.lockDurationMs}]
                       [--stalled-check-ms ${WORKER_RECOVERY.stalledIntervalMs}] [--max-stalled ${WORKER_RECOVERY.maxStalledCount}] [--lease-s ${DEFAULT_WEBHOOK_OPTIONS.leaseS}]

Runs the notifications queue and the webhook sender beside \`dispatch serve\` (start serve with
DISPATCH_WORKERS=core so that it leaves them to the workers). Needs DATABASE_URL and REDIS_URL;
DISPATCH_QUEUE_PREFIX and DISPATCH_ENGINE_CONFIG as for serve.

  --concurrency       notification jobs at once (default ${CONCURRENCY[QUEUES.notifications]})
  --data-dir          where serve keeps webhook-secret, unless DISPATCH_WEBHOOK_SECRET is set
                      (default $DISPATCH_DATA_DIR or ./.dispatch)
  --lock-ms           a job's lock; a killed worker's jobs run again about this long after,
                      plus --stalled-check-ms (default ${WORKER_RECOVERY.lockDurationMs})
  --stalled-check-ms  period of the stalled-job check (default ${WORKER_RECOVERY.stalledIntervalMs})
  --max-stalled       times a job may be given back after its worker died before it fails
                      (default ${WORKER_RECOVERY.maxStalledCount})
  --lease-s           a webhook delivery's claim; a killed sender's claims lapse after it
                      (default ${DEFAULT_WEBHOOK_OPTIONS.leaseS}; above callbackTimeoutMs + 1 s)
`;

export interface WorkerOptions {
  env?: NodeJS.ProcessEnv;
  dataDir?: string;
  concurrency?: number;
  lockMs?: number;
  stalledCheckMs?: number;
  maxStalled?: number;
  leaseS?: number;
  print?: (line: string) => void;
  logLevel?: string;
}

export interface WorkerHandle {
  followUp: FollowUp;
  /** Graceful stop, in order; idempotent. */
  close(): Promise<void>;
}

/** Opens the store and the queues, starts the delegable queues' workers and the webhook sender. */
export async function startWorker(opts: WorkerOptions = {}): Promise<WorkerHandle> {
  const env = opts.env ?? process.env;
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const missing = (['DATABASE_URL', 'REDIS_URL'] as const).filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new UsageError(
      `${missing.join(' and ')} must be set: a worker shares serve's PostgreSQL database and BullMQ queues (embedded PGlite and the in-process queue cannot be shared)`,
    );
  }
  const engineConfig = resolveConfig(engineConfigFrom(env));
  const dataDir = resolve(opts.dataDir ?? defaultDataDir(env));
  let secret: string;
  try {
    secret = resolveWebhookSecret({ dataDir, env, create: false }).secret;
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message} — set DISPATCH_WEBHOOK_SECRET as for serve, or --data-dir to serve's data dir`,
    );
  }
  const leaseS = opts.leaseS ?? DEFAULT_WEBHOOK_OPTIONS.leaseS;
  if (!(leaseS * 1000 > engineConfig.callbackTimeoutMs + 1000)) {
    throw new UsageError(
      `--lease-s must be above callbackTimeoutMs + 1 s (${(engineConfig.callbackTimeoutMs + 1000) / 1000} s)`,
    );
  }
  const level = opts.logLevel ?? env.LOG_LEVEL ?? 'info';
  const log = pino({
    level,
    base: { name: 'dispatch-worker', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });

  const deps: EngineInfra = await createEngineDeps(engineEnvFrom(env));
  const { store, queue } = deps;
  let followUp: FollowUp | undefined;
  try {
    if (!(queue instanceof BullmqQueue)) throw new Error('the worker needs the BullMQ queue (REDIS_URL)');
    followUp = new FollowUp({
      store,
      engineConfig,
      webhookSecret: secret,
      webhooks: { leaseS },
      log: (msg, err) => log.error({ err }, msg),
    });
    const recovery: BullmqProcessOptions = {
      lockDurationMs: opts.lockMs ?? WORKER_RECOVERY.lockDurationMs,
      stalledIntervalMs: opts.stalledCheckMs ?? WORKER_RECOVERY.stalledIntervalMs,
      maxStalledCount: opts.maxStalled ?? WORKER_RECOVERY.maxStalledCount,
    };
    const queues = await startDelegatedWorkers(queue, followUp, {
      queues: DELEGABLE,
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      process: { ...recovery },
    });
    followUp.webhooks.start();
    print(
      `dispatch worker: ready (${queues.join(', ')}, webhook sender) — ${queue.workerName}, queue prefix ${queue.prefix}`,
    );
    log.info({ queues, recovery, leaseS, host: hostname() }, 'dispatch worker ready');
  } catch (err) {
    await deps.close().catch(() => {});
    throw err;
  }
  const fu = followUp;
  let closing: Promise<void> | undefined;
  return {
    followUp: fu,
    close() {
      closing ??= (async () => {
        await fu.webhooks.stop();
        await deps.close();
        log.info('dispatch worker stopped');
      })();
      return closing;
    },
  };
}

function numOption(v: unknown, name: string, lo: number, hi: number, integer = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (
    typeof v !== 'string' ||
    v.trim() === '' ||
    !Number.isFinite(n) ||
    (integer && !Number.isInteger(n)) ||
    n < lo ||
    n > hi
  ) {
    throw new UsageError(
      `${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got "${String(v)}"`,
    );
  }
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        concurrency: { type: 'string' },
        'data-dir': { type: 'string' },
        'lock-ms': { type: 'string' },
        'stalled-check-ms': { type: 'string' },
        'max-stalled': { type: 'string' },
        'lease-s': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`dispatch worker: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);

  let handle: WorkerHandle;
  try {
    const concurrency = numOption(str('concurrency'), '--concurrency', 1, 1000);
    const lockMs = numOption(str('lock-ms'), '--lock-ms', 1000, 3_600_000);
    const stalledCheckMs = numOption(str('stalled-check-ms'), '--stalled-check-ms', 100, 3_600_000);
    const maxStalled = numOption(str('max-stalled'), '--max-stalled', 0, 1_000_000);
    const leaseS = numOption(str('lease-s'), '--lease-s', 1, 86_400, false);
    handle = await startWorker({
      ...(str('data-dir') ? { dataDir: str('data-dir') } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(lockMs !== undefined ? { lockMs } : {}),
      ...(stalledCheckMs !== undefined ? { stalledCheckMs } : {}),
      ...(maxStalled !== undefined ? { maxStalled } : {}),
      ...(leaseS !== undefined ? { leaseS } : {}),
    });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dispatch worker: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`dispatch worker: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }

  return runUntilSignal('worker', () => handle.close());
}
