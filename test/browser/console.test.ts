// The dispatcher console and the field-unit page in a real browser (Debian's Chromium via
// playwright-core) against the real live stack: Engine + MemoryStore + in-process queue and
// workers + startHttp serving dist/console, with the demo district's areas and 40 units.
// Screenshots go to test-artifacts/screenshots/; any browser console error or page error
// fails the test.

import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LonLat } from '../../src/core/types.ts';
import type { IncidentDetailView } from '../../src/engine/api.ts';
import type { AlertView, IncidentView, UnitView } from '../../src/shared/events.ts';
import {
  type BrowserSession,
  CONSOLE_VIEWPORT,
  launchBrowser,
  PHONE_VIEWPORT,
  type Stack,
  startStack,
  until,
} from './harness.ts';

/** A test ambulance standing alone north of the district's stations: nearest to TEST_SCENE. */
const TEST_UNIT = 'AMB-T1';
const TEST_HOME: LonLat = [113.47, 23.115];
const TEST_SCENE: LonLat = [113.4704, 23.1153];

let stack: Stack;
let browser: BrowserSession;
let dispatcher: string;
let admin: string;
let consolePage: Page;

beforeAll(async () => {
  stack = await startStack();
  dispatcher = await stack.token('dispatcher');
  admin = await stack.token('admin');
  const res = await stack.http(admin, 'PUT', `/v1/units/${TEST_UNIT}`, {
    department: 'health',
    capabilities: ['ambulance'],
    home: TEST_HOME,
    speedKmh: 40,
    turnoutS: 30,
  });
  expect(res.status, await res.clone().text()).toBe(200);
  browser = await launchBrowser({ geolocation: TEST_HOME });
  consolePage = await browser.newPage(CONSOLE_VIEWPORT);
  await consolePage.goto(`${stack.base}/?token=${encodeURIComponent(dispatcher)}`);
  await consolePage.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
});

