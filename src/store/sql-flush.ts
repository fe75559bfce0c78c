// The statement that writes what a deferred transaction held back (src/store/sql-deferred.ts):
// one WITH … statement per table group, so that a batch of changes costs one round trip.
//
// Guards. Each guarded row write must touch exactly the rows it names (its versions unchanged,
// no idempotency key taken), and the audit head must still be the one the rows were chained
// onto. The final SELECT checks the counts and, when one is off, casts a text naming it to a
// number: the error aborts the whole statement (and its CTEs' writes), so a failed guard never
// leaves half a batch. (The cast reads a CTE, so the planner cannot fold it away.)

import type { AuditRow } from './audit-chain.ts';
import {
  ASSIGNMENT_COLUMNS,
  assignmentRow,
  type Guarded,
  type GuardedAssignment,
  INCIDENT_COLUMNS,
  incidentRow,
  NEW_INCIDENT_COLUMNS,
  newIncidentRow,
  UNIT_COLUMNS,
  unitRow,
} from './sql-deferred.ts';
import type { AssignmentRecord, IncidentRecord, UnitRecord } from './store.ts';

type Row = Record<string, unknown>;

export const GUARD_TEXT = 'write-behind guard:';

export interface FlushParts {
  events: Row[];
  outbox: Row[];
  /** Audit rows already chained onto `auditHead`. */
  audits: AuditRow[];
  auditHead?: { seq: number; hash: string };
  /** Messages with their per-recipient index k (1-based within this flush). */
  messages: Row[];
  counts: { r: string; n: number }[];
  units: Guarded<UnitRecord>[];
  incidents: Guarded<IncidentRecord>[];
  newIncidents: { rec: IncidentRecord; fingerprint: string | null }[];
  moved: GuardedAssignment[];
  created: AssignmentRecord[];
}

export interface FlushStatement {
  sql: string;
  params: unknown[];
}

const ids = (xs: { id: string }[]) => JSON.stringify(xs.map((x) => x.id));

/**
 * The moved assignments as the guarded update reads them: their rows and expected versions,
 * the explanation only where the batch set it (null keeps the stored one: GuardedAssignment).
 */
export const movedJson = (moved: GuardedAssignment[]) =>
  JSON.stringify(
    moved.map((g) => {
      const row = assignmentRow(g.rec);
      if (!g.explanation) row.explanation = null;
      row.expect = g.expect;
      return row;
    }),
  );

/** Assignments that end or move, alone: before a new assignment of the same unit is inserted. */
export function movedStatement(moved: GuardedAssignment[]): FlushStatement {
  // One text, built once (as mainStatement's shapes).
  movedSql ??= `WITH am AS (${movedCte('$1', '$2')})
      SELECT CASE WHEN (SELECT count(*) FROM am) <> $3::bigint
        THEN ('${GUARD_TEXT} assignment ' || (SELECT count(*) FROM am))::bigint ELSE 0 END AS g`;
  return { sql: movedSql, params: [movedJson(moved), ids(moved.map((g) => g.rec)), moved.length] };
}

let movedSql: string | undefined;

// Each guarded update names its ids in an array too, so the planner takes the primary key (the
// recordset's size is unknown to it and the tables only grow: a hash join would scan them).
function movedCte(rows: string, idList: string): string {
  return `UPDATE assignments a SET status = t.status, ack_deadline = t.ack_deadline, accepted_at = t.accepted_at,
      en_route_at = t.en_route_at, on_scene_at = t.on_scene_at, ended_at = t.ended_at, eta_s = t.eta_s,
      reason = t.reason, explanation = coalesce(t.explanation, a.explanation), payload = t.payload, version = t.version,
      updated_at = t.updated_at
    FROM jsonb_to_recordset(${rows}::text::jsonb) AS t(${ASSIGNMENT_COLUMNS}, expect integer)
    WHERE a.id = ANY(ARRAY(SELECT jsonb_array_elements_text(${idList}::text::jsonb)))
      AND a.id = t.id AND a.version = t.expect RETURNING 1`;
}

