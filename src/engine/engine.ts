// The live engine: EngineApi over a Store, a JobQueue, a Publisher and a Clock, running the
// pure core (src/core) on an in-memory mirror of units, open incidents and active assignments.
//
// Order and consistency. Every state change runs in one serial lane (lane.ts): one change
// at a time, the decision included, so the mirror, the store and the push sequence never
// disagree. Changes are committed in batches, a batch's work overlapping the commit of the one
// before. A change's writes hold the records, their events and audit rows, any outbox job,
// and the messages it pushes (store.pushMessages allocates each recipient's gap-free seq);
// after the commit the messages are published in seq order and timers are armed. A failed
// commit undoes the changes in memory and re-reads what they touched into the mirror.
//
// Decisions. Triggers (a report, a freed unit, a decline, a timeout, a pre-emption…) are
// coalesced into one `decide` job on the decisions queue (debounced by decideDebounceMs); its
// worker calls runDecision(), which builds the DispatchState from the mirror and calls
// policy.decide(state, now, ctx) with a wall-clock budget, then applies the assignments one
// transaction each (see decide.ts for exclusions after declines and missed acks).
//
// Timers are delayed jobs: `ack:<assignmentId>` at the offer's ackDeadline and
// `target:<incidentId>` at the incident's targetAt. They are armed after the commit, re-armed
// from the stored deadlines on start (firing at once those already past), and a periodic sweep
// (also run at once when the queue reconnects: Redis may have restarted empty) re-arms any
// that went missing and re-queues a decide job lost with them. Handlers re-check the mirror,
// so a late or repeated timer is harmless.

import { randomUUID } from 'node:crypto';
import type { AreaIndex } from '../core/areas.ts';
import type { CatalogIndex } from '../core/catalog.ts';
import { fmtS } from '../core/decision.ts';
import { routeDuty } from '../core/duties.ts';
import { haversineM, isLonLat } from '../core/geo.ts';
import { optimalPolicy } from '../core/policies.ts';
import type { DispatchPolicy } from '../core/policy.ts';
import type { TravelTimes } from '../core/ports.ts';
import type {
  AssignmentDecision,
  Decision,
  IncidentStatus,
  IncidentType,
  LonLat,
  Priority,
  UnitStatus,
  UnservedCode,
} from '../core/types.ts';
import { ApiError } from '../server/errors.ts';
import type { AlertView, AssignmentView, IncidentView, OfferView, UnitView } from '../shared/events.ts';
import type {
  AssignmentRecord,
  AssignmentStatus,
  IncidentRecord,
  JsonObject,
  MessageRecord,
  Store,
  UnitRecord,
  WriteLink,
} from '../store/store.ts';
import { actorTag, requireActFor, requireOperator, requireRole } from './access.ts';
import { ALERT_LEDGER, AlertBook, alertView, makeAlert, type NewAlert } from './alerts.ts';
import type {
  Actor,
  DistrictConfig,
  EngineApi,
  IncidentDetailView,
  KpiQuery,
  ReportIncidentInput,
  UnitUpsertInput,
} from './api.ts';
import { type EngineConfig, resolveConfig } from './config.ts';
import { checkLonLat, checkText, invalidField, parseIsoTime, toApi } from './errors.ts';
import { Exclusions } from './exclusions.ts';
import { ackJobId, callsBack, JOBS, QUEUES, targetJobId } from './jobs.ts';
import { checkGroupBy, liveKpis, resolveWindow } from './kpis.ts';
import { BatchLane, type Flight, type LaneTask } from './lane.ts';
import { Mirror, unitStatusFor } from './mirror.ts';
import { NonResponses } from './non-responses.ts';
import type { Clock, JobQueue, Publisher, Recipient } from './ports.ts';
import { assignmentChangeView, assignmentView, incidentView, iso, timelineEntry, unitView } from './views.ts';
import { checkCallback } from './webhooks.ts';
import { Work } from './work.ts';

/** One batch of the lane: its tasks, and where its time went. */
export interface BatchTiming {
  tasks: number;
  /** Running the tasks and the decision round, on the event loop. */
  workMs: number;
  /** From the end of the work to the commit's answer (building and sending the writes included). */
  commitMs: number;
  /** The whole batch, publishing after the commit included. */
  totalMs: number;
  /** The lane's time taken by this batch alone (its work may overlap the previous commit). */
  busyMs: number;
}

export interface EngineDeps {
  store: Store;
  queue: JobQueue;
  publisher: Publisher;
  clock: Clock;
  catalog: CatalogIndex;
  /** Places incidents and unit homes in their grid cell and sub-district. */
  areas?: AreaIndex;
  travel: TravelTimes;
  /** Default: the optimal policy. */
  policy?: DispatchPolicy;
  config?: Partial<EngineConfig>;
  /** Called with each optimiser call's wall time (e.g. Metrics.observeDecision). */
  onDecision?: (ms: number, policy: string) => void;
  /** Called after each batch of the lane (e.g. Metrics.observeBatch). */
  onBatch?: (b: BatchTiming) => void;
  /** Where the engine logs what it cannot throw to a caller (default console.error). */
  log?: (msg: string, err?: unknown) => void;
}

type EngineState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

const CONSOLES: Recipient = 'consoles';
const unitRoom = (id: string): Recipient => `unit:${id}`;
const SYS_DECISIONS = 'system:decisions';
/** Side rows of a change go to the store in one statement per table at commit. */
const DEFERRED = { defer: true } as const;
/** The fast path: row writes too are computed from the mirror and written at commit. */
const WRITE_BEHIND = { defer: true, writeBehind: true } as const;
const SYS_TIMERS = 'system:timers';
const SYS_ENGINE = 'system:engine';
/** Incident statuses that keep no arrival-target timer. */
const TARGET_OFF: ReadonlySet<IncidentStatus> = new Set(['on_scene', 'resolved', 'closed', 'cancelled']);

/** Incident statuses a reporter callback hears about. */
const NOTIFY_STATUSES: ReadonlySet<IncidentStatus> = new Set([
  'assigned',
  'on_scene',
  'resolved',
  'closed',
  'cancelled',
]);
const MERGED_KEYS_KEEP = 10_000;
const KNOWN_KEYS_KEEP = 100_000;
const SOLVER_SAMPLES = 1000;

/** Thrown inside a transaction to roll back a report that turned out to be a duplicate. */
class MergeIntoDuplicate extends Error {}

/** Thrown inside a batch's transaction to roll it back after a change failed mid-write. */
class BatchPoisoned extends Error {}

/** A batch whose work has run (lane.ts); its commit may still be in flight. */
interface BatchFlight extends Flight {
  /**
   * Whether the batch committed (its work ran through and its commit held); settles once the
   * commit answered and, if it held, the batch was published.
   */
  committed: Promise<boolean>;
  tasks: LaneTask[];
  batch: Batch;
  timing: BatchTiming;
  /** performance.now() when its work began. */
  t0: number;
  /** Why it fails: its work, or its commit (set when that settles). */
  failure: unknown;
}

/** One group commit: the tasks run in `tx`; `works` are the changes to publish after it. */
interface Batch {
  /** Set once the first change opened the transaction. */
  tx?: Store;
  open?: () => Promise<Store>;
  /** Each change in a savepoint, so one failing change leaves the others (the slow path). */
  safe: boolean;
  works: Work[];
  /** Changes that failed after writing; their records are re-read if the batch rolls back. */
  failed: Work[];
  poisoned: boolean;
  /** A decision was asked for by a change of this batch: it runs at the batch's end. */
  decide?: boolean;
  /** A decision round already ran in this batch. */
  decided?: boolean;
  /** Its commit as sent, for the next batch's to be pipelined behind (TransactionOptions.link). */
  link: WriteLink;
}

export class Engine implements EngineApi {
  readonly config: EngineConfig;
  readonly mirror = new Mirror();
  readonly alerts = new AlertBook();
  readonly exclusions = new Exclusions();
  private readonly nonResponses = new NonResponses();
  private readonly store: Store;
  private readonly queue: JobQueue;
  private readonly publisher: Publisher;
  private readonly clock: Clock;
  private readonly catalog: CatalogIndex;
  private readonly areas?: AreaIndex;
  private readonly travel: TravelTimes;
  private readonly policy: DispatchPolicy;
  private readonly onDecisionTimed?: (ms: number, policy: string) => void;
  private readonly onBatch?: (b: BatchTiming) => void;
  private readonly log: (msg: string, err?: unknown) => void;
  private readonly lane: BatchLane<BatchFlight>;
  /** When the lane's last batch ended (performance.now() ms), for its busy time. */
  private laneBusyUntil = 0;
  /** The batch whose tasks are running (set only inside the lane). */
  private batch?: Batch;
  /** Batches that had to run again on the slow path (a stale mirror; should stay near 0). */
  slowBatches = 0;
  /** Batches whose work ran over the commit of the one before (lane.ts). */
  overlapped = 0;
  /** Of those, batches undone because that commit failed (they ran again). */
  undoneOver = 0;
  private state: EngineState = 'new';
  private readonly bootId = randomUUID().slice(0, 8);
  private decideSeq = 0;
  private decisionQueued = false;
  private chained = 0;
  private sweepTimer?: NodeJS.Timeout;
  private debounceTimer?: NodeJS.Timeout;
  /** The last decision round: when it ended and how long it took (performance.now() ms). */
  private lastRound = { end: 0, ms: 0 };
  /** decideSeq of the `decide` request pending at the previous sweep (-1: none). */
  private decideAtLastSweep = -1;
  private offReconnect?: () => void;
  private readonly background = new Set<Promise<unknown>>();
  private readonly outboxListeners = new Set<() => void>();
  /** Idempotency keys of reports merged into an existing incident (the store never saw them). */
  private readonly mergedKeys = new Map<string, { incidentId: string; fingerprint: string }>();
  /** Idempotency keys of incidents this engine stored (most recent KNOWN_KEYS_KEEP). */
  private readonly knownKeys = new Map<string, { incidentId: string; fingerprint: string }>();
  /**
   * Incidents this engine stored with a webhook reporter (only those get an `incident.created`
   * job), whose decision it asked for and whose target timer it armed after the commit: their
   * job has only the webhook left to do (onIncidentCreated, workers/intake.ts).
   * Insertion order; the oldest go past KNOWN_KEYS_KEEP (the job then does it all again).
   */
  private readonly intakeDone = new Set<string>();
  /** Keys of alerts raised by changes not yet committed. */
  private readonly raisingAlerts = new Set<string>();
  /** Location throttling per unit. */
  private readonly lastFixMs = new Map<string, number>();
  private readonly lastLocPublishMs = new Map<string, number>();
  private readonly lastLocPersist = new Map<string, number>();
  private readonly locTimers = new Map<string, NodeJS.Timeout>();
  /** Timers waiting to be armed, by job id (armLater). */
  private readonly lateArms = new Map<string, NodeJS.Timeout>();
  private readonly timerChains = new Map<string, Promise<void>>();
  /** Wall milliseconds of recent optimiser calls. */
  readonly solverMs: number[] = [];
  /** Decisions applied since start (rounds that called the policy). */
  decisions = 0;

  constructor(deps: EngineDeps) {
    this.store = deps.store;
    this.lane = new BatchLane<BatchFlight>({
      work: (tasks, prev) => this.workBatch(tasks, prev),
      settle: (f, later) => this.settleBatch(f, later),
    });
    this.queue = deps.queue;
    this.publisher = deps.publisher;
    this.clock = deps.clock;
    this.catalog = deps.catalog;
    this.areas = deps.areas;
    this.travel = deps.travel;
    this.policy = deps.policy ?? optimalPolicy;
    this.config = resolveConfig(deps.config);
    this.onDecisionTimed = deps.onDecision;
    this.onBatch = deps.onBatch;
    this.log = deps.log ?? ((msg, err) => console.error(`[engine] ${msg}`, err ?? ''));
  }

  // ================================================================ lifecycle

  private firstRound: Promise<void> = Promise.resolve();

