// Worker crash (issue #6 item 2): `dispatch worker` processes SIGKILLed under load, each
// replaced at once, while `dispatch serve` (services mode, DISPATCH_WORKERS=core) leaves them
// the notifications queue and the webhook sender. Shared by test/fault/worker-crash.test.ts
// (short) and bench/fault-worker-crash.ts (long); it measures, the callers assert or print.
//
// The run:
//   1. serve on its own PostgreSQL database and BullMQ prefix, `workers` worker processes
//      (`--lease-s` short, so that a killed sender's claims lapse within seconds); every
//      incident is posted with a reporter callback URL pointing at a real node:http receiver
//      in this process (plain http to 127.0.0.1: callbackAllowHttp / callbackAllowPrivate),
//      which verifies each signature and answers 200 after `receiverDelayMs` (random up to);
//   2. `units` socket.io units accept every offer, report on scene, hold `holdMs`, clear —
//      so each incident goes received → assigned → on scene → resolved, one `reporter.notify`
//      job per change;
//   3. every `killEveryMs` one worker (the oldest) is SIGKILLed and a replacement started.
//      Odd kills try (up to `catchMs`) to catch it holding a job: it is SIGSTOPped while Redis
//      is looked at (active jobs whose `processedBy` is its name). Even kills try to catch it
//      mid-POST: stopped, then after `settleMs` (the other senders record their outcomes) the
//      deliveries the receiver had got before the stop but still pending are its own;
//   4. after `durationMs` the load stops, failed posts are retried with their key, and the run
//      waits until every public update of every incident (from its timeline in the store) has
//      reached the receiver, the delivery table has nothing pending and the queue is empty.
//
// Checked by the callers: every update received, in order per incident, bodies as recorded;
// duplicates by Idempotency-Key counted, each explained (at least once: a sender killed
// after its POST and before recording it, or an attempt recorded as failed that had reached
// the receiver) — never two sends of one update within CLAIM_MARGIN_S of each other, which
// the claims rule out (that would be concurrent double sending);
// no dead letters, nothing pending; 0 lost `reporter.notify` jobs: every such outbox row was
// relayed and its BullMQ job completed (none failed, none left waiting or active); the jobs
// the killed workers held ran again (kill → re-delivery delay); units: no seq gap, no
// duplicate offer.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { EngineConfig } from '../../src/engine/config.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import {
  CLAIM_MARGIN_S,
  publicUpdates,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhook,
} from '../../src/engine/webhooks.ts';
import { decodeJobId, encodeJobId } from '../../src/queue/bullmq-queue.ts';
import type { StoredEvent } from '../../src/store/store.ts';
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
  pgSql,
  type ServeProcess,
  type Sql,
  sleep,
  startServe,
  startWorker,
  tempDir,
  tokens,
  UnitClient,
  type WorkerProcess,
  waitAccepted,
  waitFor,
  writeDistrict,
} from './harness.ts';

