// The follow-up store's contract (review flags, scanner cursors, webhook deliveries), run
// against the in-memory implementation, PGlite and PostgreSQL. The PostgreSQL part creates and
// drops its own database on DATABASE_URL's server (default the local test server) and fails,
// never skips, without it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followUpStoreFor } from '../../src/store/followup-open.ts';
import type { FollowUpStore, NewDelivery, NewReview } from '../../src/store/followup-store.ts';
import { MemoryDatabase, MemoryStore } from '../../src/store/memory-store.ts';
import { createDatabase, createPgClient, dropDatabase } from '../../src/store/pg-client.ts';
import { createPgliteClient } from '../../src/store/pglite-client.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { isStoreError, type Store } from '../../src/store/store.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const T0 = 1_772_409_600; // 2026-03-02T00:00:00Z

interface Target {
  store: Store;
  side: FollowUpStore;
  /** A second store + side on the same data (a restarted process). */
  reopen(): Promise<{ store: Store; side: FollowUpStore }>;
  /** Empties the follow-up tables and the audit/event tables. */
  reset(): Promise<void>;
  teardown(): Promise<void>;
}

const review = (key: string, over: Partial<NewReview> = {}): NewReview => ({
  key,
  kind: 'on_scene_far',
  at: T0 + 100,
  raisedAt: T0 + 101.5,
  incidentId: 'inc_1',
  unitId: 'P1',
  summary: `flag ${key}`,
  evidence: { distanceM: 412, position: [113.45, 23.1], nested: { a: [1, 2] } },
  ...over,
});

const delivery = (incidentId: string, seq: number, over: Partial<NewDelivery> = {}): NewDelivery => ({
  incidentId,
  seq,
  status: ['received', 'assigned', 'on_scene', 'resolved'][seq - 1] ?? 'closed',
  url: 'https://hooks.example.com/r',
  origin: 'https://hooks.example.com',
  body: JSON.stringify({ id: `${incidentId}:${seq}`, sequence: seq }),
  idempotencyKey: `${incidentId}:${seq}`,
  createdAt: T0 + seq,
  ...over,
});

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (isStoreError(err)) {
      expect(err.code).toBe(code);
      return;
    }
    throw err;
  }
  throw new Error(`expected a StoreError ${code}`);
}