  /**
   * Resolves once the first decision round after start() has finished (failed rounds too).
   * A restarted engine's caller can let it go first: work started meanwhile on this thread
   * (loading the server, registering units) would hold its commit back.
   */
  firstDecision(): Promise<void> {
    return this.firstRound;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** A periodic sweep is running / the start-up sweep's re-arming is (one at a time). */
  private sweeping = false;
  private rearming: Promise<void> | undefined;

  /**
   * Loads the snapshot, rebuilds the mirror, reloads alerts and exclusions, re-arms ack and
   * target timers from the stored deadlines (those already past fire at once) and runs a
   * first decision for whatever waits. Start the workers after this.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`engine cannot start: it is ${this.state}`);
    this.state = 'starting';
    try {
      // Three independent reads at once: after a crash under load each takes hundreds of ms.
      const now = this.now();
      const [snap, refused] = await Promise.all([
        this.store.loadSnapshot(),
        this.store.listAssignments({
          status: ['declined', 'timed_out'],
          endedSince: now - Math.max(this.config.declineExcludeS, this.config.nonResponseWindowS),
          limit: 100_000,
        }),
        this.alerts.reload(this.store),
      ]);
      this.mirror.load(snap);
      await this.repairUnits();
      this.rebuildExclusions(refused, now);
      this.state = 'running';
    } catch (err) {
      this.state = 'new';
      throw err;
    }
    // Overdue timers fire now, from the stored deadlines (re-adding their jobs is not enough:
    // one the last process was running stays locked in Redis until BullMQ's stall check,
    // 30 s on), the others are re-armed. All of it in the background: after a crash under
    // load there are thousands (seconds of lane batches and Redis round trips), and the
    // engine must serve, and decide, meanwhile. stop() waits for it.
    // The first decision runs at once in the lane, not through the queue: its workers start
    // after this returns, and after a crash the backlog has waited long enough.
    this.firstRound = this.track(
      this.lane
        .run(() => this.decideRound())
        .catch((e) => {
          this.log('the first decision round failed (the next trigger retries)', e);
          this.requestDecision('start');
        }),
    );
    this.track(
      this.sweep({ rearmInBackground: true }).catch((e) =>
        this.log('the start-up sweep failed (the periodic one retries)', e),
      ),
    );
    // The queue's store came back after a loss (Redis restarted, maybe empty): its delayed
    // timers and a queued decide job may be gone, so sweep now rather than at the next period.
    this.offReconnect = this.queue.onReconnect?.(() => {
      if (!this.debounceTimer) this.decisionQueued = false;
      this.track(this.sweep().catch((e) => this.log('sweep after the queue reconnected failed', e)));
    });
    if (this.config.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => {
        // With a backlog of thousands, re-arming takes longer than the period: sweeps that
        // overlapped multiplied the queue round trips until the engine did little else
        // (measured after a crash under 500/s: 14k incidents still queued 15 min later).
        if (this.sweeping || this.rearming) return;
        this.sweeping = true;
        this.track(
          this.sweep()
            .catch((e) => this.log('sweep failed', e))
            .finally(() => {
              this.sweeping = false;
            }),
        );
      }, this.config.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  /** Stops taking work and drains what runs (the lane, pending location writes). */
  async stop(): Promise<void> {
    if (this.state !== 'running' && this.state !== 'starting') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.offReconnect?.();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    this.decisionQueued = false;
    for (const t of this.locTimers.values()) clearTimeout(t);
    this.locTimers.clear();
    // Timers not yet armed: the next start's sweep arms them from the store.
    for (const t of this.lateArms.values()) clearTimeout(t);
    this.lateArms.clear();
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.lane.drain();
    this.state = 'stopped';
  }

  /** Called after commits that wrote outbox jobs (the relay polls; this wakes it at once). */
  onOutbox(listener: () => void): () => void {
    this.outboxListeners.add(listener);
    return () => this.outboxListeners.delete(listener);
  }

  private ensureRunning(): void {
    if (this.state !== 'running') throw new ApiError('UNAVAILABLE');
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    p.finally(() => this.background.delete(p)).catch(() => {});
    return p;
  }

  private now(): number {
    return this.clock.now();
  }

  /** Runs a state change in the lane; refused unless running. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    this.ensureRunning();
    return this.lane.run(async () => {
      this.ensureRunning();
      return fn();
    });
  }

  // ================================================================ the unit of work

  /** Store for reads inside the lane: the running batch's transaction (it sees its writes). */
  private get db(): Store {
    return this.batch?.tx ?? this.store;
  }

  /**
   * The work of one batch of lane tasks, in one transaction. Fast path: changes write straight
   * into it (write-behind: computed from the mirror, sent at commit). `prev`: the batch whose
   * commit is in flight; this one's statements wait for it and are dropped if it fails (see
   * lane.ts). The commit goes on after this returns; settleBatch completes the batch.
   */
  private async workBatch(
    tasks: LaneTask[],
    prev: BatchFlight | undefined,
    safe = false,
  ): Promise<BatchFlight> {
    const t0 = performance.now();
    const batch: Batch = { safe, works: [], failed: [], poisoned: false, link: {} };
    // The transaction opens at the first write, so a batch of reads costs no round trip.
    let settle!: (commit: boolean | Promise<boolean>) => void;
    const decided = new Promise<boolean>((r) => {
      settle = r;
    });
    let committed: Promise<void> | undefined;
    let opening: Promise<Store> | undefined;
    batch.open = () => {
      opening ??= new Promise<Store>((resolve, reject) => {
        committed = this.store.transaction(
          async (tx) => {
            batch.tx = tx;
            resolve(tx);
            if (!(await decided)) throw new BatchPoisoned();
          },
          {
            ...(safe ? DEFERRED : WRITE_BEHIND),
            link: batch.link,
            ...(prev ? { after: prev.committed, afterLink: prev.batch.link } : {}),
          },
        );
        committed.catch(reject);
      });
      return opening;
    };
    let failure: unknown;
    this.batch = batch;
    if (prev) this.overlapped++;
    try {
      // On top of a batch in flight, reads too must wait for its commit: opening the
      // transaction now sends nothing, and its reads follow that commit.
      if (prev) await batch.open();
      for (const t of tasks) {
        try {
          t.outcome = { ok: true, value: await t.fn() };
        } catch (error) {
          t.outcome = { ok: false, error };
        }
        if (batch.poisoned) {
          failure = new BatchPoisoned();
          break;
        }
      }
      // A report (or a freed unit…) of this batch asked for a decision: deciding now puts the
      // offer in the same commit as its cause, one round trip sooner than a separate batch.
      if (failure === undefined && batch.decide && !batch.decided && this.running) {
        try {
          await this.decideRound();
        } catch (err) {
          this.log('a decision round failed (the next trigger or the sweep retries)', err);
        }
        if (batch.poisoned) failure = new BatchPoisoned();
      }
    } catch (err) {
      failure ??= err;
    } finally {
      this.batch = undefined;
    }
    const go = failure === undefined;
    // Commit only once the batch in flight has: should it fail, this one rolls back too. A
    // store that checks `after` itself may send this commit before that one answered.
    settle(prev && !this.store.checksAfter ? prev.committed.then((ok) => ok && go) : go);
    const t1 = performance.now();
    const timing: BatchTiming = { tasks: tasks.length, workMs: t1 - t0, commitMs: 0, totalMs: 0, busyMs: 0 };
    const flight: BatchFlight = {
      tasks,
      batch,
      timing,
      t0,
      failure,
      overlappable: go && !safe && this.config.overlapCommits,
      // Without a transaction of its own it holds if the batch under it does.
      committed: prev ? prev.committed.then((ok) => ok && go) : Promise.resolve(go),
    };
    if (committed) {
      // Published the moment the commit answers, not when the lane settles the batch: that
      // waits for the work of the next batch, running meanwhile (tens of ms under load). Its
      // callers hear their outcomes then too (lane.ts).
      flight.committed = committed.then(
        () => {
          timing.commitMs = performance.now() - t1;
          if (go) for (const w of batch.works) this.afterCommitOf(w);
          return go;
        },
        (err) => {
          timing.commitMs = performance.now() - t1;
          flight.failure ??= err;
          return false;
        },
      );
    }
    return flight;
  }

  /** Undoes a change's in-memory bookkeeping (once). */
  private undoWork(w: Work): void {
    for (const u of w.undo.splice(0).reverse()) u();
  }

  /**
   * Waits for a batch's commit (its changes were published when it answered: workBatch).
   * A failed batch is undone (with `later`, the batches that ran on top of it, first, newest
   * first); the mirror re-reads what they touched, and the tasks run again with a savepoint
   * per change, so that only a failing change fails — as if each had its own transaction.
   * False when `later` were undone and must run again.
   */
  private async settleBatch(f: BatchFlight, later: BatchFlight[]): Promise<boolean> {
    const ok = await f.committed;
    try {
      if (ok) return true;
      if (later.length > 0) {
        this.undoneOver++;
        // Each fails (it follows this one): settled, with nothing written.
        for (const n of later) await n.committed;
        for (const n of [...later].reverse())
          for (const w of [...n.batch.works, ...n.batch.failed].reverse()) this.undoWork(w);
      }
      for (const w of [...f.batch.works, ...f.batch.failed].reverse()) this.undoWork(w);
      for (const b of [f.batch, ...later.map((n) => n.batch)])
        for (const w of [...b.works, ...b.failed]) await this.resync(w);
      if (!f.batch.safe) {
        // Fast path: a stale copy, a violated constraint, a change failing mid-write: run the
        // tasks again, each change on its own (savepoints, immediate writes).
        this.slowBatches++;
        for (const t of f.tasks) t.outcome = undefined;
        await this.settleBatch(await this.workBatch(f.tasks, undefined, true), []);
      } else {
        // The commit itself failed (the database is down…): every change of the batch is
        // lost, so every caller hears it.
        const error = toApi(f.failure);
        for (const t of f.tasks) t.outcome = { ok: false, error };
      }
      return later.length === 0;
    } finally {
      const end = performance.now();
      const t = f.timing;
      t.totalMs = end - f.t0;
      t.busyMs = end - Math.max(f.t0, this.laneBusyUntil);
      this.laneBusyUntil = end;
      this.onBatch?.(t);
    }
  }

  /**
   * One state change. Inside the lane it joins the running batch (committed and published
   * with it); outside (start-up repairs) it is a transaction of its own.
   */
  private async write<T>(
    actor: string,
    fn: (w: Work) => Promise<T>,
    opts: { savepoint?: boolean } = {},
  ): Promise<T> {
    const batch = this.batch;
    if (!batch) {
      let work: Work | undefined;
      let result: T;
      try {
        result = await this.store.transaction(async (tx) => {
          work = new Work(tx, this.now(), actor);
          const r = await fn(work);
          await this.recordMessages(work);
          return r;
        }, DEFERRED);
      } catch (err) {
        if (work) {
          this.undoWork(work);
          await this.resync(work);
        }
        throw toApi(err);
      }
      this.afterCommitOf(work!);
      return result;
    }
    // A change expected to fail now and then (a report that may be a duplicate) gets its own
    // savepoint even on the fast path.
    const sp = batch.safe || opts.savepoint === true;
    const run = async (tx: Store): Promise<{ w: Work; r: T }> => {
      const w = new Work(tx, this.now(), actor);
      try {
        const r = await fn(w);
        await this.recordMessages(w);
        return { w, r };
      } catch (err) {
        this.undoWork(w);
        if (w.used) {
          if (sp) await this.resync(w);
          else {
            batch.failed.push(w);
            batch.poisoned = true;
          }
        }
        throw err;
      }
    };
    try {
      const tx = batch.tx ?? (await batch.open!());
      const { w, r } = sp ? await tx.savepoint(run) : await run(tx);
      batch.works.push(w);
      return r;
    } catch (err) {
      throw toApi(err);
    }
  }

  /** Records the messages of a change in the push log (their seqs are set at commit). */
  private async recordMessages(w: Work): Promise<void> {
    for (const id of w.changedIncidents) {
      if (w.createdIncidents.has(id)) continue;
      w.push([CONSOLES], 'incident:updated', () => this.incidentViewById(id));
    }
    for (const id of w.changedUnits) {
      w.push([CONSOLES, unitRoom(id)], 'unit:updated', () => this.unitViewById(id));
    }
    for (const m of w.messages) {
      const data = m.data();
      if (data === undefined) continue;
      w.records.push(...(await w.tx.pushMessages(m.recipients, m.event, data, { at: w.at })));
    }
  }

  /** After the commit: publish in seq order, wake the outbox relay, run the change's hooks. */
  private afterCommitOf(w: Work): void {
    this.publishRecords(w.records);
    if (w.wroteOutbox) for (const l of this.outboxListeners) l();
    // Mirror bookkeeping runs at once; queue operations (timers) run in the background so a
    // slow or unreachable Redis never blocks the lane. Arming and disarming may then race;
    // timer handlers re-check the state, so a timer that survives its disarm is harmless.
    for (const f of w.afterCommit) {
      try {
        const r = f();
        if (r instanceof Promise) this.track(r.catch((err) => this.log('after-commit step failed', err)));
      } catch (err) {
        this.log('after-commit step failed', err);
      }
    }
  }

  private publishRecords(records: readonly MessageRecord[]): void {
    for (const r of records) {
      try {
        this.publisher.publish(r.recipient as Recipient, r.event, {
          seq: r.seq,
          at: Math.round(r.at * 1000),
          data: r.payload,
        });
      } catch (err) {
        this.log(`publishing ${r.event} to ${r.recipient} failed`, err);
      }
    }
  }

  /** After a failed transaction: re-read what it touched. */
  private async resync(w: Work): Promise<void> {
    try {
      for (const id of w.touchedIncidents) await this.mirror.reloadIncident(this.db, id);
      for (const id of w.touchedUnits) await this.mirror.reloadUnit(this.db, id);
    } catch (err) {
      this.log('resync after a failed write failed', err);
    }
  }

  // ================================================================ views

  private incidentViewOf(
    rec: IncidentRecord,
    assignedUnitIds: readonly string[] = this.mirror.assignedUnitIds(rec.id),
  ): IncidentView {
    return incidentView(rec, this.catalog, assignedUnitIds, this.mirror.queuedReasons.get(rec.id)?.text);
  }

  private readonly closedViews = new Map<string, IncidentRecord>();

  private incidentViewById(id: string): IncidentView | undefined {
    const rec = this.mirror.incidents.get(id) ?? this.closedViews.get(id);
    return rec ? this.incidentViewOf(rec) : undefined;
  }

  private unitViewOf(u: UnitRecord): UnitView {
    return unitView(u, this.mirror.unitStatus(u), this.mirror.activeOfUnit(u.id)?.incidentId);
  }

  private unitViewById(id: string): UnitView | undefined {
    const u = this.mirror.units.get(id);
    return u ? this.unitViewOf(u) : undefined;
  }

  private typeOf(rec: { type: string }): IncidentType {
    const t = this.catalog.get(rec.type);
    if (!t) throw new Error(`incident type ${rec.type} is not in the catalogue`);
    return t;
  }

  private isImmediate(rec: IncidentRecord): boolean {
    return typeof rec.payload.immediate === 'boolean'
      ? rec.payload.immediate
      : (this.catalog.get(rec.type)?.immediate ?? false);
  }

  private ackTimeoutFor(rec: IncidentRecord): number {
    return this.isImmediate(rec) ? this.config.ackTimeoutS : this.config.ackTimeoutOtherS;
  }

  // ================================================================ write helpers (inside a Work)

  /** Writes the unit with `patch` applied (full record: the store replaces units whole). */
  private async setUnit(w: Work, unitId: string, patch: Partial<UnitRecord>): Promise<UnitRecord> {
    const cur = this.mirror.units.get(unitId);
    if (!cur) throw new ApiError('NOT_FOUND', `unit ${unitId} not found`);
    // The mirror's record carries the unit's last reported position (placeUnit).
    const next = { ...cur, ...patch };
    w.touchedUnits.add(unitId);
    const rec = await w.tx.upsertUnit(
      {
        id: next.id,
        department: next.department,
        capabilities: next.capabilities,
        home: next.home,
        homeArea: next.homeArea,
        speedKmh: next.speedKmh,
        turnoutS: next.turnoutS,
        status: next.status,
        position: next.position,
        incidentId: next.incidentId,
        role: next.role,
        since: next.since,
        payload: next.payload,
      },
      { at: w.at, current: cur },
    );
    this.mirror.putUnit(rec);
    w.unitChanged(unitId);
    return rec;
  }

  /** Unit fields for a unit committed to an assignment, or freed (status given). */
  private unitPatchFor(
    a: AssignmentRecord | undefined,
    freeStatus: UnitStatus = 'available',
  ): Partial<UnitRecord> {
    if (!a) return { status: freeStatus, incidentId: undefined, role: undefined, since: undefined };
    return {
      status: unitStatusFor(a),
      incidentId: a.incidentId,
      role: a.capability,
      since: a.status === 'en_route' ? (a.enRouteAt ?? a.offeredAt) : a.offeredAt,
    };
  }

  private async unitStatusEvent(
    w: Work,
    unitId: string,
    from: UnitStatus,
    to: UnitStatus,
    data: JsonObject = {},
  ) {
    if (from === to) return;
    await w.tx.appendEvent({
      kind: 'unit_status',
      unitId,
      actor: w.actor,
      at: w.at,
      data: { from, to, ...data },
    });
    await w.tx.appendAudit({
      actor: w.actor,
      action: 'unit.status',
      subject: unitId,
      at: w.at,
      data: { from, to },
    });
  }

  /** Moves an assignment on (same or terminal status) and mirrors it. */
  private async moveAssignment(
    w: Work,
    a: AssignmentRecord,
    status: AssignmentStatus,
    opts: { reason?: string; eventKind?: string; eventData?: JsonObject } = {},
  ): Promise<AssignmentRecord> {
    w.touchedUnits.add(a.unitId);
    w.touchedIncidents.add(a.incidentId);
    const rec = await w.tx.updateAssignment(
      a.id,
      { status, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) },
      {
        actor: w.actor,
        at: w.at,
        expect: a.status,
        current: a,
        ...(opts.eventKind || opts.eventData
          ? { event: { kind: opts.eventKind, data: opts.eventData } }
          : {}),
      },
    );
    this.mirror.putAssignment(rec);
    const trip = this.mirror.tripStarts.get(a);
    if (trip) {
      // As the log has it: the en-route report's position, else where the offer found it.
      const p = opts.eventData?.position;
      this.mirror.tripStarts.set(
        rec,
        rec.status === 'en_route' && a.status !== 'en_route'
          ? { t: w.at, via: 'en_route', position: isLonLat(p) ? [p[0], p[1]] : trip.position }
          : trip,
      );
    }
    w.push([CONSOLES, unitRoom(rec.unitId)], 'assignment:updated', () => assignmentChangeView(rec));
    // The deadline exists while the offer is open: removed once, as it is answered. (A remove
    // per later step cost a Redis script each; a deadline left behind by a failed remove fires
    // and finds the offer answered.)
    if (a.status === 'offered' && rec.status !== 'offered') {
      w.after(() => this.disarm(ackJobId(rec.id)));
    }
    return rec;
  }

