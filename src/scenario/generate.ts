// Synthetic scenarios (`dispatch generate`). Pure and deterministic: the same options give a
// byte-identical `JSON.stringify` of the result (a seeded PRNG, no clock, fixed iteration
// order, coordinates rounded to 6 decimals and times to 0.1 s).
//
// Model, in short:
// - Geography: a box tiled by rectangular sub-districts / towns (a "jittered grid": bands of
//   latitude, each split into blocks whose boundaries are shifted by ±1 cell), each block
//   split into rectangular grid cells (`properties.parent` = sub-district id). The geography
//   and the units are drawn from a fixed per-preset "world" seed, so different `seed`s give
//   different days in the same district; `seed` drives the incidents.
// - Units: the preset's total (× unitsScale) shared among capabilities in proportion to their
//   peak-hour workload under the preset's default demand (rate × units required × (on-scene +
//   expected travel + turnout)), above a floor: a coverage count per site and never fewer
//   than the largest package any type needs. Within a capability, units go to its sites in
//   proportion to the work expected around each (a fixed sample of each type's placements).
//   Stations (fire, 120, offices) hold their units at one home; police and traffic split
//   between the post and patrol points; chengguan patrol beats across their sub-district.
//   Unit counts do not depend on `incidentsPerDay` or `seed`: the same district, staffed the
//   same way, on a quieter or busier day.
// - Incidents: per catalogue type, a non-homogeneous Poisson process with a time-of-day
//   profile (piecewise linear through hourly values, mean 1), sampled exactly as piecewise-
//   constant over 5-minute bins; places are a mixture of hotspot Gaussians (tag-weighted per
//   type) and a background over grid cells weighted by the sub-district's density.
// - Surge ("typhoon evening"): inside the window, rates are multiplied per type class
//   (collisions, flooding, fallen covers × multiplier or more, fires/lifts/gas somewhat,
//   outdoor governance work less), with 30-minute ramps at both ends.

import { defaultCatalog } from '../core/catalog.ts';
import type { IncidentType, LonLat } from '../core/types.ts';
import { hashString, Rng, WeightedSampler } from './rng.ts';
import type { AreaFeature, Scenario, ScenarioIncident, ScenarioUnit } from './types.ts';
import { compareIncidents, parseIsoWithOffset } from './validate.ts';

export type PresetName = 'huangpu' | 'demo';

export interface SurgeOptions {
  /** Hours from the scenario start at which the surge begins. */
  startH: number;
  /** Length of the surge window in hours. */
  hours: number;
  /** Peak multiplier of weather-sensitive arrivals (default 3). */
  multiplier?: number;
}

export interface GenerateOptions {
  preset: PresetName;
  hours: number;
  seed: number;
  /** `true` = the preset's default typhoon evening (17:00 local for 3 h, × 3, clipped to the scenario). */
  surge?: SurgeOptions | boolean;
  /** Mean arrivals per 24 h before surge (huangpu 32000, demo 1350). */
  incidentsPerDay?: number;
  /** Multiplies the preset's unit count (huangpu ≈ 1150, demo ≈ 40). */
  unitsScale?: number;
  /** ISO 8601 time with offset of scenario second 0 (default: the preset's start). */
  start?: string;
  /** Scenario name (default derived from the options). */
  name?: string;
}

// ---------------------------------------------------------------------------------------
// Presets

interface SubDistrictSpec {
  id: string;
  zh: string;
  en: string;
  kind: 'subdistrict' | 'town';
  /** Relative background density of incidents (population, activity). */
  density: number;
  /** Width of the block in cells (before jitter). */
  cols: number;
}

interface BandSpec {
  rows: number;
  blocks: SubDistrictSpec[];
}

interface HotspotSpec {
  id: string;
  name: string;
  at: LonLat;
  sigmaKm: number;
  weight: number;
  tags: string[];
}

interface PresetSpec {
  /** South-west corner. */
  origin: LonLat;
  cellDeg: number;
  cols: number;
  bands: BandSpec[];
  hotspots: HotspotSpec[];
  worldSeed: number;
  unitsTotal: number;
  incidentsPerDay: number;
  start: string;
  /** Local hour at which `surge: true` starts. */
  surgeLocalH: number;
  /** Units per site kept for coverage whatever the workload, by capability (default 1). */
  coverage: Record<string, number>;
  /** Scales the catalogue's typical on-scene time (the demo cycles units faster). */
  onSceneScale: number;
  sim: NonNullable<Scenario['sim']>;
}

const sd = (
  id: string,
  zh: string,
  en: string,
  cols: number,
  density: number,
  kind: 'subdistrict' | 'town' = 'subdistrict',
): SubDistrictSpec => ({ id, zh, en, kind, density, cols });

/**
 * A synthetic district modelled on Guangzhou's Huangpu district: 113.40–113.60 E,
 * 23.05–23.35 N, 16 × 24 cells of 0.0125° (≈ 1.3 × 1.4 km), 19 sub-districts and towns,
 * the dense old town and ports along the Pearl River in the south, Science City and the
 * industrial parks in the middle, Sino-Singapore Knowledge City and the towns in the north.
 */