export interface WorkerCrashOptions {
  units: number;
  holdMs: number;
  /** Incidents per second, posted for `durationMs`. */
  rate: number;
  durationMs: number;
  /** Worker processes running at any time. */
  workers: number;
  killEveryMs: number;
  /** At most this many kills (default: as many as fit in `durationMs`). */
  maxKills?: number;
  /**
   * Try this long to kill a worker while it holds a job (odd kills) or has a POST in flight
   * (even kills: stopped, then the deliveries the receiver got but still pending after
   * `settleMs` are its), default 3000 ms.
   */
  catchMs?: number;
  settleMs?: number;
  /** The worker's --lease-s (default 5) and engine callbackTimeoutMs (default 2000). */
  leaseS?: number;
  callbackTimeoutMs?: number;
  /** Extra worker arguments (--lock-ms …). */
  workerArgs?: string[];
  /** The receiver answers after a random delay up to this (default 50 ms). */
  receiverDelayMs?: number;
  engineConfig?: Partial<EngineConfig>;
  seed?: number;
  /** After the load: time allowed for everything to arrive (default 90 s). */
  drainTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface KillRecord {
  at: number;
  victim: string;
  /** What the kill tried to catch the victim doing: handling a job, or mid-POST. */
  mode: 'job' | 'post';
  /** Job ids (decoded) the victim held (active, processedBy it) when killed. */
  held: string[];
  /**
   * 'post': idempotency keys the receiver had got while their delivery was still pending
   * with the victim stopped (its POSTs in flight, their outcome never to be recorded).
   */
  unrecorded: string[];
}

export interface HeldJob {
  id: string;
  killedAt: number;
  /** The job's state afterwards, who ran it last, when that run started, its stall count. */
  state: string;
  processedBy?: string;
  redeliveredAfterMs?: number;
  stalled: number;
}

export interface WorkerCrashResult {
  posted: number;
  accepted: number;
  unanswered: number;
  refused: string[];
  kills: KillRecord[];
  workersStarted: number;
  /** Exit codes of the workers alive at the end, stopped with SIGTERM. */
  workerExitCodes: (number | null)[];
  /** reporter.notify outbox rows, and those not relayed (done_at null). */
  notifyRows: number;
  notRelayed: number;
  /** Outbox rows whose job is not in the completed set (lost, failed or still pending). */
  lostJobs: string[];
  /** Jobs in the notifications queue's failed set; left waiting / active / delayed. */
  failedJobs: number;
  leftInQueue: number;
  /** Notification jobs given back to wait at least once by the stalled check (stc ≥ 1). */
  redelivered: number;
  heldAtKill: HeldJob[];
  /** Public updates expected (from the incidents' timelines) and received. */
  expectedUpdates: number;
  receivedKeys: number;
  receipts: number;
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Incidents whose updates arrived out of order or with another status than recorded. */
  outOfOrder: string[];
  wrongBody: string[];
  badSignatures: number;
  /** Keys received more than once; those explained by a kill; the others (double sends). */
  duplicateKeys: number;
  duplicatesAfterKill: number;
  /** Re-sent after an attempt recorded as failed had reached the receiver (a timeout). */
  duplicatesAfterFailure: number;
  duplicatesUnexplained: string[];
  /** Delivery rows dead / still pending at the end. */
  deadLetters: number;
  pendingDeliveries: number;
  /** A duplicate's second receipt after the kill that explains it. */
  resendAfterKillMs: number[];
  /** Keys unrecorded at a mid-POST kill, and how many of them were received again later. */
  unrecordedAtKill: number;
  unrecordedResent: number;
  /** Keys taken for the victim's that a slow survivor had sent and recorded after all. */
  unrecordedNotVictims: number;
  /** Timeline event → first receipt at the receiver, per update. */
  webhookLagMs: number[];
  lostIncidents: string[];
  neverAccepted: string[];
  gaps: number;
  reordered: number;
  duplicateOffers: number;
  missedOffers: number;
  drainMs: number;
  wallMs: number;
}

interface Receipt {
  key: string;
  incidentId: string;
  seq: number;
  status: string;
  at: number;
}

/** A webhook receiver on 127.0.0.1: verifies signatures, records every POST, answers 200. */
class Receiver {
  readonly receipts: Receipt[] = [];
  badSignatures = 0;
  private server?: Server;
  port = 0;

