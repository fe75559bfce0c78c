// `dispatch serve` as users run it: `node bin/dispatch.js serve` in a child process on a free
// port. Embedded mode (PGlite in a temp data dir, in-process queue): health, an incident
// posted over HTTP reaches a socket.io unit as an offer, SIGTERM stops it with exit code 0
// within seconds, and a restart on the same data dir still has the incident. The same with
// DATABASE_URL (a database of its own) and REDIS_URL (a queue prefix of its own), on a
// --config district. And a bad --config is refused with the JSON path, exit code 2.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Socket as ClientSocket, io as connect } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { LonLat } from '../../src/core/types.ts';
import { QUEUES } from '../../src/engine/jobs.ts';
import { BullmqQueue } from '../../src/queue/bullmq-queue.ts';
import { mintToken, resolveJwtSecret } from '../../src/server/auth.ts';
import type {
  ClientToServerEvents,
  IncidentView,
  OfferView,
  ServerToClientEvents,
} from '../../src/shared/events.ts';
import { createDatabase, dropDatabase } from '../../src/store/pg-client.ts';

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/dispatch.js');
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPOT: LonLat = [113.4712, 23.1023];

const temps: string[] = [];
const children = new Set<ChildProcess>();
const clients: Client[] = [];
const databases: string[] = [];
const prefixes: string[] = [];

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'dispatch-serve-'));
  temps.push(d);
  return d;
};

afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const child of children) child.kill('SIGKILL');
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  for (const prefix of prefixes) {
    const q = new BullmqQueue({ url: REDIS_URL, prefix });
    try {
      for (const name of Object.values(QUEUES)) await q.depth(name);
      await q.purge();
    } finally {
      await q.close();
    }
  }
  for (const name of databases) await dropDatabase(ADMIN_URL, name);
});

interface Server {
  child: ChildProcess;
  url: string;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment of a child: no service unless given, no secret from the parent. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.DISPATCH_JWT_SECRET;
  delete env.DISPATCH_DATA_DIR;
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

function start(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 150_000): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), timeoutMs);
    const onData = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ child, url: m[1], out: () => out, exited });
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${out}`));
    });
  });
}

async function waitHealthy(url: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`${url}/healthz never answered 200`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopWithSigterm(s: Server, withinMs = 10_000): Promise<number> {
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no exit within ${withinMs} ms:\n${s.out()}`)), withinMs),
  );
  const { code } = await Promise.race([s.exited, timeout]);
  expect(Date.now() - t0).toBeLessThan(withinMs);
  return code ?? -1;
}

function tokens(secret: string) {
  return {
    admin: () => mintToken({ role: 'admin' }, secret),
    dispatcher: () => mintToken({ role: 'dispatcher' }, secret),
    unit: (id: string) => mintToken({ role: 'unit', unitId: id }, secret),
  };
}

async function call<T>(url: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Registers a unit on the spot, connects it, posts an incident there; returns the offer. */
async function offerReachesUnit(url: string, secret: string, unitId: string) {
  const t = tokens(secret);
  const admin = await t.admin();
  const put = await call(url, admin, 'PUT', `/v1/units/${unitId}`, {
    department: 'traffic',
    capabilities: ['traffic', 'police'],
    home: SPOT,
    speedKmh: 60,
    turnoutS: 0,
  });
  expect(put.status).toBe(200);

  const unitToken = await t.unit(unitId);
  const client: Client = connect(url, { transports: ['websocket'], auth: { token: unitToken } });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('connect_error', (e) => reject(e));
  });
  const offer = new Promise<OfferView>((resolve) => {
    client.on('assignment:offer', (env, received) => {
      received?.(true);
      resolve(env.data);
    });
  });

  const post = await call<IncidentView>(url, await t.dispatcher(), 'POST', '/v1/incidents', {
    type: 'illegal-parking',
    location: SPOT,
    source: 'test',
  });
  expect(post.status).toBe(201);
  const got = await Promise.race([
    offer,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no offer within 15 s')), 15_000)),
  ]);
  expect(got.incident.id).toBe(post.body.id);
  expect(got.assignment.unitId).toBe(unitId);
  // The unit accepts over its socket.
  const reply = await client
    .timeout(5000)
    .emitWithAck('ack', { assignmentId: got.assignment.id, accept: true } as never);
  expect(reply).toEqual({ ok: true });
  client.disconnect();
  return { incidentId: post.body.id, assignmentId: got.assignment.id };
}