const HUANGPU: PresetSpec = {
  origin: [113.4, 23.05],
  cellDeg: 0.0125,
  cols: 16,
  bands: [
    {
      rows: 5,
      blocks: [
        sd('changzhou', '长洲街', 'Changzhou Subdistrict', 3, 1.5),
        sd('huangpu', '黄埔街', 'Huangpu Subdistrict', 3, 4),
        sd('dasha', '大沙街', 'Dasha Subdistrict', 3, 3.5),
        sd('wenchong', '文冲街', 'Wenchong Subdistrict', 2, 2.5),
        sd('suidong', '穗东街', 'Suidong Subdistrict', 2, 2.5),
        sd('nangang', '南岗街', 'Nangang Subdistrict', 3, 2),
      ],
    },
    {
      rows: 5,
      blocks: [
        sd('yuzhu', '鱼珠街', 'Yuzhu Subdistrict', 3, 3.5),
        sd('hongshan', '红山街', 'Hongshan Subdistrict', 3, 2.5),
        sd('xiagang', '夏港街', 'Xiagang Subdistrict', 3, 2.5),
        sd('yunpu', '云埔街', 'Yunpu Subdistrict', 3, 2),
        sd('dongqu', '东区街', 'Dongqu Subdistrict', 4, 1.5),
      ],
    },
    {
      rows: 6,
      blocks: [
        sd('lianhe', '联和街', 'Lianhe Subdistrict', 5, 2.5),
        sd('luogang', '萝岗街', 'Luogang Subdistrict', 5, 2.5),
        sd('yonghe', '永和街', 'Yonghe Subdistrict', 6, 1.5),
      ],
    },
    {
      rows: 4,
      blocks: [
        sd('changling', '长岭街', 'Changling Subdistrict', 6, 1.3),
        sd('longhu', '龙湖街', 'Longhu Subdistrict', 5, 0.9),
        sd('jiufo', '九佛街', 'Jiufo Subdistrict', 5, 0.9),
      ],
    },
    {
      rows: 4,
      blocks: [
        sd('jiulong', '九龙镇', 'Jiulong Town', 9, 0.9, 'town'),
        sd('xinlong', '新龙镇', 'Xinlong Town', 7, 0.6, 'town'),
      ],
    },
  ],
  hotspots: [
    {
      id: 'old-town',
      name: '黄埔古港老城区 / Old town by Huangpu port',
      at: [113.455, 23.085],
      sigmaKm: 1.2,
      weight: 3.5,
      tags: ['urban', 'old', 'night', 'vending'],
    },
    {
      id: 'yuzhu-port',
      name: '鱼珠港 / Yuzhu port',
      at: [113.42, 23.125],
      sigmaKm: 1,
      weight: 2,
      tags: ['port', 'traffic', 'industrial', 'night'],
    },
    {
      id: 'dashadi-hub',
      name: '大沙地交通枢纽 / Dashadi transport hub',
      at: [113.49, 23.097],
      sigmaKm: 0.8,
      weight: 1.5,
      tags: ['hub', 'traffic', 'commercial', 'vending'],
    },
    {
      id: 'wenchong-shipyard',
      name: '文冲船厂 / Wenchong shipyard',
      at: [113.52, 23.08],
      sigmaKm: 0.8,
      weight: 1,
      tags: ['industrial', 'port'],
    },
    {
      id: 'expressway',
      name: '广深高速互通 / Expressway interchange',
      at: [113.47, 23.14],
      sigmaKm: 1,
      weight: 1.5,
      tags: ['traffic'],
    },
    {
      id: 'yunpu-industrial',
      name: '云埔工业区 / Yunpu industrial park',
      at: [113.53, 23.145],
      sigmaKm: 1.2,
      weight: 1.5,
      tags: ['industrial', 'construction'],
    },
    {
      id: 'science-city',
      name: '广州科学城 / Guangzhou Science City',
      at: [113.44, 23.2],
      sigmaKm: 1.6,
      weight: 2.5,
      tags: ['office', 'commercial', 'traffic', 'urban'],
    },
    {
      id: 'luogang-centre',
      name: '萝岗中心区 / Luogang centre',
      at: [113.49, 23.205],
      sigmaKm: 1.2,
      weight: 2,
      tags: ['commercial', 'urban', 'vending', 'night'],
    },
    {
      id: 'xiangxue-hub',
      name: '香雪站交通枢纽 / Xiangxue transport hub',
      at: [113.515, 23.19],
      sigmaKm: 0.7,
      weight: 1.2,
      tags: ['hub', 'traffic', 'vending'],
    },
    {
      id: 'yonghe-industrial',
      name: '永和经济区工业园 / Yonghe industrial parks',
      at: [113.57, 23.21],
      sigmaKm: 1.8,
      weight: 2,
      tags: ['industrial', 'construction'],
    },
    {
      id: 'changling',
      name: '长岭居 / Changling residential area',
      at: [113.43, 23.27],
      sigmaKm: 1.3,
      weight: 1,
      tags: ['urban', 'construction'],
    },
    {
      id: 'knowledge-city',
      name: '中新广州知识城 / Sino-Singapore Guangzhou Knowledge City',
      at: [113.46, 23.325],
      sigmaKm: 2,
      weight: 1.5,
      tags: ['construction', 'office', 'industrial'],
    },
  ],
  worldSeed: 20190313,
  unitsTotal: 1150,
  incidentsPerDay: 32000,
  start: '2026-03-02T00:00:00+08:00',
  surgeLocalH: 17,
  coverage: {
    'fire-engine': 2,
    ladder: 1,
    ambulance: 2,
    police: 3,
    traffic: 2,
    chengguan: 3,
    market: 2,
    environment: 2,
    legal: 1,
  },
  // A normal day: most calls are closed in a short visit (half the catalogue's typical time),
  // so 1,150 units carry 32,000 calls at about 60 % peak utilisation instead of queueing all evening.
  onSceneScale: 0.5,
  sim: { ackDelayS: 8, declineProb: 0.02, ackTimeoutS: 30, returnHome: true },
};

/** Three sub-districts of the old riverside town: a small, lively morning for demos and golden tests. */
const DEMO: PresetSpec = {
  origin: [113.425, 23.075],
  cellDeg: 0.0075,
  cols: 10,
  bands: [
    {
      rows: 6,
      blocks: [
        sd('yuzhu', '鱼珠街', 'Yuzhu Subdistrict', 3, 3),
        sd('huangpu', '黄埔街', 'Huangpu Subdistrict', 4, 4),
        sd('dasha', '大沙街', 'Dasha Subdistrict', 3, 3),
      ],
    },
  ],
  hotspots: [
    {
      id: 'old-town',
      name: '黄埔古港老城区 / Old town by Huangpu port',
      at: [113.458, 23.09],
      sigmaKm: 0.8,
      weight: 3,
      tags: ['urban', 'old', 'night', 'vending', 'commercial'],
    },
    {
      id: 'yuzhu-port',
      name: '鱼珠港 / Yuzhu port',
      at: [113.435, 23.108],
      sigmaKm: 0.6,
      weight: 1.5,
      tags: ['port', 'traffic', 'industrial'],
    },
    {
      id: 'dashadi-hub',
      name: '大沙地交通枢纽 / Dashadi transport hub',
      at: [113.488, 23.1],
      sigmaKm: 0.6,
      weight: 2,
      tags: ['hub', 'traffic', 'commercial', 'vending', 'office', 'construction'],
    },
  ],
  worldSeed: 7,
  unitsTotal: 40,
  incidentsPerDay: 1350,
  start: '2026-03-02T08:00:00+08:00',
  surgeLocalH: 17,
  coverage: {
    'fire-engine': 1,
    ladder: 0.5,
    ambulance: 1,
    police: 1,
    traffic: 1,
    chengguan: 1,
    market: 0.5,
    environment: 1,
    legal: 0.34,
  },
  // Half the catalogue's typical on-scene time, so that a two-hour demo shows units cycling.
  onSceneScale: 0.5,
  sim: { ackDelayS: 5, declineProb: 0.03, ackTimeoutS: 30, returnHome: true },
};

const PRESETS: Record<PresetName, PresetSpec> = { huangpu: HUANGPU, demo: DEMO };

// ---------------------------------------------------------------------------------------
// Time-of-day profiles: 24 hourly values (at hh:30), normalised to mean 1.

