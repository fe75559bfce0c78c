// Redis restart (issue #6 item 3): `dispatch serve` in services mode on a private
// redis-server, which is SIGKILLed under load and started again on the same port with nothing
// in it — the delayed timer jobs, the queued decision and the relayed outbox jobs are gone.
// Shared by test/fault/redis-restart.test.ts (short) and bench/fault-redis-restart.ts (long).
//
// The run:
//   1. `units` units (`silent` of them never acknowledge), incidents posted open-loop at
//      `rate`/s, each with a reporter callback to a receiver in this process (so each has an
//      intake job: the engine writes one only for a webhook reporter), ack deadlines of `ackTimeoutS`, sweep period `sweepIntervalMs` (default: the
//      engine's 30 s);
//   2. after `preKillMs`, once silent units hold offers whose deadlines fall after Redis is
//      back: the decisions queue is paused (BullMQ global pause, so the engine's next `decide`
//      job is sure to sit in Redis — a decision queued but not yet taken, as happens under
//      load), and once a decide job waits there, Redis is SIGKILLed;
//   3. `downMs` later redis-server starts again, empty, on the same port; the load goes on for
//      `postRestartMs`, then failed posts are retried with their key;
//   4. wait until every accepted incident was accepted by a unit, then check and measure:
//      - resume: from Redis answering PING again to the first assignment the engine makes
//        (decisions), to the first job completed in the new Redis by the timers worker and by
//        the intake worker (outbox relay + worker);
//      - the ack timers of the offers pending at the kill (their jobs died with Redis): each
//        ends `timed_out`; lateness = ended_at − ack_deadline;
//      - the invariants of the crash test: nothing lost, nothing doubled, no unit double-booked,
//        every incident accepted by a unit, no socket gap.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '../../src/engine/jobs.ts';
import {
  assignmentRows,
  checkStore,
  freePort,
  IncidentPoster,
  makeServices,
  makeUnits,
  ms,
  openAll,
  PrivateRedis,
  percentiles,
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

export interface RedisRestartOptions {
  units: number;
  silent: number;
  holdMs: number;
  rate: number;
  preKillMs: number;
  downMs: number;
  postRestartMs: number;
  ackTimeoutS: number;
  /** Default: the engine's (30 s), so only the reconnect-triggered sweep can be quick. */
  sweepIntervalMs?: number;
  seed?: number;
  drainTimeoutMs?: number;
  drainStallMs?: number;
  log?: (msg: string) => void;
}

export interface PendingTimer {
  assignmentId: string;
  unitId: string;
  incidentId: string;
  deadline: number;
  status?: string;
  endedAt?: number;
  /** endedAt − deadline (ms). */
  latenessMs?: number;
}

export interface RedisRestartResult {
  posted: number;
  accepted: number;
  refused: string[];
  unanswered: number;
  inconsistentKeys: string[];
  lost: string[];
  duplicates: string[];
  overlapping: number;
  activeTwice: string[];
  neverAccepted: string[];
  /** Redis down: SIGKILL → PING answered again. */
  redisDownMs: number;
  /** A `decide` job was waiting in Redis when it died. */
  decideJobLost: boolean;
  /**
   * From Redis back to the first assignment; the first timers / intake job completed in the new
   * Redis, measured from when it could first run (Redis back, or a timer's due time).
   */
  decisionsResumeMs: number;
  timersResumeMs: number;
  intakeResumeMs: number;
  /** Offers of silent units pending at the kill (ack timer jobs lost with Redis). */
  pending: PendingTimer[];
  /** Those whose deadline fell while Redis was down / after it was back. */
  latenessDuringOutageMs: number[];
  latenessAfterOutageMs: number[];
  pendingNotTimedOut: string[];
  /** Ack timers completed in the new Redis under a lost timer's id: re-armed by the sweep. */
  rearmedInNewRedis: number;
  /** POSTs sent while Redis was down: answered, and their response times. */
  postsDuringOutage: number;
  postsDuringOutageFailed: number;
  postMsDuringOutage: number[];
  gaps: number;
  reordered: number;
  duplicateOffers: number;
  missedOffers: number;
  wallMs: number;
}

/**
 * Jobs completed in `queue` of this Redis: the ids, and for the first one finished at or after
 * `since` (epoch ms) how long after it could run it finished — after `since` or, for a delayed
 * job (a timer), after its due time if later. NaN when none.
 */
async function firstCompleted(redisUrl: string, prefix: string, queue: string, since: number) {
  const q = new Queue(queue, { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix });
  try {
    const jobs = await q.getJobs(['completed'], 0, -1, true);
    const after = jobs
      .filter((j) => (j.finishedOn ?? 0) >= since)
      .sort((a, b) => (a.finishedOn ?? 0) - (b.finishedOn ?? 0));
    const j = after[0];
    const lagMs = j ? j.finishedOn! - Math.max(since, j.timestamp + (j.delay ?? 0)) : Number.NaN;
    return { lagMs, ids: jobs.map((x) => x.id ?? '') };
  } finally {
    await q.close();
  }
}

export async function runRedisRestart(o: RedisRestartOptions): Promise<RedisRestartResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const seed = o.seed ?? 1;
  const secret = randomBytes(32).toString('base64url');
  const dir = tempDir();
  const specs = makeUnits(o.units, seed);
  const config = writeDistrict(dir, specs);
  const redis = await PrivateRedis.start();
  // The reporters' webhook receiver: takes every update (their content is the webhook
  // tests' business, test/fault/worker-crash.test.ts).
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const callback = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/reporter`;
  const svc = await makeServices(redis.url);
  const port = await freePort();
  const tk = tokens(secret);
  const serve: ServeProcess = await startServe({
    port,
    dataDir: dir,
    config,
    secret,
    services: svc,
    engineConfig: {
      ackTimeoutS: o.ackTimeoutS,
      ackTimeoutOtherS: o.ackTimeoutS,
      // Every decision through the decisions queue, none inline in the batch that asks: the
      // decide job that must sit in Redis at the kill (step 2) then comes with any incident.
      decideInline: false,
      callbackAllowHttp: true,
      callbackAllowPrivate: true,
      ...(o.sweepIntervalMs !== undefined ? { sweepIntervalMs: o.sweepIntervalMs } : {}),
    },
  });
  const silentIds = new Set(specs.slice(0, o.silent).map((u) => u.id));
  const clients = specs.map(
    (u) =>
      new UnitClient({
        url: serve.url,
        id: u.id,
        token: () => tk.unit(u.id),
        behaviour: silentIds.has(u.id) ? 'silent' : 'ack',
        holdMs: o.holdMs,
      }),
  );
  const sql: Sql = pgSql(svc.databaseUrl);
  const probe = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  probe.on('error', () => {});
  /** Stopped in `finally` whatever happens (its open loop would keep the process alive). */
  let load: IncidentPoster | undefined;
  try {
    await openAll(clients);
    const poster = new IncidentPoster(
      serve.url,
      await tk.dispatcher(),
      seed,
      `redis-${randomBytes(3).toString('hex')}`,
      callback,
    );
    load = poster;
    poster.start(o.rate);
    const loadStart = Date.now();
    log(`${clients.length} units connected; posting ${o.rate}/s`);

    // ------------------------------------------------ offers pending past the outage, a decide job in Redis
    const horizon = () => Date.now() + o.downMs + 1500;
    await waitFor(
      'silent units holding offers whose deadlines fall after the outage',
      async () => {
        if (Date.now() - loadStart < o.preKillMs) return false;
        const rows = await assignmentRows(sql, `status = 'offered' AND ack_deadline > to_timestamp($1)`, [
          horizon() / 1000,
        ]);
        return rows.filter((r) => silentIds.has(r.unit_id)).length >= Math.min(2, o.silent);
      },
      60_000,
      50,
    );
    const decisions = new Queue(QUEUES.decisions, {
      connection: { url: redis.url, maxRetriesPerRequest: 1 },
      prefix: svc.prefix,
    });
    decisions.on('error', () => {});
    await decisions.pause();
    const decideJobLost = await waitFor(
      'a decide job waiting in Redis',
      async () => {
        const c = await decisions.getJobCounts('wait');
        return (c.wait ?? 0) > 0;
      },
      20_000,
      10,
    )
      .then(async () => {
        await sleep(200); // the engine has long read the reply of its add
        return true;
      })
      .catch(() => false);
    await decisions.close().catch(() => {});
    const pendingRows = (await assignmentRows(sql, `status = 'offered'`)).filter((r) =>
      silentIds.has(r.unit_id),
    );
    const killAt = await redis.kill();
    log(`Redis SIGKILLed after ${killAt - loadStart} ms of load (decide job lost: ${decideJobLost})`);
    await sleep(o.downMs);
    const backAt = await redis.launch();
    log(`Redis back, empty, ${backAt - killAt} ms after the kill`);
    await sleep(o.postRestartMs);
    await poster.stop();
    await poster.retryFailed(60_000);
    const accepted = poster.accepted();
    const ids = [...accepted.values()];
    await waitAccepted(ids, clients, {
      maxMs: o.drainTimeoutMs ?? 60_000,
      stallMs: o.drainStallMs ?? 30_000,
      log,
    });
    // The pending offers' timers must have fired (they have long passed).
    const pendingIds = pendingRows.map((r) => r.id);
    await waitFor(
      'the ack timers of the offers pending at the kill',
      async () =>
        (await assignmentRows(sql, `id = ANY($1) AND status = 'offered'`, [pendingIds])).length === 0,
      Math.max(10_000, o.ackTimeoutS * 3000),
      200,
    ).catch((e) => log((e as Error).message));
    await Promise.race([Promise.all(clients.map((c) => c.idle())), sleep(o.holdMs + 15_000)]);
    await sleep(1000);

    // ------------------------------------------------ figures
    const rep = await checkStore(sql, accepted);
    const all = await assignmentRows(sql);
    const byId = new Map(all.map((r) => [r.id, r]));
    const firstAssignment = Math.min(...all.map((r) => ms(r.offered_at)).filter((t) => t >= backAt));
    const timers = await firstCompleted(redis.url, svc.prefix, QUEUES.timers, backAt);
    const intake = await firstCompleted(redis.url, svc.prefix, QUEUES.intake, backAt);
    const pending: PendingTimer[] = pendingRows.map((r) => {
      const now = byId.get(r.id);
      const deadline = ms(r.ack_deadline);
      const endedAt = now?.ended_at ? ms(now.ended_at) : undefined;
      return {
        assignmentId: r.id,
        unitId: r.unit_id,
        incidentId: r.incident_id,
        deadline,
        ...(now ? { status: now.status } : {}),
        ...(endedAt !== undefined ? { endedAt, latenessMs: endedAt - deadline } : {}),
      };
    });
    const timedOut = pending.filter((p) => p.status === 'timed_out');
    const encoded = new Set(timers.ids);
    const rearmed = pending.filter((p) => encoded.has(`jack%3A${p.assignmentId}`)).length;
    // Posts sent while Redis was down.
    const during = [...poster.results.values()].filter(
      (r) => r.firstSentAt >= killAt && r.firstSentAt < backAt,
    );
    const clientById = new Map(clients.map((c) => [c.id, c]));
    const sum = (f: (c: UnitClient) => number) => clients.reduce((s, c) => s + f(c), 0);
    const results = [...poster.results.values()];
    return {
      posted: poster.posted,
      accepted: accepted.size,
      refused: results.filter((r) => r.refused).map((r) => `${r.key}: ${r.refused}`),
      unanswered: poster.unanswered().length,
      inconsistentKeys: poster.inconsistent(),
      lost: rep.lost,
      duplicates: rep.extra,
      overlapping: rep.overlapping.length,
      activeTwice: rep.activeTwice,
      neverAccepted: rep.neverAccepted,
      redisDownMs: backAt - killAt,
      decideJobLost,
      decisionsResumeMs: firstAssignment - backAt,
      timersResumeMs: timers.lagMs,
      intakeResumeMs: intake.lagMs,
      pending,
      latenessDuringOutageMs: timedOut.filter((p) => p.deadline < backAt).map((p) => p.latenessMs!),
      latenessAfterOutageMs: timedOut.filter((p) => p.deadline >= backAt).map((p) => p.latenessMs!),
      pendingNotTimedOut: pending
        .filter((p) => p.status !== 'timed_out')
        .map((p) => `${p.assignmentId}: ${p.status}`),
      rearmedInNewRedis: rearmed,
      postsDuringOutage: during.length,
      postsDuringOutageFailed: during.filter((r) => r.attempts > 1 || r.id === undefined).length,
      postMsDuringOutage: during
        .filter((r) => r.attempts === 1 && r.answeredAt !== undefined)
        .map((r) => r.answeredAt! - r.firstSentAt),
      gaps: sum((c) => c.stats.gaps),
      reordered: sum((c) => c.stats.reordered),
      duplicateOffers: sum((c) => c.stats.duplicateOffers),
      missedOffers: all.filter((r) => !clientById.get(r.unit_id)?.offers.has(r.id)).length,
      wallMs: Date.now() - t0,
    };
  } finally {
    await load?.stop().catch(() => {});
    probe.disconnect();
    for (const c of clients) c.close();
    await sql.close().catch(() => {});
    await serve.stop().catch(() => {});
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
}

export function redisFigures(r: RedisRestartResult): Record<string, unknown> {
  const during = percentiles(r.latenessDuringOutageMs);
  const after = percentiles(r.latenessAfterOutageMs);
  const post = percentiles(r.postMsDuringOutage);
  return {
    posted: r.posted,
    accepted: r.accepted,
    lost: r.lost.length,
    duplicates: r.duplicates.length,
    doubleBooked: r.overlapping + r.activeTwice.length,
    neverAssigned: r.neverAccepted.length,
    redisDownMs: r.redisDownMs,
    decideJobLost: r.decideJobLost,
    decisionsResumeMs: r.decisionsResumeMs,
    timersResumeMs: r.timersResumeMs,
    intakeResumeMs: r.intakeResumeMs,
    pendingTimers: r.pending.length,
    rearmedBySweep: r.rearmedInNewRedis,
    lateMsDuringOutageMax: during.max,
    lateMsAfterOutage: `${after.n} timers p50 ${after.p50} max ${after.max}`,
    postsDuringOutage: r.postsDuringOutage,
    postsDuringOutageFailed: r.postsDuringOutageFailed,
    postMsDuringOutageMax: post.max,
    gaps: r.gaps,
    dupOffers: r.duplicateOffers,
    missedOffers: r.missedOffers,
    wallS: Math.round(r.wallMs / 1000),
  };
}
