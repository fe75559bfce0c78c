// Shared by the k6 scripts (run with k6 ≥ 0.52, which runs TypeScript directly; see README.md
// in this folder). Configuration comes from the environment (`k6 run -e NAME=value` or the
// shell): BASE_URL, DISPATCH_JWT_SECRET (the server's secret: .dispatch/jwt-secret in embedded
// mode) or ready-made DISPATCHER_TOKEN / ADMIN_TOKEN.

import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');

/** Incident types needing one unit, and the capabilities that serve them. */
export const TYPES = [
  'illegal-parking',
  'street-vending',
  'noise-complaint',
  'traffic-obstruction',
  'missing-manhole-cover',
  'burglary-report',
  'food-safety',
  'medical-emergency',
];
export const CAPABILITIES = ['traffic', 'chengguan', 'police', 'market', 'ambulance'];

/** The bundled demo district's bounding box (scenarios/demo.json). */
const BBOX = { w: 113.425, e: 113.5, s: 23.075, n: 23.12 };
const GRID_LON = 0.0011; // ≈ 112 m
const GRID_LAT = 0.001; // ≈ 111 m
const COLS = Math.floor((BBOX.e - BBOX.w) / GRID_LON);
const ROWS = Math.floor((BBOX.n - BBOX.s) / GRID_LAT);

export function num(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) ? n : dflt;
}

/**
 * The k-th incident of a run: types in turn, each at a grid point ≥ 110 m from the type's
 * earlier ones (a stride walk over the grid), so the engine's duplicate merging (same type
 * within 100 m and 300 s) does not fold posts together.
 */
export function incident(k: number): { type: string; location: [number, number]; source: string } {
  const t = k % TYPES.length;
  const nth = Math.floor(k / TYPES.length);
  const cell = (nth * 7919 + t * 104_729) % (COLS * ROWS);
  const lon = BBOX.w + ((cell % COLS) + 0.5) * GRID_LON;
  const lat = BBOX.s + (Math.floor(cell / COLS) + 0.5) * GRID_LAT;
  return {
    type: TYPES[t],
    location: [Math.round(lon * 1e6) / 1e6, Math.round(lat * 1e6) / 1e6],
    source: 'k6',
  };
}

/** A point of the district for unit i (a different stride walk). */
export function unitHome(i: number): [number, number] {
  const cell = (i * 3571 + 17) % (COLS * ROWS);
  return [
    Math.round((BBOX.w + ((cell % COLS) + 0.5) * GRID_LON) * 1e6) / 1e6,
    Math.round((BBOX.s + (Math.floor(cell / COLS) + 0.5) * GRID_LAT) * 1e6) / 1e6,
  ];
}

/** An HS256 JWT as the server expects it (iss/aud `dispatch` unless JWT_ISSUER/JWT_AUDIENCE). */
export function jwt(claims: Record<string, unknown>, secret: string, ttlS = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: unknown) => encoding.b64encode(JSON.stringify(o), 'rawurl');
  const head = part({ alg: 'HS256', typ: 'JWT' });
  const body = part({
    iss: __ENV.JWT_ISSUER || 'dispatch',
    aud: __ENV.JWT_AUDIENCE || 'dispatch',
    iat: now,
    exp: now + ttlS,
    ...claims,
  });
  return `${head}.${body}.${crypto.hmac('sha256', secret, `${head}.${body}`, 'base64rawurl')}`;
}

/** A token for a role: <ROLE>_TOKEN from the environment, else minted with DISPATCH_JWT_SECRET. */
export function token(role: 'dispatcher' | 'admin' | 'unit', unitId?: string): string {
  const given = __ENV[`${role.toUpperCase()}_TOKEN`];
  if (given && role !== 'unit') return given;
  const secret = __ENV.DISPATCH_JWT_SECRET;
  if (!secret) {
    throw new Error(
      `set DISPATCH_JWT_SECRET (e.g. $(cat .dispatch/jwt-secret))${role === 'unit' ? '' : ` or ${role.toUpperCase()}_TOKEN`}`,
    );
  }
  return jwt(role === 'unit' ? { role, unitId, sub: `unit:${unitId}` } : { role, sub: `k6-${role}` }, secret);
}

export const json = (t: string) => ({
  headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
});