const PROFILES = {
  /** Medical, lifts: low at night, broad day. */
  general: [
    0.55, 0.45, 0.4, 0.38, 0.38, 0.45, 0.65, 0.9, 1.1, 1.2, 1.25, 1.25, 1.2, 1.15, 1.15, 1.15, 1.2, 1.3, 1.35,
    1.3, 1.2, 1.05, 0.9, 0.7,
  ],
  /** Collisions, obstructions, parking: morning and evening rush. */
  rush: [
    0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.9, 1.8, 2.0, 1.4, 1.1, 1.1, 1.1, 1.1, 1.1, 1.2, 1.5, 2.0, 2.1, 1.5, 1.1,
    0.9, 0.7, 0.5,
  ],
  /** Complaints and governance work: office hours. */
  daytime: [
    0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.0, 2.0, 1.8, 1.3, 1.6, 1.9, 1.9, 1.8, 1.5, 1.0, 0.7,
    0.6, 0.4, 0.25, 0.15,
  ],
  /** Street vending: daytime plus the night market. */
  market: [
    0.3, 0.15, 0.05, 0.05, 0.05, 0.1, 0.4, 0.9, 1.2, 1.2, 1.3, 1.5, 1.3, 1.0, 1.0, 1.0, 1.2, 1.6, 2.0, 2.2,
    2.0, 1.6, 1.0, 0.6,
  ],
  /** Noise: evenings and nights. */
  night: [
    2.2, 1.8, 1.2, 0.6, 0.3, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.9, 1.2, 1.6,
    2.0, 2.4, 2.6,
  ],
  /** Fights, robberies: late evening. */
  evening: [
    1.8, 1.6, 1.3, 0.9, 0.6, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5,
    1.6, 1.8, 1.9,
  ],
  /** Fires, gas: cooking times. */
  fire: [
    0.6, 0.5, 0.45, 0.4, 0.4, 0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.4, 1.3, 1.1, 1.1, 1.1, 1.2, 1.4, 1.5, 1.4, 1.2,
    1.1, 0.9, 0.7,
  ],
} satisfies Record<string, number[]>;

export type ProfileName = keyof typeof PROFILES;

const NORMALISED: Record<ProfileName, number[]> = Object.fromEntries(
  Object.entries(PROFILES).map(([k, v]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return [k, v.map((x) => x / mean)];
  }),
) as Record<ProfileName, number[]>;

/** Relative rate at a local hour of day in [0, 24): linear between the hh:30 values, cyclic. */
export function profileAt(profile: ProfileName, hourOfDay: number): number {
  const v = NORMALISED[profile];
  const x = (((hourOfDay - 0.5) % 24) + 24) % 24;
  const i = Math.floor(x);
  const f = x - i;
  return v[i] * (1 - f) + v[(i + 1) % 24] * f;
}

// ---------------------------------------------------------------------------------------
// Incident-type models

/** How a type reacts to a typhoon evening. */
type SurgeClass = 'weather' | 'traffic' | 'fire' | 'medical' | 'outdoor' | 'none';

interface TypeModel {
  /** Relative share of daily arrivals. */
  share: number;
  profile: ProfileName;
  /** Fraction of arrivals drawn around hotspots (the rest: background over cells). */
  hot: number;
  /** Affinity to hotspot tags. */
  tags: Record<string, number>;
  sources: Record<string, number>;
  surge: SurgeClass;
}

const SRC_FIRE = { '119': 0.85, '110': 0.1, sensor: 0.05 };
const SRC_POLICE = { '110': 0.95, '12345': 0.05 };
const SRC_GOV = { '12345': 0.5, 'grid-patrol': 0.45, dispatcher: 0.05 };

/** Models of the default catalogue's types; other types fall back to `fallbackModel`. */
const TYPE_MODELS: Record<string, TypeModel> = {
  'structure-fire': {
    share: 0.5,
    profile: 'fire',
    hot: 0.5,
    tags: { old: 3, urban: 2, industrial: 2 },
    sources: SRC_FIRE,
    surge: 'fire',
  },
  'high-rise-fire': {
    share: 0.06,
    profile: 'fire',
    hot: 0.6,
    tags: { office: 3, urban: 2, commercial: 2 },
    sources: SRC_FIRE,
    surge: 'fire',
  },
  'vehicle-fire': {
    share: 0.25,
    profile: 'rush',
    hot: 0.5,
    tags: { traffic: 3, hub: 1, industrial: 1 },
    sources: { '119': 0.7, '122': 0.2, '110': 0.1 },
    surge: 'fire',
  },
  'traffic-collision-injury': {
    share: 1.5,
    profile: 'rush',
    hot: 0.65,
    tags: { traffic: 4, hub: 2, port: 1 },
    sources: { '110': 0.5, '120': 0.3, '122': 0.2 },
    surge: 'traffic',
  },
  'traffic-collision': {
    share: 5,
    profile: 'rush',
    hot: 0.65,
    tags: { traffic: 4, hub: 2, port: 1 },
    sources: { '122': 0.6, '110': 0.4 },
    surge: 'traffic',
  },
  'medical-emergency': {
    share: 4.5,
    profile: 'general',
    hot: 0.5,
    tags: { urban: 3, old: 3, office: 1, commercial: 1 },
    sources: { '120': 0.9, '110': 0.1 },
    surge: 'medical',
  },
  'public-security-fight': {
    share: 2,
    profile: 'evening',
    hot: 0.6,
    tags: { night: 3, commercial: 2, hub: 2, urban: 1 },
    sources: SRC_POLICE,
    surge: 'none',
  },
  robbery: {
    share: 0.4,
    profile: 'evening',
    hot: 0.6,
    tags: { hub: 3, commercial: 2, urban: 1 },
    sources: SRC_POLICE,
    surge: 'none',
  },
  'burglary-report': {
    share: 1,
    profile: 'daytime',
    hot: 0.4,
    tags: { urban: 2, old: 2 },
    sources: { '110': 0.8, '12345': 0.2 },
    surge: 'none',
  },
  'gas-leak': {
    share: 0.3,
    profile: 'fire',
    hot: 0.5,
    tags: { old: 3, urban: 2, industrial: 1 },
    sources: { '119': 0.6, '12345': 0.2, sensor: 0.2 },
    surge: 'fire',
  },
  'hazmat-spill': {
    share: 0.05,
    profile: 'daytime',
    hot: 0.85,
    tags: { industrial: 5, port: 3 },
    sources: { '119': 0.6, '110': 0.2, sensor: 0.2 },
    surge: 'fire',
  },
  'elevator-entrapment': {
    share: 0.8,
    profile: 'general',
    hot: 0.6,
    tags: { office: 3, urban: 3, commercial: 1 },
    sources: { '119': 0.6, '12345': 0.3, sensor: 0.1 },
    surge: 'fire',
  },
  'urban-waterlogging': {
    share: 0.2,
    profile: 'general',
    hot: 0.6,
    tags: { old: 3, hub: 2, urban: 1 },
    sources: { '12345': 0.5, sensor: 0.3, 'grid-patrol': 0.2 },
    surge: 'weather',
  },
  'traffic-obstruction': {
    share: 3,
    profile: 'rush',
    hot: 0.7,
    tags: { traffic: 4, hub: 3, port: 2 },
    sources: { '122': 0.4, '110': 0.2, sensor: 0.3, '12345': 0.1 },
    surge: 'traffic',
  },
  'missing-manhole-cover': {
    share: 1,
    profile: 'daytime',
    hot: 0.3,
    tags: { urban: 1, old: 1 },
    sources: SRC_GOV,
    surge: 'weather',
  },
  'illegal-construction': {
    share: 2,
    profile: 'daytime',
    hot: 0.5,
    tags: { construction: 4, old: 1 },
    sources: SRC_GOV,
    surge: 'outdoor',
  },
  'joint-enforcement': {
    share: 0.3,
    profile: 'daytime',
    hot: 0.6,
    tags: { construction: 4, old: 2 },
    sources: { dispatcher: 0.9, 'grid-patrol': 0.1 },
    surge: 'outdoor',
  },
  'street-vending': {
    share: 18,
    profile: 'market',
    hot: 0.75,
    tags: { vending: 4, hub: 3, old: 2 },
    sources: SRC_GOV,
    surge: 'outdoor',
  },
  'illegal-dumping': {
    share: 2.5,
    profile: 'daytime',
    hot: 0.4,
    tags: { construction: 3, industrial: 2 },
    sources: SRC_GOV,
    surge: 'outdoor',
  },
  'illegal-parking': {
    share: 26,
    profile: 'rush',
    hot: 0.65,
    tags: { hub: 3, commercial: 2, office: 2, urban: 1 },
    sources: { '12345': 0.6, '122': 0.2, sensor: 0.2 },
    surge: 'outdoor',
  },
  'food-safety': {
    share: 2,
    profile: 'daytime',
    hot: 0.6,
    tags: { commercial: 3, old: 2, office: 2 },
    sources: { '12345': 0.85, 'grid-patrol': 0.15 },
    surge: 'none',
  },
  'pollution-complaint': {
    share: 1.5,
    profile: 'daytime',
    hot: 0.7,
    tags: { industrial: 5, construction: 2, port: 1 },
    sources: { '12345': 0.7, 'grid-patrol': 0.1, sensor: 0.2 },
    surge: 'none',
  },
  'noise-complaint': {
    share: 16,
    profile: 'night',
    hot: 0.6,
    tags: { night: 3, urban: 3, construction: 2, old: 2 },
    sources: { '110': 0.6, '12345': 0.4 },
    surge: 'none',
  },
};

