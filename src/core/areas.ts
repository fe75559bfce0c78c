// Sub-districts and their grid cells, and the placement of a point in them. An R-tree over
// feature bounding boxes narrows a query to the few features near the point before the exact
// point-in-polygon test, so placement stays fast with thousands of cells.

import { booleanPointInPolygon } from '@turf/turf';
// @ts-expect-error rbush 4 ships no type declarations (and @types/rbush is not a dependency); typed below.
import RBushUntyped from 'rbush';
import type { AreaFeature, AreaProperties } from '../scenario/types.ts';
import { CoreError } from './errors.ts';
import { bboxOf, isPosition } from './geo.ts';
import type { LonLat } from './types.ts';
import { invalid, requireArray, requireRecord, requireString } from './validate.ts';

interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

interface RTree<T extends Box> {
  load(items: T[]): RTree<T>;
  search(box: Box): T[];
}

const RBush = RBushUntyped as new <T extends Box>(maxEntries?: number) => RTree<T>;

interface Entry extends Box {
  /** Feature order in the input: the tie-break when a point lies in two features (a shared edge). */
  order: number;
  feature: AreaFeature;
}

export interface Placement {
  /** Grid cell containing the point. */
  cell?: string;
  /** Sub-district: the cell's parent, or the sub-district containing the point when no cell does. */
  area?: string;
}

export class AreaIndex {
  private readonly byId = new Map<string, AreaFeature>();
  private readonly subDistricts: AreaFeature[] = [];
  private readonly gridCells: AreaFeature[] = [];
  /** Separate trees: a few large sub-district boxes would otherwise widen every node of the cell tree. */
  private readonly cellTree: RTree<Entry>;
  private readonly areaTree: RTree<Entry>;

  constructor(collection: unknown, path = 'areas') {
    const c = requireRecord(collection, path);
    if (c.type !== 'FeatureCollection') throw invalid(`${path}.type`, 'must be "FeatureCollection"');
    const raw = requireArray(c.features, `${path}.features`);
    const features = raw.map((f, i) => {
      const feature = readFeature(f, `${path}.features[${i}]`);
      const id = feature.properties.id;
      if (this.byId.has(id)) {
        throw new CoreError(
          'DUPLICATE_ID',
          `${path}.features[${i}].properties.id`,
          `duplicate area id "${id}"`,
        );
      }
      this.byId.set(id, feature);
      return feature;
    });
    // Parents are checked once every id is known, so a cell may precede its sub-district.
    features.forEach((f, i) => {
      const parent = f.properties.parent;
      if (parent === undefined) {
        this.subDistricts.push(f);
        return;
      }
      const field = `${path}.features[${i}].properties.parent`;
      const p = this.byId.get(parent);
      if (!p) throw invalid(field, `no area with id "${parent}"`);
      if (p.properties.parent !== undefined) {
        throw invalid(field, `"${parent}" is a grid cell, not a sub-district`);
      }
      this.gridCells.push(f);
    });
    const entries = features.map((feature, order) => ({ ...boxOf(feature), order, feature }));
    this.cellTree = new RBush<Entry>().load(entries.filter((e) => e.feature.properties.parent !== undefined));
    this.areaTree = new RBush<Entry>().load(entries.filter((e) => e.feature.properties.parent === undefined));
  }

  /** Grid cell and sub-district of a point; either is absent where no feature covers it. */
  place(p: LonLat): Placement {
    const box = { minX: p[0], minY: p[1], maxX: p[0], maxY: p[1] };
    const cell = firstContaining(this.cellTree.search(box), p);
    if (cell) return { cell: cell.properties.id, area: cell.properties.parent };
    const area = firstContaining(this.areaTree.search(box), p);
    return area ? { area: area.properties.id } : {};
  }

  get(id: string): AreaFeature | undefined {
    return this.byId.get(id);
  }

  /** Sub-districts (features without a parent), in input order. */
  areas(): readonly AreaFeature[] {
    return this.subDistricts;
  }

