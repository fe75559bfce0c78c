// Tamper-evident audit chain: pure functions shared by every Store adapter and by
// `dispatch audit verify`. Each audit row carries the hash of the previous row; a row's
// own hash is sha256 (or HMAC-sha256 when a key is configured) over the canonical JSON
// of its content plus that previous hash. Editing a row breaks its own hash, deleting a
// row leaves a gap in `seq`, rewriting a row with a fresh hash breaks the next link, and
// truncating the tail is caught against the recorded chain head.

import { createHash, createHmac } from 'node:crypto';
import { isoTime } from '../shared/iso-time.ts';

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** The hashed content of one audit row. `at` is an ISO 8601 UTC string with milliseconds. */
export interface AuditRowContent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  data: unknown;
}

export interface AuditRow extends AuditRowContent {
  prevHash: string;
  hash: string;
}

/** The last link as recorded outside the rows (the audit_head table). */
export interface ChainHead {
  seq: number;
  hash: string;
}

export type ChainVerdict =
  | { ok: true; rows: number; headSeq: number; headHash: string }
  | { ok: false; brokenAt: number; reason: string; rows: number };

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit order, no whitespace, `undefined`
 * members dropped, non-finite numbers as null (as JSON.stringify does). Two values that
 * survive a JSON (or jsonb) round trip equal produce the same string.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, new Set());
}