/** A model for a catalogue type this generator does not know, guessed from its name and priority. */
function fallbackModel(t: IncidentType): TypeModel {
  const name = t.type.toLowerCase();
  const has = (...words: string[]): boolean => words.some((w) => name.includes(w));
  const share = [0, 0.5, 1, 3, 5][t.priority];
  const sources: Record<string, number> = t.immediate ? { '110': 1 } : { '12345': 1 };
  if (has('flood', 'waterlog', 'tree', 'landslide', 'typhoon', 'storm')) {
    return {
      share: 0.2,
      profile: 'general',
      hot: 0.5,
      tags: { old: 2, urban: 1 },
      sources,
      surge: 'weather',
    };
  }
  if (has('collision', 'traffic', 'crash', 'road')) {
    return { share, profile: 'rush', hot: 0.6, tags: { traffic: 3, hub: 2 }, sources, surge: 'traffic' };
  }
  if (has('fire', 'gas', 'explosion')) {
    return { share, profile: 'fire', hot: 0.5, tags: { urban: 2, industrial: 2 }, sources, surge: 'fire' };
  }
  if (has('noise'))
    return { share, profile: 'night', hot: 0.5, tags: { night: 2, urban: 2 }, sources, surge: 'none' };
  if (has('medical', 'injur', 'ambulance')) {
    return { share, profile: 'general', hot: 0.5, tags: { urban: 2, old: 2 }, sources, surge: 'medical' };
  }
  return t.immediate
    ? { share, profile: 'evening', hot: 0.5, tags: { urban: 2, commercial: 1 }, sources, surge: 'none' }
    : { share, profile: 'daytime', hot: 0.5, tags: { urban: 1, commercial: 1 }, sources, surge: 'none' };
}

export function typeModel(t: IncidentType): TypeModel {
  return Object.hasOwn(TYPE_MODELS, t.type) ? TYPE_MODELS[t.type] : fallbackModel(t);
}

/**
 * Rate factor of each class at full surge strength m: 1 + (m − 1) × emphasis. With the
 * default m = 3: flooding and lifted manhole covers × 21, collisions and obstructions × 5,
 * fires, lifts (power cuts) and gas × 3.4, medical × 2.2, other calls × 1.4, outdoor
 * governance work (vending, parking, building, dumping) × 0.7 — about × 1.7 in all.
 */
const SURGE_EMPHASIS: Record<SurgeClass, number> = {
  weather: 10,
  traffic: 2,
  fire: 1.2,
  medical: 0.6,
  none: 0.2,
  outdoor: -0.15,
};

const surgeClassFactor = (cls: SurgeClass, m: number): number =>
  Math.max(0.3, 1 + (m - 1) * SURGE_EMPHASIS[cls]);

// ---------------------------------------------------------------------------------------
// Departments

interface DepartmentSpec {
  department: string;
  prefix: string;
  /** station: all at one home per site; post: half at the post, half on patrol points; beat: spread over the sub-district. */
  placement: 'station' | 'post' | 'beat';
  /** 1 / n of the sub-districts (those with most of its work) have a site; 1 = every one. */
  siteEvery: number;
  speed: (r: Rng) => number;
  turnout: (r: Rng) => number;
  /** Expected travel distance to a job, km, and mean speed, km/h (for sizing only). */
  reachKm: number;
  meanKmh: number;
}

