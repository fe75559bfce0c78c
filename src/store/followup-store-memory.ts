// In-memory FollowUpStore with the semantics of the SQL one. Its tables hang off the main
// store's MemoryDatabase (a store reopened on the same database sees them), every call runs
// under the main store's transaction lock, and a `transaction` rolls its own rows back
// through an undo log when the main store's transaction fails.

import { randomUUID } from 'node:crypto';
import type { ReviewKind } from '../kpi/review-rules.ts';
import {
  clampListLimit,
  type DeliveryFilter,
  type DeliveryOutcome,
  type DeliveryRecord,
  type FollowUpStore,
  type NewDelivery,
  type NewReview,
  type ReviewFilter,
  type ReviewRecord,
} from './followup-store.ts';
import type { MemoryDatabase, MemoryStore } from './memory-store.ts';
import { type EpochS, roundMs, type Store, StoreError } from './store.ts';

interface Tables {
  reviews: Map<string, ReviewRecord>;
  reviewByKey: Map<string, string>;
  /** Insertion order, for the id tie-break. */
  reviewSeq: Map<string, number>;
  nextReviewSeq: number;
  cursors: Map<string, number>;
  deliveries: Map<number, DeliveryRecord>;
  deliveryByKey: Map<string, number>;
  nextDeliveryId: number;
}

const tables = new WeakMap<MemoryDatabase, Tables>();

