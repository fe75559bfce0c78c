// FollowUpStore on the main SqlStore's connection (PostgreSQL or PGlite): the tables of
// migrations/002_reviews_webhooks.sql. Inside `transaction` it runs on the main store's
// transaction client, so its rows and the main store's commit together.

import { randomUUID } from 'node:crypto';
import type { ReviewKind } from '../kpi/review-rules.ts';
import { isoTime as iso } from '../shared/iso-time.ts';
import {
  clampListLimit,
  type DeliveryFilter,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryState,
  type FollowUpStore,
  type NewDelivery,
  type NewReview,
  type ReviewFilter,
  type ReviewRecord,
  type ReviewStatus,
} from './followup-store.ts';
import type { SqlStore } from './sql-store.ts';
import { type EpochS, type JsonObject, type Store, StoreError } from './store.ts';

type Row = Record<string, unknown>;

function epoch(v: unknown): EpochS {
  if (v instanceof Date) return v.getTime() / 1000;
  if (typeof v === 'string' || typeof v === 'number') return new Date(v).getTime() / 1000;
  throw new TypeError(`not a timestamp: ${String(v)}`);
}
const optEpoch = (v: unknown) => (v === null || v === undefined ? undefined : epoch(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const jsonCol = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function toReview(r: Row): ReviewRecord {
  const out: ReviewRecord = {
    id: String(r.id),
    key: String(r.key),
    kind: r.kind as ReviewKind,
    status: r.status as ReviewStatus,
    at: epoch(r.at),
    raisedAt: epoch(r.raised_at),
    summary: String(r.summary),
    evidence: (jsonCol(r.evidence) ?? {}) as JsonObject,
  };
  if (r.incident_id !== null && r.incident_id !== undefined) out.incidentId = String(r.incident_id);
  if (r.unit_id !== null && r.unit_id !== undefined) out.unitId = String(r.unit_id);
  const resolvedAt = optEpoch(r.resolved_at);
  if (resolvedAt !== undefined) out.resolvedAt = resolvedAt;
  if (r.resolved_by !== null && r.resolved_by !== undefined) out.resolvedBy = String(r.resolved_by);
  if (r.note !== null && r.note !== undefined) out.note = String(r.note);
  return out;
}

function toDelivery(r: Row): DeliveryRecord {
  const d: DeliveryRecord = {
    id: num(r.id),
    incidentId: String(r.incident_id),
    seq: num(r.seq),
    status: String(r.status),
    url: String(r.url),
    origin: String(r.origin),
    body: String(r.body),
    idempotencyKey: String(r.idempotency_key),
    state: r.state as DeliveryState,
    attempts: num(r.attempts),
    nextAt: epoch(r.next_at),
    createdAt: epoch(r.created_at),
  };
  const cu = optEpoch(r.claimed_until);
  if (cu !== undefined) d.claimedUntil = cu;
  const la = optEpoch(r.last_attempt_at);
  if (la !== undefined) d.lastAttemptAt = la;
  if (r.last_error !== null && r.last_error !== undefined) d.lastError = String(r.last_error);
  if (r.last_http_status !== null && r.last_http_status !== undefined)
    d.lastHttpStatus = num(r.last_http_status);
  const da = optEpoch(r.delivered_at);
  if (da !== undefined) d.deliveredAt = da;
  const de = optEpoch(r.dead_at);
  if (de !== undefined) d.deadAt = de;
  return d;
}

export class SqlFollowUpStore implements FollowUpStore {
  readonly kind: 'pglite' | 'postgres';

  constructor(private readonly main: SqlStore) {
    this.kind = main.kind;
  }

  private async q(text: string, params?: readonly unknown[]): Promise<Row[]> {
    return (await this.main.client.query<Row>(text, params)).rows;
  }

  async transaction<T>(fn: (tx: Store, side: FollowUpStore) => Promise<T>): Promise<T> {
    if (this.main.client.inTransaction) return fn(this.main, this);
    return this.main.transaction(async (tx) => fn(tx, new SqlFollowUpStore(tx as SqlStore)));
  }

  // ------------------------------------------------------------ reviews

  async addReview(r: NewReview): Promise<{ review: ReviewRecord; created: boolean }> {
    const rows = await this.q(
      `INSERT INTO reviews (id, key, kind, status, at, raised_at, incident_id, unit_id, summary, evidence)
       VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9::jsonb)
       ON CONFLICT (key) DO NOTHING RETURNING *`,
      [
        `rev_${randomUUID()}`,
        r.key,
        r.kind,
        iso(r.at),
        iso(r.raisedAt),
        r.incidentId ?? null,
        r.unitId ?? null,
        r.summary,
        JSON.stringify(r.evidence ?? {}),
      ],
    );
    if (rows.length > 0) return { review: toReview(rows[0]), created: true };
    const cur = await this.q('SELECT * FROM reviews WHERE key = $1', [r.key]);
    return { review: toReview(cur[0]), created: false };
  }

  async getReview(id: string): Promise<ReviewRecord | undefined> {
    const rows = await this.q('SELECT * FROM reviews WHERE id = $1', [id]);
    return rows.length > 0 ? toReview(rows[0]) : undefined;
  }

  async listReviews(f: ReviewFilter = {}): Promise<ReviewRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.status !== undefined) add('status = ?', f.status);
    if (f.kind !== undefined) add('kind = ?', f.kind);
    if (f.unitId !== undefined) add('unit_id = ?', f.unitId);
    if (f.incidentId !== undefined) add('incident_id = ?', f.incidentId);
    params.push(clampListLimit(f.limit), Math.max(0, Math.floor(f.offset ?? 0)));
    const rows = await this.q(
      `SELECT * FROM reviews ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY at DESC, seq DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return rows.map(toReview);
  }

  async resolveReview(id: string, r: { by: string; note: string; at: EpochS }): Promise<ReviewRecord> {
    const rows = await this.q(
      `UPDATE reviews SET status = 'resolved', resolved_at = $2, resolved_by = $3, note = $4
       WHERE id = $1 AND status = 'open' RETURNING *`,
      [id, iso(r.at), r.by, r.note],
    );
    if (rows.length > 0) return toReview(rows[0]);
    const cur = await this.getReview(id);
    if (!cur) throw new StoreError('NOT_FOUND', `review ${id} not found`, { entity: 'review', id });
    throw new StoreError('CONFLICT', `review ${id} is already resolved`, {
      reason: 'stale',
      entity: 'review',
      id,
    });
  }

  async lastReviewAt(kind: ReviewKind, unitId: string): Promise<EpochS | undefined> {
    const rows = await this.q('SELECT max(at) AS at FROM reviews WHERE unit_id = $1 AND kind = $2', [
      unitId,
      kind,
    ]);
    return optEpoch(rows[0]?.at);
  }

  // ------------------------------------------------------------ cursors

  async getCursor(name: string): Promise<number> {
    const rows = await this.q('SELECT last_id FROM scan_cursors WHERE name = $1', [name]);
    return rows.length > 0 ? num(rows[0].last_id) : 0;
  }

  async setCursor(name: string, lastId: number): Promise<void> {
    await this.q(
      `INSERT INTO scan_cursors (name, last_id) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET last_id = EXCLUDED.last_id`,
      [name, lastId],
    );
  }

  // ------------------------------------------------------------ deliveries

  async addDeliveries(rows: readonly NewDelivery[]): Promise<number> {
    if (rows.length === 0) return 0;
    const values: string[] = [];
    const params: unknown[] = [];
    for (const r of rows) {
      if (!Number.isInteger(r.seq) || r.seq < 1) {
        throw new StoreError('INVALID', 'delivery.seq: must be an integer ≥ 1', { field: 'delivery.seq' });
      }
      const b = params.length;
      params.push(
        r.incidentId,
        r.seq,
        r.status,
        r.url,
        r.origin,
        r.body,
        r.idempotencyKey,
        iso(r.nextAt ?? r.createdAt),
        iso(r.createdAt),
      );
      values.push(
        `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, 'pending', 0, $${b + 8}, $${b + 9})`,
      );
    }
    const res = await this.main.client.query(
      `INSERT INTO webhook_deliveries
         (incident_id, seq, status, url, origin, body, idempotency_key, state, attempts, next_at, created_at)
       VALUES ${values.join(', ')}
       ON CONFLICT (incident_id, seq) DO NOTHING RETURNING id`,
      params,
    );
    return res.rows.length;
  }

  async claimDueDeliveries(now: EpochS, leaseUntil: EpochS, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.q(
      `UPDATE webhook_deliveries SET claimed_until = $2
       WHERE id IN (
         SELECT d.id FROM webhook_deliveries d
         WHERE d.state = 'pending' AND d.next_at <= $1
           AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
           AND NOT EXISTS (
             SELECT 1 FROM webhook_deliveries e
             WHERE e.incident_id = d.incident_id AND e.state = 'pending' AND e.seq < d.seq)
         ORDER BY d.next_at, d.id
         LIMIT $3
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [iso(now), iso(leaseUntil), Math.max(0, Math.floor(limit))],
    );
    return rows.map(toDelivery).sort((a, b) => a.id - b.id);
  }

  async finishDelivery(id: number, o: DeliveryOutcome): Promise<DeliveryRecord> {
    const at = iso(o.at);
    const rows = await this.q(
      `UPDATE webhook_deliveries SET
         state = $2, attempts = attempts + 1, last_attempt_at = $3, last_http_status = $4,
         last_error = $5, next_at = COALESCE($6, next_at), claimed_until = NULL,
         delivered_at = CASE WHEN $2 = 'delivered' THEN $3::timestamptz ELSE delivered_at END,
         dead_at = CASE WHEN $2 = 'dead' THEN $3::timestamptz ELSE dead_at END
       WHERE id = $1 AND state = 'pending' RETURNING *`,
      [
        id,
        o.state,
        at,
        o.httpStatus ?? null,
        o.state === 'delivered' ? null : o.error,
        o.state === 'pending' ? iso(o.nextAt) : null,
      ],
    );
    if (rows.length > 0) return toDelivery(rows[0]);
    const cur = await this.getDelivery(id);
    if (!cur)
      throw new StoreError('NOT_FOUND', `delivery ${id} not found`, { entity: 'delivery', id: String(id) });
    throw new StoreError('CONFLICT', `delivery ${id} is ${cur.state}`, {
      reason: 'stale',
      entity: 'delivery',
    });
  }

  async releaseDeliveries(ids: readonly number[], nextAt: EpochS): Promise<void> {
    if (ids.length === 0) return;
    await this.q(
      `UPDATE webhook_deliveries SET claimed_until = NULL, next_at = $2
       WHERE id = ANY($1::bigint[]) AND state = 'pending'`,
      [ids.map(String), iso(nextAt)],
    );
  }

  async deferOrigin(origin: string, until: EpochS, now: EpochS): Promise<number> {
    const res = await this.main.client.query(
      `UPDATE webhook_deliveries d SET next_at = $2
       WHERE d.state = 'pending' AND d.origin = $1 AND d.next_at < $2
         AND (d.claimed_until IS NULL OR d.claimed_until <= $3)
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries e
           WHERE e.incident_id = d.incident_id AND e.state = 'pending' AND e.seq < d.seq)`,
      [origin, iso(until), iso(now)],
    );
    return res.rowCount;
  }

  async releaseOrigin(origin: string, at: EpochS): Promise<number> {
    const res = await this.main.client.query(
      `UPDATE webhook_deliveries d SET next_at = $2
       WHERE d.state = 'pending' AND d.origin = $1 AND d.next_at > $2
         AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries e
           WHERE e.incident_id = d.incident_id AND e.state = 'pending' AND e.seq < d.seq)`,
      [origin, iso(at)],
    );
    return res.rowCount;
  }

  async getDelivery(id: number): Promise<DeliveryRecord | undefined> {
    const rows = await this.q('SELECT * FROM webhook_deliveries WHERE id = $1', [id]);
    return rows.length > 0 ? toDelivery(rows[0]) : undefined;
  }

  async listDeliveries(f: DeliveryFilter = {}): Promise<DeliveryRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.state !== undefined) {
      params.push(f.state);
      where.push(`state = $${params.length}`);
    }
    if (f.incidentId !== undefined) {
      params.push(f.incidentId);
      where.push(`incident_id = $${params.length}`);
    }
    params.push(clampListLimit(f.limit), Math.max(0, Math.floor(f.offset ?? 0)));
    const rows = await this.q(
      `SELECT * FROM webhook_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY ${f.incidentId !== undefined ? 'seq' : 'id DESC'}
       LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return rows.map(toDelivery);
  }

  async retryDelivery(id: number, at: EpochS): Promise<DeliveryRecord> {
    const rows = await this.q(
      `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = $2, dead_at = NULL,
         claimed_until = NULL
       WHERE id = $1 AND state = 'dead' RETURNING *`,
      [id, iso(at)],
    );
    if (rows.length > 0) return toDelivery(rows[0]);
    const cur = await this.getDelivery(id);
    if (!cur)
      throw new StoreError('NOT_FOUND', `delivery ${id} not found`, { entity: 'delivery', id: String(id) });
    throw new StoreError('CONFLICT', `delivery ${id} is ${cur.state}, not dead`, {
      reason: 'stale',
      entity: 'delivery',
    });
  }

  async nextDeliveryAt(): Promise<EpochS | undefined> {
    const rows = await this.q(
      `SELECT min(GREATEST(d.next_at, COALESCE(d.claimed_until, d.next_at))) AS at FROM webhook_deliveries d
       WHERE d.state = 'pending' AND NOT EXISTS (
         SELECT 1 FROM webhook_deliveries e
         WHERE e.incident_id = d.incident_id AND e.state = 'pending' AND e.seq < d.seq)`,
    );
    return optEpoch(rows[0]?.at);
  }
}