  constructor(
    private readonly secret: string,
    private readonly delayMs: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/reporter`;
  }

  async start(): Promise<void> {
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        const ok = verifyWebhook(
          this.secret,
          {
            signature: String(req.headers[SIGNATURE_HEADER]),
            timestamp: String(req.headers[TIMESTAMP_HEADER]),
          },
          body,
          Date.now() / 1000,
        );
        if (!ok) {
          this.badSignatures++;
          res.writeHead(401).end();
          return;
        }
        const b = JSON.parse(body) as { incidentId: string; sequence: number; status: string };
        this.receipts.push({
          key: String(req.headers['idempotency-key']),
          incidentId: b.incidentId,
          seq: b.sequence,
          status: b.status,
          at: Date.now(),
        });
        const answer = () => {
          if (!res.destroyed) res.writeHead(200).end();
        };
        if (this.delayMs > 0) setTimeout(answer, Math.random() * this.delayMs);
        else answer();
      });
    });
    server.keepAliveTimeout = 1;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** An incident's expected public updates, from its timeline in the store. */
async function expectedUpdates(
  sql: Sql,
  ids: string[],
): Promise<Map<string, { seq: number; status: string; at: number }[]>> {
  const rows = await sql.query<{ incident_id: string; kind: string; unit_id: string | null; at: Date }>(
    'SELECT incident_id, kind, unit_id, at FROM events WHERE incident_id = ANY($1) ORDER BY id',
    [ids],
  );
  const byIncident = new Map<string, StoredEvent[]>();
  for (const r of rows) {
    const l = byIncident.get(r.incident_id) ?? [];
    byIncident.set(r.incident_id, l);
    l.push({
      kind: r.kind,
      at: ms(r.at) / 1000,
      ...(r.unit_id !== null ? { unitId: r.unit_id } : {}),
    } as unknown as StoredEvent);
  }
  const out = new Map<string, { seq: number; status: string; at: number }[]>();
  for (const id of ids) out.set(id, publicUpdates(byIncident.get(id) ?? []));
  return out;
}

export async function runWorkerCrash(o: WorkerCrashOptions): Promise<WorkerCrashResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const seed = o.seed ?? 1;
  const secret = randomBytes(32).toString('base64url');
  const webhookSecret = randomBytes(32).toString('base64url');
  const dir = tempDir();
  const specs = makeUnits(o.units, seed);
  const config = writeDistrict(dir, specs);
  const svc = await makeServices();
  const leaseS = o.leaseS ?? 5;
  const timeoutMs = o.callbackTimeoutMs ?? 2000;
  const engineConfig: Partial<EngineConfig> = {
    callbackAllowHttp: true,
    callbackAllowPrivate: true,
    callbackTimeoutMs: timeoutMs,
    ...o.engineConfig,
  };
  const env = { DISPATCH_WEBHOOK_SECRET: webhookSecret };
  const receiver = new Receiver(webhookSecret, o.receiverDelayMs ?? 50);
  await receiver.start();
  const tk = tokens(secret);

  log('starting dispatch serve (services, DISPATCH_WORKERS=core)');
  const serve: ServeProcess = await startServe({
    port: await freePort(),
    dataDir: dir,
    config,
    secret,
    services: svc,
    engineConfig,
    env: { ...env, DISPATCH_WORKERS: 'core' },
  });
  const workerOpts = {
    dataDir: dir,
    secret,
    services: svc,
    engineConfig,
    env,
    args: ['--lease-s', String(leaseS), ...(o.workerArgs ?? [])],
  };
  let started = 0;
  const spawnWorker = async () => {
    started++;
    return startWorker(workerOpts);
  };
  const live: WorkerProcess[] = await Promise.all(Array.from({ length: o.workers }, spawnWorker));
  log(`${live.length} workers ready: ${live.map((w) => w.name).join(', ')}`);

  const clients = specs.map(
    (u) =>
      new UnitClient({
        url: serve.url,
        id: u.id,
        token: () => tk.unit(u.id),
        behaviour: 'ack',
        holdMs: o.holdMs,
      }),
  );
  const sql = pgSql(svc.databaseUrl);
  const redis = new Redis(svc.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const qkey = (k: string) => `${svc.prefix}:${QUEUES.notifications}:${k}`;
  let load: IncidentPoster | undefined;
  let killer: Promise<void> | undefined;
  let stopKilling = false;
  try {
    await openAll(clients);
    const poster = new IncidentPoster(
      serve.url,
      await tk.dispatcher(),
      seed,
      `wcrash-${randomBytes(3).toString('hex')}`,
      receiver.url,
    );
    load = poster;
    log(`${clients.length} units connected; posting ${o.rate}/s for ${o.durationMs} ms`);
    poster.start(o.rate);
    const loadStart = Date.now();

    // ------------------------------------------------ the killer
    const kills: KillRecord[] = [];
    const maxKills = o.maxKills ?? Math.floor((o.durationMs - 1) / o.killEveryMs);
    const catchMs = o.catchMs ?? 3000;
    const settleMs = o.settleMs ?? 250;
    killer = (async () => {
      for (let k = 1; k <= maxKills && !stopKilling; k++) {
        const due = loadStart + k * o.killEveryMs;
        while (!stopKilling && Date.now() < due) await sleep(Math.min(50, due - Date.now()));
        if (stopKilling) return;
        const victim = live.shift()!;
        const mode = k % 2 === 1 ? 'job' : 'post';
        // Caught if possible: stopped while Redis (a job it holds) or the receiver and the
        // store (a POST of it answered but not recorded) are looked at.
        let held: string[] = [];
        let unrecorded: string[] = [];
        const end = Date.now() + catchMs;
        while (Date.now() < end) {
          victim.child.kill('SIGSTOP');
          // What the receiver got before the stop (later ones are the other senders').
          const gotBefore = new Set(receiver.receipts.map((r) => r.key));
          if (mode === 'job') {
            const active = await redis.lrange(qkey('active'), 0, -1);
            if (active.length > 0) {
              const pbs = await Promise.all(active.map((id) => redis.hget(qkey(id), 'pb')));
              held = active.filter((_, i) => pbs[i] === victim.name).map(decodeJobId);
            }
            if (held.length > 0) break;
          } else {
            // The other senders record their outcomes meanwhile; what stays is the victim's.
            await sleep(settleMs);
            const pending = await sql.query<{ key: string }>(
              `SELECT idempotency_key AS key FROM webhook_deliveries
                WHERE state = 'pending' AND claimed_until IS NOT NULL`,
            );
            unrecorded = pending.map((p) => p.key).filter((key) => gotBefore.has(key));
            if (unrecorded.length > 0) break;
          }
          victim.child.kill('SIGCONT');
          await sleep(mode === 'job' ? 5 : 20);
        }
        const at = Date.now();
        await victim.kill();
        kills.push({ at, victim: victim.name, mode, held, unrecorded });
        log(
          `kill ${k} (${mode}): ${victim.name} (${held.length} job(s) held, ${unrecorded.length} POST(s) unrecorded) after ${at - loadStart} ms`,
        );
        live.push(await spawnWorker());
      }
    })();

    await sleep(o.durationMs);
    stopKilling = true;
    await killer;
    await poster.stop();
    await poster.retryFailed(60_000);
    const results = [...poster.results.values()];
    const accepted = poster.accepted();
    const ids = [...new Set(accepted.values())];
    log(`${accepted.size} posts accepted, ${kills.length} kills; draining`);

    // ------------------------------------------------ everything arrives
    const drainStart = Date.now();
    await waitAccepted(ids, clients, { maxMs: o.drainTimeoutMs ?? 90_000, stallMs: 30_000, log });
    await Promise.race([Promise.all(clients.map((c) => c.idle())), sleep(o.holdMs + 15_000)]);
    let expected = new Map<string, { seq: number; status: string; at: number }[]>();
    const missing = () => {
      const got = new Set(receiver.receipts.map((r) => r.key));
      const out: string[] = [];
      for (const [id, ups] of expected)
        for (const u of ups) if (!got.has(`${id}:${u.seq}`)) out.push(`${id}:${u.seq}`);
      return out;
    };
    const settled = async () => {
      expected = await expectedUpdates(sql, ids);
      if (missing().length > 0) return false;
      const [{ n }] = await sql.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM webhook_deliveries WHERE state = 'pending'`,
      );
      if (Number(n) > 0) return false;
      const [[, w], [, a], [, d]] = (await redis
        .multi()
        .llen(qkey('wait'))
        .llen(qkey('active'))
        .zcard(qkey('delayed'))
        .exec()) as [Error | null, number][];
      return w + a + d === 0;
    };
    try {
      await waitFor(
        'every update at the receiver, nothing pending',
        settled,
        o.drainTimeoutMs ?? 90_000,
        250,
      );
    } catch (err) {
      log((err as Error).message);
    }
    const drainMs = Date.now() - drainStart;
    // Late re-sends (a lapsed claim) would show now.
    await sleep(500);
    // The workers left stop gracefully (SIGTERM: exit 0).
    const workerExitCodes = await Promise.all(live.map((w) => w.stop()));