afterEach(() => {
  // Any console error or page error in any page fails the test that caused it.
  const errors = browser.errors.splice(0);
  expect(errors, errors.join('\n')).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function report(
  type: string,
  location: LonLat,
  token = dispatcher,
  base = stack,
): Promise<IncidentView> {
  const res = await base.http(token, 'POST', '/v1/incidents', { type, location, source: 'browser-test' });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as IncidentView;
}

async function detail(id: string, s = stack): Promise<IncidentDetailView> {
  const res = await s.http(dispatcher, 'GET', `/v1/incidents/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as IncidentDetailView;
}

describe('dispatcher console', () => {
  it('logs in from ?token=, draws the areas, the units and the KPI strip; the token leaves the URL', async () => {
    const page = consolePage;
    expect(new URL(page.url()).searchParams.get('token')).toBeNull();
    expect(await page.evaluate(() => sessionStorage.getItem('dispatch.console.token'))).toBeTruthy();
    // 3 sub-districts and 60 grid cells as SVG paths, 41 unit markers.
    await until(async () => (await page.locator('path.area-subdistrict').count()) === 3, 'the sub-districts');
    expect(await page.locator('path.area-cell').count()).toBe(60);
    expect(await page.locator('.unit-marker').count()).toBe(stack.scenario.units.length + 1);
    expect(await page.locator('.unit-marker[data-status="available"]').count()).toBe(
      stack.scenario.units.length + 1,
    );
    await expect
      .poll(() => page.locator('#kpi-busy .kpi-value').textContent())
      .toBe(`0/${stack.scenario.units.length + 1}`);
    expect(await page.locator('#kpi-open .kpi-value').textContent()).toBe('0');
    // The map fills its part of a 1280×800 screen next to the side panel.
    const box = await page.locator('#map').boundingBox();
    expect(box?.width).toBeGreaterThan(780);
    expect(box?.height).toBeGreaterThan(700);
  });

  it('without a token asks for one in a field, refuses a unit token there, and logs in with a dispatcher token', async () => {
    const page = await browser.newPage(CONSOLE_VIEWPORT);
    await page.goto(`${stack.base}/`);
    const form = page.locator('#login');
    await form.waitFor();
    await form.locator('input[name=token]').fill(await stack.unitToken('AMB-001'));
    await form.locator('button[type=submit]').click();
    await expect.poll(() => form.locator('.login-error').textContent()).toContain('dispatcher token');
    await browser.screenshot(page, 'console-login');
    await form.locator('input[name=token]').fill(dispatcher);
    await form.locator('button[type=submit]').click();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    expect(await form.isHidden()).toBe(true);
    // The unit page refuses a dispatcher token the same way.
    await page.goto(`${stack.base}/unit.html`);
    await page.locator('#login input[name=token]').fill(dispatcher);
    await page.locator('#login button[type=submit]').click();
    await expect.poll(() => page.locator('#login .login-error').textContent()).toContain('unit token');
    await page.close();
  });

  it('(a) shows an incident posted via the API within 1 s — on the map and in the queue', async () => {
    const page = consolePage;
    const t0 = Date.now();
    const inc = await report('structure-fire', [113.452, 23.098]);
    await page.waitForSelector(`.incident-marker[data-id="${inc.id}"]`, { timeout: 1000 });
    await page.waitForSelector(`#queue .q-row[data-id="${inc.id}"]`, {
      timeout: Math.max(1, 1000 - (Date.now() - t0)),
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    // The engine assigns two fire engines at once; the console follows.
    await until(
      async () => (await page.locator('.unit-marker[data-status="offered"]').count()) >= 2,
      'two fire engines offered on the map',
    );
    await expect.poll(() => page.locator('#kpi-open .kpi-value').textContent()).toBe('1');
    // A few more for a realistic picture, then the screenshot.
    const more: [string, LonLat][] = [
      ['traffic-collision-injury', [113.481, 23.108]],
      ['street-vending', [113.437, 23.087]],
      ['food-safety', [113.492, 23.082]],
      ['noise-complaint', [113.447, 23.113]],
    ];
    for (const [type, at] of more) await report(type, at);
    await until(async () => (await page.locator('#queue .q-row').count()) === 5, 'five incidents queued');
    // Sorted by priority: the P1 fire first.
    expect(await page.locator('#queue .q-row').first().getAttribute('data-id')).toBe(inc.id);
    await page.locator(`#queue .q-row[data-id="${inc.id}"] button`).click();
    await page.waitForSelector(`#detail[data-id="${inc.id}"] .asg .asg-why`);
    // The engine's explanation: summary and alternatives.
    const why = await page.locator('#detail .asg.active .asg-why').first().textContent();
    expect(why).toMatch(/FE-\d+/);
    expect(await page.locator('#detail .asg.active .alternatives summary').count()).toBeGreaterThan(0);
    await page.locator('#detail .asg.active .alternatives summary').first().click();
    await expect
      .poll(() => page.locator('#detail .countdown.target-left').textContent())
      .toMatch(/^\d\d:\d\d$/);
    await browser.screenshot(page, 'console-live');
  });

  it('reconnects after the server drops the socket and replays what it missed (auth.lastSeq)', async () => {
    const page = consolePage;
    stack.server.sockets.io.disconnectSockets(true);
    await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 2000 });
    const missed = await report('illegal-parking', [113.466, 23.079]);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await page.waitForSelector(`.incident-marker[data-id="${missed.id}"]`, { timeout: 3000 });
    await page.waitForSelector(`#queue .q-row[data-id="${missed.id}"]`);
  });

  it('reports an incident by clicking the map and choosing a type', async () => {
    const page = consolePage;
    const before = await page.locator('.incident-marker').count();
    const map = await page.locator('#map').boundingBox();
    if (!map) throw new Error('no map');
    // An empty spot a little left of the centre.
    await page.mouse.click(map.x + map.width * 0.3, map.y + map.height * 0.62);
    const form = page.locator('.report-form');
    await form.waitFor();
    await form.locator('select[name=type]').selectOption('gas-leak');
    await form.locator('input[name=description]').fill('smell of gas in the stairwell');
    await form.locator('button[type=submit]').click();
    await until(
      async () => (await page.locator('.incident-marker').count()) === before + 1,
      'the new marker',
    );
    await page.waitForSelector('#detail:not([hidden]) .detail-title');
    expect(await page.locator('#detail .detail-title').textContent()).toContain('Gas leak');
    const id = await page.locator('#detail').getAttribute('data-id');
    const d = await detail(id ?? '');
    expect(d.type).toBe('gas-leak');
    expect(d.timeline[0]).toMatchObject({ kind: 'reported' });
  });

  it('(b) a unit page accepts an offer and reports en route and on scene; the console shows each step', async () => {
    const unitPage = await browser.newPage(PHONE_VIEWPORT);
    await unitPage.goto(`${stack.base}/unit?token=${encodeURIComponent(await stack.unitToken(TEST_UNIT))}`);
    await unitPage.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    expect(await unitPage.locator('#unit-id').textContent()).toBe(TEST_UNIT);
    // The position from navigator.geolocation reaches the engine.
    await unitPage.waitForSelector('#gps[data-state="ok"]', { timeout: 10_000 });

    // First offer: declined with a reason from the picker.
    const first = await report('medical-emergency', TEST_SCENE);
    await unitPage.waitForSelector(`#offer:not([hidden])[data-incident="${first.id}"]`, { timeout: 5000 });
    await browser.screenshot(unitPage, 'unit-offer');
    await unitPage.locator('#offer .btn-decline').click();
    await unitPage
      .locator('#offer .decline-reasons label', { hasText: 'Vehicle or equipment fault' })
      .click();
    await unitPage.locator('#offer .btn-send-decline').click();
    await until(
      async () =>
        (await detail(first.id)).assignments.find((a) => a.unitId === TEST_UNIT && a.status === 'declined'),
      'the decline recorded',
    );
    expect((await detail(first.id)).assignments.find((a) => a.unitId === TEST_UNIT)?.reason).toBe(
      'Vehicle or equipment fault',
    );
    await unitPage.waitForSelector('#offer', { state: 'hidden' });

    // Second offer: accepted, then en route and on scene from the status buttons.
    // (More than 100 m from the first, or the engine would merge it as a duplicate report.)
    const second = await report('medical-emergency', [TEST_SCENE[0] + 0.0018, TEST_SCENE[1] - 0.0004]);
    await unitPage.waitForSelector(`#offer:not([hidden])[data-incident="${second.id}"]`, { timeout: 5000 });
    await consolePage.locator(`#queue .q-row[data-id="${second.id}"] button`).click();
    await unitPage.locator('#offer .btn-accept').click();
    await unitPage.waitForSelector(
      `#job:not([hidden])[data-status="accepted"][data-incident="${second.id}"]`,
    );
    // The console shows the acceptance in the incident's assignments.
    await consolePage.waitForSelector(`#detail .asg[data-unit="${TEST_UNIT}"][data-status="accepted"]`, {
      timeout: 3000,
    });

    await unitPage.locator('.btn-status[data-status="en_route"]').click();
    await unitPage.waitForSelector('#job[data-status="en_route"]');
    await consolePage.waitForSelector(`.unit-marker[data-id="${TEST_UNIT}"][data-status="en_route"]`, {
      timeout: 3000,
    });
    await consolePage.waitForSelector(`.incident-marker[data-id="${second.id}"][data-status="en_route"]`);
    await browser.screenshot(unitPage, 'unit-en-route');

    await unitPage.locator('.btn-status[data-status="on_scene"]').click();
    await unitPage.waitForSelector('#job[data-status="on_scene"]');
    await consolePage.waitForSelector(`.unit-marker[data-id="${TEST_UNIT}"][data-status="on_scene"]`, {
      timeout: 3000,
    });
    await consolePage.waitForSelector(`#detail .asg[data-unit="${TEST_UNIT}"][data-status="on_scene"]`);
    await browser.screenshot(consolePage, 'console-unit-on-scene');

    // Cleared: the incident resolves; the dispatcher closes it from the console.
    await unitPage.locator('.btn-status[data-status="available"]').click();
    await consolePage.waitForSelector(`#detail[data-id="${second.id}"][data-status="resolved"]`, {
      timeout: 3000,
    });
    await consolePage.locator('#detail .action-close').click();
    await consolePage.waitForSelector(`.incident-marker[data-id="${second.id}"]`, {
      state: 'detached',
      timeout: 3000,
    });
    expect((await detail(second.id)).status).toBe('closed');
    await unitPage.waitForSelector('#idle:not([hidden])');
    await unitPage.close();
  });

  it('(c) a dispatcher reassigns an incident through the console', async () => {
    const page = consolePage;
    const inc = await report('burglary-report', [113.4605, 23.1003]);
    const first = await until(
      async () => (await detail(inc.id)).assignments.find((a) => a.status === 'offered'),
      'the engine’s first offer',
    );
    const units = ((await (await stack.http(dispatcher, 'GET', '/v1/units')).json()) as { units: UnitView[] })
      .units;
    const other = units.find(
      (u) => u.capabilities.includes('police') && u.status === 'available' && u.id !== first.unitId,
    );
    if (!other) throw new Error('no other police unit free');

    await page.locator(`#queue .q-row[data-id="${inc.id}"] button`).click();
    await page.waitForSelector(`#detail[data-id="${inc.id}"] .asg[data-unit="${first.unitId}"]`);
    await page.locator('#detail .assign-unit').selectOption(other.id);
    await page.locator('#detail .action-reason').fill('closer to the caller');
    await page.locator('#detail .action-assign').click();

    await page.waitForSelector(`#detail .asg[data-unit="${other.id}"][data-status="offered"]`, {
      timeout: 3000,
    });
    await page.waitForSelector(`#detail .asg[data-unit="${first.unitId}"][data-status="cancelled"]`, {
      timeout: 3000,
    });
    expect(await page.locator(`#detail .asg[data-unit="${other.id}"] .asg-why`).textContent()).toMatch(
      /dispatcher override.*closer to the caller/,
    );
    await page.waitForSelector(`.unit-marker[data-id="${other.id}"][data-status="offered"]`);
    const d = await detail(inc.id);
    const active = d.assignments.filter((a) =>
      ['offered', 'accepted', 'en_route', 'on_scene'].includes(a.status),
    );
    expect(active.map((a) => a.unitId)).toEqual([other.id]);
    expect(d.timeline.some((e) => e.actor.includes('test-dispatcher'))).toBe(true);
    await browser.screenshot(page, 'console-reassigned');

    // Cancel needs a second click to confirm.
    await page.locator('#detail .action-cancel').click();
    await page.locator('#detail .action-cancel', { hasText: 'Confirm cancel' }).click();
    await page.waitForSelector(`.incident-marker[data-id="${inc.id}"]`, { state: 'detached', timeout: 3000 });
    expect((await detail(inc.id)).status).toBe('cancelled');
  });
});

