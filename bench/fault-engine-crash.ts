// `npx tsx bench/fault-engine-crash.ts [--mode services|embedded] [--rate 500] [--duration 30]
//                                      [--units 1000] [--silent 50] [--hold 0] [--ack-timeout 5]
//                                      [--engine-config JSON] [--seed 1] [--json]`
//
// Long version of test/fault/engine-crash.test.ts (issue #6 item 1): `dispatch serve` (default
// services mode: a PostgreSQL database and a BullMQ prefix of its own on DATABASE_URL's server
// and REDIS_URL) under `rate` incidents/s sustained for `duration` s from `units` socket.io
// units (`silent` of them never acknowledge), SIGKILLed mid-load, restarted at once on the same
// store and port (services: at a moment an ack timer job is being handled, so that its job is
// left locked in Redis); posts that failed meanwhile are retried with their Idempotency-Key. Prints
// the figures: posted, accepted, lost, duplicates, double-booked, never assigned, offers
// pending at the kill and their timeouts after the restart, restart → next assignment (from the
// spawn and from /healthz 200), socket gaps / duplicate / missed offers. The scenario itself
// is test/fault/crash-scenario.ts. Exit code 1 when an invariant broke (lost, duplicate,
// double-booked, never assigned, a pending offer not timed out and re-offered, a socket gap)
// or a post was never answered (storedUnanswered: how many of those the engine had stored).
// `--engine-config '{"decideInline":false}'` merges engine tunables (src/engine/config.ts).

import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { EngineConfig } from '../src/engine/config.ts';
import { crashFigures, runEngineCrash } from '../test/fault/crash-scenario.ts';
import { cleanupAll, figures } from '../test/fault/harness.ts';
import { faultBench, numberOption } from './fault-cli.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'services' },
    rate: { type: 'string', default: '500' },
    duration: { type: 'string', default: '30' },
    units: { type: 'string', default: '1000' },
    silent: { type: 'string', default: '50' },
    hold: { type: 'string', default: '0' },
    'ack-timeout': { type: 'string', default: '5' },
    'engine-config': { type: 'string', default: '{}' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof values) => numberOption(values, k);
const mode = values.mode === 'embedded' ? 'embedded' : 'services';
const ackTimeoutS = num('ack-timeout');
const log = faultBench('fault-engine-crash');

try {
  const load0 = loadavg()[0];
  const r = await runEngineCrash({
    mode,
    units: num('units'),
    silent: num('silent'),
    holdMs: num('hold'),
    rate: num('rate'),
    preKillMs: num('duration') * 1000,
    postRestartMs: 5000,
    engineConfig: {
      ackTimeoutS,
      ackTimeoutOtherS: ackTimeoutS,
      sweepIntervalMs: 1000,
      ...(JSON.parse(values['engine-config'] ?? '{}') as Partial<EngineConfig>),
    },
    seed: num('seed'),
    drainTimeoutMs: 30 * 60_000,
    drainStallMs: 120_000,
    replaySample: 200,
    catchActiveTimer: mode === 'services',
    catchActiveTimerMs: 5000,
    waitForPending: false,
    log,
  });
  const f = {
    ...crashFigures(r),
    created: r.created,
    incidentsInStore: r.incidentsInStore,
    assignments: r.assignments,
    timedOut: r.timedOut,
    unitsReconnected: r.unitsReconnected,
    replaySample: r.replaySample,
    cpus: cpus().length,
    loadAvg: `${load0.toFixed(2)}→${loadavg()[0].toFixed(2)}`,
  };
  if (values.json) process.stdout.write(`${JSON.stringify({ ...f, result: r }, null, 2)}\n`);
  else figures(`bench engine-crash ${mode} ${num('rate')}/s × ${num('duration')} s`, f);
  const broken =
    r.lost.length +
    r.duplicates.length +
    r.overlapping +
    r.activeTwice.length +
    r.neverAccepted.length +
    r.pendingProblems.length +
    r.gaps +
    r.duplicateOffers +
    r.missedOffers +
    r.unanswered +
    r.replaySample.wrong;
  if (broken > 0) {
    log(
      `invariants broken: ${JSON.stringify({ ...r, pendingAtKill: r.pendingAtKill.length }).slice(0, 4000)}`,
    );
    process.exitCode = 1;
  }
} catch (err) {
  log((err as Error).stack ?? String(err));
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