const DEPARTMENTS: Record<string, DepartmentSpec> = {
  'fire-engine': {
    department: 'fire',
    prefix: 'FE',
    placement: 'station',
    siteEvery: 1,
    speed: (r) => r.int(40, 50),
    turnout: (r) => r.int(6, 9) * 10,
    reachKm: 2.5,
    meanKmh: 45,
  },
  ladder: {
    department: 'fire',
    prefix: 'LAD',
    placement: 'station',
    siteEvery: 2,
    speed: () => 40,
    turnout: (r) => r.int(6, 9) * 10,
    reachKm: 3.5,
    meanKmh: 40,
  },
  ambulance: {
    department: 'health',
    prefix: 'AMB',
    placement: 'station',
    siteEvery: 1,
    speed: () => 45,
    turnout: () => 60,
    reachKm: 2.5,
    meanKmh: 45,
  },
  police: {
    department: 'police',
    prefix: 'POL',
    placement: 'post',
    siteEvery: 1,
    speed: () => 40,
    turnout: () => 30,
    reachKm: 2,
    meanKmh: 40,
  },
  traffic: {
    department: 'traffic',
    prefix: 'TRF',
    placement: 'post',
    siteEvery: 1,
    speed: (r) => r.int(35, 45),
    turnout: () => 30,
    reachKm: 2.5,
    meanKmh: 40,
  },
  chengguan: {
    department: 'chengguan',
    prefix: 'CG',
    placement: 'beat',
    siteEvery: 1,
    speed: (r) => r.int(15, 20),
    turnout: (r) => r.int(12, 24) * 10,
    reachKm: 1.5,
    meanKmh: 17.5,
  },
  market: {
    department: 'market',
    prefix: 'MKT',
    placement: 'station',
    siteEvery: 1,
    speed: (r) => r.int(15, 20),
    turnout: (r) => r.int(12, 30) * 10,
    reachKm: 2,
    meanKmh: 17.5,
  },
  environment: {
    department: 'environment',
    prefix: 'ENV',
    placement: 'station',
    siteEvery: 3,
    speed: (r) => r.int(15, 20),
    turnout: (r) => r.int(12, 30) * 10,
    reachKm: 3,
    meanKmh: 17.5,
  },
  legal: {
    department: 'legal',
    prefix: 'LEG',
    placement: 'station',
    siteEvery: 1,
    speed: (r) => r.int(15, 20),
    turnout: (r) => r.int(12, 30) * 10,
    reachKm: 2,
    meanKmh: 17.5,
  },
};

function departmentFor(capability: string): DepartmentSpec {
  if (Object.hasOwn(DEPARTMENTS, capability)) return DEPARTMENTS[capability];
  return {
    department: capability,
    prefix: capability
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 4)
      .toUpperCase(),
    placement: 'station',
    siteEvery: 2,
    speed: () => 35,
    turnout: () => 120,
    reachKm: 3,
    meanKmh: 35,
  };
}

/** Capabilities whose work makes an incident type a sub-district's own duty. */
const DUTY_CAPABILITIES = new Set(['chengguan', 'market', 'environment', 'legal']);

// ---------------------------------------------------------------------------------------
// Geography

interface Block {
  spec: SubDistrictSpec;
  /** Cell index ranges, inclusive start, exclusive end. */
  c0: number;
  c1: number;
  r0: number;
  r1: number;
}

interface Cell {
  id: string;
  parent: string;
  block: Block;
  c: number;
  r: number;
}

interface World {
  spec: PresetSpec;
  blocks: Block[];
  cells: Cell[];
  box: { west: number; south: number; east: number; north: number };
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
const round1 = (x: number): number => Math.round(x * 10) / 10;

function buildWorld(spec: PresetSpec): World {
  const rng = new Rng(spec.worldSeed ^ hashString('geography'));
  const blocks: Block[] = [];
  let r0 = 0;
  for (const band of spec.bands) {
    // Jitter the internal block boundaries by one cell, keeping every block ≥ 2 cells wide.
    const widths = band.blocks.map((b) => b.cols);
    for (let i = 0; i + 1 < widths.length; i++) {
      const shift = rng.int(-1, 1);
      if (widths[i] + shift >= 2 && widths[i + 1] - shift >= 2) {
        widths[i] += shift;
        widths[i + 1] -= shift;
      }
    }
    let c0 = 0;
    band.blocks.forEach((b, i) => {
      blocks.push({ spec: b, c0, c1: c0 + widths[i], r0, r1: r0 + band.rows });
      c0 += widths[i];
    });
    if (c0 !== spec.cols) throw new Error(`preset band widths sum to ${c0}, expected ${spec.cols}`);
    r0 += band.rows;
  }
  const cells: Cell[] = [];
  for (const block of blocks) {
    let n = 0;
    for (let r = block.r0; r < block.r1; r++) {
      for (let c = block.c0; c < block.c1; c++) {
        n++;
        cells.push({
          id: `${block.spec.id}-c${String(n).padStart(2, '0')}`,
          parent: block.spec.id,
          block,
          c,
          r,
        });
      }
    }
  }
  const [west, south] = spec.origin;
  return {
    spec,
    blocks,
    cells,
    box: {
      west,
      south,
      east: round6(west + spec.cols * spec.cellDeg),
      north: round6(south + r0 * spec.cellDeg),
    },
  };
}

const lonAt = (w: World, c: number): number => round6(w.spec.origin[0] + c * w.spec.cellDeg);
const latAt = (w: World, r: number): number => round6(w.spec.origin[1] + r * w.spec.cellDeg);

function rect(w: World, c0: number, c1: number, r0: number, r1: number): LonLat[][] {
  const [x0, x1, y0, y1] = [lonAt(w, c0), lonAt(w, c1), latAt(w, r0), latAt(w, r1)];
  return [
    [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
      [x0, y0],
    ],
  ];
}

function areaFeatures(w: World, duties: string[]): AreaFeature[] {
  const subs: AreaFeature[] = w.blocks.map((b) => ({
    type: 'Feature',
    properties: {
      id: b.spec.id,
      name: `${b.spec.zh} / ${b.spec.en}`,
      kind: b.spec.kind,
      duties: duties.slice(),
    },
    geometry: { type: 'Polygon', coordinates: rect(w, b.c0, b.c1, b.r0, b.r1) },
  }));
  const cells: AreaFeature[] = w.cells.map((cell) => ({
    type: 'Feature',
    properties: {
      id: cell.id,
      name: `${cell.block.spec.zh}网格 ${cell.id.slice(cell.id.lastIndexOf('-c') + 2)}`,
      parent: cell.parent,
      kind: 'cell',
    },
    geometry: { type: 'Polygon', coordinates: rect(w, cell.c, cell.c + 1, cell.r, cell.r + 1) },
  }));
  return [...subs, ...cells];
}

const KM_PER_DEG_LAT = 111.32;
const kmPerDegLon = (lat: number): number => KM_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180);

const inBox = (w: World, p: LonLat): boolean =>
  p[0] >= w.box.west && p[0] <= w.box.east && p[1] >= w.box.south && p[1] <= w.box.north;

