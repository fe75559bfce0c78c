// `report.html`: one self-contained page (inline CSS and SVG, no scripts, no network) with
// the KPI table (policies side by side), response-time distributions, on-time % per incident
// type and for the immediate-response list, unit utilisation and incidents waiting over the
// day. Built from KPI objects and series that come from the event log only. Deterministic:
// the same inputs give the same bytes (no generation timestamp).

import type { CatalogIndex } from '../core/catalog.ts';
import type { Kpis } from '../kpi/compute.ts';
import type { Series } from '../kpi/series.ts';
import { barChart, esc, lineChart, PALETTE } from './svg.ts';

export interface ReportRun {
  policy: string;
  kpis: Kpis;
  series: Series;
}

export interface ReportInput {
  scenario: {
    name: string;
    start: string;
    durationS: number;
    units: number;
    incidents: number;
    description?: string;
  };
  catalog: CatalogIndex;
  runs: ReportRun[];
  /** Travel model and simulation settings, shown under the title. */
  notes?: string[];
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;color:#1d2329;margin:0;background:#f5f6f8}
main{max-width:980px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:30px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
p.meta{color:#5a6570;margin:2px 0}
table{border-collapse:collapse;margin:8px 0 4px;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #e6e9ed;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#eef1f4;font-weight:600}
tr.sec td{background:#fafbfc;font-weight:600;color:#3a4550}
td.best{font-weight:700}
.note{color:#5a6570;font-size:12.5px}
svg{display:block;margin:10px 0;max-width:100%;height:auto}
svg .grid{stroke:#e8ebee;stroke-width:1}svg .ax{stroke:#69747e;stroke-width:1}
svg .tk{font-size:11px;fill:#4a555f}svg .al{font-size:12px;fill:#2d363f}
svg .ti{font-size:13px;font-weight:600;fill:#1d2329}svg .lg{font-size:12px;fill:#2d363f}
svg .bv{font-size:10.5px;fill:#2d363f}svg .na{font-size:10.5px;fill:#98a2ab}
`;

function fmtS(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  const s = Math.round(v);
  const m = Math.floor(s / 60);
  return `${m}m${String(s % 60).padStart(2, '0')}s`;
}
const fmtPct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(1)} %`);
const fmtN = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(v));
const fmtMs = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(2)} ms`);

interface Row {
  label: string;
  values: (number | null | undefined)[];
  fmt: (v: number | null | undefined) => string;
  /** Which value is best: lower or higher (bolded when policies differ). */
  better?: 'low' | 'high';
  section?: boolean;
}

function kpiTable(runs: ReportRun[], catalog: CatalogIndex): string {
  const get = (f: (k: Kpis) => number | null | undefined) => runs.map((r) => f(r.kpis));
  const rows: Row[] = [
    { label: 'Incidents', values: [], fmt: fmtN, section: true },
    { label: 'total', values: get((k) => k.incidents.total), fmt: fmtN },
    { label: 'served', values: get((k) => k.incidents.served), fmt: fmtN, better: 'high' },
    { label: 'unserved', values: get((k) => k.incidents.unserved), fmt: fmtN, better: 'low' },
    { label: 'cancelled', values: get((k) => k.incidents.cancelled), fmt: fmtN },
    { label: 'Response (report → first unit on scene)', values: [], fmt: fmtN, section: true },
    { label: 'p50', values: get((k) => k.responseS.p50), fmt: fmtS, better: 'low' },
    { label: 'p90', values: get((k) => k.responseS.p90), fmt: fmtS, better: 'low' },
    { label: 'mean', values: get((k) => k.responseS.mean), fmt: fmtS, better: 'low' },
    {
      label: 'priority-weighted mean',
      values: get((k) => k.priorityWeightedMeanResponseS),
      fmt: fmtS,
      better: 'low',
    },
    { label: 'Immediate-response list', values: [], fmt: fmtN, section: true },
    { label: 'incidents', values: get((k) => k.immediate.count), fmt: fmtN },
    { label: 'p90 response', values: get((k) => k.immediate.p90), fmt: fmtS, better: 'low' },
    { label: 'on time', values: get((k) => k.immediate.onTimePct), fmt: fmtPct, better: 'high' },
    { label: 'Units and solver', values: [], fmt: fmtN, section: true },
    { label: 'utilisation', values: get((k) => k.units.utilisationPct), fmt: fmtPct },
    { label: 'decisions (policy calls)', values: get((k) => k.solver.calls), fmt: fmtN },
  ];
  if (runs.some((r) => r.kpis.solver.p50Ms !== undefined)) {
    rows.push(
      { label: 'solver p50', values: get((k) => k.solver.p50Ms), fmt: fmtMs },
      { label: 'solver p99', values: get((k) => k.solver.p99Ms), fmt: fmtMs },
      { label: 'wall time', values: get((k) => k.wallMs), fmt: (v) => (v == null ? '—' : `${v} ms`) },
    );
  }
  rows.push({ label: 'On time by incident type', values: [], fmt: fmtN, section: true });
  const types = new Set<string>();
  for (const r of runs) for (const t of Object.keys(r.kpis.byType)) types.add(t);
  for (const t of types) {
    const label = catalog.get(t)?.label ? `${t} (${catalog.get(t)!.label})` : t;
    rows.push({
      label: `${label} — n ${runs[0].kpis.byType[t]?.count ?? 0}`,
      values: get((k) => k.byType[t]?.onTimePct),
      fmt: fmtPct,
      better: 'high',
    });
  }
  const head = `<tr><th>KPI</th>${runs.map((r) => `<th>${esc(r.policy)}</th>`).join('')}</tr>`;
  const body = rows
    .map((row) => {
      if (row.section) return `<tr class="sec"><td colspan="${runs.length + 1}">${esc(row.label)}</td></tr>`;
      const nums = row.values.filter((v): v is number => typeof v === 'number');
      const distinct = new Set(nums).size > 1;
      const best =
        row.better && distinct && nums.length === runs.length
          ? row.better === 'low'
            ? Math.min(...nums)
            : Math.max(...nums)
          : undefined;
      const cells = row.values
        .map((v) => `<td${v === best && best !== undefined ? ' class="best"' : ''}>${esc(row.fmt(v))}</td>`)
        .join('');
      return `<tr><td>${esc(row.label)}</td>${cells}</tr>`;
    })
    .join('\n');
  return `<table><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

/** Empirical CDF points (minutes, % of served incidents with response ≤ x). */
function cdf(sorted: readonly number[]): { xs: number[]; ys: number[] } {
  const xs: number[] = [0];
  const ys: number[] = [0];
  const n = sorted.length;
  if (n === 0) return { xs, ys };
  // At most ~400 points: thin long lists, always keeping the last.
  const stride = Math.max(1, Math.floor(n / 400));
  for (let i = 0; i < n; i += stride) {
    xs.push(sorted[i] / 60);
    ys.push((100 * (i + 1)) / n);
  }
  if (xs[xs.length - 1] !== sorted[n - 1] / 60) {
    xs.push(sorted[n - 1] / 60);
    ys.push(100);
  }
  return { xs, ys };
}

function clockLabel(start: string, offsetS: number): string {
  const m = /T(\d{2}):(\d{2})/.exec(start);
  const base = m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  const mins = (((base + Math.round(offsetS / 60)) % 1440) + 1440) % 1440;
  return `${String(Math.floor(mins / 60)).padStart(2, '0')}:${String(mins % 60).padStart(2, '0')}`;
}

export function renderReport(input: ReportInput): string {
  const { runs, scenario, catalog } = input;
  const colors = runs.map((_, i) => PALETTE[i % PALETTE.length]);
  const dur = scenario.durationS;
  const hours = dur / 3600;
  const stepH = hours <= 3 ? 0.5 : hours <= 8 ? 1 : hours <= 24 ? 3 : 6;
  const timeTicks: number[] = [];
  for (let h = 0; h <= hours + 1e-9; h += stepH) timeTicks.push(h);
  const xTick = (h: number) => clockLabel(scenario.start, h * 3600);

  // Response-time CDF, x up to the largest p99 so that a long tail does not squash the chart.
  const p99s = runs.map((r) => {
    const s = r.series.responses;
    return s.length ? s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)] / 60 : 1;
  });
  const cdfMax = Math.max(1, ...p99s);
  const cdfChart = lineChart({
    title: 'Response time, report → first unit on scene (cumulative share of served incidents)',
    xLabel: 'minutes (axis cut at the largest p99)',
    yLabel: '% of served incidents',
    xMax: cdfMax,
    yMax: 100,
    series: runs.map((r, i) => ({
      name: r.policy,
      color: colors[i],
      ...cdf(r.series.responses),
      step: true,
    })),
  });
  const immTypes = new Set(catalog.immediateTypes);
  const immResponses = runs.map((r) => {
    const all: number[] = [];
    for (const [t, l] of Object.entries(r.series.responsesByType)) if (immTypes.has(t)) all.push(...l);
    return all.sort((a, b) => a - b);
  });
  const immMax = Math.max(
    1,
    ...immResponses.map((s) =>
      s.length ? s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)] / 60 : 1,
    ),
  );
  const immChart = lineChart({
    title: 'Response time, immediate-response list only',
    xLabel: 'minutes (axis cut at the largest p99)',
    yLabel: '% of served incidents',
    xMax: immMax,
    yMax: 100,
    series: runs.map((r, i) => ({ name: r.policy, color: colors[i], ...cdf(immResponses[i]), step: true })),
  });

  const types = Object.keys(runs[0]?.kpis.byType ?? {});
  const onTime = barChart({
    title: 'On time (first unit within the type’s target; unserved count as late)',
    xLabel: '% on time',
    xMax: 100,
    fmt: (v) => `${v.toFixed(1)}%`,
    series: runs.map((r, i) => ({ name: r.policy, color: colors[i] })),
    groups: [
      { label: 'IMMEDIATE LIST', values: runs.map((r) => r.kpis.immediate.onTimePct) },
      ...types.map((t) => ({
        label: `${t}${catalog.get(t)?.immediate ? ' *' : ''}`,
        values: runs.map((r) => r.kpis.byType[t]?.onTimePct ?? null),
      })),
    ],
  });

  const toHours = (s: Series) => s.t.map((t) => (t + s.bucketS / 2) / 3600);
  const util = lineChart({
    title: `Unit utilisation (share of ${scenario.units} units offered, en route or on scene)`,
    xLabel: 'time of day (bucket means)',
    yLabel: '% of units busy',
    xMax: hours,
    xTicks: timeTicks,
    xTick,
    series: runs.map((r, i) => ({
      name: r.policy,
      color: colors[i],
      xs: toHours(r.series),
      ys: r.series.utilisationPct,
    })),
  });
  const waiting = lineChart({
    title: 'Incidents waiting (at least one unfilled slot)',
    xLabel: 'time of day (bucket means)',
    yLabel: 'incidents',
    xMax: hours,
    xTicks: timeTicks,
    xTick,
    series: runs.map((r, i) => ({
      name: r.policy,
      color: colors[i],
      xs: toHours(r.series),
      ys: r.series.waiting,
    })),
  });

  const bucketMin = Math.round((runs[0]?.series.bucketS ?? 900) / 60);
  const notes = (input.notes ?? []).map((n) => `<p class="meta">${esc(n)}</p>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Replay report — ${esc(scenario.name)}</title>
<style>${CSS}</style>
</head>
<body><main>
<h1>Replay report — ${esc(scenario.name)}</h1>
<p class="meta">Start ${esc(scenario.start)} · ${esc(String(Math.round(hours * 100) / 100))} h · ${scenario.incidents} incidents · ${scenario.units} units · policies: ${runs.map((r) => esc(r.policy)).join(', ')}</p>
${scenario.description ? `<p class="meta">${esc(scenario.description)}</p>` : ''}${notes}
<h2>Key figures</h2>
${kpiTable(runs, catalog)}
<p class="note">Percentiles are nearest-rank over served incidents. Priority weights 8/4/2/1 for priorities 1–4. On-time shares count incidents never reached as late and leave cancelled ones out. Bold: the better value where policies differ.</p>
<h2>Response-time distribution</h2>
${cdfChart}
${immChart}
<h2>On time by incident type</h2>
<p class="note">* = on the immediate-response list.</p>
${onTime}
<h2>Over the day</h2>
<p class="note">Time-weighted means over ${bucketMin}-minute buckets.</p>
${util}
${waiting}
</main></body>
</html>
`;
}
