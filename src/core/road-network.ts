// Travel times by shortest paths on a road network (GeoJSON LineStrings with speeds).
//
// The trip from A to B is the faster of two ways:
//   • off-network: straight to B at the access speed, i.e. great-circle × detour factor at
//     min(unit speed, accessSpeedKmh) — yards, alleys, campuses the network does not hold;
//   • on-network: an off-network access leg (same rule) from A to the graph vertex nearest A,
//     the shortest path on the graph to the vertex nearest B, each edge driven at
//     min(edge speed, unit speed), and an access leg from there to B.
// The off-network option keeps short trips sane (two points 20 m apart that both snap to a
// junction 500 m away are not 1 km apart). When A and B snap to vertices in different
// connected components the network says nothing about the trip (the data is incomplete), so
// the default model answers: great-circle × detour factor at the unit's speed.
// Long segments are split every `maxSegmentM` so the nearest vertex is close to the nearest
// point of the road, without projecting onto segments on every query.

import { around } from 'geokdbush';
import KDBush from 'kdbush';
import { haversineM, isPosition } from './geo.ts';
import type { TravelTimes } from './ports.ts';
import { checkDetourFactor, DEFAULT_DETOUR_FACTOR, kmhToMs } from './travel.ts';
import type { LonLat } from './types.ts';
import { invalid, MAX_SPEED_KMH, requireArray, requireNumber, requireRecord } from './validate.ts';

export interface RoadNetworkOptions {
  /** Detour factor of off-network legs and of the fallback; default 1.3. */
  detourFactor?: number;
  /** Top speed off the network, km/h; default 15. */
  accessSpeedKmh?: number;
  /** Longest graph edge before it is split, metres; default 100. */
  maxSegmentM?: number;
  /** Single-source results kept (LRU); default 256, lowered on very large graphs to bound memory. */
  cacheSize?: number;
  /** Path of the roads in error messages; default `travel.roads`. */
  path?: string;
}

export const DEFAULT_ACCESS_SPEED_KMH = 15;
const DEFAULT_MAX_SEGMENT_M = 100;
const DEFAULT_CACHE_SIZE = 256;
/** Line coordinates closer than this become one vertex, so lines sharing endpoints connect. */
export const MERGE_M = 1;
/** Cached distances across all entries (8 bytes each): about 32 MB. */
const CACHE_BUDGET = 4_000_000;
/** Memoised snaps before the memo is emptied. */
const SNAP_CACHE_SIZE = 100_000;
/** Grid cell of the merge index, degrees (≈1.1 m of latitude). */
const CELL_DEG = 1e-5;
/** Relative shave of the lower bound, covering rounding in summed edge lengths (see lowerBoundS). */
const LB_SHAVE = 1 - 1e-9;

export class RoadNetworkTravel implements TravelTimes {
  readonly name = 'road-network';
  readonly detourFactor: number;
  readonly accessSpeedKmh: number;
  /** Fastest edge speed of the network, km/h. */
  readonly maxRoadSpeedKmh: number;
  readonly vertexCount: number;
  /** Directed edges (each road segment counts twice). */
  readonly edgeCount: number;
  /** Connected components of the graph. */
  readonly components: number;

  private readonly lon: Float64Array;
  private readonly lat: Float64Array;
  private readonly comp: Int32Array;
  /** CSR adjacency: edges of vertex v are firstEdge[v] .. firstEdge[v+1]-1. */
  private readonly firstEdge: Int32Array;
  private readonly edgeTo: Int32Array;
  private readonly edgeLenM: Float64Array;
  private readonly edgeKmh: Float64Array;
  private readonly index: KDBush;
  private readonly cache = new Map<string, Float64Array>();
  private readonly cacheSize: number;
  /** Nearest vertex by longitude, then latitude (number keys: no string building per query). */
  private readonly snaps = new Map<number, Map<number, number>>();
  private snapCount = 0;

