// The audit trail cannot be edited unseen — shown on the real PostgreSQL. The live engine
// writes a day's worth of history (units registered, incidents reported, offers accepted and
// declined, statuses, a close); then, for each kind of tampering, a copy of that database
// (CREATE DATABASE … TEMPLATE) is altered with plain SQL, as someone with write access to the
// database would, and both the store's verifyAudit() and the real CLI (`dispatch audit
// verify` as a child process with DATABASE_URL) must report it broken, naming the FIRST broken
// link, with exit code 1. The untouched chain verifies (exit 0).
//
// One tampering the chain cannot see by itself: cutting the newest rows and setting the head
// record (audit_head, in the same database) back to match. `dispatch audit anchor` exports the
// head; `verify --anchor FILE` catches that cut. Appending a forged row with a valid sha256 and
// a matching head is caught only with an HMAC key (DISPATCH_AUDIT_KEY): shown on a keyed chain.
//
// Needs PostgreSQL (DATABASE_URL, default the local test server); fails, never skips, without it.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import { Engine } from '../../src/engine/engine.ts';
import { nullPublisher } from '../../src/engine/memory-publisher.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { auditTime, hashAuditRow } from '../../src/store/audit-chain.ts';
import { createDatabase, createPgClient, dropDatabase, withDatabase } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = join(import.meta.dirname, '../..');
const HMAC_KEY = 'audit-tamper-hmac-key-0123456789abcdef';

const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.zhao' };
const ADMIN: Actor = { role: 'admin', id: 'root' };
const unitActor = (id: string): Actor => ({ role: 'unit', id: `unit:${id}`, unitId: id });
const BASE: LonLat = [113.45, 23.1];
const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];

const databases: string[] = [];
let tmp: string;

