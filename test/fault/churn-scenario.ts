// Socket churn (issue #6 item 4): `dispatch serve` (embedded: PGlite data dir, in-process
// queue) with `units` socket.io unit clients that are disconnected and reconnected at random
// while offers flow. Shared by test/fault/socket-churn.test.ts (short) and
// bench/fault-socket-churn.ts (long: 1,000 clients, 10,000 disconnects).
//
// The run:
//   1. every client connects with auth.lastSeq 0 (it receives its whole stream from seq 1) and
//      answers each offer like the field app (accept → location → on scene → available);
//   2. incidents are posted open-loop at `rate`/s while a churn driver disconnects clients at
//      `churnPerS`/s, at random, in four ways:
//        - transport drop (as a network failure): socket.io-client reconnects by itself, its
//          auth callback sending the last seq it saw;
//        - clean disconnect, reconnect after a random pause (up to 800 ms);
//        - refused reconnects: with a token expired an hour ago (TOKEN_EXPIRED) and with one
//          signed by another secret (UNAUTHENTICATED), then with a valid one;
//        - a transport drop while the client's token source yields an expired token: its
//          automatic reconnect must be refused (the socket is authenticated again, there is
//          no session recovery that skips the check); the app then connects with a valid one;
//   3. after `disconnects` disconnects the churn stops, the load stops, every client is
//      connected again and the engine goes quiet; then the engine is stopped and its store
//      read: each unit's push log (messages table) against what its client's app layer got.
// Figures: disconnects, offers, gaps, duplicates (the same offer delivered twice to the app
// under two seqs), reordered, missed (a seq or an offer in the store the client never got),
// refusals, and messages received while a refused client was away (must be 0).

import { randomBytes } from 'node:crypto';
import { Rng } from '../../src/scenario/rng.ts';
import {
  freePort,
  IncidentPoster,
  makeUnits,
  openAll,
  pgliteSql,
  type ServeProcess,
  sleep,
  startServe,
  tempDir,
  tokens,
  UnitClient,
  waitAccepted,
  waitFor,
  writeDistrict,
} from './harness.ts';

export interface ChurnOptions {
  units: number;
  rate: number;
  /** Disconnects to make in all. */
  disconnects: number;
  churnPerS: number;
  /** One in `authEvery` churn events is a refused-reconnect check (default 25). */
  authEvery?: number;
  seed?: number;
  /** Clients send auth.lastSeq on reconnect (default true; false breaks the client contract). */
  sendLastSeq?: boolean;
  log?: (msg: string) => void;
}

export interface ChurnResult {
  units: number;
  disconnects: number;
  churnEvents: Record<string, number>;
  posted: number;
  accepted: number;
  offers: number;
  messages: number;
  gaps: number;
  reordered: number;
  /** Seqs received again and dropped by the client per the contract (not app-layer duplicates). */
  resent: number;
  duplicateOffers: number;
  /** Seqs in the store a client never got / offers in the store a client never got. */
  missedSeqs: number;
  missedOffers: number;
  /** Clients whose last seq is not their stream's head at the end. */
  behind: number;
  /** Server-side: a unit's stored seqs are not 1..head. */
  storeGaps: number;
  refusedExpired: number;
  refusedForged: number;
  refusedAuto: number;
  /** Refused reconnects that connected after all (must be 0). */
  acceptedBadToken: number;
  /** Envelopes a client got while it was refused (must be 0). */
  receivedWhileRefused: number;
  neverAccepted: number;
  wallMs: number;
  churnWallMs: number;
}

type Op = 'drop' | 'disconnect' | 'refused' | 'auto-refused';

