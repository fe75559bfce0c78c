// Golden KPIs: every scenarios/*.json replayed with every policy must give exactly the
// committed test/golden/<scenario>.<policy>.kpis.json (the deterministic kpis.json that
// `dispatch replay --out` writes: no wall-clock figures).
//
// After an intended change of behaviour (core, simulator, KPI definitions, scenarios),
// review the differences and rewrite the expected files with
//     UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts
// The 24 h Huangpu day is not committed (bench/replay.ts loads scenarios/huangpu-24h.json
// when someone generated it there): that one file is left out; every other scenario is a case.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICIES } from '../src/core/policies.ts';
import { computeKpis } from '../src/kpi/compute.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { simulate } from '../src/sim/simulate.ts';

const SCENARIOS = 'scenarios';
const GOLDEN = join('test', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

const files = existsSync(SCENARIOS)
  ? readdirSync(SCENARIOS)
      .filter((f) => f.endsWith('.json') && f !== 'huangpu-24h.json')
      .sort()
  : [];

describe('golden KPIs', () => {
  it('has scenarios to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    const name = basename(file, '.json');
    for (const policy of Object.keys(POLICIES)) {
      it(`${name} × ${policy}`, () => {
        const scenario = parseScenario(JSON.parse(readFileSync(join(SCENARIOS, file), 'utf8')));
        const { events, catalog } = simulate(scenario, { policy: POLICIES[policy] });
        const kpis = computeKpis(events, catalog, {
          durationS: scenario.durationS,
          unitCount: scenario.units.length,
        });
        const text = `${JSON.stringify(kpis, null, 2)}\n`;
        const expected = join(GOLDEN, `${name}.${policy}.kpis.json`);
        if (update || !existsSync(expected)) {
          if (!update) throw new Error(`missing ${expected}: run with UPDATE_GOLDEN=1 to create it`);
          mkdirSync(GOLDEN, { recursive: true });
          writeFileSync(expected, text);
          return;
        }
        expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(expected, 'utf8')));
        expect(text).toBe(readFileSync(expected, 'utf8'));
      }, 300_000);
    }
  }
});
