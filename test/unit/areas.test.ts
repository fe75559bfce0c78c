import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AreaIndex } from '../../src/core/areas.ts';
import { CoreError } from '../../src/core/errors.ts';
import { offsetM } from '../../src/core/geo.ts';
import type { LonLat } from '../../src/core/types.ts';

const O: LonLat = [113.45, 23.1];
const at = (e: number, n: number): LonLat => offsetM(O, e, n);
const ring = (x0: number, y0: number, x1: number, y1: number): LonLat[] => [
  at(x0, y0),
  at(x1, y0),
  at(x1, y1),
  at(x0, y1),
  at(x0, y0),
];
const poly = (x0: number, y0: number, x1: number, y1: number) => ({
  type: 'Polygon' as const,
  coordinates: [ring(x0, y0, x1, y1)],
});
function feature(id: string, geometry: unknown, extra: Record<string, unknown> = {}) {
  return { type: 'Feature', properties: { id, name: `name of ${id}`, ...extra }, geometry };
}
const collection = (...features: unknown[]) => ({ type: 'FeatureCollection', features });

function coreError(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CoreError) return e;
    throw e;
  }
  throw new Error('expected a CoreError');
}

// Two sub-districts side by side, 2 km squares. S1 has three 1 km cells (its north-east
// quarter has none); S2 has a cell with a hole and a two-part MultiPolygon cell.
function district() {
  return collection(
    feature('S1-a', poly(0, 0, 1000, 1000), { parent: 'S1' }), // cells may precede their sub-district
    feature('S1', poly(0, 0, 2000, 2000), { duties: ['street-vending', 'illegal-dumping'] }),
    feature('S1-b', poly(1000, 0, 2000, 1000), { parent: 'S1', duties: ['noise-complaint'] }),
    feature('S1-c', poly(0, 1000, 1000, 2000), { parent: 'S1' }),
    feature('S2', poly(2000, 0, 4000, 2000)),
    feature(
      'S2-a',
      { type: 'Polygon', coordinates: [ring(2000, 0, 4000, 1000), ring(2800, 200, 3200, 800).reverse()] },
      { parent: 'S2' },
    ),
    feature(
      'S2-b',
      { type: 'MultiPolygon', coordinates: [[ring(2000, 1000, 2500, 2000)], [ring(3500, 1000, 4000, 2000)]] },
      { parent: 'S2' },
    ),
  );
}