  /**
   * Ends an active assignment (terminal status); frees the unit unless it moves straight on
   * (pre-emption); brings the incident's status in line.
   */
  private async endAssignment(
    w: Work,
    a: AssignmentRecord,
    status: 'cleared' | 'declined' | 'timed_out' | 'preempted' | 'cancelled',
    opts: {
      reason?: string;
      eventKind?: string;
      eventData?: JsonObject;
      freeUnitAs?: UnitStatus | false;
      /**
       * Another unit takes its place in the same change: the incident's status follows that
       * offer instead. Synced now, an on-scene incident left with no active assignment for a
       * moment would resolve, and its new offer would hang on a resolved incident.
       */
      replacedInSameChange?: boolean;
    } = {},
  ): Promise<AssignmentRecord> {
    const rec = await this.moveAssignment(w, a, status, opts);
    if (opts.freeUnitAs !== false) {
      const from = unitStatusFor(a);
      const to = opts.freeUnitAs ?? 'available';
      await this.setUnit(w, a.unitId, this.unitPatchFor(undefined, to));
      if (to !== 'available') await this.unitStatusEvent(w, a.unitId, from, to);
    }
    if (!opts.replacedInSameChange) await this.syncIncident(w, a.incidentId);
    return rec;
  }

  /** Incident status from its active assignments (queued ↔ assigned ↔ en_route → on_scene → resolved). */
  private async syncIncident(w: Work, incidentId: string): Promise<void> {
    const inc = this.mirror.incidents.get(incidentId);
    if (!inc) return;
    w.incidentChanged(incidentId);
    if (inc.status === 'resolved') return;
    const active = this.mirror.activeFor(incidentId);
    let target: IncidentStatus;
    if (active.some((a) => a.status === 'on_scene')) target = 'on_scene';
    else if (inc.status === 'on_scene') target = active.length === 0 ? 'resolved' : 'on_scene';
    else if (active.some((a) => a.status === 'en_route')) target = 'en_route';
    else if (active.length > 0) target = 'assigned';
    else target = 'queued';
    if (target !== inc.status) await this.setIncidentStatus(w, inc, target);
  }

  private async setIncidentStatus(
    w: Work,
    inc: IncidentRecord,
    to: IncidentStatus,
    eventData?: JsonObject,
  ): Promise<IncidentRecord> {
    w.incidentChanged(inc.id);
    const job = this.notifyJob(inc, to, w.at);
    const rec = await w.tx.updateIncidentStatus(inc.id, inc.status, to, {
      actor: w.actor,
      at: w.at,
      current: inc,
      ...(eventData ? { event: { data: eventData } } : {}),
      ...(job ? { job } : {}),
    });
    if (job) w.wroteOutbox = true;
    this.mirror.putIncident(rec);
    if (rec.status === 'closed' || rec.status === 'cancelled') {
      this.closedViews.set(rec.id, rec);
      w.after(() => this.closedViews.delete(rec.id));
    }
    // Removed once, as the incident leaves the statuses that keep a target timer (see
    // needsTargetTimer); one left behind by a failed remove fires and finds it on scene or done.
    if (TARGET_OFF.has(to) && !TARGET_OFF.has(inc.status)) {
      w.after(() => this.disarm(targetJobId(rec.id)));
    }
    return rec;
  }

  private notifyJob(inc: IncidentRecord, to: IncidentStatus, at: number) {
    if (!callsBack(inc.payload) || !NOTIFY_STATUSES.has(to)) return undefined;
    return { topic: 'reporter.notify', payload: { incidentId: inc.id, status: to, at } };
  }

  private async raiseAlert(w: Work, a: NewAlert): Promise<void> {
    // Raised alerts count at once (a batch's work may run before the one before commits).
    if (this.alerts.has(a.key) || this.raisingAlerts.has(a.key)) return;
    this.raisingAlerts.add(a.key);
    w.onRollback(() => this.raisingAlerts.delete(a.key));
    const rec = makeAlert(a, iso(w.at));
    await w.tx.pushMessage(ALERT_LEDGER, 'alert', rec, { at: w.at });
    await w.tx.appendEvent({
      kind: 'alert',
      actor: w.actor,
      at: w.at,
      ...(a.incidentId !== undefined ? { incidentId: a.incidentId } : {}),
      ...(a.unitId !== undefined ? { unitId: a.unitId } : {}),
      data: { alertId: rec.id, alertKind: a.kind, severity: a.severity, message: a.message },
    });
    w.push([CONSOLES], 'alert', () => alertView(rec));
    w.after(() => {
      this.alerts.add(rec);
      this.raisingAlerts.delete(a.key);
    });
  }

