// The socket.io Redis adapter of a cluster, behind a module of ours: `dispatch serve` loads it
// with the HTTP stack, after the core started (a dynamic import of the CommonJS package itself
// would not see its named exports in the bundle).

export { createAdapter } from '@socket.io/redis-adapter';
