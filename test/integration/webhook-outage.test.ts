// Acceptance: a webhook receiver that is down for 10 minutes receives every update afterwards,
// in order, exactly once per change as far as its idempotency key shows — and dispatch goes on
// meanwhile. A real HTTP receiver on 127.0.0.1 refuses connections (not listening) for ten
// minutes of the injected clock, then listens again on the same port; the webhook sender's
// back-off counts in that clock (virtual time: no test waits ten minutes). Memory store, then
// PostgreSQL. Also: dead letters (a permanent refusal, attempts exhausted), seen and retried.

import { afterEach, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../src/engine/webhooks.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import type { Store } from '../../src/store/store.ts';
import { at, DISPATCHER, Receiver, type Stack, stack, unit, WEBHOOK_SECRET } from './followup-harness.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function withStack(
  open: () => Promise<{ store: Store; close(): Promise<void> }>,
  webhooks = {},
): Promise<Stack> {
  const s = await open();
  const st = await stack({
    store: s.store,
    followUp: { webhooks: { backoffS: [5, 15, 30, 60, 120], maxAttempts: 30, ...webhooks } },
  });
  cleanups.push(async () => {
    await st.stop();
    await s.close();
  });
  await st.addUnit('P1', ['police'], at(0.5));
  await st.addUnit('P2', ['police'], at(3));
  await st.settle();
  return st;
}

/** Records and sends what is due at the clock's now. */
async function step(st: Stack, s: number): Promise<void> {
  st.clock.advance(s);
  await st.settle();
  await st.followUp.webhooks.tick();
}

