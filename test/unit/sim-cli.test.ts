// `dispatch replay`, `generate` and `import-calls` run in process: byte-identical outputs
// between runs, the output layout, --json on stdout only, and errors → exit code 2 with the
// path of the first wrong field and no stack trace.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as generate } from '../../src/cli/commands/generate.ts';
import { run as importCalls } from '../../src/cli/commands/import-calls.ts';
import { run as replay } from '../../src/cli/commands/replay.ts';
import { generateScenario } from '../../src/scenario/generate.ts';

let dir: string;
let demo: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'replay-cli-'));
  demo = existsSync('scenarios/demo.json') ? 'scenarios/demo.json' : join(dir, 'demo.json');
  if (!existsSync(demo))
    writeFileSync(demo, JSON.stringify(generateScenario({ preset: 'demo', hours: 2, seed: 7 })));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function capture(f: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  try {
    const code = await f();
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const read = (...p: string[]) => readFileSync(join(...p), 'utf8');

describe('dispatch replay', () => {
  it('same scenario and seed → byte-identical kpis.json, events.ndjson, report.html', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    expect((await capture(() => replay([demo, '--policy', 'greedy', '--out', a]))).code).toBe(0);
    expect((await capture(() => replay([demo, '--policy', 'greedy', '--out', b]))).code).toBe(0);
    for (const f of ['kpis.json', 'events.ndjson', 'report.html']) expect(read(a, f)).toBe(read(b, f));
    const k = JSON.parse(read(a, 'kpis.json'));
    expect(k.wallMs).toBeUndefined();
    expect(k.solver.p50Ms).toBeUndefined();
    const timing = JSON.parse(read(a, 'timing.json'));
    expect(typeof timing.wallMs).toBe('number');
    expect(typeof timing.solver.p99Ms).toBe('number');
  }, 120_000);

  it('--compare writes one folder per policy and one report; --json prints only JSON', async () => {
    const c = join(dir, 'c');
    const r = await capture(() => replay([demo, '--compare', 'greedy,optimal', '--out', c, '--json']));
    expect(r.code).toBe(0);
    const stdout = JSON.parse(r.out);
    expect(Object.keys(stdout)).toEqual(['greedy', 'optimal']);
    expect(typeof stdout.optimal.wallMs).toBe('number');
    expect(typeof stdout.optimal.solver.p50Ms).toBe('number');
    expect(stdout.optimal.incidents.total).toBeGreaterThan(0);
    for (const p of ['greedy', 'optimal']) {
      expect(existsSync(join(c, p, 'events.ndjson'))).toBe(true);
      expect(JSON.parse(read(c, p, 'kpis.json')).incidents).toEqual(stdout[p].incidents);
    }
    expect(Object.keys(JSON.parse(read(c, 'kpis.json')))).toEqual(['greedy', 'optimal']);
    const html = read(c, 'report.html');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 180_000);

  it('prints a summary table without --json', async () => {
    const r = await capture(() => replay([demo, '--policy', 'optimal', '--cadence', '30']));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/priority-weighted mean/);
    expect(r.out).toMatch(/immediate: on time/);
  }, 120_000);

  it('a bad scenario: path of the first wrong field, exit 2, no stack trace', async () => {
    const bad = JSON.parse(read(demo));
    bad.units[3].speedKmh = -5;
    const f = join(dir, 'bad.json');
    writeFileSync(f, JSON.stringify(bad));
    const r = await capture(() => replay([f]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\$\.units\[3\]\.speedKmh/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
  });

  it('usage errors exit 2', async () => {
    expect((await capture(() => replay([]))).code).toBe(2);
    expect((await capture(() => replay([join(dir, 'nope.json')]))).err).toMatch(/cannot read/);
    expect((await capture(() => replay([demo, '--policy', 'fastest']))).err).toMatch(
      /unknown policy "fastest"/,
    );
    expect((await capture(() => replay([demo, '--cadence', '-3']))).code).toBe(2);
    const notJson = join(dir, 'x.json');
    writeFileSync(notJson, '{ nope');
    expect((await capture(() => replay([notJson]))).err).toMatch(/not valid JSON/);
  });
});

describe('dispatch generate', () => {
  it('writes the same bytes for the same options; refuses bad ones with exit 2', async () => {
    const a = await capture(() => generate(['--preset', 'demo', '--hours', '1', '--seed', '4']));
    const b = await capture(() => generate(['--preset', 'demo', '--hours', '1', '--seed', '4']));
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
    expect(JSON.parse(a.out).durationS).toBe(3600);
    const f = join(dir, 'g.json');
    expect(
      (await capture(() => generate(['--preset', 'demo', '--hours', '1', '--seed', '4', '-o', f]))).code,
    ).toBe(0);
    expect(read(f)).toBe(a.out);
    expect((await capture(() => generate(['--preset', 'atlantis']))).err).toMatch(/unknown preset/);
    expect((await capture(() => generate(['--preset', 'demo', '--hours', 'x']))).code).toBe(2);
    expect((await capture(() => generate([]))).code).toBe(2);
  });
});

describe('dispatch import-calls', () => {
  it('imports the sample call log and reports rejected rows on stderr', async () => {
    if (!existsSync('scenarios/calls/sample-calls.csv')) return;
    const out = join(dir, 'imported.json');
    const r = await capture(() =>
      importCalls([
        'scenarios/calls/sample-calls.csv',
        '--mapping',
        'scenarios/calls/mapping.json',
        '--base',
        demo,
        '-o',
        out,
      ]),
    );
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/rows read, \d+ imported/);
    expect(JSON.parse(read(out)).incidents.length).toBeGreaterThan(0);
    // and the result replays
    expect((await capture(() => replay([out, '--policy', 'greedy']))).code).toBe(0);
  }, 120_000);

  it('errors name the file and field, exit 2', async () => {
    const m = join(dir, 'm.json');
    writeFileSync(m, JSON.stringify({ columns: { id: 'call_id' } }));
    const csv = join(dir, 'c.csv');
    writeFileSync(csv, 'call_id\n1\n');
    const r = await capture(() => importCalls([csv, '--mapping', m, '--base', demo]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/mapping\.columns\.receivedAt/);
    expect((await capture(() => importCalls([csv, '--mapping', m]))).err).toMatch(/--base/);
  });
});
