// The live demo (`dispatch serve --demo SCENARIO --speed N`): plays a scenario against a running
// server through its public interfaces only, in accelerated real time.
//
// - Incidents: each arrives at (scenario second atS) / speed after the start as a real
//   `POST /v1/incidents` with a dispatcher bearer token and `Idempotency-Key` = the incident id,
//   so a retried post never makes two incidents (transient failures are retried with the same
//   key). Keys are per pass: when the server already knows the first incident's key (a demo
//   restarted on a persistent data dir), this run uses `<id>@<run tag>` instead, and with
//   looping each later pass adds `.<pass>`, so every pass brings fresh incidents.
// - Units: one socket.io client per scenario unit, with its own unit token (SimUnit, see
//   sim-unit.ts). Units the server does not know yet are registered first with
//   `PUT /v1/units/:id` (admin). Units holding work from an earlier run pick it up
//   (`GET /v1/assignments?active=true` with their token).
// - Times: every scenario duration (ack delay, turnout, travel, on-scene time, position
//   period) is divided by the speed. The server's own timers (ack deadlines, targets) run in
//   real time.

import type { TravelTimes } from '../core/ports.ts';
import { RoadNetworkTravel } from '../core/road-network.ts';
import { DEFAULT_DETOUR_FACTOR, GreatCircleTravel } from '../core/travel.ts';
import type { IncidentType } from '../core/types.ts';
import { Rng } from '../scenario/rng.ts';
import type { Scenario, ScenarioIncident } from '../scenario/types.ts';
import type { AssignmentView, IncidentView, UnitView } from '../shared/events.ts';
import { ApiClient, HttpError, isTransient } from './http.ts';
import { type DemoLog, type DemoStats, type DemoWorld, emptyStats, SceneBook, SimUnit } from './sim-unit.ts';

export type { DemoLog, DemoStats } from './sim-unit.ts';

export interface DemoTokens {
  /** Posts incidents, reads the catalogue and incidents. */
  dispatcher: () => Promise<string>;
  /** Registers units the server does not know. */
  admin: () => Promise<string>;
  /** A unit token bound to this unit id (asked again at every socket (re)connect). */
  unit: (unitId: string) => Promise<string>;
}

export interface DemoOptions {
  /** e.g. http://127.0.0.1:3000 */
  baseUrl: string;
  scenario: Scenario;
  /** Demo seconds per real second (default 10). */
  speed?: number;
  tokens: DemoTokens;
  /** Play the scenario once (default: loop, each pass with fresh incidents). */
  once?: boolean;
  /** Only the first N incidents of each pass. */
  limit?: number;
  /** Position reports every this many demo seconds while moving (default 5). */
  positionEveryS?: number;
  log?: DemoLog;
  /** Period of the progress line, real ms (default 30 000; 0 = none). */
  progressEveryMs?: number;
}

export interface DemoHandle {
  readonly stats: DemoStats;
  /** Server incident id by scenario incident id (this run). */
  readonly incidents: ReadonlyMap<string, string>;
  /** Resolves when posting ends: after the pass with `once`, else after stop(). */
  readonly done: Promise<void>;
  /** Stops posting and disconnects the units. */
  stop(): Promise<void>;
}

const silent: DemoLog = { info() {}, warn() {}, debug() {} };
const POST_ATTEMPTS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The scenario's travel model: its road network, else great circle × detour factor (as replays). */
export function demoTravel(scenario: Pick<Scenario, 'travel'>): TravelTimes {
  const detour = scenario.travel?.detourFactor ?? DEFAULT_DETOUR_FACTOR;
  if (scenario.travel?.roads) return new RoadNetworkTravel(scenario.travel.roads, { detourFactor: detour });
  return new GreatCircleTravel(detour);
}

