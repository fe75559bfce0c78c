// Exports of the appraisal figures (src/kpi/figures.ts) for one window: a CSV with one row per
// group and a total row, and a printable, self-contained HTML report (inline CSS and SVG, no
// scripts, no network) with the figures per department and per incident type, response
// segments per department as a chart, and the on-time % per type over the weeks. The same
// functions render the live figures (GET /v1/kpis/export.csv, /v1/kpis/report.html) and a
// replay's (`dispatch figures`). Deterministic: the same figures give the same bytes.

import type { CatalogIndex } from '../core/catalog.ts';
import type { GroupFigures, OnTimeSeries, SegmentStats } from '../kpi/figures.ts';
import { barChart, esc, PALETTE } from './svg.ts';

const SEGMENTS = ['processing', 'turnout', 'travel', 'onScene', 'response'] as const;
const SEGMENT_LABEL: Record<(typeof SEGMENTS)[number], string> = {
  processing: 'processing (report → offer)',
  turnout: 'turnout (offer → en route)',
  travel: 'travel (en route → on scene)',
  onScene: 'on scene (on scene → cleared)',
  response: 'response (report → first on scene)',
};

// ---------------------------------------------------------------- CSV

/** RFC 4180 quoting; text cells that a spreadsheet would run as a formula get a leading '. */
function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  'group',
  'incidents',
  ...SEGMENTS.flatMap((s) => [`${s}_n`, `${s}_p50_s`, `${s}_p90_s`]),
  'on_time_measured',
  'on_time',
  'on_time_pct',
  'immediate_incidents',
  'immediate_measured',
  'immediate_on_time',
  'immediate_on_time_pct',
  'non_responses',
  'declines',
  'declines_by_reason',
  'reassignments',
  'preemptions',
  'units',
  'busy_s',
  'utilisation_pct',
  'routed_immediate',
  'routed_area',
  'routed_district',
] as const;

function row(label: string, g: GroupFigures): string {
  const seg = (s: SegmentStats) => [s.n, s.p50, s.p90];
  const reasons = Object.entries(g.declinesByReason)
    .map(([r, n]) => `${r}=${n}`)
    .join('; ');
  return [
    label,
    g.incidents,
    ...SEGMENTS.flatMap((s) => seg(g.segments[s])),
    g.onTime.measured,
    g.onTime.onTime,
    g.onTime.pct,
    g.immediate.incidents,
    g.immediate.measured,
    g.immediate.onTime,
    g.immediate.pct,
    g.nonResponses,
    g.declines,
    reasons,
    g.reassignments,
    g.preemptions,
    g.units,
    Math.round(g.busyS * 1000) / 1000,
    g.utilisationPct,
    g.routing.immediate,
    g.routing.area,
    g.routing.district,
  ]
    .map(cell)
    .join(',');
}

/** One row per group (sorted as given), then `ALL`; CRLF line ends. */
export function figuresCsv(f: { groups?: Record<string, GroupFigures>; all: GroupFigures }): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const [k, g] of Object.entries(f.groups ?? {})) lines.push(row(k, g));
  lines.push(row('ALL', f.all));
  return `${lines.join('\r\n')}\r\n`;
}

// ---------------------------------------------------------------- HTML

const CSS = `
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;color:#1d2329;margin:0;background:#f5f6f8}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:21px;margin:0 0 4px}h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px;break-after:avoid}
p.meta{color:#5a6570;margin:2px 0}.note{color:#5a6570;font-size:12px}
table{border-collapse:collapse;margin:8px 0 4px;font-variant-numeric:tabular-nums;font-size:12px;break-inside:auto}
th,td{padding:3px 8px;border-bottom:1px solid #e6e9ed;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#eef1f4;font-weight:600}
tr.total td{font-weight:700;border-top:2px solid #c9ced4}tr{break-inside:avoid}
svg{display:block;margin:10px 0;max-width:100%;height:auto;break-inside:avoid}
svg .grid{stroke:#e8ebee;stroke-width:1}svg .ax{stroke:#69747e;stroke-width:1}
svg .tk{font-size:11px;fill:#4a555f}svg .al{font-size:12px;fill:#2d363f}
svg .ti{font-size:13px;font-weight:600;fill:#1d2329}svg .lg{font-size:12px;fill:#2d363f}
svg .bv{font-size:10.5px;fill:#2d363f}svg .na{font-size:10.5px;fill:#98a2ab}
@page{size:A4 landscape;margin:12mm}
@media print{body{background:#fff}main{max-width:none;padding:0}h2{margin-top:18px}}
`;

const fmtS = (v: number | null) => {
  if (v === null) return '—';
  const s = Math.round(v);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};
const fmtPct = (v: number | null) => (v === null ? '—' : `${v.toFixed(1)} %`);

function figuresTable(title: string, groups: Record<string, GroupFigures>, all: GroupFigures): string {
  const head = `<tr><th>${esc(title)}</th><th>incidents</th>${SEGMENTS.map(
    (s) => `<th>${esc(s === 'onScene' ? 'on scene' : s)} p50 / p90</th>`,
  ).join(
    '',
  )}<th>on time</th><th>immediate on time</th><th>non-resp.</th><th>declines</th><th>reassign.</th><th>pre-empt.</th><th>utilisation</th><th>district level</th></tr>`;
  const line = (label: string, g: GroupFigures, cls = '') =>
    `<tr${cls ? ` class="${cls}"` : ''}><td>${esc(label)}</td><td>${g.incidents}</td>${SEGMENTS.map(
      (s) => `<td>${fmtS(g.segments[s].p50)} / ${fmtS(g.segments[s].p90)}</td>`,
    ).join(
      '',
    )}<td>${fmtPct(g.onTime.pct)}</td><td>${fmtPct(g.immediate.pct)}</td><td>${g.nonResponses}</td><td>${g.declines}</td><td>${g.reassignments}</td><td>${g.preemptions}</td><td>${fmtPct(g.utilisationPct)}</td><td>${g.routing.district}</td></tr>`;
  const body = Object.entries(groups)
    .map(([k, g]) => line(k, g))
    .join('\n');
  return `<table><thead>${head}</thead><tbody>\n${body}\n${line('all', all, 'total')}\n</tbody></table>`;
}