/** Reads one parameter's value from the flush's parts. */
type Getter = (p: FlushParts) => unknown;

/** A statement's text and, in placeholder order, how to read each parameter. */
interface Shape {
  sql: string;
  getters: Getter[];
}

/**
 * Built once per shape (which tables the flush writes): the text of each is a few kilobytes
 * in a dozen CTEs, and building, hashing (its prepared name) and comparing it (the driver's
 * prepared-statement check) per batch showed in the engine's profile. The same string object
 * every time also makes those lookups cheap. At most 2^9 shapes.
 */
const shapes = new Map<number, Shape>();

/**
 * The main statement. With `withMoved`, the moved assignments are written here too (safe when
 * no unit of theirs gets a new assignment in the same flush). Returns rows (k, v): 'e' / 'o'
 * → new event / outbox ids, 'm:<recipient>' → the recipient's new last seq.
 */
export function mainStatement(p: FlushParts, withMoved: boolean): FlushStatement {
  const has = [
    withMoved && p.moved.length > 0,
    p.units.length > 0,
    p.newIncidents.length > 0,
    p.incidents.length > 0,
    p.created.length > 0,
    p.events.length > 0,
    p.outbox.length > 0,
    p.audits.length > 0,
    p.messages.length > 0,
  ];
  const key = has.reduce((k, h, i) => (h ? k | (1 << i) : k), 0);
  let shape = shapes.get(key);
  if (!shape) {
    shape = shapeOf(has);
    shapes.set(key, shape);
  }
  return { sql: shape.sql, params: shape.getters.map((g) => g(p)) };
}

