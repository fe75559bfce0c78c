// `dispatch figures EVENTS --scenario FILE [--group-by unit|department|area|type] [--from S] [--to S]
//                  [--json] [--csv FILE] [--html FILE] [--bucket S] [--reviews]`
//
// A planner's appraisal figures from a replay's `events.ndjson` and its scenario (catalogue,
// units' departments, areas for duty routing), computed by the very code behind the live
// GET /v1/kpis (src/kpi/figures.ts). The window is [--from, --to) in scenario seconds (default
// the scenario's whole duration); figures are as of the last record of the log.
//   --json        print { window, groupBy, all, groups } (default: a short summary)
//   --csv FILE    the figures as CSV (one row per group, then ALL), as GET /v1/kpis/export.csv
//   --html FILE   the printable report, as GET /v1/kpis/report.html (per department, per type,
//                 on-time % per type per --bucket seconds, default 7 days)
//   --reviews     also run the review-flag rules over the log and print the flags (JSON lines)
// Exit 2 on a bad command line or file.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AreaIndex } from '../../core/areas.ts';
import { buildCatalog } from '../../core/catalog.ts';
import { computeFigures, fromSimEvents, GROUP_BYS, type GroupBy, onTimeSeries } from '../../kpi/figures.ts';
import {
  DEFAULT_REVIEW_CONFIG,
  fromSimRecord,
  LogReviewer,
  resolveReviewConfig,
} from '../../kpi/review-rules.ts';
import { figuresCsv, renderFiguresReport } from '../../report/kpi-report.ts';
import { parseNdjson } from '../../sim/events.ts';
import { loadScenario } from './replay.ts';

const USAGE =
  'usage: dispatch figures EVENTS.ndjson --scenario FILE [--group-by unit|department|area|type] [--from S] [--to S] [--json] [--csv FILE] [--html FILE] [--bucket S] [--reviews]\n';

function fail(msg: string): number {
  process.stderr.write(`dispatch figures: ${msg}\n${USAGE}`);
  return 2;
}

function seconds(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new Error(`${name} must be seconds ≥ 0, got "${v}"`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        scenario: { type: 'string' },
        'group-by': { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        json: { type: 'boolean' },
        csv: { type: 'string' },
        html: { type: 'string' },
        bucket: { type: 'string' },
        reviews: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return fail('give exactly one events.ndjson file');
  if (typeof values.scenario !== 'string')
    return fail('--scenario FILE is required (catalogue, units, areas)');
  const groupBy = values['group-by'] as GroupBy | undefined;
  if (groupBy !== undefined && !GROUP_BYS.includes(groupBy)) {
    return fail(`--group-by must be one of ${GROUP_BYS.join(', ')}`);
  }
  let from: number;
  let to: number;
  let bucketS: number;
  let scenario: ReturnType<typeof loadScenario>;
  let text: string;
  try {
    scenario = loadScenario(values.scenario);
    from = seconds(values.from as string | undefined, '--from') ?? 0;
    to = seconds(values.to as string | undefined, '--to') ?? scenario.durationS;
    bucketS = seconds(values.bucket as string | undefined, '--bucket') ?? 7 * 86_400;
    if (!(to > from)) throw new Error('--to must be after --from');
    if (!(bucketS > 0)) throw new Error('--bucket must be > 0');
    text = readFileSync(positionals[0], 'utf8');
  } catch (e) {
    return fail((e as Error).message);
  }
  let records: ReturnType<typeof parseNdjson>;
  try {
    records = parseNdjson(text);
  } catch (e) {
    return fail(`${positionals[0]} is not NDJSON: ${(e as Error).message}`);
  }
  const catalog = buildCatalog(scenario.catalog, 'catalog');
  const areas = scenario.areas.features.length > 0 ? new AreaIndex(scenario.areas, 'areas') : undefined;
  const events = fromSimEvents(records);
  const asOfT = records.reduce((m, e) => Math.max(m, e.t), to);
  const opts = {
    catalog,
    units: scenario.units.map((u) => ({ id: u.id, department: u.department })),
    ...(areas ? { areas } : {}),
    startT: from,
    durationS: to - from,
    asOfT,
  };
  const figures = computeFigures(events, { ...opts, ...(groupBy ? { groupBy } : {}) });
  if (values.csv)
    writeFileSync(values.csv as string, figuresCsv({ groups: figures.groups ?? {}, all: figures.all }));
  if (values.html) {
    const byDept = computeFigures(events, { ...opts, groupBy: 'department' });
    const byType = computeFigures(events, { ...opts, groupBy: 'type' });
    writeFileSync(
      values.html as string,
      renderFiguresReport({
        title: `Performance report — ${scenario.name}`,
        period: `${scenario.start} + ${from} s … ${to} s (replay ${positionals[0]})`,
        catalog,
        all: byType.all,
        byDepartment: byDept.groups ?? {},
        byType: byType.groups ?? {},
        series: onTimeSeries(events, { ...opts, bucketS }),
      }),
    );
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ window: { from, to }, ...figures }, null, 2)}\n`);
  } else {
    const a = figures.all;
    process.stdout.write(
      `${a.incidents} incidents · response p50 ${a.segments.response.p50 ?? '—'} s, p90 ${a.segments.response.p90 ?? '—'} s · on time ${a.onTime.pct ?? '—'} % (immediate ${a.immediate.pct ?? '—'} %) · ${a.nonResponses} non-responses · ${a.declines} declines · ${a.reassignments} reassignments · ${a.preemptions} pre-emptions · utilisation ${a.utilisationPct ?? '—'} % · district level ${a.routing.district}\n`,
    );
    for (const [k, g] of Object.entries(figures.groups ?? {})) {
      process.stdout.write(
        `  ${k.padEnd(28)} n ${String(g.incidents).padStart(5)}  response p90 ${String(g.segments.response.p90 ?? '—').padStart(7)} s  on time ${String(g.onTime.pct ?? '—').padStart(6)} %\n`,
      );
    }
  }
  if (values.reviews) {
    const cfgRaw = (scenario as unknown as Record<string, unknown>).reviews;
    const cfg = cfgRaw === undefined ? DEFAULT_REVIEW_CONFIG : resolveReviewConfig(cfgRaw);
    const reviewer = new LogReviewer(cfg, new Map(scenario.units.map((u) => [u.id, u.speedKmh])));
    let n = 0;
    for (const r of records) await reviewer.feed(fromSimRecord(r as never, ++n));
    for (const f of reviewer.flags) process.stdout.write(`${JSON.stringify(f)}\n`);
  }
  return 0;
}