function declinesTable(all: GroupFigures): string {
  const entries = Object.entries(all.declinesByReason).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (entries.length === 0) return '<p class="note">No declines in this window.</p>';
  return `<table><thead><tr><th>decline reason</th><th>count</th></tr></thead><tbody>${entries
    .map(([r, n]) => `<tr><td>${esc(r)}</td><td>${n}</td></tr>`)
    .join('')}</tbody></table>`;
}

export interface FiguresReportInput {
  title: string;
  /** Shown under the title, e.g. "2026-03-02 00:00 → 2026-03-09 00:00 (+08:00)". */
  period: string;
  catalog: CatalogIndex;
  all: GroupFigures;
  byDepartment: Record<string, GroupFigures>;
  byType: Record<string, GroupFigures>;
  /** On-time % per type, week by week. */
  series: OnTimeSeries;
  /** Extra lines under the title (source, truncation…). */
  notes?: string[];
}

export function renderFiguresReport(r: FiguresReportInput): string {
  const depts = Object.keys(r.byDepartment);
  let segMax = 60;
  for (const g of Object.values(r.byDepartment)) {
    for (const s of SEGMENTS) segMax = Math.max(segMax, g.segments[s].p90 ?? 0);
  }
  const segChart = barChart({
    title: 'Response segments per department (p90, minutes)',
    xLabel: 'minutes',
    xMax: Math.ceil(segMax / 60),
    fmt: (v) => `${v.toFixed(1)}`,
    series: SEGMENTS.map((s, i) => ({
      name: s === 'onScene' ? 'on scene' : s,
      color: PALETTE[i % PALETTE.length],
    })),
    groups: depts.map((d) => ({
      label: d,
      values: SEGMENTS.map((s) => {
        const v = r.byDepartment[d].segments[s].p90;
        return v === null ? null : v / 60;
      }),
    })),
  });
  const weeks = r.series.t.length;
  const types = Object.keys(r.series.byType);
  const weekSeries = [
    { name: 'IMMEDIATE LIST', ys: r.series.immediate },
    ...types.map((t) => ({ name: r.catalog.get(t)?.immediate ? `${t} *` : t, ys: r.series.byType[t] })),
  ];
  // Grouped bars (one bar per week) rather than lines: a week with a single measured incident
  // still shows. Weeks beyond the palette reuse its colours in order.
  const weekChart = barChart({
    title: 'On time per incident type, week by week (% of measured incidents)',
    xLabel: '% on time',
    xMax: 100,
    fmt: (v) => `${v.toFixed(1)}%`,
    series: r.series.t.map((_, w) => ({ name: `W${w + 1}`, color: PALETTE[w % PALETTE.length] })),
    groups: weekSeries.map((s) => ({ label: s.name, values: s.ys })),
  });
  const charts = weeks > 0 ? [weekChart] : [];
  const weekTable = `<table><thead><tr><th>type</th>${r.series.t
    .map((_, w) => `<th>W${w + 1}</th>`)
    .join('')}</tr></thead><tbody>${weekSeries
    .map((s) => `<tr><td>${esc(s.name)}</td>${s.ys.map((y) => `<td>${fmtPct(y)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const typeLabel = (t: string) => (r.catalog.get(t)?.immediate ? `${t} *` : t);
  const byTypeLabelled: Record<string, GroupFigures> = {};
  for (const [t, g] of Object.entries(r.byType)) byTypeLabelled[typeLabel(t)] = g;
  const notes = (r.notes ?? []).map((n) => `<p class="meta">${esc(n)}</p>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)}</title>
<style>${CSS}</style>
</head>
<body><main>
<h1>${esc(r.title)}</h1>
<p class="meta">${esc(r.period)}</p>${notes}
<h2>Summary</h2>
<p class="meta">${r.all.incidents} incidents · response p50 ${fmtS(r.all.segments.response.p50)}, p90 ${fmtS(r.all.segments.response.p90)} · on time ${fmtPct(r.all.onTime.pct)} (immediate list ${fmtPct(r.all.immediate.pct)}) · ${r.all.nonResponses} non-responses · ${r.all.declines} declines · ${r.all.reassignments} reassignments · ${r.all.preemptions} pre-emptions · utilisation ${fmtPct(r.all.utilisationPct)} · routed: ${r.all.routing.immediate} immediate list, ${r.all.routing.area} sub-district lists, ${r.all.routing.district} district level</p>
<h2>By department</h2>
${figuresTable('department', r.byDepartment, r.all)}
${segChart}
<p class="note">Segments: ${SEGMENTS.map((s) => esc(SEGMENT_LABEL[s])).join(' · ')}. Percentiles are nearest-rank. A department's response and on-time figures count its own first arrival at each incident it reached.</p>
<h2>By incident type</h2>
${figuresTable('type', byTypeLabelled, r.all)}
<p class="note">* = on the immediate-response list. On time: first unit within the type’s target; not reached and past the target counts as late; cancelled ones are left out.</p>
<h2>On time over the weeks</h2>
${charts.join('\n')}
${weekTable}
<h2>Declines by reason</h2>
${declinesTable(r.all)}
</main></body>
</html>
`;
}
