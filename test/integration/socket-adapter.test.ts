// The cluster's socket.io adapter (src/cluster/socket-adapter.ts) on the real Redis: two
// socket.io servers in this process, as two nodes. A node's own serverSideEmit messages come
// back from Redis and are dropped before they are parsed; everything else crosses as before.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAdapter } from '../../src/cluster/socket-adapter.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const closers: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (closers.length > 0) await closers.pop()!();
});

async function node(key: string) {
  const pub = new Redis(REDIS_URL, { lazyConnect: true });
  await pub.connect(); // fails loudly without Redis
  const sub = pub.duplicate();
  const io = new Server(createServer(), { adapter: createAdapter(pub, sub, { key }) });
  closers.push(() => {
    io.close();
    pub.disconnect();
    sub.disconnect();
  });
  const heard: unknown[][] = [];
  io.on('probe', (...args: unknown[]) => heard.push(args));
  const adapter = io.of('/').adapter as unknown as { uid: string; serverCount(): Promise<number> };
  return { io, heard, uid: adapter.uid, servers: () => adapter.serverCount() };
}

const until = async (ok: () => boolean | Promise<boolean>, what: string) => {
  const end = Date.now() + 5000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('cluster socket adapter', () => {
  it("delivers serverSideEmit to the other node only, parsing the sender's own copy never", async () => {
    const key = `dispatch-test-${randomBytes(4).toString('hex')}`;
    const a = await node(key);
    const b = await node(key);
    await until(async () => (await a.servers()) === 2, 'both nodes subscribed');

    const parse = vi.spyOn(JSON, 'parse');
    const fromA = (s: unknown) => typeof s === 'string' && s.startsWith(`{"uid":"${a.uid}"`);
    a.io.serverSideEmit('probe', { n: 1 }, 'x');
    await until(() => b.heard.length === 1, 'the other node to hear it');
    await new Promise((r) => setTimeout(r, 100)); // the sender's own copy has come back by now
    expect(b.heard).toEqual([[{ n: 1 }, 'x']]);
    expect(a.heard).toEqual([]);
    // Parsed once: by the other node. The library parsed it on the sender too.
    expect(parse.mock.calls.filter(([s]) => fromA(s))).toHaveLength(1);

    // Requests of other kinds still cross: fetchSockets asks every node and waits for answers.
    expect(await a.io.fetchSockets()).toEqual([]);
    b.io.serverSideEmit('probe', { n: 2 });
    await until(() => a.heard.length === 1, 'the first node to hear the second');
    expect(a.heard).toEqual([[{ n: 2 }]]);
    expect(b.heard).toHaveLength(1);
  });
});