    // ------------------------------------------------ the receiver's view
    const receipts = [...receiver.receipts];
    const firstAt = new Map<string, number>();
    const byKey = new Map<string, Receipt[]>();
    for (const r of receipts) {
      if (!firstAt.has(r.key)) firstAt.set(r.key, r.at);
      const l = byKey.get(r.key) ?? [];
      byKey.set(r.key, l);
      l.push(r);
    }
    const expectedKeys = new Set<string>();
    const outOfOrder: string[] = [];
    const wrongBody: string[] = [];
    const lag: number[] = [];
    for (const [id, ups] of expected) {
      for (const u of ups) {
        const key = `${id}:${u.seq}`;
        expectedKeys.add(key);
        const first = byKey.get(key)?.[0];
        if (first) {
          if (first.status !== u.status) wrongBody.push(key);
          lag.push(first.at - u.at * 1000);
        }
      }
      // First receipts in seq order.
      const order = receipts.filter((r) => r.incidentId === id && firstAt.get(r.key) === r.at);
      const seqs = [...new Set(order.map((r) => r.seq))];
      if (seqs.some((s, i) => s !== i + 1)) outOfOrder.push(id);
    }
    const unexpectedKeys = [...byKey.keys()].filter((k) => !expectedKeys.has(k));

    // Duplicates. A second send of one update is only possible once the first sender's claim
    // lapsed (an attempt only starts while its claim outlasts it: timeout + margin), so two
    // receipts of a key less than CLAIM_MARGIN_S apart are a concurrent double send. Otherwise
    // it is at least once: a sender killed after its POST and before recording it (a kill in
    // between), or an attempt recorded as failed though it reached the receiver (a timeout
    // under load: the delivery shows ≥ 2 attempts).
    let duplicateKeys = 0;
    let duplicatesAfterKill = 0;
    let duplicatesAfterFailure = 0;
    const unexplained: string[] = [];
    const resendAfterKill: number[] = [];
    const dupKeys = [...byKey].filter(([, rs]) => rs.length > 1).map(([k]) => k);
    const attemptsOf = new Map(
      (
        await sql.query<{ key: string; attempts: number }>(
          'SELECT idempotency_key AS key, attempts FROM webhook_deliveries WHERE idempotency_key = ANY($1)',
          [dupKeys],
        )
      ).map((r) => [r.key, Number(r.attempts)]),
    );
    for (const key of dupKeys) {
      const rs = byKey.get(key)!;
      duplicateKeys++;
      let why: 'kill' | 'failure' | undefined = 'kill';
      for (let i = 1; i < rs.length && why; i++) {
        const prev = rs[i - 1].at;
        const kill = kills.find((k) => k.at >= prev - timeoutMs && k.at <= rs[i].at);
        if (rs[i].at - prev < CLAIM_MARGIN_S * 1000) why = undefined;
        else if (kill) resendAfterKill.push(rs[i].at - kill.at);
        else why = (attemptsOf.get(key) ?? 0) >= 2 ? 'failure' : undefined;
      }
      if (why === 'kill') duplicatesAfterKill++;
      else if (why === 'failure') duplicatesAfterFailure++;
      else unexplained.push(`${key} ×${rs.length} at ${rs.map((r) => r.at - t0).join(', ')} ms`);
    }