  /** Grid cells (features with a parent), in input order. */
  cells(): readonly AreaFeature[] {
    return this.gridCells;
  }

  /** Incident types an area owns; a cell without its own list inherits its sub-district's. Unknown id: none. */
  duties(areaId: string): readonly string[] {
    const f = this.byId.get(areaId);
    if (!f) return [];
    if (f.properties.duties) return f.properties.duties;
    const parent = f.properties.parent === undefined ? undefined : this.byId.get(f.properties.parent);
    return parent?.properties.duties ?? [];
  }
}

/** The earliest feature (input order) among the bbox hits whose polygon contains p, boundary included. */
function firstContaining(hits: Entry[], p: LonLat): AreaFeature | undefined {
  if (hits.length > 1) hits.sort((a, b) => a.order - b.order);
  for (const h of hits) if (booleanPointInPolygon(p, h.feature.geometry)) return h.feature;
  return undefined;
}

function readFeature(raw: unknown, path: string): AreaFeature {
  const f = requireRecord(raw, path);
  if (f.type !== 'Feature') throw invalid(`${path}.type`, 'must be "Feature"');
  const props = requireRecord(f.properties, `${path}.properties`);
  const properties: AreaProperties = {
    ...props,
    id: requireString(props.id, `${path}.properties.id`),
    name: requireString(props.name, `${path}.properties.name`),
  };
  if (props.parent === undefined) {
    delete properties.parent;
  } else {
    properties.parent = requireString(props.parent, `${path}.properties.parent`);
  }
  if (props.duties === undefined) {
    delete properties.duties;
  } else {
    const duties = requireArray(props.duties, `${path}.properties.duties`);
    properties.duties = duties.map((d, j) => requireString(d, `${path}.properties.duties[${j}]`));
  }
  return { type: 'Feature', properties, geometry: readGeometry(f.geometry, `${path}.geometry`) };
}

function readGeometry(raw: unknown, path: string): AreaFeature['geometry'] {
  const g = requireRecord(raw, path);
  const coords = requireArray(g.coordinates, `${path}.coordinates`);
  if (g.type === 'Polygon') {
    return { type: 'Polygon', coordinates: readPolygon(coords, `${path}.coordinates`) };
  }
  if (g.type === 'MultiPolygon') {
    if (coords.length === 0) {
      throw invalid(`${path}.coordinates`, 'a MultiPolygon needs at least one polygon');
    }
    return {
      type: 'MultiPolygon',
      coordinates: coords.map((poly, i) =>
        readPolygon(requireArray(poly, `${path}.coordinates[${i}]`), `${path}.coordinates[${i}]`),
      ),
    };
  }
  throw invalid(`${path}.type`, 'must be "Polygon" or "MultiPolygon"');
}

function readPolygon(rings: unknown[], path: string): LonLat[][] {
  if (rings.length === 0) throw invalid(path, 'a polygon needs an outer ring');
  return rings.map((r, i) => readRing(r, `${path}[${i}]`));
}

/** A linear ring: at least four positions, the last repeating the first (GeoJSON, RFC 7946 §3.1.6). */
function readRing(raw: unknown, path: string): LonLat[] {
  const ring = requireArray(raw, path);
  if (ring.length < 4) throw invalid(path, `a ring needs at least 4 positions, got ${ring.length}`);
  const out = ring.map((p, j): LonLat => {
    if (!isPosition(p)) throw invalid(`${path}[${j}]`, 'must be a [lon, lat] position');
    return [p[0], p[1]];
  });
  const first = out[0];
  const last = out[out.length - 1];
  if (first[0] !== last[0] || first[1] !== last[1]) {
    throw invalid(path, 'ring is not closed (last ≠ first position)');
  }
  return out;
}

function boxOf(f: AreaFeature): Box {
  // Outer rings bound the polygon; holes lie inside them.
  const outer =
    f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates.flatMap((p) => p[0]);
  const [minX, minY, maxX, maxY] = bboxOf(outer);
  return { minX, minY, maxX, maxY };
}