describe('AreaIndex: placement', () => {
  const idx = new AreaIndex(district());

  it('places a point in its cell and the cell’s sub-district', () => {
    expect(idx.place(at(500, 500))).toEqual({ cell: 'S1-a', area: 'S1' });
    expect(idx.place(at(1500, 200))).toEqual({ cell: 'S1-b', area: 'S1' });
    expect(idx.place(at(2100, 100))).toEqual({ cell: 'S2-a', area: 'S2' });
  });

  it('places a point covered by no cell in its sub-district only', () => {
    expect(idx.place(at(1500, 1500))).toEqual({ area: 'S1' });
    expect(idx.place(at(3000, 1500))).toEqual({ area: 'S2' });
  });

  it('respects holes and every part of a MultiPolygon', () => {
    expect(idx.place(at(3000, 500))).toEqual({ area: 'S2' });
    expect(idx.place(at(2250, 1500))).toEqual({ cell: 'S2-b', area: 'S2' });
    expect(idx.place(at(3750, 1500))).toEqual({ cell: 'S2-b', area: 'S2' });
  });

  it('places a point outside every area nowhere', () => {
    expect(idx.place(at(-100, 500))).toEqual({});
    expect(idx.place(at(500, 2500))).toEqual({});
    expect(idx.place([0, 0])).toEqual({});
  });

  it('breaks ties on a shared edge by input order', () => {
    expect(idx.place(at(1000, 500))).toEqual({ cell: 'S1-a', area: 'S1' });
    expect(idx.place(at(500, 1000))).toEqual({ cell: 'S1-a', area: 'S1' });
  });

  it('lists sub-districts and cells and looks features up', () => {
    expect(idx.areas().map((f) => f.properties.id)).toEqual(['S1', 'S2']);
    expect(idx.cells().map((f) => f.properties.id)).toEqual(['S1-a', 'S1-b', 'S1-c', 'S2-a', 'S2-b']);
    expect(idx.get('S1-b')?.properties.parent).toBe('S1');
    expect(idx.get('nope')).toBeUndefined();
  });

  it('gives duties, a cell inheriting its sub-district’s', () => {
    expect(idx.duties('S1')).toEqual(['street-vending', 'illegal-dumping']);
    expect(idx.duties('S1-a')).toEqual(['street-vending', 'illegal-dumping']);
    expect(idx.duties('S1-b')).toEqual(['noise-complaint']);
    expect(idx.duties('S2')).toEqual([]);
    expect(idx.duties('S2-a')).toEqual([]);
    expect(idx.duties('nope')).toEqual([]);
  });

  it('copies its input, dropping altitudes and keeping extra properties', () => {
    const input = collection(
      feature(
        'A',
        {
          type: 'Polygon',
          coordinates: [
            [
              [113, 23, 5],
              [113.01, 23, 5],
              [113.01, 23.01, 5],
              [113, 23, 5],
            ],
          ],
        },
        { colour: 'red' },
      ),
    );
    const before = structuredClone(input);
    const a = new AreaIndex(input);
    expect(input).toEqual(before);
    const f = a.get('A')!;
    expect(f.properties.colour).toBe('red');
    expect(f.geometry.coordinates[0][0]).toEqual([113, 23]);
    expect(a.place([113.008, 23.002])).toEqual({ area: 'A' });
  });

  it('accepts an empty collection', () => {
    const a = new AreaIndex(collection());
    expect(a.place(O)).toEqual({});
    expect(a.areas()).toEqual([]);
  });
});

