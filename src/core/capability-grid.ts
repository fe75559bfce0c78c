// The storage behind the capability index: for one capability and pool, its member columns
// on a uniform lon/lat grid held in typed arrays (cells in counting-sort order, members of a
// cell in column order), with the fastest speed and shortest turnout of the group.

import { EARTH_RADIUS_M } from './geo.ts';
import type { Column } from './model.ts';

const RAD = Math.PI / 180;

/** Members per grid cell on average (one measured fastest for the searches). */
const PER_CELL = 1;

/** Per-slot fields of CapGroup.slot: position and unit vector on the sphere. */
export const S_LON = 0;
export const S_LAT = 1;
export const S_VX = 2;
export const S_VY = 3;
export const S_VZ = 4;
export const SLOT_FIELDS = 5;
/** Per-member fields of CapGroup.member: the parts of the exact haversine, speed, turnout, unit vector. */
export const M_LON = 0;
export const M_LAT_RAD = 1;
export const M_COS_LAT = 2;
export const M_SPEED = 3;
export const M_TURNOUT = 4;
export const M_VX = 5;
export const M_VY = 6;
export const M_VZ = 7;
export const MEMBER_FIELDS = 8;

/**
 * Per column (by column index), COLUMN_FIELDS numbers: lon, lat, cos(lat), the unit vector,
 * speed and turnout; read once per column and shared by the groups it belongs to.
 */
const COLUMN_FIELDS = 8;

/** sin and cos of a small angle (|d| ≤ SMALL_ANGLE) by their Taylor series: exact to rounding. */
const SMALL_ANGLE = 0.1;
function sinSmall(d: number): number {
  const d2 = d * d;
  return (
    d * (1 + d2 * (-1 / 6 + d2 * (1 / 120 + d2 * (-1 / 5040 + d2 * (1 / 362880 + d2 * (-1 / 39916800))))))
  );
}
function cosSmall(d: number): number {
  const d2 = d * d;
  return (
    1 +
    d2 * (-1 / 2 + d2 * (1 / 24 + d2 * (-1 / 720 + d2 * (1 / 40320 + d2 * (-1 / 3628800 + d2 / 479001600)))))
  );
}

export function columnData(cols: Column[]): Float64Array {
  const d = new Float64Array(cols.length * COLUMN_FIELDS);
  if (cols.length === 0) return d;
  // Unit vectors serve ranking only (to ~1e-15), so near a reference point the sines and
  // cosines come from angle sums with short series instead of library calls. The cosine of
  // the latitude also enters the exact haversine and is always the library's.
  const lon0 = cols[0].at[0] * RAD;
  const lat0 = cols[0].at[1] * RAD;
  const sinLon0 = Math.sin(lon0);
  const cosLon0 = Math.cos(lon0);
  const sinLat0 = Math.sin(lat0);
  const cosLat0 = Math.cos(lat0);
  for (let j = 0; j < cols.length; j++) {
    const c = cols[j];
    const x = c.at[0];
    const y = c.at[1];
    const cosLat = Math.cos(y * RAD);
    const dLon = x * RAD - lon0;
    const dLat = y * RAD - lat0;
    let cosLon: number;
    let sinLon: number;
    let sinLat: number;
    if (Math.abs(dLon) <= SMALL_ANGLE && Math.abs(dLat) <= SMALL_ANGLE) {
      const s = sinSmall(dLon);
      const k = cosSmall(dLon);
      cosLon = cosLon0 * k - sinLon0 * s;
      sinLon = sinLon0 * k + cosLon0 * s;
      sinLat = sinLat0 * cosSmall(dLat) + cosLat0 * sinSmall(dLat);
    } else {
      cosLon = Math.cos(x * RAD);
      sinLon = Math.sin(x * RAD);
      sinLat = Math.sin(y * RAD);
    }
    const o = j * COLUMN_FIELDS;
    d[o] = x;
    d[o + 1] = y;
    d[o + 2] = cosLat;
    d[o + 3] = cosLat * cosLon;
    d[o + 4] = cosLat * sinLon;
    d[o + 5] = sinLat;
    d[o + 6] = c.unit.speedKmh;
    d[o + 7] = c.turnoutS;
  }
  return d;
}

export class CapGroup {
  readonly n: number;
  /** The members, by column index; a member's id is its position here. */
  readonly cols: Column[];
  maxSpeed = 0;
  minTurnout = Number.POSITIVE_INFINITY;
  /** Largest |latitude| of any member, for a rigorous longitude margin. */
  maxAbsLat = 0;
  /** Bounding box of the members. */
  minX = 180;
  minY = 90;
  maxX = -180;
  maxY = -90;
  /** Radius (m) expected to hold about one member. */
  readonly spacingM: number;
  // Grid: cell (cx, cy) holds slots cellStart[c] .. cellStart[c+1]-1, c = cy·nx + cx.
  readonly nx: number;
  readonly ny: number;
  readonly cellW: number;
  readonly cellH: number;
  readonly cellStart: Int32Array;
  /** Member id of each slot (members in cell order). */
  readonly slotId: Int32Array;
  /** SLOT_FIELDS numbers per slot. */
  readonly slot: Float64Array;
  /** MEMBER_FIELDS numbers per member id. */
  readonly member: Float64Array;

