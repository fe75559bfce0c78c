// `dispatch replay SCENARIO [--policy NAME] [--compare A,B] [--out DIR] [--json] [--cadence N] [--timing]`
//
// Runs the scenario on the virtual clock through the real dispatch core (src/sim) and
// reports KPIs computed from the event log (src/kpi).
//   --policy NAME    greedy | optimal (default optimal)
//   --compare A,B    run several policies on the same scenario, side by side
//   --cadence N      decide at most every N seconds (overrides the scenario's sim.cadenceS)
//   --json           print the KPI object to stdout and nothing else (with --compare: an
//                    object keyed by policy); includes the wall-clock figures
//   --out DIR        write
//                      single policy:  DIR/kpis.json, DIR/events.ndjson, DIR/timing.json, DIR/report.html
//                      --compare:      DIR/kpis.json (keyed by policy), DIR/timing.json (keyed by
//                                      policy), DIR/report.html (policies side by side), and
//                                      DIR/<policy>/kpis.json, DIR/<policy>/events.ndjson
//   --timing         also put the wall-clock figures (solver.p50Ms, solver.p99Ms, wallMs) into
//                    kpis.json and report.html
// Determinism: kpis.json, events.ndjson and report.html depend only on the scenario (and
// its seed) and the options, so two runs give byte-identical files — unless --timing, since
// wall-clock figures differ between runs; those always go to timing.json instead.
// A progress bar is drawn on stderr when stderr is a terminal. A bad scenario is refused
// with the JSON path of its first wrong field and exit code 2.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCatalog, type CatalogIndex } from '../../core/catalog.ts';
import { isCoreError } from '../../core/errors.ts';
import { POLICIES } from '../../core/policies.ts';
import { computeKpis, type Kpis } from '../../kpi/compute.ts';
import { computeSeries } from '../../kpi/series.ts';
import { type ReportRun, renderReport } from '../../report/html.ts';
import type { Scenario } from '../../scenario/types.ts';
import { isScenarioError, parseScenario } from '../../scenario/validate.ts';
import { toNdjson } from '../../sim/events.ts';
import { resolveSimOptions } from '../../sim/options.ts';
import { simulate } from '../../sim/simulate.ts';
import { progressBar } from '../progress.ts';

const USAGE =
  'usage: dispatch replay SCENARIO [--policy NAME] [--compare A,B] [--out DIR] [--json] [--cadence N] [--timing]\n';

class UsageError extends Error {}

function fail(msg: string): number {
  process.stderr.write(`dispatch replay: ${msg}\n`);
  return 2;
}

/** Reads and checks a scenario file; errors name the file and the first wrong field. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseScenario(json);
  } catch (e) {
    if (isScenarioError(e))
      throw new UsageError(`${file}: invalid scenario at ${e.path}: expected ${e.expected}, got ${e.got}`);
    throw e;
  }
}

export interface RunOutcome {
  policy: string;
  kpis: Kpis;
  /** KPIs without wall-clock figures (byte-identical between runs). */
  stableKpis: Kpis;
  ndjson: string;
  run: ReportRun;
  timing: { solver: { calls: number; p50Ms: number | null; p99Ms: number | null }; wallMs: number };
}

