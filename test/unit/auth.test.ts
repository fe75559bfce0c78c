import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import {
  bearerToken,
  mintToken,
  parseDuration,
  principalFromClaims,
  recipientOf,
  requireOwnUnit,
  requireRole,
  resolveJwtSecret,
  verifyToken,
} from '../../src/server/auth.ts';
import { ApiError } from '../../src/server/errors.ts';

const secret = 'test-secret-test-secret-test-secret-0123';
const cfg = { secret };
const key = new TextEncoder().encode(secret);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return (e as ApiError).code;
  }
  throw new Error('expected a refusal');
}

describe('verifyToken', () => {
  it('accepts a minted token and builds the Actor', async () => {
    const d = await verifyToken(await mintToken({ role: 'dispatcher', sub: 'li.wei' }, secret), cfg);
    expect(d.actor).toEqual({ role: 'dispatcher', id: 'li.wei' });
    const u = await verifyToken(await mintToken({ role: 'unit', unitId: 'FE-01' }, secret), cfg);
    expect(u.actor).toEqual({ role: 'unit', id: 'unit:FE-01', unitId: 'FE-01' });
    expect(u.exp).toBeGreaterThan(now() + 7 * 3600);
  });

  it('refuses alg none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ role: 'admin', iss: 'dispatch', aud: 'dispatch', exp: now() + 60 })}.`;
    expect(await codeOf(verifyToken(token, cfg))).toBe('UNAUTHENTICATED');
  });

  it('refuses another HMAC algorithm with the right key (algorithm pinned)', async () => {
    const token = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS512' })
      .setIssuer('dispatch')
      .setAudience('dispatch')
      .setExpirationTime(now() + 60)
      .sign(key);
    expect(await codeOf(verifyToken(token, cfg))).toBe('UNAUTHENTICATED');
  });

  it('refuses a wrong key, wrong audience, wrong issuer, tampered payload', async () => {
    expect(await codeOf(verifyToken(await mintToken({ role: 'admin' }, `${secret}x`), cfg))).toBe(
      'UNAUTHENTICATED',
    );
    expect(
      await codeOf(verifyToken(await mintToken({ role: 'admin' }, secret, { audience: 'other' }), cfg)),
    ).toBe('UNAUTHENTICATED');
    expect(
      await codeOf(verifyToken(await mintToken({ role: 'admin' }, secret, { issuer: 'evil' }), cfg)),
    ).toBe('UNAUTHENTICATED');
    const good = await mintToken({ role: 'planner' }, secret);
    const [h, , s] = good.split('.');
    const forged = `${h}.${b64({ role: 'admin', iss: 'dispatch', aud: 'dispatch', exp: now() + 60 })}.${s}`;
    expect(await codeOf(verifyToken(forged, cfg))).toBe('UNAUTHENTICATED');
  });

  it('says TOKEN_EXPIRED for an expired token', async () => {
    const token = await mintToken({ role: 'admin', ttlS: 60 }, secret, { nowS: now() - 3600 });
    expect(await codeOf(verifyToken(token, cfg))).toBe('TOKEN_EXPIRED');
  });

  it('a token verified once still expires, and a changed signature is checked anew', async () => {
    const own = { secret };
    const t0 = now();
    const token = await mintToken({ role: 'unit', unitId: 'FE-01', ttlS: 60 }, secret, { nowS: t0 });
    expect((await verifyToken(token, own)).actor.unitId).toBe('FE-01');
    expect((await verifyToken(token, own)).actor.unitId).toBe('FE-01');
    const [h, p, sig] = token.split('.');
    const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BA' : 'AA'}`;
    expect(await codeOf(verifyToken(flipped, own))).toBe('UNAUTHENTICATED');
    vi.useFakeTimers({ now: (t0 + 66) * 1000 });
    try {
      expect(await codeOf(verifyToken(token, own))).toBe('TOKEN_EXPIRED');
      expect(await codeOf(verifyToken(token, own))).toBe('TOKEN_EXPIRED');
    } finally {
      vi.useRealTimers();
    }
  });

  it('requires exp, a known role, and unitId for a unit', async () => {
    const noExp = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('dispatch')
      .setAudience('dispatch')
      .sign(key);
    expect(await codeOf(verifyToken(noExp, cfg))).toBe('UNAUTHENTICATED');
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('dispatch')
        .setAudience('dispatch')
        .setExpirationTime(now() + 60)
        .sign(key);
    expect(await codeOf(verifyToken(await sign({ role: 'root' }), cfg))).toBe('UNAUTHENTICATED');
    expect(await codeOf(verifyToken(await sign({ role: 'system' }), cfg))).toBe('UNAUTHENTICATED');
    expect(await codeOf(verifyToken(await sign({ role: 'unit' }), cfg))).toBe('UNAUTHENTICATED');
    expect(await codeOf(verifyToken(await sign({ role: 'unit', unitId: '' }), cfg))).toBe('UNAUTHENTICATED');
    expect(await codeOf(verifyToken('not.a.jwt', cfg))).toBe('UNAUTHENTICATED');
    expect(await codeOf(verifyToken('', cfg))).toBe('UNAUTHENTICATED');
  });

  it('refuses to mint or verify with a short secret', async () => {
    await expect(mintToken({ role: 'admin' }, 'short')).rejects.toThrow(/32 bytes/);
    await expect(verifyToken('a.b.c', { secret: 'short' })).rejects.toThrow(/32 bytes/);
    await expect(mintToken({ role: 'unit' }, secret)).rejects.toThrow(/--unit/);
  });
});

