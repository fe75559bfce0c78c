// The embedded database checkpoints on its own: PGlite runs Postgres single-user, without the
// checkpointer, so without this a crash replays every WAL record since the database opened.
// A child process writes, waits for a periodic checkpoint, writes again and SIGKILLs itself;
// reopening then finds every committed row (before and after the checkpoint).

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PgliteThreadClient } from '../../src/store/pglite-thread-client.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dispatch-checkpoint-'));
  dirs.push(d);
  return d;
}

const until = async (ok: () => boolean, what: string) => {
  const end = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('PGlite checkpoints (embedded mode)', () => {
  it('checkpoints periodically after statements, and not while idle', async () => {
    const db = await PgliteThreadClient.start(await tempDir(), { checkpointMs: 40 });
    try {
      await db.query('CREATE TABLE t (id int PRIMARY KEY)');
      await db.query('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
      await until(() => db.checkpointStats.count >= 1, 'a checkpoint');
      const after = db.checkpointStats.count;
      await new Promise((r) => setTimeout(r, 250));
      expect(db.checkpointStats.count).toBe(after);
      await db.query('INSERT INTO t VALUES (1001)');
      await until(() => db.checkpointStats.count > after, 'a checkpoint after the next write');
    } finally {
      await db.close();
    }
  });

  it('a process killed after a checkpoint reopens with every committed row', async () => {
    const dir = await tempDir();
    const script = join(dir, '..', `checkpoint-child-${process.pid}.mts`);
    const client = pathToFileURL(join(import.meta.dirname, '../../src/store/pglite-thread-client.ts')).href;
    await writeFile(
      script,
      `import { PgliteThreadClient } from ${JSON.stringify(client)};
const db = await PgliteThreadClient.start(${JSON.stringify(dir)}, { checkpointMs: 30 });
await db.query('CREATE TABLE t (id int PRIMARY KEY, x text)');
await db.query("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g");
while (db.checkpointStats.count < 1) await new Promise((r) => setTimeout(r, 5));
await db.query("INSERT INTO t SELECT g, 'after' FROM generate_series(20001, 20100) g");
process.kill(process.pid, 'SIGKILL');
`,
    );
    dirs.push(script);
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const db = await PgliteThreadClient.start(dir, { checkpointMs: 0 });
    try {
      const { rows } = await db.query<{ n: number; after: number }>(
        "SELECT count(*)::int AS n, count(*) FILTER (WHERE x = 'after')::int AS after FROM t",
      );
      expect(rows[0]).toEqual({ n: 20100, after: 100 });
    } finally {
      await db.close();
    }
  });
});