function shapeOf([
  moved,
  units,
  newIncidents,
  incidents,
  created,
  events,
  outbox,
  audits,
  messages,
]: boolean[]): Shape {
  const ctes: string[] = [];
  const selects: string[] = [];
  const guards: string[] = [];
  const getters: Getter[] = [];
  const param = (g: Getter) => {
    getters.push(g);
    return `$${getters.length}`;
  };
  const guard = (cte: string, n: Getter, what: string) =>
    guards.push(
      `WHEN (SELECT count(*) FROM ${cte}) <> ${param(n)}::bigint THEN ('${GUARD_TEXT} ${what} ' || (SELECT count(*) FROM ${cte}))::bigint`,
    );
  if (moved) {
    ctes.push(
      `am AS (${movedCte(
        param((p) => movedJson(p.moved)),
        param((p) => ids(p.moved.map((g) => g.rec))),
      )})`,
    );
    guard('am', (p) => p.moved.length, 'assignment');
  }
  if (units) {
    ctes.push(`uu AS (UPDATE units u SET department = t.department, capabilities = t.capabilities,
        home_lon = t.home_lon, home_lat = t.home_lat, home_area = t.home_area, speed_kmh = t.speed_kmh,
        turnout_s = t.turnout_s, status = t.status, pos_lon = t.pos_lon, pos_lat = t.pos_lat,
        incident_id = t.incident_id, since_at = t.since_at, payload = t.payload, version = t.version,
        updated_at = t.updated_at, role = t.role
      FROM jsonb_to_recordset(${param((p) => JSON.stringify(p.units.map((g) => ({ ...unitRow(g.rec), expect: g.expect }))))}::text::jsonb)
        AS t(${UNIT_COLUMNS})
      WHERE u.id = ANY(ARRAY(SELECT jsonb_array_elements_text(${param((p) => ids(p.units.map((g) => g.rec)))}::text::jsonb)))
        AND u.id = t.id AND u.version = t.expect RETURNING 1)`);
    guard('uu', (p) => p.units.length, 'unit');
  }
  if (newIncidents) {
    // A taken idempotency key or id inserts nothing for that row: the guard then fails.
    ctes.push(`ni AS (INSERT INTO incidents (id, idempotency_key, idempotency_fingerprint, type, priority, lon, lat,
        cell, area, status, reported_at, target_at, closed_at, payload, version, created_at, updated_at)
      SELECT id, idempotency_key, idempotency_fingerprint, type, priority, lon, lat, cell, area, status, reported_at,
        target_at, closed_at, payload, version, created_at, updated_at
      FROM jsonb_to_recordset(${param((p) => JSON.stringify(p.newIncidents.map(newIncidentRow)))}::text::jsonb)
        AS t(${NEW_INCIDENT_COLUMNS})
      ON CONFLICT DO NOTHING RETURNING 1)`);
    guard('ni', (p) => p.newIncidents.length, 'new incident');
  }
  if (incidents) {
    ctes.push(`iu AS (UPDATE incidents i SET status = t.status, version = t.version, updated_at = t.updated_at,
        closed_at = t.closed_at
      FROM jsonb_to_recordset(${param((p) => JSON.stringify(p.incidents.map((g) => ({ ...incidentRow(g.rec), expect: g.expect }))))}::text::jsonb)
        AS t(${INCIDENT_COLUMNS})
      WHERE i.id = ANY(ARRAY(SELECT jsonb_array_elements_text(${param((p) => ids(p.incidents.map((g) => g.rec)))}::text::jsonb)))
        AND i.id = t.id AND i.version = t.expect RETURNING 1)`);
    guard('iu', (p) => p.incidents.length, 'incident');
  }
  if (created) {
    ctes.push(`ai AS (INSERT INTO assignments (id, incident_id, unit_id, capability, status, offered_at,
        ack_deadline, accepted_at, en_route_at, on_scene_at, ended_at, eta_s, crosses_jurisdiction, preempted_from,
        reason, explanation, payload, version, updated_at)
      SELECT id, incident_id, unit_id, capability, status, offered_at, ack_deadline, accepted_at, en_route_at,
        on_scene_at, ended_at, eta_s, crosses_jurisdiction, preempted_from, reason, explanation, payload, version,
        updated_at
      FROM jsonb_to_recordset(${param((p) => JSON.stringify(p.created.map(assignmentRow)))}::text::jsonb)
        AS t(${ASSIGNMENT_COLUMNS})
      RETURNING 1)`);
    guard('ai', (p) => p.created.length, 'new assignment');
  }
  if (events) {
    ctes.push(`ev AS (INSERT INTO events (incident_id, unit_id, assignment_id, kind, at, actor, data)
      SELECT incident_id, unit_id, assignment_id, kind, at, actor, data
      FROM ROWS FROM (jsonb_to_recordset(${param((p) => JSON.stringify(p.events))}::text::jsonb)
        AS (incident_id text, unit_id text, assignment_id text, kind text, at timestamptz, actor text,
        data jsonb)) WITH ORDINALITY AS t(incident_id, unit_id, assignment_id, kind, at, actor, data, ord)
      ORDER BY ord RETURNING id)`);
    selects.push(`SELECT 'e' AS k, id AS v FROM ev`);
  }
  if (outbox) {
    ctes.push(`ob AS (INSERT INTO outbox (topic, payload, created_at, available_at)
      SELECT topic, payload, created_at, available_at
      FROM ROWS FROM (jsonb_to_recordset(${param((p) => JSON.stringify(p.outbox))}::text::jsonb)
        AS (topic text, payload jsonb, created_at timestamptz, available_at timestamptz)) WITH ORDINALITY
        AS t(topic, payload, created_at, available_at, ord)
      ORDER BY ord RETURNING id)`);
    selects.push(`SELECT 'o' AS k, id AS v FROM ob`);
  }
  if (audits) {
    const last = (p: FlushParts) => p.audits[p.audits.length - 1];
    ctes.push(`ah AS (UPDATE audit_head SET last_seq = ${param((p) => last(p).seq)}::bigint, last_hash = ${param((p) => last(p).hash)}
        WHERE id AND last_seq = ${param((p) => p.auditHead!.seq)}::bigint AND last_hash = ${param((p) => p.auditHead!.hash)} RETURNING 1)`);
    ctes.push(`au AS (INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash)
      SELECT seq, at, actor, action, subject, coalesce(data, 'null'::jsonb), prev_hash, hash
      FROM jsonb_to_recordset(${param((p) => auditJson(p.audits))}::text::jsonb) AS t(seq bigint, at timestamptz,
        actor text, action text, subject text, data jsonb, prev_hash text, hash text)
      WHERE EXISTS (SELECT 1 FROM ah) RETURNING 1)`);
    // First, so that a moved head is told apart from a stale row.
    guards.unshift(
      `WHEN (SELECT count(*) FROM au) <> ${param((p) => p.audits.length)}::bigint THEN ('${GUARD_TEXT} audit head ' || (SELECT count(*) FROM au))::bigint`,
    );
  }
  if (messages) {
    const order = param((p) => JSON.stringify(p.counts));
    // Counters in a fixed order (ORDER BY r), so concurrent writers cannot deadlock on them.
    ctes.push(`rs AS (INSERT INTO recipient_seq (recipient, last_seq)
      SELECT r, n FROM jsonb_to_recordset(${order}::text::jsonb) AS t(r text, n bigint) ORDER BY r
      ON CONFLICT (recipient) DO UPDATE SET last_seq = recipient_seq.last_seq + EXCLUDED.last_seq
      RETURNING recipient, last_seq)`);
    // The seq of the k-th message to r in this flush: r's new last_seq − r's count + k.
    // json, not jsonb, as the column (migration 004): the payloads are passed through as text.
    ctes.push(`ms AS (INSERT INTO messages (recipient, seq, event, payload, at)
      SELECT t.recipient, rs.last_seq - c.n + t.k, t.event, coalesce(t.payload, 'null'::json), t.at
      FROM json_to_recordset(${param((p) => messagesJson(p.messages))}::text::json) AS t(recipient text, k bigint,
        event text, payload json, at timestamptz)
      JOIN rs ON rs.recipient = t.recipient
      JOIN jsonb_to_recordset(${order}::text::jsonb) AS c(r text, n bigint) ON c.r = t.recipient
      RETURNING 1)`);
    selects.push(`SELECT 'm:' || recipient AS k, last_seq AS v FROM rs`);
    guard('ms', (p) => p.messages.length, 'message');
  }
  if (guards.length > 0) selects.push(`SELECT 'g' AS k, CASE ${guards.join('\n')} ELSE 0 END AS v`);
  return { sql: `WITH ${ctes.join(',\n')}\n${selects.join(' UNION ALL ')}`, getters };
}

/**
 * The messages as a JSON array, each distinct payload serialised once: a push to several
 * recipients (a unit and the consoles) shares one payload object.
 */
export function messagesJson(messages: Row[]): string {
  const done = new Map<unknown, string>();
  let out = '';
  for (const m of messages) {
    let body = done.get(m.payload);
    if (body === undefined) {
      body = JSON.stringify(m.payload) ?? 'null';
      done.set(m.payload, body);
    }
    out += `${out ? ',' : '['}{"recipient":${JSON.stringify(m.recipient)},"k":${JSON.stringify(m.k)},"event":${JSON.stringify(m.event)},"at":${JSON.stringify(m.at)},"payload":${body}}`;
  }
  return out ? `${out}]` : '[]';
}

export const auditJson = (rows: AuditRow[]): string =>
  JSON.stringify(
    rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      data: r.data,
      prev_hash: r.prevHash,
      hash: r.hash,
    })),
  );

/** Which guard failed, from the driver's error; undefined when it was not a guard. */
export function failedGuard(err: unknown): string | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  const i = msg.indexOf(GUARD_TEXT);
  if (i < 0) return undefined;
  return msg
    .slice(i + GUARD_TEXT.length)
    .replace(/["\s\d]+$/, '')
    .trim();
}