  /**
   * The unit refused the incident (declined, or let the offer lapse): it is not offered it
   * again for a while. In force at once, so a decision in the same batch already honours it;
   * undone if the change rolls back.
   */
  private exclude(w: Work, incidentId: string, unitId: string): void {
    const prev = this.exclusions.add(incidentId, unitId, w.at + this.config.declineExcludeS);
    w.onRollback(() => this.exclusions.restore(incidentId, unitId, prev));
  }

  /** Counts the unit's declines and missed acks in the window; raises repeated_non_response. */
  private async countNonResponse(w: Work, unitId: string): Promise<void> {
    const since = w.at - this.config.nonResponseWindowS;
    this.nonResponses.add(unitId, w.at);
    w.onRollback(() => this.nonResponses.remove(unitId, w.at));
    const n = this.nonResponses.count(unitId, since);
    if (n < this.config.nonResponseThreshold) return;
    const last = this.alerts.latest('repeated_non_response', unitId);
    if (last && Date.parse(last.at) / 1000 >= since) return;
    await this.raiseAlert(w, {
      kind: 'repeated_non_response',
      severity: 'warning',
      message: `${unitId}: ${n} offers declined or unanswered in the last ${Math.round(this.config.nonResponseWindowS / 3600)} h`,
      key: `repeated_non_response:${unitId}:${Math.floor(w.at)}`,
      unitId,
    });
  }

  // ================================================================ timers

  /** Operations on one timer id run in order (an arm is never overtaken by its disarm). */
  private timerOp(jobId: string, op: () => Promise<void>): Promise<void> {
    const prev = this.timerChains.get(jobId) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(op);
    this.timerChains.set(jobId, next);
    next
      .finally(() => {
        if (this.timerChains.get(jobId) === next) this.timerChains.delete(jobId);
      })
      .catch(() => {});
    return next;
  }

  /**
   * Arms a timer after config.timerArmDelayMs, unless disarmed before (or at once when it is
   * due within twice that). A crash meanwhile loses nothing: the next start's sweep arms it.
   */
  private armLater(jobId: string, dueAt: number, arm: () => Promise<void>): Promise<void> {
    const delay = this.config.timerArmDelayMs;
    if (delay <= 0 || (dueAt - this.now()) * 1000 <= 2 * delay) return arm();
    this.dropLateArm(jobId);
    const t = setTimeout(() => {
      this.lateArms.delete(jobId);
      if (this.running)
        arm().catch((err) => this.log(`arming timer ${jobId} failed (the sweep retries)`, err));
    }, delay);
    t.unref?.();
    this.lateArms.set(jobId, t);
    return Promise.resolve();
  }

  /** Cancels a timer waiting in armLater; true if there was one (it never reached the queue). */
  private dropLateArm(jobId: string): boolean {
    const t = this.lateArms.get(jobId);
    if (!t) return false;
    clearTimeout(t);
    this.lateArms.delete(jobId);
    return true;
  }

  private armAck(a: AssignmentRecord): Promise<void> {
    if (a.ackDeadline === undefined || a.status !== 'offered') return Promise.resolve();
    const deadline = a.ackDeadline;
    // A timer armed now replaces one waiting to be (the sweep arms at once).
    this.dropLateArm(ackJobId(a.id));
    return this.timerOp(ackJobId(a.id), () =>
      this.queue.add(
        QUEUES.timers,
        JOBS.ackDeadline.name,
        { assignmentId: a.id, deadline },
        {
          jobId: ackJobId(a.id),
          delayMs: Math.max(0, Math.ceil((deadline - this.now()) * 1000)),
          attempts: JOBS.ackDeadline.attempts,
        },
      ),
    );
  }

  private armTarget(inc: IncidentRecord, jobId = targetJobId(inc.id)): Promise<void> {
    if (inc.targetAt === undefined) return Promise.resolve();
    const targetAt = inc.targetAt;
    this.dropLateArm(jobId);
    return this.timerOp(jobId, () =>
      this.queue.add(
        QUEUES.timers,
        JOBS.targetBreach.name,
        { incidentId: inc.id, targetAt },
        {
          jobId,
          delayMs: Math.max(0, Math.ceil((targetAt - this.now()) * 1000)),
          attempts: JOBS.targetBreach.attempts,
        },
      ),
    );
  }

  private disarm(jobId: string): Promise<void> {
    // One that never reached the queue leaves nothing to remove there.
    if (this.dropLateArm(jobId)) return Promise.resolve();
    return this.timerOp(jobId, () => this.queue.remove(QUEUES.timers, jobId)).catch((err) =>
      this.log(`removing timer ${jobId} failed`, err),
    );
  }

  private needsTargetTimer(inc: IncidentRecord): boolean {
    if (inc.targetAt === undefined || inc.status === 'on_scene' || inc.status === 'resolved') return false;
    if (this.alerts.has(`target_breached:${inc.id}`)) return false;
    return !this.mirror.activeFor(inc.id).some((a) => a.status === 'on_scene');
  }

  /**
   * Safety net, run at start, every sweepIntervalMs and when the queue reconnects: fires
   * overdue timers, re-arms missing ones (jobId de-duplication makes re-adding a present
   * timer a no-op), re-runs a decision when something waits.
   */
  async sweep(opts: { rearmInBackground?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    // A queued `decide` job can be lost with the queue's store (Redis restarted empty): its
    // request would stay pending for ever and no decision would run again. One still pending
    // a whole sweep period later is dropped, so the request below queues a new one.
    if (this.decisionQueued && !this.debounceTimer && this.decideAtLastSweep === this.decideSeq) {
      this.decisionQueued = false;
    }
    this.decideAtLastSweep = this.decisionQueued ? this.decideSeq : -1;
    const now = this.now();
    // Overdue timers fire first, submitted together so that the lane runs them as one batch
    // (that needs the store, not the queue: an unreachable Redis does not hold them up); then
    // the others are re-armed, a hundred at a time.
    const fired: Promise<void>[] = [];
    const rearm: (() => Promise<void>)[] = [];
    for (const a of [...this.mirror.assignments.values()]) {
      if (a.status !== 'offered' || a.ackDeadline === undefined) continue;
      if (a.ackDeadline <= now) fired.push(this.onAckDeadline(a.id));
      else rearm.push(() => this.armAck(a));
    }
    for (const inc of [...this.mirror.incidents.values()]) {
      if (!this.needsTargetTimer(inc)) continue;
      if (inc.targetAt! <= now) fired.push(this.onTargetBreach(inc.id));
      else rearm.push(() => this.armTarget(inc));
    }
    const failed = (await Promise.allSettled(fired)).find((r) => r.status === 'rejected');
    this.exclusions.prune(now, new Set(this.mirror.incidents.keys()));
    const waiting = [...this.mirror.incidents.values()].some(
      (i) => i.status === 'queued' || this.mirror.queuedReasons.has(i.id),
    );
    if (waiting) this.requestDecision('sweep');
    const rearmAll = async () => {
      for (let i = 0; i < rearm.length; i += 100)
        await Promise.all(rearm.slice(i, i + 100).map((arm) => arm()));
    };
    if (opts.rearmInBackground) {
      const busy = rearmAll()
        .catch((e) => this.log('re-arming timers failed (the next sweep retries)', e))
        .finally(() => {
          if (this.rearming === busy) this.rearming = undefined;
        });
      this.rearming = busy;
      this.track(busy);
    } else await rearmAll();
    if (failed) throw failed.reason;
  }

  // ================================================================ recovery helpers

  /** Units whose stored status disagrees with their active assignment are corrected. */
  private async repairUnits(): Promise<void> {
    for (const u of [...this.mirror.units.values()]) {
      const a = this.mirror.activeOfUnit(u.id);
      const want = this.unitPatchFor(
        a,
        u.status === 'off_duty' || u.status === 'out_of_service' ? u.status : 'available',
      );
      const committed = u.status === 'offered' || u.status === 'en_route' || u.status === 'on_scene';
      const ok = a
        ? u.status === want.status && u.incidentId === a.incidentId
        : !committed && u.incidentId === undefined;
      if (ok) continue;
      await this.write(SYS_ENGINE, async (w) => {
        await this.setUnit(w, u.id, want);
        await w.tx.appendEvent({
          kind: 'unit_repaired',
          unitId: u.id,
          actor: SYS_ENGINE,
          at: w.at,
          data: { stored: u.status, now: want.status ?? u.status },
        });
      });
    }
  }

  /**
   * Exclusions and non-response counts from every refusal recent enough to still exclude its
   * unit from the incident, or to count towards the unit's non-responses (read by start()).
   */
  private rebuildExclusions(refused: AssignmentRecord[], now: number): void {
    this.nonResponses.clear();
    for (const a of refused) {
      const ended = a.endedAt ?? a.updatedAt;
      if (ended >= now - this.config.nonResponseWindowS) this.nonResponses.add(a.unitId, ended);
      if (!this.mirror.incidents.has(a.incidentId)) continue;
      const until = ended + this.config.declineExcludeS;
      if (until > now) this.exclusions.add(a.incidentId, a.unitId, until);
    }
  }

  // ================================================================ decisions

  /** Asks for a decision (coalesced: at most one pending `decide` job). */
  requestDecision(reason: string, chained = false): void {
    if (!chained) this.chained = 0;
    const b = this.batch;
    // Inline only while decisions take at most half the lane's time: with a backlog of
    // thousands a round costs milliseconds, and one per batch would starve the changes
    // themselves; then rounds go through the queue, spaced by the last round's duration.
    const busy = performance.now() - this.lastRound.end < this.lastRound.ms;
    if (b && !b.decided && this.state === 'running' && this.config.decideInline && !busy) {
      b.decide = true;
      return;
    }
    if (this.decisionQueued || this.state !== 'running') return;
    this.decisionQueued = true;
    // The debounce is a local timer, and the job is queued without a delay: BullMQ promotes
    // delayed jobs with a granularity of tens of milliseconds, too coarse for a decision.
    const enqueue = () => {
      this.debounceTimer = undefined;
      if (this.state !== 'running') {
        this.decisionQueued = false;
        return;
      }
      this.queue
        .add(
          QUEUES.decisions,
          JOBS.decide.name,
          { reason },
          { jobId: `decide:${this.bootId}:${++this.decideSeq}`, attempts: JOBS.decide.attempts },
        )
        .catch((err) => {
          this.decisionQueued = false;
          this.log('queueing a decision failed (the sweep retries)', err);
        });
    };
    const wait = Math.max(this.config.decideDebounceMs, busy ? this.lastRound.ms : 0);
    if (wait > 0) this.debounceTimer = setTimeout(enqueue, wait);
    else enqueue();
  }

  /** The `decide` job: one decision round over all open incidents. */
  async runDecision(): Promise<void> {
    this.decisionQueued = false;
    if (!this.running) throw new Error('engine is not running');
    await this.lane.run(() => this.decideRound());
  }

  private solve(now: number): Decision | null {
    const state = this.mirror.dispatchState({
      excluded: this.exclusions.active(now),
      knownType: (t) => this.catalog.get(t) !== undefined,
    });
    if (state.incidents.length === 0) return null;
    const t0 = performance.now();
    const end = t0 + this.config.decideBudgetMs;
    const d = this.policy.decide(state, now, {
      catalog: this.catalog,
      travel: this.travel,
      ...(this.config.dispatch ? { options: this.config.dispatch } : {}),
      budget: { expired: () => performance.now() > end },
    });
    const ms = performance.now() - t0;
    this.solverMs.push(ms);
    if (this.solverMs.length > SOLVER_SAMPLES) this.solverMs.shift();
    this.onDecisionTimed?.(ms, this.policy.name);
    return d;
  }

  /**
   * One decision over every open incident. Units excluded from an incident (a decline, a missed
   * acknowledgement) are handed to the core with it, which never sends them there.
   */
  private async decideRound(): Promise<void> {
    if (!this.running) return;
    if (this.batch) this.batch.decided = true;
    const t0 = performance.now();
    const now = this.now();
    const d = this.solve(now);
    let stale = false;
    if (d) stale = await this.applyDecision(d);
    this.decisions++;
    await this.recordDecision(now, d ? [d] : []);
    const t1 = performance.now();
    this.lastRound = { end: t1, ms: t1 - t0 };
    if (stale && this.chained < this.config.maxChainedRedecides) {
      this.chained++;
      this.requestDecision('stale mirror', true);
    }
  }

  private async recordDecision(now: number, ds: Decision[]): Promise<void> {
    const assignments = ds.reduce((s, d) => s + d.assignments.length, 0);
    const unserved = ds.length > 0 ? ds[ds.length - 1].unserved.length : 0;
    if (assignments === 0 && unserved === 0) return;
    try {
      await this.db.appendEvent({
        kind: 'decision',
        actor: SYS_DECISIONS,
        at: now,
        data: {
          policy: this.policy.name,
          calls: ds.length,
          assignments,
          preemptions: ds.reduce((s, d) => s + d.preemptions.length, 0),
          unserved,
          work: ds.reduce((s, d) => s + d.stats.work, 0),
          exact: ds.every((d) => d.stats.exact),
        },
      });
    } catch (err) {
      this.log('recording a decision failed', err);
    }
  }

  /** Applies one decision; returns true when something was stale (a re-decision is due). */
  private async applyDecision(d: Decision): Promise<boolean> {
    let stale = false;
    /** Incidents left by a pre-emption that did not happen: their re-serving is dropped too. */
    const dropped = new Set<string>();
    for (const a of d.assignments) {
      if (dropped.has(a.incidentId)) {
        if (a.preemptedFrom) dropped.add(a.preemptedFrom);
        continue;
      }
      const ok = await this.applyAssignment(a);
      if (!ok) {
        stale = true;
        if (a.preemptedFrom) dropped.add(a.preemptedFrom);
      }
    }
    await this.applyUnserved(d);
    return stale;
  }

  private async applyAssignment(a: AssignmentDecision): Promise<boolean> {
    const unit = this.mirror.units.get(a.unitId);
    const inc = this.mirror.incidents.get(a.incidentId);
    if (!unit || !inc || inc.status === 'resolved') return false;
    const cur = this.mirror.activeOfUnit(a.unitId);
    if (a.preemptedFrom) {
      if (!cur || cur.incidentId !== a.preemptedFrom || cur.status === 'on_scene') return false;
    } else if (cur || this.mirror.unitStatus(unit) !== 'available') {
      return false;
    }
    const type = this.typeOf(inc);
    const filled = this.mirror.activeFor(inc.id).filter((x) => x.capability === a.capability).length;
    if (filled >= (type.requires[a.capability] ?? 0)) return false;
    try {
      await this.write(SYS_DECISIONS, async (w) => {
        if (cur && a.preemptedFrom) {
          await this.endAssignment(w, cur, 'preempted', {
            reason: `pre-empted for ${a.incidentId} (priority ${inc.priority})`,
            eventData: { toIncidentId: a.incidentId },
            freeUnitAs: false,
          });
        }
        await this.offer(w, inc, a.unitId, {
          capability: a.capability,
          etaS: a.etaS,
          crossesJurisdiction: a.crossesJurisdiction,
          explanation: a.explanation,
          ...(a.preemptedFrom ? { preemptedFrom: a.preemptedFrom } : {}),
        });
        if (a.preemptedFrom) w.after(() => this.requestDecision('pre-emption', true));
      });
      return true;
    } catch (err) {
      // The mirror was stale (the unit or the incident changed under it): re-read, re-decide.
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        await this.mirror.reloadUnit(this.db, a.unitId).catch(() => {});
        return false;
      }
      throw err;
    }
  }