function tablesOf(db: MemoryDatabase): Tables {
  let t = tables.get(db);
  if (!t) {
    t = {
      reviews: new Map(),
      reviewByKey: new Map(),
      reviewSeq: new Map(),
      nextReviewSeq: 1,
      cursors: new Map(),
      deliveries: new Map(),
      deliveryByKey: new Map(),
      nextDeliveryId: 1,
    };
    tables.set(db, t);
  }
  return t;
}

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryFollowUpStore implements FollowUpStore {
  readonly kind = 'memory' as const;
  private readonly t: Tables;

  constructor(
    private readonly main: MemoryStore,
    /** Set when bound to a transaction: undo steps of this transaction's writes. */
    private readonly undo?: (() => void)[],
    private readonly tx?: Store,
  ) {
    this.t = tablesOf(main.db);
  }

  async transaction<T>(fn: (tx: Store, side: FollowUpStore) => Promise<T>): Promise<T> {
    if (this.tx) return fn(this.tx, this);
    return this.main.transaction(async (tx) => {
      const undo: (() => void)[] = [];
      try {
        return await fn(tx, new MemoryFollowUpStore(this.main, undo, tx));
      } catch (err) {
        while (undo.length > 0) undo.pop()!();
        throw err;
      }
    });
  }

  /** Runs a synchronous step under the main store's lock (joining an open transaction). */
  private run<T>(fn: () => T): Promise<T> {
    if (this.tx) return Promise.resolve().then(fn);
    return this.main.transaction(async () => fn());
  }

  private record(step: () => void): void {
    this.undo?.push(step);
  }

  // ------------------------------------------------------------ reviews

  addReview(r: NewReview): Promise<{ review: ReviewRecord; created: boolean }> {
    return this.run(() => {
      const existing = this.t.reviewByKey.get(r.key);
      if (existing !== undefined) return { review: clone(this.t.reviews.get(existing)!), created: false };
      const rec: ReviewRecord = {
        id: `rev_${randomUUID()}`,
        key: r.key,
        kind: r.kind,
        status: 'open',
        at: roundMs(r.at),
        raisedAt: roundMs(r.raisedAt),
        summary: r.summary,
        evidence: clone(r.evidence),
      };
      if (r.incidentId !== undefined) rec.incidentId = r.incidentId;
      if (r.unitId !== undefined) rec.unitId = r.unitId;
      this.t.reviews.set(rec.id, rec);
      this.t.reviewByKey.set(rec.key, rec.id);
      this.t.reviewSeq.set(rec.id, this.t.nextReviewSeq++);
      this.record(() => {
        this.t.reviews.delete(rec.id);
        this.t.reviewByKey.delete(rec.key);
        this.t.reviewSeq.delete(rec.id);
      });
      return { review: clone(rec), created: true };
    });
  }

  getReview(id: string): Promise<ReviewRecord | undefined> {
    return this.run(() => {
      const r = this.t.reviews.get(id);
      return r ? clone(r) : undefined;
    });
  }

  listReviews(f: ReviewFilter = {}): Promise<ReviewRecord[]> {
    const limit = clampListLimit(f.limit);
    const offset = Math.max(0, Math.floor(f.offset ?? 0));
    return this.run(() => {
      const seq = (id: string) => this.t.reviewSeq.get(id) ?? 0;
      return [...this.t.reviews.values()]
        .filter(
          (r) =>
            (f.status === undefined || r.status === f.status) &&
            (f.kind === undefined || r.kind === f.kind) &&
            (f.unitId === undefined || r.unitId === f.unitId) &&
            (f.incidentId === undefined || r.incidentId === f.incidentId),
        )
        .sort((a, b) => b.at - a.at || seq(b.id) - seq(a.id))
        .slice(offset, offset + limit)
        .map(clone);
    });
  }

  resolveReview(id: string, r: { by: string; note: string; at: EpochS }): Promise<ReviewRecord> {
    return this.run(() => {
      const cur = this.t.reviews.get(id);
      if (!cur) throw new StoreError('NOT_FOUND', `review ${id} not found`, { entity: 'review', id });
      if (cur.status !== 'open') {
        throw new StoreError('CONFLICT', `review ${id} is already resolved`, {
          reason: 'stale',
          entity: 'review',
          id,
        });
      }
      const prev = clone(cur);
      const next: ReviewRecord = {
        ...cur,
        status: 'resolved',
        resolvedAt: roundMs(r.at),
        resolvedBy: r.by,
        note: r.note,
      };
      this.t.reviews.set(id, next);
      this.record(() => this.t.reviews.set(id, prev));
      return clone(next);
    });
  }

  lastReviewAt(kind: ReviewKind, unitId: string): Promise<EpochS | undefined> {
    return this.run(() => {
      let best: number | undefined;
      for (const r of this.t.reviews.values()) {
        if (r.kind === kind && r.unitId === unitId && (best === undefined || r.at > best)) best = r.at;
      }
      return best;
    });
  }

  // ------------------------------------------------------------ cursors

  getCursor(name: string): Promise<number> {
    return this.run(() => this.t.cursors.get(name) ?? 0);
  }

  setCursor(name: string, lastId: number): Promise<void> {
    return this.run(() => {
      const prev = this.t.cursors.get(name);
      this.t.cursors.set(name, lastId);
      this.record(() => {
        if (prev === undefined) this.t.cursors.delete(name);
        else this.t.cursors.set(name, prev);
      });
    });
  }

  // ------------------------------------------------------------ deliveries

  addDeliveries(rows: readonly NewDelivery[]): Promise<number> {
    return this.run(() => {
      let n = 0;
      for (const r of rows) {
        if (!Number.isInteger(r.seq) || r.seq < 1) {
          throw new StoreError('INVALID', 'delivery.seq: must be an integer ≥ 1', { field: 'delivery.seq' });
        }
        const key = `${r.incidentId}\u0000${r.seq}`;
        if (this.t.deliveryByKey.has(key)) continue;
        const rec: DeliveryRecord = {
          id: this.t.nextDeliveryId++,
          incidentId: r.incidentId,
          seq: r.seq,
          status: r.status,
          url: r.url,
          origin: r.origin,
          body: r.body,
          idempotencyKey: r.idempotencyKey,
          state: 'pending',
          attempts: 0,
          nextAt: roundMs(r.nextAt ?? r.createdAt),
          createdAt: roundMs(r.createdAt),
        };
        this.t.deliveries.set(rec.id, rec);
        this.t.deliveryByKey.set(key, rec.id);
        this.record(() => {
          this.t.deliveries.delete(rec.id);
          this.t.deliveryByKey.delete(key);
        });
        n++;
      }
      return n;
    });
  }

  /** Replaces a stored delivery, undoably. */
  private put(next: DeliveryRecord): void {
    const prev = this.t.deliveries.get(next.id)!;
    this.t.deliveries.set(next.id, next);
    this.record(() => this.t.deliveries.set(prev.id, prev));
  }

  private held(d: DeliveryRecord, now: EpochS): boolean {
    return d.claimedUntil !== undefined && d.claimedUntil > now;
  }

  claimDueDeliveries(now: EpochS, leaseUntil: EpochS, limit: number): Promise<DeliveryRecord[]> {
    return this.run(() => {
      const at = roundMs(now);
      const due = [...this.heads().values()]
        .filter((d) => d.nextAt <= at && !this.held(d, at))
        .sort((a, b) => a.nextAt - b.nextAt || a.id - b.id)
        .slice(0, Math.max(0, limit));
      const out: DeliveryRecord[] = [];
      for (const d of due) {
        const next = { ...d, claimedUntil: roundMs(leaseUntil) };
        this.put(next);
        out.push(clone(next));
      }
      return out;
    });
  }

  finishDelivery(id: number, o: DeliveryOutcome): Promise<DeliveryRecord> {
    return this.run(() => {
      const cur = this.t.deliveries.get(id);
      if (!cur)
        throw new StoreError('NOT_FOUND', `delivery ${id} not found`, { entity: 'delivery', id: String(id) });
      if (cur.state !== 'pending') {
        throw new StoreError('CONFLICT', `delivery ${id} is ${cur.state}`, {
          reason: 'stale',
          entity: 'delivery',
        });
      }
      const next: DeliveryRecord = {
        ...cur,
        state: o.state,
        attempts: cur.attempts + 1,
        lastAttemptAt: roundMs(o.at),
      };
      delete next.claimedUntil;
      if (o.httpStatus !== undefined) next.lastHttpStatus = o.httpStatus;
      else delete next.lastHttpStatus;
      if (o.state === 'delivered') {
        next.deliveredAt = roundMs(o.at);
        delete next.lastError;
      } else {
        next.lastError = o.error;
        if (o.state === 'pending') next.nextAt = roundMs(o.nextAt);
        else next.deadAt = roundMs(o.at);
      }
      this.put(next);
      return clone(next);
    });
  }

  releaseDeliveries(ids: readonly number[], nextAt: EpochS): Promise<void> {
    return this.run(() => {
      for (const id of ids) {
        const d = this.t.deliveries.get(id);
        if (d?.state !== 'pending') continue;
        const next: DeliveryRecord = { ...d, nextAt: roundMs(nextAt) };
        delete next.claimedUntil;
        this.put(next);
      }
    });
  }

  deferOrigin(origin: string, until: EpochS, now: EpochS): Promise<number> {
    return this.run(() => {
      let n = 0;
      for (const d of [...this.heads().values()]) {
        if (
          d.state !== 'pending' ||
          d.origin !== origin ||
          this.held(d, roundMs(now)) ||
          d.nextAt >= roundMs(until)
        ) {
          continue;
        }
        this.put({ ...d, nextAt: roundMs(until) });
        n++;
      }
      return n;
    });
  }

  releaseOrigin(origin: string, at: EpochS): Promise<number> {
    return this.run(() => {
      let n = 0;
      for (const d of [...this.heads().values()]) {
        if (
          d.state !== 'pending' ||
          d.origin !== origin ||
          this.held(d, roundMs(at)) ||
          d.nextAt <= roundMs(at)
        ) {
          continue;
        }
        this.put({ ...d, nextAt: roundMs(at) });
        n++;
      }
      return n;
    });
  }

  getDelivery(id: number): Promise<DeliveryRecord | undefined> {
    return this.run(() => {
      const d = this.t.deliveries.get(id);
      return d ? clone(d) : undefined;
    });
  }

  listDeliveries(f: DeliveryFilter = {}): Promise<DeliveryRecord[]> {
    const limit = clampListLimit(f.limit);
    const offset = Math.max(0, Math.floor(f.offset ?? 0));
    return this.run(() => {
      const list = [...this.t.deliveries.values()].filter(
        (d) =>
          (f.state === undefined || d.state === f.state) &&
          (f.incidentId === undefined || d.incidentId === f.incidentId),
      );
      if (f.incidentId !== undefined) list.sort((a, b) => a.seq - b.seq);
      else list.sort((a, b) => b.id - a.id);
      return list.slice(offset, offset + limit).map(clone);
    });
  }

  retryDelivery(id: number, at: EpochS): Promise<DeliveryRecord> {
    return this.run(() => {
      const cur = this.t.deliveries.get(id);
      if (!cur)
        throw new StoreError('NOT_FOUND', `delivery ${id} not found`, { entity: 'delivery', id: String(id) });
      if (cur.state !== 'dead') {
        throw new StoreError('CONFLICT', `delivery ${id} is ${cur.state}, not dead`, {
          reason: 'stale',
          entity: 'delivery',
        });
      }
      const prev = clone(cur);
      const next: DeliveryRecord = { ...cur, state: 'pending', attempts: 0, nextAt: roundMs(at) };
      delete next.deadAt;
      delete next.claimedUntil;
      this.t.deliveries.set(id, next);
      this.record(() => this.t.deliveries.set(id, prev));
      return clone(next);
    });
  }

  nextDeliveryAt(): Promise<EpochS | undefined> {
    return this.run(() => {
      let best: number | undefined;
      for (const d of this.heads().values()) {
        const t = Math.max(d.nextAt, d.claimedUntil ?? d.nextAt);
        if (best === undefined || t < best) best = t;
      }
      return best;
    });
  }

  /** The lowest pending seq of each incident. */
  private heads(): Map<string, DeliveryRecord> {
    const heads = new Map<string, DeliveryRecord>();
    for (const d of this.t.deliveries.values()) {
      if (d.state !== 'pending') continue;
      const h = heads.get(d.incidentId);
      if (!h || d.seq < h.seq) heads.set(d.incidentId, d);
    }
    return heads;
  }
}
