// `dispatch figures`: a planner's figures from a replay's events.ndjson file — the CSV it writes
// is the CSV of computeFigures over the same records (what GET /v1/kpis/export.csv renders
// live), the report is written, the review flags of the log are printed, and bad command lines
// exit 2.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/commands/figures.ts';
import { loadScenario } from '../../src/cli/commands/replay.ts';
import { optimalPolicy } from '../../src/core/policies.ts';
import { scenarioContext } from '../../src/engine/factory.ts';
import { computeFigures, fromSimEvents } from '../../src/kpi/figures.ts';
import { figuresCsv } from '../../src/report/kpi-report.ts';
import { toNdjson } from '../../src/sim/events.ts';
import { simulate } from '../../src/sim/simulate.ts';

const dir = mkdtempSync(join(tmpdir(), 'dispatch-figures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCENARIO = 'scenarios/demo.json';
const scenario = loadScenario(SCENARIO);
const replay = simulate(scenario, {
  policy: optimalPolicy,
  sim: { declineProb: 0.05, noResponseProb: 0.05 },
});
const events = join(dir, 'events.ndjson');
writeFileSync(events, toNdjson(replay.events));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    return { code: await run(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('dispatch figures', () => {
  it('writes the CSV of the shared figures, the report, and prints the figures as JSON', async () => {
    const csv = join(dir, 'by-dept.csv');
    const html = join(dir, 'report.html');
    const r = await cli([
      events,
      '--scenario',
      SCENARIO,
      '--group-by',
      'department',
      '--csv',
      csv,
      '--html',
      html,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const ctx = scenarioContext(scenario);
    const lastT = replay.events.reduce((m, e) => Math.max(m, e.t), scenario.durationS);
    const f = computeFigures(fromSimEvents(replay.events), {
      catalog: ctx.catalog,
      units: scenario.units.map((u) => ({ id: u.id, department: u.department })),
      ...(ctx.areas ? { areas: ctx.areas } : {}),
      startT: 0,
      durationS: scenario.durationS,
      asOfT: lastT,
      groupBy: 'department',
    });
    expect(readFileSync(csv, 'utf8')).toBe(figuresCsv({ groups: f.groups!, all: f.all }));
    expect(JSON.parse(r.out)).toEqual({ window: { from: 0, to: scenario.durationS }, ...f });
    expect(f.all.incidents).toBe(scenario.incidents.length);
    expect(readFileSync(html, 'utf8')).toContain('Response segments per department');
  });

  it('prints the review flags of the log', async () => {
    const r = await cli([events, '--scenario', SCENARIO, '--reviews', '--from', '0', '--to', '3600']);
    expect(r.code).toBe(0);
    const flags = r.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { kind: string });
    // The simulated units arrive where they are sent, at their modelled speed: no flag of
    // distance or speed; unanswered offers may add up for a unit.
    expect(flags.filter((f) => f.kind === 'on_scene_far' || f.kind === 'too_fast')).toEqual([]);
    expect(r.out).toMatch(/incidents · response p50/);
  });

  it('refuses a bad command line with exit 2', async () => {
    expect((await cli([events])).code).toBe(2);
    expect((await cli([events, '--scenario', SCENARIO, '--group-by', 'shift'])).code).toBe(2);
    expect((await cli([events, '--scenario', SCENARIO, '--from', '100', '--to', '50'])).code).toBe(2);
    expect((await cli([join(dir, 'missing.ndjson'), '--scenario', SCENARIO])).code).toBe(2);
  });
});