describe('alerts', () => {
  let fast: Stack;
  let page: Page;

  beforeAll(async () => {
    // Offers time out after 2 s.
    fast = await startStack({ ackTimeoutS: 2, ackTimeoutOtherS: 2 });
    page = await browser.newPage(CONSOLE_VIEWPORT);
    await page.goto(`${fast.base}/?token=${encodeURIComponent(await fast.token('dispatcher'))}`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
  });

  afterAll(async () => {
    await page?.close();
    await fast?.close();
  });

  it('(d) an offer not acknowledged raises an alert on the console; the dispatcher acknowledges it', async () => {
    const token = await fast.token('dispatcher');
    const res = await fast.http(token, 'POST', '/v1/incidents', {
      type: 'elevator-entrapment',
      location: [113.445, 23.095],
    });
    const inc = (await res.json()) as IncidentView;
    const alert = page.locator(`#alerts .alert[data-kind="no_ack"]`).first();
    await alert.waitFor({ timeout: 6000 });
    expect(await alert.locator('.alert-msg').textContent()).toContain(inc.id);
    await browser.screenshot(page, 'console-alert');
    const id = await alert.getAttribute('data-id');
    await alert.locator('.alert-ack').click();
    await page.waitForSelector(`#alerts .alert[data-id="${id}"]`, { state: 'detached', timeout: 3000 });
    const open = ((await (await fast.http(token, 'GET', '/v1/alerts')).json()) as { alerts: AlertView[] })
      .alerts;
    expect(open.some((a) => a.id === id)).toBe(false);
  });
});
