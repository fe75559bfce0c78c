import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteClient } from '../../src/store/pglite-client.ts';
import { PgliteThreadClient } from '../../src/store/pglite-thread-client.ts';
import type { SqlClient } from '../../src/store/sql-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { sqlReset, sqlTamper, storeContract } from './store-suite.ts';

// One PGlite database per adapter for the whole file (creating one costs seconds), persisted
// in a temp directory so that the reopen test really closes and reopens it, as the embedded
// mode does. The product runs PGlite in a worker thread; the in-thread client is kept for
// tools that want no thread.
for (const [name, open] of [
  ['PGlite (worker thread)', (dir: string) => PgliteThreadClient.start(dir)],
  ['PGlite (in-thread)', (dir: string) => createPgliteClient(dir)],
] as [string, (dir: string) => Promise<SqlClient>][]) {
  storeContract(
    name,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dispatch-pglite-'));
      return {
        open: async (opts) => SqlStore.open(await open(dir), opts),
        reset: (store) => sqlReset((store as SqlStore).client),
        tamperAudit: (store, t) => sqlTamper((store as SqlStore).client, t),
        teardown: () => rm(dir, { recursive: true, force: true }),
        sqlClient: (store) => (store as SqlStore).client,
      };
    },
    { sql: true },
  );
}
