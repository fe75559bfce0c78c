// Wiring of the live engine's infrastructure from the environment:
//   DATABASE_URL → PostgreSQL (migrations run on open), else embedded PGlite (in memory, or
//   persisted in dataDir); REDIS_URL → BullMQ queues, else the in-process queue.
// Plus the scenario-derived context (catalogue, areas, travel model) and unit seeding that
// `dispatch serve --config` needs.

import { AreaIndex } from '../core/areas.ts';
import { buildCatalog, type CatalogIndex, defaultCatalog } from '../core/catalog.ts';
import type { TravelTimes } from '../core/ports.ts';
import { GreatCircleTravel } from '../core/travel.ts';
import { MemoryQueue } from '../queue/memory-queue.ts';
import type { Scenario } from '../scenario/types.ts';
import { travelFor } from '../sim/simulate.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';
import type { Actor } from './api.ts';
import type { Engine } from './engine.ts';
import type { JobQueue } from './ports.ts';

export interface EngineEnv {
  DATABASE_URL?: string;
  REDIS_URL?: string;
  /** PGlite data directory (embedded mode); in memory when omitted. */
  dataDir?: string;
  /** `memory` runs on the in-memory store instead of PGlite (tests, throw-away demos). */
  embedded?: 'pglite' | 'memory';
  /** BullMQ key prefix (default `dispatch`). */
  queuePrefix?: string;
  /** HMAC key of the audit chain. */
  auditKey?: string;
}

export interface EngineInfra {
  store: Store;
  queue: JobQueue;
  /** Closes the queue (its workers first), then the store. Stop the engine before. */
  close(): Promise<void>;
}

export async function createEngineDeps(env: EngineEnv = {}): Promise<EngineInfra> {
  // BullMQ with ioredis is half of the engine's code: loaded only for a Redis queue, and while
  // the store opens (a restart decides that much sooner; embedded mode never loads it).
  const bullmq = env.REDIS_URL ? import('../queue/bullmq-queue.ts') : undefined;
  bullmq?.catch(() => {}); // awaited below once the store is open
  const store = await openStore({
    ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}),
    ...(env.dataDir ? { dataDir: env.dataDir } : {}),
    ...(env.embedded ? { embedded: env.embedded } : {}),
    ...(env.auditKey ? { auditKey: env.auditKey } : {}),
  });
  let queue: JobQueue;
  if (env.REDIS_URL && bullmq) {
    const { BullmqQueue } = await bullmq;
    const q = new BullmqQueue({ url: env.REDIS_URL, prefix: env.queuePrefix ?? 'dispatch' });
    try {
      await q.ping();
    } catch (err) {
      await q.close().catch(() => {});
      await store.close().catch(() => {});
      throw new Error(`Redis unreachable at ${redact(env.REDIS_URL)}: ${(err as Error).message}`);
    }
    queue = q;
  } else {
    queue = new MemoryQueue();
  }
  let closed = false;
  return {
    store,
    queue,
    async close() {
      if (closed) return;
      closed = true;
      await queue.close();
      await store.close();
    },
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

export interface ScenarioContext {
  catalog: CatalogIndex;
  areas?: AreaIndex;
  travel: TravelTimes;
}

/** Catalogue, areas and travel model of a (validated) scenario; the defaults without one. */
export function scenarioContext(scenario?: Pick<Scenario, 'catalog' | 'areas' | 'travel'>): ScenarioContext {
  if (!scenario) return { catalog: defaultCatalog(), travel: new GreatCircleTravel() };
  const catalog =
    scenario.catalog && scenario.catalog.length > 0
      ? buildCatalog(scenario.catalog, 'catalog')
      : defaultCatalog();
  const areas =
    scenario.areas && scenario.areas.features.length > 0 ? new AreaIndex(scenario.areas, 'areas') : undefined;
  const travel = travelFor(scenario as Scenario);
  return { catalog, ...(areas ? { areas } : {}), travel };
}

/**
 * Registers the scenario's units through the engine (admin path). A unit new to the store
 * starts available at home; one already stored keeps its status and commitment.
 */
export async function seedUnits(
  engine: Engine,
  units: Scenario['units'],
  actor: Actor = { role: 'system', id: 'system:config' },
): Promise<void> {
  // Submitted together (in order): the engine's lane commits them in batches, instead of one
  // transaction after another — a restart with a thousand units is not held up by them.
  await Promise.all(
    units.map((u) =>
      engine.upsertUnit(
        u.id,
        {
          department: u.department,
          capabilities: u.capabilities,
          home: u.home,
          ...(u.homeArea !== undefined ? { homeArea: u.homeArea } : {}),
          speedKmh: u.speedKmh,
          turnoutS: u.turnoutS,
        },
        actor,
      ),
    ),
  );
}
