// (e) The replay viewer plays a short log in a real browser: the first 15 minutes of the demo
// scenario replayed through the real simulator, opened with the page's file inputs, scrubbed
// with the slider (what it draws must match the viewer's model at that time) and played at
// 600×. Screenshots go to test-artifacts/screenshots/.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ReplayModel } from '../../console/src/replay-model.ts';
import { POLICIES } from '../../src/core/policies.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { type SimEvent, toNdjson } from '../../src/sim/events.ts';
import { simulate } from '../../src/sim/simulate.ts';
import {
  type BrowserSession,
  CONSOLE_VIEWPORT,
  launchBrowser,
  loadDemo,
  type Stack,
  startStack,
  until,
} from './harness.ts';

let stack: Stack;
let browser: BrowserSession;
let page: Page;
let dir: string;
let scenario: Scenario;
let events: SimEvent[];
let model: ReplayModel;

beforeAll(async () => {
  const demo = loadDemo();
  scenario = { ...demo, durationS: 900, incidents: demo.incidents.filter((i) => i.atS < 900) };
  events = simulate(scenario, { policy: POLICIES.optimal }).events;
  dir = mkdtempSync(join(tmpdir(), 'dispatch-replay-'));
  writeFileSync(join(dir, 'events.ndjson'), toNdjson(events));
  writeFileSync(join(dir, 'scenario.json'), JSON.stringify(scenario));
  model = new ReplayModel(scenario, events);
  stack = await startStack();
  browser = await launchBrowser();
  page = await browser.newPage(CONSOLE_VIEWPORT);
});

afterEach(() => {
  const errors = browser.errors.splice(0);
  expect(errors, errors.join('\n')).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const timeOf = async () => Number(await page.locator('#replay-time').getAttribute('data-t'));

it('(e) opens a replay log and its scenario, scrubs and plays it on the map', async () => {
  await page.goto(`${stack.base}/replay`);
  await page.locator('#events-file').setInputFiles(join(dir, 'events.ndjson'));
  await page.locator('#scenario-file').setInputFiles(join(dir, 'scenario.json'));
  await page.waitForSelector('body[data-loaded="true"]');
  expect(await page.locator('#replay-info').textContent()).toContain(
    `${scenario.incidents.length} incidents, ${scenario.units.length} units`,
  );
  expect(await page.locator('path.area-subdistrict').count()).toBe(3);
  expect(await page.locator('path.area-cell').count()).toBe(60);
  expect(await page.locator('.unit-marker').count()).toBe(scenario.units.length);
  expect(await page.locator('.incident-marker').count()).toBe(0);

  // Scrub to a moment when a unit is driving: the map shows what the model says.
  const drive = events.find(
    (e): e is Extract<SimEvent, { kind: 'en_route' }> => e.kind === 'en_route' && e.travelS > 60,
  );
  if (!drive) throw new Error('no en_route record with a long drive');
  const t1 = Math.ceil(drive.t + drive.turnoutS + 5);
  await page.locator('#slider').fill(String(t1));
  expect(await timeOf()).toBe(t1);
  const expectIncidents = model.incidentsAt(t1);
  const expectUnits = model.unitsAt(t1);
  expect(await page.locator('.incident-marker').count()).toBe(expectIncidents.length);
  for (const status of ['available', 'offered', 'en_route', 'on_scene'] as const) {
    expect(await page.locator(`.unit-marker[data-status="${status}"]`).count(), status).toBe(
      expectUnits.filter((u) => u.status === status).length,
    );
  }
  const driver = page.locator(`.unit-marker[data-id="${drive.unitId}"]`);
  expect(await driver.getAttribute('data-status')).toBe('en_route');
  const before = await driver.boundingBox();
  await page.locator('#slider').fill(String(Math.floor(drive.t + drive.etaS - 2)));
  // The map redraws on the next frame: wait for it rather than read the box at once.
  await expect
    .poll(
      async () => {
        const after = await driver.boundingBox();
        return before && after ? Math.hypot(after.x - before.x, after.y - before.y) : 0;
      },
      { timeout: 5000 },
    )
    .toBeGreaterThan(3);
  await page.locator('#slider').fill(String(Math.ceil(drive.t + drive.etaS + 1)));
  expect(await driver.getAttribute('data-status')).toBe('on_scene');
  expect(
    await page.locator(`.incident-marker[data-id="${drive.incidentId}"]`).getAttribute('data-status'),
  ).toBe('on_scene');

  // Play at 600×: the clock runs, incidents appear and units change colour.
  await page.locator('#slider').fill('0');
  await page.locator('#speed').selectOption('600');
  await page.locator('#play').click();
  await page.waitForSelector('body[data-playing="true"]');
  await until(async () => (await timeOf()) >= 480, 'eight replay minutes', 8000);
  expect(await page.locator('.incident-marker').count()).toBeGreaterThan(0);
  await browser.screenshot(page, 'replay-playing');
  await page.locator('#play').click();
  await page.waitForSelector('body[data-playing="false"]');
  const paused = await timeOf();
  await new Promise((r) => setTimeout(r, 300));
  expect(await timeOf()).toBe(paused);
  expect(Number(await page.locator('[data-count="reported"]').textContent())).toBe(
    model.countsAt(paused).reported,
  );

  // The end: every incident resolved, every unit available.
  await page.locator('#slider').fill(String(Math.ceil(model.endT)));
  await until(async () => (await page.locator('[data-count="open"]').textContent()) === '0', 'nothing open');
  expect(Number(await page.locator('[data-count="resolved"]').textContent())).toBe(
    events.filter((e) => e.kind === 'resolved').length,
  );
  expect(await page.locator('.unit-marker[data-status="available"]').count()).toBe(scenario.units.length);
  expect(await page.locator('#feed li').count()).toBeGreaterThan(0);
});

it('refuses a file that is not an event log, naming the line', async () => {
  const bad = join(dir, 'bad.ndjson');
  writeFileSync(bad, '{"t":0,"kind":"reported","incidentId":"X"}\nnot json\n');
  await page.locator('#events-file').setInputFiles(bad);
  await expect.poll(() => page.locator('#replay-error').textContent()).toBe('Events: line 2: not JSON');
});