    // A key taken for the victim's may have been a slow survivor's after all (its outcome
    // recorded over `settleMs` after its POST): received once and recorded around the kill.
    // The victim's can only be recorded once its claim lapsed, seconds after the kill.
    let unrecordedAtKill = 0;
    let unrecordedResent = 0;
    let unrecordedNotVictims = 0;
    for (const k of kills) {
      if (k.unrecorded.length === 0) continue;
      const rows = await sql.query<{ key: string; delivered_at: Date | null }>(
        'SELECT idempotency_key AS key, delivered_at FROM webhook_deliveries WHERE idempotency_key = ANY($1)',
        [k.unrecorded],
      );
      for (const row of rows) {
        const n = byKey.get(row.key)?.length ?? 0;
        if (n === 1 && ms(row.delivered_at) - k.at < 1000) unrecordedNotVictims++;
        else {
          unrecordedAtKill++;
          if (n >= 2) unrecordedResent++;
        }
      }
    }

    // ------------------------------------------------ the jobs
    const notify = await sql.query<{ id: string; done: boolean }>(
      `SELECT id::text AS id, done_at IS NOT NULL AS done FROM outbox WHERE topic = 'reporter.notify'`,
    );
    const completedScores = await Promise.all(
      notify.map((r) => redis.zscore(qkey('completed'), encodeJobId(`outbox:${r.id}`))),
    );
    const lostJobs = notify.filter((_, i) => completedScores[i] === null).map((r) => `outbox:${r.id}`);
    const counts = (await redis
      .multi()
      .zcard(qkey('failed'))
      .llen(qkey('wait'))
      .llen(qkey('active'))
      .zcard(qkey('delayed'))
      .zcard(qkey('prioritized'))
      .exec()) as [Error | null, number][];
    const [failedJobs, ...left] = counts.map(([, n]) => n);
    const stcs = await Promise.all(notify.map((r) => redis.hget(qkey(encodeJobId(`outbox:${r.id}`)), 'stc')));
    const redelivered = stcs.filter((s) => Number(s ?? 0) >= 1).length;
    const heldAtKill: HeldJob[] = [];
    for (const k of kills) {
      for (const id of k.held) {
        const enc = encodeJobId(id);
        const [h, done, failed] = await Promise.all([
          redis.hmget(qkey(enc), 'processedOn', 'pb', 'stc'),
          redis.zscore(qkey('completed'), enc),
          redis.zscore(qkey('failed'), enc),
        ]);
        const processedOn = Number(h[0]);
        heldAtKill.push({
          id,
          killedAt: k.at,
          state: done !== null ? 'completed' : failed !== null ? 'failed' : 'other',
          ...(h[1] ? { processedBy: h[1] } : {}),
          ...(processedOn > k.at ? { redeliveredAfterMs: processedOn - k.at } : {}),
          stalled: Number(h[2] ?? 0),
        });
      }
    }