function replayOne(
  scenario: Scenario,
  policyName: string,
  cadence: number | undefined,
  label: string,
): RunOutcome {
  const policy = POLICIES[policyName];
  const bar = progressBar(label);
  const t0 = performance.now();
  const result = simulate(scenario, {
    policy,
    sim: cadence === undefined ? {} : { cadenceS: cadence },
    clock: () => performance.now(),
    onProgress: (t) => bar.update(t / scenario.durationS, `${Math.round(t / 60)} min`),
    progressEvery: 500,
  });
  const wallMs = performance.now() - t0;
  bar.done();
  const base = { durationS: scenario.durationS, unitCount: scenario.units.length };
  const kpis = computeKpis(result.events, result.catalog, {
    ...base,
    timing: { solverMs: result.solverMs, wallMs },
  });
  const stableKpis = computeKpis(result.events, result.catalog, base);
  const series = computeSeries(result.events, result.catalog, base);
  return {
    policy: policyName,
    kpis,
    stableKpis,
    ndjson: toNdjson(result.events),
    run: { policy: policyName, kpis: stableKpis, series },
    timing: {
      solver: {
        calls: kpis.solver.calls,
        p50Ms: kpis.solver.p50Ms ?? null,
        p99Ms: kpis.solver.p99Ms ?? null,
      },
      wallMs: kpis.wallMs ?? Math.round(wallMs),
    },
  };
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function fmtS(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  const s = Math.round(v);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(1)}%`);
const num = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(v));

/** The human summary: one column per policy. */
export function summaryTable(scenario: Scenario, outs: { policy: string; kpis: Kpis }[]): string {
  const rows: [string, (k: Kpis) => string][] = [
    ['incidents', (k) => num(k.incidents.total)],
    ['  served', (k) => num(k.incidents.served)],
    ['  unserved', (k) => num(k.incidents.unserved)],
    ['  cancelled', (k) => num(k.incidents.cancelled)],
    ['response p50', (k) => fmtS(k.responseS.p50)],
    ['response p90', (k) => fmtS(k.responseS.p90)],
    ['response mean', (k) => fmtS(k.responseS.mean)],
    ['priority-weighted mean', (k) => fmtS(k.priorityWeightedMeanResponseS)],
    ['immediate: incidents', (k) => num(k.immediate.count)],
    ['immediate: p90', (k) => fmtS(k.immediate.p90)],
    ['immediate: on time', (k) => pct(k.immediate.onTimePct)],
    ['unit utilisation', (k) => pct(k.units.utilisationPct)],
    ['decisions', (k) => num(k.solver.calls)],
    ['solver p50', (k) => (k.solver.p50Ms == null ? '—' : `${k.solver.p50Ms.toFixed(2)} ms`)],
    ['solver p99', (k) => (k.solver.p99Ms == null ? '—' : `${k.solver.p99Ms.toFixed(2)} ms`)],
    ['wall time', (k) => (k.wallMs == null ? '—' : `${(k.wallMs / 1000).toFixed(2)} s`)],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const cells = rows.map(([, f]) => outs.map((o) => f(o.kpis)));
  const widths = outs.map((o, j) => Math.max(o.policy.length, ...cells.map((c) => c[j].length)));
  const line = (label: string, vals: string[]) =>
    `${label.padEnd(w0)}  ${vals.map((v, j) => v.padStart(widths[j])).join('  ')}`.trimEnd();
  const head = `${scenario.name}: ${scenario.incidents.length} incidents, ${scenario.units.length} units, ${
    Math.round((scenario.durationS / 3600) * 100) / 100
  } h`;
  const out = [
    head,
    '',
    line(
      '',
      outs.map((o) => o.policy),
    ),
    line(
      '',
      widths.map((w) => '-'.repeat(w)),
    ),
  ];
  rows.forEach(([label], i) => {
    out.push(line(label, cells[i]));
  });
  return `${out.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  let values: {
    policy?: string;
    compare?: string;
    out?: string;
    json?: boolean;
    cadence?: string;
    timing?: boolean;
    help?: boolean;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        policy: { type: 'string' },
        compare: { type: 'string' },
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        cadence: { type: 'string' },
        timing: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return fail(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return fail(`expected one scenario file\n${USAGE}`);
  if (values.policy !== undefined && values.compare !== undefined) {
    return fail('give either --policy or --compare, not both');
  }
  const known = Object.keys(POLICIES);
  const policies =
    values.compare !== undefined
      ? values.compare
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '')
      : [values.policy ?? 'optimal'];
  if (policies.length === 0) return fail('--compare needs policy names, e.g. --compare greedy,optimal');
  for (const p of policies) {
    if (!Object.hasOwn(POLICIES, p)) return fail(`unknown policy "${p}" (known: ${known.join(', ')})`);
  }
  if (new Set(policies).size !== policies.length) return fail('--compare lists a policy twice');
  let cadence: number | undefined;
  if (values.cadence !== undefined) {
    cadence = Number(values.cadence);
    if (values.cadence.trim() === '' || !Number.isFinite(cadence) || cadence < 0) {
      return fail(`--cadence must be a number of seconds ≥ 0, got "${values.cadence}"`);
    }
  }

  let scenario: Scenario;
  try {
    scenario = loadScenario(positionals[0]);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message);
    throw e;
  }

  const outs: RunOutcome[] = [];
  try {
    for (const p of policies) outs.push(replayOne(scenario, p, cadence, `replay ${p}`));
  } catch (e) {
    if (isCoreError(e)) return fail(`${positionals[0]}: invalid scenario at ${e.field}: ${e.message}`);
    if (isScenarioError(e))
      return fail(`${positionals[0]}: invalid scenario at ${e.path}: expected ${e.expected}, got ${e.got}`);
    throw e;
  }

  const compare = values.compare !== undefined;
  const keyed = <T>(f: (o: RunOutcome) => T): Record<string, T> =>
    Object.fromEntries(outs.map((o) => [o.policy, f(o)]));

  if (values.out !== undefined) {
    const dir = values.out;
    try {
      mkdirSync(dir, { recursive: true });
      const stable = (o: RunOutcome) => (values.timing ? o.kpis : o.stableKpis);
      if (compare) {
        for (const o of outs) {
          const sub = join(dir, o.policy);
          mkdirSync(sub, { recursive: true });
          writeFileSync(join(sub, 'kpis.json'), json(stable(o)));
          writeFileSync(join(sub, 'events.ndjson'), o.ndjson);
        }
        writeFileSync(join(dir, 'kpis.json'), json(keyed(stable)));
        writeFileSync(join(dir, 'timing.json'), json(keyed((o) => o.timing)));
      } else {
        const o = outs[0];
        writeFileSync(join(dir, 'kpis.json'), json(stable(o)));
        writeFileSync(join(dir, 'events.ndjson'), o.ndjson);
        writeFileSync(join(dir, 'timing.json'), json(o.timing));
      }
      const html = renderReport({
        scenario: {
          name: scenario.name,
          start: scenario.start,
          durationS: scenario.durationS,
          units: scenario.units.length,
          incidents: scenario.incidents.length,
          description: scenario.description,
        },
        catalog: simCatalog(scenario),
        runs: outs.map((o) => (values.timing ? { ...o.run, kpis: o.kpis } : o.run)),
        notes: reportNotes(scenario, cadence),
      });
      writeFileSync(join(dir, 'report.html'), html);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code) return fail(`cannot write to ${dir}: ${err.code} ${err.path ?? ''}`.trimEnd());
      throw e;
    }
  }

  if (values.json) {
    process.stdout.write(json(compare ? keyed((o) => o.kpis) : outs[0].kpis));
  } else {
    process.stdout.write(summaryTable(scenario, outs));
    if (values.out !== undefined) process.stdout.write(`\nwrote ${values.out}/\n`);
  }
  return 0;
}

function simCatalog(scenario: Scenario): CatalogIndex {
  return buildCatalog(scenario.catalog, 'catalog');
}

function reportNotes(scenario: Scenario, cadence: number | undefined): string[] {
  const sim = resolveSimOptions(scenario.sim, cadence === undefined ? {} : { cadenceS: cadence });
  const travel = scenario.travel?.roads
    ? 'road network (shortest paths)'
    : `great circle × ${scenario.travel?.detourFactor ?? 1.3} ÷ unit speed, plus turnout`;
  return [
    `Travel model: ${travel}.`,
    `Simulation: decisions ${sim.cadenceS > 0 ? `every ${sim.cadenceS} s` : 'on every change'}; ack delay ${sim.ackDelayS} s, decline ${sim.declineProb}, no answer ${sim.noResponseProb}, ack timeout ${sim.ackTimeoutS} s; units ${sim.returnHome ? 'return home after clearing' : 'stay at the scene after clearing'}.`,
  ];
}