export async function runSocketChurn(o: ChurnOptions): Promise<ChurnResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const seed = o.seed ?? 1;
  const rng = new Rng(seed).fork('fault:churn');
  const secret = randomBytes(32).toString('base64url');
  const dir = tempDir();
  const specs = makeUnits(o.units, seed);
  const config = writeDistrict(dir, specs);
  const port = await freePort();
  const tk = tokens(secret);
  let serve: ServeProcess | undefined = await startServe({
    port,
    dataDir: dir,
    config,
    secret,
    engineConfig: { ackTimeoutS: 60, ackTimeoutOtherS: 60 },
  });
  const clients = specs.map(
    (u) =>
      new UnitClient({
        url: serve!.url,
        id: u.id,
        token: () => tk.unit(u.id),
        behaviour: 'ack',
        holdMs: 0,
        reconnectDelayMs: 100,
        reconnectDelayMaxMs: 1000,
        ...(o.sendLastSeq === false ? { sendLastSeq: false } : {}),
      }),
  );
  const counts = {
    refusedExpired: 0,
    refusedForged: 0,
    refusedAuto: 0,
    acceptedBadToken: 0,
    receivedWhileRefused: 0,
  };
  const events: Record<Op, number> = { drop: 0, disconnect: 0, refused: 0, 'auto-refused': 0 };
  /** Stopped in `finally` whatever happens (its open loop would keep the process alive). */
  let load: IncidentPoster | undefined;
  try {
    await openAll(clients, 25);
    log(`${clients.length} units connected`);
    const poster = new IncidentPoster(
      serve.url,
      await tk.dispatcher(),
      seed,
      `churn-${randomBytes(3).toString('hex')}`,
    );
    load = poster;
    poster.start(o.rate);

    // ------------------------------------------------ churn
    const busy = new Set<UnitClient>();
    const disconnects = () => clients.reduce((s, c) => s + c.disconnects, 0);
    const base = disconnects();
    const inflight = new Set<Promise<void>>();
    const authEvery = o.authEvery ?? 25;
    let n = 0;
    const churnStart = Date.now();
    const one = async (c: UnitClient, op: Op) => {
      events[op]++;
      switch (op) {
        case 'drop':
          c.dropTransport();
          await c.connected(60_000);
          break;
        case 'disconnect':
          c.socket.disconnect();
          await sleep(rng.int(0, 800));
          c.socket.connect();
          await c.connected(60_000);
          break;
        case 'refused': {
          // Both tokens are minted first: while minting, the client is still connected and may
          // receive, which is not "received while refused".
          const expiredToken = await tk.expiredUnit(c.id);
          const forgedToken = await tk.forgedUnit(c.id);
          const before = c.received;
          const expired = await c.reconnectWith(expiredToken);
          if (expired === 'TOKEN_EXPIRED') counts.refusedExpired++;
          else if (expired === 'connected') counts.acceptedBadToken++;
          const forged = await c.reconnectWith(forgedToken);
          if (forged === 'UNAUTHENTICATED') counts.refusedForged++;
          else if (forged === 'connected') counts.acceptedBadToken++;
          if (c.socket.connected) counts.acceptedBadToken++;
          counts.receivedWhileRefused += c.received - before;
          c.socket.connect();
          await c.connected(60_000);
          break;
        }
        case 'auto-refused': {
          const before = c.received;
          const errors = c.connectErrors.length;
          c.useTokenSource(() => tk.expiredUnit(c.id));
          const connects = c.connects;
          c.dropTransport();
          try {
            await waitFor(
              `${c.id}: automatic reconnects refused`,
              () => c.connectErrors.slice(errors).includes('TOKEN_EXPIRED'),
              30_000,
              20,
            );
            // socket.io-client does not retry a handshake the server refused: the app gets a
            // new token and connects again. Meanwhile it must stay out.
            await sleep(300);
            counts.refusedAuto++;
          } finally {
            if (c.connects !== connects || c.socket.connected) counts.acceptedBadToken++;
            counts.receivedWhileRefused += c.received - before;
            c.useTokenSource(undefined);
          }
          await c.connected(60_000);
          break;
        }
      }
    };
    while (disconnects() - base < o.disconnects) {
      const due = Math.floor(((Date.now() - churnStart) * o.churnPerS) / 1000) + 1;
      while (n < due && disconnects() - base + inflight.size < o.disconnects) {
        const free = clients.filter((c) => !busy.has(c) && c.socket.connected);
        if (free.length === 0) break;
        const c = free[rng.int(0, free.length - 1)];
        n++;
        const op: Op =
          n % authEvery === 0
            ? n % (2 * authEvery) === 0
              ? 'auto-refused'
              : 'refused'
            : rng.chance(0.6)
              ? 'drop'
              : 'disconnect';
        busy.add(c);
        const p = one(c, op)
          .catch((e) => log(`churn ${op} ${c.id}: ${(e as Error).message}`))
          .finally(() => busy.delete(c));
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      await sleep(5);
      if (Date.now() - churnStart > 30 * 60_000) throw new Error('churn did not finish in 30 min');
    }
    await Promise.allSettled([...inflight]);
    const churnWallMs = Date.now() - churnStart;
    log(`${disconnects() - base} disconnects in ${churnWallMs} ms`);

    // ------------------------------------------------ settle
    await poster.stop();
    await poster.retryFailed(60_000);
    for (const c of clients) await c.connected(60_000);
    const accepted = poster.accepted();
    const ids = [...accepted.values()];
    await waitAccepted(ids, clients, { maxMs: 600_000, stallMs: 90_000, log });
    await Promise.race([Promise.all(clients.map((c) => c.idle())), sleep(30_000)]);
    // Quiet: nothing received for 2 s.
    let last = -1;
    await waitFor(
      'the streams to go quiet',
      () => {
        const r = clients.reduce((s, c) => s + c.received, 0);
        const quiet = r === last;
        last = r;
        return quiet;
      },
      60_000,
      2000,
    );
    const accBy = new Set<string>();
    for (const c of clients) for (const id of c.accepted) accBy.add(id);
    const stopAt = Date.now();
    const code = await serve.stop();
    log(`engine stopped: exit ${code} in ${Date.now() - stopAt} ms`);
    if (code !== 0) log(serve.out().slice(-3000));
    serve = undefined;

    // ------------------------------------------------ the store against the clients
    const sql = await pgliteSql(dir);
    let missedSeqs = 0;
    let missedOffers = 0;
    let behind = 0;
    let storeGaps = 0;
    let messages = 0;
    try {
      const rows = await sql.query<{ recipient: string; seq: string; event: string; aid: string | null }>(
        `SELECT m.recipient, m.seq::text AS seq, m.event, m.payload->'assignment'->>'id' AS aid
           FROM messages m WHERE m.recipient LIKE 'unit:%' ORDER BY m.recipient, m.seq`,
      );
      const byUnit = new Map<string, typeof rows>();
      for (const r of rows) {
        const id = r.recipient.slice('unit:'.length);
        const l = byUnit.get(id) ?? [];
        l.push(r);
        byUnit.set(id, l);
      }
      for (const c of clients) {
        const l = byUnit.get(c.id) ?? [];
        messages += l.length;
        const seqs = l.map((r) => Number(r.seq));
        if (seqs.some((s, i) => s !== i + 1)) storeGaps++;
        const head = seqs.length > 0 ? seqs[seqs.length - 1] : 0;
        if (c.lastSeq !== head) {
          behind++;
          if (behind <= 5)
            log(
              `${c.id}: last seq ${c.lastSeq}, stored head ${head}, extra ${[...c.seen].filter((x) => x > head).join(',')}; events ${l
                .slice(-3)
                .map((r) => r.event)
                .join(',')}`,
            );
        }
        missedSeqs += seqs.filter((s) => !c.seen.has(s)).length;
        missedOffers += l.filter(
          (r) => r.event === 'assignment:offer' && r.aid && !c.offers.has(r.aid),
        ).length;
      }
    } finally {
      await sql.close();
    }
    const sum = (f: (c: UnitClient) => number) => clients.reduce((s, c) => s + f(c), 0);
    return {
      units: clients.length,
      disconnects: disconnects() - base,
      churnEvents: events,
      posted: poster.posted,
      accepted: accepted.size,
      offers: sum((c) => c.offers.size),
      messages,
      gaps: sum((c) => c.stats.gaps),
      reordered: sum((c) => c.stats.reordered),
      resent: sum((c) => c.stats.resent),
      duplicateOffers: sum((c) => c.stats.duplicateOffers),
      missedSeqs,
      missedOffers,
      behind,
      storeGaps,
      ...counts,
      neverAccepted: ids.filter((id) => !accBy.has(id)).length,
      wallMs: Date.now() - t0,
      churnWallMs,
    };
  } finally {
    await load?.stop().catch(() => {});
    for (const c of clients) c.close();
    if (serve) await serve.stop().catch(() => {});
  }
}

export function churnFigures(r: ChurnResult): Record<string, unknown> {
  return {
    units: r.units,
    disconnects: r.disconnects,
    events: r.churnEvents,
    offers: r.offers,
    messages: r.messages,
    gaps: r.gaps,
    duplicates: r.duplicateOffers,
    reordered: r.reordered,
    missed: r.missedSeqs,
    missedOffers: r.missedOffers,
    behind: r.behind,
    storeGaps: r.storeGaps,
    resentDropped: r.resent,
    refusedExpired: r.refusedExpired,
    refusedForged: r.refusedForged,
    refusedAuto: r.refusedAuto,
    acceptedBadToken: r.acceptedBadToken,
    receivedWhileRefused: r.receivedWhileRefused,
    accepted: r.accepted,
    neverAssigned: r.neverAccepted,
    churnS: Math.round(r.churnWallMs / 1000),
    wallS: Math.round(r.wallMs / 1000),
  };
}