    // ------------------------------------------------ the store, the units
    const [{ dead, pending }] = await sql.query<{ dead: string; pending: string }>(
      `SELECT count(*) FILTER (WHERE state = 'dead')::text AS dead,
              count(*) FILTER (WHERE state = 'pending')::text AS pending FROM webhook_deliveries`,
    );
    const rep = await checkStore(sql, accepted);
    const all = await assignmentRows(sql);
    const clientById = new Map(clients.map((c) => [c.id, c]));
    const missedOffers = all.filter((r) => !clientById.get(r.unit_id)?.offers.has(r.id)).length;
    const sum = (f: (c: UnitClient) => number) => clients.reduce((s, c) => s + f(c), 0);

    return {
      posted: poster.posted,
      accepted: accepted.size,
      unanswered: poster.unanswered().length,
      refused: results.filter((r) => r.refused).map((r) => `${r.key}: ${r.refused}`),
      kills,
      workersStarted: started,
      workerExitCodes,
      notifyRows: notify.length,
      notRelayed: notify.filter((r) => !r.done).length,
      lostJobs,
      failedJobs,
      leftInQueue: left.reduce((s, n) => s + n, 0),
      redelivered,
      heldAtKill,
      expectedUpdates: expectedKeys.size,
      receivedKeys: [...byKey.keys()].filter((k) => expectedKeys.has(k)).length,
      receipts: receipts.length,
      missingKeys: missing(),
      unexpectedKeys,
      outOfOrder,
      wrongBody,
      badSignatures: receiver.badSignatures,
      duplicateKeys,
      duplicatesAfterKill,
      duplicatesAfterFailure,
      duplicatesUnexplained: unexplained,
      deadLetters: Number(dead),
      pendingDeliveries: Number(pending),
      resendAfterKillMs: resendAfterKill,
      unrecordedAtKill,
      unrecordedResent,
      unrecordedNotVictims,
      webhookLagMs: lag,
      lostIncidents: rep.lost,
      neverAccepted: rep.neverAccepted,
      gaps: sum((c) => c.stats.gaps),
      reordered: sum((c) => c.stats.reordered),
      duplicateOffers: sum((c) => c.stats.duplicateOffers),
      missedOffers,
      drainMs,
      wallMs: Date.now() - t0,
    };
  } finally {
    stopKilling = true;
    await killer?.catch(() => {});
    await load?.stop().catch(() => {});
    for (const c of clients) c.close();
    redis.disconnect();
    await sql.close().catch(() => {});
    await Promise.all(live.map((w) => w.stop().catch(() => {})));
    await serve.stop().catch(() => {});
    await receiver.stop();
  }
}