  /** Records an offer: assignment, unit offered, incident assigned, messages, ack timer. */
  private async offer(
    w: Work,
    inc: IncidentRecord,
    unitId: string,
    a: Pick<AssignmentRecord, 'capability' | 'etaS' | 'crossesJurisdiction'> &
      Partial<Pick<AssignmentRecord, 'explanation' | 'preemptedFrom'>>,
    eventData?: JsonObject,
  ): Promise<AssignmentRecord> {
    w.touchedUnits.add(unitId);
    w.touchedIncidents.add(inc.id);
    const mu = this.mirror.units.get(unitId);
    const from = mu?.position ?? mu?.home;
    const rec = await w.tx.createAssignment(
      {
        incidentId: inc.id,
        unitId,
        capability: a.capability,
        offeredAt: w.at,
        ackDeadline: w.at + this.ackTimeoutFor(inc),
        etaS: a.etaS,
        crossesJurisdiction: a.crossesJurisdiction,
        ...(a.preemptedFrom ? { preemptedFrom: a.preemptedFrom } : {}),
        ...(a.explanation ? { explanation: a.explanation } : {}),
      },
      { actor: w.actor, at: w.at, event: { data: { ...(from ? { from } : {}), ...eventData } } },
    );
    this.mirror.putAssignment(rec);
    if (from) this.mirror.tripStarts.set(rec, { t: w.at, via: 'offer', position: [from[0], from[1]] });
    this.exclusions.clear(inc.id, unitId);
    await this.setUnit(w, unitId, this.unitPatchFor(rec));
    w.push([CONSOLES], 'assignment:created', () => assignmentView(rec));
    w.push([unitRoom(unitId)], 'assignment:offer', (): OfferView | undefined => {
      const incident = this.incidentViewById(inc.id);
      return incident
        ? { assignment: assignmentView(this.mirror.assignments.get(rec.id) ?? rec), incident }
        : undefined;
    });
    await this.syncIncident(w, inc.id);
    w.after(() => this.armLater(ackJobId(rec.id), rec.ackDeadline ?? 0, () => this.armAck(rec)));
    return rec;
  }

  /**
   * Records why incidents wait. Consoles hear it again only when the kind of reason changes,
   * per capability: no such unit exists, none free for it (none in reach, or reserved for
   * other incidents: these two swap with every unit freed or taken), or its joint force is
   * incomplete. The words name the incidents holding the units and change with nearly every
   * decision; pushing each change sent a backlog of thousands to every console on every
   * decision. The latest words are always in the incident's view (GET /v1/incidents/:id).
   */
  private async applyUnserved(d: Decision): Promise<void> {
    const reasons = new Map<string, { texts: string[]; keys: string[] }>();
    for (const s of d.unserved) {
      let l = reasons.get(s.incidentId);
      if (!l) {
        l = { texts: [], keys: [] };
        reasons.set(s.incidentId, l);
      }
      l.texts.push(`${s.capability}: ${s.reason}`);
      l.keys.push(`${s.capability}:${PUSHED_KIND[s.code]}`);
    }
    const changed: string[] = [];
    const alerts: NewAlert[] = [];
    for (const inc of this.mirror.open.values()) {
      const r = reasons.get(inc.id);
      const prev = this.mirror.queuedReasons.get(inc.id);
      let reason: string | undefined;
      if (r) {
        reason = [...new Set(r.texts)].join('; ');
        const key = [...new Set(r.keys)].join(',');
        this.mirror.queuedReasons.set(inc.id, { text: reason, key });
        if (prev?.key !== key) changed.push(inc.id);
      } else if (prev) {
        this.mirror.queuedReasons.delete(inc.id);
        changed.push(inc.id);
      }
      if (reason !== undefined && this.isImmediate(inc) && !this.alerts.has(`no_capable_unit:${inc.id}`)) {
        alerts.push({
          kind: 'no_capable_unit',
          severity: 'critical',
          message: `${inc.id} (${inc.type}, P${inc.priority}) cannot be fully served: ${reason}`,
          key: `no_capable_unit:${inc.id}`,
          incidentId: inc.id,
        });
      }
    }
    if (changed.length === 0 && alerts.length === 0) return;
    await this.write(SYS_DECISIONS, async (w) => {
      for (const id of changed) w.changedIncidents.add(id);
      for (const a of alerts) await this.raiseAlert(w, a);
    });
  }

  // ================================================================ job handlers (workers call these)

  /** `incident.created` (from the outbox): make sure it is mirrored, arm its target timer, decide. */
  async onIncidentCreated(incidentId: string): Promise<void> {
    if (!this.running) throw new Error('engine is not running');
    // The usual case: the incident is mirrored (this engine stored it), and there is nothing
    // to write: no place in the lane. Otherwise (stored by a predecessor) the lane reads it.
    // Stored here, so decided and armed at its commit: re-arming cost a Redis round trip per
    // incident, deciding again a round (the sweep re-arms a timer whose arming failed).
    if (this.intakeDone.delete(incidentId) && this.mirror.incidents.has(incidentId)) return;
    let inc = this.mirror.incidents.get(incidentId);
    if (!inc) {
      inc = await this.lane.run(async () => {
        if (!this.mirror.incidents.has(incidentId)) await this.mirror.reloadIncident(this.db, incidentId);
        return this.mirror.incidents.get(incidentId);
      });
    }
    // In the background, like every queue operation: an unreachable Redis must not hold the
    // lane (and every request behind it); a timer that fails to arm is re-armed by the sweep.
    const rec = inc;
    if (rec && this.needsTargetTimer(rec))
      this.track(this.armTarget(rec).catch((e) => this.log(`arming target ${rec.id} failed`, e)));
    this.requestDecision('incident created');
  }

  /** `ack.deadline`: an offer not acknowledged in time goes to the next-best unit. */
  async onAckDeadline(assignmentId: string): Promise<void> {
    if (!this.running) throw new Error('engine is not running');
    await this.lane.run(async () => {
      const a = this.mirror.assignments.get(assignmentId);
      if (a?.status !== 'offered') return;
      const now = this.now();
      if (a.ackDeadline !== undefined && a.ackDeadline - now > 0.05) {
        // Fired early (a clock step, a re-armed timer): arm again under a fresh id (in the
        // background: the lane never waits for Redis; the sweep covers a failure).
        this.track(
          this.queue
            .add(
              QUEUES.timers,
              JOBS.ackDeadline.name,
              { assignmentId: a.id, deadline: a.ackDeadline },
              {
                jobId: `${ackJobId(a.id)}:${Math.round(now * 1000)}`,
                delayMs: Math.ceil((a.ackDeadline - now) * 1000),
                attempts: JOBS.ackDeadline.attempts,
              },
            )
            .catch((e) => this.log(`re-arming ack ${a.id} failed`, e)),
        );
        return;
      }
      const inc = this.mirror.incidents.get(a.incidentId);
      await this.write(SYS_TIMERS, async (w) => {
        await this.endAssignment(w, a, 'timed_out', { reason: 'no acknowledgement before the deadline' });
        await this.raiseAlert(w, {
          kind: 'no_ack',
          severity: inc && this.isImmediate(inc) ? 'critical' : 'warning',
          message: `${a.unitId} did not acknowledge ${a.incidentId} within ${fmtS((a.ackDeadline ?? w.at) - a.offeredAt)}; offering the next-best unit`,
          key: `no_ack:${a.id}`,
          incidentId: a.incidentId,
          unitId: a.unitId,
        });
        await this.countNonResponse(w, a.unitId);
        this.exclude(w, a.incidentId, a.unitId);
        this.requestDecision('ack timeout');
      });
    });
  }

  /** `target.breach`: no unit on scene at the incident's arrival target. */
  async onTargetBreach(incidentId: string): Promise<void> {
    if (!this.running) throw new Error('engine is not running');
    await this.lane.run(async () => {
      const inc = this.mirror.incidents.get(incidentId);
      if (!inc || !this.needsTargetTimer(inc)) return;
      const now = this.now();
      if (inc.targetAt! - now > 0.05) {
        this.track(
          this.armTarget(inc, `${targetJobId(inc.id)}:${Math.round(now * 1000)}`).catch((e) =>
            this.log(`re-arming target ${inc.id} failed`, e),
          ),
        );
        return;
      }
      const targetS = inc.targetAt! - inc.reportedAt;
      await this.write(SYS_TIMERS, async (w) => {
        await this.raiseAlert(w, {
          kind: 'target_breached',
          severity: this.isImmediate(inc) ? 'critical' : 'warning',
          message: `${inc.id} (${inc.type}, P${inc.priority}) passed its ${fmtS(targetS)} arrival target with no unit on scene`,
          key: `target_breached:${inc.id}`,
          incidentId: inc.id,
        });
        await w.tx.appendEvent({
          kind: 'target_breached',
          incidentId: inc.id,
          actor: w.actor,
          at: w.at,
          data: { targetAt: iso(inc.targetAt!) },
        });
      });
    });
  }

