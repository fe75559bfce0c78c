import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { BullmqQueue, decodeJobId, encodeJobId } from '../../src/queue/bullmq-queue.ts';
import { queueContract } from './queue-suite.ts';

// Real Redis at REDIS_URL (default the local server). Unreachable → these tests fail, never skip.
// Every queue instance gets its own key prefix under this file's, and is obliterated after.
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const FILE_PREFIX = `dispatch-test-queue-${randomBytes(4).toString('hex')}`;
let n = 0;

it(`reaches Redis at ${REDIS_URL} (required: this file fails, never skips, without it)`, async () => {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 3000, lazyConnect: true });
  r.on('error', () => {});
  try {
    await r.connect();
    expect(await r.ping()).toBe('PONG');
  } catch (err) {
    throw new Error(
      `Redis unreachable at ${REDIS_URL}: ${(err as Error).message}. Start it or set REDIS_URL.`,
    );
  } finally {
    r.disconnect();
  }
});

it('encodes job ids injectively (BullMQ refuses ":" and integers)', () => {
  for (const id of ['ack:a-1', '42', 'outbox:7', 'a%3Ab', 'a:b', '', 'j']) {
    expect(encodeJobId(id)).not.toContain(':');
    expect(String(Number.parseInt(encodeJobId(id), 10))).not.toBe(encodeJobId(id));
    expect(decodeJobId(encodeJobId(id))).toBe(id);
  }
  expect(encodeJobId('a%3Ab')).not.toBe(encodeJobId('a:b'));
});

queueContract('BullMQ', async ({ onFailed, backoffMs }) => {
  const queue = new BullmqQueue({
    url: REDIS_URL,
    prefix: `${FILE_PREFIX}-${++n}`,
    onFailed,
    retry: { backoffMs },
  });
  await queue.ping();
  return {
    queue,
    dispose: async () => {
      await queue.purge();
      await queue.close();
    },
  };
});
