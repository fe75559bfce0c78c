// In-memory Store with the same semantics as SqlStore: the same validation, conflicts,
// idempotency, outbox leases, gap-free push sequences and the same audit hash chain.
// Transactions are serialised (like PGlite) and rolled back through an undo log.
// Its state lives in a MemoryDatabase, so "reopening" is a new MemoryStore on the same
// database object.

import type { IncidentStatus, UnitStatus } from '../core/types.ts';
import {
  type AuditRow,
  auditTime,
  ChainVerifier,
  GENESIS_HASH,
  jsonNormalise,
  nextAuditRow,
} from './audit-chain.ts';
import {
  applyAssignmentPatch,
  asList,
  assignmentCreatedWrites,
  assignmentUpdatedWrites,
  checkIncidentStatus,
  checkIncidentStatuses,
  clampLimit,
  incidentCreatedWrites,
  incidentFingerprint,
  incidentPatchWrites,
  incidentStatusWrites,
  newAssignmentRecord,
  newId,
  newIncidentRecord,
  obj,
  type SideWrites,
  unitRecord,
  validateAssignmentPatch,
  validateIncidentPatch,
  validateNewAssignment,
  validateNewIncident,
  validateUnit,
} from './common.ts';
import {
  type AssignmentFilter,
  type AssignmentPatch,
  type AssignmentRecord,
  type AuditInput,
  type AuditRecord,
  type AuditVerifyResult,
  type ClaimOptions,
  type CreateIncidentOptions,
  defaultNow,
  type EpochS,
  type EventFilter,
  FINAL_INCIDENT_STATUSES,
  type IncidentDetail,
  type IncidentFilter,
  type IncidentPatch,
  type IncidentRecord,
  isActiveAssignmentStatus,
  type MessageRecord,
  type NewAssignment,
  type NewEvent,
  type NewIncident,
  type OutboxJob,
  type OutboxRecord,
  roundMs,
  type Snapshot,
  type Store,
  type StoredEvent,
  StoreError,
  type StoreOptions,
  type UnitInput,
  type UnitRecord,
  type UpdateAssignmentOptions,
  type WriteOptions,
} from './store.ts';

const clone = <T>(v: T): T => structuredClone(v);
const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Plain state of a memory store. Tests may reach in (e.g. to tamper with `audit`). */
export class MemoryDatabase {
  units = new Map<string, UnitRecord>();
  incidents = new Map<string, IncidentRecord>();
  /** idempotency key → incident id and request fingerprint */
  idempotency = new Map<string, { id: string; fingerprint: string }>();
  assignments = new Map<string, AssignmentRecord>();
  /** unit id → id of its active assignment (the partial unique index). */
  activeByUnit = new Map<string, string>();
  events: StoredEvent[] = [];
  nextEventId = 1;
  outbox = new Map<number, OutboxRecord>();
  /** Ids of jobs not done, in id order. */
  pendingOutbox = new Set<number>();
  nextOutboxId = 1;
  messages = new Map<string, MessageRecord[]>();
  recipientSeq = new Map<string, number>();
  /** Audit rows in append order; `at` as stored (epoch seconds). */
  audit: AuditRecord[] = [];
  auditHead: { seq: number; hash: string } | undefined = { seq: 0, hash: GENESIS_HASH };
  /** Tail of the lock queue. */
  lock: Promise<void> = Promise.resolve();

  /** Empties every table (tests). */
  clear(): void {
    const fresh = new MemoryDatabase();
    const { lock } = this;
    Object.assign(this, fresh, { lock });
  }
}