function followUpContract(name: string, make: () => Promise<Target>): void {
  describe(`follow-up store: ${name}`, () => {
    let t: Target;
    beforeAll(async () => {
      t = await make();
    });
    afterAll(async () => {
      await t?.teardown();
    });

    it('a flag is stored once per key, and reads back as written', async () => {
      await t.reset();
      const a = await t.side.addReview(review('k1'));
      expect(a.created).toBe(true);
      expect(a.review).toMatchObject({
        key: 'k1',
        kind: 'on_scene_far',
        status: 'open',
        at: T0 + 100,
        raisedAt: T0 + 101.5,
        incidentId: 'inc_1',
        unitId: 'P1',
        evidence: { distanceM: 412, position: [113.45, 23.1], nested: { a: [1, 2] } },
      });
      expect(a.review.id).toMatch(/^rev_/);
      const again = await t.side.addReview(review('k1', { summary: 'other' }));
      expect(again).toEqual({ review: a.review, created: false });
      expect(await t.side.getReview(a.review.id)).toEqual(a.review);
      expect(await t.side.getReview('rev_nope')).toBeUndefined();
    });

    it('lists newest first, filtered and paged', async () => {
      await t.reset();
      await t.side.addReview(review('a', { at: T0 + 10, kind: 'too_fast' }));
      await t.side.addReview(review('b', { at: T0 + 30, unitId: 'P2' }));
      await t.side.addReview(
        review('c', { at: T0 + 20, kind: 'closed_without_on_scene', incidentId: 'inc_2' }),
      );
      const c = await t.side.addReview(review('d', { at: T0 + 20 }));
      expect((await t.side.listReviews()).map((r) => r.key)).toEqual(['b', 'd', 'c', 'a']);
      expect((await t.side.listReviews({ unitId: 'P2' })).map((r) => r.key)).toEqual(['b']);
      expect((await t.side.listReviews({ kind: 'too_fast' })).map((r) => r.key)).toEqual(['a']);
      expect((await t.side.listReviews({ incidentId: 'inc_2' })).map((r) => r.key)).toEqual(['c']);
      expect((await t.side.listReviews({ limit: 2, offset: 1 })).map((r) => r.key)).toEqual(['d', 'c']);
      await t.side.resolveReview(c.review.id, { by: 'dispatcher:d.li', note: 'checked', at: T0 + 500 });
      expect((await t.side.listReviews({ status: 'open' })).map((r) => r.key)).toEqual(['b', 'c', 'a']);
      expect((await t.side.listReviews({ status: 'resolved' })).map((r) => r.key)).toEqual(['d']);
    });

    it('resolves once: NOT_FOUND for an unknown flag, CONFLICT when already resolved', async () => {
      await t.reset();
      const { review: r } = await t.side.addReview(review('r1'));
      const done = await t.side.resolveReview(r.id, {
        by: 'dispatcher:d.li',
        note: 'GPS drift',
        at: T0 + 600.25,
      });
      expect(done).toMatchObject({
        status: 'resolved',
        resolvedBy: 'dispatcher:d.li',
        note: 'GPS drift',
        resolvedAt: T0 + 600.25,
      });
      await rejectsWith(t.side.resolveReview(r.id, { by: 'x', note: 'again', at: T0 + 700 }), 'CONFLICT');
      await rejectsWith(t.side.resolveReview('rev_nope', { by: 'x', note: 'n', at: T0 }), 'NOT_FOUND');
      expect((await t.side.getReview(r.id))?.note).toBe('GPS drift');
    });

    it('the latest flag of a kind for a unit', async () => {
      await t.reset();
      expect(await t.side.lastReviewAt('repeated_non_response', 'P1')).toBeUndefined();
      await t.side.addReview(review('n1', { kind: 'repeated_non_response', at: T0 + 50 }));
      await t.side.addReview(review('n2', { kind: 'repeated_non_response', at: T0 + 90 }));
      await t.side.addReview(review('n3', { kind: 'repeated_non_response', at: T0 + 70 }));
      await t.side.addReview(review('o1', { kind: 'on_scene_far', at: T0 + 200 }));
      await t.side.addReview(review('n4', { kind: 'repeated_non_response', unitId: 'P2', at: T0 + 300 }));
      expect(await t.side.lastReviewAt('repeated_non_response', 'P1')).toBe(T0 + 90);
    });

    it('scanner cursors start at 0 and keep the last value', async () => {
      await t.reset();
      expect(await t.side.getCursor('reviews')).toBe(0);
      await t.side.setCursor('reviews', 41);
      await t.side.setCursor('reviews', 42);
      await t.side.setCursor('other', 7);
      expect(await t.side.getCursor('reviews')).toBe(42);
      expect(await t.side.getCursor('other')).toBe(7);
    });

    it('a transaction commits the flag with the main store’s audit row, or neither', async () => {
      await t.reset();
      const { review: r } = await t.side.addReview(review('tx'));
      const before = (await t.store.listAudit({ limit: 10_000 })).length;
      await expect(
        t.side.transaction(async (tx, side) => {
          await side.resolveReview(r.id, { by: 'd', note: 'n', at: T0 + 1 });
          await side.addReview(review('tx-2'));
          await side.setCursor('reviews', 99);
          await tx.appendAudit({ actor: 'd', action: 'review.resolve', subject: r.id, at: T0 + 1 });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await t.side.getReview(r.id))?.status).toBe('open');
      expect((await t.side.listReviews()).map((x) => x.key)).toEqual(['tx']);
      expect(await t.side.getCursor('reviews')).toBe(0);
      expect(await t.store.listAudit({ limit: 10_000 })).toHaveLength(before);
      await t.side.transaction(async (tx, side) => {
        await side.resolveReview(r.id, { by: 'd', note: 'n', at: T0 + 1 });
        await tx.appendAudit({ actor: 'd', action: 'review.resolve', subject: r.id, at: T0 + 1 });
      });
      expect((await t.side.getReview(r.id))?.status).toBe('resolved');
      const audit = await t.store.listAudit({ limit: 10_000 });
      expect(audit.at(-1)).toMatchObject({ action: 'review.resolve', subject: r.id });
      expect((await t.store.verifyAudit()).ok).toBe(true);
    });

    it('deliveries: one row per (incident, seq), inserted counts, bad seq refused', async () => {
      await t.reset();
      expect(await t.side.addDeliveries([delivery('i1', 1), delivery('i1', 2)])).toBe(2);
      expect(
        await t.side.addDeliveries([
          delivery('i1', 1, { body: 'other' }),
          delivery('i1', 2),
          delivery('i1', 3),
        ]),
      ).toBe(1);
      expect(await t.side.addDeliveries([])).toBe(0);
      const list = await t.side.listDeliveries({ incidentId: 'i1' });
      expect(list.map((d) => [d.seq, d.state, d.attempts])).toEqual([
        [1, 'pending', 0],
        [2, 'pending', 0],
        [3, 'pending', 0],
      ]);
      expect(list[0]).toMatchObject({
        body: JSON.stringify({ id: 'i1:1', sequence: 1 }),
        idempotencyKey: 'i1:1',
        nextAt: T0 + 1,
        createdAt: T0 + 1,
      });
      await rejectsWith(t.side.addDeliveries([delivery('i1', 0)]), 'INVALID');
    });

    it('claims only the head of each incident, when due, and leases it', async () => {
      await t.reset();
      await t.side.addDeliveries([
        delivery('i1', 1),
        delivery('i1', 2),
        delivery('i2', 1),
        delivery('i3', 1, { createdAt: T0 + 500 }),
      ]);
      const first = await t.side.claimDueDeliveries(T0 + 100, T0 + 160, 10);
      expect(first.map((d) => d.idempotencyKey).sort()).toEqual(['i1:1', 'i2:1']);
      expect(first.every((d) => d.claimedUntil === T0 + 160)).toBe(true);
      // Leased: nothing more now; i1:2 waits behind i1:1.
      expect(await t.side.claimDueDeliveries(T0 + 100, T0 + 160, 10)).toEqual([]);
      expect(await t.side.nextDeliveryAt()).toBe(T0 + 160);
      // A lapsed lease (a crashed sender) is claimable again.
      expect(
        (await t.side.claimDueDeliveries(T0 + 170, T0 + 230, 10)).map((d) => d.idempotencyKey).sort(),
      ).toEqual(['i1:1', 'i2:1']);
      const i11 = first.find((d) => d.idempotencyKey === 'i1:1')!;
      const ok = await t.side.finishDelivery(i11.id, { state: 'delivered', at: T0 + 171.5, httpStatus: 204 });
      expect(ok).toMatchObject({
        state: 'delivered',
        attempts: 1,
        deliveredAt: T0 + 171.5,
        lastHttpStatus: 204,
      });
      expect(ok.lastError).toBeUndefined();
      // Now i1:2 is the head and due.
      const [i12] = await t.side.claimDueDeliveries(T0 + 172, T0 + 232, 10);
      expect(i12.idempotencyKey).toBe('i1:2');
      await t.side.finishDelivery(i12.id, { state: 'delivered', at: T0 + 173, httpStatus: 200 });
      const i21 = first.find((d) => d.idempotencyKey === 'i2:1')!;
      await t.side.finishDelivery(i21.id, { state: 'delivered', at: T0 + 174, httpStatus: 200 });
      expect(await t.side.nextDeliveryAt()).toBe(T0 + 500);
      expect(await t.side.claimDueDeliveries(T0 + 499, T0 + 560, 10)).toEqual([]);
      expect((await t.side.claimDueDeliveries(T0 + 500, T0 + 560, 1)).map((d) => d.idempotencyKey)).toEqual([
        'i3:1',
      ]);
    });

    it('records retries and dead letters; a dead one unblocks the next and can be retried', async () => {
      await t.reset();
      await t.side.addDeliveries([delivery('i1', 1), delivery('i1', 2)]);
      const [d1] = await t.side.claimDueDeliveries(T0 + 10, T0 + 70, 10);
      const retry = await t.side.finishDelivery(d1.id, {
        state: 'pending',
        at: T0 + 11,
        nextAt: T0 + 16,
        error: 'ECONNREFUSED',
      });
      expect(retry).toMatchObject({
        state: 'pending',
        attempts: 1,
        nextAt: T0 + 16,
        lastError: 'ECONNREFUSED',
      });
      expect(await t.side.claimDueDeliveries(T0 + 15, T0 + 75, 10)).toEqual([]);
      const [again] = await t.side.claimDueDeliveries(T0 + 16, T0 + 76, 10);
      expect(again.id).toBe(d1.id);
      const dead = await t.side.finishDelivery(d1.id, {
        state: 'dead',
        at: T0 + 17,
        error: 'HTTP 410',
        httpStatus: 410,
      });
      expect(dead).toMatchObject({ state: 'dead', attempts: 2, deadAt: T0 + 17, lastHttpStatus: 410 });
      await rejectsWith(
        t.side.finishDelivery(d1.id, { state: 'delivered', at: T0 + 18, httpStatus: 200 }),
        'CONFLICT',
      );
      await rejectsWith(
        t.side.finishDelivery(999_999, { state: 'delivered', at: T0, httpStatus: 200 }),
        'NOT_FOUND',
      );
      expect((await t.side.claimDueDeliveries(T0 + 18, T0 + 78, 10)).map((d) => d.seq)).toEqual([2]);
      expect((await t.side.listDeliveries({ state: 'dead' })).map((d) => d.id)).toEqual([d1.id]);
      const back = await t.side.retryDelivery(d1.id, T0 + 900);
      expect(back).toMatchObject({ state: 'pending', attempts: 0, nextAt: T0 + 900 });
      expect(back.deadAt).toBeUndefined();
      await rejectsWith(t.side.retryDelivery(d1.id, T0 + 901), 'CONFLICT');
      await rejectsWith(t.side.retryDelivery(999_999, T0 + 901), 'NOT_FOUND');
      expect(await t.side.listDeliveries({ state: 'dead' })).toEqual([]);
    });

    it('a failing receiver: its deliveries wait together, untried claims go back, held ones stay held', async () => {
      await t.reset();
      const other = 'https://other.example.org:8443';
      await t.side.addDeliveries([
        delivery('a', 1),
        delivery('a', 2),
        delivery('b', 1),
        delivery('c', 1, { url: `${other}/x`, origin: other }),
        delivery('d', 1, { nextAt: T0 + 900 }),
      ]);
      expect((await t.side.listDeliveries({ incidentId: 'd' }))[0].nextAt).toBe(T0 + 900);
      const claimed = await t.side.claimDueDeliveries(T0 + 10, T0 + 70, 10);
      expect(claimed.map((d) => d.idempotencyKey).sort()).toEqual(['a:1', 'b:1', 'c:1']);
      const a1 = claimed.find((d) => d.idempotencyKey === 'a:1')!;
      const b1 = claimed.find((d) => d.idempotencyKey === 'b:1')!;
      // a:1 and b:1 are in flight; the receiver is found down: what is claimable to it waits to
      // T0+100 — nothing here (a:2 waits behind a:1 anyway; d:1 is later already).
      expect(await t.side.deferOrigin('https://hooks.example.com', T0 + 100, T0 + 11)).toBe(0);
      await t.side.releaseDeliveries([b1.id], T0 + 100);
      await t.side.finishDelivery(a1.id, {
        state: 'pending',
        at: T0 + 12,
        nextAt: T0 + 100,
        error: 'ECONNREFUSED',
      });
      const byKey = async () =>
        Object.fromEntries(
          (await t.side.listDeliveries({ limit: 100 })).map((d) => [
            d.idempotencyKey,
            [d.nextAt - T0, d.claimedUntil, d.attempts],
          ]),
        );
      expect(await byKey()).toEqual({
        'a:1': [100, undefined, 1],
        'a:2': [2, undefined, 0],
        'b:1': [100, undefined, 0],
        'c:1': [1, T0 + 70, 0],
        'd:1': [900, undefined, 0],
      });
      expect(await t.side.claimDueDeliveries(T0 + 50, T0 + 110, 10)).toEqual([]);
      // A new head, due now, is deferred when the receiver is found down again.
      await t.side.addDeliveries([delivery('e', 1, { createdAt: T0 + 40 })]);
      expect(await t.side.deferOrigin('https://hooks.example.com', T0 + 100, T0 + 41)).toBe(1);
      expect(await t.side.claimDueDeliveries(T0 + 50, T0 + 110, 10)).toEqual([]);
      // It answers again (at T0+60): everything claimable to it is due at once.
      expect(await t.side.releaseOrigin('https://hooks.example.com', T0 + 60)).toBe(4); // a:1, b:1, d:1, e:1
      expect(
        (await t.side.claimDueDeliveries(T0 + 60, T0 + 120, 10)).map((d) => d.idempotencyKey).sort(),
      ).toEqual(['a:1', 'b:1', 'd:1', 'e:1']);
      // The other receiver's claim (until T0+70) was never touched.
      expect((await t.side.listDeliveries({ incidentId: 'c' }))[0].claimedUntil).toBe(T0 + 70);
      expect(await t.side.releaseOrigin(other, T0 + 61)).toBe(0);
    });

    it('concurrent claimers never get the same delivery', async () => {
      await t.reset();
      const rows = Array.from({ length: 40 }, (_, i) => delivery(`c${i}`, 1));
      await t.side.addDeliveries(rows);
      const claims = await Promise.all(
        Array.from({ length: 4 }, () => t.side.claimDueDeliveries(T0 + 100, T0 + 160, 15)),
      );
      const ids = claims.flat().map((d) => d.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(40);
    });

    it('a restarted process sees the same rows', async () => {
      await t.reset();
      await t.side.addReview(review('persist'));
      await t.side.addDeliveries([delivery('p1', 1)]);
      await t.side.setCursor('reviews', 5);
      const { side } = await t.reopen();
      expect((await side.listReviews()).map((r) => r.key)).toEqual(['persist']);
      expect((await side.listDeliveries({ incidentId: 'p1' })).map((d) => d.idempotencyKey)).toEqual([
        'p1:1',
      ]);
      expect(await side.getCursor('reviews')).toBe(5);
    });
  });
}

async function sqlReset(store: SqlStore): Promise<void> {
  await store.client.query(
    'TRUNCATE reviews, scan_cursors, webhook_deliveries, audit, events RESTART IDENTITY',
  );
  await store.client.query(
    "UPDATE audit_head SET last_seq = 0, last_hash = '0000000000000000000000000000000000000000000000000000000000000000'",
  );
}

followUpContract('memory', async () => {
  let db = new MemoryDatabase();
  let store = new MemoryStore(db);
  const target: Target = {
    store,
    side: followUpStoreFor(store),
    async reopen() {
      const s = new MemoryStore(db);
      return { store: s, side: followUpStoreFor(s) };
    },
    async reset() {
      db = new MemoryDatabase();
      store = new MemoryStore(db);
      target.store = store;
      target.side = followUpStoreFor(store);
    },
    async teardown() {},
  };
  return target;
});

followUpContract('PGlite', async () => {
  const store = await SqlStore.open(await createPgliteClient());
  return {
    store,
    side: followUpStoreFor(store),
    async reopen() {
      // One embedded database per process: a second store on the same client stands in.
      const s = new SqlStore(store.client);
      return { store: s, side: followUpStoreFor(s) };
    },
    reset: () => sqlReset(store),
    teardown: () => store.close(),
  };
});

followUpContract('PostgreSQL', async () => {
  const db = await createDatabase(ADMIN_URL);
  const store = await SqlStore.open(createPgClient(db.url, { max: 6 }));
  const others: SqlStore[] = [];
  return {
    store,
    side: followUpStoreFor(store),
    async reopen() {
      const s = await SqlStore.open(createPgClient(db.url, { max: 2 }));
      others.push(s);
      return { store: s, side: followUpStoreFor(s) };
    },
    reset: () => sqlReset(store),
    async teardown() {
      for (const s of others) await s.close();
      await store.close();
      await dropDatabase(ADMIN_URL, db.name);
    },
  };
});
