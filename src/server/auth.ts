// Bearer tokens: HS256 JWTs (jose) with a pinned algorithm, a required expiry, and checked
// issuer and audience. Claims: `role` (dispatcher | unit | planner | admin), `unitId` for a
// unit token (refused without it), `sub` (who). A verified token becomes the engine's Actor;
// the role gates of the HTTP routes and socket events live here too.
//
// The secret: `DISPATCH_JWT_SECRET` (at least 32 characters) wins; else the embedded data
// directory's `jwt-secret` file (`$DISPATCH_DATA_DIR`, default `./.dispatch`), created with
// 32 random bytes (base64url, mode 0600) at the first `dispatch serve`. `dispatch token`
// reads the same place.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Actor } from '../engine/api.ts';
import { ApiError } from './errors.ts';

export const ROLES = ['dispatcher', 'unit', 'planner', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const isRole = (r: unknown): r is Role =>
  typeof r === 'string' && (ROLES as readonly string[]).includes(r);

/** The only algorithm accepted or produced. */
export const JWT_ALG = 'HS256';
export const DEFAULT_ISSUER = 'dispatch';
export const DEFAULT_AUDIENCE = 'dispatch';
export const MIN_SECRET_LENGTH = 32;
export const SECRET_ENV = 'DISPATCH_JWT_SECRET';
export const DATA_DIR_ENV = 'DISPATCH_DATA_DIR';
export const DEFAULT_DATA_DIR = '.dispatch';
export const SECRET_FILE = 'jwt-secret';

export interface AuthConfig {
  /** HS256 key: at least 32 characters (or bytes). */
  secret: string | Uint8Array;
  /** Expected and minted `iss` (default `dispatch`). */
  issuer?: string;
  /** Expected and minted `aud` (default `dispatch`). */
  audience?: string;
  /** Clock skew allowed on `exp` / `nbf`, seconds (default 5). */
  clockToleranceS?: number;
}

export interface Principal {
  actor: Actor;
  role: Role;
  /** Expiry, epoch seconds. */
  exp: number;
}

const keyCache = new WeakMap<AuthConfig, Uint8Array>();

function keyOf(secret: string | Uint8Array): Uint8Array {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  if (key.byteLength < MIN_SECRET_LENGTH) {
    throw new Error(`the JWT secret must be at least ${MIN_SECRET_LENGTH} bytes`);
  }
  return key;
}

function configKey(cfg: AuthConfig): Uint8Array {
  let k = keyCache.get(cfg);
  if (!k) {
    k = keyOf(cfg.secret);
    keyCache.set(cfg, k);
  }
  return k;
}

/** Checks a config once at start-up (throws on a weak secret). */
export function checkAuthConfig(cfg: AuthConfig): void {
  configKey(cfg);
}

const UNIT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the Actor from verified claims; throws UNAUTHENTICATED on bad claims. */
export function principalFromClaims(claims: Record<string, unknown>): Principal {
  const role = claims.role;
  if (!isRole(role)) throw new ApiError('UNAUTHENTICATED', 'The token has no valid role');
  const exp = claims.exp;
  if (typeof exp !== 'number') throw new ApiError('UNAUTHENTICATED', 'The token has no expiry');
  const sub = typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub.slice(0, 128) : undefined;
  if (role === 'unit') {
    const unitId = claims.unitId;
    if (typeof unitId !== 'string' || !UNIT_ID_RE.test(unitId)) {
      throw new ApiError('UNAUTHENTICATED', 'A unit token must carry its unitId');
    }
    return { role, exp, actor: { role, id: sub ?? `unit:${unitId}`, unitId } };
  }
  return { role, exp, actor: { role, id: sub ?? role } };
}

/**
 * Tokens already verified, per config: a unit sends the same token with every call, and the
 * HMAC check (WebCrypto, a key import each time) was 7 % of the engine's CPU at 200
 * incidents/s. The key is the whole token, signature included, so a hit is a token that
 * verified; only time can change its answer, and expiry is checked on every hit.
 */
const verified = new WeakMap<AuthConfig, Map<string, Principal>>();
const VERIFIED_MAX = 10_000;

/** Verifies a bearer token; throws ApiError UNAUTHENTICATED or TOKEN_EXPIRED. */
export async function verifyToken(token: string, cfg: AuthConfig): Promise<Principal> {
  if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
    throw new ApiError('UNAUTHENTICATED');
  }
  let cache = verified.get(cfg);
  if (!cache) {
    cache = new Map();
    verified.set(cfg, cache);
  }
  const hit = cache.get(token);
  if (hit) {
    // jose's rule: expired once exp <= now − tolerance.
    if (hit.exp > Date.now() / 1000 - (cfg.clockToleranceS ?? 5)) return hit;
    cache.delete(token);
    throw new ApiError('TOKEN_EXPIRED');
  }
  const principal = await verifyUncached(token, cfg);
  // Oldest first out (a Map keeps insertion order).
  if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value!);
  cache.set(token, principal);
  return principal;
}

async function verifyUncached(token: string, cfg: AuthConfig): Promise<Principal> {
  const key = configKey(cfg);
  let payload: Record<string, unknown>;
  try {
    const res = await jwtVerify(token, key, {
      algorithms: [JWT_ALG],
      issuer: cfg.issuer ?? DEFAULT_ISSUER,
      audience: cfg.audience ?? DEFAULT_AUDIENCE,
      requiredClaims: ['exp'],
      clockTolerance: cfg.clockToleranceS ?? 5,
    });
    payload = res.payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new ApiError('TOKEN_EXPIRED');
    throw new ApiError('UNAUTHENTICATED', 'The bearer token is not valid');
  }
  return principalFromClaims(payload);
}

/** Extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

export interface MintInput {
  role: Role;
  unitId?: string;
  sub?: string;
  /** Lifetime in seconds (default 8 h). */
  ttlS?: number;
}

/** Mints an HS256 token (for `dispatch token`, tests and the demo's simulated clients). */
export async function mintToken(
  input: MintInput,
  secret: string | Uint8Array,
  opts: { issuer?: string; audience?: string; nowS?: number } = {},
): Promise<string> {
  if (!isRole(input.role)) throw new Error(`unknown role "${String(input.role)}" (${ROLES.join(', ')})`);
  if (input.role === 'unit' && (!input.unitId || !UNIT_ID_RE.test(input.unitId))) {
    throw new Error('a unit token needs --unit ID');
  }
  const ttl = input.ttlS ?? 8 * 3600;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new Error('the token lifetime must be positive');
  const now = Math.floor(opts.nowS ?? Date.now() / 1000);
  const claims: Record<string, unknown> = { role: input.role };
  if (input.role === 'unit') claims.unitId = input.unitId;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: JWT_ALG, typ: 'JWT' })
    .setSubject(input.sub ?? (input.role === 'unit' ? `unit:${input.unitId}` : input.role))
    .setIssuer(opts.issuer ?? DEFAULT_ISSUER)
    .setAudience(opts.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.round(ttl))
    .sign(keyOf(secret));
}

/** Parses `90`, `90s`, `15m`, `8h`, `7d` into seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad duration "${s}" (e.g. 90s, 15m, 8h, 7d)`);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2].toLowerCase() as '' | 's' | 'm' | 'h' | 'd'];
  const v = Number(m[1]) * mult;
  if (!(v > 0)) throw new Error(`bad duration "${s}"`);
  return v;
}

// ---------------------------------------------------------------- the secret

export const generateSecret = (): string => randomBytes(32).toString('base64url');

/** The embedded data directory: `$DISPATCH_DATA_DIR`, else `./.dispatch`. */
export const defaultDataDir = (env: NodeJS.ProcessEnv = process.env): string =>
  resolve(env[DATA_DIR_ENV] || DEFAULT_DATA_DIR);

export const secretFilePath = (dataDir: string): string => join(dataDir, SECRET_FILE);

export interface ResolvedSecret {
  secret: string;
  source: 'env' | 'file' | 'generated';
  /** The file read or written (source file / generated). */
  path?: string;
}

/**
 * Finds the JWT secret: `DISPATCH_JWT_SECRET`, else `<dataDir>/jwt-secret`; with
 * `create`, a missing file is generated (mode 0600). Throws when none is found.
 */
export function resolveJwtSecret(
  opts: { dataDir?: string; create?: boolean; env?: NodeJS.ProcessEnv } = {},
): ResolvedSecret {
  const env = opts.env ?? process.env;
  const fromEnv = env[SECRET_ENV];
  if (fromEnv) {
    keyOf(fromEnv);
    return { secret: fromEnv, source: 'env' };
  }
  const path = secretFilePath(opts.dataDir ?? defaultDataDir(env));
  try {
    const secret = readFileSync(path, 'utf8').trim();
    keyOf(secret);
    return { secret, source: 'file', path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!opts.create) {
    throw new Error(`no JWT secret: set ${SECRET_ENV} or run \`dispatch serve\` once to create ${path}`);
  }
  const secret = generateSecret();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { secret: readFileSync(path, 'utf8').trim(), source: 'file', path };
  }
  return { secret, source: 'generated', path };
}

// ---------------------------------------------------------------- role gates

/** Throws FORBIDDEN unless the actor has one of the roles. */
export function requireRole(actor: Actor, roles: readonly Role[]): void {
  if (!(roles as readonly string[]).includes(actor.role)) {
    throw new ApiError('FORBIDDEN', `The ${actor.role} role may not do this`);
  }
}

/** For unit-bound routes: a unit may act only for its own unit id. */
export function requireOwnUnit(actor: Actor, unitId: string): void {
  if (actor.role === 'unit' && actor.unitId !== unitId) {
    throw new ApiError('FORBIDDEN', 'A unit may act only for itself');
  }
}

/** The push-message stream of an actor: `unit:<id>` for a unit, `consoles` otherwise. */
export const recipientOf = (actor: Actor): 'consoles' | `unit:${string}` =>
  actor.role === 'unit' && actor.unitId ? `unit:${actor.unitId}` : 'consoles';

/**
 * The AuthConfig `dispatch serve` uses: the secret from `DISPATCH_JWT_SECRET` or the data
 * dir's `jwt-secret` (generated at the first start when `create`), issuer and audience from
 * `DISPATCH_JWT_ISSUER` / `DISPATCH_JWT_AUDIENCE` (default `dispatch`). `secret.source` tells
 * the caller whether to print where a new secret was written.
 */
export function authConfigFromEnv(
  opts: { dataDir?: string; create?: boolean; env?: NodeJS.ProcessEnv } = {},
): { config: AuthConfig; secret: ResolvedSecret } {
  const env = opts.env ?? process.env;
  const secret = resolveJwtSecret({ ...opts, env });
  return {
    config: {
      secret: secret.secret,
      issuer: env.DISPATCH_JWT_ISSUER || DEFAULT_ISSUER,
      audience: env.DISPATCH_JWT_AUDIENCE || DEFAULT_AUDIENCE,
    },
    secret,
  };
}
