// The ioredis client class behind a module of ours: `dispatch serve` loads it only for a
// cluster (a dynamic import of the CommonJS package itself would not see its named exports
// in the bundle).

export { Redis } from 'ioredis';
