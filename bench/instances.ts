// Seeded, city-like assignment instances for the solver bench and the property tests:
// units at stations spread over a district, incidents clustered around hotspots, five
// capability types, a share of incidents needing a joint force of 2–3 units.

import { buildCatalog, type CatalogIndex } from '../src/core/catalog.ts';
import { GreatCircleTravel } from '../src/core/travel.ts';
import type { DispatchState, Incident, IncidentType, Priority, Unit } from '../src/core/types.ts';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const CAPS = ['fire-engine', 'ambulance', 'police', 'traffic', 'chengguan'] as const;

const PROFILE: Record<string, { speedKmh: number; turnoutS: number }> = {
  'fire-engine': { speedKmh: 40, turnoutS: 75 },
  ambulance: { speedKmh: 45, turnoutS: 60 },
  police: { speedKmh: 40, turnoutS: 30 },
  traffic: { speedKmh: 35, turnoutS: 45 },
  chengguan: { speedKmh: 20, turnoutS: 180 },
  general: { speedKmh: 35, turnoutS: 60 },
};

export interface InstanceSpec {
  incidents: number;
  units: number;
  seed: number;
  /** Share of incidents whose type needs 2–3 units. */
  multiShare?: number;
  /** One capability only and every unit in reach of every incident (scarce, dense). */
  dense?: boolean;
  /** Include all-or-nothing joint-force types. */
  allOrNothing?: boolean;
  /** Incidents were reported up to this many seconds before now (default 120: a surge's last two minutes). */
  backlogS?: number;
  /** Share of incidents around the hotspots (default 0.6; the rest spread uniformly). */
  hotspotShare?: number;
  /** Share of units stationed near the incident hotspots (default 0.5). */
  unitsNearHotspots?: number;
  /** Side of the square district in degrees (about 111 km per degree). */
  spanDeg?: number;
}

export interface Instance {
  name: string;
  state: DispatchState;
  catalog: CatalogIndex;
  travel: GreatCircleTravel;
  now: number;
}

function catalogFor(spec: InstanceSpec): IncidentType[] {
  if (spec.dense) {
    return [1, 2, 3, 4].map((p) => ({
      type: `call-p${p}`,
      priority: p as Priority,
      immediate: p === 1,
      targetS: 300 * p,
      requires: { general: 1 },
      onSceneS: 1200,
    }));
  }
  const types: IncidentType[] = [];
  CAPS.forEach((cap, i) => {
    types.push({
      type: `single-${cap}`,
      priority: ((i % 4) + 1) as Priority,
      immediate: i % 4 === 0,
      targetS: 480 + 240 * (i % 4),
      requires: { [cap]: 1 },
      onSceneS: 1200,
    });
  });
  // Joint forces: a pair of one capability plus one of another, or a triple.
  for (let i = 0; i < CAPS.length; i++) {
    const a = CAPS[i];
    const b = CAPS[(i + 1) % CAPS.length];
    types.push({
      type: `joint-${a}-${b}`,
      priority: ((i % 3) + 1) as Priority,
      immediate: i % 3 === 0,
      targetS: 600,
      requires: i % 2 === 0 ? { [a]: 2 } : { [a]: 1, [b]: 1 + (i % 3 === 1 ? 1 : 0) },
      onSceneS: 1800,
      ...(spec.allOrNothing && i % 2 === 1 ? { allOrNothing: true } : {}),
    });
  }
  return types;
}

export function makeInstance(spec: InstanceSpec): Instance {
  const rnd = mulberry32(spec.seed);
  const span = spec.spanDeg ?? (spec.dense ? 0.15 : 0.25);
  const x0 = 113.4;
  const y0 = 23.05;
  const types = catalogFor(spec);
  const catalog = buildCatalog(types);
  const singles = types.filter((t) => Object.values(t.requires).reduce((a, b) => a + b, 0) === 1);
  const multis = types.filter((t) => Object.values(t.requires).reduce((a, b) => a + b, 0) > 1);
  const hotspots = Array.from({ length: 6 }, () => [x0 + rnd() * span, y0 + rnd() * span]);
  const units: Unit[] = [];
  // Stations follow demand: part of every fleet is based near the hotspots, the rest spread out.
  const homeOf = (): [number, number] => {
    if (rnd() < (spec.unitsNearHotspots ?? (spec.hotspotShare === 0 ? 0 : 0.5))) {
      const h = hotspots[Math.floor(rnd() * hotspots.length)];
      return [h[0] + (rnd() - 0.5) * span * 0.2, h[1] + (rnd() - 0.5) * span * 0.2];
    }
    return [x0 + rnd() * span, y0 + rnd() * span];
  };
  for (let i = 0; i < spec.units; i++) {
    const cap = spec.dense ? 'general' : CAPS[i % CAPS.length];
    const caps = spec.dense ? [cap] : rnd() < 0.1 ? [cap, CAPS[(i + 2) % CAPS.length]] : [cap];
    units.push({
      id: `U${String(i).padStart(5, '0')}`,
      department: cap,
      capabilities: caps,
      home: homeOf(),
      // Each department drives a similar vehicle: its own speed and turnout, ±10 %.
      speedKmh: Math.round(PROFILE[cap].speedKmh * (0.9 + rnd() * 0.2)),
      turnoutS: Math.round(PROFILE[cap].turnoutS * (0.9 + rnd() * 0.2)),
      status: 'available',
    });
  }
  const incidents: Incident[] = [];
  for (let i = 0; i < spec.incidents; i++) {
    const pool = !spec.dense && rnd() < (spec.multiShare ?? 0.2) ? multis : singles;
    const t = pool[Math.floor(rnd() * pool.length)];
    const h = hotspots[Math.floor(rnd() * hotspots.length)];
    const near = rnd() < (spec.hotspotShare ?? 0.6);
    const loc: [number, number] = near
      ? [h[0] + (rnd() - 0.5) * span * 0.15, h[1] + (rnd() - 0.5) * span * 0.15]
      : [x0 + rnd() * span, y0 + rnd() * span];
    incidents.push({
      id: `I${String(i).padStart(6, '0')}`,
      type: t.type,
      location: loc,
      reportedAt: 1000 - Math.floor(rnd() * (spec.backlogS ?? 120)),
      status: 'queued',
    });
  }
  const name = `${spec.incidents}x${spec.units}${spec.dense ? '-dense' : ''}${spec.dense && spec.hotspotShare !== 0 ? '-clustered' : ''}`;
  return { name, state: { units, incidents }, catalog, travel: new GreatCircleTravel(1.3), now: 1000 };
}