describe('helpers', () => {
  it('bearerToken', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('role gates and recipients', () => {
    const unit = principalFromClaims({ role: 'unit', unitId: 'U1', exp: 1 }).actor;
    expect(() => requireRole(unit, ['dispatcher', 'admin'])).toThrow(ApiError);
    expect(() => requireRole(unit, ['unit'])).not.toThrow();
    expect(() => requireOwnUnit(unit, 'U2')).toThrow(/itself/);
    expect(() => requireOwnUnit({ role: 'admin', id: 'a' }, 'U2')).not.toThrow();
    expect(recipientOf(unit)).toBe('unit:U1');
    expect(recipientOf({ role: 'planner', id: 'p' })).toBe('consoles');
  });

  it('parseDuration', () => {
    expect(parseDuration('8h')).toBe(28800);
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('2d')).toBe(172800);
    expect(() => parseDuration('soon')).toThrow();
  });

  it('resolveJwtSecret: env wins, else the data dir file, generated once with mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-auth-'));
    expect(() => resolveJwtSecret({ dataDir: dir, env: {} })).toThrow(/DISPATCH_JWT_SECRET/);
    const gen = resolveJwtSecret({ dataDir: dir, create: true, env: {} });
    expect(gen.source).toBe('generated');
    expect(gen.secret.length).toBeGreaterThanOrEqual(32);
    expect(statSync(gen.path!).mode & 0o777).toBe(0o600);
    expect(readFileSync(gen.path!, 'utf8').trim()).toBe(gen.secret);
    const again = resolveJwtSecret({ dataDir: dir, create: true, env: {} });
    expect(again).toEqual({ secret: gen.secret, source: 'file', path: gen.path });
    expect(resolveJwtSecret({ dataDir: dir, env: { DISPATCH_JWT_SECRET: secret } })).toEqual({
      secret,
      source: 'env',
    });
    expect(() => resolveJwtSecret({ env: { DISPATCH_JWT_SECRET: 'short' } })).toThrow(/32 bytes/);
  });
});

describe('dispatch token', () => {
  async function runToken(argv: string[], env: Record<string, string | undefined>) {
    const { run } = await import('../../src/cli/commands/token.ts');
    const out: string[] = [];
    const err: string[] = [];
    const saved = { ...process.env };
    const w1 = process.stdout.write;
    const w2 = process.stderr.write;
    Object.assign(process.env, env);
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
    try {
      const code = await run(argv);
      return { code, out: out.join(''), err: err.join('') };
    } finally {
      process.stdout.write = w1;
      process.stderr.write = w2;
      process.env = saved;
    }
  }

  it('prints a token the server accepts, with the secret from the env or the data dir', async () => {
    const r = await runToken(['--role', 'unit', '--unit', 'FE-01', '--ttl', '1h'], {
      DISPATCH_JWT_SECRET: secret,
    });
    expect(r.code).toBe(0);
    const p = await verifyToken(r.out.trim(), cfg);
    expect(p.actor).toEqual({ role: 'unit', id: 'unit:FE-01', unitId: 'FE-01' });
    expect(p.exp - now()).toBeLessThanOrEqual(3600);

    const dir = mkdtempSync(join(tmpdir(), 'dispatch-token-'));
    const made = resolveJwtSecret({ dataDir: dir, create: true, env: {} });
    const f = await runToken(['--role', 'planner', '--data-dir', dir], { DISPATCH_JWT_SECRET: undefined });
    expect(f.code).toBe(0);
    expect((await verifyToken(f.out.trim(), { secret: made.secret })).actor.role).toBe('planner');
  });

  it('refuses bad arguments', async () => {
    const env = { DISPATCH_JWT_SECRET: secret };
    expect((await runToken(['--role', 'root'], env)).code).toBe(2);
    expect((await runToken(['--role', 'unit'], env)).code).toBe(2);
    expect((await runToken(['--role', 'admin', '--unit', 'X'], env)).code).toBe(2);
    expect((await runToken(['--role', 'admin', '--ttl', 'soon'], env)).code).toBe(2);
    expect((await runToken(['--role', 'admin', '--bogus'], env)).code).toBe(2);
    const empty = mkdtempSync(join(tmpdir(), 'dispatch-token-'));
    const none = await runToken(['--role', 'admin', '--data-dir', empty], { DISPATCH_JWT_SECRET: undefined });
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/DISPATCH_JWT_SECRET/);
  });
});
