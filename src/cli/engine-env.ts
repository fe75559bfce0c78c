// What `dispatch serve` and `dispatch worker` read from the environment alike, so that the
// processes of one deployment open the same store and queues with the same settings:
//   DATABASE_URL, REDIS_URL, DISPATCH_QUEUE_PREFIX, DISPATCH_AUDIT_KEY → createEngineDeps;
//   DISPATCH_ENGINE_CONFIG → the engine's tunables (callback rules included);
//   DISPATCH_WORKERS → which queues `dispatch serve` runs itself.
// Kept free of the server stack: `dispatch worker` loads this, not serve.ts.

import { DEFAULT_ENGINE_CONFIG, type EngineConfig, resolveConfig } from '../engine/config.ts';
import type { EngineEnv } from '../engine/factory.ts';
import { QUEUES, type QueueName } from '../engine/jobs.ts';

/** A refusal of the command line, the environment or a file: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The infrastructure part of createEngineDeps' input. Without DATABASE_URL, embedded PGlite
 * in `pgliteDir` (serve only).
 */
export function engineEnvFrom(env: NodeJS.ProcessEnv, pgliteDir?: string): EngineEnv {
  return {
    ...(env.DATABASE_URL ? { DATABASE_URL: env.DATABASE_URL } : pgliteDir ? { dataDir: pgliteDir } : {}),
    ...(env.REDIS_URL ? { REDIS_URL: env.REDIS_URL } : {}),
    ...(env.DISPATCH_QUEUE_PREFIX ? { queuePrefix: env.DISPATCH_QUEUE_PREFIX } : {}),
    ...(env.DISPATCH_AUDIT_KEY ? { auditKey: env.DISPATCH_AUDIT_KEY } : {}),
  };
}

/** DISPATCH_ENGINE_CONFIG: a JSON object of known settings with valid values, else UsageError. */
export function engineConfigFrom(env: NodeJS.ProcessEnv): Partial<EngineConfig> | undefined {
  if (!env.DISPATCH_ENGINE_CONFIG) return undefined;
  try {
    const engineConfig = JSON.parse(env.DISPATCH_ENGINE_CONFIG) as Partial<EngineConfig>;
    const unknown = Object.keys(engineConfig ?? {}).filter((k) => !Object.hasOwn(DEFAULT_ENGINE_CONFIG, k));
    if (typeof engineConfig !== 'object' || engineConfig === null || Array.isArray(engineConfig)) {
      throw new Error('must be a JSON object');
    }
    if (unknown.length > 0) throw new Error(`unknown setting(s) ${unknown.join(', ')}`);
    resolveConfig(engineConfig);
    return engineConfig;
  } catch (e) {
    throw new UsageError(`DISPATCH_ENGINE_CONFIG: ${(e as Error).message}`);
  }
}

/**
 * DISPATCH_WORKERS: `all` (default) — `dispatch serve` runs every queue and the webhook
 * sender; `core` — it runs intake, decisions and timers (they call the engine) and leaves the
 * notifications queue and the webhook sender to `dispatch worker` processes, which needs a
 * store and queues they share (DATABASE_URL and REDIS_URL). Returns the delegated queues.
 */
export function delegatedQueuesFrom(env: NodeJS.ProcessEnv): QueueName[] {
  const v = (env.DISPATCH_WORKERS ?? '').trim().toLowerCase();
  if (v === '' || v === 'all') return [];
  if (v !== 'core')
    throw new UsageError(`DISPATCH_WORKERS must be "all" or "core", got "${env.DISPATCH_WORKERS}"`);
  if (!env.DATABASE_URL || !env.REDIS_URL) {
    throw new UsageError(
      'DISPATCH_WORKERS=core leaves notifications to `dispatch worker` processes: it needs DATABASE_URL and REDIS_URL (a store and queues they share)',
    );
  }
  return [QUEUES.notifications];
}
