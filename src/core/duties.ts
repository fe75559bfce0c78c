// Duties lists: who owns an incident. Besides the catalogue's immediate-response list, each
// sub-district or town owns the incident types on its "list of duties" (`properties.duties`
// of its area feature; a grid cell with no list of its own inherits its sub-district's). An
// incident is routed, in this order:
//   immediate  its type is on the immediate-response list (the emergency services answer it);
//   area       the sub-district it lies in (its cell's list, else the sub-district's) owns it;
//   district   otherwise — a type on no list at all, a type another sub-district owns but not
//              this one, or a point outside every sub-district — the district level handles it.
// Pure: the same routing for the live engine (recorded on the incident at intake) and for the
// figures of a replay (computed from the `reported` record's area and cell).

import type { AreaFeature } from '../scenario/types.ts';
import type { AreaIndex } from './areas.ts';
import type { CatalogIndex } from './catalog.ts';

export type DutyLevel = 'immediate' | 'area' | 'district';

export interface DutyRoute {
  level: DutyLevel;
  /** `immediate`, the owning sub-district id, or `district`. */
  owner: string;
  /** Why the district level has it (level `district` only). */
  why?: 'on_no_list' | 'not_on_area_list' | 'outside_every_area';
}

export const DUTY_LEVELS: readonly DutyLevel[] = ['immediate', 'area', 'district'];

const OWNED = new WeakMap<AreaIndex, ReadonlySet<string>>();

/** Types some sub-district or cell owns, over the whole district (computed once per index). */
export function ownedTypes(areas: AreaIndex | undefined): ReadonlySet<string> {
  if (!areas) return new Set();
  let out = OWNED.get(areas);
  if (!out) {
    const s = new Set<string>();
    for (const f of [...areas.areas(), ...areas.cells()]) for (const t of f.properties.duties ?? []) s.add(t);
    out = s;
    OWNED.set(areas, out);
  }
  return out;
}

export function routeDuty(
  type: string,
  place: { area?: string; cell?: string },
  catalog: CatalogIndex,
  areas: AreaIndex | undefined,
  owned: ReadonlySet<string> = ownedTypes(areas),
): DutyRoute {
  if (catalog.get(type)?.immediate) return { level: 'immediate', owner: 'immediate' };
  if (areas && place.area !== undefined) {
    const list = place.cell !== undefined ? areas.duties(place.cell) : areas.duties(place.area);
    if (list.includes(type)) return { level: 'area', owner: place.area };
  }
  if (!owned.has(type)) return { level: 'district', owner: 'district', why: 'on_no_list' };
  if (place.area === undefined) return { level: 'district', owner: 'district', why: 'outside_every_area' };
  return { level: 'district', owner: 'district', why: 'not_on_area_list' };
}

/** Reads a recorded route back (an incident's payload, an event's data); undefined when malformed. */
export function readDutyRoute(v: unknown): DutyRoute | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!DUTY_LEVELS.includes(o.level as DutyLevel) || typeof o.owner !== 'string') return undefined;
  const r: DutyRoute = { level: o.level as DutyLevel, owner: o.owner };
  if (o.why === 'on_no_list' || o.why === 'not_on_area_list' || o.why === 'outside_every_area') r.why = o.why;
  return r;
}

export interface DutyListView {
  area: string;
  name: string;
  types: string[];
  /** Grid cells of the sub-district with a list of their own. */
  cells?: { cell: string; name: string; types: string[] }[];
}

export interface DutyLists {
  /** The catalogue's immediate-response list. */
  immediate: string[];
  /** One list per sub-district or town, in area order. */
  areas: DutyListView[];
  /** Types on no list: an incident of one of these is routed to the district level. */
  districtLevel: string[];
}

/** The lists as the console shows them, from the catalogue and the area features. */
export function dutyLists(
  catalog: { list: readonly { type: string; immediate: boolean }[] },
  features: readonly AreaFeature[],
): DutyLists {
  const owned = new Set<string>();
  for (const f of features) for (const t of f.properties.duties ?? []) owned.add(t);
  const cellsOf = new Map<string, { cell: string; name: string; types: string[] }[]>();
  for (const f of features) {
    const parent = f.properties.parent;
    if (parent === undefined || !f.properties.duties) continue;
    const l = cellsOf.get(parent) ?? [];
    l.push({ cell: f.properties.id, name: f.properties.name, types: [...f.properties.duties] });
    cellsOf.set(parent, l);
  }
  return {
    immediate: catalog.list.filter((t) => t.immediate).map((t) => t.type),
    areas: features
      .filter((f) => f.properties.parent === undefined)
      .map((f) => {
        const v: DutyListView = {
          area: f.properties.id,
          name: f.properties.name,
          types: [...(f.properties.duties ?? [])],
        };
        const cells = cellsOf.get(f.properties.id);
        if (cells) v.cells = cells;
        return v;
      }),
    districtLevel: catalog.list.filter((t) => !t.immediate && !owned.has(t.type)).map((t) => t.type),
  };
}
