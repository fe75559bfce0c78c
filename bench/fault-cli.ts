// What every fault bench (bench/fault-*.ts) shares: its log prefix, cleaning up when it is
// interrupted, and number options.

import { cleanupAll } from '../test/fault/harness.ts';

/** The bench's logger; SIGINT / SIGTERM still kill its processes, drop its database, purge its queue prefix. */
export function faultBench(name: string): (msg: string) => void {
  const log = (msg: string) => process.stderr.write(`bench:${name} ${msg}\n`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  return log;
}

/** A parsed `--key` option as a number ≥ min. */
export function numberOption(values: Record<string, unknown>, key: string, min = 0): number {
  const n = Number(values[key]);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${key} must be a number ≥ ${min}`);
  return n;
}
