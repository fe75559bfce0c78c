// Browser-test harness: builds dist/console when missing or older than console/**, starts the
// real live stack (Engine on a MemoryStore, the in-process queue with its workers, startHttp
// with consoleDir = dist/console on a free port) with the demo district, and drives Debian's
// Chromium (/usr/bin/chromium) with playwright-core. Every page's console errors and page
// errors are collected; tests fail on any.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { LonLat } from '../../src/core/types.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { scenarioContext, seedUnits } from '../../src/engine/factory.ts';
import { systemClock } from '../../src/engine/ports.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { parseScenario } from '../../src/scenario/validate.ts';
import { mintToken } from '../../src/server/auth.ts';
import { type HttpServer, startHttp } from '../../src/server/index.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { SocketPublisher } from '../../src/server/sockets.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CONSOLE_SRC = join(ROOT, 'console');
export const CONSOLE_DIST = join(ROOT, 'dist/console');
export const SCREENSHOTS = join(ROOT, 'test-artifacts/screenshots');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// ---------------------------------------------------------------- build

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return newest;
}

function buildIsFresh(): boolean {
  const stamp = join(CONSOLE_DIST, 'index.html');
  if (!existsSync(stamp) || !existsSync(join(CONSOLE_DIST, 'unit/index.html'))) return false;
  return statSync(stamp).mtimeMs >= newestMtime(CONSOLE_SRC);
}

/**
 * Builds dist/console (`npm run build:console`) unless it is up to date. Several test files
 * may ask at once: a lock directory makes one build and the others wait for it.
 */
export async function ensureConsoleBuilt(): Promise<void> {
  if (buildIsFresh()) return;
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const lock = join(ROOT, 'dist/.console-build.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another file is building; a lock older than 2 minutes is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for the console build lock');
      await new Promise((r) => setTimeout(r, 200));
      if (buildIsFresh()) return;
    }
  }
  try {
    if (buildIsFresh()) return;
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'console/vite.config.ts'],
      {
        cwd: ROOT,
        stdio: 'pipe',
        timeout: 120_000,
      },
    );
    if (!buildIsFresh()) throw new Error('the console build did not produce dist/console/index.html');
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the live stack

export const DEMO_SCENARIO = join(ROOT, 'scenarios/demo.json');

export function loadDemo(): Scenario {
  return parseScenario(JSON.parse(readFileSync(DEMO_SCENARIO, 'utf8')));
}

export interface Stack {
  engine: Engine;
  store: MemoryStore;
  server: HttpServer;
  base: string;
  scenario: Scenario;
  secret: string;
  token(role: 'dispatcher' | 'admin' | 'planner'): Promise<string>;
  unitToken(unitId: string): Promise<string>;
  /** fetch against the API with a token. */
  http(token: string, method: string, path: string, body?: unknown): Promise<Response>;
  close(): Promise<void>;
}

export async function startStack(config: Partial<EngineConfig> = {}): Promise<Stack> {
  await ensureConsoleBuilt();
  const scenario = loadDemo();
  const secret = 'browser-test-secret-browser-test-secret-0001';
  const store = new MemoryStore();
  const queue = new MemoryQueue({ retry: { backoffMs: 50 } });
  const metrics = createMetrics();
  const publisher = new SocketPublisher();
  const engine = new Engine({
    store,
    queue,
    publisher,
    clock: systemClock,
    ...scenarioContext(scenario),
    config: { decideDebounceMs: 2, sweepIntervalMs: 0, ...config },
    onDecision: (ms, policy) => metrics.observeDecision(ms, policy),
    log: () => {},
  });
  metrics.setIncidentCountSource(() => engine.openIncidentCounts());
  await engine.start();
  await seedUnits(engine, scenario.units);
  const workers: Workers = await startWorkers(engine, queue, store, { relay: { pollMs: 20 } });
  const server = await startHttp({
    engine,
    store,
    auth: { secret },
    metrics,
    publisher,
    port: 0,
    host: '127.0.0.1',
    consoleDir: CONSOLE_DIST,
    ready: () => engine.running,
  });
  const base = server.url;
  return {
    engine,
    store,
    server,
    base,
    scenario,
    secret,
    token: (role) => mintToken({ role, sub: `test-${role}` }, secret),
    unitToken: (unitId) => mintToken({ role: 'unit', unitId }, secret),
    http: (token, method, path, body) =>
      fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    async close() {
      await server.close();
      await engine.stop();
      await workers.stop();
      await queue.close();
    },
  };
}

// ---------------------------------------------------------------- the browser

export interface BrowserSession {
  context: BrowserContext;
  /** Console errors and page errors of every page, as "page-url: message". */
  errors: string[];
  newPage(viewport: { width: number; height: number }): Promise<Page>;
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

export const CONSOLE_VIEWPORT = { width: 1280, height: 800 };
export const PHONE_VIEWPORT = { width: 390, height: 844 };

export async function launchBrowser(opts: { geolocation?: LonLat } = {}): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: apt-get install -y chromium (the browser tests use Debian's Chromium)`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'dispatch-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: CONSOLE_VIEWPORT,
    ...(opts.geolocation
      ? {
          geolocation: { longitude: opts.geolocation[0], latitude: opts.geolocation[1], accuracy: 8 },
          permissions: ['geolocation'],
        }
      : {}),
  });
  const errors: string[] = [];
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${page.url()}: console.error: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`${page.url()}: page error: ${e.message}`));
  };
  for (const p of context.pages()) watch(p);
  context.on('page', watch);
  let spare: Page | undefined = context.pages()[0];
  return {
    context,
    errors,
    async newPage(viewport) {
      const page = spare ?? (await context.newPage());
      spare = undefined;
      await page.setViewportSize(viewport);
      return page;
    },
    async screenshot(page, name) {
      const file = join(SCREENSHOTS, `${name}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until fn returns a truthy value. */
export async function until<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = 5000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
