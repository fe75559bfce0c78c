// Picks the follow-up store that lives beside a main store: SQL on the same connection for
// SqlStore (PostgreSQL, PGlite), in-memory tables attached to the same MemoryDatabase for
// MemoryStore (so a store "reopened" on that database sees them too).

import type { FollowUpStore } from './followup-store.ts';
import { MemoryFollowUpStore } from './followup-store-memory.ts';
import { SqlFollowUpStore } from './followup-store-sql.ts';
import { MemoryStore } from './memory-store.ts';
import { SqlStore } from './sql-store.ts';
import type { Store } from './store.ts';

export function followUpStoreFor(store: Store): FollowUpStore {
  if (store instanceof MemoryStore) return new MemoryFollowUpStore(store);
  if (store instanceof SqlStore) return new SqlFollowUpStore(store);
  throw new Error(`no follow-up store for a ${store.kind} store of an unknown class`);
}
