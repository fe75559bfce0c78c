// The persistence port of the live engine. Two first-class implementations share these
// semantics: SqlStore (PostgreSQL or embedded PGlite through SqlClient) and MemoryStore.
//
// Times are epoch seconds (the live clock of the core) with millisecond precision; they
// are stored as timestamptz. Free-form `payload` / `data` values must be JSON-serialisable
// and come back as a JSON round trip would return them.

import type {
  Capability,
  Explanation,
  Incident,
  IncidentStatus,
  LonLat,
  Priority,
  Unit,
  UnitStatus,
} from '../core/types.ts';
import type { ChainVerdict } from './audit-chain.ts';

/** Seconds since 1970-01-01T00:00:00Z, millisecond precision. */
export type EpochS = number;

export type JsonObject = Record<string, unknown>;

// ---------------------------------------------------------------- errors

export type StoreErrorCode = 'CONFLICT' | 'NOT_FOUND' | 'IDEMPOTENCY_MISMATCH' | 'INVALID';

/** Finer cause of a CONFLICT. */
export type ConflictReason =
  /** The unit already has an active assignment (partial unique index). */
  | 'unit_busy'
  /** A row with this id exists. */
  | 'duplicate_id'
  /** Optimistic check failed: the row's status or version is not the expected one. */
  | 'stale'
  /** The requested status change is not allowed (e.g. out of a terminal assignment status). */
  | 'invalid_transition';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details: { reason?: ConflictReason; entity?: string; id?: string; [k: string]: unknown } = {},
  ) {
    super(message);
  }
}

export const isStoreError = (e: unknown, code?: StoreErrorCode): e is StoreError =>
  e instanceof StoreError && (code === undefined || e.code === code);

// ---------------------------------------------------------------- statuses

export const ACTIVE_ASSIGNMENT_STATUSES = ['offered', 'accepted', 'en_route', 'on_scene'] as const;
export const TERMINAL_ASSIGNMENT_STATUSES = [
  'cleared',
  'declined',
  'timed_out',
  'preempted',
  'cancelled',
] as const;
export type ActiveAssignmentStatus = (typeof ACTIVE_ASSIGNMENT_STATUSES)[number];
export type AssignmentStatus = ActiveAssignmentStatus | (typeof TERMINAL_ASSIGNMENT_STATUSES)[number];
export const ASSIGNMENT_STATUSES: readonly AssignmentStatus[] = [
  ...ACTIVE_ASSIGNMENT_STATUSES,
  ...TERMINAL_ASSIGNMENT_STATUSES,
];
export const isActiveAssignmentStatus = (s: string): s is ActiveAssignmentStatus =>
  (ACTIVE_ASSIGNMENT_STATUSES as readonly string[]).includes(s);

/** Incident statuses after which an incident is no longer open. */
export const FINAL_INCIDENT_STATUSES: readonly IncidentStatus[] = ['closed', 'cancelled'];
/** "Open" incidents (what recovery reloads): every status but closed and cancelled. */
export const OPEN_INCIDENT_STATUSES: readonly IncidentStatus[] = [
  'queued',
  'assigned',
  'en_route',
  'on_scene',
  'resolved',
];
export const INCIDENT_STATUSES: readonly IncidentStatus[] = [
  ...OPEN_INCIDENT_STATUSES,
  ...FINAL_INCIDENT_STATUSES,
];
export const UNIT_STATUSES: readonly UnitStatus[] = [
  'available',
  'offered',
  'en_route',
  'on_scene',
  'off_duty',
  'out_of_service',
];

/** Event kind written by updateAssignment for each new assignment status. */
export const ASSIGNMENT_EVENT_KIND: Record<AssignmentStatus, string> = {
  offered: 'assigned',
  accepted: 'accepted',
  en_route: 'en_route',
  on_scene: 'on_scene',
  cleared: 'cleared',
  declined: 'declined',
  timed_out: 'ack_timeout',
  preempted: 'preempted',
  cancelled: 'assignment_cancelled',
};

// ---------------------------------------------------------------- records

/** A unit as stored: the core's Unit plus bookkeeping. `since` is epoch seconds. */
export interface UnitRecord extends Unit {
  /** Extra fields (name, call sign, home cell…). */
  payload: JsonObject;
  /** Incremented by every write; usable for optimistic updates. */
  version: number;
  createdAt: EpochS;
  updatedAt: EpochS;
}

