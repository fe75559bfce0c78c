// Writes the committed scenario files: `npx tsx scripts/generate-scenarios.ts`.
//   scenarios/demo.json              preset demo, seed 7 (live demo, golden tests)
//   scenarios/surge.json             a scaled-down Huangpu typhoon evening with scarce units
//   scenarios/calls/sample-calls.csv a recorded call log (~50 rows, a few bad ones)
//   scenarios/calls/mapping.json     its column / category mapping for `dispatch import-calls`
// The 24 h Huangpu day is not committed (≈ 4 MB): `dispatch generate --preset huangpu --hours 24
// --seed 1 -o scenarios/huangpu-24h.json` regenerates it byte for byte.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { csvField } from '../src/scenario/csv.ts';
import { generateScenario } from '../src/scenario/generate.ts';
import { importCalls } from '../src/scenario/import-calls.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { formatIsoWithOffset, parseIsoWithOffset } from '../src/scenario/validate.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = (rel: string, text: string): void => {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  console.log(`${rel}: ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`);
};
const summary = (s: Scenario): string =>
  `  ${s.name}: ${s.areas.features.length} areas, ${s.units.length} units, ${s.incidents.length} incidents, ${s.durationS / 3600} h`;

// --- scenarios ------------------------------------------------------------------------

const demo = generateScenario({ preset: 'demo', hours: 2, seed: 7, name: 'demo' });
out('scenarios/demo.json', `${JSON.stringify(demo, null, 2)}\n`);
console.log(summary(demo));

const surge = generateScenario({
  preset: 'huangpu',
  hours: 6,
  seed: 11,
  incidentsPerDay: 6000,
  unitsScale: 0.25,
  surge: { startH: 2, hours: 3 },
  start: '2026-09-16T16:00:00+08:00',
  name: 'surge',
});
out('scenarios/surge.json', `${JSON.stringify(surge)}\n`);
console.log(summary(surge));

// --- a recorded call log --------------------------------------------------------------

/** Chinese category as a call-taking system would record it: the label's first half. */
const categoryOf = new Map(demo.catalog.map((t) => [t.type, (t.label ?? t.type).split(' / ')[0].trim()]));
const streets = ['港前路', '大沙地东', '黄埔东路', '丰乐北路', '鱼珠东路', '茅岗路', '石化路', '蟹山路'];
const start = parseIsoWithOffset(demo.start) as { epochMs: number; offsetMin: number };
const local = (atS: number): string =>
  formatIsoWithOffset(start.epochMs + Math.round(atS) * 1000, start.offsetMin)
    .slice(0, 19)
    .replace('T', ' ');

const header = ['call_id', 'received', 'category', 'prio', 'lng', 'lat', 'address', 'channel'];
const rows: string[][] = demo.incidents.slice(0, 44).map((inc, i) => [
  `HP20260302-${String(i + 1).padStart(4, '0')}`,
  // A few calls come from a feed that writes ISO 8601 with an offset.
  i % 9 === 4
    ? formatIsoWithOffset(start.epochMs + Math.round(inc.atS) * 1000, start.offsetMin)
    : local(inc.atS),
  categoryOf.get(inc.type) as string,
  inc.priority === undefined ? '' : String(inc.priority),
  inc.location[0].toFixed(6),
  inc.location[1].toFixed(6),
  i % 7 === 3
    ? `${streets[i % streets.length]}${i + 1}号, "${i % 2 ? '东门' : '后巷'}"\n(来电人描述)`
    : `${streets[i % streets.length]}${i + 1}号`,
  inc.source ?? '',
]);
// Rows the importer must refuse, each for its own reason (see the mapping's description).
const bad: [number, string[]][] = [
  [5, ['HP20260302-0901', '2026-03-02 08:20:00', '其他', '', '113.455', '23.095', '港前路9号', '12345']],
  [12, ['HP20260302-0902', '2026-03-02 08:31:00', '噪声扰民', '', 'N/A', 'N/A', '地址不详', '110']],
  [18, ['HP20260302-0903', '', '占道经营', '', '113.47', '23.10', '大沙地东', 'grid-patrol']],
  [24, ['HP20260302-0904', '2026-02-30 09:00:00', '违法停车', '', '113.47', '23.10', '黄埔东路', '12345']],
  [30, ['HP20260302-0005', '2026-03-02 09:05:00', '噪声扰民', '', '113.46', '23.09', '重复来电', '110']],
  [36, ['HP20260302-0906', '2026-03-02 09:20:00', '交通事故（无人员受伤）', '', '0', '0', '定位失败', '122']],
  [
    40,
    ['HP20260302-0907', '2026-03-02 09:30:00', '食品安全投诉', '7', '113.45', '23.09', '鱼珠东路', '12345'],
  ],
];
for (const [at, row] of bad.slice().reverse()) rows.splice(at, 0, row);
const csv = `${[header, ...rows].map((r) => r.map((f) => csvField(f)).join(',')).join('\r\n')}\r\n`;
out('scenarios/calls/sample-calls.csv', csv);

const mapping = {
  description:
    'Mapping of scenarios/calls/sample-calls.csv for `dispatch import-calls`. Its bad rows: an unknown ' +
    'category (其他), coordinates N/A, a missing time, 30 February, a duplicate call id, a (0, 0) ' +
    'position outside the district, priority 7.',
  columns: {
    id: 'call_id',
    receivedAt: 'received',
    type: 'category',
    priority: 'prio',
    lon: 'lng',
    lat: 'lat',
    source: 'channel',
  },
  types: {
    ...Object.fromEntries(demo.catalog.map((t) => [categoryOf.get(t.type), t.type])),
    Fire: 'structure-fire',
    Noise: 'noise-complaint',
    Vending: 'street-vending',
  },
  timezone: '+08:00',
  start: demo.start,
  name: 'sample-calls',
};
out('scenarios/calls/mapping.json', `${JSON.stringify(mapping, null, 2)}\n`);

const { scenario, report } = importCalls(csv, mapping, demo);
console.log(`  import check: ${report.imported} of ${report.rows} rows imported, start ${scenario.start}`);
for (const [reason, g] of Object.entries(report.rejected))
  console.log(`    ${reason}: ${g.count} (lines ${g.rows.join(', ')})`);
