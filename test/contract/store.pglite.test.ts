import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteClient } from '../../src/store/pglite-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { sqlReset, sqlTamper, storeContract } from './store-suite.ts';

// One PGlite database for the whole file (creating one costs seconds), persisted in a temp
// directory so that the reopen test really closes and reopens it, as the embedded mode does.
storeContract(
  'PGlite',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatch-pglite-'));
    return {
      open: async (opts) => SqlStore.open(await createPgliteClient(dir), opts),
      reset: (store) => sqlReset((store as SqlStore).client),
      tamperAudit: (store, t) => sqlTamper((store as SqlStore).client, t),
      teardown: () => rm(dir, { recursive: true, force: true }),
      sqlClient: (store) => (store as SqlStore).client,
    };
  },
  { sql: true },
);
