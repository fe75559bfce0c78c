// The follow-up store: review flags, the cursors of event-log scanners, and reporter webhook
// deliveries (migrations/002_reviews_webhooks.sql). A small port beside the main Store, with
// a SQL implementation on the main store's own connection (PostgreSQL or PGlite) and a
// first-class in-memory one attached to a MemoryDatabase. `transaction` runs a change in one
// transaction with the main store, so a resolved flag and its audit row commit together.
//
// Times are epoch seconds with millisecond precision, like the main store.

import type { ReviewKind } from '../kpi/review-rules.ts';
import type { EpochS, JsonObject, Store } from './store.ts';

export type ReviewStatus = 'open' | 'resolved';

export interface ReviewRecord {
  id: string;
  /** Raised once per key. */
  key: string;
  kind: ReviewKind;
  status: ReviewStatus;
  /** When the flagged behaviour happened. */
  at: EpochS;
  raisedAt: EpochS;
  incidentId?: string;
  unitId?: string;
  summary: string;
  evidence: JsonObject;
  resolvedAt?: EpochS;
  resolvedBy?: string;
  note?: string;
}

export interface NewReview {
  key: string;
  kind: ReviewKind;
  at: EpochS;
  raisedAt: EpochS;
  incidentId?: string;
  unitId?: string;
  summary: string;
  evidence: JsonObject;
}

export interface ReviewFilter {
  status?: ReviewStatus;
  kind?: ReviewKind;
  unitId?: string;
  incidentId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'dead';

export interface DeliveryRecord {
  id: number;
  incidentId: string;
  /** 1, 2, … per incident: the order the receiver gets them in. */
  seq: number;
  /** Public status: received, assigned, on_scene, resolved, closed, cancelled. */
  status: string;
  url: string;
  /** scheme://host[:port] of the url (receivers are backed off as a whole). */
  origin: string;
  /** The exact JSON body sent on every attempt. */
  body: string;
  idempotencyKey: string;
  state: DeliveryState;
  attempts: number;
  /** Next attempt no earlier than this (pending). */
  nextAt: EpochS;
  /** Held by a sender until then (a crashed sender's claim lapses). */
  claimedUntil?: EpochS;
  createdAt: EpochS;
  lastAttemptAt?: EpochS;
  lastError?: string;
  lastHttpStatus?: number;
  deliveredAt?: EpochS;
  deadAt?: EpochS;
}

export interface NewDelivery {
  incidentId: string;
  seq: number;
  status: string;
  url: string;
  origin: string;
  body: string;
  idempotencyKey: string;
  createdAt: EpochS;
  /** First attempt no earlier than this (default createdAt; later while its receiver is backed off). */
  nextAt?: EpochS;
}

export type DeliveryOutcome =
  | { state: 'delivered'; at: EpochS; httpStatus: number }
  | { state: 'pending'; at: EpochS; nextAt: EpochS; error: string; httpStatus?: number }
  | { state: 'dead'; at: EpochS; error: string; httpStatus?: number };

export interface DeliveryFilter {
  state?: DeliveryState;
  incidentId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
}

export interface FollowUpStore {
  readonly kind: 'memory' | 'pglite' | 'postgres';
  /**
   * Runs `fn` in one transaction with the main store: `tx` is the main store's transaction,
   * `side` this store bound to it. Everything commits together or not at all.
   */
  transaction<T>(fn: (tx: Store, side: FollowUpStore) => Promise<T>): Promise<T>;

  // reviews
  /** Inserts a flag unless its key exists; returns the stored one. */
  addReview(r: NewReview): Promise<{ review: ReviewRecord; created: boolean }>;
  getReview(id: string): Promise<ReviewRecord | undefined>;
  /** Newest first (by `at`, then id). */
  listReviews(filter?: ReviewFilter): Promise<ReviewRecord[]>;
  /** open → resolved; StoreError NOT_FOUND, or CONFLICT (reason stale) when already resolved. */
  resolveReview(id: string, r: { by: string; note: string; at: EpochS }): Promise<ReviewRecord>;
  /** `at` of the latest flag of this kind for the unit. */
  lastReviewAt(kind: ReviewKind, unitId: string): Promise<EpochS | undefined>;

  // scanner cursors
  getCursor(name: string): Promise<number>;
  setCursor(name: string, lastId: number): Promise<void>;

  // webhook deliveries
  /** Inserts the rows whose (incidentId, seq) is new; returns how many were inserted. */
  addDeliveries(rows: readonly NewDelivery[]): Promise<number>;
  /**
   * Claims up to `limit` due deliveries — each the lowest pending seq of its incident, with
   * nextAt ≤ now and not held by a sender — holding them until `leaseUntil` (a crashed
   * sender's claim lapses then). Concurrent claimers never get the same row.
   */
  claimDueDeliveries(now: EpochS, leaseUntil: EpochS, limit: number): Promise<DeliveryRecord[]>;
  /** Records an attempt's outcome (attempts + 1) and ends the claim; NOT_FOUND, or CONFLICT unless pending. */
  finishDelivery(id: number, outcome: DeliveryOutcome): Promise<DeliveryRecord>;
  /** Ends the claim of deliveries not attempted after all: due again at `nextAt` (attempts unchanged). */
  releaseDeliveries(ids: readonly number[], nextAt: EpochS): Promise<void>;
  /**
   * A receiver is failing: the claimable deliveries to it (each incident's lowest pending seq,
   * not held by a sender) due before `until` wait until then. Returns how many were moved.
   * (The rest wait behind them anyway: one row per incident moves, not the whole backlog.)
   */
  deferOrigin(origin: string, until: EpochS, now: EpochS): Promise<number>;
  /** The receiver answers again: its claimable deliveries not held by a sender are due at `at`. */
  releaseOrigin(origin: string, at: EpochS): Promise<number>;
  getDelivery(id: number): Promise<DeliveryRecord | undefined>;
  /** By incident: in seq order; otherwise newest first. */
  listDeliveries(filter?: DeliveryFilter): Promise<DeliveryRecord[]>;
  /** A dead delivery goes back to pending (attempts 0, due at `at`); NOT_FOUND, or CONFLICT unless dead. */
  retryDelivery(id: number, at: EpochS): Promise<DeliveryRecord>;
  /** Earliest nextAt of a claimable delivery (an incident's lowest pending seq): when to look again. */
  nextDeliveryAt(): Promise<EpochS | undefined>;
}

export const clampListLimit = (limit: number | undefined): number =>
  limit === undefined || !Number.isFinite(limit) ? 100 : Math.max(0, Math.min(1000, Math.floor(limit)));