export interface UnitInput extends Unit {
  payload?: JsonObject;
}

export interface IncidentRecord extends Incident {
  priority: Priority;
  /** Arrival target (report time + the type's targetS); re-armed on recovery. */
  targetAt?: EpochS;
  /** Set when the incident became closed or cancelled. */
  closedAt?: EpochS;
  idempotencyKey?: string;
  /** Extra fields: callback number, description, caller, immediate flag… */
  payload: JsonObject;
  version: number;
  createdAt: EpochS;
  updatedAt: EpochS;
}

export interface NewIncident {
  /** Generated (`inc_<uuid>`) when omitted. */
  id?: string;
  type: string;
  priority: Priority;
  location: LonLat;
  reportedAt: EpochS;
  /** Default `queued`. */
  status?: IncidentStatus;
  cell?: string;
  area?: string;
  targetAt?: EpochS;
  payload?: JsonObject;
}

export interface IncidentPatch {
  priority?: Priority;
  targetAt?: EpochS | null;
  cell?: string | null;
  area?: string | null;
  /** Shallow-merged into the stored payload (a key set to null is kept as null). */
  payload?: JsonObject;
}

export interface StoredEvent {
  id: number;
  incidentId?: string;
  unitId?: string;
  assignmentId?: string;
  kind: string;
  at: EpochS;
  actor: string;
  data: JsonObject;
}

export type NewEvent = Omit<StoredEvent, 'id' | 'at' | 'data'> & { at?: EpochS; data?: JsonObject };

export interface IncidentDetail extends IncidentRecord {
  /** Every event of the incident in write order. */
  timeline: StoredEvent[];
  /** Every assignment made for it (active and ended), in offer order. */
  assignments: AssignmentRecord[];
}

export interface AssignmentRecord {
  id: string;
  incidentId: string;
  unitId: string;
  capability: Capability;
  status: AssignmentStatus;
  offeredAt: EpochS;
  /** Offer must be acknowledged by then; re-armed on recovery. */
  ackDeadline?: EpochS;
  acceptedAt?: EpochS;
  enRouteAt?: EpochS;
  onSceneAt?: EpochS;
  /** When it reached a terminal status. */
  endedAt?: EpochS;
  etaS: number;
  crossesJurisdiction: boolean;
  preemptedFrom?: string;
  /** Decline reason, cancel reason… */
  reason?: string;
  explanation?: Explanation;
  payload: JsonObject;
  version: number;
  updatedAt: EpochS;
}

export interface NewAssignment {
  /** Generated (`asg_<uuid>`) when omitted. */
  id?: string;
  incidentId: string;
  unitId: string;
  capability: Capability;
  /** Must be active; default `offered`. */
  status?: ActiveAssignmentStatus;
  offeredAt: EpochS;
  ackDeadline?: EpochS;
  etaS: number;
  crossesJurisdiction?: boolean;
  preemptedFrom?: string;
  explanation?: Explanation;
  payload?: JsonObject;
}

export interface AssignmentPatch {
  status?: AssignmentStatus;
  ackDeadline?: EpochS | null;
  etaS?: number;
  reason?: string | null;
  explanation?: Explanation;
  /** Shallow-merged into the stored payload. */
  payload?: JsonObject;
}

export interface OutboxJob {
  topic: string;
  payload?: JsonObject;
  /** Not claimable before (default: now). */
  availableAt?: EpochS;
}

export interface OutboxRecord {
  /** Use as the queue's jobId. */
  id: number;
  topic: string;
  payload: JsonObject;
  createdAt: EpochS;
  availableAt: EpochS;
  claimedAt?: EpochS;
  attempts: number;
  lastError?: string;
  doneAt?: EpochS;
}

export interface MessageRecord {
  recipient: string;
  seq: number;
  event: string;
  payload: unknown;
  at: EpochS;
}

export interface AuditInput {
  actor: string;
  action: string;
  subject: string;
  data?: unknown;
  at?: EpochS;
}

export interface AuditRecord {
  seq: number;
  at: EpochS;
  actor: string;
  action: string;
  subject: string;
  data: unknown;
  prevHash: string;
  hash: string;
}

export type AuditVerifyResult = ChainVerdict;