  constructor(roads: unknown, options: RoadNetworkOptions = {}) {
    const path = options.path ?? 'travel.roads';
    this.detourFactor = checkDetourFactor(options.detourFactor ?? DEFAULT_DETOUR_FACTOR);
    this.accessSpeedKmh = positive(
      options.accessSpeedKmh ?? DEFAULT_ACCESS_SPEED_KMH,
      'travel.accessSpeedKmh',
    );
    const maxSegmentM = positive(options.maxSegmentM ?? DEFAULT_MAX_SEGMENT_M, 'travel.maxSegmentM');
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    if (!Number.isInteger(cacheSize) || cacheSize < 1) {
      throw invalid('travel.cacheSize', 'must be an integer ≥ 1');
    }

    const b = new GraphBuilder(maxSegmentM);
    const features = requireArray(requireRecord(roads, path).features, `${path}.features`);
    if (features.length === 0) throw invalid(`${path}.features`, 'a road network needs at least one road');
    features.forEach((f, i) => {
      b.addLine(readRoad(f, `${path}.features[${i}]`));
    });

    const n = b.lon.length;
    this.vertexCount = n;
    this.lon = Float64Array.from(b.lon);
    this.lat = Float64Array.from(b.lat);
    this.maxRoadSpeedKmh = b.maxKmh;

    // Compressed adjacency: one pass to count, one to fill.
    const m = b.from.length;
    this.edgeCount = 2 * m;
    this.firstEdge = new Int32Array(n + 1);
    for (let e = 0; e < m; e++) {
      this.firstEdge[b.from[e] + 1]++;
      this.firstEdge[b.to[e] + 1]++;
    }
    for (let v = 0; v < n; v++) this.firstEdge[v + 1] += this.firstEdge[v];
    const fill = this.firstEdge.slice(0, n);
    this.edgeTo = new Int32Array(2 * m);
    this.edgeLenM = new Float64Array(2 * m);
    this.edgeKmh = new Float64Array(2 * m);
    for (let e = 0; e < m; e++) {
      const u = b.from[e];
      const v = b.to[e];
      const len = haversineM([this.lon[u], this.lat[u]], [this.lon[v], this.lat[v]]);
      for (const [x, y] of [
        [u, v],
        [v, u],
      ]) {
        const k = fill[x]++;
        this.edgeTo[k] = y;
        this.edgeLenM[k] = len;
        this.edgeKmh[k] = b.kmh[e];
      }
    }

    [this.comp, this.components] = this.labelComponents();

    this.index = new KDBush(n);
    for (let v = 0; v < n; v++) this.index.add(this.lon[v], this.lat[v]);
    this.index.finish();
    this.cacheSize = Math.max(1, Math.min(cacheSize, Math.floor(CACHE_BUDGET / n)));
  }

  travelS(from: LonLat, to: LonLat, speedKmh: number): number {
    const f = this.detourFactor;
    const s = this.nearest(from);
    const t = this.nearest(to);
    const directM = haversineM(from, to);
    if (this.comp[s] !== this.comp[t]) return (directM * f) / kmhToMs(speedKmh);
    const access = kmhToMs(Math.min(speedKmh, this.accessSpeedKmh));
    const offNetworkS = (directM * f) / access;
    const legsM = haversineM(from, this.vertex(s)) + haversineM(to, this.vertex(t));
    const onNetworkS = (legsM * f) / access + this.roadS(s, t, speedKmh);
    return Math.min(offNetworkS, onNetworkS);
  }

  /**
   * Admissible: for any A, B with great-circle distance d, travelS(A, B, v) ≥ this bound.
   * Let vmax = min(v, max(maxRoadSpeed, accessSpeed)) and f ≥ 1 the detour factor.
   *  • On-network: an access leg of length a takes a·f / min(v, access) ≥ a / vmax; the road
   *    path s → t takes Σ ℓᵢ / min(sᵢ, v) ≥ Σ ℓᵢ / vmax ≥ gc(s, t) / vmax, because edge lengths
   *    are great-circle distances between vertices and gc is a metric (triangle inequality).
   *    So the sum ≥ (gc(A, s) + gc(s, t) + gc(t, B)) / vmax ≥ gc(A, B) / vmax = d / vmax.
   *  • Off-network: d·f / min(v, access) ≥ d / vmax.
   *  • Fallback (only with more than one component): d·f / v.
   * The bound is the least of these, shaved by 1e-9 relative so that rounding in summed edge
   * lengths (the triangle inequality holds exactly only in real arithmetic) cannot lift it
   * above a computed travel time.
   */
  lowerBoundS(distanceM: number, speedKmh: number): number {
    const vmax = kmhToMs(Math.min(speedKmh, Math.max(this.maxRoadSpeedKmh, this.accessSpeedKmh)));
    let lb = distanceM / vmax;
    if (this.components > 1) lb = Math.min(lb, (distanceM * this.detourFactor) / kmhToMs(speedKmh));
    return lb * LB_SHAVE;
  }