  // ================================================================ EngineApi: incidents

  async reportIncident(
    input: ReportIncidentInput,
    idempotencyKey: string | undefined,
    actor: Actor,
  ): Promise<{ incident: IncidentView; created: boolean }> {
    this.ensureRunning();
    requireOperator(actor, 'report incidents');
    const type = this.catalog.get(input?.type);
    if (!type) {
      throw new ApiError(
        'UNKNOWN_INCIDENT_TYPE',
        `incident type "${String(input?.type)}" is not in the catalogue`,
        {
          field: 'type',
        },
      );
    }
    const location = checkLonLat(input.location, 'location');
    let priority: Priority = type.priority;
    if (input.priority !== undefined) {
      if (![1, 2, 3, 4].includes(input.priority)) throw invalidField('priority', 'must be 1, 2, 3 or 4');
      priority = input.priority;
    }
    const received = this.now();
    let reportedAt = received;
    if (input.reportedAt !== undefined) {
      reportedAt = parseIsoTime(input.reportedAt, 'reportedAt');
      if (reportedAt > received + 60) throw invalidField('reportedAt', 'lies in the future');
    }
    const source = checkText(input.source, 'source', 100);
    const description = checkText(input.description, 'description', 4000);
    const callback = checkCallback(input.callback, {
      allowHttp: this.config.callbackAllowHttp,
      allowPrivate: this.config.callbackAllowPrivate,
    });
    const key =
      idempotencyKey === undefined ? undefined : checkText(idempotencyKey, 'idempotencyKey', 200, true);
    const place = this.areas?.place(location) ?? {};
    const payload: JsonObject = { immediate: type.immediate };
    payload.duty = { ...routeDuty(type.type, place, this.catalog, this.areas) };
    if (source !== undefined) payload.source = source;
    if (description !== undefined) payload.description = description;
    if (callback !== undefined) payload.callback = callback;
    if (input.priority !== undefined && input.priority !== type.priority) payload.priorityOverride = true;
    const fingerprint = JSON.stringify([
      type.type,
      location,
      priority,
      source ?? null,
      description ?? null,
      callback ?? null,
    ]);

    return this.serial(async () => {
      if (key !== undefined) {
        const merged = this.mergedKeys.get(key);
        if (merged) {
          if (merged.fingerprint !== fingerprint) throw new ApiError('IDEMPOTENCY_MISMATCH');
          const rec =
            this.mirror.incidents.get(merged.incidentId) ?? (await this.db.getIncident(merged.incidentId));
          if (rec) return { incident: this.incidentViewOf(rec), created: false };
        }
        // A key this engine stored: a replay, answered without touching the store.
        const known = this.knownKeys.get(key);
        if (known) {
          if (known.fingerprint !== fingerprint) throw new ApiError('IDEMPOTENCY_MISMATCH');
          const rec =
            this.mirror.incidents.get(known.incidentId) ??
            this.closedViews.get(known.incidentId) ??
            (await this.db.getIncident(known.incidentId));
          if (rec) return { incident: this.incidentViewOf(rec), created: false };
        }
      }
      const dup = this.findDuplicate(type.type, location, reportedAt);
      const actorId = actorTag(actor);
      // The intake job's work (mirror, decision, target timer) is done by this commit and its
      // after-hooks; a restarted engine redoes it for every open incident (start: a decision
      // round and the sweep). So the job is written only when the reporter is to hear back by
      // webhook: a job per incident was three queue round trips (add, take, finish) and
      // three outbox writes for nothing.
      const intakeJob = callsBack(payload);
      try {
        return await this.write(
          actorId,
          async (w) => {
            const r = await w.tx.createIncident(
              {
                type: type.type,
                priority,
                location,
                reportedAt,
                ...(place.cell !== undefined ? { cell: place.cell } : {}),
                ...(place.area !== undefined ? { area: place.area } : {}),
                targetAt: reportedAt + type.targetS,
                payload,
              },
              {
                actor: actorId,
                at: w.at,
                fingerprint,
                ...(key !== undefined ? { idempotencyKey: key } : {}),
                eventData: { source: source ?? null },
                // Written at commit unless it may merge into a duplicate (rolled back then).
                writeBehind: dup === undefined,
                ...(intakeJob ? {} : { job: false as const }),
              },
            );
            // Known at once: the next batch's work may run before this one commits (lane.ts).
            if (key !== undefined) {
              this.rememberKey(key, r.incident.id, fingerprint);
              if (r.created) w.onRollback(() => this.knownKeys.delete(key));
            }
            if (!r.created) {
              const cur = this.mirror.incidents.get(r.incident.id) ?? r.incident;
              return { incident: this.incidentViewOf(cur), created: false };
            }
            if (dup) throw new MergeIntoDuplicate();
            w.wroteOutbox = intakeJob;
            w.touchedIncidents.add(r.incident.id);
            this.mirror.putIncident(r.incident);
            w.createdIncidents.add(r.incident.id);
            w.push([CONSOLES], 'incident:created', () => this.incidentViewById(r.incident.id));
            this.requestDecision('incident reported');
            w.after(() => {
              const id = r.incident.id;
              if (intakeJob) {
                this.intakeDone.add(id);
                if (this.intakeDone.size > KNOWN_KEYS_KEEP)
                  this.intakeDone.delete(this.intakeDone.values().next().value!);
              }
              const inc = this.mirror.incidents.get(id);
              if (inc && this.needsTargetTimer(inc))
                return this.armLater(targetJobId(id), inc.targetAt!, () => this.armTarget(inc));
            });
            return { incident: this.incidentViewOf(r.incident), created: true };
          },
          { savepoint: dup !== undefined },
        );
      } catch (err) {
        if (!(err instanceof MergeIntoDuplicate) || !dup) throw err;
      }
      // A duplicate: the new report was rolled back; it becomes an event on the open incident.
      await this.write(actorId, async (w) => {
        await w.tx.appendEvent({
          kind: 'duplicate_report',
          incidentId: dup.id,
          actor: actorId,
          at: w.at,
          data: {
            location,
            reportedAt: iso(reportedAt),
            distanceM: Math.round(haversineM(location, dup.location)),
            ...(source !== undefined ? { source } : {}),
            ...(description !== undefined ? { description } : {}),
            ...(callback !== undefined ? { callback } : {}),
            ...(key !== undefined ? { idempotencyKey: key } : {}),
          },
        });
        w.changedIncidents.add(dup.id);
        if (key !== undefined) {
          this.mergedKeys.set(key, { incidentId: dup.id, fingerprint });
          w.onRollback(() => this.mergedKeys.delete(key));
          if (this.mergedKeys.size > MERGED_KEYS_KEEP)
            this.mergedKeys.delete(this.mergedKeys.keys().next().value!);
        }
      });
      const cur = this.mirror.incidents.get(dup.id) ?? dup;
      return { incident: this.incidentViewOf(cur), created: false };
    });
  }

  private rememberKey(key: string, incidentId: string, fingerprint: string): void {
    this.knownKeys.delete(key);
    this.knownKeys.set(key, { incidentId, fingerprint });
    if (this.knownKeys.size > KNOWN_KEYS_KEEP) this.knownKeys.delete(this.knownKeys.keys().next().value!);
  }

  private findDuplicate(type: string, location: LonLat, reportedAt: number): IncidentRecord | undefined {
    let best: IncidentRecord | undefined;
    let bestD = Number.POSITIVE_INFINITY;
    for (const inc of this.mirror.open.values()) {
      if (inc.type !== type) continue;
      if (Math.abs(inc.reportedAt - reportedAt) > this.config.duplicateWindowS) continue;
      const d = haversineM(location, inc.location);
      if (d <= this.config.duplicateRadiusM && d < bestD) {
        best = inc;
        bestD = d;
      }
    }
    return best;
  }

  async listIncidents(
    filter: { status?: string; open?: boolean; limit?: number; offset?: number },
    actor: Actor,
  ): Promise<IncidentView[]> {
    this.ensureRunning();
    if (actor.role === 'unit') {
      const mine = await this.store.listAssignments({ unitId: actor.unitId ?? '\u0000', limit: 100_000 });
      const ids = [...new Set(mine.map((a) => a.incidentId))].reverse();
      const out: IncidentView[] = [];
      for (const id of ids) {
        const rec = this.mirror.incidents.get(id) ?? (await this.store.getIncident(id));
        if (!rec) continue;
        if (filter.status !== undefined && rec.status !== filter.status) continue;
        if (filter.open !== undefined && filter.open !== !['closed', 'cancelled'].includes(rec.status))
          continue;
        out.push(this.incidentViewOf(rec));
      }
      const offset = Math.max(0, filter.offset ?? 0);
      return out.slice(offset, offset + Math.min(1000, filter.limit ?? 100));
    }
    try {
      const recs = await this.store.listIncidents({
        ...(filter.status !== undefined ? { status: filter.status as IncidentStatus } : {}),
        ...(filter.open !== undefined ? { open: filter.open } : {}),
        ...(filter.limit !== undefined ? { limit: filter.limit } : {}),
        ...(filter.offset !== undefined ? { offset: filter.offset } : {}),
      });
      return recs.map((r) => this.incidentViewOf(this.mirror.incidents.get(r.id) ?? r));
    } catch (err) {
      throw toApi(err);
    }
  }

  async getIncident(id: string, actor: Actor): Promise<IncidentDetailView> {
    this.ensureRunning();
    const d = await this.store.getIncident(id);
    if (!d) throw new ApiError('NOT_FOUND', `incident ${id} not found`);
    let assignments = d.assignments;
    let timeline = d.timeline;
    if (actor.role === 'unit') {
      assignments = assignments.filter((a) => a.unitId === actor.unitId);
      if (assignments.length === 0) throw new ApiError('NOT_FOUND', `incident ${id} not found`);
      timeline = timeline.filter((e) => e.unitId === undefined || e.unitId === actor.unitId);
    }
    const { timeline: _t, assignments: _a, ...rec } = d;
    // One committed read: status, units, timeline and assignments alike. The mirror runs
    // ahead of the store while a batch commits; its status beside the store's timeline once
    // said `resolved` before the resolve event was there.
    return {
      ...this.incidentViewOf(rec, rec.assignedUnitIds ?? []),
      timeline: timeline.map(timelineEntry),
      assignments: assignments.map(assignmentView),
    };
  }