export async function startDemo(opts: DemoOptions): Promise<DemoHandle> {
  const { scenario } = opts;
  const speed = opts.speed ?? 10;
  if (!(speed > 0) || !Number.isFinite(speed)) throw new Error('the demo speed must be a number > 0');
  const log = opts.log ?? silent;
  const dispatcher = new ApiClient(opts.baseUrl, opts.tokens.dispatcher);
  const admin = new ApiClient(opts.baseUrl, opts.tokens.admin);
  const stats = emptyStats();
  const incidentMap = new Map<string, string>();
  /** Server incident id → demo seconds on scene (from the scenario incident). */
  const onSceneById = new Map<string, number>();

  // ---------------------------------------------------------------- what the server knows
  const config = await dispatcher.get<{ catalog: IncidentType[] }>('/v1/config');
  const catalog = new Map(config.catalog.map((t) => [t.type, t]));
  const scenarioTypes = new Map(scenario.catalog.map((t) => [t.type, t]));
  const unknownTypes = new Set(scenario.incidents.map((i) => i.type).filter((t) => !catalog.has(t)));
  if (unknownTypes.size > 0) {
    log.warn('demo: incident types unknown to the server are skipped', { types: [...unknownTypes] });
  }

  const world: DemoWorld = {
    speed,
    travel: demoTravel(scenario),
    ackDelayS: scenario.sim?.ackDelayS ?? 0,
    declineProb: scenario.sim?.declineProb ?? 0,
    returnHome: scenario.sim?.returnHome ?? true,
    positionEveryS: opts.positionEveryS ?? 5,
    onSceneS: (incidentId, type) =>
      onSceneById.get(incidentId) ?? catalog.get(type)?.onSceneS ?? scenarioTypes.get(type)?.onSceneS ?? 600,
    scenes: new SceneBook(),
    stats,
    log,
  };

  // ---------------------------------------------------------------- units
  const known = new Map(
    (await admin.get<{ units: UnitView[] }>('/v1/units')).units.map((u) => [u.id, u] as const),
  );
  for (const u of scenario.units) {
    if (known.has(u.id)) continue;
    const view = await admin.put<UnitView>(`/v1/units/${encodeURIComponent(u.id)}`, {
      department: u.department,
      capabilities: u.capabilities,
      home: u.home,
      ...(u.homeArea !== undefined ? { homeArea: u.homeArea } : {}),
      speedKmh: u.speedKmh,
      turnoutS: u.turnoutS,
    });
    known.set(u.id, view);
  }
  const rng = new Rng(scenario.seed).fork('demo:units');
  const units = scenario.units.map(
    (u) =>
      new SimUnit(
        { id: u.id, home: u.home, speedKmh: u.speedKmh, turnoutS: u.turnoutS },
        world,
        rng.fork(u.id),
        () => opts.tokens.unit(u.id),
        known.get(u.id)?.position,
      ),
  );
  let stopped = false;
  const stopUnits = () => {
    for (const u of units) u.stop();
  };
  try {
    await Promise.all(units.map((u) => u.connect(opts.baseUrl)));
  } catch (err) {
    stopUnits();
    throw err;
  }
  // Work held from an earlier run (a restart on a persistent store).
  for (const u of units) {
    const status = known.get(u.spec.id)?.status;
    if (status !== 'offered' && status !== 'en_route' && status !== 'on_scene') continue;
    const client = new ApiClient(opts.baseUrl, () => opts.tokens.unit(u.spec.id));
    try {
      const { assignments } = await client.get<{ assignments: AssignmentView[] }>(
        '/v1/assignments?active=true',
      );
      for (const a of assignments) {
        const inc = await client.get<IncidentView>(`/v1/incidents/${encodeURIComponent(a.incidentId)}`);
        u.resume(a, inc);
      }
    } catch (err) {
      log.warn('demo: could not resume a unit', { unit: u.spec.id, err: (err as Error).message });
    }
  }
  log.info('demo: units connected', { units: units.length, speed });

  // ---------------------------------------------------------------- incidents
  const runTag = Date.now().toString(36);
  let keySuffix = '';
  const passIncidents = scenario.incidents
    .filter((i) => !unknownTypes.has(i.type))
    .slice(0, opts.limit ?? Number.POSITIVE_INFINITY);

  async function post(inc: ScenarioIncident, key: string): Promise<{ id: string; created: boolean }> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await dispatcher.post<IncidentView>(
          '/v1/incidents',
          {
            type: inc.type,
            location: inc.location,
            ...(inc.priority !== undefined ? { priority: inc.priority } : {}),
            ...(inc.source !== undefined ? { source: inc.source } : {}),
            description: `demo ${scenario.name} ${inc.id}`,
          },
          { 'idempotency-key': key },
        );
        return { id: res.body.id, created: res.status === 201 };
      } catch (err) {
        if (stopped || attempt >= POST_ATTEMPTS || !isTransient(err)) throw err;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  async function report(inc: ScenarioIncident, pass: number, first: boolean): Promise<void> {
    const keyOf = () => `${inc.id}${keySuffix}${pass > 1 ? `.${pass}` : ''}`;
    try {
      let r = await post(inc, keyOf());
      if (first && !r.created && keySuffix === '') {
        // The server has played this demo before: this run gets keys of its own.
        keySuffix = `@${runTag}`;
        log.info('demo: earlier run found on the server; this run uses its own idempotency keys', {
          suffix: keySuffix,
        });
        r = await post(inc, keyOf());
      }
      incidentMap.set(inc.id, r.id);
      if (inc.onSceneS !== undefined) onSceneById.set(r.id, inc.onSceneS);
      if (r.created) stats.posted++;
      else stats.replayed++;
    } catch (err) {
      stats.failedPosts++;
      const e = err as Error;
      log.warn('demo: posting an incident failed', {
        incident: inc.id,
        err: e instanceof HttpError ? `${e.status} ${e.code}` : e.message,
      });
    }
  }

  const inFlight = new Set<Promise<void>>();
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
    });

  async function play(): Promise<void> {
    for (let pass = 1; !stopped; pass++) {
      const t0 = Date.now();
      log.info('demo: pass starts', { pass, incidents: passIncidents.length });
      for (let i = 0; i < passIncidents.length && !stopped; i++) {
        const inc = passIncidents[i];
        await wait(t0 + (inc.atS * 1000) / speed - Date.now());
        if (stopped) break;
        // The first post of a run decides the keys: the rest wait for it.
        const first = pass === 1 && i === 0;
        const p = report(inc, pass, first);
        if (first) await p;
        else {
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
      }
      await Promise.allSettled([...inFlight]);
      if (opts.once || stopped) return;
      await wait(t0 + (scenario.durationS * 1000) / speed - Date.now());
    }
  }

  const progress =
    (opts.progressEveryMs ?? 30_000) > 0
      ? setInterval(() => log.info('demo: progress', { ...stats }), opts.progressEveryMs ?? 30_000)
      : undefined;
  progress?.unref();

  const done = play();
  done.catch((err) => log.warn('demo: stopped on an error', { err: (err as Error).message }));

  return {
    stats,
    incidents: incidentMap,
    done,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      if (progress) clearInterval(progress);
      await done.catch(() => {});
      stopUnits();
    },
  };
}