async function admin<T>(fn: (c: pg.Client) => Promise<T>, url = ADMIN_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A live engine on a fresh database writes some history; returns the database and its row count. */
async function history(auditKey?: string): Promise<{ name: string; url: string; rows: number }> {
  const db = await createDatabase(ADMIN_URL);
  databases.push(db.name);
  const store = await SqlStore.open(createPgClient(db.url, { max: 4 }), auditKey ? { auditKey } : {});
  const queue = new MemoryQueue({ onFailed: () => {} });
  const engine = new Engine({
    store,
    queue,
    publisher: nullPublisher,
    clock: systemClock,
    catalog: defaultCatalog(),
    travel: new GreatCircleTravel(),
    config: { sweepIntervalMs: 0 },
    log: () => {},
  });
  await engine.start();
  try {
    for (const [id, caps, home] of [
      ['A1', ['ambulance'], at(0.5)],
      ['P1', ['police'], at(3, 3)],
      ['P2', ['police'], at(-4, 2)],
    ] as [string, string[], LonLat][]) {
      await engine.upsertUnit(
        id,
        { department: caps[0], capabilities: caps, home, speedKmh: 40, turnoutS: 60 },
        ADMIN,
      );
    }
    const med = (
      await engine.reportIncident({ type: 'medical-emergency', location: at(0.6) }, 'call-1', DISPATCHER)
    ).incident;
    const burglary = (
      await engine.reportIncident({ type: 'burglary-report', location: at(3.1, 3) }, undefined, DISPATCHER)
    ).incident;
    await engine.runDecision();
    const offers = await engine.listAssignments({ active: true }, ADMIN);
    const a1 = offers.find((a) => a.unitId === 'A1' && a.incidentId === med.id)!;
    const p1 = offers.find((a) => a.unitId === 'P1' && a.incidentId === burglary.id)!;
    await engine.acknowledge(a1.id, true, unitActor('A1'));
    await engine.reportStatus('A1', 'en_route', unitActor('A1'), med.id);
    await engine.reportStatus('A1', 'on_scene', unitActor('A1'), med.id);
    await engine.reportStatus('A1', 'available', unitActor('A1'));
    await engine.closeIncident(med.id, DISPATCHER, 'patient transported');
    await engine.acknowledge(p1.id, false, unitActor('P1'), 'flat tyre');
    await engine.runDecision();
    await engine.reportStatus('P1', 'off_duty', unitActor('P1'));
    await engine.cancelIncident(burglary.id, DISPATCHER, 'caller withdrew');
  } finally {
    await engine.stop();
    await queue.close();
    await store.close();
  }
  const rows = await admin(
    async (c) => Number((await c.query('SELECT count(*) AS n FROM audit')).rows[0].n),
    db.url,
  );
  return { ...db, rows };
}

/** A copy of `template` to tamper with. */
async function copyOf(template: string): Promise<string> {
  const name = `${template}_t${databases.length}`;
  // The template must have no session: a pool just closed may take a moment to leave.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
      break;
    } catch (err) {
      if (attempt >= 50 || !/being accessed by other users/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  databases.push(name);
  return withDatabase(ADMIN_URL, name);
}

/** `dispatch audit …` as a user runs it: a child process on DATABASE_URL. */
function cli(
  args: string[],
  url: string,
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin/dispatch.js'), 'audit', ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: url, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

async function storeVerdict(url: string, auditKey?: string) {
  const store = await SqlStore.open(createPgClient(url, { max: 2 }), {
    migrate: false,
    ...(auditKey ? { auditKey } : {}),
  });
  try {
    return await store.verifyAudit();
  } finally {
    await store.close();
  }
}

/** A row's stored fields. */
async function row(c: pg.Client, seq: number) {
  const { rows } = await c.query('SELECT * FROM audit WHERE seq = $1', [seq]);
  return rows[0] as {
    seq: string;
    at: Date;
    actor: string;
    action: string;
    subject: string;
    data: unknown;
    prev_hash: string;
    hash: string;
  };
}
const content = (r: Awaited<ReturnType<typeof row>>, seq: number, data = r.data) => ({
  seq,
  at: auditTime(r.at),
  actor: r.actor,
  action: r.action,
  subject: r.subject,
  data,
});

interface Tamper {
  name: string;
  /** Runs the SQL on the copy; returns the seq the report must name. */
  apply: (c: pg.Client, n: number) => Promise<number>;
  /** Run `verify` with the anchor taken before the tampering. */
  anchor?: boolean;
  /** On the HMAC-keyed chain. */
  keyed?: boolean;
}

const MID = (n: number) => Math.floor(n / 2);

const TAMPERS: Tamper[] = [
  {
    name: "edit a row's payload",
    apply: async (c, n) => {
      await c.query(
        `UPDATE audit SET data = '{"status":"closed","note":"nothing happened"}'::jsonb WHERE seq = $1`,
        [MID(n)],
      );
      return MID(n);
    },
  },
  {
    name: "edit a row's actor",
    apply: async (c, n) => {
      await c.query(`UPDATE audit SET actor = 'dispatcher:someone-else' WHERE seq = $1`, [MID(n) + 1]);
      return MID(n) + 1;
    },
  },
  {
    name: "move a row's time by a second",
    apply: async (c) => {
      await c.query(`UPDATE audit SET at = at + interval '1 second' WHERE seq = 3`);
      return 3;
    },
  },
  {
    name: "edit a row's hash",
    apply: async (c, n) => {
      await c.query(`UPDATE audit SET hash = repeat('a', 64) WHERE seq = $1`, [MID(n)]);
      return MID(n);
    },
  },
  {
    name: 'edit a payload and recompute its hash (sha256)',
    apply: async (c, n) => {
      const k = MID(n);
      const r = await row(c, k);
      const data = { forged: true };
      await c.query('UPDATE audit SET data = $2::jsonb, hash = $3 WHERE seq = $1', [
        k,
        JSON.stringify(data),
        hashAuditRow(r.prev_hash, content(r, k, data)),
      ]);
      return k + 1; // the row itself verifies; the next one's link to it breaks
    },
  },
  {
    name: 'delete a middle row',
    apply: async (c, n) => {
      await c.query('DELETE FROM audit WHERE seq = $1', [MID(n)]);
      return MID(n);
    },
  },
  {
    name: 'delete the first row',
    apply: async (c) => {
      await c.query('DELETE FROM audit WHERE seq = 1');
      return 1;
    },
  },
  {
    name: 'delete the last row',
    apply: async (c, n) => {
      await c.query('DELETE FROM audit WHERE seq = $1', [n]);
      return n;
    },
  },
  {
    name: 'delete the last 3 rows',
    apply: async (c, n) => {
      await c.query('DELETE FROM audit WHERE seq > $1', [n - 3]);
      return n - 2;
    },
  },
  {
    name: 'delete the last 3 rows and set the head record back (caught by the anchor)',
    anchor: true,
    apply: async (c, n) => {
      await c.query('DELETE FROM audit WHERE seq > $1', [n - 3]);
      const last = await row(c, n - 3);
      await c.query('UPDATE audit_head SET last_seq = $1, last_hash = $2', [n - 3, last.hash]);
      return n - 2;
    },
  },
  {
    name: 'rewrite the chain from a middle row on, with a matching head (caught by the anchor)',
    anchor: true,
    apply: async (c, n) => {
      // Everything from row k is re-hashed with fresh content: the chain verifies by itself.
      const k = MID(n);
      let prev = (await row(c, k - 1)).hash;
      for (let seq = k; seq <= n; seq++) {
        const r = await row(c, seq);
        const data = seq === k ? { rewritten: true } : r.data;
        const hash = hashAuditRow(prev, content(r, seq, data));
        await c.query('UPDATE audit SET data = $2::jsonb, prev_hash = $3, hash = $4 WHERE seq = $1', [
          seq,
          JSON.stringify(data),
          prev,
          hash,
        ]);
        prev = hash;
      }
      await c.query('UPDATE audit_head SET last_hash = $1', [prev]);
      return n; // the anchor names the newest anchored row: rewritten at or before it
    },
  },
  {
    name: 'swap two rows (reorder)',
    apply: async (c, n) => {
      const [i, j] = [MID(n) - 1, MID(n) + 2];
      const a = await row(c, i);
      const b = await row(c, j);
      const set =
        'UPDATE audit SET at = $2, actor = $3, action = $4, subject = $5, data = $6::jsonb, prev_hash = $7, hash = $8 WHERE seq = $1';
      await c.query(set, [
        i,
        b.at,
        b.actor,
        b.action,
        b.subject,
        JSON.stringify(b.data),
        b.prev_hash,
        b.hash,
      ]);
      await c.query(set, [
        j,
        a.at,
        a.actor,
        a.action,
        a.subject,
        JSON.stringify(a.data),
        a.prev_hash,
        a.hash,
      ]);
      return i;
    },
  },
  {
    name: 'insert a forged row in the middle (renumbering the rest)',
    apply: async (c, n) => {
      const k = MID(n);
      for (let seq = n; seq >= k; seq--)
        await c.query('UPDATE audit SET seq = seq + 1 WHERE seq = $1', [seq]);
      const prev = await row(c, k - 1);
      const forged = {
        seq: k,
        at: auditTime(prev.at),
        actor: 'dispatcher:ghost',
        action: 'incident.close',
        subject: 'inc_ghost',
        data: {},
      };
      await c.query(
        'INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)',
        [
          k,
          forged.at,
          forged.actor,
          forged.action,
          forged.subject,
          '{}',
          prev.hash,
          hashAuditRow(prev.hash, forged),
        ],
      );
      return k + 1; // the forged row links and hashes correctly; the renumbered next one does not
    },
  },
  {
    name: 'append a forged row after the head',
    apply: async (c, n) => {
      const last = await row(c, n);
      const forged = {
        seq: n + 1,
        at: auditTime(last.at),
        actor: 'admin:ghost',
        action: 'unit.update',
        subject: 'P1',
        data: {},
      };
      await c.query(
        'INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)',
        [
          n + 1,
          forged.at,
          forged.actor,
          forged.action,
          forged.subject,
          '{}',
          last.hash,
          hashAuditRow(last.hash, forged),
        ],
      );
      return n + 1;
    },
  },
  {
    name: 'remove the head record',
    apply: async (c, n) => {
      await c.query('DELETE FROM audit_head');
      return n;
    },
  },
  {
    name: 'keyed chain: append a forged row with a sha256 hash and a matching head',
    keyed: true,
    apply: async (c, n) => {
      const last = await row(c, n);
      const forged = {
        seq: n + 1,
        at: auditTime(last.at),
        actor: 'admin:ghost',
        action: 'unit.update',
        subject: 'P1',
        data: {},
      };
      const hash = hashAuditRow(last.hash, forged); // no key: what a forger can compute
      await c.query(
        'INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)',
        [n + 1, forged.at, forged.actor, forged.action, forged.subject, '{}', last.hash, hash],
      );
      await c.query('UPDATE audit_head SET last_seq = $1, last_hash = $2', [n + 1, hash]);
      return n + 1;
    },
  },
  {
    name: 'keyed chain: edit a payload and recompute its hash without the key',
    keyed: true,
    apply: async (c, n) => {
      const k = MID(n);
      const r = await row(c, k);
      const data = { forged: true };
      await c.query('UPDATE audit SET data = $2::jsonb, hash = $3 WHERE seq = $1', [
        k,
        JSON.stringify(data),
        hashAuditRow(r.prev_hash, content(r, k, data)),
      ]);
      return k; // with HMAC the forged hash itself is wrong
    },
  },
];

let plain: { name: string; url: string; rows: number };
let keyed: { name: string; url: string; rows: number };
let anchorFile: string;

beforeAll(async () => {
  try {
    await admin((c) => c.query('SELECT 1'));
  } catch (err) {
    throw new Error(
      `PostgreSQL unreachable at ${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')}: ${(err as Error).message}`,
    );
  }
  tmp = mkdtempSync(join(tmpdir(), 'audit-tamper-'));
  [plain, keyed] = await Promise.all([history(), history(HMAC_KEY)]);
  // The anchor an operator's cron job would have shipped elsewhere before the tampering.
  anchorFile = join(tmp, 'anchors.jsonl');
  const anchored = await cli(['anchor', '--out', anchorFile], plain.url);
  expect(anchored.code, anchored.err).toBe(0);
  expect(JSON.parse(anchored.out)).toMatchObject({ seq: plain.rows, rows: plain.rows });
}, 120_000);

afterAll(async () => {
  for (const name of databases.reverse()) await dropDatabase(ADMIN_URL, name).catch(() => {});
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the untouched chain verifies', () => {
  it('has a history worth tampering with', () => {
    expect(plain.rows).toBeGreaterThanOrEqual(12);
    expect(keyed.rows).toBe(plain.rows);
  });

  it('the store and the CLI say OK (exit 0), with and without the anchor; a keyed chain needs its key', async () => {
    const copy = await copyOf(plain.name);
    expect(await storeVerdict(copy)).toMatchObject({ ok: true, rows: plain.rows, headSeq: plain.rows });
    const [bare, anchored, keyedOk, keyedWrong] = await Promise.all([
      cli(['verify'], copy),
      cli(['verify', '--anchor', anchorFile], copy),
      cli(['verify'], keyed.url, { DISPATCH_AUDIT_KEY: HMAC_KEY }),
      cli(['verify', '--audit-key', 'not-the-key-not-the-key-not-the-key'], keyed.url),
    ]);
    expect(bare.code, bare.err).toBe(0);
    expect(bare.out).toContain(`audit chain OK: ${plain.rows} rows, head seq ${plain.rows}`);
    expect(anchored.code, anchored.err).toBe(0);
    expect(anchored.out).toContain('1 anchor(s) match');
    expect(keyedOk.code, keyedOk.err).toBe(0);
    expect(keyedWrong.code).toBe(1);
    expect(keyedWrong.err).toContain('BROKEN at seq 1');
  });

  it('refuses to anchor a broken chain, and a bad anchor file is a usage error', async () => {
    const copy = await copyOf(plain.name);
    await admin((c) => c.query('DELETE FROM audit WHERE seq = 2'), copy);
    const anchor = await cli(['anchor'], copy);
    expect(anchor.code).toBe(1);
    expect(anchor.err).toContain('not anchoring a broken chain');
    const bad = join(tmp, 'bad.jsonl');
    await import('node:fs').then((fs) => fs.writeFileSync(bad, '{"seq":"x"}\n'));
    expect((await cli(['verify', '--anchor', bad], copy)).code).toBe(2);
  });
});

describe('every tampering is reported, naming the first broken link', () => {
  it('cutting the tail and resetting the head is invisible to the chain alone (the documented limit)', async () => {
    const copy = await copyOf(plain.name);
    await admin(async (c) => {
      await TAMPERS.find((t) => t.name.startsWith('delete the last 3 rows and set'))!.apply(c, plain.rows);
    }, copy);
    const bare = await cli(['verify'], copy);
    expect(bare.code).toBe(0);
    expect(bare.out).toContain(`audit chain OK: ${plain.rows - 3} rows`);
  });

  for (const t of TAMPERS) {
    it(t.name, async () => {
      const base = t.keyed ? keyed : plain;
      const copy = await copyOf(base.name);
      const brokenAt = await admin((c) => t.apply(c, base.rows), copy);
      const key = t.keyed ? HMAC_KEY : undefined;
      const args = ['verify', ...(t.anchor ? ['--anchor', anchorFile] : [])];
      const [res, verdict] = await Promise.all([
        cli(args, copy, key ? { DISPATCH_AUDIT_KEY: key } : {}),
        storeVerdict(copy, key),
      ]);
      expect(res.code, `${t.name}: ${res.out}${res.err}`).toBe(1);
      expect(res.err).toMatch(new RegExp(`^audit chain BROKEN at seq ${brokenAt}: `, 'm'));
      if (!t.anchor) {
        // The store's own walk names the same link (anchors are the CLI's, outside the database).
        expect(verdict).toMatchObject({ ok: false, brokenAt });
      } else {
        expect(verdict.ok).toBe(true);
      }
    });
  }
});