  async assign(incidentId: string, unitId: string, actor: Actor, reason?: string): Promise<AssignmentView> {
    this.ensureRunning();
    requireOperator(actor, 'assign units');
    const why = checkText(reason, 'reason', 500);
    return this.serial(async () => {
      const inc = await this.openIncident(incidentId);
      if (inc.status === 'resolved')
        throw new ApiError('INVALID_TRANSITION', `incident ${incidentId} is resolved`);
      const unit = this.mirror.units.get(unitId);
      if (!unit) throw new ApiError('NOT_FOUND', `unit ${unitId} not found`);
      const status = this.mirror.unitStatus(unit);
      if (status === 'off_duty' || status === 'out_of_service') {
        throw new ApiError('INVALID_TRANSITION', `unit ${unitId} is ${status}`);
      }
      const cur = this.mirror.activeOfUnit(unitId);
      if (cur?.incidentId === incidentId) return assignmentView(cur);
      if (cur?.status === 'on_scene') {
        throw new ApiError('UNIT_BUSY', `unit ${unitId} is on scene at ${cur.incidentId}; clear it first`);
      }
      const type = this.typeOf(inc);
      const active = this.mirror.activeFor(incidentId);
      const open = (cap: string) =>
        (type.requires[cap] ?? 0) - active.filter((a) => a.capability === cap).length;
      const required = Object.keys(type.requires).filter((c) => unit.capabilities.includes(c));
      const capability = required.find((c) => open(c) > 0) ?? required[0] ?? unit.capabilities[0];
      // Reassignment: the package is full in that capability → the newest not-on-scene holder is released.
      const replaced =
        open(capability) <= 0
          ? active
              .filter((a) => a.capability === capability && a.status !== 'on_scene')
              .sort((a, b) => b.offeredAt - a.offeredAt)[0]
          : undefined;
      const from = unit.position ?? unit.home;
      const etaS =
        (cur?.status === 'en_route' ? 0 : unit.turnoutS) +
        this.travel.travelS(from, inc.location, unit.speedKmh);
      const lateS = Math.max(
        0,
        inc.reportedAt + type.targetS - this.now() < etaS
          ? etaS - (inc.reportedAt + type.targetS - this.now())
          : 0,
      );
      const actorId = actorTag(actor);
      const rec = await this.write(actorId, async (w) => {
        if (replaced) {
          await this.endAssignment(w, replaced, 'cancelled', {
            reason: `reassigned to ${unitId} by ${actorId}`,
            eventKind: 'released',
            replacedInSameChange: true,
          });
        }
        if (cur) {
          await this.endAssignment(w, cur, 'preempted', {
            reason: `taken for ${incidentId} by ${actorId}${why ? `: ${why}` : ''}`,
            eventData: { toIncidentId: incidentId, override: true },
            freeUnitAs: false,
          });
        }
        return this.offer(
          w,
          this.mirror.incidents.get(incidentId) ?? inc,
          unitId,
          {
            capability,
            etaS,
            crossesJurisdiction: !!(unit.homeArea && inc.area && unit.homeArea !== inc.area),
            ...(cur ? { preemptedFrom: cur.incidentId } : {}),
            explanation: {
              summary: `${unitId}: assigned by ${actorId} (dispatcher override), ETA ${fmtS(etaS)}${why ? ` — ${why}` : ''}`,
              etaS,
              targetS: type.targetS,
              lateS,
              alternatives: [],
            },
          },
          { override: true, ...(why ? { reason: why } : {}) },
        );
      });
      if (cur || replaced) this.requestDecision('dispatcher override');
      return assignmentView(rec);
    });
  }

  /** An incident that is open (not closed/cancelled); NOT_FOUND / INVALID_TRANSITION otherwise. */
  private async openIncident(id: string): Promise<IncidentRecord> {
    const inc = this.mirror.incidents.get(id);
    if (inc) return inc;
    const stored = await this.db.getIncident(id);
    if (!stored) throw new ApiError('NOT_FOUND', `incident ${id} not found`);
    throw new ApiError('INVALID_TRANSITION', `incident ${id} is ${stored.status}`);
  }

  async cancelIncident(incidentId: string, actor: Actor, reason?: string): Promise<IncidentView> {
    this.ensureRunning();
    requireOperator(actor, 'cancel incidents');
    const why = checkText(reason, 'reason', 500);
    return this.serial(async () => {
      const inc = await this.openIncident(incidentId);
      if (inc.status === 'resolved') {
        throw new ApiError('INVALID_TRANSITION', `incident ${incidentId} is resolved; close it instead`);
      }
      const rec = await this.write(actorTag(actor), async (w) => {
        for (const a of this.mirror.activeFor(incidentId)) {
          await this.endAssignment(w, a, 'cancelled', {
            reason: 'incident cancelled',
            eventKind: 'released',
          });
        }
        const cur = this.mirror.incidents.get(incidentId) ?? inc;
        return this.setIncidentStatus(w, cur, 'cancelled', why ? { reason: why } : undefined);
      });
      this.exclusions.clear(incidentId);
      this.requestDecision('incident cancelled');
      return this.incidentViewOf(rec);
    });
  }

  async closeIncident(incidentId: string, actor: Actor, note?: string): Promise<IncidentView> {
    this.ensureRunning();
    requireOperator(actor, 'close incidents');
    const text = checkText(note, 'note', 2000);
    return this.serial(async () => {
      const inc = await this.openIncident(incidentId);
      const all = await this.db.listAssignments({ incidentId });
      const reached =
        all.some((a) => a.onSceneAt !== undefined) || inc.status === 'on_scene' || inc.status === 'resolved';
      const rec = await this.write(actorTag(actor), async (w) => {
        for (const a of this.mirror.activeFor(incidentId)) {
          if (a.status === 'on_scene')
            await this.endAssignment(w, a, 'cleared', { reason: 'incident closed' });
          else
            await this.endAssignment(w, a, 'cancelled', { reason: 'incident closed', eventKind: 'released' });
        }
        const cur = this.mirror.incidents.get(incidentId) ?? inc;
        const data: JsonObject = { from: cur.status };
        if (text !== undefined) data.note = text;
        if (!reached) {
          // Allowed (resolved by phone, false alarm…), but recorded for review.
          data.withoutOnScene = true;
          data.flagged = true;
        }
        return this.setIncidentStatus(w, cur, 'closed', data);
      });
      this.exclusions.clear(incidentId);
      this.requestDecision('incident closed');
      return this.incidentViewOf(rec);
    });
  }

  // ================================================================ EngineApi: units

  async listUnits(actor: Actor): Promise<UnitView[]> {
    this.ensureRunning();
    const units = [...this.mirror.units.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (actor.role === 'unit')
      return units.filter((u) => u.id === actor.unitId).map((u) => this.unitViewOf(u));
    return units.map((u) => this.unitViewOf(u));
  }

  async upsertUnit(id: string, input: UnitUpsertInput, actor: Actor): Promise<UnitView> {
    this.ensureRunning();
    requireRole(actor, ['admin', 'system'], 'register or update units');
    if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(id)) {
      throw invalidField('id', 'must be 1–64 characters: letters, digits, . _ : -');
    }
    const department = checkText(input?.department, 'department', 100, true)!;
    if (!Array.isArray(input.capabilities) || input.capabilities.length === 0) {
      throw invalidField('capabilities', 'must list at least one capability');
    }
    const capabilities = input.capabilities.map((c, i) => checkText(c, `capabilities[${i}]`, 64, true)!);
    const home = checkLonLat(input.home, 'home');
    if (typeof input.speedKmh !== 'number' || !(input.speedKmh > 0 && input.speedKmh <= 300)) {
      throw invalidField('speedKmh', 'must be > 0 and ≤ 300');
    }
    if (typeof input.turnoutS !== 'number' || !Number.isFinite(input.turnoutS) || input.turnoutS < 0) {
      throw invalidField('turnoutS', 'must be ≥ 0 seconds');
    }
    const homeArea = checkText(input.homeArea, 'homeArea', 100) ?? this.areas?.place(home).area;
    if (input.status !== undefined && !['available', 'off_duty', 'out_of_service'].includes(input.status)) {
      throw invalidField('status', 'may be set to available, off_duty or out_of_service');
    }
    // The same registration again (every restart re-applies the district file): nothing to
    // write, audit or decide, and no place in the lane behind a restart's backlog. Read
    // outside the lane, so checked again inside it before anything is written.
    const unchanged = (cur: UnitRecord | undefined): cur is UnitRecord =>
      !!cur &&
      (input.status === undefined || input.status === cur.status) &&
      cur.department === department &&
      sameList(cur.capabilities, capabilities) &&
      cur.home[0] === home[0] &&
      cur.home[1] === home[1] &&
      cur.homeArea === homeArea &&
      cur.speedKmh === input.speedKmh &&
      cur.turnoutS === input.turnoutS;
    if (this.running && unchanged(this.mirror.units.get(id))) return this.unitViewById(id)!;
    return this.serial(async () => {
      const cur = this.mirror.units.get(id);
      const active = this.mirror.activeOfUnit(id);
      const status = input.status;
      if (active && status !== undefined && status !== 'out_of_service') {
        throw new ApiError('INVALID_TRANSITION', `unit ${id} has an active assignment (${active.status})`);
      }
      if (unchanged(cur)) return this.unitViewById(id)!;
      const actorId = actorTag(actor);
      await this.write(actorId, async (w) => {
        const base: UnitRecord = cur ?? {
          id,
          department,
          capabilities,
          home,
          speedKmh: input.speedKmh,
          turnoutS: input.turnoutS,
          status: 'available',
          payload: {},
          version: 0,
          createdAt: w.at,
          updatedAt: w.at,
        };
        if (!cur) this.mirror.putUnit(base);
        const from = cur ? this.mirror.unitStatus(cur) : 'available';
        const patch: Partial<UnitRecord> = {
          department,
          capabilities,
          home,
          homeArea,
          speedKmh: input.speedKmh,
          turnoutS: input.turnoutS,
        };
        if (!active && status !== undefined) patch.status = status;
        try {
          await this.setUnit(w, id, patch);
        } catch (err) {
          if (!cur) this.mirror.removeUnit(id);
          throw err;
        }
        await w.tx.appendAudit({
          actor: actorId,
          action: cur ? 'unit.update' : 'unit.register',
          subject: id,
          at: w.at,
          data: {
            department,
            capabilities,
            home,
            homeArea: homeArea ?? null,
            speedKmh: input.speedKmh,
            turnoutS: input.turnoutS,
            status: status ?? null,
          },
        });
        if (active && status === 'out_of_service') {
          await this.endAssignment(w, active, 'cancelled', {
            reason: 'unit out of service',
            eventKind: 'released',
            freeUnitAs: 'out_of_service',
          });
        } else if (status !== undefined) {
          await this.unitStatusEvent(w, id, from, status);
        }
      });
      this.requestDecision('unit registered');
      return this.unitViewById(id)!;
    });
  }

  async reportLocation(unitId: string, position: LonLat, actor: Actor, atMs?: number): Promise<void> {
    this.ensureRunning();
    requireActFor(actor, unitId, 'report a location');
    const pos = checkLonLat(position, 'position');
    const nowMs = this.now() * 1000;
    if (atMs !== undefined && (typeof atMs !== 'number' || !Number.isFinite(atMs) || atMs > nowMs + 60_000)) {
      throw invalidField('at', 'must be epoch milliseconds, not in the future');
    }
    const u = this.mirror.units.get(unitId);
    if (!u) throw new ApiError('NOT_FOUND', `unit ${unitId} not found`);
    const fix = atMs ?? nowMs;
    if (fix < (this.lastFixMs.get(unitId) ?? Number.NEGATIVE_INFINITY)) return; // an older fix arriving late
    this.lastFixMs.set(unitId, fix);
    this.mirror.placeUnit(unitId, pos);
    this.scheduleLocationFlush(unitId, nowMs);
  }

  private scheduleLocationFlush(unitId: string, nowMs: number): void {
    if (this.locTimers.has(unitId)) return;
    const due =
      (this.lastLocPublishMs.get(unitId) ?? Number.NEGATIVE_INFINITY) + this.config.locationPublishMs;
    const run = () => {
      this.locTimers.delete(unitId);
      if (!this.running) return;
      this.lastLocPublishMs.set(unitId, this.now() * 1000);
      this.track(
        this.lane
          .run(() => this.flushLocation(unitId))
          .catch((e) => this.log(`location of ${unitId} not written`, e)),
      );
    };
    if (due <= nowMs) {
      this.locTimers.set(unitId, setTimeout(run, 0));
    } else {
      this.locTimers.set(unitId, setTimeout(run, due - nowMs));
    }
  }

  private async flushLocation(unitId: string): Promise<void> {
    if (!this.running || !this.mirror.units.has(unitId)) return;
    const now = this.now();
    const persist =
      now - (this.lastLocPersist.get(unitId) ?? Number.NEGATIVE_INFINITY) >= this.config.locationPersistS;
    await this.write(`unit:${unitId}`, async (w) => {
      if (persist) {
        this.lastLocPersist.set(unitId, now);
        await this.setUnit(w, unitId, {});
      }
      w.changedUnits.delete(unitId);
      w.push([CONSOLES], 'unit:updated', () => this.unitViewById(unitId));
    });
  }