/** The figures line of a run. */
export function workerCrashFigures(r: WorkerCrashResult): Record<string, unknown> {
  const redelivery = percentiles(
    r.heldAtKill.filter((h) => h.redeliveredAfterMs !== undefined).map((h) => h.redeliveredAfterMs!),
  );
  const resend = percentiles(r.resendAfterKillMs);
  const lag = percentiles(r.webhookLagMs);
  return {
    posted: r.posted,
    accepted: r.accepted,
    kills: r.kills.length,
    killedHoldingJobs: r.kills.filter((k) => k.held.length > 0).length,
    killedMidPost: r.kills.filter((k) => k.unrecorded.length > 0).length,
    heldJobs: r.heldAtKill.length,
    notifyJobs: r.notifyRows,
    redelivered: r.redelivered,
    redeliveryMsP50: redelivery.p50,
    redeliveryMsMax: redelivery.max,
    lostJobs: r.lostJobs.length,
    failedJobs: r.failedJobs,
    webhookUpdates: r.expectedUpdates,
    webhookPosts: r.receipts,
    received: r.receivedKeys,
    missing: r.missingKeys.length,
    dupKeys: r.duplicateKeys,
    dupAfterKill: r.duplicatesAfterKill,
    dupAfterFailure: r.duplicatesAfterFailure,
    dupUnexplained: r.duplicatesUnexplained.length,
    unrecordedAtKill: r.unrecordedAtKill,
    unrecordedResent: r.unrecordedResent,
    unrecordedNotVictims: r.unrecordedNotVictims,
    resendAfterKillMsMax: resend.max,
    outOfOrder: r.outOfOrder.length,
    deadLetters: r.deadLetters,
    webhookLagMsP50: lag.p50,
    webhookLagMsP99: lag.p99,
    gaps: r.gaps,
    dupOffers: r.duplicateOffers,
    missedOffers: r.missedOffers,
    lost: r.lostJobs.length + r.missingKeys.length + r.lostIncidents.length,
    drainS: Math.round(r.drainMs / 1000),
    wallS: Math.round(r.wallMs / 1000),
  };
}
