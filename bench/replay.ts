// `npm run bench:replay`: the 24 h Huangpu day (scenarios/huangpu-24h.json when present,
// else generated with seed 1 — the same bytes `dispatch generate --preset huangpu --hours 24
// --seed 1` writes) replayed with each policy. Prints incidents, units, wall and CPU time,
// simulated seconds per wall second, decisions and solver p50/p99 per policy.
// Options: --policies optimal,greedy (default both, optimal first), --hours H (default 24),
// --cadence N (decide at most every N s instead of the scenario's sim.cadenceS).
// Target: the optimal replay of the 24 h day in ≤ 30 s on a 2-core machine.

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { POLICIES } from '../src/core/policies.ts';
import { computeKpis } from '../src/kpi/compute.ts';
import { generateScenario } from '../src/scenario/generate.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { simulate } from '../src/sim/simulate.ts';

const { values } = parseArgs({
  options: { policies: { type: 'string' }, hours: { type: 'string' }, cadence: { type: 'string' } },
});
const hours = Number(values.hours ?? 24);
const cadence = values.cadence === undefined ? undefined : Number(values.cadence);
const policies = (values.policies ?? 'optimal,greedy').split(',').map((s) => s.trim());
for (const p of policies) if (!POLICIES[p]) throw new Error(`unknown policy ${p}`);

const file = 'scenarios/huangpu-24h.json';
let t0 = performance.now();
const raw =
  hours === 24 && existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8'))
    : JSON.parse(JSON.stringify(generateScenario({ preset: 'huangpu', hours, seed: 1 })));
const scenario = parseScenario(raw);
const loadMs = performance.now() - t0;
console.log(
  `scenario ${scenario.name}: ${scenario.incidents.length} incidents, ${scenario.units.length} units, ` +
    `${scenario.durationS / 3600} h (${hours === 24 && existsSync(file) ? 'loaded' : 'generated'} in ${(loadMs / 1000).toFixed(1)} s)`,
);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] : Number.NaN;
};

for (const name of policies) {
  const c0 = process.cpuUsage();
  t0 = performance.now();
  const r = simulate(scenario, {
    policy: POLICIES[name],
    clock: () => performance.now(),
    sim: cadence === undefined ? {} : { cadenceS: cadence },
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const solverTotal = r.solverMs.reduce((a, b) => a + b, 0);
  const k = computeKpis(r.events, r.catalog, {
    durationS: scenario.durationS,
    unitCount: scenario.units.length,
  });
  console.log(
    [
      `${name}${cadence === undefined ? '' : ` (cadence ${cadence} s)`}:`,
      `wall ${(wallMs / 1000).toFixed(2)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`,
      `${Math.round(scenario.durationS / (wallMs / 1000))} sim-s per wall-s`,
      `${r.decisions} decisions`,
      `solver p50 ${pct(r.solverMs, 50).toFixed(3)} ms, p99 ${pct(r.solverMs, 99).toFixed(2)} ms, total ${(solverTotal / 1000).toFixed(2)} s`,
      `${r.events.length} events`,
    ].join(' · '),
  );
  console.log(
    `  served ${k.incidents.served}/${k.incidents.total}, unserved ${k.incidents.unserved}, ` +
      `response p50 ${k.responseS.p50} s p90 ${k.responseS.p90} s, priority-weighted mean ${k.priorityWeightedMeanResponseS} s, ` +
      `immediate on time ${k.immediate.onTimePct} %, utilisation ${k.units.utilisationPct} %`,
  );
}
