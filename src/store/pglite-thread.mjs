// Worker thread hosting PGlite for the embedded mode, so that the database's CPU work runs
// beside the engine's event loop instead of on it (PGlite is Postgres in WASM: every
// statement is synchronous compute). Plain JavaScript: worker threads do not inherit the
// TypeScript loader. Protocol (structured clone): { id, op: 'query' | 'exec' | 'close', sql,
// params, prepare?, urgent? } → { id, rows, affectedRows }; { id, op: 'atomic', statements:
// [{ text, params, prepare? }], urgent? } → { id, results: [{ rows, affectedRows }] }; or { id,
// error: { message, code } }. An atomic message may carry `track` (its outcome is kept) and
// `ifOk` (the id of a tracked one: run only if that held, see handle()). `prepare`: a
// statement whose text comes back often (the engine's commit) is kept prepared, see run().
// `urgent`: see pump().
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const db = workerData?.dataDir ? await PGlite.create(workerData.dataDir) : await PGlite.create();
// Literals below double their quotes and nothing else: that is only right with this on.
await db.exec('SET standard_conforming_strings = on');
// A new 16 MB WAL segment is zero-filled by default, by this one backend, inside whichever
// commit crossed the segment's end: at 200 incidents/s that was one commit stalled ~45 ms
// every ~2.8 s, the offers behind it waiting too (the live bench's p99). Not zero-filling
// loses nothing here: PGlite runs with fsync off, and the zero-fill only guards the space
// on disk for a later fsync'd write.
await db.exec('SET wal_init_zero = off');
// The prepared statements (the engine's commits) find their rows by primary key, and each is
// planned once. Planned the usual way, the plan came from the table sizes of the moment: the
// assignments table, nearly empty then, got a full scan, kept as it grew (PGlite runs no
// autovacuum, whose ANALYZE would have made Postgres plan again) — a commit's cost grew with
// every assignment ever made, 3 ms of its 9 ms after 20 s at 150 incidents/s. So one generic
// plan each (no custom plans for the first five runs), made with seq scans off (see run()).
await db.exec('SET plan_cache_mode = force_generic_plan');

/**
 * Statement texts kept prepared, oldest first. Planning the engine's commit statement (a dozen
 * CTEs) took 1–4 ms of its 1.3–5 ms on every batch; EXECUTE of the prepared one skips it.
 * PGlite's query() only has the unnamed statement, and EXECUTE takes no bind parameters, so
 * the parameters go as quoted literals: the same text form bind parameters have.
 */
const prepared = new Map();
const MAX_PREPARED = 200;
let named = 0;

const literal = (v) => (v === null || v === undefined ? 'NULL' : `'${String(v).replaceAll("'", "''")}'`);
const plain = (v) => v === null || v === undefined || ['string', 'number', 'boolean'].includes(typeof v);

/** Runs one statement on `q` (the database or a transaction), prepared when asked and possible. */
async function run(q, sql, params, prepare) {
  if (!prepare || !params?.length || !params.every(plain) || params.some((v) => Number.isNaN(v))) {
    return q.query(sql, params);
  }
  let name = prepared.get(sql);
  if (name === undefined) {
    if (prepared.size >= MAX_PREPARED) {
      const [oldText, oldName] = prepared.entries().next().value;
      prepared.delete(oldText);
      await q.exec(`DEALLOCATE ${oldName}`);
    }
    name = `dispatch_${++named}`;
    await q.exec(`PREPARE ${name} AS ${sql}`);
    prepared.set(sql, name);
    // Planned now, at its first EXECUTE, once (generic plans, see the top): without seq scans.
    await q.exec('SET enable_seqscan = off');
    try {
      return await q.query(`EXECUTE ${name}(${params.map(literal).join(', ')})`);
    } finally {
      // In a transaction this statement aborted, the RESET fails; the rollback undoes the SET.
      await q.exec('RESET enable_seqscan').catch(() => {});
    }
  }
  return q.query(`EXECUTE ${name}(${params.map(literal).join(', ')})`);
}