function pointInCell(w: World, cell: Cell, rng: Rng): LonLat {
  const d = w.spec.cellDeg;
  return [
    round6(w.spec.origin[0] + (cell.c + rng.next()) * d),
    round6(w.spec.origin[1] + (cell.r + rng.next()) * d),
  ];
}

function pointInBlock(w: World, b: Block, rng: Rng, margin = 0.1): LonLat {
  const d = w.spec.cellDeg;
  const fx = margin + (1 - 2 * margin) * rng.next();
  const fy = margin + (1 - 2 * margin) * rng.next();
  return [
    round6(w.spec.origin[0] + (b.c0 + fx * (b.c1 - b.c0)) * d),
    round6(w.spec.origin[1] + (b.r0 + fy * (b.r1 - b.r0)) * d),
  ];
}

function blockOf(w: World, p: LonLat): Block {
  const c = Math.min(w.spec.cols - 1, Math.max(0, Math.floor((p[0] - w.spec.origin[0]) / w.spec.cellDeg)));
  const rows = w.blocks.reduce((m, b) => Math.max(m, b.r1), 0);
  const r = Math.min(rows - 1, Math.max(0, Math.floor((p[1] - w.spec.origin[1]) / w.spec.cellDeg)));
  return w.blocks.find((b) => c >= b.c0 && c < b.c1 && r >= b.r0 && r < b.r1) ?? w.blocks[0];
}

/** Samples incident places for one type: hotspot Gaussians (tag-weighted) or background cells. */
class Placer {
  private readonly hotspots: WeightedSampler;
  private readonly cells: WeightedSampler;
  constructor(
    private readonly w: World,
    private readonly model: TypeModel,
  ) {
    this.hotspots = new WeightedSampler(
      w.spec.hotspots.map((h) => h.weight * h.tags.reduce((s, tag) => s + (model.tags[tag] ?? 0), 0)),
    );
    this.cells = new WeightedSampler(w.cells.map((c) => c.block.spec.density));
  }

  place(rng: Rng): LonLat {
    if (!this.hotspots.empty && rng.chance(this.model.hot)) {
      const h = this.w.spec.hotspots[this.hotspots.sample(rng)];
      for (let tries = 0; tries < 8; tries++) {
        const p: LonLat = [
          round6(h.at[0] + rng.normal(0, h.sigmaKm / kmPerDegLon(h.at[1]))),
          round6(h.at[1] + rng.normal(0, h.sigmaKm / KM_PER_DEG_LAT)),
        ];
        if (inBox(this.w, p)) return p;
      }
    }
    return pointInCell(this.w, this.w.cells[this.cells.sample(rng)], rng);
  }
}

// ---------------------------------------------------------------------------------------
// Units

/** Expected busy unit-seconds per capability at the busiest hour of a default day (no surge). */
function peakWorkload(
  catalog: readonly IncidentType[],
  perDay: number,
  onSceneScale: number,
): Map<string, number> {
  const shares = catalog.map((t) => typeModel(t).share);
  const total = shares.reduce((a, b) => a + b, 0);
  const hourly = new Map<string, number[]>();
  catalog.forEach((t, i) => {
    const m = typeModel(t);
    for (const [cap, n] of Object.entries(t.requires)) {
      const d = departmentFor(cap);
      const busyS = t.onSceneS * onSceneScale + (d.reachKm * 1.3 * 3600) / d.meanKmh + 120;
      const row = hourly.get(cap) ?? new Array<number>(24).fill(0);
      for (let h = 0; h < 24; h++) {
        row[h] += ((perDay * shares[i]) / total / 24) * profileAt(m.profile, h + 0.5) * n * busyS;
      }
      hourly.set(cap, row);
    }
  });
  return new Map([...hourly].map(([cap, row]) => [cap, Math.max(...row) / 3600]));
}

/** Largest-remainder apportionment of `total` over `weights`, each at least `min[i]`. */
function apportion(total: number, weights: number[], min: number[]): number[] {
  const base = min.slice();
  const rest = Math.max(0, total - base.reduce((a, b) => a + b, 0));
  const wsum = weights.reduce((a, b) => a + b, 0);
  if (wsum <= 0 || rest === 0) return base;
  const exact = weights.map((x) => (rest * x) / wsum);
  const out = base.map((b, i) => b + Math.floor(exact[i]));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => [x - Math.floor(x), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k][1]]++;
  return out;
}

/** Distance between block centres in cell units. */
function blockDistance(a: Block, b: Block): number {
  return Math.hypot((a.c0 + a.c1 - b.c0 - b.c1) / 2, (a.r0 + a.r1 - b.r0 - b.r1) / 2);
}

/**
 * Expected workload (unit-seconds, relative) of each capability in each sub-district, from
 * a fixed sample of each type's placements (world seed): units go where the work is.
 */
function blockDemand(
  w: World,
  catalog: readonly IncidentType[],
  onSceneScale: number,
): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const blockIndex = new Map(w.blocks.map((b, i) => [b, i]));
  const samples = 400;
  for (const t of catalog) {
    const m = typeModel(t);
    const rng = new Rng(w.spec.worldSeed ^ hashString(`demand/${t.type}`));
    const placer = new Placer(w, m);
    const tally = w.blocks.map(() => 0);
    for (let i = 0; i < samples; i++) tally[blockIndex.get(blockOf(w, placer.place(rng))) ?? 0]++;
    for (const [cap, n] of Object.entries(t.requires)) {
      const weight = m.share * n * (t.onSceneS * onSceneScale + 600);
      const row = out.get(cap) ?? w.blocks.map(() => 0);
      tally.forEach((x, b) => {
        row[b] += (weight * x) / samples;
      });
      out.set(cap, row);
    }
  }
  return out;
}

