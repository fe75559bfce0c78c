// The incident-type catalogue: what each type needs, how urgent it is, how long it lasts.
// It is configuration, so every entry is checked and copied before the core relies on it.

import defaultEntries from './default-catalog.json' with { type: 'json' };
import { CoreError } from './errors.ts';
import type { IncidentType } from './types.ts';
import {
  describe,
  invalid,
  requireArray,
  requireBoolean,
  requireNumber,
  requirePriority,
  requireRecord,
  requireString,
} from './validate.ts';

export interface CatalogIndex {
  /** Entries in catalogue order. */
  readonly list: readonly IncidentType[];
  get(type: string): IncidentType | undefined;
  /** Types on the immediate-response list, in catalogue order. */
  readonly immediateTypes: readonly string[];
}

export function buildCatalog(entries: unknown, path = 'catalog'): CatalogIndex {
  const raw = requireArray(entries, path);
  if (raw.length === 0) throw new CoreError('EMPTY_CATALOG', path, 'the catalogue lists no incident types');
  const byType = new Map<string, IncidentType>();
  const list = raw.map((e, i) => {
    const entry = validateEntry(e, `${path}[${i}]`);
    if (byType.has(entry.type)) {
      throw new CoreError('DUPLICATE_ID', `${path}[${i}].type`, `duplicate incident type "${entry.type}"`);
    }
    byType.set(entry.type, entry);
    return entry;
  });
  const immediateTypes = list.filter((t) => t.immediate).map((t) => t.type);
  return new Catalog(list, immediateTypes, byType);
}

/** A method on a class, not a closure per catalogue: hot call sites see one function. */
class Catalog implements CatalogIndex {
  constructor(
    readonly list: readonly IncidentType[],
    readonly immediateTypes: readonly string[],
    private readonly byType: Map<string, IncidentType>,
  ) {}

  get(type: string): IncidentType | undefined {
    return this.byType.get(type);
  }
}

function validateEntry(raw: unknown, path: string): IncidentType {
  const o = requireRecord(raw, path);
  const type = requireString(o.type, `${path}.type`);
  const priority = requirePriority(o.priority, `${path}.priority`);
  const immediate = requireBoolean(o.immediate, `${path}.immediate`);
  const targetS = requireNumber(o.targetS, `${path}.targetS`);
  if (targetS <= 0) throw invalid(`${path}.targetS`, `must be > 0 seconds, got ${targetS}`);
  const requires = validateRequires(o.requires, `${path}.requires`);
  const onSceneS = requireNumber(o.onSceneS, `${path}.onSceneS`);
  if (onSceneS < 0) throw invalid(`${path}.onSceneS`, `must be ≥ 0 seconds, got ${onSceneS}`);

  const entry: IncidentType = { type, priority, immediate, targetS, requires, onSceneS };
  if (o.allOrNothing !== undefined) {
    entry.allOrNothing = requireBoolean(o.allOrNothing, `${path}.allOrNothing`);
  }
  if (o.label !== undefined) {
    if (typeof o.label !== 'string') {
      throw invalid(`${path}.label`, `must be a string, got ${describe(o.label)}`);
    }
    entry.label = o.label;
  }
  return entry;
}

function validateRequires(raw: unknown, path: string): Record<string, number> {
  const o = requireRecord(raw, path);
  const keys = Object.keys(o);
  if (keys.length === 0) throw invalid(path, 'must name at least one capability');
  const out: [string, number][] = [];
  for (const cap of keys) {
    if (cap.trim() === '') throw invalid(path, 'capability names must not be blank');
    const n = o[cap];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      throw invalid(`${path}.${cap}`, `must be a positive integer count, got ${describe(n)}`);
    }
    out.push([cap, n]);
  }
  // fromEntries defines own properties, so even a capability named "__proto__" survives.
  return Object.fromEntries(out);
}

/** The built-in catalogue, modelled on a Chinese urban district (Guangzhou Huangpu). */
export function defaultCatalog(): CatalogIndex {
  return buildCatalog(defaultEntries, 'default-catalog');
}
