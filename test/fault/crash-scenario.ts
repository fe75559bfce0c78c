// Engine crash (issue #6 item 1): `dispatch serve` SIGKILLed under load, restarted on the same
// database (services: PostgreSQL + BullMQ prefix; embedded: the PGlite data dir), then checked
// against what the clients were told. Shared by test/fault/engine-crash.test.ts (short) and
// bench/fault-engine-crash.ts (long); it measures, the callers assert or print.
//
// The run:
//   1. the district has `units` units able to serve every FLOW_TYPES incident; `silent` of
//      them never acknowledge an offer (their offers stay pending until the ack deadline), the
//      others accept at once, report on scene, hold `holdMs`, then clear;
//   2. incidents are posted open-loop at `rate`/s (Idempotency-Key on each);
//   3. once `preKillMs` passed and a silent unit holds an offer whose deadline is still ahead
//      and incidents wait, the engine is SIGKILLed (with `catchActiveTimer`, services mode: at a
//      moment an ack timer job is being handled and its offer is still open — the engine is
//      SIGSTOPped while Redis and the store are looked at); the poster keeps firing on schedule
//      (those posts fail) and the engine is restarted at once on the same port and store;
//   4. `postRestartMs` more of load after /healthz answers, then every post that failed is
//      retried with its key and body until answered; a sample of answered posts is replayed;
//   5. wait until every accepted incident was accepted by a unit, then check the store.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { EngineConfig } from '../../src/engine/config.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { decodeJobId } from '../../src/queue/bullmq-queue.ts';
import {
  assignmentRows,
  checkStore,
  freePort,
  IncidentPoster,
  makeServices,
  makeUnits,
  ms,
  openAll,
  percentiles,
  pgliteSql,
  pgSql,
  type ServeProcess,
  type Sql,
  sleep,
  startServe,
  tempDir,
  tokens,
  UnitClient,
  waitAccepted,
  waitFor,
  writeDistrict,
} from './harness.ts';

export interface EngineCrashOptions {
  mode: 'services' | 'embedded';
  units: number;
  silent: number;
  holdMs: number;
  rate: number;
  preKillMs: number;
  postRestartMs: number;
  engineConfig: Partial<EngineConfig>;
  seed?: number;
  /** After the load: time allowed for every incident to be accepted by a unit (default 60 s)… */
  drainTimeoutMs?: number;
  /** … while acceptances go on: given up after this long without one (default 30 s). */
  drainStallMs?: number;
  /** Answered posts replayed with their key after the restart. */
  replaySample?: number;
  /** Services: SIGKILL while an ack timer's job is being handled (see below)… */
  catchActiveTimer?: boolean;
  /** … trying for this long at most (default 30 s), then killing anyway. */
  catchActiveTimerMs?: number;
  /**
   * Kill only once a silent unit holds an offer due later and incidents wait (default true);
   * false: at `preKillMs` whatever is pending (an overloaded engine may rarely have both).
   */
  waitForPending?: boolean;
  log?: (msg: string) => void;
}

export interface PendingAtKill {
  assignmentId: string;
  incidentId: string;
  unitId: string;
  deadline: number;
}

export interface EngineCrashResult {
  mode: string;
  posted: number;
  accepted: number;
  created: number;
  /** Posts whose first 2xx answer was 200 (the key had been committed before its answer was lost). */
  answeredReplayed: number;
  /** Posts that failed at least once (engine down) and were retried with their key. */
  retriedPosts: number;
  refused: string[];
  unanswered: number;
  /** Of those: stored by the engine all the same (the client gave up waiting); not duplicates. */
  storedUnanswered: number;
  inconsistentKeys: string[];
  replaySample: { replayed: number; wrong: number };
  lost: string[];
  duplicates: string[];
  overlapping: number;
  activeTwice: string[];
  neverAccepted: string[];
  incidentsInStore: number;
  assignments: number;
  timedOut: number;
  queuedAtKill: number;
  offeredAtKill: number;
  pendingAtKill: PendingAtKill[];
  /** Of those: ended timed_out by the restarted engine / offered to another unit after. */
  pendingTimedOutAfterRestart: number;
  pendingReoffered: number;
  pendingProblems: string[];
  /** Pending offers whose deadline came after the restarted engine listened: ended_at − deadline. */
  pendingFireLatenessMs: number[];
  /** Those whose deadline fell while the engine was down: ended_at − restart spawn. */
  overdueFiredAfterSpawnMs: number[];
  /** The offer whose ack timer job was running at the kill (catchActiveTimer), and when it
   * timed out after the restart, from /healthz 200. */
  stuckTimer?: string;
  stuckTimerFiredAfterHealthyMs?: number;
  downtimeMs: number;
  spawnToHealthyMs: number;
  spawnToAssignmentMs: number;
  healthyToAssignmentMs: number;
  gaps: number;
  reordered: number;
  duplicateOffers: number;
  resent: number;
  missedOffers: number;
  unitsReconnected: number;
  clientErrors: string[];
  /** From the end of the retries to every incident accepted by a unit. */
  drainMs: number;
  wallMs: number;
}

