// `npx tsx bench/fault-redis-restart.ts [--rate 60] [--units 500] [--silent 25] [--load 30]
//                                       [--down 5] [--ack-timeout 10] [--sweep-ms 0] [--seed 1] [--json]`
//
// Long version of test/fault/redis-restart.test.ts (issue #6 item 3): `dispatch serve` in
// services mode (a PostgreSQL database of its own on DATABASE_URL's server) on a private
// redis-server (a free port; never the shared one) under `rate` incidents/s from `units`
// socket.io units (`silent` never acknowledge); after `load` s, with a decide job waiting in
// Redis and ack timers pending, Redis is SIGKILLed, stays down `down` s and starts again empty
// on the same port. Prints: resume (Redis back → first assignment, first timers job, first
// intake job), the lateness of the ack timers lost with Redis (deadline during / after the
// outage), POST latency while Redis was down, and the invariants (lost, duplicates, double-
// booked, never assigned, socket gaps). `--sweep-ms 0` (default) keeps the engine's default
// sweep period (30 s). The scenario is test/fault/redis-scenario.ts. Exit code 1 when an
// invariant broke or a lost timer never fired.

import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { cleanupAll, figures, percentiles } from '../test/fault/harness.ts';
import { redisFigures, runRedisRestart } from '../test/fault/redis-scenario.ts';
import { faultBench, numberOption } from './fault-cli.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '60' },
    units: { type: 'string', default: '500' },
    silent: { type: 'string', default: '25' },
    load: { type: 'string', default: '30' },
    down: { type: 'string', default: '5' },
    'ack-timeout': { type: 'string', default: '10' },
    'sweep-ms': { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof values) => numberOption(values, k);
const log = faultBench('fault-redis-restart');

try {
  const load0 = loadavg()[0];
  const sweep = num('sweep-ms');
  const r = await runRedisRestart({
    units: num('units'),
    silent: num('silent'),
    holdMs: 0,
    rate: num('rate'),
    preKillMs: num('load') * 1000,
    downMs: num('down') * 1000,
    postRestartMs: 10_000,
    ackTimeoutS: num('ack-timeout'),
    ...(sweep > 0 ? { sweepIntervalMs: sweep } : {}),
    seed: num('seed'),
    drainTimeoutMs: 30 * 60_000,
    drainStallMs: 120_000,
    log,
  });
  const during = percentiles(r.latenessDuringOutageMs);
  const f = {
    ...redisFigures(r),
    lateMsDuringOutage: `${during.n} timers p50 ${during.p50} max ${during.max}`,
    sweepMs: sweep > 0 ? sweep : 'default',
    cpus: cpus().length,
    loadAvg: `${load0.toFixed(2)}→${loadavg()[0].toFixed(2)}`,
  };
  if (values.json) process.stdout.write(`${JSON.stringify({ ...f, result: r }, null, 2)}\n`);
  else figures(`bench redis-restart ${num('rate')}/s, Redis down ${num('down')} s`, f);
  const broken =
    r.lost.length +
    r.duplicates.length +
    r.overlapping +
    r.activeTwice.length +
    r.neverAccepted.length +
    r.pendingNotTimedOut.length +
    r.gaps +
    r.duplicateOffers +
    r.missedOffers +
    r.unanswered;
  if (broken > 0 || !Number.isFinite(r.decisionsResumeMs)) {
    log(`invariants broken: ${JSON.stringify({ ...r, pending: r.pending.length }).slice(0, 4000)}`);
    process.exitCode = 1;
  }
} catch (err) {
  log((err as Error).stack ?? String(err));
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