  async reportStatus(
    unitId: string,
    status: UnitStatus,
    actor: Actor,
    incidentId?: string,
  ): Promise<UnitView> {
    this.ensureRunning();
    requireActFor(actor, unitId, 'report a status');
    const allowed: UnitStatus[] = ['en_route', 'on_scene', 'available', 'off_duty', 'out_of_service'];
    if (!allowed.includes(status)) {
      throw new ApiError(
        'INVALID_TRANSITION',
        `a unit cannot report ${String(status)} (one of ${allowed.join(', ')})`,
      );
    }
    return this.serial(async () => {
      const unit = this.mirror.units.get(unitId);
      if (!unit) throw new ApiError('NOT_FOUND', `unit ${unitId} not found`);
      const cur = this.mirror.activeOfUnit(unitId);
      const from = this.mirror.unitStatus(unit);
      if (
        incidentId !== undefined &&
        cur?.incidentId !== incidentId &&
        (status === 'en_route' || status === 'on_scene')
      ) {
        throw new ApiError('INVALID_TRANSITION', `unit ${unitId} is not assigned to ${incidentId}`);
      }
      const actorId = actorTag(actor);
      switch (status) {
        case 'en_route': {
          if (!cur)
            throw new ApiError('INVALID_TRANSITION', `unit ${unitId} has no assignment to be en route to`);
          if (cur.status === 'en_route') return this.unitViewOf(unit);
          if (cur.status === 'on_scene')
            throw new ApiError('INVALID_TRANSITION', `unit ${unitId} is already on scene`);
          await this.write(actorId, async (w) => {
            const rec = await this.moveAssignment(
              w,
              cur,
              'en_route',
              unit.position ? { eventData: { position: unit.position } } : {},
            );
            await this.setUnit(w, unitId, this.unitPatchFor(rec));
            await this.syncIncident(w, rec.incidentId);
          });
          break;
        }
        case 'on_scene': {
          if (!cur)
            throw new ApiError('INVALID_TRANSITION', `unit ${unitId} has no assignment to be on scene at`);
          if (cur.status === 'on_scene') return this.unitViewOf(unit);
          const inc = this.mirror.incidents.get(cur.incidentId);
          const pos = unit.position;
          const distanceM = pos && inc ? Math.round(haversineM(pos, inc.location)) : undefined;
          const far = distanceM !== undefined && distanceM > this.config.onSceneFarM;
          // The trip's facts go on the event, so that its review reads nothing back.
          const trip = this.mirror.tripStarts.get(cur);
          await this.write(actorId, async (w) => {
            const rec = await this.moveAssignment(w, cur, 'on_scene', {
              eventData: {
                ...(distanceM !== undefined ? { distanceM } : { position: 'unknown' }),
                ...(far ? { flagged: true, review: 'on_scene_far' } : {}),
                ...(inc && trip
                  ? {
                      incidentLocation: [inc.location[0], inc.location[1]],
                      trip: { t: trip.t, via: trip.via, position: [trip.position[0], trip.position[1]] },
                      speedKmh: unit.speedKmh,
                    }
                  : {}),
              },
            });
            await this.setUnit(w, unitId, {
              ...this.unitPatchFor(rec),
              ...(pos || !inc ? {} : { position: inc.location }),
            });
            await this.syncIncident(w, rec.incidentId);
            if (far && inc) {
              await this.raiseAlert(w, {
                kind: 'on_scene_far',
                severity: 'warning',
                message: `${unitId} reported on scene at ${inc.id} ${distanceM} m from the incident (limit ${this.config.onSceneFarM} m); flagged for review`,
                key: `on_scene_far:${rec.id}`,
                incidentId: inc.id,
                unitId,
              });
            }
          });
          break;
        }
        case 'available': {
          if (cur) {
            if (cur.status !== 'on_scene') {
              throw new ApiError(
                'INVALID_TRANSITION',
                `unit ${unitId} is ${cur.status === 'en_route' ? 'en route' : 'offered'} to ${cur.incidentId}: decline, or report on scene first`,
              );
            }
            await this.write(actorId, async (w) => {
              await this.endAssignment(w, cur, 'cleared');
            });
          } else if (from !== 'available') {
            await this.write(actorId, async (w) => {
              await this.setUnit(w, unitId, this.unitPatchFor(undefined, 'available'));
              await this.unitStatusEvent(w, unitId, from, 'available');
            });
          }
          this.requestDecision('unit available');
          break;
        }
        case 'off_duty': {
          if (cur) {
            throw new ApiError(
              'INVALID_TRANSITION',
              `unit ${unitId} has an active assignment; clear it first`,
            );
          }
          if (from !== 'off_duty') {
            await this.write(actorId, async (w) => {
              await this.setUnit(w, unitId, this.unitPatchFor(undefined, 'off_duty'));
              await this.unitStatusEvent(w, unitId, from, 'off_duty');
            });
          }
          break;
        }
        case 'out_of_service': {
          if (cur) {
            await this.write(actorId, async (w) => {
              await this.endAssignment(w, cur, 'cancelled', {
                reason: 'unit out of service',
                eventKind: 'released',
                freeUnitAs: 'out_of_service',
              });
            });
            this.requestDecision('unit out of service');
          } else if (from !== 'out_of_service') {
            await this.write(actorId, async (w) => {
              await this.setUnit(w, unitId, this.unitPatchFor(undefined, 'out_of_service'));
              await this.unitStatusEvent(w, unitId, from, 'out_of_service');
            });
          }
          break;
        }
      }
      return this.unitViewById(unitId)!;
    });
  }

  async acknowledge(
    assignmentId: string,
    accept: boolean,
    actor: Actor,
    reason?: string,
  ): Promise<AssignmentView> {
    this.ensureRunning();
    if (actor.role !== 'unit') requireOperator(actor, 'acknowledge offers');
    if (typeof accept !== 'boolean') throw invalidField('accept', 'must be true or false');
    const why = accept ? checkText(reason, 'reason', 500) : checkText(reason, 'reason', 500, true);
    return this.serial(async () => {
      const a = this.mirror.assignments.get(assignmentId) ?? (await this.db.getAssignment(assignmentId));
      // Another unit's assignment does not exist for a unit (ids do not leak).
      if (!a || (actor.role === 'unit' && a.unitId !== actor.unitId)) {
        throw new ApiError('NOT_FOUND', `assignment ${assignmentId} not found`);
      }
      if (a.status !== 'offered') {
        if (accept && (a.status === 'accepted' || a.status === 'en_route' || a.status === 'on_scene')) {
          return assignmentView(a);
        }
        if (!accept && a.status === 'declined') return assignmentView(a);
        throw new ApiError('INVALID_TRANSITION', `assignment ${assignmentId} is ${a.status}`);
      }
      const actorId = actorTag(actor);
      if (accept) {
        const rec = await this.write(actorId, async (w) => {
          return this.moveAssignment(w, a, 'accepted', why ? { eventData: { note: why } } : {});
        });
        return assignmentView(rec);
      }
      const rec = await this.write(actorId, async (w) => {
        const r = await this.endAssignment(w, a, 'declined', { reason: why! });
        await this.countNonResponse(w, a.unitId);
        this.exclude(w, a.incidentId, a.unitId);
        this.requestDecision('offer declined');
        return r;
      });
      return assignmentView(rec);
    });
  }

  async listAssignments(
    filter: { unitId?: string; active?: boolean },
    actor: Actor,
  ): Promise<AssignmentView[]> {
    this.ensureRunning();
    let unitId = filter.unitId;
    if (actor.role === 'unit') {
      if (unitId !== undefined && unitId !== actor.unitId) {
        throw new ApiError('FORBIDDEN', `unit ${actor.unitId} may only list its own assignments`);
      }
      unitId = actor.unitId ?? '\u0000';
    }
    if (filter.active) {
      const list = [...this.mirror.assignments.values()]
        .filter((a) => unitId === undefined || a.unitId === unitId)
        .sort((a, b) => a.offeredAt - b.offeredAt);
      return list.map(assignmentView);
    }
    const recs = await this.store.listAssignments({
      ...(unitId !== undefined ? { unitId } : {}),
      ...(filter.active === false
        ? { status: ['cleared', 'declined', 'timed_out', 'preempted', 'cancelled'] }
        : {}),
      limit: 100_000,
    });
    // Newest first, at most 1000 (the store lists oldest first with no offset).
    return recs.slice(-1000).reverse().map(assignmentView);
  }

  // ================================================================ EngineApi: alerts, KPIs

  async listAlerts(actor: Actor): Promise<AlertView[]> {
    this.ensureRunning();
    requireRole(actor, ['dispatcher', 'admin', 'planner', 'system'], 'read alerts');
    return this.alerts.open().map(alertView);
  }

  async acknowledgeAlert(alertId: string, actor: Actor): Promise<void> {
    this.ensureRunning();
    requireOperator(actor, 'acknowledge alerts');
    await this.serial(async () => {
      const a = this.alerts.get(alertId);
      if (!a) throw new ApiError('NOT_FOUND', `alert ${alertId} not found`);
      if (a.acknowledgedAt) return;
      const by = actorTag(actor);
      await this.write(by, async (w) => {
        const at = iso(w.at);
        await w.tx.pushMessage(ALERT_LEDGER, 'alert_ack', { alertId, by, at }, { at: w.at });
        await w.tx.appendEvent({
          kind: 'alert_ack',
          actor: by,
          at: w.at,
          ...(a.incidentId !== undefined ? { incidentId: a.incidentId } : {}),
          ...(a.unitId !== undefined ? { unitId: a.unitId } : {}),
          data: { alertId, alertKind: a.kind },
        });
        w.push([CONSOLES], 'alert:updated', () => ({
          ...alertView(a),
          acknowledgedAt: at,
          acknowledgedBy: by,
        }));
        w.after(() => this.alerts.acknowledge(alertId, by, at));
      });
    });
  }

  async district(actor: Actor): Promise<DistrictConfig> {
    requireRole(
      actor,
      ['dispatcher', 'planner', 'admin', 'unit', 'system'],
      'read the district configuration',
    );
    const features = this.areas ? [...this.areas.areas(), ...this.areas.cells()] : [];
    return {
      areas: { type: 'FeatureCollection', features },
      catalog: [...this.catalog.list],
      immediateTypes: [...this.catalog.immediateTypes],
    };
  }

  async kpis(q: KpiQuery, actor: Actor): Promise<unknown> {
    this.ensureRunning();
    requireRole(actor, ['dispatcher', 'planner', 'admin', 'system'], 'read KPIs');
    const now = this.now();
    const groupBy = checkGroupBy(q.groupBy);
    const { from, to } = resolveWindow(q, now);
    return liveKpis({
      store: this.store,
      catalog: this.catalog,
      ...(this.areas ? { areas: this.areas } : {}),
      units: [...this.mirror.units.values()],
      from,
      to,
      now,
      solverMs: this.solverMs,
      ...(groupBy ? { groupBy } : {}),
      ...(q.series ? { series: true } : {}),
    });
  }

  // ================================================================ for operators and metrics

  /** True while a decision is queued or a state change runs (tests wait for quiet on it). */
  get busy(): boolean {
    return this.decisionQueued || this.lane.size > 0 || this.background.size > 0;
  }

  /** Open incidents by status (for the `dispatch_incidents` gauge). */
  openIncidentCounts(): Record<string, number> {
    const out: Record<string, number> = { queued: 0, assigned: 0, en_route: 0, on_scene: 0, resolved: 0 };
    for (const i of this.mirror.incidents.values()) out[i.status] = (out[i.status] ?? 0) + 1;
    return out;
  }

  /** Every unit that holds more than one active assignment (always empty; a test and health check). */
  unitsWithTwoAssignments(): string[] {
    const seen = new Map<string, number>();
    for (const a of this.mirror.assignments.values()) seen.set(a.unitId, (seen.get(a.unitId) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([u]) => u);
  }
}

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** What consoles are told again when it changes (see applyUnserved). */
const PUSHED_KIND: Record<UnservedCode, string> = {
  no_capable_unit: 'none exists',
  none_in_reach: 'none free',
  reserved: 'none free',
  joint_incomplete: 'joint force',
};
