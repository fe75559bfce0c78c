// `npx tsx bench/fault-worker-crash.ts [--duration 60] [--rate 15] [--workers 2] [--kill-every 10]
//                                      [--units 60] [--hold 500] [--lease 5] [--seed 1] [--json]`
//
// Long version of test/fault/worker-crash.test.ts (issue #6 item 2: "SIGKILL a worker process
// every 10 s during load → 0 lost jobs; no unit sees a duplicate offer"): `dispatch serve`
// (services mode, DISPATCH_WORKERS=core: its own PostgreSQL database on DATABASE_URL's server
// and BullMQ prefix on REDIS_URL) with `workers` `dispatch worker` processes running the
// notifications queue and the webhook sender; `rate` incidents/s with a reporter callback to a
// receiver in this process, for `duration` s; every `kill-every` s a worker is SIGKILLed
// (alternately caught holding a job and mid-POST) and replaced. Prints the figures: posted,
// kills, jobs held at the kills and their kill → re-delivery delay, notification jobs and
// those re-delivered by the stalled check, lost / failed jobs, webhook updates expected and
// received, duplicates by Idempotency-Key (explained by a kill, or not), the kill → re-send
// delay, dead letters, units' gaps / duplicate offers. The scenario itself is
// test/fault/worker-crash-scenario.ts. Exit code 1 when an invariant broke (a lost job or
// update, a failed job, out of order, an unexplained duplicate, a dead letter, a socket gap or
// duplicate offer).

import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { cleanupAll, figures } from '../test/fault/harness.ts';
import { runWorkerCrash, workerCrashFigures } from '../test/fault/worker-crash-scenario.ts';
import { faultBench, numberOption } from './fault-cli.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    rate: { type: 'string', default: '15' },
    workers: { type: 'string', default: '2' },
    'kill-every': { type: 'string', default: '10' },
    units: { type: 'string', default: '60' },
    hold: { type: 'string', default: '500' },
    lease: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof values) => numberOption(values, k);
const log = faultBench('fault-worker-crash');

try {
  const load0 = loadavg()[0];
  const r = await runWorkerCrash({
    units: num('units'),
    holdMs: num('hold'),
    rate: num('rate'),
    durationMs: num('duration') * 1000,
    workers: Math.max(1, Math.floor(num('workers'))),
    killEveryMs: num('kill-every') * 1000,
    leaseS: num('lease'),
    callbackTimeoutMs: 2000,
    engineConfig: { ackTimeoutS: 10, ackTimeoutOtherS: 10 },
    seed: num('seed'),
    drainTimeoutMs: 5 * 60_000,
    log,
  });
  const f = {
    ...workerCrashFigures(r),
    workersStarted: r.workersStarted,
    cpus: cpus().length,
    loadAvg: `${load0.toFixed(2)}→${loadavg()[0].toFixed(2)}`,
  };
  if (values.json) process.stdout.write(`${JSON.stringify({ ...f, result: r }, null, 2)}\n`);
  else
    figures(
      `bench worker-crash ${num('rate')}/s × ${num('duration')} s, ${num('workers')} workers, kill every ${num('kill-every')} s`,
      f,
    );
  const broken =
    r.lostJobs.length +
    r.notRelayed +
    r.failedJobs +
    r.leftInQueue +
    r.missingKeys.length +
    r.unexpectedKeys.length +
    r.outOfOrder.length +
    r.wrongBody.length +
    r.badSignatures +
    r.duplicatesUnexplained.length +
    r.deadLetters +
    r.pendingDeliveries +
    r.lostIncidents.length +
    r.gaps +
    r.duplicateOffers +
    r.missedOffers +
    r.unanswered;
  if (broken > 0) {
    log(
      `invariants broken: ${JSON.stringify({
        lostJobs: r.lostJobs.slice(0, 20),
        missing: r.missingKeys.slice(0, 20),
        outOfOrder: r.outOfOrder.slice(0, 20),
        unexplained: r.duplicatesUnexplained.slice(0, 20),
        kills: r.kills,
      }).slice(0, 4000)}`,
    );
    process.exitCode = 1;
  }
} catch (err) {
  log((err as Error).stack ?? String(err));
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