function generateUnits(w: World, catalog: readonly IncidentType[], unitsScale: number): ScenarioUnit[] {
  const caps: string[] = [];
  const minNeed = new Map<string, number>();
  for (const t of catalog) {
    for (const [cap, n] of Object.entries(t.requires)) {
      if (!minNeed.has(cap)) caps.push(cap);
      minNeed.set(cap, Math.max(minNeed.get(cap) ?? 0, n));
    }
  }
  const load = peakWorkload(catalog, w.spec.incidentsPerDay, w.spec.onSceneScale);

  // Sub-districts ranked by their total expected workload; sites go to the busiest first.
  const demand = blockDemand(w, catalog, w.spec.onSceneScale);
  const blockWeight = w.blocks.map((_, b) => [...demand.values()].reduce((s, row) => s + row[b], 0));
  const rankedBlocks = w.blocks.map((_, i) => i).sort((a, b) => blockWeight[b] - blockWeight[a] || a - b);
  // Sites of a capability: the sub-districts with the most of its work (all when siteEvery = 1).
  const sitesOf = (cap: string): number[] => {
    const row = demand.get(cap) ?? blockWeight;
    const ranked = rankedBlocks.slice().sort((a, b) => row[b] - row[a] || a - b);
    return ranked.slice(0, Math.ceil(ranked.length / departmentFor(cap).siteEvery));
  };

  // Floor per capability: coverage of every site (scaled down with the unit count), and
  // never fewer than the largest package a type needs.
  const floor = caps.map((c) =>
    Math.max(
      minNeed.get(c) ?? 1,
      Math.round((w.spec.coverage[c] ?? 1) * sitesOf(c).length * Math.min(1, unitsScale)),
    ),
  );
  const total = Math.max(
    floor.reduce((a, b) => a + b, 0),
    Math.round(w.spec.unitsTotal * unitsScale),
  );
  const counts = apportion(
    total,
    caps.map((c) => load.get(c) ?? 0),
    floor,
  );

  const units: ScenarioUnit[] = [];
  caps.forEach((cap, ci) => {
    const d = departmentFor(cap);
    const rng = new Rng(w.spec.worldSeed ^ hashString(`units/${cap}`));
    const sites = sitesOf(cap);
    // Each site keeps its coverage share first; the rest follows sub-district demand.
    const cover = Math.min(Math.floor(w.spec.coverage[cap] ?? 1), Math.floor(counts[ci] / sites.length));
    // A site serves its own sub-district and those whose nearest site it is.
    const siteDemand = sites.map(() => 0);
    const row = demand.get(cap) ?? w.blocks.map(() => 1);
    w.blocks.forEach((b, bi) => {
      let best = 0;
      for (let k = 1; k < sites.length; k++) {
        if (blockDistance(b, w.blocks[sites[k]]) < blockDistance(b, w.blocks[sites[best]])) best = k;
      }
      siteDemand[best] += row[bi];
    });
    const perSite = apportion(
      counts[ci],
      siteDemand,
      sites.map(() => cover),
    );
    let n = 0;
    const width = Math.max(3, String(counts[ci]).length);
    // Sites in district order (south-west first) so that ids read geographically.
    const ordered = sites.map((b, k) => [b, perSite[k]] as const).sort((a, b) => a[0] - b[0]);
    for (const [bi, count] of ordered) {
      if (count === 0) continue;
      const block = w.blocks[bi];
      // A station sits between the block centre and its busiest hotspot.
      const hot = w.spec.hotspots
        .filter((h) => blockOf(w, h.at) === block)
        .sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1))[0];
      const centre = pointInBlock(w, block, rng, 0.3);
      const site: LonLat = hot
        ? [round6((centre[0] + hot.at[0]) / 2), round6((centre[1] + hot.at[1]) / 2)]
        : centre;
      for (let k = 0; k < count; k++) {
        n++;
        let home: LonLat = site;
        if (d.placement === 'beat' || (d.placement === 'post' && k % 2 === 1))
          home = pointInBlock(w, block, rng);
        units.push({
          id: `${d.prefix}-${String(n).padStart(width, '0')}`,
          department: d.department,
          capabilities: [cap],
          home,
          homeArea: block.spec.id,
          speedKmh: d.speed(rng),
          turnoutS: d.turnout(rng),
        });
      }
    }
  });
  return units;
}

// ---------------------------------------------------------------------------------------
// Incidents

const BIN_S = 300;

interface SurgeWindow {
  startS: number;
  endS: number;
  multiplier: number;
}

/** Surge intensity in [0, 1] at time t: trapezoid with ramps of min(30 min, window / 4). */
function surgeLevel(s: SurgeWindow | undefined, t: number): number {
  if (!s || t < s.startS || t >= s.endS) return 0;
  const ramp = Math.min(1800, (s.endS - s.startS) / 4);
  if (ramp <= 0) return 1;
  return Math.min(1, (t - s.startS) / ramp, (s.endS - t) / ramp);
}

/** Rate multiplier of a surge class at time t. */
export function surgeFactorAt(cls: SurgeClass, s: SurgeWindow | undefined, t: number): number {
  const level = surgeLevel(s, t);
  if (level === 0 || !s) return 1;
  return 1 + (surgeClassFactor(cls, s.multiplier) - 1) * level;
}

interface Draft extends ScenarioIncident {
  order: number;
}

function generateIncidents(
  w: World,
  catalog: readonly IncidentType[],
  opts: {
    seed: number;
    durationS: number;
    perDay: number;
    startLocalS: number;
    surge?: SurgeWindow;
    onSceneScale: number;
  },
): ScenarioIncident[] {
  const shares = catalog.map((t) => typeModel(t).share);
  const totalShare = shares.reduce((a, b) => a + b, 0);
  const drafts: Draft[] = [];
  let order = 0;
  catalog.forEach((t, ti) => {
    const m = typeModel(t);
    const perS = (opts.perDay * shares[ti]) / totalShare / 86400;
    if (!(perS > 0)) return;
    const arrivals = new Rng(opts.seed ^ hashString(`arrivals/${t.type}`));
    const attrs = new Rng(opts.seed ^ hashString(`attributes/${t.type}`));
    const placer = new Placer(w, m);
    const sourceNames = Object.keys(m.sources);
    const sources = new WeightedSampler(sourceNames.map((k) => m.sources[k]));
    for (let b0 = 0; b0 < opts.durationS; b0 += BIN_S) {
      const b1 = Math.min(opts.durationS, b0 + BIN_S);
      const mid = (b0 + b1) / 2;
      const hour = ((((opts.startLocalS + mid) / 3600) % 24) + 24) % 24;
      const rate = perS * profileAt(m.profile, hour) * surgeFactorAt(m.surge, opts.surge, mid);
      const k = arrivals.poisson(rate * (b1 - b0));
      for (let j = 0; j < k; j++) {
        const atS = Math.min(opts.durationS, round1(b0 + arrivals.next() * (b1 - b0)));
        const inc: Draft = { id: '', atS, type: t.type, location: placer.place(attrs), order: order++ };
        const typical = t.onSceneS * opts.onSceneScale;
        if (typical > 0) {
          // Log-normal with mean (not median) at the typical time.
          const x = attrs.logNormal(typical * Math.exp((-0.35 * 0.35) / 2), 0.35);
          inc.onSceneS = Math.round(Math.min(3 * typical, Math.max(0.25 * typical, x)));
        }
        const low = !t.immediate && t.priority >= 3;
        if (attrs.chance(low ? 0.04 : 0.005)) {
          inc.cancelAtS = round1(
            atS + (low ? 60 + attrs.exponential(1 / 900) : 20 + attrs.exponential(1 / 120)),
          );
        }
        if (t.priority >= 3 && attrs.chance(0.01)) {
          inc.priority = (t.priority - 1) as 2 | 3;
          inc.source = 'dispatcher';
        } else {
          inc.source = sourceNames[sources.sample(attrs)];
        }
        drafts.push(inc);
      }
    }
  });
  drafts.sort((a, b) => a.atS - b.atS || a.order - b.order);
  const width = Math.max(6, String(drafts.length).length);
  return drafts.map((d, i) => {
    const { order: _order, ...rest } = d;
    // Field order of the scenario format: id, atS, type, location, then the optional ones.
    const out: ScenarioIncident = {
      id: `I-${String(i + 1).padStart(width, '0')}`,
      atS: rest.atS,
      type: rest.type,
      location: rest.location,
    };
    if (rest.onSceneS !== undefined) out.onSceneS = rest.onSceneS;
    if (rest.priority !== undefined) out.priority = rest.priority;
    if (rest.cancelAtS !== undefined) out.cancelAtS = rest.cancelAtS;
    if (rest.source !== undefined) out.source = rest.source;
    return out;
  });
}