export interface IncidentFilter {
  status?: IncidentStatus | IncidentStatus[];
  /** Only open (true) or only closed/cancelled (false). */
  open?: boolean;
  type?: string;
  area?: string;
  reportedFrom?: EpochS;
  /** Exclusive. */
  reportedTo?: EpochS;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
  /** By report time then id; default `desc` (newest first). */
  order?: 'asc' | 'desc';
}

export interface AssignmentFilter {
  incidentId?: string;
  unitId?: string;
  status?: AssignmentStatus | AssignmentStatus[];
  /** Only assignments that ended at or after this time (epoch seconds). */
  endedSince?: number;
  /** Default 1000. */
  limit?: number;
}

export interface EventFilter {
  incidentId?: string;
  unitId?: string;
  /** Events with id > afterId. */
  afterId?: number;
  /** Default 1000. */
  limit?: number;
}

export interface Snapshot {
  units: UnitRecord[];
  /** Incidents not closed/cancelled, by report time; `assignedUnitIds` from active assignments. */
  openIncidents: IncidentRecord[];
  activeAssignments: AssignmentRecord[];
  /** Store clock at the time of the snapshot. */
  at: EpochS;
}

/** Common options of a state change. */
export interface WriteOptions {
  actor: string;
  /** Default: store clock. */
  at?: EpochS;
  /**
   * The event written with the change: `false` writes none, an object overrides the
   * default kind and adds data.
   */
  event?: false | { kind?: string; data?: JsonObject };
  /** Write an audit row for the change (default true). */
  audit?: boolean;
  /** Outbox job written in the same transaction. */
  job?: OutboxJob;
}

export interface CreateIncidentOptions extends Omit<WriteOptions, 'event' | 'job'> {
  /**
   * Outbox job written with the incident. Default `incident.created`; false: none (the caller
   * did that job's work in the same transaction).
   */
  job?: OutboxJob | false;
  idempotencyKey?: string;
  /**
   * What "the same request" means for the key. Default: hash of the input without id,
   * reportedAt, targetAt and status (values the server fills in).
   */
  fingerprint?: string;
  /** Data added to the `reported` event. */
  eventData?: JsonObject;
  /**
   * In a write-behind transaction: the caller knows the key (if any) to be new, so the row is
   * written at commit; a key or id taken after all fails the transaction there (CONFLICT).
   */
  writeBehind?: boolean;
}

export interface ClaimOptions {
  /** A claim not completed within leaseS may be claimed again (relay crashed). Default 30. */
  leaseS?: number;
}

export interface UpdateAssignmentOptions extends WriteOptions {
  expect?: AssignmentStatus | readonly AssignmentStatus[];
  expectVersion?: number;
  /**
   * The caller's copy of the assignment (a hint): when the stored row is still at its
   * version the update is one statement; otherwise the stored row is read as usual.
   */
  current?: AssignmentRecord;
}

export interface UpsertUnitOptions {
  expectVersion?: number;
  at?: EpochS;
  /** The caller's copy of the stored unit (a hint for write-behind transactions). */
  current?: UnitRecord;
}

export interface TransactionOptions {
  /**
   * With `defer`: row writes that come with the caller's current copy (units, incident
   * status, assignments) and new assignments are computed here and written at the end,
   * guarded by the versions the copies carry; a stale copy or a violated constraint then
   * fails the whole transaction (CONFLICT) — retry it without write-behind.
   */
  writeBehind?: boolean;
  /**
   * Hold back side rows (events, outbox jobs, audit rows, pushed messages) and write them in
   * one statement per table when `fn` returns. Records handed out for them get their id, seq
   * and hash filled in then; reads of those tables inside the transaction write them first.
   */
  defer?: boolean;
  /**
   * Nothing of this transaction reaches the database before `after` settles (the previous
   * transaction's commit, still in flight). Writes held back meanwhile cost nothing; a read
   * waits for it, and so sees what that commit wrote.
   */
  after?: Promise<unknown>;
  /** Records the write this transaction sends on its own, for the next one's `afterLink`. */
  link?: WriteLink;
  /**
   * With `after` (then resolving to whether the previous transaction held): that one's link.
   * On a store that `checksAfter`, this transaction fails, writing nothing, when `after`
   * resolves false; and where the client pipelines (SqlClient.writePipelined) its final write
   * goes out before the previous one answered, for the database to run only if that held.
   */
  afterLink?: WriteLink;
}