/** Waits (up to 30 s) until the server has printed `re`. */
async function printed(s: Server, re: RegExp): Promise<void> {
  const end = Date.now() + 30_000;
  while (!re.test(s.out())) {
    if (Date.now() > end) throw new Error(`serve never printed ${re}:\n${s.out()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Each start pays tsx's transform and (embedded) PGlite's start-up: generous timeouts, since
// the machines running the suite are often busy.
const SLOW = { timeout: 400_000 };

describe('dispatch serve (child process)', () => {
  it(
    'embedded: health, offer over the socket, SIGTERM exit 0, persistence across a restart',
    SLOW,
    async () => {
      const dataDir = tempDir();
      const env = childEnv();
      const s1 = await start(['--data-dir', dataDir], env);
      await waitHealthy(s1.url);
      // First start: a secret is made and the console and unit links are printed (after the
      // server listens: signing their tokens may finish after the first health answer).
      await printed(s1, /tokens expire in 12 h/);
      expect(s1.out()).toMatch(/new JWT secret written to/);
      expect(s1.out()).toMatch(/console: +http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+\.[\w-]+\.[\w-]+/);
      expect(s1.out()).toMatch(/unit app: +http:\/\/127\.0\.0\.1:\d+\/unit\?token=/);
      const secret = resolveJwtSecret({ dataDir, env: {} }).secret;
      expect(readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim()).toBe(secret);

      // The default district (scenarios/demo.json's units) is loaded.
      const units = await call<{ units: { id: string; status: string }[] }>(
        s1.url,
        await tokens(secret).dispatcher(),
        'GET',
        '/v1/units',
      );
      expect(units.body.units.length).toBeGreaterThanOrEqual(40);
      expect(units.body.units.every((u) => u.status === 'available')).toBe(true);

      const { incidentId } = await offerReachesUnit(s1.url, secret, 'T-EMB-1');
      expect(await stopWithSigterm(s1)).toBe(0);

      const s2 = await start(['--data-dir', dataDir], env);
      await waitHealthy(s2.url);
      await printed(s2, /tokens: +npx dispatch token/);
      expect(s2.out()).not.toMatch(/new JWT secret/);
      const got = await call<IncidentView>(
        s2.url,
        await tokens(secret).dispatcher(),
        'GET',
        `/v1/incidents/${incidentId}`,
      );
      expect(got.status).toBe(200);
      expect(got.body.id).toBe(incidentId);
      expect(got.body.assignedUnitIds).toEqual(['T-EMB-1']);
      expect(await stopWithSigterm(s2)).toBe(0);
    },
  );

  it(
    'DATABASE_URL + REDIS_URL with a --config district: offer, SIGTERM exit 0, persistence',
    SLOW,
    async () => {
      const db = await createDatabase(ADMIN_URL);
      databases.push(db.name);
      const prefix = `dispatch-test-serve-${randomBytes(4).toString('hex')}`;
      prefixes.push(prefix);
      const secret = randomBytes(32).toString('base64url');
      const dir = tempDir();
      // A district config: the demo's areas and catalogue with three of its units, no incidents.
      const demo = JSON.parse(readFileSync(join(ROOT, 'scenarios/demo.json'), 'utf8'));
      const configFile = join(dir, 'district.json');
      writeFileSync(
        configFile,
        JSON.stringify({ areas: demo.areas, catalog: demo.catalog, units: demo.units.slice(0, 3) }),
      );
      const env = childEnv({
        DATABASE_URL: db.url,
        REDIS_URL,
        DISPATCH_QUEUE_PREFIX: prefix,
        DISPATCH_JWT_SECRET: secret,
      });
      const s1 = await start(['--data-dir', dir, '--config', configFile], env);
      await waitHealthy(s1.url);
      expect(s1.out()).toMatch(/PostgreSQL/);
      expect(s1.out()).toMatch(/BullMQ/);
      const units = await call<{ units: { id: string }[] }>(
        s1.url,
        await tokens(secret).dispatcher(),
        'GET',
        '/v1/units',
      );
      expect(units.body.units.map((u) => u.id).sort()).toEqual(
        demo.units
          .slice(0, 3)
          .map((u: { id: string }) => u.id)
          .sort(),
      );
      const { incidentId } = await offerReachesUnit(s1.url, secret, 'T-SVC-1');
      expect(await stopWithSigterm(s1)).toBe(0);

      const s2 = await start(['--data-dir', dir, '--config', configFile], env);
      await waitHealthy(s2.url);
      const got = await call<IncidentView>(
        s2.url,
        await tokens(secret).dispatcher(),
        'GET',
        `/v1/incidents/${incidentId}`,
      );
      expect(got.status).toBe(200);
      expect(got.body.assignedUnitIds).toEqual(['T-SVC-1']);
      expect(await stopWithSigterm(s2)).toBe(0);
    },
  );

  it('refuses a bad --config with the JSON path of the first wrong field (exit 2)', SLOW, async () => {
    const dir = tempDir();
    const demo = JSON.parse(readFileSync(join(ROOT, 'scenarios/demo.json'), 'utf8'));
    const units = demo.units.slice(0, 2);
    units[1] = { ...units[1], speedKmh: -5 };
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ areas: demo.areas, catalog: demo.catalog, units }));
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--data-dir', dir, '--config', file],
      {
        cwd: ROOT,
        env: childEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('$.units[1].speedKmh');
  });
});