// ---------------------------------------------------------------------------------------
// Entry point

function checkOptions(opts: GenerateOptions): void {
  if (!Object.hasOwn(PRESETS, opts.preset)) {
    throw new RangeError(
      `preset: expected one of ${Object.keys(PRESETS).join(', ')}, got ${String(opts.preset)}`,
    );
  }
  if (!(Number.isFinite(opts.hours) && opts.hours > 0 && opts.hours <= 24 * 31)) {
    throw new RangeError(`hours: expected a number in (0, 744], got ${opts.hours}`);
  }
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError(`seed: expected an integer, got ${opts.seed}`);
  if (
    opts.incidentsPerDay !== undefined &&
    !(Number.isFinite(opts.incidentsPerDay) && opts.incidentsPerDay >= 0)
  ) {
    throw new RangeError(`incidentsPerDay: expected a number ≥ 0, got ${opts.incidentsPerDay}`);
  }
  if (opts.unitsScale !== undefined && !(Number.isFinite(opts.unitsScale) && opts.unitsScale > 0)) {
    throw new RangeError(`unitsScale: expected a number > 0, got ${opts.unitsScale}`);
  }
  if (opts.start !== undefined && !parseIsoWithOffset(opts.start)) {
    throw new RangeError(`start: expected an ISO 8601 time with offset, got ${opts.start}`);
  }
  const s = opts.surge;
  if (typeof s === 'object' && s !== null) {
    if (!(Number.isFinite(s.startH) && s.startH >= 0 && s.startH < opts.hours)) {
      throw new RangeError(`surge.startH: expected a number in [0, ${opts.hours}), got ${s.startH}`);
    }
    if (!(Number.isFinite(s.hours) && s.hours > 0)) {
      throw new RangeError(`surge.hours: expected a number > 0, got ${s.hours}`);
    }
    if (s.multiplier !== undefined && !(Number.isFinite(s.multiplier) && s.multiplier >= 1)) {
      throw new RangeError(`surge.multiplier: expected a number ≥ 1, got ${s.multiplier}`);
    }
  }
}

/** The surge window in scenario seconds, or undefined. */
export function resolveSurge(opts: GenerateOptions): SurgeWindow | undefined {
  const s = opts.surge;
  if (!s) return undefined;
  const durationS = opts.hours * 3600;
  if (s === true) {
    const spec = PRESETS[opts.preset];
    const start = parseIsoWithOffset(opts.start ?? spec.start);
    const localH = start
      ? ((((start.epochMs / 1000 + start.offsetMin * 60) % 86400) + 86400) % 86400) / 3600
      : 0;
    const lengthH = Math.min(3, opts.hours);
    const startH = Math.min(Math.max(0, opts.hours - lengthH), (spec.surgeLocalH - localH + 24) % 24);
    return { startS: startH * 3600, endS: Math.min(durationS, (startH + lengthH) * 3600), multiplier: 3 };
  }
  return {
    startS: s.startH * 3600,
    endS: Math.min(durationS, (s.startH + s.hours) * 3600),
    multiplier: s.multiplier ?? 3,
  };
}

/** The bounding box [west, south, east, north] of a preset's district. */
export function presetBox(preset: PresetName): [number, number, number, number] {
  const w = buildWorld(PRESETS[preset]);
  return [w.box.west, w.box.south, w.box.east, w.box.north];
}

export const PRESET_NAMES: readonly PresetName[] = ['huangpu', 'demo'];

/** Generates a synthetic scenario. Same options ⇒ byte-identical JSON. */
export function generateScenario(opts: GenerateOptions): Scenario {
  checkOptions(opts);
  const spec = PRESETS[opts.preset];
  const catalog = defaultCatalog().list.map((t) => structuredClone(t) as IncidentType);
  const world = buildWorld(spec);
  const start = opts.start ?? spec.start;
  const parsed = parseIsoWithOffset(start);
  const startLocalS = parsed
    ? (((parsed.epochMs / 1000 + parsed.offsetMin * 60) % 86400) + 86400) % 86400
    : 0;
  const durationS = Math.round(opts.hours * 3600);
  const surge = resolveSurge(opts);
  const perDay = opts.incidentsPerDay ?? spec.incidentsPerDay;
  const unitsScale = opts.unitsScale ?? 1;

  const duties = catalog
    .filter((t) => !t.immediate && Object.keys(t.requires).some((c) => DUTY_CAPABILITIES.has(c)))
    .map((t) => t.type);
  const units = generateUnits(world, catalog, unitsScale);
  const incidents = generateIncidents(world, catalog, {
    seed: opts.seed,
    durationS,
    perDay,
    startLocalS,
    surge,
    onSceneScale: spec.onSceneScale,
  });
  incidents.sort(compareIncidents);

  const surgeText = surge
    ? `; typhoon surge ×${surge.multiplier} from ${round1(surge.startS / 3600)} h to ${round1(surge.endS / 3600)} h`
    : '';
  const name = opts.name ?? `${opts.preset}-${round1(opts.hours)}h-seed${opts.seed}${surge ? '-surge' : ''}`;
  return {
    name,
    description:
      `Synthetic ${opts.preset === 'huangpu' ? 'Huangpu-like district' : 'demo district'}: ` +
      `${world.blocks.length} sub-districts, ${world.cells.length} grid cells, ${units.length} units, ` +
      `${incidents.length} incidents (${perDay}/day nominal${unitsScale !== 1 ? `, units ×${unitsScale}` : ''}${surgeText}).`,
    start,
    durationS,
    seed: opts.seed,
    travel: { detourFactor: 1.3 },
    sim: { ...spec.sim },
    areas: { type: 'FeatureCollection', features: areaFeatures(world, duties) },
    catalog,
    units,
    incidents,
  };
}