/** Undo log of one transaction. */
class Tx {
  private readonly undo: (() => void)[] = [];
  record(fn: () => void): void {
    this.undo.push(fn);
  }
  mark(): number {
    return this.undo.length;
  }
  rollbackTo(mark: number): void {
    while (this.undo.length > mark) this.undo.pop()!();
  }
  setMap<K, V>(map: Map<K, V>, key: K, value: V): void {
    const had = map.has(key);
    const prev = map.get(key);
    map.set(key, value);
    this.record(() => (had ? map.set(key, prev as V) : map.delete(key)));
  }
  deleteMap<K, V>(map: Map<K, V>, key: K): void {
    if (!map.has(key)) return;
    const prev = map.get(key) as V;
    map.delete(key);
    this.record(() => map.set(key, prev));
  }
  addSet<V>(set: Set<V>, v: V): void {
    if (set.has(v)) return;
    set.add(v);
    this.record(() => set.delete(v));
  }
  deleteSet<V>(set: Set<V>, v: V): void {
    if (!set.has(v)) return;
    set.delete(v);
    // Re-adding would change iteration order; pending outbox ids are re-sorted on claim.
    this.record(() => set.add(v));
  }
  push<V>(arr: V[], v: V): void {
    arr.push(v);
    this.record(() => {
      arr.pop();
    });
  }
  assign<O extends object, K extends keyof O>(o: O, key: K, value: O[K]): void {
    const prev = o[key];
    o[key] = value;
    this.record(() => {
      o[key] = prev;
    });
  }
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly now: () => EpochS;
  private closed = false;

  constructor(
    readonly db: MemoryDatabase = new MemoryDatabase(),
    private readonly options: StoreOptions = {},
    /** Set on the store handed to a transaction callback. */
    private readonly tx?: Tx,
  ) {
    this.now = options.now ?? defaultNow;
  }

  private clock(at?: EpochS): EpochS {
    return roundMs(at ?? this.now());
  }

