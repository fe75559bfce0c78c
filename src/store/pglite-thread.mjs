// Worker thread hosting PGlite for the embedded mode, so that the database's CPU work runs
// beside the engine's event loop instead of on it (PGlite is Postgres in WASM: every
// statement is synchronous compute). Plain JavaScript: worker threads do not inherit the
// TypeScript loader. Protocol (structured clone): { id, op: 'query' | 'exec' | 'close', sql,
// params } → { id, rows, affectedRows }; { id, op: 'atomic', statements: [{ text, params }] }
// → { id, results: [{ rows, affectedRows }] }; or { id, error: { message, code } }.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const db = workerData?.dataDir ? await PGlite.create(workerData.dataDir) : await PGlite.create();

parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'query') {
      const res = await db.query(msg.sql, msg.params);
      parentPort.postMessage({ id: msg.id, rows: res.rows, affectedRows: res.affectedRows ?? 0 });
    } else if (msg.op === 'atomic') {
      // One transaction, one message: the statements of a write that must commit together.
      const results = await db.transaction(async (tx) => {
        const out = [];
        for (const st of msg.statements) {
          const res = await tx.query(st.text, st.params);
          out.push({ rows: res.rows, affectedRows: res.affectedRows ?? 0 });
        }
        return out;
      });
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
  } catch (err) {
    parentPort.postMessage({
      id: msg.id,
      error: {
        message: err?.message ?? String(err),
        code: typeof err?.code === 'string' ? err.code : undefined,
        constraint: typeof err?.constraint === 'string' ? err.constraint : undefined,
      },
    });
  }
});
parentPort.postMessage({ ready: true });
