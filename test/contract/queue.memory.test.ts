import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import { queueContract } from './queue-suite.ts';

queueContract('in-process', async ({ onFailed, backoffMs }) => {
  const queue = new MemoryQueue({ onFailed, retry: { backoffMs } });
  return { queue, dispose: () => queue.close() };
});