  /** members: column indices, ascending; data: columnData(allCols). */
  constructor(members: number[], allCols: Column[], data: Float64Array) {
    const n = members.length;
    this.n = n;
    this.cols = new Array(n);
    const member = new Float64Array(n * MEMBER_FIELDS);
    for (let i = 0; i < n; i++) {
      const j = members[i];
      this.cols[i] = allCols[j];
      const o = j * COLUMN_FIELDS;
      const x = data[o];
      const y = data[o + 1];
      const speed = data[o + 6];
      const turnout = data[o + 7];
      const m = i * MEMBER_FIELDS;
      member[m + M_LON] = x;
      member[m + M_LAT_RAD] = y * RAD;
      member[m + M_COS_LAT] = data[o + 2];
      member[m + M_SPEED] = speed;
      member[m + M_TURNOUT] = turnout;
      member[m + M_VX] = data[o + 3];
      member[m + M_VY] = data[o + 4];
      member[m + M_VZ] = data[o + 5];
      if (speed > this.maxSpeed) this.maxSpeed = speed;
      if (turnout < this.minTurnout) this.minTurnout = turnout;
      if (Math.abs(y) > this.maxAbsLat) this.maxAbsLat = Math.abs(y);
      if (x < this.minX) this.minX = x;
      if (x > this.maxX) this.maxX = x;
      if (y < this.minY) this.minY = y;
      if (y > this.maxY) this.maxY = y;
    }
    this.member = member;
    const cosMax = Math.cos(this.maxAbsLat * RAD);
    const areaM2 =
      Math.max(1, (this.maxX - this.minX) * RAD * EARTH_RADIUS_M * cosMax) *
      Math.max(1, (this.maxY - this.minY) * RAD * EARTH_RADIUS_M);
    this.spacingM = Math.max(50, Math.sqrt(areaM2 / Math.max(1, n) / Math.PI));
    // Square cells (in metres, at the widest latitude) holding PER_CELL members on average.
    const sideM = Math.sqrt((areaM2 * PER_CELL) / Math.max(1, n));
    this.cellH = sideM / (RAD * EARTH_RADIUS_M);
    this.cellW = this.cellH / Math.max(cosMax, 1e-6);
    this.nx = Math.max(1, Math.min(4096, Math.ceil((this.maxX - this.minX) / this.cellW)));
    this.ny = Math.max(1, Math.min(4096, Math.ceil((this.maxY - this.minY) / this.cellH)));
    const nCells = this.nx * this.ny;
    // Counting sort of the members by cell; within a cell they stay in column order.
    const cellStart = new Int32Array(nCells + 1);
    for (let i = 0; i < n; i++) {
      const o = members[i] * COLUMN_FIELDS;
      cellStart[this.cellY(data[o + 1]) * this.nx + this.cellX(data[o]) + 1]++;
    }
    for (let c = 0; c < nCells; c++) cellStart[c + 1] += cellStart[c];
    const slotId = new Int32Array(n);
    const slot = new Float64Array(n * SLOT_FIELDS);
    for (let i = 0; i < n; i++) {
      const o = members[i] * COLUMN_FIELDS;
      const s = cellStart[this.cellY(data[o + 1]) * this.nx + this.cellX(data[o])]++;
      slotId[s] = i;
      const p = s * SLOT_FIELDS;
      slot[p + S_LON] = data[o];
      slot[p + S_LAT] = data[o + 1];
      slot[p + S_VX] = data[o + 3];
      slot[p + S_VY] = data[o + 4];
      slot[p + S_VZ] = data[o + 5];
    }
    // The fill moved every start one cell on: shift back.
    for (let c = nCells; c > 0; c--) cellStart[c] = cellStart[c - 1];
    cellStart[0] = 0;
    this.cellStart = cellStart;
    this.slotId = slotId;
    this.slot = slot;
  }

  /** Grid column of a longitude; monotone, so a box's cells hold every member inside it. */
  cellX(x: number): number {
    const c = Math.floor((x - this.minX) / this.cellW);
    return c < 0 ? 0 : c >= this.nx ? this.nx - 1 : c;
  }

  cellY(y: number): number {
    const c = Math.floor((y - this.minY) / this.cellH);
    return c < 0 ? 0 : c >= this.ny ? this.ny - 1 : c;
  }
}
