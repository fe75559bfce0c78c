// `npx tsx bench/decision-round.ts [--units 1000] [--incidents 5] [--rounds 400] [--budget-ms 0] [--shuffle]`
//
// One live decision round as the engine runs it on every batch that asks for one: the
// mirror's DispatchState (`Mirror.dispatchState`) and the optimal policy's decision, on a
// seeded district of N idle units able to serve every type and a few queued incidents (the
// shape of bench:live's load). The first quarter of the rounds warms up; the mean of the rest
// is printed. The mirror's records stay the same objects between rounds, as they do live
// between changes.

import { parseArgs } from 'node:util';
import { defaultCatalog } from '../src/core/catalog.ts';
import { optimalPolicy } from '../src/core/policies.ts';
import { GreatCircleTravel } from '../src/core/travel.ts';
import { Mirror } from '../src/engine/mirror.ts';
import { Rng } from '../src/scenario/rng.ts';
import type { IncidentRecord, UnitRecord } from '../src/store/store.ts';

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '1000' },
    incidents: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '400' },
    /** The live engine's solver budget (decideBudgetMs); 0: none. */
    'budget-ms': { type: 'string', default: '0' },
    /** Register the units in a seeded random order (as a live district does), not by id. */
    shuffle: { type: 'boolean', default: false },
  },
});
const nUnits = Number(values.units);
const nIncidents = Number(values.incidents);
const rounds = Number(values.rounds);
const budgetMs = Number(values['budget-ms']);

const catalog = defaultCatalog();
const travel = new GreatCircleTravel();
const rng = new Rng(1).fork('bench:decision-round');
const box = { w: 113.425, e: 113.5, s: 23.075, n: 23.12 };
const caps = ['traffic', 'chengguan', 'police', 'market', 'ambulance'];
const types = ['illegal-parking', 'noise-complaint', 'burglary-report', 'food-safety', 'medical-emergency'];
const mirror = new Mirror();
const order = Array.from({ length: nUnits }, (_, i) => i);
if (values.shuffle) {
  const r = new Rng(1).fork('bench:decision-round:order');
  for (let i = nUnits - 1; i > 0; i--) {
    const j = r.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
}
// Drawn by unit, so that both orders make the same district.
const homes = Array.from({ length: nUnits }, (): [number, number] => [
  rng.uniform(box.w, box.e),
  rng.uniform(box.s, box.n),
]);
for (const i of order) {
  mirror.putUnit({
    id: `B-${String(i + 1).padStart(4, '0')}`,
    department: 'bench',
    capabilities: caps,
    home: homes[i],
    speedKmh: 40,
    turnoutS: 60,
    status: 'available',
    version: 1,
    payload: {},
  } as unknown as UnitRecord);
}
for (let i = 0; i < nIncidents; i++) {
  mirror.putIncident({
    id: `I-${i + 1}`,
    type: types[i % types.length],
    priority: 3,
    location: [rng.uniform(box.w, box.e), rng.uniform(box.s, box.n)],
    reportedAt: 1000,
    status: 'queued',
    targetAt: 2000,
    version: 1,
    payload: {},
  } as unknown as IncidentRecord);
}

let stateMs = 0;
let decideMs = 0;
let assigned = 0;
const warm = Math.floor(rounds / 4);
for (let k = 0; k < rounds; k++) {
  const t0 = performance.now();
  const state = mirror.dispatchState();
  const t1 = performance.now();
  const end = t1 + budgetMs;
  const expired = budgetMs > 0 ? () => performance.now() > end : () => false;
  const d = optimalPolicy.decide(state, 1010, { catalog, travel, budget: { expired } });
  const t2 = performance.now();
  assigned = d.assignments.length;
  if (k >= warm) {
    stateMs += t1 - t0;
    decideMs += t2 - t1;
  }
}
const n = rounds - warm;
console.log(
  `decision round, ${nUnits} units, ${nIncidents} queued incidents (${assigned} assignments), mean of ${n}: ` +
    `state ${(stateMs / n).toFixed(3)} ms + decide ${(decideMs / n).toFixed(3)} ms = ${((stateMs + decideMs) / n).toFixed(3)} ms`,
);