/** A transaction's write sent on its own (TransactionOptions.link). */
export interface WriteLink {
  /** The client's ticket, once the write is out (SqlClient.writePipelined). */
  ticket?: number;
  /** Set once its answer came. */
  answered?: boolean;
}

// ---------------------------------------------------------------- the port

export interface Store {
  readonly kind: 'memory' | 'pglite' | 'postgres';
  /**
   * A transaction given `after` and `afterLink` fails, writing nothing, when `after` resolves
   * false: its caller need not hold it back until then (TransactionOptions.afterLink).
   */
  readonly checksAfter?: boolean;

  /**
   * Runs `fn` atomically: every write through `tx` commits together or not at all. A
   * StoreError thrown by a method leaves the transaction usable. Nested calls join the
   * outer transaction.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * Inside a transaction: runs `fn` so that when it throws, its writes are undone and the
   * transaction goes on (a SAVEPOINT). Outside one: the same as `transaction(fn)`.
   */
  savepoint<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  // units
  /** Inserts or replaces a unit; `expectVersion` makes it optimistic (CONFLICT stale). */
  upsertUnit(unit: UnitInput, opts?: UpsertUnitOptions): Promise<UnitRecord>;
  getUnit(id: string): Promise<UnitRecord | undefined>;
  /** The units of `ids` that exist, in any order: one round trip for a batch of lookups. */
  getUnits(ids: readonly string[]): Promise<UnitRecord[]>;
  listUnits(filter?: { status?: UnitStatus | UnitStatus[]; department?: string }): Promise<UnitRecord[]>;

  // incidents
  /**
   * Creates an incident with its `reported` event, an audit row and (opts.job, else
   * topic `incident.created`) an outbox job, in one transaction. With an idempotency key
   * the same key never makes two incidents: a repeat returns the first with
   * created=false; the same key with a different body is IDEMPOTENCY_MISMATCH.
   */
  createIncident(
    input: NewIncident,
    opts: CreateIncidentOptions,
  ): Promise<{ incident: IncidentRecord; created: boolean }>;
  getIncident(id: string): Promise<IncidentDetail | undefined>;
  /** getIncident for many ids at once (those that exist, in any order): three queries in all. */
  getIncidents(ids: readonly string[]): Promise<IncidentDetail[]>;
  listIncidents(filter?: IncidentFilter): Promise<IncidentRecord[]>;
  /**
   * Moves an incident from `from` (one status or any of several) to `to`; CONFLICT stale
   * when its status is not `from`, NOT_FOUND when missing. Writes an event (kind = `to`)
   * and an audit row; sets closedAt on closed/cancelled.
   */
  updateIncidentStatus(
    id: string,
    from: IncidentStatus | readonly IncidentStatus[],
    to: IncidentStatus,
    opts: WriteOptions & { current?: IncidentRecord },
  ): Promise<IncidentRecord>;
  /** Changes priority / target / placement / payload; event `updated` and audit row. */
  updateIncident(
    id: string,
    patch: IncidentPatch,
    opts: WriteOptions & { expectVersion?: number },
  ): Promise<IncidentRecord>;

  // assignments
  /**
   * Records an offer (or direct assignment). CONFLICT unit_busy when the unit already has
   * an active assignment, CONFLICT duplicate_id, NOT_FOUND for an unknown unit or
   * incident. Writes event `assigned` (with etaS) and an audit row.
   */
  createAssignment(input: NewAssignment, opts: WriteOptions): Promise<AssignmentRecord>;
  /**
   * Updates an assignment; `expect` / `expectVersion` make it optimistic (CONFLICT stale).
   * Terminal statuses are final (CONFLICT invalid_transition), and active statuses only
   * move forward (offered → accepted → en_route → on_scene). Stamps acceptedAt / enRouteAt
   * / onSceneAt / endedAt; writes event ASSIGNMENT_EVENT_KIND[status] and an audit row when
   * the status changes.
   */
  updateAssignment(
    id: string,
    patch: AssignmentPatch,
    opts: UpdateAssignmentOptions,
  ): Promise<AssignmentRecord>;
  getAssignment(id: string): Promise<AssignmentRecord | undefined>;
  listAssignments(filter?: AssignmentFilter): Promise<AssignmentRecord[]>;
  /** Every assignment in an active status, by offer time. */
  activeAssignments(): Promise<AssignmentRecord[]>;