export async function runEngineCrash(o: EngineCrashOptions): Promise<EngineCrashResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const seed = o.seed ?? 1;
  const secret = randomBytes(32).toString('base64url');
  const dir = tempDir();
  const specs = makeUnits(o.units, seed);
  const config = writeDistrict(dir, specs);
  const svc = o.mode === 'services' ? await makeServices() : undefined;
  const port = await freePort();
  const serveOpts = {
    port,
    dataDir: dir,
    config,
    secret,
    engineConfig: o.engineConfig,
    ...(svc ? { services: svc } : {}),
  };
  const tk = tokens(secret);

  log(`starting dispatch serve (${o.mode})`);
  let s1: ServeProcess | undefined = await startServe(serveOpts);
  const silentIds = new Set(specs.slice(0, o.silent).map((u) => u.id));
  const clients = specs.map(
    (u) =>
      new UnitClient({
        url: s1!.url,
        id: u.id,
        token: () => tk.unit(u.id),
        behaviour: silentIds.has(u.id) ? 'silent' : 'ack',
        holdMs: o.holdMs,
      }),
  );
  let sql: Sql | undefined;
  let s2: ServeProcess | undefined;
  /** Stopped in `finally` whatever happens (its open loop would keep the process alive). */
  let load: IncidentPoster | undefined;
  try {
    await openAll(clients);
    log(`${clients.length} units connected; posting ${o.rate}/s`);
    const poster = new IncidentPoster(
      s1.url,
      await tk.dispatcher(),
      seed,
      `crash-${randomBytes(3).toString('hex')}`,
    );
    load = poster;
    poster.start(o.rate);
    const loadStart = Date.now();

    // ------------------------------------------------ kill mid-load, with offers pending
    /** Offers a silent unit holds whose deadline is still ahead (client view). */
    const silentPending = () => {
      const now = Date.now();
      const out: PendingAtKill[] = [];
      for (const c of clients) {
        if (!silentIds.has(c.id)) continue;
        for (const [id, offer] of c.offers) {
          const deadline = Date.parse(offer.assignment.ackDeadline ?? '');
          if (c.assignmentStatus.get(id) === 'offered' && deadline > now + 300)
            out.push({ assignmentId: id, incidentId: offer.incident.id, unitId: c.id, deadline });
        }
      }
      return out;
    };
    /** Accepted incidents not offered to any unit yet (client view). */
    const waiting = () => {
      const offered = new Set<string>();
      for (const c of clients) for (const offer of c.offers.values()) offered.add(offer.incident.id);
      return [...poster.accepted().values()].filter((id) => !offered.has(id)).length;
    };
    if (svc) sql = pgSql(svc.databaseUrl);
    // Services: the store says it (queued incidents, a silent unit's offer due later).
    const storeReady = async () => {
      const [{ q, p }] = await sql!.query<{ q: string; p: string }>(
        `SELECT (SELECT count(*) FROM incidents WHERE status = 'queued')::text AS q,
                (SELECT count(*) FROM assignments WHERE status = 'offered' AND unit_id = ANY($1)
                   AND ack_deadline > now() + interval '300 milliseconds')::text AS p`,
        [[...silentIds]],
      );
      return Number(q) >= 2 && Number(p) >= 1;
    };
    // Services: by the store alone (under heavy load the clients see offers late); embedded:
    // by what the clients saw.
    await waitFor(
      'a silent unit holding an offer while incidents wait',
      async () =>
        Date.now() - loadStart >= o.preKillMs &&
        (o.waitForPending === false ||
          (sql ? await storeReady() : silentPending().length > 0 && waiting() > 0)),
      o.preKillMs + 60_000,
      20,
    );
    let pendingAtKill = silentPending();
    let queuedAtKill = waiting();
    // Services: kill while an ack timer job is being handled (its job stays locked in Redis by
    // the dead worker) and its offer is not yet timed out — the engine is SIGSTOPped between
    // the look and the kill, so nothing moves meanwhile.
    let stuckTimer: string | undefined;
    if (svc && o.catchActiveTimer) {
      const redis = new Redis(svc.redisUrl, { maxRetriesPerRequest: 1 });
      redis.on('error', () => {});
      const end = Date.now() + (o.catchActiveTimerMs ?? 30_000);
      try {
        while (!stuckTimer && Date.now() < end) {
          s1.child.kill('SIGSTOP');
          const active = (await redis.lrange(`${svc.prefix}:${QUEUES.timers}:active`, 0, -1))
            .map(decodeJobId)
            .filter((id) => id.startsWith('ack:'))
            .map((id) => id.slice('ack:'.length).split(':')[0]);
          if (active.length > 0) {
            const open = await assignmentRows(sql!, `id = ANY($1) AND status = 'offered'`, [active]);
            if (open.length > 0) {
              stuckTimer = open[0].id;
              break;
            }
          }
          s1.child.kill('SIGCONT');
          await sleep(3);
        }
      } finally {
        redis.disconnect();
      }
      log(stuckTimer ? `caught the ack timer of ${stuckTimer} mid-run` : 'no ack timer caught mid-run');
    }
    const killAt = Date.now();
    await s1.kill();
    s1 = undefined;
    const postedAtKill = poster.posted;
    log(`SIGKILL after ${killAt - loadStart} ms of load (${postedAtKill} posted)`);

    // Services: the store right after the crash is authoritative (the engine is gone).
    let offeredAtKill = pendingAtKill.length;
    if (sql) {
      const rows = await assignmentRows(sql, `status = 'offered'`);
      offeredAtKill = rows.length;
      pendingAtKill = rows
        .filter((r) => silentIds.has(r.unit_id))
        .map((r) => ({
          assignmentId: r.id,
          incidentId: r.incident_id,
          unitId: r.unit_id,
          deadline: ms(r.ack_deadline),
        }));
      const [{ n }] = await sql.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM incidents WHERE status = 'queued'`,
      );
      queuedAtKill = Number(n);
    }

    // ------------------------------------------------ restart on the same store and port
    s2 = await startServe(serveOpts);
    const restart = { spawnedAt: s2.spawnedAt, listeningAt: s2.listeningAt, healthyAt: s2.healthyAt };
    log(`restarted: spawn → healthy ${restart.healthyAt - restart.spawnedAt} ms`);
    await sleep(o.postRestartMs);
    await poster.stop();
    await poster.retryFailed(60_000);
    const results = [...poster.results.values()];
    const replaySample = await poster.replaySome(o.replaySample ?? 20);
    const accepted = poster.accepted();
    log(`${accepted.size} posts accepted; waiting for every incident to be accepted by a unit`);

    // ------------------------------------------------ every incident reaches a unit
    const ids = [...accepted.values()];
    const drain = await waitAccepted(ids, clients, {
      maxMs: o.drainTimeoutMs ?? 60_000,
      stallMs: o.drainStallMs ?? 30_000,
      log,
    });
    // Quiet: the acking units finish their flows; offers in flight arrive.
    await Promise.race([Promise.all(clients.map((c) => c.idle())), sleep(o.holdMs + 15_000)]);
    await sleep(1000);

    // ------------------------------------------------ the store
    if (!svc) {
      await s2.stop();
      s2 = undefined;
      sql = await pgliteSql(dir);
    }
    const rep = await checkStore(sql!, accepted, new Set(poster.unanswered().map((r) => r.key)));
    const all = await assignmentRows(sql!);
    const afterRestart = all.filter((r) => ms(r.offered_at) >= restart.spawnedAt);
    const firstAssignment = Math.min(...afterRestart.map((r) => ms(r.offered_at)));

    // Offers pending at the kill: timed out by the restarted engine, then offered to another unit.
    const problems: string[] = [];
    let timedOut = 0;
    let reoffered = 0;
    const lateness: number[] = [];
    const overdueFired: number[] = [];
    const byId = new Map(all.map((r) => [r.id, r]));
    for (const p of pendingAtKill) {
      const r = byId.get(p.assignmentId);
      if (!r) {
        problems.push(`${p.assignmentId}: not in the store`);
        continue;
      }
      const ended = ms(r.ended_at);
      if (r.status !== 'timed_out') problems.push(`${p.assignmentId}: ${r.status}, not timed_out`);
      else if (!(ended >= restart.spawnedAt))
        problems.push(`${p.assignmentId}: timed out before the restart`);
      else {
        timedOut++;
        // A deadline that fell while the engine was down fires when the new one starts
        // (measured from its spawn); one that came after it was up is measured against itself.
        if (p.deadline >= restart.listeningAt) lateness.push(ended - p.deadline);
        else overdueFired.push(ended - restart.spawnedAt);
      }
      const next = all.find(
        (x) => x.incident_id === p.incidentId && x.unit_id !== p.unitId && ms(x.offered_at) >= ended,
      );
      if (next) reoffered++;
      else problems.push(`${p.incidentId}: never offered to another unit after ${p.assignmentId}`);
    }

    // Every offer in the store reached its unit's app layer.
    const clientById = new Map(clients.map((c) => [c.id, c]));
    const missedOffers = all.filter((r) => !clientById.get(r.unit_id)?.offers.has(r.id)).length;
    const sum = (f: (c: UnitClient) => number) => clients.reduce((s, c) => s + f(c), 0);

    return {
      mode: o.mode,
      posted: poster.posted,
      accepted: accepted.size,
      created: results.filter((r) => r.status === 201).length,
      answeredReplayed: results.filter((r) => r.status === 200).length,
      retriedPosts: results.filter((r) => r.attempts > 1 && r.id !== undefined).length,
      refused: results.filter((r) => r.refused).map((r) => `${r.key}: ${r.refused}`),
      unanswered: poster.unanswered().length,
      storedUnanswered: rep.storedUnanswered.length,
      inconsistentKeys: poster.inconsistent(),
      replaySample,
      lost: rep.lost,
      duplicates: rep.extra,
      overlapping: rep.overlapping.length,
      activeTwice: rep.activeTwice,
      neverAccepted: rep.neverAccepted,
      incidentsInStore: rep.incidents,
      assignments: rep.assignments,
      timedOut: rep.timedOut,
      queuedAtKill,
      offeredAtKill,
      pendingAtKill,
      pendingTimedOutAfterRestart: timedOut,
      pendingReoffered: reoffered,
      pendingProblems: problems,
      pendingFireLatenessMs: lateness,
      overdueFiredAfterSpawnMs: overdueFired,
      ...(stuckTimer
        ? {
            stuckTimer,
            stuckTimerFiredAfterHealthyMs: ms(byId.get(stuckTimer)?.ended_at) - restart.healthyAt,
          }
        : {}),
      downtimeMs: restart.healthyAt - killAt,
      spawnToHealthyMs: restart.healthyAt - restart.spawnedAt,
      spawnToAssignmentMs: firstAssignment - restart.spawnedAt,
      healthyToAssignmentMs: firstAssignment - restart.healthyAt,
      gaps: sum((c) => c.stats.gaps),
      reordered: sum((c) => c.stats.reordered),
      duplicateOffers: sum((c) => c.stats.duplicateOffers),
      resent: sum((c) => c.stats.resent),
      missedOffers,
      unitsReconnected: clients.filter((c) => c.connects >= 2).length,
      clientErrors: [...new Set(clients.flatMap((c) => c.serverErrors))],
      drainMs: drain.ms,
      wallMs: Date.now() - t0,
    };
  } finally {
    await load?.stop().catch(() => {});
    for (const c of clients) c.close();
    if (sql) await sql.close().catch(() => {});
    if (s2) await s2.stop().catch(() => {});
    if (s1) await s1.kill().catch(() => {});
  }
}

/** The figures line of a run. */
export function crashFigures(r: EngineCrashResult): Record<string, unknown> {
  const lat = percentiles(r.pendingFireLatenessMs);
  const overdue = percentiles(r.overdueFiredAfterSpawnMs);
  return {
    mode: r.mode,
    posted: r.posted,
    accepted: r.accepted,
    merged: r.accepted - (r.incidentsInStore - r.storedUnanswered),
    unanswered: r.unanswered,
    storedUnanswered: r.storedUnanswered,
    retried: r.retriedPosts,
    replayed200: r.answeredReplayed,
    lost: r.lost.length,
    duplicates: r.duplicates.length,
    doubleBooked: r.overlapping + r.activeTwice.length,
    neverAssigned: r.neverAccepted.length,
    queuedAtKill: r.queuedAtKill,
    offeredAtKill: r.offeredAtKill,
    pendingAtKill: r.pendingAtKill.length,
    pendingTimedOut: r.pendingTimedOutAfterRestart,
    pendingReoffered: r.pendingReoffered,
    timersOnTime: lat.n,
    timerLatenessMsMax: lat.max,
    timersOverdue: overdue.n,
    overdueFiredAfterSpawnMsMax: overdue.max,
    ...(r.stuckTimer ? { stuckTimerFiredAfterHealthyMs: r.stuckTimerFiredAfterHealthyMs } : {}),
    downtimeMs: r.downtimeMs,
    spawnToHealthyMs: r.spawnToHealthyMs,
    spawnToAssignMs: r.spawnToAssignmentMs,
    healthyToAssignMs: r.healthyToAssignmentMs,
    gaps: r.gaps,
    dupOffers: r.duplicateOffers,
    missedOffers: r.missedOffers,
    drainS: Math.round(r.drainMs / 1000),
    wallS: Math.round(r.wallMs / 1000),
  };
}
