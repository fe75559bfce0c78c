// Review flags of the live engine: a scanner follows the store's event log (by event id, from
// a cursor kept in the follow-up store) and runs the rules of src/kpi/review-rules.ts on each
// event, answering their lookups from the store; each flag is stored once per key, with an
// event `review_flagged` on the incident's / unit's timeline in the same transaction. A
// supervisor lists them (GET /v1/reviews) and resolves each with a note: the flag, an audit
// row `review.resolve` and an event `review_resolved` commit together.
//
// The scanner is off the engine's path (its own loop, poll + kick). Event ids are allocated
// when rows are written, so an id can become visible after a higher one (two transactions
// committing out of order) or never (a rolled-back one): the scanner stops at a gap and
// waits up to gapWaitS for it to fill before stepping over it.

import type { LonLat } from '../core/types.ts';
import {
  type NewReviewFlag,
  needsLookup,
  REVIEW_KINDS,
  type Refusal,
  type ReviewConfig,
  type ReviewEvent,
  type ReviewKind,
  type ReviewLookup,
  reviewEvent,
  type TripStart,
} from '../kpi/review-rules.ts';
import { ApiError } from '../server/errors.ts';
import type { FollowUpStore, ReviewFilter, ReviewRecord, ReviewStatus } from '../store/followup-store.ts';
import {
  type IncidentDetail,
  isStoreError,
  type Store,
  type StoredEvent,
  type UnitRecord,
} from '../store/store.ts';
import { actorTag, requireOperator, requireRole } from './access.ts';
import type { Actor } from './api.ts';
import { checkText, invalidField, toApi } from './errors.ts';
import { PollLoop } from './poll-loop.ts';
import type { Clock } from './ports.ts';
import { iso } from './views.ts';

export const REVIEW_CURSOR = 'reviews';

interface RoundCache {
  incidents: Map<string, Promise<IncidentDetail | undefined>>;
  units: Map<string, Promise<UnitRecord | undefined>>;
}
const SYS_REVIEWS = 'system:reviews';

export interface ReviewView {
  id: string;
  kind: ReviewKind;
  status: ReviewStatus;
  at: string;
  raisedAt: string;
  incidentId?: string;
  unitId?: string;
  summary: string;
  evidence: Record<string, unknown>;
  resolvedAt?: string;
  resolvedBy?: string;
  note?: string;
}

export function reviewView(r: ReviewRecord): ReviewView {
  const v: ReviewView = {
    id: r.id,
    kind: r.kind,
    status: r.status,
    at: iso(r.at),
    raisedAt: iso(r.raisedAt),
    summary: r.summary,
    evidence: r.evidence,
  };
  if (r.incidentId !== undefined) v.incidentId = r.incidentId;
  if (r.unitId !== undefined) v.unitId = r.unitId;
  if (r.resolvedAt !== undefined) v.resolvedAt = iso(r.resolvedAt);
  if (r.resolvedBy !== undefined) v.resolvedBy = r.resolvedBy;
  if (r.note !== undefined) v.note = r.note;
  return v;
}

export interface ReviewScannerOptions {
  /** Idle polling period (default 2000 ms); 0: no loop, call scanOnce(). */
  pollMs: number;
  /**
   * Events read per round (default 200). Embedded, a read holds PGlite's one thread: the
   * engine's next commit waits behind it, so the reads are kept short.
   */
  batch: number;
  /** How long a gap in event ids is waited for (default 5 s on SQL stores, 0 in memory). */
  gapWaitS: number;
}

const isLonLat = (v: unknown): v is LonLat =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number';

export class Reviews {
  readonly config: ReviewConfig;
  private readonly store: Store;
  private readonly side: FollowUpStore;
  private readonly clock: Clock;
  private readonly opts: ReviewScannerOptions;
  private readonly log: (msg: string, err?: unknown) => void;
  private gap?: { after: number; since: number };
  private readonly loop: PollLoop;

  constructor(deps: {
    store: Store;
    side: FollowUpStore;
    clock: Clock;
    config: ReviewConfig;
    options?: Partial<ReviewScannerOptions>;
    log?: (msg: string, err?: unknown) => void;
  }) {
    this.store = deps.store;
    this.side = deps.side;
    this.clock = deps.clock;
    this.config = deps.config;
    this.opts = {
      pollMs: 2000,
      batch: 200,
      gapWaitS: deps.side.kind === 'memory' ? 0 : 5,
      ...deps.options,
    };
    this.log = deps.log ?? ((msg, err) => console.error(`[reviews] ${msg}`, err ?? ''));
    this.loop = new PollLoop(() => this.scanAll(), {
      pollMs: this.opts.pollMs,
      onError: (err) => this.log('review scan failed', err),
    });
  }

  // ------------------------------------------------------------ the scanner