  private async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.db.lock;
    this.db.lock = prev.then(() => next);
    await prev;
    return release;
  }

  /** Runs a synchronous unit of work atomically (joining an open transaction). */
  private async run<T>(fn: (tx: Tx) => T): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    if (this.tx) {
      const mark = this.tx.mark();
      try {
        return fn(this.tx);
      } catch (err) {
        this.tx.rollbackTo(mark);
        throw err;
      }
    }
    const release = await this.acquire();
    const tx = new Tx();
    try {
      return fn(tx);
    } catch (err) {
      tx.rollbackTo(0);
      throw err;
    } finally {
      release();
    }
  }

  async savepoint<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (!this.tx) return this.transaction(fn);
    const mark = this.tx.mark();
    try {
      return await fn(this);
    } catch (err) {
      this.tx.rollbackTo(mark);
      throw err;
    }
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    if (this.tx) return fn(this);
    const release = await this.acquire();
    const tx = new Tx();
    try {
      return await fn(new MemoryStore(this.db, this.options, tx));
    } catch (err) {
      tx.rollbackTo(0);
      throw err;
    } finally {
      release();
    }
  }

  private side(tx: Tx, w: SideWrites): void {
    if (w.event) this.insertEvent(tx, w.event);
    if (w.job) this.insertOutbox(tx, w.job);
    if (w.audit) this.insertAudit(tx, w.audit);
  }

  // ------------------------------------------------------------ units

  async upsertUnit(unit: UnitInput, opts: { expectVersion?: number; at?: EpochS } = {}): Promise<UnitRecord> {
    validateUnit(unit);
    return this.run((tx) => {
      const at = this.clock(opts.at);
      const cur = this.db.units.get(unit.id);
      if (opts.expectVersion !== undefined) {
        if (!cur)
          throw new StoreError('NOT_FOUND', `unit ${unit.id} not found`, { entity: 'unit', id: unit.id });
        if (cur.version !== opts.expectVersion) {
          throw new StoreError('CONFLICT', `unit ${unit.id} is at version ${cur.version}`, {
            reason: 'stale',
            entity: 'unit',
            id: unit.id,
            version: cur.version,
          });
        }
      }
      const rec = unitRecord(unit, cur ? cur.version + 1 : 1, cur ? cur.createdAt : at, at);
      tx.setMap(this.db.units, unit.id, rec);
      return clone(rec);
    });
  }

  async getUnit(id: string): Promise<UnitRecord | undefined> {
    return this.run(() => {
      const u = this.db.units.get(id);
      return u ? clone(u) : undefined;
    });
  }

  async getUnits(ids: readonly string[]): Promise<UnitRecord[]> {
    return this.run(() => {
      const out: UnitRecord[] = [];
      for (const id of new Set(ids)) {
        const u = this.db.units.get(id);
        if (u) out.push(clone(u));
      }
      return out;
    });
  }

  async listUnits(
    filter: { status?: UnitStatus | UnitStatus[]; department?: string } = {},
  ): Promise<UnitRecord[]> {
    const statuses = asList(filter.status);
    return this.run(() =>
      [...this.db.units.values()]
        .filter(
          (u) =>
            (!statuses || statuses.includes(u.status)) &&
            (!filter.department || u.department === filter.department),
        )
        .sort((a, b) => byCodeUnit(a.id, b.id))
        .map(clone),
    );
  }

  // ------------------------------------------------------------ incidents

  private assignedUnits(): Map<string, string[]> {
    const active = [...this.db.activeByUnit.values()].map((id) => this.db.assignments.get(id)!);
    active.sort(orderAssignments);
    const out = new Map<string, string[]>();
    for (const a of active) {
      const list = out.get(a.incidentId) ?? [];
      list.push(a.unitId);
      out.set(a.incidentId, list);
    }
    return out;
  }

  private withAssigned(inc: IncidentRecord, assigned = this.assignedUnits()): IncidentRecord {
    return { ...clone(inc), assignedUnitIds: [...(assigned.get(inc.id) ?? [])] };
  }

  async createIncident(
    input: NewIncident,
    opts: CreateIncidentOptions,
  ): Promise<{ incident: IncidentRecord; created: boolean }> {
    validateNewIncident(input);
    const key = opts.idempotencyKey;
    const fingerprint = key === undefined ? undefined : (opts.fingerprint ?? incidentFingerprint(input));
    const id = input.id ?? newId('inc');
    return this.run((tx) => {
      const now = this.clock(opts.at);
      if (key !== undefined) {
        const prior = this.db.idempotency.get(key);
        if (prior) {
          if (prior.fingerprint !== fingerprint) {
            throw new StoreError(
              'IDEMPOTENCY_MISMATCH',
              `idempotency key ${key} was used with a different request`,
              {
                entity: 'incident',
                id: prior.id,
              },
            );
          }
          return { incident: this.withAssigned(this.db.incidents.get(prior.id)!), created: false };
        }
      }
      if (this.db.incidents.has(id)) {
        throw new StoreError('CONFLICT', `incident ${id} already exists`, {
          reason: 'duplicate_id',
          entity: 'incident',
          id,
        });
      }
      const rec = newIncidentRecord(id, input, now, key);
      if (key !== undefined) tx.setMap(this.db.idempotency, key, { id, fingerprint: fingerprint! });
      tx.setMap(this.db.incidents, id, rec);
      this.side(tx, incidentCreatedWrites(rec, { ...opts, at: now }));
      return { incident: clone(rec), created: true };
    });
  }

  async getIncidents(ids: readonly string[]): Promise<IncidentDetail[]> {
    const out: IncidentDetail[] = [];
    for (const id of new Set(ids)) {
      const d = await this.getIncident(id);
      if (d) out.push(d);
    }
    return out;
  }

  async getIncident(id: string): Promise<IncidentDetail | undefined> {
    return this.run(() => {
      const inc = this.db.incidents.get(id);
      if (!inc) return undefined;
      const assignments = [...this.db.assignments.values()]
        .filter((a) => a.incidentId === id)
        .sort(orderAssignments)
        .map(clone);
      return {
        ...clone(inc),
        assignedUnitIds: assignments.filter((a) => isActiveAssignmentStatus(a.status)).map((a) => a.unitId),
        timeline: this.db.events.filter((e) => e.incidentId === id).map(clone),
        assignments,
      };
    });
  }

  async listIncidents(filter: IncidentFilter = {}): Promise<IncidentRecord[]> {
    const statuses = asList(filter.status);
    if (statuses) checkIncidentStatuses(statuses, 'filter.status');
    const limit = clampLimit(filter.limit, 100, 1000);
    const offset = Math.max(0, Math.floor(filter.offset ?? 0));
    const from = filter.reportedFrom === undefined ? undefined : roundMs(filter.reportedFrom);
    const to = filter.reportedTo === undefined ? undefined : roundMs(filter.reportedTo);
    const dir = filter.order === 'asc' ? 1 : -1;
    return this.run(() => {
      const rows = [...this.db.incidents.values()].filter((i) => {
        const final = FINAL_INCIDENT_STATUSES.includes(i.status);
        return (
          (!statuses || statuses.includes(i.status)) &&
          (filter.open === undefined || filter.open !== final) &&
          (filter.type === undefined || i.type === filter.type) &&
          (filter.area === undefined || i.area === filter.area) &&
          (from === undefined || i.reportedAt >= from) &&
          (to === undefined || i.reportedAt < to)
        );
      });
      rows.sort((a, b) => dir * (a.reportedAt - b.reportedAt || byCodeUnit(a.id, b.id)));
      const assigned = this.assignedUnits();
      return rows.slice(offset, offset + limit).map((i) => this.withAssigned(i, assigned));
    });
  }

  private incidentOrThrow(id: string): IncidentRecord {
    const inc = this.db.incidents.get(id);
    if (!inc) throw new StoreError('NOT_FOUND', `incident ${id} not found`, { entity: 'incident', id });
    return inc;
  }

  async updateIncidentStatus(
    id: string,
    from: IncidentStatus | readonly IncidentStatus[],
    to: IncidentStatus,
    opts: WriteOptions,
  ): Promise<IncidentRecord> {
    checkIncidentStatus(to, 'to');
    const fromList = asList(from) as IncidentStatus[];
    checkIncidentStatuses(fromList, 'from');
    return this.run((tx) => {
      const at = this.clock(opts.at);
      const cur = this.incidentOrThrow(id);
      const prev = cur.status;
      if (!fromList.includes(prev)) {
        throw new StoreError('CONFLICT', `incident ${id} is ${prev}, not ${fromList.join('|')}`, {
          reason: 'stale',
          entity: 'incident',
          id,
          status: prev,
        });
      }
      const next: IncidentRecord = { ...cur, status: to, version: cur.version + 1, updatedAt: at };
      if (FINAL_INCIDENT_STATUSES.includes(to)) next.closedAt = at;
      tx.setMap(this.db.incidents, id, next);
      const rec = this.withAssigned(next);
      this.side(tx, incidentStatusWrites(rec, prev, opts, at));
      return rec;
    });
  }

  async updateIncident(
    id: string,
    patch: IncidentPatch,
    opts: WriteOptions & { expectVersion?: number },
  ): Promise<IncidentRecord> {
    validateIncidentPatch(patch);
    return this.run((tx) => {
      const at = this.clock(opts.at);
      const cur = this.incidentOrThrow(id);
      if (opts.expectVersion !== undefined && cur.version !== opts.expectVersion) {
        throw new StoreError('CONFLICT', `incident ${id} is at version ${cur.version}`, {
          reason: 'stale',
          entity: 'incident',
          id,
          version: cur.version,
        });
      }
      const next: IncidentRecord = { ...clone(cur), version: cur.version + 1, updatedAt: at };
      if (patch.priority !== undefined) next.priority = patch.priority;
      if (patch.targetAt !== undefined) {
        if (patch.targetAt === null) delete next.targetAt;
        else next.targetAt = roundMs(patch.targetAt);
      }
      if (patch.cell !== undefined) {
        if (patch.cell === null) delete next.cell;
        else next.cell = patch.cell;
      }
      if (patch.area !== undefined) {
        if (patch.area === null) delete next.area;
        else next.area = patch.area;
      }
      if (patch.payload !== undefined) next.payload = { ...cur.payload, ...obj(patch.payload) };
      tx.setMap(this.db.incidents, id, next);
      const rec = this.withAssigned(next);
      this.side(tx, incidentPatchWrites(rec, patch, opts, at));
      return rec;
    });
  }

  // ------------------------------------------------------------ assignments

  async createAssignment(input: NewAssignment, opts: WriteOptions): Promise<AssignmentRecord> {
    validateNewAssignment(input);
    const id = input.id ?? newId('asg');
    return this.run((tx) => {
      const at = this.clock(opts.at);
      if (!this.db.incidents.has(input.incidentId)) {
        throw new StoreError('NOT_FOUND', `incident ${input.incidentId} not found`, {
          entity: 'incident',
          id: input.incidentId,
        });
      }
      if (!this.db.units.has(input.unitId)) {
        throw new StoreError('NOT_FOUND', `unit ${input.unitId} not found`, {
          entity: 'unit',
          id: input.unitId,
        });
      }
      if (this.db.assignments.has(id)) {
        throw new StoreError('CONFLICT', `assignment ${id} already exists`, {
          reason: 'duplicate_id',
          entity: 'assignment',
          id,
        });
      }
      const busy = this.db.activeByUnit.get(input.unitId);
      if (busy !== undefined) {
        throw new StoreError('CONFLICT', `unit ${input.unitId} already has an active assignment`, {
          reason: 'unit_busy',
          entity: 'unit',
          id: input.unitId,
          activeAssignmentId: busy,
        });
      }
      const rec = newAssignmentRecord(id, input, at);
      tx.setMap(this.db.assignments, id, rec);
      tx.setMap(this.db.activeByUnit, input.unitId, id);
      this.side(tx, assignmentCreatedWrites(rec, opts, at));
      return clone(rec);
    });
  }

  async updateAssignment(
    id: string,
    patch: AssignmentPatch,
    opts: UpdateAssignmentOptions,
  ): Promise<AssignmentRecord> {
    validateAssignmentPatch(patch);
    return this.run((tx) => {
      const at = this.clock(opts.at);
      const cur = this.db.assignments.get(id);
      if (!cur) throw new StoreError('NOT_FOUND', `assignment ${id} not found`, { entity: 'assignment', id });
      const next = applyAssignmentPatch(clone(cur), patch, opts, at);
      tx.setMap(this.db.assignments, id, next);
      if (!isActiveAssignmentStatus(next.status) && this.db.activeByUnit.get(next.unitId) === id) {
        tx.deleteMap(this.db.activeByUnit, next.unitId);
      }
      this.side(tx, assignmentUpdatedWrites(next, cur.status, opts, at));
      return clone(next);
    });
  }

  async getAssignment(id: string): Promise<AssignmentRecord | undefined> {
    return this.run(() => {
      const a = this.db.assignments.get(id);
      return a ? clone(a) : undefined;
    });
  }

  async listAssignments(filter: AssignmentFilter = {}): Promise<AssignmentRecord[]> {
    const statuses = asList(filter.status);
    const limit = clampLimit(filter.limit, 1000, 100_000);
    return this.run(() =>
      [...this.db.assignments.values()]
        .filter(
          (a) =>
            (filter.incidentId === undefined || a.incidentId === filter.incidentId) &&
            (filter.unitId === undefined || a.unitId === filter.unitId) &&
            (!statuses || statuses.includes(a.status)) &&
            (filter.endedSince === undefined || (a.endedAt !== undefined && a.endedAt >= filter.endedSince)),
        )
        .sort(orderAssignments)
        .slice(0, limit)
        .map(clone),
    );
  }

  async activeAssignments(): Promise<AssignmentRecord[]> {
    return this.run(() =>
      [...this.db.activeByUnit.values()]
        .map((id) => this.db.assignments.get(id)!)
        .sort(orderAssignments)
        .map(clone),
    );
  }

  // ------------------------------------------------------------ events

  private insertEvent(tx: Tx, e: NewEvent): StoredEvent {
    const rec: StoredEvent = {
      id: this.db.nextEventId++,
      kind: e.kind,
      at: this.clock(e.at),
      actor: e.actor,
      data: obj(e.data),
    };
    if (e.incidentId !== undefined && e.incidentId !== null) rec.incidentId = e.incidentId;
    if (e.unitId !== undefined && e.unitId !== null) rec.unitId = e.unitId;
    if (e.assignmentId !== undefined && e.assignmentId !== null) rec.assignmentId = e.assignmentId;
    tx.push(this.db.events, rec);
    return rec;
  }

  async appendEvent(event: NewEvent): Promise<StoredEvent> {
    if (!event.kind || !event.actor) throw new StoreError('INVALID', 'event: kind and actor are required');
    return this.run((tx) => clone(this.insertEvent(tx, event)));
  }

  async listEvents(filter: EventFilter = {}): Promise<StoredEvent[]> {
    const limit = clampLimit(filter.limit, 1000, 100_000);
    return this.run(() => {
      const out: StoredEvent[] = [];
      for (const e of this.db.events) {
        if (out.length >= limit) break;
        if (filter.incidentId !== undefined && e.incidentId !== filter.incidentId) continue;
        if (filter.unitId !== undefined && e.unitId !== filter.unitId) continue;
        if (filter.afterId !== undefined && e.id <= filter.afterId) continue;
        out.push(clone(e));
      }
      return out;
    });
  }

  // ------------------------------------------------------------ outbox

  private insertOutbox(tx: Tx, job: OutboxJob): OutboxRecord {
    const now = this.clock();
    const rec: OutboxRecord = {
      id: this.db.nextOutboxId++,
      topic: job.topic,
      payload: obj(job.payload),
      createdAt: now,
      availableAt: job.availableAt === undefined ? now : roundMs(job.availableAt),
      attempts: 0,
    };
    tx.setMap(this.db.outbox, rec.id, rec);
    tx.addSet(this.db.pendingOutbox, rec.id);
    return rec;
  }

  async enqueueOutbox(job: OutboxJob): Promise<OutboxRecord> {
    if (!job.topic) throw new StoreError('INVALID', 'outbox: topic is required');
    return this.run((tx) => clone(this.insertOutbox(tx, job)));
  }

  async claimOutbox(limit: number, opts: ClaimOptions = {}): Promise<OutboxRecord[]> {
    const n = clampLimit(limit, 100, 10_000);
    return this.run((tx) => {
      if (n === 0) return [];
      const now = this.clock();
      const leaseCut = now - (opts.leaseS ?? 30);
      const out: OutboxRecord[] = [];
      for (const id of [...this.db.pendingOutbox].sort((a, b) => a - b)) {
        if (out.length >= n) break;
        const job = this.db.outbox.get(id)!;
        if (job.availableAt > now) continue;
        if (job.claimedAt !== undefined && !(job.claimedAt < leaseCut)) continue;
        const next = { ...job, claimedAt: now, attempts: job.attempts + 1 };
        tx.setMap(this.db.outbox, id, next);
        out.push(clone(next));
      }
      return out;
    });
  }

  async completeOutbox(ids: readonly number[]): Promise<number> {
    return this.run((tx) => {
      const now = this.clock();
      let n = 0;
      for (const id of new Set(ids.map((i) => Math.trunc(i)))) {
        const job = this.db.outbox.get(id);
        if (!job || job.doneAt !== undefined) continue;
        tx.setMap(this.db.outbox, id, { ...job, doneAt: now });
        tx.deleteSet(this.db.pendingOutbox, id);
        n++;
      }
      return n;
    });
  }

  async releaseOutbox(id: number, opts: { error?: string; retryAt?: EpochS } = {}): Promise<void> {
    return this.run((tx) => {
      const job = this.db.outbox.get(id);
      if (!job)
        throw new StoreError('NOT_FOUND', `outbox job ${id} not found`, { entity: 'outbox', id: String(id) });
      if (job.doneAt !== undefined) return;
      const next: OutboxRecord = { ...job, availableAt: this.clock(opts.retryAt) };
      delete next.claimedAt;
      if (opts.error !== undefined) next.lastError = opts.error;
      tx.setMap(this.db.outbox, id, next);
    });
  }

  async outboxBacklog(): Promise<number> {
    return this.run(() => this.db.pendingOutbox.size);
  }

  // ------------------------------------------------------------ push log

  async pushMessage(
    recipient: string,
    event: string,
    payload: unknown,
    opts: { at?: EpochS } = {},
  ): Promise<MessageRecord> {
    return (await this.pushMessages([recipient], event, payload, opts))[0];
  }

  async pushMessages(
    recipients: readonly string[],
    event: string,
    payload: unknown,
    opts: { at?: EpochS } = {},
  ): Promise<MessageRecord[]> {
    const unique = [...new Set(recipients)];
    if (unique.some((r) => typeof r !== 'string' || r.length === 0)) {
      throw new StoreError('INVALID', 'recipients must be non-empty strings');
    }
    const body = jsonNormalise(payload);
    return this.run((tx) => {
      const at = this.clock(opts.at);
      return unique.map((r) => {
        const seq = (this.db.recipientSeq.get(r) ?? 0) + 1;
        tx.setMap(this.db.recipientSeq, r, seq);
        let log = this.db.messages.get(r);
        if (!log) {
          log = [];
          tx.setMap(this.db.messages, r, log);
        }
        const rec: MessageRecord = { recipient: r, seq, event, payload: clone(body), at };
        tx.push(log, rec);
        return clone(rec);
      });
    });
  }

  async messagesSince(recipient: string, afterSeq: number, limit?: number): Promise<MessageRecord[]> {
    const n = clampLimit(limit, 1000, 100_000);
    return this.run(() => {
      const log = this.db.messages.get(recipient) ?? [];
      // Seqs ascend (with a possibly pruned prefix): binary search the first seq > afterSeq.
      let lo = 0;
      let hi = log.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (log[mid].seq <= afterSeq) lo = mid + 1;
        else hi = mid;
      }
      return log.slice(lo, lo + n).map(clone);
    });
  }

  async lastMessageSeq(recipient: string): Promise<number> {
    return this.run(() => this.db.recipientSeq.get(recipient) ?? 0);
  }

  async pruneMessages(before: EpochS): Promise<number> {
    const cut = roundMs(before);
    return this.run((tx) => {
      let n = 0;
      for (const [r, log] of this.db.messages) {
        const kept = log.filter((m) => m.at >= cut);
        if (kept.length !== log.length) {
          n += log.length - kept.length;
          tx.setMap(this.db.messages, r, kept);
        }
      }
      return n;
    });
  }

  // ------------------------------------------------------------ audit

  private insertAudit(tx: Tx, entry: AuditInput): AuditRecord {
    const head = this.db.auditHead;
    if (!head) throw new Error('audit head is missing: the audit chain cannot be extended');
    const at = this.clock(entry.at);
    const row = nextAuditRow(
      head,
      {
        at: auditTime(at),
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        data: jsonNormalise(entry.data),
      },
      this.options.auditKey,
    );
    const rec: AuditRecord = { ...row, at };
    tx.push(this.db.audit, rec);
    tx.assign(this.db, 'auditHead', { seq: row.seq, hash: row.hash });
    return rec;
  }

  async appendAudit(entry: AuditInput): Promise<AuditRecord> {
    if (!entry.actor || !entry.action || typeof entry.subject !== 'string') {
      throw new StoreError('INVALID', 'audit: actor, action and subject are required');
    }
    return this.run((tx) => clone(this.insertAudit(tx, entry)));
  }

  async listAudit(opts: { afterSeq?: number; limit?: number } = {}): Promise<AuditRecord[]> {
    const after = opts.afterSeq ?? 0;
    const limit = clampLimit(opts.limit, 1000, 100_000);
    return this.run(() =>
      this.db.audit
        .filter((r) => r.seq > after)
        .sort((a, b) => a.seq - b.seq)
        .slice(0, limit)
        .map(clone),
    );
  }

  async verifyAudit(): Promise<AuditVerifyResult> {
    return this.run(() => {
      const v = new ChainVerifier(this.options.auditKey);
      const rows = [...this.db.audit].sort((a, b) => a.seq - b.seq);
      for (const r of rows) {
        const row: AuditRow = { ...r, at: auditTime(r.at) };
        const failure = v.push(row);
        if (failure) return failure;
      }
      const head = this.db.auditHead;
      if (!head) {
        const done = v.finish();
        return {
          ok: false,
          brokenAt: done.ok ? done.headSeq : done.brokenAt,
          reason: 'the chain head record (audit_head) is missing',
          rows: v.rows,
        };
      }
      return v.finish(head);
    });
  }

  // ------------------------------------------------------------ recovery

  async loadSnapshot(): Promise<Snapshot> {
    return this.run(() => {
      const units = [...this.db.units.values()].sort((a, b) => byCodeUnit(a.id, b.id)).map(clone);
      const assigned = this.assignedUnits();
      const openIncidents = [...this.db.incidents.values()]
        .filter((i) => !FINAL_INCIDENT_STATUSES.includes(i.status))
        .sort((a, b) => a.reportedAt - b.reportedAt || byCodeUnit(a.id, b.id))
        .map((i) => this.withAssigned(i, assigned));
      const activeAssignments = [...this.db.activeByUnit.values()]
        .map((id) => this.db.assignments.get(id)!)
        .sort(orderAssignments)
        .map(clone);
      return { units, openIncidents, activeAssignments, at: this.clock() };
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the store is closed');
  }

  async close(): Promise<void> {
    if (this.tx) throw new Error('close() is not allowed inside a transaction');
    this.closed = true;
  }
}

function orderAssignments(a: AssignmentRecord, b: AssignmentRecord): number {
  return a.offeredAt - b.offeredAt || byCodeUnit(a.id, b.id);
}
