// Review flags on the live engine: each flag raised by what units and dispatchers really do
// through the engine's API, and its counterpart that must not be raised; then a supervisor
// lists them and resolves one with a note over HTTP, and the audit trail keeps it. Memory
// store, then PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offsetM } from '../../src/core/geo.ts';
import type { LonLat } from '../../src/core/types.ts';
import { type App, buildApp } from '../../src/server/app.ts';
import { mintToken } from '../../src/server/auth.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import type { Store } from '../../src/store/store.ts';
import { at, DISPATCHER, type Stack, stack, unit } from './followup-harness.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECRET = 'reviews-test-jwt-secret-0123456789abcdef';

function reviewsOn(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  describe(`review flags on the live engine (${name})`, () => {
    let st: Stack;
    let app: App;
    let close: () => Promise<void>;
    let store: Store;
    const tokens: Record<string, string> = {};
    const ids: Record<string, string> = {};

    const report = async (key: string, location: LonLat, type = 'burglary-report') => {
      const r = await st.engine.reportIncident({ type, location }, undefined, DISPATCHER);
      ids[key] = r.incident.id;
      return r.incident.id;
    };
    /** The unit's current offer (after the engine decided). */
    const offer = async (unitId: string, incidentId: string) =>
      (await st.offerFor(unitId, incidentId)).assignment.id;
    /** The next-best unit takes the incident, drives there, clears and goes home again. */
    const serve = async (unitId: string, incidentId: string) => {
      await st.engine.acknowledge(await offer(unitId, incidentId), true, unit(unitId));
      st.clock.advance(900);
      const loc = (await st.engine.getIncident(incidentId, DISPATCHER)).location;
      await st.engine.reportLocation(unitId, loc, unit(unitId));
      await st.engine.reportStatus(unitId, 'on_scene', unit(unitId));
      await st.engine.reportStatus(unitId, 'available', unit(unitId));
      const home = (await st.engine.listUnits(DISPATCHER)).find((u) => u.id === unitId)!.home;
      await st.engine.reportLocation(unitId, home, unit(unitId));
      st.clock.advance(300);
      await st.settle();
    };

    beforeAll(async () => {
      const s = await open();
      store = s.store;
      close = s.close;
      st = await stack({
        store: s.store,
        config: { ackTimeoutS: 30, ackTimeoutOtherS: 30, nonResponseThreshold: 3 },
        followUp: { reviews: { declineThreshold: 3 } },
      });
      app = buildApp({ engine: st.engine, store: s.store, auth: { secret: SECRET }, followUp: st.followUp });
      tokens.dispatcher = await mintToken({ role: 'dispatcher', sub: 'd.li' }, SECRET);
      tokens.planner = await mintToken({ role: 'planner', sub: 'p.wu' }, SECRET);
      tokens.unit = await mintToken({ role: 'unit', unitId: 'A1' }, SECRET);

      // Each scene below has its own units, far (> 30 km) from the others'.
      // 1. on scene 350 m away (flagged) and 250 m away (not).
      await st.addUnit('A1', ['police'], at(0.5));
      await st.addUnit('A2', ['police'], at(0.5, 40));
      // 2. too fast (flagged) and plausible (not).
      await st.addUnit('F1', ['police'], at(40));
      await st.addUnit('F2', ['police'], at(40, 40));
      // 3. offers timing out: N1 three times (flagged), N2 twice (not); R1 catches them.
      await st.addUnit('N1', ['ambulance'], at(80), 'health');
      await st.addUnit('N2', ['ambulance'], at(80, 40), 'health');
      await st.addUnit('R1', ['ambulance'], at(84), 'health');
      await st.addUnit('R2', ['ambulance'], at(84, 40), 'health');
      // 4. declines: D1 four (flagged), D2 three (not).
      await st.addUnit('D1', ['chengguan'], at(120), 'chengguan');
      await st.addUnit('D2', ['chengguan'], at(120, 40), 'chengguan');
      await st.addUnit('S1', ['chengguan'], at(124), 'chengguan');
      await st.addUnit('S2', ['chengguan'], at(124, 40), 'chengguan');
      await st.settle();
    });

    afterAll(async () => {
      await app?.close();
      await st?.stop();
      await close?.();
    });

    it('on scene 350 m from the incident is flagged; 250 m is not', async () => {
      const far = await report('far', at(0.6));
      const near = await report('near', at(0.6, 40));
      await st.engine.acknowledge(await offer('A1', far), true, unit('A1'));
      await st.engine.acknowledge(await offer('A2', near), true, unit('A2'));
      const farLoc = (await st.engine.getIncident(far, DISPATCHER)).location;
      const nearLoc = (await st.engine.getIncident(near, DISPATCHER)).location;
      await st.engine.reportLocation('A1', offsetM(farLoc, 350, 0), unit('A1'));
      await st.engine.reportLocation('A2', offsetM(nearLoc, 0, 250), unit('A2'));
      st.clock.advance(600);
      await st.engine.reportStatus('A1', 'on_scene', unit('A1'));
      await st.engine.reportStatus('A2', 'on_scene', unit('A2'));
      await st.settle();
      await st.followUp.reviews.scanAll();
      const flags = await st.followUp.reviews.list({ kind: 'on_scene_far' }, DISPATCHER);
      expect(flags.map((f) => [f.incidentId, f.unitId])).toEqual([[far, 'A1']]);
      expect(flags[0].evidence).toMatchObject({ distanceM: 350, thresholdM: 300 });
      // The incident's timeline says so too.
      const tl = (await st.engine.getIncident(far, DISPATCHER)).timeline;
      expect(tl.find((e) => e.kind === 'review_flagged')?.data).toMatchObject({ reviewKind: 'on_scene_far' });
    });

    it('on scene sooner than travel allows is flagged; a plausible trip is not', async () => {
      const quick = await report('quick', at(43));
      const slow = await report('slow', at(43, 40));
      // Both set off 3 km away.
      await st.engine.acknowledge(await offer('F1', quick), true, unit('F1'));
      await st.engine.acknowledge(await offer('F2', slow), true, unit('F2'));
      await st.engine.reportStatus('F1', 'en_route', unit('F1'));
      await st.engine.reportStatus('F2', 'en_route', unit('F2'));
      st.clock.advance(30);
      const quickLoc = (await st.engine.getIncident(quick, DISPATCHER)).location;
      await st.engine.reportLocation('F1', quickLoc, unit('F1'));
      await st.engine.reportStatus('F1', 'on_scene', unit('F1'));
      st.clock.advance(400);
      const slowLoc = (await st.engine.getIncident(slow, DISPATCHER)).location;
      await st.engine.reportLocation('F2', slowLoc, unit('F2'));
      await st.engine.reportStatus('F2', 'on_scene', unit('F2'));
      await st.settle();
      // Scanning these on-scene events reads no incident back (their facts are on them).
      const read: string[] = [];
      const getIncidents = store.getIncidents;
      store.getIncidents = (ids) => {
        read.push(...ids);
        return getIncidents.call(store, ids);
      };
      try {
        await st.followUp.reviews.scanAll();
      } finally {
        store.getIncidents = getIncidents;
      }
      expect(read).toEqual([]);
      const flags = await st.followUp.reviews.list({ kind: 'too_fast' }, DISPATCHER);
      expect(flags.map((f) => [f.incidentId, f.unitId])).toEqual([[quick, 'F1']]);
      expect(flags[0].evidence).toMatchObject({
        startVia: 'en_route',
        elapsedS: 30,
        tripM: expect.any(Number),
      });
      expect(Number(flags[0].evidence.tripM)).toBeGreaterThan(2900);
      // The engine put the trip's facts on the on-scene event: its review looked nothing up.
      const ev = (await st.engine.getIncident(quick, DISPATCHER)).timeline.find(
        (x) => x.kind === 'on_scene' && x.unitId === 'F1',
      );
      expect(ev?.data).toMatchObject({
        incidentLocation: quickLoc,
        trip: { via: 'en_route', t: flags[0].evidence.startT, position: flags[0].evidence.from },
        speedKmh: flags[0].evidence.speedKmh,
      });
    });

    it('three offers timing out in a shift are flagged; two are not', async () => {
      const timeOut = async (unitId: string, rescuer: string, key: string, where: LonLat) => {
        const inc = await report(key, where, 'medical-emergency');
        const a = await offer(unitId, inc);
        st.clock.advance(30); // the ack deadline, as the timer worker fires it
        await st.engine.onAckDeadline(a);
        await serve(rescuer, inc);
      };
      for (let i = 0; i < 3; i++) await timeOut('N1', 'R1', `n1-${i}`, at(80.2 + i * 0.1));
      for (let i = 0; i < 2; i++) await timeOut('N2', 'R2', `n2-${i}`, at(80.2 + i * 0.1, 40));
      await st.followUp.reviews.scanAll();
      const flags = await st.followUp.reviews.list({ kind: 'repeated_non_response' }, DISPATCHER);
      expect(flags.map((f) => f.unitId)).toEqual(['N1']);
      expect(flags[0].evidence).toMatchObject({ count: 3, threshold: 3 });
    });

    it('four declines in a shift are flagged at threshold 3; three are not', async () => {
      const decline = async (unitId: string, other: string, key: string, where: LonLat, reason: string) => {
        const inc = await report(key, where, 'street-vending');
        await st.engine.acknowledge(await offer(unitId, inc), false, unit(unitId), reason);
        await serve(other, inc);
      };
      for (let i = 0; i < 4; i++)
        await decline('D1', 'S1', `d1-${i}`, at(120.2 + i * 0.1), i % 2 ? 'meal break' : 'vehicle fault');
      for (let i = 0; i < 3; i++) await decline('D2', 'S2', `d2-${i}`, at(120.2 + i * 0.1, 40), 'meal break');
      await st.followUp.reviews.scanAll();
      const flags = await st.followUp.reviews.list({ kind: 'declines_above_threshold' }, DISPATCHER);
      expect(flags.map((f) => f.unitId)).toEqual(['D1']);
      expect((flags[0].evidence.offers as { reason: string }[]).map((o) => o.reason)).toEqual([
        'vehicle fault',
        'meal break',
        'vehicle fault',
        'meal break',
      ]);
    });

    it('an incident closed without an on-scene report is flagged; one closed after arrival is not', async () => {
      const phone = await report('phone', at(0.7, 0.7), 'noise-complaint');
      await st.settle();
      await st.engine.closeIncident(phone, DISPATCHER, 'settled by phone');
      await st.engine.reportStatus('A1', 'available', unit('A1'));
      await st.engine.closeIncident(ids.far, DISPATCHER, 'report taken');
      await st.settle();
      await st.followUp.reviews.scanAll();
      const flags = await st.followUp.reviews.list({ kind: 'closed_without_on_scene' }, DISPATCHER);
      expect(flags.map((f) => f.incidentId)).toEqual([phone]);
      expect(flags[0].evidence).toMatchObject({ closedBy: 'dispatcher:d.li', note: 'settled by phone' });
      // Scanning again raises nothing twice.
      expect(await st.followUp.reviews.scanAll()).toBe(0);
    });

    it('a supervisor lists the flags and resolves one with a note; the audit trail keeps it', async () => {
      const call = (token: string, method: 'GET' | 'POST', url: string, payload?: unknown) =>
        app.inject({
          method,
          url,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
          ...(payload ? { payload: JSON.stringify(payload) } : {}),
        });
      const list = await call(tokens.planner, 'GET', '/v1/reviews');
      expect(list.statusCode).toBe(200);
      const open = list.json().reviews as { id: string; kind: string; status: string }[];
      expect(open.map((r) => r.kind).sort()).toEqual([
        'closed_without_on_scene',
        'declines_above_threshold',
        'on_scene_far',
        'repeated_non_response',
        'too_fast',
      ]);
      const target = open.find((r) => r.kind === 'on_scene_far')!;
      expect((await call(tokens.unit, 'GET', '/v1/reviews')).statusCode).toBe(403);
      const byPlanner = await call(tokens.planner, 'POST', `/v1/reviews/${target.id}/resolve`, { note: 'x' });
      expect(byPlanner.json().error.code).toBe('FORBIDDEN');
      const noNote = await call(tokens.dispatcher, 'POST', `/v1/reviews/${target.id}/resolve`, {});
      expect([noNote.statusCode, noNote.json().error.code]).toEqual([400, 'VALIDATION_FAILED']);
      const ok = await call(tokens.dispatcher, 'POST', `/v1/reviews/${target.id}/resolve`, {
        note: 'GPS drift under the flyover; crew confirmed at the door',
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ id: target.id, status: 'resolved', resolvedBy: 'dispatcher:d.li' });
      const again = await call(tokens.dispatcher, 'POST', `/v1/reviews/${target.id}/resolve`, {
        note: 'again',
      });
      expect([again.statusCode, again.json().error.code]).toEqual([409, 'ALREADY_RESOLVED']);
      const missing = await call(tokens.dispatcher, 'POST', '/v1/reviews/rev_nope/resolve', { note: 'n' });
      expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'NOT_FOUND']);
      const badKind = await call(tokens.dispatcher, 'GET', '/v1/reviews?kind=speeding');
      expect([badKind.statusCode, badKind.json().error.code]).toEqual([400, 'VALIDATION_FAILED']);
      expect((await call(tokens.dispatcher, 'GET', '/v1/reviews')).json().reviews).toHaveLength(4);
      const resolved = (await call(tokens.dispatcher, 'GET', '/v1/reviews?status=resolved')).json().reviews;
      expect(resolved.map((r: { id: string; note: string }) => [r.id, r.note])).toEqual([
        [target.id, 'GPS drift under the flyover; crew confirmed at the door'],
      ]);
      const audit = await st.store.listAudit({ limit: 100_000 });
      expect(audit.find((a) => a.action === 'review.resolve')).toMatchObject({
        actor: 'dispatcher:d.li',
        subject: target.id,
        data: { kind: 'on_scene_far', note: 'GPS drift under the flyover; crew confirmed at the door' },
      });
      expect((await st.store.verifyAudit()).ok).toBe(true);
    });
  });
}

reviewsOn('memory store', async () => ({ store: new MemoryStore(), close: async () => {} }));

reviewsOn('PostgreSQL', async () => {
  const db = await createDatabase(ADMIN_URL);
  const store = await SqlStore.open(createPgClient(db.url, { max: 6 }));
  return {
    store,
    async close() {
      await store.close();
      await dropDatabase(ADMIN_URL, db.name);
    },
  };
});