  /** One round: the events after the cursor (up to a gap), their flags, the cursor moved on. */
  async scanOnce(): Promise<{ scanned: number; read: number; raised: number }> {
    const cursor = await this.side.getCursor(REVIEW_CURSOR);
    const events = await this.store.listEvents({ afterId: cursor, limit: this.opts.batch });
    let last = cursor;
    let raised = 0;
    const cache = this.prefetch(events);
    for (const e of events) {
      if (e.id !== last + 1) {
        const now = this.clock.now();
        if (this.gap?.after !== last) this.gap = { after: last, since: now };
        if (now - this.gap.since < this.opts.gapWaitS) break;
      }
      this.gap = undefined;
      for (const f of await reviewEvent(toReviewEvent(e), this.lookup(e, cache), this.config)) {
        if (await this.raise(f)) raised++;
      }
      last = e.id;
    }
    if (last > cursor) await this.side.setCursor(REVIEW_CURSOR, last);
    return { scanned: last - cursor, read: events.length, raised };
  }

  /**
   * Scans until a round reads less than a full batch: the log's end as it was then, or a gap
   * that holds it. Going on until a round read nothing chased the events written meanwhile:
   * under load a round every ~20 ms for a few events each, a tenth of the embedded database's
   * time; what came since waits for the next poll.
   */
  async scanAll(): Promise<number> {
    let raised = 0;
    for (;;) {
      const r = await this.scanOnce();
      raised += r.raised;
      if (r.scanned === 0 || r.read < this.opts.batch) return raised;
    }
  }

  private async raise(f: NewReviewFlag): Promise<boolean> {
    const now = this.clock.now();
    return this.side.transaction(async (tx, side) => {
      const { review, created } = await side.addReview({
        key: f.key,
        kind: f.kind,
        at: f.t,
        raisedAt: now,
        ...(f.incidentId !== undefined ? { incidentId: f.incidentId } : {}),
        ...(f.unitId !== undefined ? { unitId: f.unitId } : {}),
        summary: f.summary,
        evidence: f.evidence,
      });
      if (created) {
        await tx.appendEvent({
          kind: 'review_flagged',
          actor: SYS_REVIEWS,
          at: now,
          ...(f.incidentId !== undefined ? { incidentId: f.incidentId } : {}),
          ...(f.unitId !== undefined ? { unitId: f.unitId } : {}),
          data: { reviewId: review.id, reviewKind: f.kind, summary: f.summary },
        });
      }
      return created;
    });
  }

  /**
   * The incidents and units the round's rules will look up, read in bulk: one lookup per
   * on-scene event cost four round trips, which at 200 arrivals/s took half of the embedded
   * database's time from the engine's commits.
   */
  private prefetch(events: StoredEvent[]): RoundCache {
    const incidentIds = new Set<string>();
    const unitIds = new Set<string>();
    for (const e of events) {
      if (!e.incidentId || !needsLookup(e)) continue;
      incidentIds.add(e.incidentId);
      if (e.unitId) unitIds.add(e.unitId);
    }
    const incidents = new Map<string, Promise<IncidentDetail | undefined>>();
    const units = new Map<string, Promise<UnitRecord | undefined>>();
    if (incidentIds.size > 0) {
      const byId = this.store.getIncidents([...incidentIds]).then((ds) => new Map(ds.map((d) => [d.id, d])));
      for (const id of incidentIds)
        incidents.set(
          id,
          byId.then((m) => m.get(id)),
        );
    }
    if (unitIds.size > 0) {
      const byId = this.store.getUnits([...unitIds]).then((us) => new Map(us.map((u) => [u.id, u])));
      for (const id of unitIds)
        units.set(
          id,
          byId.then((m) => m.get(id)),
        );
    }
    // A failed bulk read fails the round at its first lookup (the loop logs it and retries).
    for (const p of [...incidents.values(), ...units.values()]) p.catch(() => {});
    return { incidents, units };
  }