/**
 * Messages run one at a time, in the order sent, except that `urgent` ones (the engine's
 * commits) go before the ordinary ones still waiting: a commit used to queue behind the
 * background readers' statements (review scanner, outbox relay), each of them milliseconds.
 * Urgent ones keep their own order. None can enter a transaction of several messages: the
 * client sends nothing else while one is open, so an urgent message waiting here was sent
 * before its BEGIN, and going first it goes before that BEGIN too. A read that an urgent
 * write overtakes sees that write, as if it had been sent a moment later.
 */
const urgent = [];
const ordinary = [];
let pumping = false;

parentPort.on('message', (msg) => {
  (msg.urgent ? urgent : ordinary).push(msg);
  if (!pumping) void pump();
});

async function pump() {
  pumping = true;
  while (urgent.length > 0 || ordinary.length > 0) {
    await handle(urgent.length > 0 ? urgent.shift() : ordinary.shift());
    // A statement runs synchronously in WASM: the messages that came meanwhile are taken in
    // (and sorted) only when this loop lets the event loop run.
    await new Promise((r) => setImmediate(r));
  }
  pumping = false;
}

/**
 * Outcomes of the pipelined writes (`track`), by message id: a write sent with `ifOk` runs
 * only if that one held. Urgent messages run in the order sent, so it was answered already;
 * only the last few are kept.
 */
const outcomes = new Map();

async function handle(msg) {
  if (msg.ifOk !== undefined && outcomes.get(msg.ifOk) !== true) {
    // The code is SKIPPED_WRITE of sql-client.ts (this file cannot import TypeScript).
    parentPort.postMessage({
      id: msg.id,
      error: { message: `pipelined write skipped: write ${msg.ifOk} before it did not hold`, code: 'DSKIP' },
    });
    if (msg.track) remember(msg.id, false);
    return;
  }
  const ok = await handle1(msg);
  if (msg.track) remember(msg.id, ok);
}

function remember(id, ok) {
  outcomes.set(id, ok);
  if (outcomes.size > 64) outcomes.delete(outcomes.keys().next().value);
}

/** Runs one message and answers it; true if it held. */
async function handle1(msg) {
  try {
    if (msg.op === 'query') {
      const res = await run(db, msg.sql, msg.params, msg.prepare);
      parentPort.postMessage({ id: msg.id, rows: res.rows, affectedRows: res.affectedRows ?? 0 });
    } else if (msg.op === 'atomic') {
      // One transaction, one message: the statements of a write that must commit together.
      // One statement commits on its own: no BEGIN and COMMIT (each a query of its own here).
      const runAll = async (q) => {
        const out = [];
        for (const st of msg.statements) {
          const res = await run(q, st.text, st.params, st.prepare);
          out.push({ rows: res.rows, affectedRows: res.affectedRows ?? 0 });
        }
        return out;
      };
      const results = msg.statements.length === 1 ? await runAll(db) : await db.transaction(runAll);
      parentPort.postMessage({ id: msg.id, results });
    } else if (msg.op === 'exec') {
      await db.exec(msg.sql);
      parentPort.postMessage({ id: msg.id, rows: [], affectedRows: 0 });
    } else if (msg.op === 'close') {
      if (!db.closed) await db.close();
      parentPort.postMessage({ id: msg.id, rows: [], affectedRows: 0 });
    } else {
      throw new Error(`pglite-thread: unknown op ${msg.op}`);
    }
    return true;
  } catch (err) {
    parentPort.postMessage({
      id: msg.id,
      error: {
        message: err?.message ?? String(err),
        code: typeof err?.code === 'string' ? err.code : undefined,
        constraint: typeof err?.constraint === 'string' ? err.constraint : undefined,
      },
    });
    return false;
  }
}
parentPort.postMessage({ ready: true });
