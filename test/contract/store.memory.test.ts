import { MemoryDatabase, MemoryStore } from '../../src/store/memory-store.ts';
import { memoryTamper, storeContract } from './store-suite.ts';

storeContract('memory', async () => {
  const db = new MemoryDatabase();
  return {
    open: async (opts) => new MemoryStore(db, opts),
    reset: async () => db.clear(),
    tamperAudit: async (store, t) => memoryTamper(store as MemoryStore, t),
    teardown: async () => {},
  };
});
