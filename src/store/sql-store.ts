// Store on SqlClient: one implementation for PostgreSQL (pg) and embedded PGlite.
// Invariants are enforced by the schema (unique idempotency key, partial unique index on
// active assignments per unit, audit seq allocated under the audit_head row lock); the
// expected conflicts are detected without raising database errors (ON CONFLICT DO
// NOTHING, SELECT … FOR UPDATE) so that a StoreError leaves a transaction usable.

import type { IncidentStatus, LonLat, Priority, UnitStatus } from '../core/types.ts';
import { isoTime as iso } from '../shared/iso-time.ts';
import { type AuditRow, auditTime, ChainVerifier, jsonNormalise, nextAuditRow } from './audit-chain.ts';
import {
  applyAssignmentPatch,
  asList,
  assignmentCreatedWrites,
  assignmentStamps,
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
import { LazyTx } from './lazy-tx.ts';
import { migrate } from './migrate.ts';
import { type SqlClient, type Statement, sqlState } from './sql-client.ts';
import { Deferred, type Mark } from './sql-deferred.ts';
import {
  type FlushParts,
  type FlushStatement,
  failedGuard,
  mainStatement,
  movedStatement,
} from './sql-flush.ts';
import {
  ACTIVE_ASSIGNMENT_STATUSES,
  type AssignmentFilter,
  type AssignmentPatch,
  type AssignmentRecord,
  type AssignmentStatus,
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
  type JsonObject,
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
  type TransactionOptions,
  type UnitInput,
  type UnitRecord,
  type UpdateAssignmentOptions,
  type UpsertUnitOptions,
  type WriteOptions,
} from './store.ts';

type Row = Record<string, unknown>;

// ---------------------------------------------------------------- value mapping

const isoOrNull = (s: EpochS | null | undefined): string | null =>
  s === undefined || s === null ? null : iso(s);
const json = (v: unknown): string => JSON.stringify(v ?? null);

function epoch(v: unknown): EpochS {
  if (v instanceof Date) return v.getTime() / 1000;
  if (typeof v === 'string' || typeof v === 'number') return new Date(v).getTime() / 1000;
  throw new TypeError(`not a timestamp: ${String(v)}`);
}
const optEpoch = (v: unknown): EpochS | undefined => (v === null || v === undefined ? undefined : epoch(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const optStr = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
const jsonCol = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function toUnit(r: Row): UnitRecord {
  const u: UnitRecord = {
    id: String(r.id),
    department: String(r.department),
    capabilities: jsonCol(r.capabilities) as string[],
    home: [num(r.home_lon), num(r.home_lat)],
    speedKmh: num(r.speed_kmh),
    turnoutS: num(r.turnout_s),
    status: r.status as UnitStatus,
    payload: (jsonCol(r.payload) ?? {}) as JsonObject,
    version: num(r.version),
    createdAt: epoch(r.created_at),
    updatedAt: epoch(r.updated_at),
  };
  if (r.home_area !== null && r.home_area !== undefined) u.homeArea = String(r.home_area);
  if (r.pos_lon !== null && r.pos_lon !== undefined) u.position = [num(r.pos_lon), num(r.pos_lat)];
  if (r.incident_id !== null && r.incident_id !== undefined) u.incidentId = String(r.incident_id);
  if (r.role !== null && r.role !== undefined) u.role = String(r.role);
  if (r.since_at !== null && r.since_at !== undefined) u.since = epoch(r.since_at);
  return u;
}

function toIncident(r: Row, assigned: string[]): IncidentRecord {
  const i: IncidentRecord = {
    id: String(r.id),
    type: String(r.type),
    priority: num(r.priority) as Priority,
    location: [num(r.lon), num(r.lat)] as LonLat,
    reportedAt: epoch(r.reported_at),
    status: r.status as IncidentStatus,
    assignedUnitIds: assigned,
    payload: (jsonCol(r.payload) ?? {}) as JsonObject,
    version: num(r.version),
    createdAt: epoch(r.created_at),
    updatedAt: epoch(r.updated_at),
  };
  if (r.cell !== null && r.cell !== undefined) i.cell = String(r.cell);
  if (r.area !== null && r.area !== undefined) i.area = String(r.area);
  if (r.target_at !== null && r.target_at !== undefined) i.targetAt = epoch(r.target_at);
  if (r.closed_at !== null && r.closed_at !== undefined) i.closedAt = epoch(r.closed_at);
  if (r.idempotency_key !== null && r.idempotency_key !== undefined)
    i.idempotencyKey = String(r.idempotency_key);
  return i;
}

function toAssignment(r: Row): AssignmentRecord {
  const a: AssignmentRecord = {
    id: String(r.id),
    incidentId: String(r.incident_id),
    unitId: String(r.unit_id),
    capability: String(r.capability),
    status: r.status as AssignmentStatus,
    offeredAt: epoch(r.offered_at),
    etaS: num(r.eta_s),
    crossesJurisdiction: Boolean(r.crosses_jurisdiction),
    payload: (jsonCol(r.payload) ?? {}) as JsonObject,
    version: num(r.version),
    updatedAt: epoch(r.updated_at),
  };
  const opt: [keyof AssignmentRecord, unknown][] = [
    ['ackDeadline', optEpoch(r.ack_deadline)],
    ['acceptedAt', optEpoch(r.accepted_at)],
    ['enRouteAt', optEpoch(r.en_route_at)],
    ['onSceneAt', optEpoch(r.on_scene_at)],
    ['endedAt', optEpoch(r.ended_at)],
    ['preemptedFrom', optStr(r.preempted_from)],
    ['reason', optStr(r.reason)],
    ['explanation', r.explanation === null ? undefined : jsonCol(r.explanation)],
  ];
  for (const [k, v] of opt) if (v !== undefined) (a as unknown as Row)[k] = v;
  return a;
}

function toEvent(r: Row): StoredEvent {
  const e: StoredEvent = {
    id: num(r.id),
    kind: String(r.kind),
    at: epoch(r.at),
    actor: String(r.actor),
    data: (jsonCol(r.data) ?? {}) as JsonObject,
  };
  if (r.incident_id !== null && r.incident_id !== undefined) e.incidentId = String(r.incident_id);
  if (r.unit_id !== null && r.unit_id !== undefined) e.unitId = String(r.unit_id);
  if (r.assignment_id !== null && r.assignment_id !== undefined) e.assignmentId = String(r.assignment_id);
  return e;
}

function toOutbox(r: Row): OutboxRecord {
  const o: OutboxRecord = {
    id: num(r.id),
    topic: String(r.topic),
    payload: (jsonCol(r.payload) ?? {}) as JsonObject,
    createdAt: epoch(r.created_at),
    availableAt: epoch(r.available_at),
    attempts: num(r.attempts),
  };
  if (r.claimed_at !== null && r.claimed_at !== undefined) o.claimedAt = epoch(r.claimed_at);
  if (r.last_error !== null && r.last_error !== undefined) o.lastError = String(r.last_error);
  if (r.done_at !== null && r.done_at !== undefined) o.doneAt = epoch(r.done_at);
  return o;
}

const toMessage = (r: Row): MessageRecord => ({
  recipient: String(r.recipient),
  seq: num(r.seq),
  event: String(r.event),
  payload: jsonCol(r.payload),
  at: epoch(r.at),
});

const toAudit = (r: Row): AuditRecord => ({
  seq: num(r.seq),
  at: epoch(r.at),
  actor: String(r.actor),
  action: String(r.action),
  subject: String(r.subject),
  data: jsonCol(r.data),
  prevHash: String(r.prev_hash),
  hash: String(r.hash),
});

const toAuditRow = (r: AuditRecord): AuditRow => ({ ...r, at: auditTime(r.at) });

/** Comma list for `= ANY(string_to_array($n::text, ','))` (values without commas). */
const csv = (values: readonly string[]) => values.join(',');

const ACTIVE_SQL = `(${ACTIVE_ASSIGNMENT_STATUSES.map((s) => `'${s}'`).join(', ')})`;
const FINAL_SQL = `(${FINAL_INCIDENT_STATUSES.map((s) => `'${s}'`).join(', ')})`;

const RETRYABLE = new Set(['40001', '40P01']);

/** State shared by a store and the stores bound to its transactions. */
interface Shared {
  /** The audit head this store last wrote (a guess other writers may have moved). */
  auditHead?: { seq: number; hash: string };
}

/** A write-behind guard of the flush statement failed (its writes were undone with it). */
class GuardFailed extends Error {
  constructor(readonly what: string) {
    super(`write-behind guard failed: ${what}`);
  }
}

/** bigserial ids come back in insertion order once sorted. */
function fillIds(recs: { id: number }[], rows: { id: unknown }[]): void {
  const ids = rows.map((r) => num(r.id)).sort((a, b) => a - b);
  for (let i = 0; i < recs.length; i++) recs[i].id = ids[i];
}

export interface SqlStoreOptions extends StoreOptions {
  /** Run migrations when opening (default true). */
  migrate?: boolean;
}

export class SqlStore implements Store {
  readonly kind: 'pglite' | 'postgres';
  readonly checksAfter = true;
  private readonly now: () => EpochS;

  constructor(
    /** The underlying client (a transaction client inside `transaction`). */
    readonly client: SqlClient,
    private readonly options: StoreOptions = {},
    /** Side writes held back until the transaction ends (`transaction(fn, { defer: true })`). */
    private readonly deferred?: Deferred,
    private readonly shared: Shared = {},
  ) {
    this.kind = client.dialect;
    this.now = options.now ?? defaultNow;
  }

  /** Migrates (unless told not to) and returns a store on `client`. */
  static async open(client: SqlClient, options: SqlStoreOptions = {}): Promise<SqlStore> {
    if (options.migrate !== false) await migrate(client);
    return new SqlStore(client, options);
  }

  private clock(at?: EpochS): EpochS {
    return roundMs(at ?? this.now());
  }

  private bind(tx: SqlClient, deferred?: Deferred): SqlStore {
    return new SqlStore(tx, this.options, deferred, this.shared);
  }

  private async q<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]> {
    try {
      return (await this.client.query<T>(text, params)).rows;
    } catch (err) {
      throw translate(err);
    }
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.client.inTransaction) return fn(this);
    if (!opts.defer) return this.client.transaction((tx) => fn(this.bind(tx)));
    // Deferred: the transaction begins at its first statement, and a batch that sends only
    // its final write goes out as that one statement (see lazy-tx.ts).
    const lazy = new LazyTx(this.client, opts.after, opts.afterLink, opts.link);
    const s = this.bind(lazy, new Deferred(opts.writeBehind === true));
    let out: T;
    try {
      out = await fn(s);
      // The audit head guessed at the flush is then the one the transaction before wrote (or
      // sent, when this write is pipelined behind it).
      await lazy.beforeFinal();
      await s.flushDeferred(true);
    } catch (err) {
      await lazy.end(false).catch(() => {});
      throw err;
    }
    await lazy.end(true);
    return out;
  }

  async savepoint<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (!this.client.inTransaction) return this.transaction(fn);
    const d = this.deferred;
    const mark: Mark | undefined = d?.mark();
    return this.client.transaction(async (sp) => {
      try {
        return await fn(new SqlStore(sp, this.options, d, this.shared));
      } catch (err) {
        if (d && mark) d.rollbackTo(mark);
        throw err;
      }
    });
  }

  /**
   * Writes what was held back — rows and side rows — in one statement (two when a unit's old
   * assignment ends and its new one starts in the same batch), and completes the records
   * already handed out with their ids, seqs and hashes. `final`: the transaction's last write,
   * which may go out alone, without BEGIN / COMMIT, when nothing else began a transaction.
   */
  private async flushDeferred(final = false): Promise<void> {
    const d = this.deferred;
    if (!d || d.empty) return;
    const lazy = this.client instanceof LazyTx ? this.client : undefined;
    const moved = [...d.assignments.values()];
    const created = [...d.newAssignments.values()];
    const clash = created.some((c) => moved.some((m) => m.rec.unitId === c.unitId));
    const counts = new Map<string, number>();
    const messages = d.messages.map((m) => {
      const k = (counts.get(m.rec.recipient) ?? 0) + 1;
      counts.set(m.rec.recipient, k);
      return { recipient: m.rec.recipient, k, event: m.rec.event, payload: m.rec.payload, at: m.iso };
    });
    const parts: FlushParts = {
      events: d.events.map((e) => e.row),
      outbox: d.outbox.map((o) => o.row),
      audits: [],
      messages,
      counts: [...counts.keys()].sort().map((r) => ({ r, n: counts.get(r)! })),
      units: [...d.units.values()],
      incidents: [...d.incidents.values()],
      newIncidents: [...d.newIncidents.values()],
      moved,
      created,
    };
    type Row = { k: string; v: unknown };
    /** Sends the flush's statements, in order; the rows of the last. */
    const send = async (statements: Statement[]): Promise<Row[]> => {
      try {
        // The last write goes out on its own when nothing began (LazyTx.aloneMany).
        if (final && lazy) return ((await lazy.aloneMany(statements)).at(-1)?.rows ?? []) as Row[];
        let rows: Row[] = [];
        for (const st of statements) rows = (await this.client.query<Row>(st.text, st.params)).rows;
        return rows;
      } catch (err) {
        const g = failedGuard(err);
        if (g !== undefined) throw new GuardFailed(g);
        throw translate(err);
      }
    };
    const statement = (st: FlushStatement): Statement => ({ text: st.sql, params: st.params, prepare: true });
    let out: Row[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        if (d.audits.length > 0) {
          // The last write of a transaction that never began goes out on its own: the head
          // this store last wrote is a guess the statement checks. Inside a transaction the
          // head row is read (and locked) first.
          // (Two statements go out on their own only as one message: SqlClient.writeAtomic.)
          const alone = final && lazy !== undefined && !lazy.begun && (!clash || lazy.atomicAlone);
          const guess = alone && attempt === 0 ? this.shared.auditHead : undefined;
          parts.auditHead = guess ?? (await this.readAuditHead());
          parts.audits = this.chainAudit(parts.auditHead, d.audits);
        }
        // With a clash the ended assignments go first, so that the unit's new one never meets
        // its old one still active in the one-active-per-unit index; both in one message when
        // they can (a unit freed and offered again in one batch is common under load).
        const statements = clash
          ? [statement(movedStatement(moved)), statement(mainStatement(parts, false))]
          : [statement(mainStatement(parts, true))];
        // The head this write leaves, for a next write pipelined behind it to chain onto.
        if (parts.audits.length > 0) {
          const last = parts.audits[parts.audits.length - 1];
          this.shared.auditHead = { seq: last.seq, hash: last.hash };
        }
        out = await send(statements);
        break;
      } catch (err) {
        this.shared.auditHead = undefined;
        // A moved audit head, found by a statement that ran alone (so nothing was written):
        // read the real head and go again inside a transaction.
        if (err instanceof GuardFailed && err.what === 'audit head' && attempt === 0 && !lazy?.begun) {
          this.shared.auditHead = undefined;
          continue;
        }
        if (err instanceof GuardFailed) {
          throw new StoreError('CONFLICT', `write-behind: a ${err.what} changed under this transaction`, {
            reason: 'stale',
            entity: err.what,
          });
        }
        throw err;
      }
    }
    const eventIds: { id: unknown }[] = [];
    const outboxIds: { id: unknown }[] = [];
    const tops = new Map<string, number>();
    for (const r of out) {
      if (r.k === 'e') eventIds.push({ id: r.v });
      else if (r.k === 'o') outboxIds.push({ id: r.v });
      else if (r.k.startsWith('m:')) tops.set(r.k.slice(2), num(r.v));
    }
    fillIds(
      d.events.map((e) => e.rec),
      eventIds,
    );
    fillIds(
      d.outbox.map((o) => o.rec),
      outboxIds,
    );
    const next = new Map<string, number>();
    for (const [r, n] of counts) next.set(r, tops.get(r)! - n + 1);
    for (const m of d.messages) {
      const seq = next.get(m.rec.recipient)!;
      next.set(m.rec.recipient, seq + 1);
      m.rec.seq = seq;
    }
    d.clear();
  }

  /** Writes held-back rows first when an immediate read or write of their tables follows. */
  private async sync(): Promise<void> {
    if (this.deferred?.rowsPending) await this.flushDeferred();
  }

  private async readAuditHead(): Promise<{ seq: number; hash: string }> {
    const head = await this.q<{ last_seq: unknown; last_hash: string }>(
      'SELECT last_seq, last_hash FROM audit_head WHERE id FOR UPDATE',
    );
    if (head.length === 0) throw new Error('audit_head row is missing: the audit chain cannot be extended');
    return { seq: num(head[0].last_seq), hash: head[0].last_hash };
  }

  /** Chains held-back audit rows onto `head`, completing their records. */
  private chainAudit(head: { seq: number; hash: string }, audits: Deferred['audits']): AuditRow[] {
    // (Recomputed when a flush goes again on another head.)
    let prev = head;
    const rows: AuditRow[] = [];
    for (const a of audits) {
      const row = nextAuditRow(prev, a.content, this.options.auditKey);
      rows.push(row);
      Object.assign(a.rec, { seq: row.seq, prevHash: row.prevHash, hash: row.hash });
      prev = { seq: row.seq, hash: row.hash };
    }
    return rows;
  }

  /** Internal unit of work: joins an open transaction, else opens one (retried on deadlock). */
  private async tx<T>(fn: (s: SqlStore) => Promise<T>): Promise<T> {
    if (this.client.inTransaction) return fn(this);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.client.transaction((tx) => fn(this.bind(tx)));
      } catch (err) {
        const state = sqlState(err);
        if (attempt < 5 && state && RETRYABLE.has(state)) continue;
        throw err;
      }
    }
  }

  private async side(w: SideWrites): Promise<void> {
    if (w.event) await this.insertEvent(w.event);
    if (w.job) await this.insertOutbox(w.job);
    if (w.audit) await this.insertAudit(w.audit);
  }

  // ------------------------------------------------------------ units

  async upsertUnit(unit: UnitInput, opts: UpsertUnitOptions = {}): Promise<UnitRecord> {
    validateUnit(unit);
    const d = this.deferred;
    const hint = opts.current;
    // A copy of version 0 stands for a unit not stored yet: that one is inserted at once.
    if (
      d?.writeBehind &&
      hint &&
      hint.id === unit.id &&
      hint.version > 0 &&
      opts.expectVersion === undefined
    ) {
      const rec = unitRecord(unit, hint.version + 1, hint.createdAt, this.clock(opts.at));
      d.putUnit(rec, hint.version);
      return structuredClone(rec);
    }
    await this.sync();
    const at = iso(this.clock(opts.at));
    const p = [
      unit.id,
      unit.department,
      json(unit.capabilities),
      unit.home[0],
      unit.home[1],
      unit.homeArea ?? null,
      unit.speedKmh,
      unit.turnoutS,
      unit.status,
      unit.position?.[0] ?? null,
      unit.position?.[1] ?? null,
      unit.incidentId ?? null,
      isoOrNull(unit.since),
      json(obj(unit.payload)),
      at,
      unit.role ?? null,
    ];
    if (opts.expectVersion === undefined) {
      const rows = await this.q(
        `INSERT INTO units (id, department, capabilities, home_lon, home_lat, home_area, speed_kmh, turnout_s,
           status, pos_lon, pos_lat, incident_id, since_at, payload, version, created_at, updated_at, role)
         VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::timestamptz,
           $14::text::jsonb, 1, $15::timestamptz, $15::timestamptz, $16)
         ON CONFLICT (id) DO UPDATE SET department = EXCLUDED.department, capabilities = EXCLUDED.capabilities,
           home_lon = EXCLUDED.home_lon, home_lat = EXCLUDED.home_lat, home_area = EXCLUDED.home_area,
           speed_kmh = EXCLUDED.speed_kmh, turnout_s = EXCLUDED.turnout_s, status = EXCLUDED.status,
           pos_lon = EXCLUDED.pos_lon, pos_lat = EXCLUDED.pos_lat, incident_id = EXCLUDED.incident_id,
           since_at = EXCLUDED.since_at, role = EXCLUDED.role, payload = EXCLUDED.payload,
           version = units.version + 1,
           updated_at = EXCLUDED.updated_at
         RETURNING *`,
        p,
      );
      return toUnit(rows[0]);
    }
    const rows = await this.q(
      `UPDATE units SET department = $2, capabilities = $3::text::jsonb, home_lon = $4, home_lat = $5,
         home_area = $6, speed_kmh = $7, turnout_s = $8, status = $9, pos_lon = $10, pos_lat = $11,
         incident_id = $12, since_at = $13::timestamptz, payload = $14::text::jsonb, version = version + 1,
         updated_at = $15::timestamptz, role = $16
       WHERE id = $1 AND version = $17::integer
       RETURNING *`,
      [...p, opts.expectVersion],
    );
    if (rows.length > 0) return toUnit(rows[0]);
    const cur = await this.q<{ version: unknown }>('SELECT version FROM units WHERE id = $1', [unit.id]);
    if (cur.length === 0)
      throw new StoreError('NOT_FOUND', `unit ${unit.id} not found`, { entity: 'unit', id: unit.id });
    throw new StoreError('CONFLICT', `unit ${unit.id} is at version ${num(cur[0].version)}`, {
      reason: 'stale',
      entity: 'unit',
      id: unit.id,
      version: num(cur[0].version),
    });
  }

  async getUnit(id: string): Promise<UnitRecord | undefined> {
    await this.sync();
    const rows = await this.q('SELECT * FROM units WHERE id = $1', [id]);
    return rows.length ? toUnit(rows[0]) : undefined;
  }

  async getUnits(ids: readonly string[]): Promise<UnitRecord[]> {
    if (ids.length === 0) return [];
    await this.sync();
    const rows = await this.q(
      'SELECT * FROM units WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)))',
      [json([...new Set(ids)])],
    );
    return rows.map(toUnit);
  }

  async listUnits(
    filter: { status?: UnitStatus | UnitStatus[]; department?: string } = {},
  ): Promise<UnitRecord[]> {
    await this.sync();
    const where: string[] = [];
    const params: unknown[] = [];
    const statuses = asList(filter.status);
    if (statuses) {
      params.push(csv(statuses));
      where.push(`status = ANY(string_to_array($${params.length}::text, ','))`);
    }
    if (filter.department !== undefined) {
      params.push(filter.department);
      where.push(`department = $${params.length}`);
    }
    const rows = await this.q(
      `SELECT * FROM units ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id COLLATE "C"`,
      params,
    );
    return rows.map(toUnit);
  }

  // ------------------------------------------------------------ incidents

  private async assignedUnits(incidentIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (incidentIds.length === 0) return out;
    const rows = await this.q<{ incident_id: string; unit_id: string }>(
      `SELECT incident_id, unit_id FROM assignments
       WHERE status IN ${ACTIVE_SQL}
         AND incident_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)))
       ORDER BY offered_at, id COLLATE "C"`,
      [json(incidentIds)],
    );
    for (const r of rows) {
      const list = out.get(r.incident_id) ?? [];
      list.push(r.unit_id);
      out.set(r.incident_id, list);
    }
    return out;
  }

  private async incidentRecord(r: Row): Promise<IncidentRecord> {
    const id = String(r.id);
    return toIncident(r, (await this.assignedUnits([id])).get(id) ?? []);
  }

  async createIncident(
    input: NewIncident,
    opts: CreateIncidentOptions,
  ): Promise<{ incident: IncidentRecord; created: boolean }> {
    validateNewIncident(input);
    const key = opts.idempotencyKey;
    const fingerprint = key === undefined ? null : (opts.fingerprint ?? incidentFingerprint(input));
    const id = input.id ?? newId('inc');
    const now = this.clock(opts.at);
    const d = this.deferred;
    if (d?.writeBehind && opts.writeBehind) {
      for (const x of d.newIncidents.values()) {
        if (key === undefined || x.rec.idempotencyKey !== key) continue;
        if (x.fingerprint !== fingerprint) {
          throw new StoreError(
            'IDEMPOTENCY_MISMATCH',
            `idempotency key ${key} was used with a different request`,
            {
              entity: 'incident',
              id: x.rec.id,
            },
          );
        }
        return { incident: structuredClone(x.rec), created: false };
      }
      if (d.newIncidents.has(id)) {
        throw new StoreError('CONFLICT', `incident ${id} already exists`, {
          reason: 'duplicate_id',
          entity: 'incident',
          id,
        });
      }
      const rec = newIncidentRecord(id, input, now, key);
      d.newIncidents.set(id, { rec, fingerprint });
      await this.side(incidentCreatedWrites(rec, { ...opts, at: now }));
      return { incident: structuredClone(rec), created: true };
    }
    await this.sync();
    return this.tx(async (s) => {
      const inserted = await s.q(
        `INSERT INTO incidents (id, idempotency_key, idempotency_fingerprint, type, priority, lon, lat, cell, area,
           status, reported_at, target_at, closed_at, payload, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz, NULL,
           $13::text::jsonb, 1, $14::timestamptz, $14::timestamptz)
         ON CONFLICT DO NOTHING
         RETURNING *`,
        [
          id,
          key ?? null,
          fingerprint,
          input.type,
          input.priority,
          input.location[0],
          input.location[1],
          input.cell ?? null,
          input.area ?? null,
          input.status ?? 'queued',
          iso(input.reportedAt),
          isoOrNull(input.targetAt),
          json(obj(input.payload)),
          iso(now),
        ],
      );
      if (inserted.length > 0) {
        const incident = toIncident(inserted[0], []);
        await s.side(incidentCreatedWrites(incident, { ...opts, at: now }));
        return { incident, created: true };
      }
      if (key !== undefined) {
        const existing = await s.q('SELECT * FROM incidents WHERE idempotency_key = $1', [key]);
        if (existing.length > 0) {
          if (existing[0].idempotency_fingerprint !== fingerprint) {
            throw new StoreError(
              'IDEMPOTENCY_MISMATCH',
              `idempotency key ${key} was used with a different request`,
              {
                entity: 'incident',
                id: String(existing[0].id),
              },
            );
          }
          return { incident: await s.incidentRecord(existing[0]), created: false };
        }
      }
      throw new StoreError('CONFLICT', `incident ${id} already exists`, {
        reason: 'duplicate_id',
        entity: 'incident',
        id,
      });
    });
  }

  async getIncident(id: string): Promise<IncidentDetail | undefined> {
    return (await this.getIncidents([id]))[0];
  }

  async getIncidents(ids: readonly string[]): Promise<IncidentDetail[]> {
    if (ids.length === 0) return [];
    await this.flushDeferred();
    const list = json([...new Set(ids)]);
    const any = 'ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)))';
    const rows = await this.q(`SELECT * FROM incidents WHERE id = ${any}`, [list]);
    if (rows.length === 0) return [];
    const events = await this.q(`SELECT * FROM events WHERE incident_id = ${any} ORDER BY id`, [list]);
    const assignments = await this.q(
      `SELECT * FROM assignments WHERE incident_id = ${any} ORDER BY offered_at, id COLLATE "C"`,
      [list],
    );
    const timelines = new Map<string, StoredEvent[]>();
    for (const e of events.map(toEvent)) {
      const l = timelines.get(e.incidentId!);
      if (l) l.push(e);
      else timelines.set(e.incidentId!, [e]);
    }
    const byIncident = new Map<string, AssignmentRecord[]>();
    for (const a of assignments.map(toAssignment)) {
      const l = byIncident.get(a.incidentId);
      if (l) l.push(a);
      else byIncident.set(a.incidentId, [a]);
    }
    return rows.map((r) => {
      const asg = byIncident.get(r.id as string) ?? [];
      const assigned = asg.filter((a) => isActiveAssignmentStatus(a.status)).map((a) => a.unitId);
      return { ...toIncident(r, assigned), timeline: timelines.get(r.id as string) ?? [], assignments: asg };
    });
  }

  async listIncidents(filter: IncidentFilter = {}): Promise<IncidentRecord[]> {
    await this.sync();
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (n: number) => string, v: unknown) => {
      params.push(v);
      where.push(sql(params.length));
    };
    const statuses = asList(filter.status);
    if (statuses) {
      checkIncidentStatuses(statuses, 'filter.status');
      add((n) => `status = ANY(string_to_array($${n}::text, ','))`, csv(statuses));
    }
    if (filter.open === true) where.push(`status NOT IN ${FINAL_SQL}`);
    if (filter.open === false) where.push(`status IN ${FINAL_SQL}`);
    if (filter.type !== undefined) add((n) => `type = $${n}`, filter.type);
    if (filter.area !== undefined) add((n) => `area = $${n}`, filter.area);
    if (filter.reportedFrom !== undefined)
      add((n) => `reported_at >= $${n}::timestamptz`, iso(filter.reportedFrom));
    if (filter.reportedTo !== undefined)
      add((n) => `reported_at < $${n}::timestamptz`, iso(filter.reportedTo));
    const dir = filter.order === 'asc' ? 'ASC' : 'DESC';
    params.push(clampLimit(filter.limit, 100, 1000));
    const limitN = params.length;
    params.push(Math.max(0, Math.floor(filter.offset ?? 0)));
    const rows = await this.q(
      `SELECT * FROM incidents ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY reported_at ${dir}, id COLLATE "C" ${dir} LIMIT $${limitN} OFFSET $${params.length}`,
      params,
    );
    const assigned = await this.assignedUnits(rows.map((r) => String(r.id)));
    return rows.map((r) => toIncident(r, assigned.get(String(r.id)) ?? []));
  }

  private async lockIncident(id: string): Promise<Row> {
    const rows = await this.q('SELECT * FROM incidents WHERE id = $1 FOR UPDATE', [id]);
    if (rows.length === 0)
      throw new StoreError('NOT_FOUND', `incident ${id} not found`, { entity: 'incident', id });
    return rows[0];
  }

  async updateIncidentStatus(
    id: string,
    from: IncidentStatus | readonly IncidentStatus[],
    to: IncidentStatus,
    opts: WriteOptions & { current?: IncidentRecord },
  ): Promise<IncidentRecord> {
    checkIncidentStatus(to, 'to');
    const fromList = asList(from) as IncidentStatus[];
    checkIncidentStatuses(fromList, 'from');
    const at = this.clock(opts.at);
    const d = this.deferred;
    const hint = opts.current;
    if (d?.writeBehind && hint && hint.id === id && fromList.includes(hint.status)) {
      // assignedUnitIds stay the caller's copy: the units are not read back here.
      const rec: IncidentRecord = structuredClone({
        ...hint,
        status: to,
        version: hint.version + 1,
        updatedAt: at,
      });
      if (FINAL_INCIDENT_STATUSES.includes(to)) rec.closedAt = at;
      d.putIncident(rec, hint.version);
      await this.side(incidentStatusWrites(rec, hint.status, opts, at));
      return structuredClone(rec);
    }
    await this.sync();
    return this.tx(async (s) => {
      // One statement: lock, check the status, update, and read the active units back.
      const rows = await s.q(
        `WITH cur AS (SELECT id, status FROM incidents WHERE id = $1 FOR UPDATE),
         upd AS (
           UPDATE incidents i SET status = $2, version = i.version + 1, updated_at = $3::timestamptz,
             closed_at = CASE WHEN $4::boolean THEN $3::timestamptz ELSE i.closed_at END
           FROM cur WHERE i.id = cur.id AND cur.status = ANY(string_to_array($5::text, ','))
           RETURNING i.*)
         SELECT cur.status AS prev_status, upd.*,
           (SELECT coalesce(json_agg(a.unit_id ORDER BY a.offered_at, a.id COLLATE "C"), '[]'::json)
            FROM assignments a WHERE a.incident_id = cur.id AND a.status IN ${ACTIVE_SQL}) AS assigned_units
         FROM cur LEFT JOIN upd ON true`,
        [id, to, iso(at), FINAL_INCIDENT_STATUSES.includes(to), csv(fromList)],
      );
      if (rows.length === 0)
        throw new StoreError('NOT_FOUND', `incident ${id} not found`, { entity: 'incident', id });
      const prev = rows[0].prev_status as IncidentStatus;
      if (rows[0].id === null || rows[0].id === undefined) {
        throw new StoreError('CONFLICT', `incident ${id} is ${prev}, not ${fromList.join('|')}`, {
          reason: 'stale',
          entity: 'incident',
          id,
          status: prev,
        });
      }
      const assigned = jsonCol(rows[0].assigned_units);
      const inc = toIncident(rows[0], Array.isArray(assigned) ? assigned.map(String) : []);
      await s.side(incidentStatusWrites(inc, prev, opts, at));
      return inc;
    });
  }

  async updateIncident(
    id: string,
    patch: IncidentPatch,
    opts: WriteOptions & { expectVersion?: number },
  ): Promise<IncidentRecord> {
    validateIncidentPatch(patch);
    const at = this.clock(opts.at);
    await this.sync();
    return this.tx(async (s) => {
      const cur = await s.lockIncident(id);
      if (opts.expectVersion !== undefined && num(cur.version) !== opts.expectVersion) {
        throw new StoreError('CONFLICT', `incident ${id} is at version ${num(cur.version)}`, {
          reason: 'stale',
          entity: 'incident',
          id,
          version: num(cur.version),
        });
      }
      const has = (k: keyof IncidentPatch) => Object.hasOwn(patch, k) && patch[k] !== undefined;
      const payload = { ...((jsonCol(cur.payload) ?? {}) as JsonObject), ...obj(patch.payload) };
      const rows = await s.q(
        `UPDATE incidents SET
           priority = CASE WHEN $2::boolean THEN $3::smallint ELSE priority END,
           target_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE target_at END,
           cell = CASE WHEN $6::boolean THEN $7::text ELSE cell END,
           area = CASE WHEN $8::boolean THEN $9::text ELSE area END,
           payload = $10::text::jsonb, version = version + 1, updated_at = $11::timestamptz
         WHERE id = $1 RETURNING *`,
        [
          id,
          has('priority'),
          patch.priority ?? null,
          has('targetAt'),
          isoOrNull(patch.targetAt),
          has('cell'),
          patch.cell ?? null,
          has('area'),
          patch.area ?? null,
          json(payload),
          iso(at),
        ],
      );
      const inc = await s.incidentRecord(rows[0]);
      await s.side(incidentPatchWrites(inc, patch, opts, at));
      return inc;
    });
  }

  // ------------------------------------------------------------ assignments

  async createAssignment(input: NewAssignment, opts: WriteOptions): Promise<AssignmentRecord> {
    validateNewAssignment(input);
    const id = input.id ?? newId('asg');
    const at = this.clock(opts.at);
    const d = this.deferred;
    if (d?.writeBehind) {
      // Existence and "one active assignment per unit" are checked by the constraints when
      // the row is written at commit; a violation fails the transaction.
      if (d.newAssignments.has(id) || d.assignments.has(id)) {
        throw new StoreError('CONFLICT', `assignment ${id} already exists`, {
          reason: 'duplicate_id',
          entity: 'assignment',
          id,
        });
      }
      const rec = newAssignmentRecord(id, input, at);
      d.newAssignments.set(id, rec);
      await this.side(assignmentCreatedWrites(rec, opts, at));
      return structuredClone(rec);
    }
    await this.sync();
    return this.tx(async (s) => {
      const status = input.status ?? 'offered';
      const stamps = assignmentStamps({ status: 'offered' }, status, roundMs(input.offeredAt));
      const rows = await s.q(
        `INSERT INTO assignments (id, incident_id, unit_id, capability, status, offered_at, ack_deadline,
           accepted_at, en_route_at, on_scene_at, ended_at, eta_s, crosses_jurisdiction, preempted_from, reason,
           explanation, payload, version, updated_at)
         SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::timestamptz,
           $8::timestamptz, $9::timestamptz, $10::timestamptz, NULL, $11::double precision, $12::boolean, $13::text,
           NULL, $14::text::jsonb, $15::text::jsonb, 1, $16::timestamptz
         WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $2::text) AND EXISTS (SELECT 1 FROM units WHERE id = $3::text)
         ON CONFLICT DO NOTHING
         RETURNING *`,
        [
          id,
          input.incidentId,
          input.unitId,
          input.capability,
          status,
          iso(input.offeredAt),
          isoOrNull(input.ackDeadline),
          isoOrNull(stamps.acceptedAt),
          isoOrNull(stamps.enRouteAt),
          isoOrNull(stamps.onSceneAt),
          input.etaS,
          input.crossesJurisdiction ?? false,
          input.preemptedFrom ?? null,
          input.explanation === undefined ? null : json(input.explanation),
          json(obj(input.payload)),
          iso(at),
        ],
      );
      if (rows.length === 0) {
        if ((await s.q('SELECT 1 FROM incidents WHERE id = $1', [input.incidentId])).length === 0) {
          throw new StoreError('NOT_FOUND', `incident ${input.incidentId} not found`, {
            entity: 'incident',
            id: input.incidentId,
          });
        }
        if ((await s.q('SELECT 1 FROM units WHERE id = $1', [input.unitId])).length === 0) {
          throw new StoreError('NOT_FOUND', `unit ${input.unitId} not found`, {
            entity: 'unit',
            id: input.unitId,
          });
        }
        if ((await s.q('SELECT 1 FROM assignments WHERE id = $1', [id])).length > 0) {
          throw new StoreError('CONFLICT', `assignment ${id} already exists`, {
            reason: 'duplicate_id',
            entity: 'assignment',
            id,
          });
        }
        const busy = await s.q<{ id: string }>(
          `SELECT id FROM assignments WHERE unit_id = $1 AND status IN ${ACTIVE_SQL}`,
          [input.unitId],
        );
        throw new StoreError('CONFLICT', `unit ${input.unitId} already has an active assignment`, {
          reason: 'unit_busy',
          entity: 'unit',
          id: input.unitId,
          activeAssignmentId: busy[0]?.id,
        });
      }
      const a = toAssignment(rows[0]);
      await s.side(assignmentCreatedWrites(a, opts, at));
      return a;
    });
  }

  async updateAssignment(
    id: string,
    patch: AssignmentPatch,
    opts: UpdateAssignmentOptions,
  ): Promise<AssignmentRecord> {
    validateAssignmentPatch(patch);
    const at = this.clock(opts.at);
    const d = this.deferred;
    const wb = opts.current;
    if (d?.writeBehind && wb && wb.id === id) {
      let next: AssignmentRecord | undefined;
      try {
        next = applyAssignmentPatch(structuredClone(wb), patch, opts, at);
      } catch {
        next = undefined; // judged on the stored row below
      }
      if (next) {
        d.putAssignment(next, wb.version, patch.explanation !== undefined);
        await this.side(assignmentUpdatedWrites(next, wb.status, opts, at));
        return structuredClone(next);
      }
    }
    await this.sync();
    return this.tx(async (s) => {
      // The caller's copy, when it is still the stored version, saves the read (one statement).
      const hint = opts.current;
      if (hint && hint.id === id) {
        let next: AssignmentRecord | undefined;
        try {
          next = applyAssignmentPatch(hint, patch, opts, at);
        } catch {
          next = undefined; // judged below on the stored row
        }
        if (next) {
          const upd = await s.writeAssignment(next, at, hint.version);
          if (upd) {
            await s.side(assignmentUpdatedWrites(upd, hint.status, opts, at));
            return upd;
          }
        }
      }
      const rows = await s.q('SELECT * FROM assignments WHERE id = $1 FOR UPDATE', [id]);
      if (rows.length === 0) {
        throw new StoreError('NOT_FOUND', `assignment ${id} not found`, { entity: 'assignment', id });
      }
      const cur = toAssignment(rows[0]);
      const next = applyAssignmentPatch(cur, patch, opts, at);
      const a = (await s.writeAssignment(next, at))!;
      await s.side(assignmentUpdatedWrites(a, cur.status, opts, at));
      return a;
    });
  }

  /** Writes an assignment's mutable fields; with `ifVersion`, only if still at that version. */
  private async writeAssignment(
    next: AssignmentRecord,
    at: EpochS,
    ifVersion?: number,
  ): Promise<AssignmentRecord | undefined> {
    const upd = await this.q(
      `UPDATE assignments SET status = $2, ack_deadline = $3::timestamptz, accepted_at = $4::timestamptz,
         en_route_at = $5::timestamptz, on_scene_at = $6::timestamptz, ended_at = $7::timestamptz, eta_s = $8,
         reason = $9, explanation = $10::text::jsonb, payload = $11::text::jsonb, version = version + 1,
         updated_at = $12::timestamptz
       WHERE id = $1 AND ($13::integer IS NULL OR version = $13::integer) RETURNING *`,
      [
        next.id,
        next.status,
        isoOrNull(next.ackDeadline),
        isoOrNull(next.acceptedAt),
        isoOrNull(next.enRouteAt),
        isoOrNull(next.onSceneAt),
        isoOrNull(next.endedAt),
        next.etaS,
        next.reason ?? null,
        next.explanation === undefined ? null : json(next.explanation),
        json(next.payload),
        iso(at),
        ifVersion ?? null,
      ],
    );
    return upd.length ? toAssignment(upd[0]) : undefined;
  }

  async getAssignment(id: string): Promise<AssignmentRecord | undefined> {
    await this.sync();
    const rows = await this.q('SELECT * FROM assignments WHERE id = $1', [id]);
    return rows.length ? toAssignment(rows[0]) : undefined;
  }

  async listAssignments(filter: AssignmentFilter = {}): Promise<AssignmentRecord[]> {
    await this.sync();
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.incidentId !== undefined) {
      params.push(filter.incidentId);
      where.push(`incident_id = $${params.length}`);
    }
    if (filter.unitId !== undefined) {
      params.push(filter.unitId);
      where.push(`unit_id = $${params.length}`);
    }
    const statuses = asList(filter.status);
    if (statuses) {
      params.push(csv(statuses));
      where.push(`status = ANY(string_to_array($${params.length}::text, ','))`);
    }
    if (filter.endedSince !== undefined) {
      params.push(isoOrNull(filter.endedSince));
      where.push(`ended_at >= $${params.length}::timestamptz`);
    }
    params.push(clampLimit(filter.limit, 1000, 100_000));
    const rows = await this.q(
      `SELECT * FROM assignments ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY offered_at, id COLLATE "C" LIMIT $${params.length}`,
      params,
    );
    return rows.map(toAssignment);
  }

  async activeAssignments(): Promise<AssignmentRecord[]> {
    await this.sync();
    const rows = await this.q(
      `SELECT * FROM assignments WHERE status IN ${ACTIVE_SQL} ORDER BY offered_at, id COLLATE "C"`,
    );
    return rows.map(toAssignment);
  }

  // ------------------------------------------------------------ events

  private async insertEvent(e: NewEvent): Promise<StoredEvent> {
    if (this.deferred) {
      const at = this.clock(e.at);
      const data = obj(e.data);
      const rec: StoredEvent = { id: 0, kind: e.kind, at, actor: e.actor, data };
      if (e.incidentId !== undefined) rec.incidentId = e.incidentId;
      if (e.unitId !== undefined) rec.unitId = e.unitId;
      if (e.assignmentId !== undefined) rec.assignmentId = e.assignmentId;
      this.deferred.events.push({
        row: {
          incident_id: e.incidentId ?? null,
          unit_id: e.unitId ?? null,
          assignment_id: e.assignmentId ?? null,
          kind: e.kind,
          at: iso(at),
          actor: e.actor,
          data,
        },
        rec,
      });
      return rec;
    }
    const rows = await this.q(
      `INSERT INTO events (incident_id, unit_id, assignment_id, kind, at, actor, data)
       VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7::text::jsonb) RETURNING *`,
      [
        e.incidentId ?? null,
        e.unitId ?? null,
        e.assignmentId ?? null,
        e.kind,
        iso(this.clock(e.at)),
        e.actor,
        json(obj(e.data)),
      ],
    );
    return toEvent(rows[0]);
  }

  async appendEvent(event: NewEvent): Promise<StoredEvent> {
    if (!event.kind || !event.actor) throw new StoreError('INVALID', 'event: kind and actor are required');
    return this.insertEvent(event);
  }

  async listEvents(filter: EventFilter = {}): Promise<StoredEvent[]> {
    await this.flushDeferred();
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.incidentId !== undefined) {
      params.push(filter.incidentId);
      where.push(`incident_id = $${params.length}`);
    }
    if (filter.unitId !== undefined) {
      params.push(filter.unitId);
      where.push(`unit_id = $${params.length}`);
    }
    if (filter.afterId !== undefined) {
      params.push(filter.afterId);
      where.push(`id > $${params.length}::bigint`);
    }
    params.push(clampLimit(filter.limit, 1000, 100_000));
    return (
      await this.rowsOf(
        `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.length}`,
        params,
        'r.id',
      )
    ).map(toEvent);
  }

  // ------------------------------------------------------------ outbox

  private async insertOutbox(job: OutboxJob): Promise<OutboxRecord> {
    const now = this.clock();
    if (this.deferred) {
      const payload = obj(job.payload);
      const availableAt = roundMs(job.availableAt ?? now);
      const rec: OutboxRecord = {
        id: 0,
        topic: job.topic,
        payload,
        createdAt: now,
        availableAt,
        attempts: 0,
      };
      this.deferred.outbox.push({
        row: { topic: job.topic, payload, created_at: iso(now), available_at: iso(availableAt) },
        rec,
      });
      return rec;
    }
    const rows = await this.q(
      `INSERT INTO outbox (topic, payload, created_at, available_at)
       VALUES ($1, $2::text::jsonb, $3::timestamptz, $4::timestamptz) RETURNING *`,
      [job.topic, json(obj(job.payload)), iso(now), iso(job.availableAt ?? now)],
    );
    return toOutbox(rows[0]);
  }

  async enqueueOutbox(job: OutboxJob): Promise<OutboxRecord> {
    if (!job.topic) throw new StoreError('INVALID', 'outbox: topic is required');
    return this.insertOutbox(job);
  }

  async claimOutbox(limit: number, opts: ClaimOptions = {}): Promise<OutboxRecord[]> {
    await this.flushDeferred();
    const n = clampLimit(limit, 100, 10_000);
    if (n === 0) return [];
    const now = this.clock();
    const leaseCut = now - (opts.leaseS ?? 30);
    const rows = await this.q(
      `UPDATE outbox SET claimed_at = $1::timestamptz, attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM outbox
         WHERE done_at IS NULL AND available_at <= $1::timestamptz
           AND (claimed_at IS NULL OR claimed_at < $2::timestamptz)
         ORDER BY id
         LIMIT $3
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [iso(now), iso(leaseCut), n],
    );
    return rows.map(toOutbox).sort((a, b) => a.id - b.id);
  }

  async completeOutbox(ids: readonly number[]): Promise<number> {
    await this.flushDeferred();
    if (ids.length === 0) return 0;
    const res = await this.client
      .query(
        `UPDATE outbox SET done_at = $2::timestamptz
         WHERE id = ANY(string_to_array($1::text, ',')::bigint[]) AND done_at IS NULL`,
        [ids.map((i) => String(Math.trunc(i))).join(','), iso(this.clock())],
      )
      .catch((err: unknown) => {
        throw translate(err);
      });
    return res.rowCount;
  }

  async releaseOutbox(id: number, opts: { error?: string; retryAt?: EpochS } = {}): Promise<void> {
    await this.flushDeferred();
    const now = this.clock();
    const rows = await this.q(
      `UPDATE outbox SET claimed_at = NULL, available_at = $2::timestamptz, last_error = COALESCE($3, last_error)
       WHERE id = $1::bigint AND done_at IS NULL RETURNING id`,
      [id, iso(opts.retryAt ?? now), opts.error ?? null],
    );
    if (
      rows.length === 0 &&
      (await this.q('SELECT 1 FROM outbox WHERE id = $1::bigint', [id])).length === 0
    ) {
      throw new StoreError('NOT_FOUND', `outbox job ${id} not found`, { entity: 'outbox', id: String(id) });
    }
  }

  async outboxBacklog(): Promise<number> {
    await this.flushDeferred();
    const rows = await this.q<{ n: unknown }>('SELECT count(*) AS n FROM outbox WHERE done_at IS NULL');
    return num(rows[0].n);
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
    if (unique.length === 0) return [];
    if (this.deferred) {
      const at = this.clock(opts.at);
      const body = jsonNormalise(payload);
      return unique.map((recipient) => {
        const rec: MessageRecord = { recipient, seq: 0, event, payload: body, at };
        this.deferred!.messages.push({ rec, iso: iso(at) });
        return rec;
      });
    }
    const at = iso(this.clock(opts.at));
    const body = json(jsonNormalise(payload));
    return this.tx(async (s) => {
      const out = new Map<string, MessageRecord>();
      // Lock counters in a fixed order so that concurrent multi-recipient pushes cannot deadlock.
      for (const r of [...unique].sort()) {
        const seqRows = await s.q<{ last_seq: unknown }>(
          `INSERT INTO recipient_seq (recipient, last_seq) VALUES ($1, 1)
           ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_seq.last_seq + 1
           RETURNING last_seq`,
          [r],
        );
        const rows = await s.q(
          `INSERT INTO messages (recipient, seq, event, payload, at)
           VALUES ($1, $2::bigint, $3, $4::text::json, $5::timestamptz) RETURNING *`,
          [r, num(seqRows[0].last_seq), event, body, at],
        );
        out.set(r, toMessage(rows[0]));
      }
      return unique.map((r) => out.get(r)!);
    });
  }

  async messagesSince(recipient: string, afterSeq: number, limit?: number): Promise<MessageRecord[]> {
    await this.flushDeferred();
    const rows = await this.q(
      'SELECT * FROM messages WHERE recipient = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3',
      [recipient, Math.floor(afterSeq), clampLimit(limit, 1000, 100_000)],
    );
    return rows.map(toMessage);
  }

  async lastMessageSeq(recipient: string): Promise<number> {
    await this.flushDeferred();
    const rows = await this.q<{ last_seq: unknown }>(
      'SELECT last_seq FROM recipient_seq WHERE recipient = $1',
      [recipient],
    );
    return rows.length ? num(rows[0].last_seq) : 0;
  }

  async pruneMessages(before: EpochS): Promise<number> {
    await this.flushDeferred();
    const res = await this.client
      .query('DELETE FROM messages WHERE at < $1::timestamptz', [iso(before)])
      .catch((err: unknown) => {
        throw translate(err);
      });
    return res.rowCount;
  }

  // ------------------------------------------------------------ audit

  private async insertAudit(entry: AuditInput): Promise<AuditRecord> {
    if (this.deferred) {
      const at = this.clock(entry.at);
      const content = {
        at: auditTime(at),
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        data: jsonNormalise(entry.data),
      };
      const rec: AuditRecord = { ...content, at, seq: 0, prevHash: '', hash: '' };
      this.deferred.audits.push({ content, rec });
      return rec;
    }
    const head = await this.q<{ last_seq: unknown; last_hash: string }>(
      'SELECT last_seq, last_hash FROM audit_head WHERE id FOR UPDATE',
    );
    if (head.length === 0) throw new Error('audit_head row is missing: the audit chain cannot be extended');
    const at = this.clock(entry.at);
    const row = nextAuditRow(
      { seq: num(head[0].last_seq), hash: head[0].last_hash },
      {
        at: auditTime(at),
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        data: jsonNormalise(entry.data),
      },
      this.options.auditKey,
    );
    await this.q(
      `INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash)
       VALUES ($1::bigint, $2::timestamptz, $3, $4, $5, $6::text::jsonb, $7, $8)`,
      [row.seq, row.at, row.actor, row.action, row.subject, json(row.data), row.prevHash, row.hash],
    );
    await this.q('UPDATE audit_head SET last_seq = $1::bigint, last_hash = $2 WHERE id', [row.seq, row.hash]);
    return { ...row, at };
  }

  async appendAudit(entry: AuditInput): Promise<AuditRecord> {
    if (!entry.actor || !entry.action || typeof entry.subject !== 'string') {
      throw new StoreError('INVALID', 'audit: actor, action and subject are required');
    }
    return this.tx((s) => s.insertAudit(entry));
  }

  async listAudit(opts: { afterSeq?: number; limit?: number } = {}): Promise<AuditRecord[]> {
    await this.flushDeferred();
    const rows = await this.q('SELECT * FROM audit WHERE seq > $1::bigint ORDER BY seq LIMIT $2', [
      Math.floor(opts.afterSeq ?? 0),
      clampLimit(opts.limit, 1000, 100_000),
    ]);
    return rows.map(toAudit);
  }

  /** Runs `fn` on one consistent snapshot (REPEATABLE READ) when not already in a transaction. */
  private async snapshotRead<T>(fn: (s: SqlStore) => Promise<T>): Promise<T> {
    if (this.client.inTransaction) return fn(this);
    return this.client.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      return fn(this.bind(tx));
    });
  }

  async verifyAudit(): Promise<AuditVerifyResult> {
    await this.flushDeferred();
    return this.snapshotRead(async (s) => {
      const head = await s.q<{ last_seq: unknown; last_hash: string }>(
        'SELECT last_seq, last_hash FROM audit_head',
      );
      const v = new ChainVerifier(this.options.auditKey);
      let after = 0;
      for (;;) {
        const page = await s.q('SELECT * FROM audit WHERE seq > $1::bigint ORDER BY seq LIMIT 1000', [after]);
        for (const r of page) {
          const failure = v.push(toAuditRow(toAudit(r)));
          if (failure) return failure;
        }
        if (page.length < 1000) break;
        after = num(page[page.length - 1].seq);
      }
      if (head.length === 0) {
        const done = v.finish();
        return {
          ok: false,
          brokenAt: done.ok ? done.headSeq : done.brokenAt,
          reason: 'the chain head record (audit_head) is missing',
          rows: v.rows,
        };
      }
      return v.finish({ seq: num(head[0].last_seq), hash: head[0].last_hash });
    });
  }

  // ------------------------------------------------------------ recovery

  /**
   * A read's rows; on PGlite as one JSON text (aggregated in `order`, the read's own order over
   * its alias r). PGlite decodes rows one by one in WASM, on the thread that also runs the
   * engine's commits: 10,000 open incidents took 360 ms as rows at a restart, 150 ms as text;
   * 500 events 6–8 ms, 3.5 ms. PostgreSQL's rows are faster as rows.
   */
  private async rowsOf(select: string, params: unknown[], order: string): Promise<Row[]> {
    if (this.kind !== 'pglite') return this.q(select, params);
    const [{ j }] = await this.q<{ j: string }>(
      `SELECT coalesce(json_agg(r ORDER BY ${order}), '[]')::text AS j FROM (${select}) r`,
      params,
    );
    return JSON.parse(j) as Row[];
  }

  async loadSnapshot(): Promise<Snapshot> {
    await this.sync();
    return this.snapshotRead(async (s) => {
      const units = (await s.q('SELECT * FROM units ORDER BY id COLLATE "C"')).map(toUnit);
      // After a crash under load there are ten thousand open incidents (rowsOf).
      const incRows = await s.rowsOf(
        `SELECT * FROM incidents WHERE status NOT IN ${FINAL_SQL} ORDER BY reported_at, id COLLATE "C"`,
        [],
        'r.reported_at, r.id COLLATE "C"',
      );
      const activeAssignments = (
        await s.q(
          `SELECT * FROM assignments WHERE status IN ${ACTIVE_SQL} ORDER BY offered_at, id COLLATE "C"`,
        )
      ).map(toAssignment);
      const assigned = new Map<string, string[]>();
      for (const a of activeAssignments) {
        const list = assigned.get(a.incidentId) ?? [];
        list.push(a.unitId);
        assigned.set(a.incidentId, list);
      }
      const openIncidents = incRows.map((r) => toIncident(r, assigned.get(String(r.id)) ?? []));
      return { units, openIncidents, activeAssignments, at: this.clock() };
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the store is closed');
    const last = this.client.lastAnswerAt;
    if (last !== undefined && Date.now() - last < PING_FRESH_MS) return;
    if (this.client.queryWrite) await this.client.queryWrite('SELECT 1');
    else await this.client.query('SELECT 1');
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.client.inTransaction) throw new Error('close() is not allowed inside a transaction');
    this.closed = true;
    await this.client.close();
  }
}

/** A database that answered anything this recently needs no ping (see SqlClient.lastAnswerAt). */
const PING_FRESH_MS = 2000;

/** Maps database errors that escaped the checks above to StoreError. */
function translate(err: unknown): unknown {
  if (err instanceof StoreError) return err;
  const state = sqlState(err);
  const msg = err instanceof Error ? err.message : String(err);
  const constraint = (err as { constraint?: string } | null)?.constraint ?? '';
  if (state === '23505') {
    const reason = constraint.includes('one_active_per_unit') || msg.includes('one_active_per_unit');
    return new StoreError('CONFLICT', msg, { reason: reason ? 'unit_busy' : 'duplicate_id', cause: msg });
  }
  if (state === '23503') return new StoreError('NOT_FOUND', msg, { cause: msg });
  if (state === '23514' || state === '22P02' || state === '22023' || state === '22007' || state === '22008') {
    return new StoreError('INVALID', msg, { cause: msg });
  }
  return err;
}