  // events
  appendEvent(event: NewEvent): Promise<StoredEvent>;
  listEvents(filter?: EventFilter): Promise<StoredEvent[]>;

  // outbox
  /** Adds a job; call inside `transaction` with the state change it belongs to. */
  enqueueOutbox(job: OutboxJob): Promise<OutboxRecord>;
  /**
   * Claims up to `limit` available jobs (oldest first) for this relay. Concurrent
   * claimers never get the same row (FOR UPDATE SKIP LOCKED); a claim older than the
   * lease can be taken again.
   */
  claimOutbox(limit: number, opts?: ClaimOptions): Promise<OutboxRecord[]>;
  /** Marks claimed jobs done; returns how many were newly completed. */
  completeOutbox(ids: readonly number[]): Promise<number>;
  /** Gives a claimed job back (enqueue failed): claimable again at `retryAt`. */
  releaseOutbox(id: number, opts?: { error?: string; retryAt?: EpochS }): Promise<void>;
  /** Jobs not done yet (metrics). */
  outboxBacklog(): Promise<number>;

  // push log
  /** Appends a message for one recipient with the next gap-free seq (1, 2, …). */
  pushMessage(
    recipient: string,
    event: string,
    payload: unknown,
    opts?: { at?: EpochS },
  ): Promise<MessageRecord>;
  /** Same message to several recipients, atomically; one record per recipient. */
  pushMessages(
    recipients: readonly string[],
    event: string,
    payload: unknown,
    opts?: { at?: EpochS },
  ): Promise<MessageRecord[]>;
  /** Messages with seq > afterSeq, ascending, at most `limit` (default 1000). */
  messagesSince(recipient: string, afterSeq: number, limit?: number): Promise<MessageRecord[]>;
  /** Last seq given to a recipient (0 if none). */
  lastMessageSeq(recipient: string): Promise<number>;
  /** Deletes messages older than `before` (seq counters are kept); returns the count. */
  pruneMessages(before: EpochS): Promise<number>;

  // audit
  appendAudit(entry: AuditInput): Promise<AuditRecord>;
  listAudit(opts?: { afterSeq?: number; limit?: number }): Promise<AuditRecord[]>;
  /** Walks the whole chain and names the first broken link. */
  verifyAudit(): Promise<AuditVerifyResult>;

  // recovery
  /** Consistent view for a restarting engine: units, open incidents, active assignments. */
  loadSnapshot(): Promise<Snapshot>;

  /**
   * Resolves when the database answers (readiness): at once when it answered any statement
   * in the last 2 s (under a backlog every connection is busy for seconds), else by a round
   * trip on a connection kept for writers (clients catching up fill the readers' pool).
   */
  ping(): Promise<void>;

  close(): Promise<void>;
}

export interface StoreOptions {
  /** Clock in epoch seconds (default Date.now() / 1000). */
  now?: () => EpochS;
  /** Key for HMAC-sha256 audit hashes (default: plain sha256). */
  auditKey?: string;
}

// ---------------------------------------------------------------- shared helpers

/** Rounds epoch seconds to milliseconds, the precision the SQL adapters keep. */
export const roundMs = (s: EpochS): EpochS => Math.round(s * 1000) / 1000;

export const defaultNow = (): EpochS => Date.now() / 1000;

/** The "outbox job per new incident" default. */
export const INCIDENT_CREATED_TOPIC = 'incident.created';

export const ASSIGNMENT_RANK: Record<ActiveAssignmentStatus, number> = {
  offered: 0,
  accepted: 1,
  en_route: 2,
  on_scene: 3,
};

/** Checks a status change of an assignment; returns a reason when refused. */
export function assignmentTransitionError(from: AssignmentStatus, to: AssignmentStatus): string | undefined {
  if (from === to) return undefined;
  if (!isActiveAssignmentStatus(from)) return `assignment is ${from}, a final status`;
  if (isActiveAssignmentStatus(to) && ASSIGNMENT_RANK[to] < ASSIGNMENT_RANK[from]) {
    return `assignment cannot go back from ${from} to ${to}`;
  }
  return undefined;
}