  /** Position of the graph vertex nearest `p` (the point a trip joins the network). */
  snap(p: LonLat): LonLat {
    return this.vertex(this.nearest(p));
  }

  private vertex(v: number): LonLat {
    return [this.lon[v], this.lat[v]];
  }

  /** Nearest vertex, memoised: unit posts and incident locations recur across many queries. */
  private nearest(p: LonLat): number {
    let byLat = this.snaps.get(p[0]);
    const hit = byLat?.get(p[1]);
    if (hit !== undefined) return hit;
    const v = around(this.index, p[0], p[1], 1)[0];
    // Bounded by dropping everything at once: cheap, and the working set refills quickly.
    if (this.snapCount >= SNAP_CACHE_SIZE) {
      this.snaps.clear();
      this.snapCount = 0;
      byLat = undefined;
    }
    if (!byLat) {
      byLat = new Map();
      this.snaps.set(p[0], byLat);
    }
    byLat.set(p[1], v);
    this.snapCount++;
    return v;
  }

  /**
   * Road seconds between two vertices of one component, always from the source's own tree:
   * reading the target's tree (the graph is undirected) would make the last bits of an answer
   * depend on what happens to be cached, and replays must not.
   */
  private roadS(s: number, t: number, speedKmh: number): number {
    return s === t ? 0 : this.tree(s, speedKmh)[t];
  }

  /** Single-source shortest times from s at a unit speed, through a bounded LRU cache. */
  private tree(s: number, speedKmh: number): Float64Array {
    const key = `${s}:${speedKmh}`;
    const hit = this.cache.get(key);
    if (hit) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const dist = this.dijkstra(s, speedKmh);
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, dist);
    return dist;
  }

  private dijkstra(s: number, speedKmh: number): Float64Array {
    const dist = new Float64Array(this.vertexCount).fill(Infinity);
    const heap = new MinHeap();
    dist[s] = 0;
    heap.push(s, 0);
    while (heap.size > 0) {
      const d = heap.topKey();
      const u = heap.pop();
      if (d > dist[u]) continue; // stale entry: u was settled with a shorter time
      for (let k = this.firstEdge[u]; k < this.firstEdge[u + 1]; k++) {
        const w = this.edgeTo[k];
        const nd = d + this.edgeLenM[k] / kmhToMs(Math.min(this.edgeKmh[k], speedKmh));
        if (nd < dist[w]) {
          dist[w] = nd;
          heap.push(w, nd);
        }
      }
    }
    return dist;
  }

  private labelComponents(): [Int32Array, number] {
    const comp = new Int32Array(this.vertexCount).fill(-1);
    const stack: number[] = [];
    let count = 0;
    for (let root = 0; root < this.vertexCount; root++) {
      if (comp[root] !== -1) continue;
      comp[root] = count;
      stack.push(root);
      while (stack.length > 0) {
        const u = stack.pop()!;
        for (let k = this.firstEdge[u]; k < this.firstEdge[u + 1]; k++) {
          const w = this.edgeTo[k];
          if (comp[w] === -1) {
            comp[w] = count;
            stack.push(w);
          }
        }
      }
      count++;
    }
    return [comp, count];
  }
}

interface Road {
  coords: LonLat[];
  kmh: number;
}

function readRoad(raw: unknown, path: string): Road {
  const f = requireRecord(raw, path);
  const props = requireRecord(f.properties, `${path}.properties`);
  const kmh = requireNumber(props.speedKmh, `${path}.properties.speedKmh`);
  if (!(kmh > 0 && kmh <= MAX_SPEED_KMH)) {
    throw invalid(`${path}.properties.speedKmh`, `must be > 0 and ≤ ${MAX_SPEED_KMH} km/h, got ${kmh}`);
  }
  const geom = requireRecord(f.geometry, `${path}.geometry`);
  if (geom.type !== 'LineString') throw invalid(`${path}.geometry.type`, 'must be "LineString"');
  const coords = requireArray(geom.coordinates, `${path}.geometry.coordinates`);
  if (coords.length < 2) {
    throw invalid(`${path}.geometry.coordinates`, 'a LineString needs at least two positions');
  }
  return {
    kmh,
    coords: coords.map((c, j) => {
      if (!isPosition(c)) {
        throw invalid(`${path}.geometry.coordinates[${j}]`, 'must be a [lon, lat] position');
      }
      return [c[0], c[1]];
    }),
  };
}