function serialise(value: unknown, seen: Set<object>): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return 'null';
  }
  const obj = value as { toJSON?: () => unknown };
  if (typeof obj.toJSON === 'function') return serialise(obj.toJSON(), seen);
  if (seen.has(value)) throw new TypeError('canonicalJson: circular structure');
  seen.add(value);
  // Built by concatenation: every audit row is hashed on the engine's thread, and arrays of
  // parts joined cost a fifth more (2.47 against 2.06 µs for a typical row).
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (i > 0) out += ',';
      out += v === undefined || typeof v === 'function' ? 'null' : serialise(v, seen);
    }
    out += ']';
  } else {
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec);
    if (keys.length > 1) keys.sort();
    out = '{';
    for (const k of keys) {
      const v = rec[k];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${serialise(v, seen)}`;
    }
    out += '}';
  }
  seen.delete(value);
  return out;
}

/**
 * Normalises a value the way a jsonb column would hand it back: a copy equal to
 * JSON.parse(JSON.stringify(value)) (null for undefined). Every stored payload, event and
 * message goes through it on the engine's thread, so plain objects, arrays and primitives are
 * copied directly, without the string round trip; anything else (toJSON, class instances,
 * a `__proto__` key, very deep nesting) takes the round trip itself.
 */
export function jsonNormalise(value: unknown): unknown {
  const out = copyJson(value, 0);
  return out === OMIT ? null : out;
}

/** What JSON.stringify leaves out of an object (and writes as null in an array). */
const OMIT = Symbol('omit');
const MAX_DIRECT_DEPTH = 64;

function roundTrip(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? OMIT : JSON.parse(text);
}

function copyJson(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      // -0 is written as 0; NaN and ±Infinity as null.
      return Number.isFinite(v) ? v + 0 : null;
    case 'object': {
      if (v === null) return null;
      if (depth > MAX_DIRECT_DEPTH || typeof (v as { toJSON?: unknown }).toJSON === 'function')
        return roundTrip(v);
      if (Array.isArray(v)) {
        const a = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = copyJson(v[i], depth + 1);
          a[i] = x === OMIT ? null : x;
        }
        return a;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return roundTrip(v);
      const src = v as Record<string, unknown>;
      const keys = Object.keys(src);
      // Assigning `__proto__` would set the prototype; JSON.parse makes it an own property.
      if (keys.includes('__proto__')) return roundTrip(v);
      const o: Record<string, unknown> = {};
      for (const k of keys) {
        const x = copyJson(src[k], depth + 1);
        if (x !== OMIT) o[k] = x;
      }
      return o;
    }
    case 'bigint':
      return roundTrip(v); // throws, as JSON.stringify does
    default:
      return OMIT; // undefined, functions, symbols
  }
}

/** Normalises a timestamp to the ISO string that is hashed (millisecond precision, UTC). */
export function auditTime(at: Date | string | number): string {
  const bad = () => new RangeError(`auditTime: invalid time ${String(at)}`);
  if (typeof at === 'number') {
    if (!Number.isFinite(at)) throw bad();
    return isoTime(at);
  }
  const d = at instanceof Date ? at : new Date(at);
  if (Number.isNaN(d.getTime())) throw bad();
  return d.toISOString();
}

/** Hash of one row given the previous row's hash. `key` switches to HMAC-sha256. */
export function hashAuditRow(prevHash: string, row: AuditRowContent, key?: string): string {
  const text = canonicalJson({
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    data: row.data ?? null,
    prevHash,
  });
  const h = key ? createHmac('sha256', key) : createHash('sha256');
  return h.update(text, 'utf8').digest('hex');
}

/**
 * Incremental verifier for rows fed in ascending `seq` order (so a store can stream
 * pages). `push` returns the first failure and keeps returning it afterwards.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private checked = 0;
  private failure: Extract<ChainVerdict, { ok: false }> | undefined;

  constructor(private readonly key?: string) {}

  get rows(): number {
    return this.checked;
  }

  push(row: AuditRow): Extract<ChainVerdict, { ok: false }> | undefined {
    if (this.failure) return this.failure;
    if (row.seq !== this.expectedSeq) {
      if (row.seq > this.expectedSeq) {
        const missing =
          row.seq - 1 === this.expectedSeq ? `${this.expectedSeq}` : `${this.expectedSeq}..${row.seq - 1}`;
        return this.fail(this.expectedSeq, `row ${missing} missing (next row present is ${row.seq})`);
      }
      return this.fail(row.seq, `row ${row.seq} out of order or duplicated (expected ${this.expectedSeq})`);
    }
    if (row.prevHash !== this.prevHash) {
      return this.fail(
        row.seq,
        row.seq === 1
          ? 'prev_hash of the first row is not the genesis hash'
          : `prev_hash does not match the hash of row ${row.seq - 1}`,
      );
    }
    const expected = hashAuditRow(row.prevHash, row, this.key);
    if (row.hash !== expected) {
      return this.fail(row.seq, `hash mismatch: row ${row.seq} content was altered`);
    }
    this.prevHash = row.hash;
    this.expectedSeq = row.seq + 1;
    this.checked++;
    return undefined;
  }

  /** Final verdict; `head` (when recorded) catches a truncated tail or a forged last row. */
  finish(head?: ChainHead): ChainVerdict {
    if (this.failure) return this.failure;
    const lastSeq = this.expectedSeq - 1;
    if (head) {
      if (head.seq > lastSeq) {
        const missing = head.seq === lastSeq + 1 ? `${head.seq}` : `${lastSeq + 1}..${head.seq}`;
        return this.fail(lastSeq + 1, `row ${missing} missing: the chain head records seq ${head.seq}`);
      }
      if (head.seq < lastSeq) {
        return this.fail(
          head.seq + 1,
          `row ${head.seq + 1} lies beyond the recorded chain head (${head.seq})`,
        );
      }
      if (head.hash !== this.prevHash) {
        return this.fail(lastSeq, `hash of row ${lastSeq} does not match the recorded chain head`);
      }
    }
    return { ok: true, rows: this.checked, headSeq: lastSeq, headHash: this.prevHash };
  }

  private fail(brokenAt: number, reason: string): Extract<ChainVerdict, { ok: false }> {
    this.failure = { ok: false, brokenAt, reason, rows: this.checked };
    return this.failure;
  }
}

/** Verifies a whole chain (rows sorted by seq here) and names the first broken link. */
export function verifyChain(
  rows: readonly AuditRow[],
  opts: { head?: ChainHead; key?: string } = {},
): ChainVerdict {
  const v = new ChainVerifier(opts.key);
  const sorted = [...rows].sort((a, b) => a.seq - b.seq);
  for (const row of sorted) {
    const f = v.push(row);
    if (f) return f;
  }
  return v.finish(opts.head);
}

/** Builds the next row of a chain (used by every adapter when appending). */
export function nextAuditRow(prev: ChainHead, content: Omit<AuditRowContent, 'seq'>, key?: string): AuditRow {
  const row: AuditRowContent = { ...content, seq: prev.seq + 1 };
  return { ...row, prevHash: prev.hash, hash: hashAuditRow(prev.hash, row, key) };
}

/** One line for `dispatch audit verify`. */
export function formatChainVerdict(v: ChainVerdict): string {
  return v.ok
    ? `audit chain OK: ${v.rows} rows, head seq ${v.headSeq} (${v.headHash.slice(0, 16)}…)`
    : `audit chain BROKEN at seq ${v.brokenAt}: ${v.reason} (${v.rows} rows verified before it)`;
}