describe('AreaIndex: validation', () => {
  const s = feature('S', poly(0, 0, 100, 100));

  it('names the offending field', () => {
    const open = ring(0, 0, 10, 10).slice(0, 4);
    const cases: [unknown, string, string][] = [
      [null, 'areas', 'INVALID_FIELD'],
      [{ type: 'Feature', features: [] }, 'areas.type', 'INVALID_FIELD'],
      [{ type: 'FeatureCollection' }, 'areas.features', 'INVALID_FIELD'],
      [collection(s, 5), 'areas.features[1]', 'INVALID_FIELD'],
      [collection({ ...s, type: 'feature' }), 'areas.features[0].type', 'INVALID_FIELD'],
      [collection(feature('', poly(0, 0, 1, 1))), 'areas.features[0].properties.id', 'INVALID_FIELD'],
      [
        collection(feature(7 as unknown as string, poly(0, 0, 1, 1))),
        'areas.features[0].properties.id',
        'INVALID_FIELD',
      ],
      [collection(s, feature('S', poly(0, 0, 1, 1))), 'areas.features[1].properties.id', 'DUPLICATE_ID'],
      [
        collection(feature('X', poly(0, 0, 1, 1), { name: undefined })),
        'areas.features[0].properties.name',
        'INVALID_FIELD',
      ],
      [
        collection(s, feature('C', poly(0, 0, 1, 1)), feature('D', poly(0, 0, 1, 1), { parent: 'T' })),
        'areas.features[2].properties.parent',
        'INVALID_FIELD',
      ],
      [
        collection(
          s,
          feature('C', poly(0, 0, 1, 1), { parent: 'S' }),
          feature('D', poly(0, 0, 1, 1), { parent: 'C' }),
        ),
        'areas.features[2].properties.parent',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', poly(0, 0, 1, 1), { parent: 'C' })),
        'areas.features[0].properties.parent',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', poly(0, 0, 1, 1), { parent: '' })),
        'areas.features[0].properties.parent',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', poly(0, 0, 1, 1), { duties: 'noise' })),
        'areas.features[0].properties.duties',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', poly(0, 0, 1, 1), { duties: ['noise', 3] })),
        'areas.features[0].properties.duties[1]',
        'INVALID_FIELD',
      ],
      [collection(feature('C', null)), 'areas.features[0].geometry', 'INVALID_FIELD'],
      [
        collection(feature('C', { type: 'LineString', coordinates: [] })),
        'areas.features[0].geometry.type',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'Polygon', coordinates: [] })),
        'areas.features[0].geometry.coordinates',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'Polygon', coordinates: [open] })),
        'areas.features[0].geometry.coordinates[0]',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'Polygon', coordinates: [open.slice(0, 3)] })),
        'areas.features[0].geometry.coordinates[0]',
        'INVALID_FIELD',
      ],
      [
        collection(
          feature('C', { type: 'Polygon', coordinates: [[...open.slice(0, 2), [0, 95], open[3], open[0]]] }),
        ),
        'areas.features[0].geometry.coordinates[0][2]',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'MultiPolygon', coordinates: [] })),
        'areas.features[0].geometry.coordinates',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'MultiPolygon', coordinates: [[ring(0, 0, 1, 1)], 'x'] })),
        'areas.features[0].geometry.coordinates[1]',
        'INVALID_FIELD',
      ],
      [
        collection(feature('C', { type: 'MultiPolygon', coordinates: [[ring(0, 0, 1, 1), open]] })),
        'areas.features[0].geometry.coordinates[0][1]',
        'INVALID_FIELD',
      ],
    ];
    for (const [input, field, code] of cases) {
      const e = coreError(() => new AreaIndex(input));
      expect({ field: e.field, code: e.code }).toEqual({ field, code });
    }
  });

  it('uses the given path prefix', () => {
    expect(coreError(() => new AreaIndex(collection(5), 'scenario.areas')).field).toBe(
      'scenario.areas.features[0]',
    );
  });

  it('throws only CoreError, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (x, y) => {
        for (const input of [
          x,
          collection(x),
          collection(feature('A', x)),
          collection(feature('A', poly(0, 0, 1, 1), { parent: x, duties: y })),
        ]) {
          try {
            new AreaIndex(input);
          } catch (e) {
            expect(e).toBeInstanceOf(CoreError);
          }
        }
      }),
    );
  });
});

describe('AreaIndex: scale', () => {
  it('places 10 000 points among 5000 cells correctly and fast', () => {
    // 100 × 50 cells of 100 m; five sub-districts of 20 columns each.
    const features: unknown[] = [];
    for (let k = 0; k < 5; k++) features.push(feature(`T${k}`, poly(k * 2000, 0, (k + 1) * 2000, 5000)));
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < 50; j++) {
        features.push(
          feature(`c${i}-${j}`, poly(i * 100, j * 100, (i + 1) * 100, (j + 1) * 100), {
            parent: `T${Math.floor(i / 20)}`,
          }),
        );
      }
    }
    const t0 = performance.now();
    const idx = new AreaIndex(collection(...features));
    const t1 = performance.now();
    expect(idx.cells()).toHaveLength(5000);
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 10_000; n++) {
      const i = Math.floor(rnd() * 100);
      const j = Math.floor(rnd() * 50);
      const p = at(i * 100 + 1 + rnd() * 98, j * 100 + 1 + rnd() * 98);
      const got = idx.place(p);
      if (got.cell !== `c${i}-${j}` || got.area !== `T${Math.floor(i / 20)}`) {
        expect(got).toEqual({ cell: `c${i}-${j}`, area: `T${Math.floor(i / 20)}` });
      }
    }
    const t2 = performance.now();
    expect(t1 - t0).toBeLessThan(5000);
    expect(t2 - t1).toBeLessThan(5000);
  });
});