function positive(x: unknown, field: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) {
    throw invalid(field, 'must be a finite number > 0');
  }
  return x;
}

/** Collects vertices (merging line coordinates within MERGE_M) and undirected edges. */
class GraphBuilder {
  readonly lon: number[] = [];
  readonly lat: number[] = [];
  readonly from: number[] = [];
  readonly to: number[] = [];
  readonly kmh: number[] = [];
  maxKmh = 0;
  private readonly grid = new Map<string, number[]>();

  constructor(private readonly maxSegmentM: number) {}

  addLine(road: Road): void {
    this.maxKmh = Math.max(this.maxKmh, road.kmh);
    let prev = this.junction(road.coords[0]);
    for (let j = 1; j < road.coords.length; j++) {
      const next = this.junction(road.coords[j]);
      if (next === prev) continue;
      // Split long segments with plain vertices (not junctions: they never merge with other lines).
      const a: LonLat = [this.lon[prev], this.lat[prev]];
      const b: LonLat = [this.lon[next], this.lat[next]];
      const pieces = Math.ceil(haversineM(a, b) / this.maxSegmentM);
      let last = prev;
      for (let k = 1; k < pieces; k++) {
        const r = k / pieces;
        const mid = this.addVertex(a[0] + (b[0] - a[0]) * r, a[1] + (b[1] - a[1]) * r);
        this.addEdge(last, mid, road.kmh);
        last = mid;
      }
      this.addEdge(last, next, road.kmh);
      prev = next;
    }
  }

  /** The vertex within MERGE_M of p, or a new one registered in the merge grid. */
  private junction(p: LonLat): number {
    const gx = Math.floor(p[0] / CELL_DEG);
    const gy = Math.floor(p[1] / CELL_DEG);
    // A cell is ≈1.1 m tall but only ≈1.1·cos(lat) m wide: look further east and west away from the equator.
    const cos = Math.cos((p[1] * Math.PI) / 180);
    const span = Math.min(64, Math.ceil(1 / Math.max(cos, 1e-3)));
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -span; dx <= span; dx++) {
        const cell = this.grid.get(`${gx + dx}:${gy + dy}`);
        if (!cell) continue;
        for (const v of cell) if (haversineM(p, [this.lon[v], this.lat[v]]) <= MERGE_M) return v;
      }
    }
    const v = this.addVertex(p[0], p[1]);
    const key = `${gx}:${gy}`;
    const cell = this.grid.get(key);
    if (cell) cell.push(v);
    else this.grid.set(key, [v]);
    return v;
  }

  private addVertex(lon: number, lat: number): number {
    this.lon.push(lon);
    this.lat.push(lat);
    return this.lon.length - 1;
  }

  private addEdge(u: number, v: number, kmh: number): void {
    this.from.push(u);
    this.to.push(v);
    this.kmh.push(kmh);
  }
}

/** Binary min-heap of (vertex, key) pairs in parallel arrays; duplicates allowed (lazy deletion). */
class MinHeap {
  private readonly ids: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  topKey(): number {
    return this.keys[0];
  }

  push(id: number, key: number): void {
    const ids = this.ids;
    const keys = this.keys;
    let i = ids.length;
    ids.push(id);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      ids[i] = ids[parent];
      keys[i] = keys[parent];
      i = parent;
    }
    ids[i] = id;
    keys[i] = key;
  }

  pop(): number {
    const ids = this.ids;
    const keys = this.keys;
    const top = ids[0];
    const lastId = ids.pop()!;
    const lastKey = keys.pop()!;
    const n = ids.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && keys[c + 1] < keys[c]) c++;
        if (keys[c] >= lastKey) break;
        ids[i] = ids[c];
        keys[i] = keys[c];
        i = c;
      }
      ids[i] = lastId;
      keys[i] = lastKey;
    }
    return top;
  }
}
