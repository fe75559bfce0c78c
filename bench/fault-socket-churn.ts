// `npx tsx bench/fault-socket-churn.ts [--units 1000] [--disconnects 10000] [--churn 100]
//                                      [--rate 50] [--auth-every 50] [--seed 1] [--json]`
//
// Long version of test/fault/socket-churn.test.ts (issue #6 item 4): `dispatch serve`
// (embedded) with `units` socket.io unit clients; `disconnects` disconnects at `churn`/s, at
// random (transport drops with automatic reconnect, clean disconnects, refused reconnects with
// an expired or forged token, automatic reconnects refused while the token is expired), while
// incidents are posted at `rate`/s and the units work their offers. Every client keeps its
// last seq and sends it on reconnect. Prints disconnects, offers, gaps, duplicates, reordered,
// missed (seqs and offers in the engine's push log a client never got), clients behind their
// stream's head, and the refusals. The scenario is test/fault/churn-scenario.ts. Exit code 1
// when any of gaps, duplicates, missed, behind, accepted-bad-token is not 0.

import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { churnFigures, runSocketChurn } from '../test/fault/churn-scenario.ts';
import { cleanupAll, figures } from '../test/fault/harness.ts';
import { faultBench, numberOption } from './fault-cli.ts';

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '1000' },
    disconnects: { type: 'string', default: '10000' },
    churn: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    'auth-every': { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof values) => numberOption(values, k, 1);
const log = faultBench('fault-socket-churn');

try {
  const load0 = loadavg()[0];
  const r = await runSocketChurn({
    units: num('units'),
    disconnects: num('disconnects'),
    churnPerS: num('churn'),
    rate: num('rate'),
    authEvery: num('auth-every'),
    seed: num('seed'),
    log,
  });
  const f = {
    ...churnFigures(r),
    cpus: cpus().length,
    loadAvg: `${load0.toFixed(2)}→${loadavg()[0].toFixed(2)}`,
  };
  if (values.json) process.stdout.write(`${JSON.stringify({ ...f, result: r }, null, 2)}\n`);
  else figures(`bench socket-churn ${r.units} clients`, f);
  const broken =
    r.gaps +
    r.reordered +
    r.duplicateOffers +
    r.missedSeqs +
    r.missedOffers +
    r.behind +
    r.storeGaps +
    r.acceptedBadToken +
    r.receivedWhileRefused;
  if (broken > 0) process.exitCode = 1;
} catch (err) {
  log((err as Error).stack ?? String(err));
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