  /** The rules' lookups for one event, from the store (cached for the round). */
  private lookup(e: StoredEvent, cache: RoundCache): ReviewLookup {
    const detail = (id: string) => {
      let p = cache.incidents.get(id);
      if (!p) {
        p = this.store.getIncident(id);
        cache.incidents.set(id, p);
      }
      return p;
    };
    return {
      incident: async (id) => {
        const d = await detail(id);
        if (!d) return undefined;
        return {
          location: d.location,
          type: d.type,
          reachedBefore: (t) => d.assignments.some((a) => a.onSceneAt !== undefined && a.onSceneAt <= t),
        };
      },
      tripStart: async (incidentId, unitId) => {
        const d = await detail(incidentId);
        if (!d) return undefined;
        let start: TripStart | undefined;
        for (const x of d.timeline) {
          if (x.id >= e.id || x.unitId !== unitId) continue;
          if (x.kind === 'assigned') {
            start = { t: x.at, via: 'offer', ...(isLonLat(x.data.from) ? { position: x.data.from } : {}) };
          } else if (x.kind === 'en_route' && start) {
            // Where it set off: its reported position, else where it stood at the offer.
            const position = isLonLat(x.data.position) ? x.data.position : start.position;
            start = { t: x.at, via: 'en_route', ...(position ? { position } : {}) };
          }
        }
        return start;
      },
      unitSpeedKmh: async (unitId) => {
        let p = cache.units.get(unitId);
        if (!p) {
          p = this.store.getUnit(unitId);
          cache.units.set(unitId, p);
        }
        return (await p)?.speedKmh;
      },
      refusals: async (unitId, kind, since, until) => {
        const list = await this.store.listAssignments({
          unitId,
          status: kind === 'ack_timeout' ? 'timed_out' : 'declined',
          limit: 100_000,
        });
        const out: Refusal[] = [];
        for (const a of list) {
          const t = a.endedAt ?? a.updatedAt;
          if (t < since || t > until) continue;
          out.push({
            t,
            incidentId: a.incidentId,
            ...(kind === 'declined' && a.reason ? { reason: a.reason } : {}),
          });
        }
        return out.sort((a, b) => a.t - b.t);
      },
      lastFlagAt: (kind, unitId) => this.side.lastReviewAt(kind, unitId),
    };
  }

  // ------------------------------------------------------------ the loop

  start(): void {
    this.loop.start();
  }

  kick(): void {
    this.loop.kick();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  // ------------------------------------------------------------ the supervisor's list

  async list(
    q: {
      status?: ReviewStatus | 'all';
      kind?: string;
      unitId?: string;
      incidentId?: string;
      limit?: number;
      offset?: number;
    },
    actor: Actor,
  ): Promise<ReviewView[]> {
    requireRole(actor, ['dispatcher', 'planner', 'admin', 'system'], 'read review flags');
    if (q.kind !== undefined && !REVIEW_KINDS.includes(q.kind as ReviewKind)) {
      throw invalidField('kind', `must be one of ${REVIEW_KINDS.join(', ')}`);
    }
    const f: ReviewFilter = {};
    if (q.status !== 'all') f.status = q.status ?? 'open';
    if (q.kind !== undefined) f.kind = q.kind as ReviewKind;
    if (q.unitId !== undefined) f.unitId = q.unitId;
    if (q.incidentId !== undefined) f.incidentId = q.incidentId;
    if (q.limit !== undefined) f.limit = q.limit;
    if (q.offset !== undefined) f.offset = q.offset;
    return (await this.side.listReviews(f)).map(reviewView);
  }

  async get(id: string, actor: Actor): Promise<ReviewView> {
    requireRole(actor, ['dispatcher', 'planner', 'admin', 'system'], 'read review flags');
    const r = await this.side.getReview(id);
    if (!r) throw new ApiError('NOT_FOUND', `review ${id} not found`);
    return reviewView(r);
  }

  /** Resolves a flag with a note; the audit trail keeps who, when and the note. */
  async resolve(id: string, note: string, actor: Actor): Promise<ReviewView> {
    requireOperator(actor, 'resolve review flags');
    const text = checkText(note, 'note', 2000, true)!;
    const by = actorTag(actor);
    const at = this.clock.now();
    try {
      const r = await this.side.transaction(async (tx, side) => {
        const rec = await side.resolveReview(id, { by, note: text, at });
        await tx.appendAudit({
          actor: by,
          action: 'review.resolve',
          subject: id,
          at,
          data: {
            kind: rec.kind,
            incidentId: rec.incidentId ?? null,
            unitId: rec.unitId ?? null,
            note: text,
          },
        });
        await tx.appendEvent({
          kind: 'review_resolved',
          actor: by,
          at,
          ...(rec.incidentId !== undefined ? { incidentId: rec.incidentId } : {}),
          ...(rec.unitId !== undefined ? { unitId: rec.unitId } : {}),
          data: { reviewId: id, reviewKind: rec.kind, note: text },
        });
        return rec;
      });
      return reviewView(r);
    } catch (err) {
      if (isStoreError(err, 'CONFLICT'))
        throw new ApiError('ALREADY_RESOLVED', `review ${id} is already resolved`);
      throw toApi(err);
    }
  }
}

export function toReviewEvent(e: StoredEvent): ReviewEvent {
  const r: ReviewEvent = { id: e.id, t: e.at, kind: e.kind, actor: e.actor, data: e.data };
  if (e.incidentId !== undefined) r.incidentId = e.incidentId;
  if (e.unitId !== undefined) r.unitId = e.unitId;
  if (e.assignmentId !== undefined) r.assignmentId = e.assignmentId;
  return r;
}