function outage(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  describe(`reporter webhooks through a 10-minute receiver outage (${name})`, () => {
    it('every update arrives afterwards, in order, once per idempotency key; dispatch went on meanwhile', async () => {
      const st = await withStack(open);
      const rx = await Receiver.reserve();
      // The receiver is down from the start.
      const t0 = st.clock.now();
      const a = await st.engine.reportIncident(
        { type: 'burglary-report', location: at(0.6), callback: rx.url },
        undefined,
        DISPATCHER,
      );
      const offer1 = await st.offerFor('P1', a.incident.id);
      await st.engine.acknowledge(offer1.assignment.id, true, unit('P1'));
      await st.engine.reportStatus('P1', 'en_route', unit('P1'));
      await step(st, 10);

      // Ten minutes of virtual time, the incident moving on and a second one reported meanwhile.
      let b: Awaited<ReturnType<typeof st.engine.reportIncident>> | undefined;
      while (st.clock.now() < t0 + 600) {
        const dt = st.clock.now() - t0;
        if (dt === 120) await st.engine.reportStatus('P1', 'on_scene', unit('P1'));
        if (dt === 200) {
          b = await st.engine.reportIncident(
            { type: 'noise-complaint', location: at(2.8, 0.2), callback: rx.url },
            undefined,
            DISPATCHER,
          );
          // Dispatch is not held up by the failing receiver: the offer goes out at once.
          const offer2 = await st.offerFor('P2', b.incident.id);
          await st.engine.acknowledge(offer2.assignment.id, true, unit('P2'));
        }
        if (dt === 300) await st.engine.reportStatus('P1', 'available', unit('P1'));
        if (dt === 420) await st.engine.closeIncident(a.incident.id, DISPATCHER, 'report taken');
        if (dt === 480) await st.engine.reportStatus('P2', 'on_scene', unit('P2'));
        await step(st, 10);
      }
      expect(rx.got).toEqual([]);
      const pendingDuring = await st.followUp.side.listDeliveries({ state: 'pending', limit: 1000 });
      expect(pendingDuring.length).toBeGreaterThanOrEqual(7);
      const heads = await st.followUp.webhooks.deliveriesOf(a.incident.id);
      expect(heads[0].attempts).toBeGreaterThanOrEqual(6); // retried through the outage
      expect(heads[0].lastError).toMatch(/ECONNREFUSED/);
      expect(heads.slice(1).every((d) => d.attempts === 0)).toBe(true); // later ones waited their turn
      // The receiver, not each delivery, is backed off: one probe per back-off step in all.
      const attempts = pendingDuring.reduce((n, d) => n + d.attempts, 0);
      expect(attempts).toBe(heads[0].attempts);
      expect(attempts).toBeLessThanOrEqual(12);

      // The receiver is back after 10 minutes; within one back-off step everything arrives.
      await rx.up();
      cleanups.push(() => rx.down());
      for (let i = 0; i < 60 && rx.got.length < pendingDuring.length; i++) await step(st, 10);

      const sent = await st.followUp.side.listDeliveries({ limit: 1000 });
      expect(sent.every((d) => d.state === 'delivered')).toBe(true);
      expect(rx.got).toHaveLength(sent.length);
      // Exactly once per key.
      expect(new Set(rx.got.map((g) => g.key)).size).toBe(rx.got.length);
      // In order per incident, every public change of each.
      const seqs = (id: string) => rx.got.filter((g) => g.incidentId === id).map((g) => [g.seq, g.status]);
      expect(seqs(a.incident.id)).toEqual([
        [1, 'received'],
        [2, 'assigned'],
        [3, 'on_scene'],
        [4, 'resolved'],
        [5, 'closed'],
      ]);
      expect(seqs(b!.incident.id)).toEqual([
        [1, 'received'],
        [2, 'assigned'],
        [3, 'on_scene'],
      ]);
      for (const g of rx.got) {
        expect(g.key).toBe(`${g.incidentId}:${g.seq}`);
        // Signed with the shared secret, stamped with the (virtual) time of the attempt.
        expect(
          verifyWebhook(
            WEBHOOK_SECRET,
            { signature: g.signature, timestamp: g.timestamp },
            g.body,
            st.clock.now(),
          ),
        ).toBe(true);
        expect(Number(g.timestamp)).toBeGreaterThanOrEqual(t0 + 600);
        // No unit or staff identity in what the reporter hears.
        expect(g.body).not.toMatch(/P1|P2|d\.li|dispatcher|unit/);
      }
      // Nothing more is sent once everything is delivered.
      const n = rx.got.length;
      await step(st, 600);
      expect(rx.got).toHaveLength(n);
      expect(await st.followUp.webhooks.deadLetters()).toEqual([]);
    });

    it('a permanent refusal or the last attempt goes to the dead-letter list; a retry delivers it', async () => {
      const st = await withStack(open, { backoffS: [5], maxAttempts: 3 });
      const rx = await Receiver.reserve();
      await rx.up();
      cleanups.push(() => rx.down());
      rx.answer = 410; // Gone: permanent
      const a = await st.engine.reportIncident(
        { type: 'burglary-report', location: at(0.6), callback: rx.url },
        undefined,
        DISPATCHER,
      );
      const offer = await st.offerFor('P1', a.incident.id);
      await step(st, 1);
      // Both updates so far (received, assigned) are refused for good: neither waits on the other.
      let dead = await st.followUp.webhooks.deadLetters();
      expect(dead.map((d) => [d.seq, d.status, d.attempts, d.lastHttpStatus])).toEqual([
        [2, 'assigned', 1, 410],
        [1, 'received', 1, 410],
      ]);
      // A receiver error (503) is retried, and dead after the last attempt (3 here).
      rx.answer = 503;
      await st.engine.acknowledge(offer.assignment.id, true, unit('P1'));
      await st.engine.reportStatus('P1', 'on_scene', unit('P1'));
      await step(st, 1);
      expect(
        (await st.followUp.webhooks.deliveriesOf(a.incident.id)).map((d) => [d.seq, d.state, d.attempts]),
      ).toEqual([
        [1, 'dead', 1],
        [2, 'dead', 1],
        [3, 'pending', 1],
      ]);
      await step(st, 5);
      await step(st, 5);
      dead = await st.followUp.webhooks.deadLetters();
      expect(dead.map((d) => [d.seq, d.attempts, d.lastHttpStatus])).toEqual([
        [3, 3, 503],
        [2, 1, 410],
        [1, 1, 410],
      ]);
      expect(rx.got).toEqual([]);
      // The dispatcher retries them: delivered, in order.
      rx.answer = 204;
      for (const d of [...dead].reverse()) await st.followUp.webhooks.retry(d.id);
      await step(st, 1);
      expect(rx.got.map((g) => [g.seq, g.status])).toEqual([
        [1, 'received'],
        [2, 'assigned'],
        [3, 'on_scene'],
      ]);
      expect(await st.followUp.webhooks.deadLetters()).toEqual([]);
    });

    it('a reporter reference (not a URL) gets no webhook; an incident without callback neither', async () => {
      const st = await withStack(open);
      const a = await st.engine.reportIncident(
        { type: 'burglary-report', location: at(0.6), callback: '+86 20 1234 5678' },
        undefined,
        DISPATCHER,
      );
      const b = await st.engine.reportIncident(
        { type: 'noise-complaint', location: at(2.6) },
        undefined,
        DISPATCHER,
      );
      await st.offerFor('P1', a.incident.id);
      await st.offerFor('P2', b.incident.id);
      await step(st, 1);
      expect(await st.followUp.side.listDeliveries({ state: 'pending' })).toEqual([]);
      expect(await st.followUp.side.listDeliveries({ state: 'delivered' })).toEqual([]);
    });
  });
}

outage('memory store', async () => ({ store: new MemoryStore(), close: async () => {} }));

outage('PostgreSQL', async () => {
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
