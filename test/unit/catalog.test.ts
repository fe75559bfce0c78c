import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog, defaultCatalog } from '../../src/core/catalog.ts';
import { CoreError } from '../../src/core/errors.ts';

function coreError(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CoreError) return e;
    throw e;
  }
  throw new Error('expected a CoreError');
}

const fire = {
  type: 'structure-fire',
  priority: 1,
  immediate: true,
  targetS: 480,
  requires: { 'fire-engine': 2 },
  onSceneS: 1800,
};
const vending = {
  type: 'street-vending',
  priority: 4,
  immediate: false,
  targetS: 3600,
  requires: { chengguan: 1 },
  onSceneS: 1200,
  label: '占道经营 / Street vending',
  allOrNothing: false,
};

describe('buildCatalog', () => {
  it('indexes entries by type and lists immediate types in order', () => {
    const c = buildCatalog([vending, fire]);
    expect(c.list.map((t) => t.type)).toEqual(['street-vending', 'structure-fire']);
    expect(c.get('structure-fire')).toEqual(fire);
    expect(c.get('street-vending')).toEqual(vending);
    expect(c.get('nope')).toBeUndefined();
    expect(c.get('toString')).toBeUndefined();
    expect(c.get('__proto__')).toBeUndefined();
    expect(c.immediateTypes).toEqual(['structure-fire']);
  });

  it('returns copies holding only known fields', () => {
    const input = [{ ...fire, extra: 'dropped', requires: { 'fire-engine': 2 } }];
    const before = structuredClone(input);
    const c = buildCatalog(input);
    expect(input).toEqual(before);
    expect(c.get('structure-fire')).toEqual(fire);
    expect(c.get('structure-fire')!.requires).not.toBe(input[0].requires);
  });

  it('keeps a capability whatever its name', () => {
    const c = buildCatalog([{ ...fire, requires: JSON.parse('{"__proto__": 2, "constructor": 1}') }]);
    expect(Object.keys(c.get('structure-fire')!.requires)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(c.get('structure-fire')!.requires, '__proto__')?.value).toBe(2);
  });

  it('refuses an empty catalogue', () => {
    const e = coreError(() => buildCatalog([]));
    expect([e.code, e.field]).toEqual(['EMPTY_CATALOG', 'catalog']);
    expect(coreError(() => buildCatalog([], 'scenario.catalog')).field).toBe('scenario.catalog');
  });

  it('refuses a duplicate type', () => {
    const e = coreError(() => buildCatalog([fire, vending, { ...fire }]));
    expect([e.code, e.field]).toEqual(['DUPLICATE_ID', 'catalog[2].type']);
  });

  it('names the first wrong field', () => {
    const cases: [unknown, string][] = [
      [{}, 'catalog'],
      ['fire', 'catalog'],
      [[null], 'catalog[0]'],
      [[fire, { ...vending, type: '' }], 'catalog[1].type'],
      [[{ ...fire, type: 3 }], 'catalog[0].type'],
      [[{ ...fire, priority: 0 }], 'catalog[0].priority'],
      [[{ ...fire, priority: 5 }], 'catalog[0].priority'],
      [[{ ...fire, priority: 1.5 }], 'catalog[0].priority'],
      [[{ ...fire, priority: '1' }], 'catalog[0].priority'],
      [[{ ...fire, immediate: 'yes' }], 'catalog[0].immediate'],
      [[{ ...fire, immediate: undefined }], 'catalog[0].immediate'],
      [[{ ...fire, targetS: 0 }], 'catalog[0].targetS'],
      [[{ ...fire, targetS: Number.NaN }], 'catalog[0].targetS'],
      [[{ ...fire, targetS: Number.POSITIVE_INFINITY }], 'catalog[0].targetS'],
      [[{ ...fire, requires: {} }], 'catalog[0].requires'],
      [[{ ...fire, requires: [] }], 'catalog[0].requires'],
      [[{ ...fire, requires: null }], 'catalog[0].requires'],
      [[{ ...fire, requires: { ' ': 1 } }], 'catalog[0].requires'],
      [[{ ...fire, requires: { police: 0 } }], 'catalog[0].requires.police'],
      [[{ ...fire, requires: { police: 1.5 } }], 'catalog[0].requires.police'],
      [[{ ...fire, requires: { police: -1 } }], 'catalog[0].requires.police'],
      [[{ ...fire, requires: { police: '1' } }], 'catalog[0].requires.police'],
      [[{ ...fire, onSceneS: -1 }], 'catalog[0].onSceneS'],
      [[{ ...fire, onSceneS: Number.NaN }], 'catalog[0].onSceneS'],
      [[{ ...fire, allOrNothing: 'true' }], 'catalog[0].allOrNothing'],
      [[{ ...fire, label: 5 }], 'catalog[0].label'],
    ];
    for (const [input, field] of cases) {
      const e = coreError(() => buildCatalog(input));
      expect({ code: e.code, field: e.field }).toEqual({ code: 'INVALID_FIELD', field });
    }
  });

  it('accepts an on-scene time of zero and an empty label', () => {
    expect(buildCatalog([{ ...fire, onSceneS: 0, label: '' }]).get('structure-fire')!.onSceneS).toBe(0);
  });

  it('throws only CoreError, whatever the input', () => {
    const entry = fc.record(
      {
        type: fc.oneof(fc.string(), fc.constantFrom('a', 'b')),
        priority: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.anything()),
        immediate: fc.oneof(fc.boolean(), fc.anything()),
        targetS: fc.oneof(fc.double(), fc.anything()),
        requires: fc.oneof(
          fc.dictionary(fc.string(), fc.oneof(fc.integer({ min: -1, max: 3 }), fc.anything())),
          fc.anything(),
        ),
        onSceneS: fc.oneof(fc.double(), fc.anything()),
        allOrNothing: fc.anything(),
        label: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.array(entry), fc.array(fc.anything())), (x) => {
        try {
          const c = buildCatalog(x);
          expect(c.list.length).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toBeInstanceOf(CoreError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('defaultCatalog', () => {
  const c = defaultCatalog();

  it('covers the district’s main incident types', () => {
    for (const t of [
      'structure-fire',
      'high-rise-fire',
      'traffic-collision-injury',
      'medical-emergency',
      'public-security-fight',
      'gas-leak',
      'hazmat-spill',
      'traffic-obstruction',
      'illegal-construction',
      'joint-enforcement',
      'street-vending',
      'food-safety',
      'pollution-complaint',
      'noise-complaint',
      'illegal-dumping',
    ]) {
      expect(c.get(t), t).toBeDefined();
    }
    expect(c.list.length).toBeGreaterThanOrEqual(15);
  });

  it('has plausible targets, bilingual labels and an all-or-nothing joint force', () => {
    for (const t of c.list) {
      expect(t.label, t.type).toMatch(/^\S.* \/ [A-Z].*$/);
      if (t.immediate) {
        expect(t.targetS, t.type).toBeGreaterThanOrEqual(300);
        expect(t.targetS, t.type).toBeLessThanOrEqual(900);
      } else {
        expect(t.targetS, t.type).toBeGreaterThanOrEqual(1800);
        expect(t.targetS, t.type).toBeLessThanOrEqual(14_400);
      }
      expect(t.onSceneS).toBeGreaterThan(0);
    }
    expect(c.get('structure-fire')).toMatchObject({
      priority: 1,
      immediate: true,
      targetS: 480,
      requires: { 'fire-engine': 2 },
    });
    expect(c.get('high-rise-fire')!.requires).toEqual({ 'fire-engine': 3, ladder: 1, police: 1 });
    expect(c.get('joint-enforcement')).toMatchObject({
      allOrNothing: true,
      immediate: false,
      requires: { chengguan: 1, legal: 1, police: 1 },
    });
    expect(c.immediateTypes).toContain('medical-emergency');
    expect(c.immediateTypes).not.toContain('street-vending');
  });

  it('returns a fresh catalogue each time', () => {
    const a = defaultCatalog();
    (a.get('structure-fire')!.requires as Record<string, number>)['fire-engine'] = 9;
    expect(defaultCatalog().get('structure-fire')!.requires['fire-engine']).toBe(2);
  });
});
