// Reporter follow-up by signed webhook. An incident reported with an HTTPS callback URL hears
// of each public status change — received, assigned, on scene, resolved, closed, cancelled —
// with a short public text and no unit or staff identity.
//
// Path. The engine writes a `reporter.notify` outbox row in the transaction of each status
// change (and the store one `incident.created` row per report); the notifications and intake
// workers call sync(incidentId), which reads the incident's timeline and records every public
// update not recorded yet as a delivery row (seq 1, 2, … per incident, the exact body fixed
// once) — so a late or repeated job records nothing twice and never out of order. A sender
// loop (tick) claims due deliveries, only the lowest pending seq of each incident, and POSTs
// them: 2xx delivered; a refused connection, a timeout, 408, 429 or 5xx is retried on the
// back-off schedule (then the next seq of that incident waits); other answers, a private
// address, or the last attempt put the delivery on the dead-letter list, which a dispatcher
// can see and retry. The sender runs beside the engine, never in its lane: a failing receiver
// costs only its own attempts.
//
// Several senders (serve's, `dispatch worker` processes, a restarted one) may run on one
// store: a delivery is claimed (FollowUpStore.claimDueDeliveries: UPDATE … claimed_until,
// FOR UPDATE SKIP LOCKED) before it is sent, so two senders never hold it at once; an attempt
// only starts while the claim still covers its whole time limit (plus CLAIM_MARGIN_S), and an
// attempt is cut at that limit, so the claim never lapses while its POST may still be going —
// no two senders ever send one update at the same time. A sender killed mid-round leaves its
// claims to lapse (leaseS): those deliveries go out from another sender then, and one whose
// POST had reached the receiver before the kill arrives twice, with the same Idempotency-Key
// (at least once). The senders' clocks must agree within the margin.
//
// Time is the injected Clock (epoch seconds): deliveries are due by it and the back-off
// counts in it, so a test can move through a ten-minute outage in virtual time (pollMs 0 and
// tick() by hand).
//
// Signature (what a receiver verifies):
//   X-Dispatch-Timestamp: <unix seconds of the attempt>
//   X-Dispatch-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//   Idempotency-Key:      <incidentId>:<seq>   (the same on every attempt of one update)
// Refuse a signature that does not match (constant-time compare) or a timestamp more than
// 5 minutes off; drop a key already processed.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { ApiError } from '../server/errors.ts';
import type { DeliveryRecord, FollowUpStore, NewDelivery } from '../store/followup-store.ts';
import type { IncidentRecord, Store, StoredEvent } from '../store/store.ts';
import { PollLoop } from './poll-loop.ts';
import type { Clock } from './ports.ts';
import { iso } from './views.ts';

// ---------------------------------------------------------------- addresses

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** True for loopback, private, link-local, unique-local, CGNAT, documentation, multicast and reserved addresses. */
export function isPrivateAddress(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const v = isIP(bare);
  if (v === 4) return PRIVATE.check(bare, 'ipv4');
  if (v === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
    if (mapped) return PRIVATE.check(mapped[1], 'ipv4');
    return PRIVATE.check(bare, 'ipv6');
  }
  return false;
}

/** Host names that never leave the site: localhost and the local-only suffixes, single labels. */
export function isLocalHostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || !h.includes('.')) return true;
  return /\.(localhost|local|internal|intranet|lan|home\.arpa)$/.test(h);
}

export interface CallbackPolicy {
  /** Plain http:// allowed (tests; default false). */
  allowHttp: boolean;
  /** Loopback and private addresses allowed (tests; default false). */
  allowPrivate: boolean;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:/i;

/**
 * Checks the intake's `callback`: an HTTPS URL to a public host, or a reporter reference
 * (any other text: a phone number, a case number). Throws ApiError CALLBACK_NOT_HTTPS /
 * CALLBACK_PRIVATE_ADDRESS / INVALID_FIELD.
 */
export function checkCallback(v: unknown, policy: CallbackPolicy, max = 2048): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw new ApiError('INVALID_FIELD', 'callback: must be a string', { field: 'callback' });
  const s = v.trim();
  if (s.length === 0) return undefined;
  if (s.length > max) {
    throw new ApiError('INVALID_FIELD', `callback: must be at most ${max} characters`, { field: 'callback' });
  }
  // "tel:+86…" and the like are references; anything with // after a scheme is a URL.
  if (!URL_LIKE.test(s) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return s;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ApiError('INVALID_FIELD', 'callback: not a valid URL', { field: 'callback' });
  }
  if (!(url.protocol === 'https:' || (policy.allowHttp && url.protocol === 'http:'))) {
    throw new ApiError(
      'CALLBACK_NOT_HTTPS',
      `callback: ${url.protocol.replace(/:$/, '')} is not allowed; use https`,
      {
        field: 'callback',
      },
    );
  }
  if (url.username || url.password) {
    throw new ApiError('INVALID_FIELD', 'callback: must not carry credentials', { field: 'callback' });
  }
  if (!policy.allowPrivate) {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) ? isPrivateAddress(host) : isLocalHostName(host)) {
      throw new ApiError(
        'CALLBACK_PRIVATE_ADDRESS',
        `callback: ${url.hostname} is a loopback, private or local address`,
        { field: 'callback' },
      );
    }
  }
  return url.toString();
}

// ---------------------------------------------------------------- signature

export const SIGNATURE_HEADER = 'x-dispatch-signature';
export const TIMESTAMP_HEADER = 'x-dispatch-timestamp';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/** A receiver's check: the signature matches and the timestamp is within `toleranceS` of now. */
export function verifyWebhook(
  secret: string,
  headers: { signature?: string; timestamp?: string },
  body: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  const ts = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(ts) || Math.abs(nowS - ts) > toleranceS) return false;
  const want = Buffer.from(signWebhook(secret, ts, body));
  const got = Buffer.from(headers.signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

// ---------------------------------------------------------------- public updates

const PUBLIC: Record<string, { status: string; text: string }> = {
  reported: { status: 'received', text: 'Your report has been received and is being handled.' },
  assigned: { status: 'assigned', text: 'Help has been assigned and is on its way.' },
  en_route: { status: 'assigned', text: 'Help has been assigned and is on its way.' },
  on_scene: { status: 'on_scene', text: 'Responders have arrived at the scene.' },
  resolved: { status: 'resolved', text: 'The incident has been dealt with at the scene.' },
  closed: { status: 'closed', text: 'Your report is closed. Thank you.' },
  cancelled: { status: 'cancelled', text: 'Your report was closed without a dispatch.' },
};

export interface PublicUpdate {
  seq: number;
  status: string;
  text: string;
  at: number;
}

/**
 * The public updates of an incident from its timeline (incident-level events, in write
 * order): a status a reporter already heard is not repeated (assigned → queued → assigned
 * is one "assigned"; `queued` itself is not public).
 */
export function publicUpdates(timeline: readonly StoredEvent[]): PublicUpdate[] {
  const out: PublicUpdate[] = [];
  for (const e of timeline) {
    if (e.unitId !== undefined) continue;
    const p = Object.hasOwn(PUBLIC, e.kind) ? PUBLIC[e.kind] : undefined;
    if (!p || out.at(-1)?.status === p.status) continue;
    out.push({ seq: out.length + 1, status: p.status, text: p.text, at: e.at });
  }
  return out;
}

/** The body of one update (fixed when recorded; every attempt sends these bytes). */
export function updateBody(incident: { id: string; type: string }, u: PublicUpdate): string {
  return JSON.stringify({
    id: `${incident.id}:${u.seq}`,
    incidentId: incident.id,
    sequence: u.seq,
    status: u.status,
    text: u.text,
    at: iso(u.at),
    type: incident.type,
  });
}

// ---------------------------------------------------------------- the sender

export interface WebhookOptions extends CallbackPolicy {
  secret: string;
  /** One attempt's time limit (default 5000 ms). */
  timeoutMs: number;
  /** Wait before attempt n + 1 is backoffS[min(n, len) − 1] seconds (default 5, 15, 30, 60, 120, 300). */
  backoffS: readonly number[];
  /** After this many attempts a delivery goes to the dead-letter list (default 30: about 2 h). */
  maxAttempts: number;
  /** Deliveries in flight at once (default 8). */
  concurrency: number;
  /** Deliveries claimed per round (default 50). */
  batch: number;
  /** A claim not finished within this is claimable again (default 60 s; above timeoutMs + CLAIM_MARGIN_S). */
  leaseS: number;
  /** Idle polling period of the sender loop (default 1000 ms); 0: no loop, call tick(). */
  pollMs: number;
  /** Rounds start at least this far apart, so a burst of new updates makes one round (default 50 ms). */
  minGapMs: number;
}

/**
 * An attempt starts only if the claim lasts its time limit and this much longer (seconds:
 * recording the outcome, clock differences between senders).
 */
export const CLAIM_MARGIN_S = 1;

/** Incidents whose callback target is remembered (oldest forgotten first). */
const TARGETS_KEEP = 10_000;

export const DEFAULT_WEBHOOK_OPTIONS: Omit<WebhookOptions, 'secret'> = {
  allowHttp: false,
  allowPrivate: false,
  timeoutMs: 5000,
  backoffS: [5, 15, 30, 60, 120, 300],
  maxAttempts: 30,
  concurrency: 8,
  batch: 50,
  leaseS: 60,
  pollMs: 1000,
  minGapMs: 50,
};

export interface TickResult {
  attempted: number;
  delivered: number;
  retrying: number;
  dead: number;
}

type Attempt =
  | { ok: true; status: number }
  | { ok: false; permanent: boolean; error: string; status?: number };

export class Webhooks {
  readonly options: WebhookOptions;
  private readonly store: Store;
  private readonly side: FollowUpStore;
  private readonly clock: Clock;
  private readonly log: (msg: string, err?: unknown) => void;
  /** Incidents synced before: their callback target (null: none), and the last seq recorded. */
  private readonly targets = new Map<string, { url: string; origin: string; type: string } | null>();
  private readonly recorded = new Map<string, number>();
  /** Receivers being backed off: origin → failures in a row and when to probe again. */
  private readonly hosts = new Map<string, { failures: number; until: number }>();
  private readonly loop: PollLoop;

  constructor(deps: {
    store: Store;
    side: FollowUpStore;
    clock: Clock;
    options: Partial<WebhookOptions> & { secret: string };
    log?: (msg: string, err?: unknown) => void;
  }) {
    this.options = { ...DEFAULT_WEBHOOK_OPTIONS, ...deps.options };
    const o = this.options;
    if (!o.secret || o.secret.length < 16) throw new RangeError('webhook secret: at least 16 characters');
    if (o.backoffS.length === 0 || o.backoffS.some((s) => !(s >= 0) || !Number.isFinite(s))) {
      throw new RangeError('webhook backoffS: a non-empty list of seconds ≥ 0');
    }
    if (
      !(o.maxAttempts >= 1) ||
      !(o.concurrency >= 1) ||
      !(o.batch >= 1) ||
      !(o.leaseS > o.timeoutMs / 1000 + CLAIM_MARGIN_S)
    ) {
      throw new RangeError(
        `webhook options: maxAttempts, concurrency, batch ≥ 1 and leaseS above timeoutMs + ${CLAIM_MARGIN_S} s`,
      );
    }
    this.store = deps.store;
    this.side = deps.side;
    this.clock = deps.clock;
    this.log = deps.log ?? ((msg, err) => console.error(`[webhooks] ${msg}`, err ?? ''));
    this.loop = new PollLoop(() => this.tick(), {
      pollMs: this.options.pollMs,
      minGapMs: this.options.minGapMs,
      onError: (err) => this.log('sending round failed', err),
    });
  }

  // ------------------------------------------------------------ recording

  /** Records the incident's public updates not recorded yet; returns how many. */
  async sync(incidentId: string): Promise<number> {
    // The first sync of an incident reads it whole; later ones only its events.
    let target = this.targets.get(incidentId);
    let timeline: StoredEvent[];
    if (target === undefined) {
      const inc = await this.store.getIncident(incidentId);
      if (!inc) return 0;
      target = this.targetOf(inc);
      this.remember(incidentId, target);
      timeline = inc.timeline;
    } else {
      if (target === null) return 0;
      timeline = await this.store.listEvents({ incidentId, limit: 10_000 });
    }
    if (!target) return 0;
    const now = this.clock.now();
    // A receiver being backed off gets new updates at its next probe, not one by one now.
    const host = this.hosts.get(target.origin);
    const nextAt = host && host.until > now ? host.until : undefined;
    const done = this.recorded.get(incidentId) ?? 0;
    const updates = publicUpdates(timeline);
    const rows: NewDelivery[] = updates
      .filter((u) => u.seq > done)
      .map((u) => ({
        incidentId,
        seq: u.seq,
        status: u.status,
        url: target.url,
        origin: target.origin,
        body: updateBody({ id: incidentId, type: target.type }, u),
        idempotencyKey: `${incidentId}:${u.seq}`,
        createdAt: now,
        ...(nextAt !== undefined ? { nextAt } : {}),
      }));
    if (rows.length === 0) return 0;
    const n = await this.side.addDeliveries(rows);
    const last = updates.at(-1)!;
    if (last.status === 'closed' || last.status === 'cancelled') {
      // Nothing follows a final status.
      this.targets.delete(incidentId);
      this.recorded.delete(incidentId);
    } else this.recorded.set(incidentId, last.seq);
    if (n > 0) this.kick();
    return n;
  }

  /** Where an incident's updates go: its HTTPS callback URL, or null (none, or a reporter reference). */
  private targetOf(inc: IncidentRecord): { url: string; origin: string; type: string } | null {
    const cb = inc.payload.callback;
    if (typeof cb !== 'string') return null;
    let url: string | undefined;
    try {
      url = checkCallback(cb, this.options);
    } catch (err) {
      this.log(`incident ${inc.id}: callback refused (${(err as Error).message}); no webhook`);
      return null;
    }
    if (url === undefined || !/^https?:\/\//i.test(url)) return null; // a reporter reference
    return { url, origin: new URL(url).origin, type: inc.type };
  }

  private remember(incidentId: string, target: { url: string; origin: string; type: string } | null): void {
    this.targets.set(incidentId, target);
    if (this.targets.size > TARGETS_KEEP) {
      const oldest = this.targets.keys().next().value!;
      this.targets.delete(oldest);
      this.recorded.delete(oldest);
    }
  }

  // ------------------------------------------------------------ sending

  /**
   * One sending round at the clock's now: every due head delivery, until none is left.
   *
   * Receivers are backed off as a whole: when an attempt fails for a reason of the receiver
   * (refused, timed out, 408, 429, 5xx) its origin waits backoffS[n] (n = failures in a row)
   * and every pending delivery to it waits with it; from then on one delivery at a time
   * probes it, the rest of a round's claims for it are put back untried. The first answer
   * ends the back-off and its deliveries are due at once. So an outage costs one attempt per
   * back-off step, whatever the backlog, and the backlog is sent as soon as the receiver is
   * back. Attempts (and the dead-letter limit) count per delivery tried.
   */
  async tick(): Promise<TickResult> {
    const total: TickResult = { attempted: 0, delivered: 0, retrying: 0, dead: 0 };
    for (let round = 0; round < 1000; round++) {
      const now = this.clock.now();
      const claimed = await this.side.claimDueDeliveries(now, now + this.options.leaseS, this.options.batch);
      if (claimed.length === 0) break;
      const skipped = new Map<string, number[]>();
      const probing = new Set<string>();
      let next = 0;
      const worker = async () => {
        while (next < claimed.length) {
          const d = claimed[next++];
          // Waited too long in this round: the claim could lapse mid-attempt and another
          // sender take the delivery meanwhile. Left to lapse; it is claimed again then.
          const ends = this.clock.now() + this.options.timeoutMs / 1000 + CLAIM_MARGIN_S;
          if (d.claimedUntil !== undefined && ends > d.claimedUntil) continue;
          const host = this.hosts.get(d.origin);
          if (host && (host.until > this.clock.now() || probing.has(d.origin))) {
            const l = skipped.get(d.origin) ?? [];
            l.push(d.id);
            skipped.set(d.origin, l);
            continue;
          }
          if (host) probing.add(d.origin);
          const r = await this.deliver(d);
          probing.delete(d.origin);
          total.attempted++;
          total[r]++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, claimed.length) }, worker));
      // Put back untried: due at the receiver's next probe, or now if it answered meanwhile.
      for (const [origin, ids] of skipped) {
        await this.side.releaseDeliveries(ids, this.hosts.get(origin)?.until ?? this.clock.now());
      }
    }
    return total;
  }

  private backoff(n: number): number {
    const b = this.options.backoffS;
    return b[Math.min(n, b.length) - 1];
  }

  /** The receiver answered: its back-off ends and its waiting deliveries are due now. */
  private async receiverUp(origin: string, at: number): Promise<void> {
    if (!this.hosts.delete(origin)) return;
    await this.side.releaseOrigin(origin, at);
  }

  /** The receiver failed: it (and every delivery to it) waits for the next back-off step. */
  private async receiverDown(origin: string, at: number): Promise<number> {
    let host = this.hosts.get(origin);
    if (!host || host.until <= at) {
      host = { failures: (host?.failures ?? 0) + 1, until: 0 };
      host.until = at + this.backoff(host.failures);
      this.hosts.set(origin, host);
    }
    await this.side.deferOrigin(origin, host.until, at);
    return host.until;
  }

  private async deliver(d: DeliveryRecord): Promise<'delivered' | 'retrying' | 'dead'> {
    const ts = Math.floor(this.clock.now());
    const res = await this.post(d, ts);
    const at = this.clock.now();
    const attempts = d.attempts + 1;
    try {
      // Any HTTP answer but a retryable one means the receiver is there.
      if (res.ok || (res.permanent && res.status !== undefined)) await this.receiverUp(d.origin, at);
      if (res.ok) {
        await this.side.finishDelivery(d.id, { state: 'delivered', at, httpStatus: res.status });
        return 'delivered';
      }
      const status = res.status !== undefined ? { httpStatus: res.status } : {};
      const until = res.permanent ? at : await this.receiverDown(d.origin, at);
      if (res.permanent || attempts >= this.options.maxAttempts) {
        await this.side.finishDelivery(d.id, { state: 'dead', at, error: res.error, ...status });
        this.log(
          `delivery ${d.idempotencyKey} to ${d.origin} is dead after ${attempts} attempt(s): ${res.error}`,
        );
        return 'dead';
      }
      await this.side.finishDelivery(d.id, {
        state: 'pending',
        at,
        nextAt: until,
        error: res.error,
        ...status,
      });
      return 'retrying';
    } catch (err) {
      // The claim lapses and the delivery is tried again; the receiver dedupes by its key.
      this.log(`recording the outcome of delivery ${d.id} failed`, err);
      return 'retrying';
    }
  }

  private post(d: DeliveryRecord, timestamp: number): Promise<Attempt> {
    let url: URL;
    try {
      url = new URL(d.url);
    } catch {
      return Promise.resolve({ ok: false, permanent: true, error: 'not a valid URL' });
    }
    const secure = url.protocol === 'https:';
    if (!secure && !(this.options.allowHttp && url.protocol === 'http:')) {
      return Promise.resolve({ ok: false, permanent: true, error: `${url.protocol} is not allowed` });
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!this.options.allowPrivate && (isIP(host) ? isPrivateAddress(host) : isLocalHostName(host))) {
      return Promise.resolve({ ok: false, permanent: true, error: `${url.hostname} is a private address` });
    }
    const allowPrivate = this.options.allowPrivate;
    // Resolved addresses are checked too (a public name pointing at a private address).
    const lookup = (
      hostname: string,
      options: object,
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
        if (err) return cb(err, []);
        if (!allowPrivate && addresses.some((a) => isPrivateAddress(a.address))) {
          const e: NodeJS.ErrnoException = new Error(`${hostname} resolves to a private address`);
          e.code = 'EPRIVATE';
          return cb(e, []);
        }
        if ((options as { all?: boolean }).all) return cb(null, addresses);
        return cb(null, addresses[0].address, addresses[0].family);
      });
    };
    const body = Buffer.from(d.body, 'utf8');
    return new Promise<Attempt>((resolve) => {
      let done = false;
      let limit: NodeJS.Timeout | undefined;
      const finish = (a: Attempt) => {
        if (done) return;
        done = true;
        clearTimeout(limit);
        resolve(a);
      };
      const req = (secure ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': String(body.length),
            'user-agent': 'dispatch-webhooks/1',
            'idempotency-key': d.idempotencyKey,
            'x-dispatch-event': d.status,
            'x-dispatch-sequence': String(d.seq),
            [TIMESTAMP_HEADER]: String(timestamp),
            [SIGNATURE_HEADER]: signWebhook(this.options.secret, timestamp, d.body),
          },
          timeout: this.options.timeoutMs,
          lookup: lookup as never,
          agent: false,
        },
        (res: IncomingMessage) => {
          res.resume();
          res.on('end', () => {
            const s = res.statusCode ?? 0;
            if (s >= 200 && s < 300) finish({ ok: true, status: s });
            else {
              const retry = s === 408 || s === 429 || s >= 500;
              finish({ ok: false, permanent: !retry, error: `HTTP ${s}`, status: s });
            }
          });
          res.on('error', (err) =>
            finish({ ok: false, permanent: false, error: err.message, status: res.statusCode }),
          );
          res.on('close', () => {
            if (!res.complete)
              finish({ ok: false, permanent: false, error: 'answer cut off', status: res.statusCode });
          });
        },
      );
      // The whole attempt, not only each wait for bytes (the socket timeout), ends at
      // timeoutMs: a claim must outlast its attempt (see CLAIM_MARGIN_S).
      limit = setTimeout(
        () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
      req.on('timeout', () => {
        req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        finish({
          ok: false,
          permanent: err.code === 'EPRIVATE',
          error: err.code ? `${err.code}: ${err.message}` : err.message,
        });
      });
      req.end(body);
    });
  }

  // ------------------------------------------------------------ the loop

  start(): void {
    this.loop.start();
  }

  /** Sends soon (after new deliveries were recorded). */
  kick(): void {
    this.loop.kick();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  // ------------------------------------------------------------ dispatcher views

  deadLetters(limit?: number, offset?: number): Promise<DeliveryRecord[]> {
    return this.side.listDeliveries({
      state: 'dead',
      ...(limit !== undefined ? { limit } : {}),
      ...(offset !== undefined ? { offset } : {}),
    });
  }

  deliveriesOf(incidentId: string): Promise<DeliveryRecord[]> {
    return this.side.listDeliveries({ incidentId, limit: 1000 });
  }

  /** A dead delivery is sent again (attempts from zero), probing its receiver at once. */
  async retry(id: number): Promise<DeliveryRecord> {
    const now = this.clock.now();
    const d = await this.side.retryDelivery(id, now);
    const host = this.hosts.get(d.origin);
    if (host) host.until = Math.min(host.until, now);
    this.kick();
    return d;
  }
}

/** A delivery as the API shows it (the body parsed; the URL's query string hidden). */
export function deliveryView(d: DeliveryRecord): Record<string, unknown> {
  let target = d.url;
  try {
    const u = new URL(d.url);
    target = `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    /* shown as stored */
  }
  const v: Record<string, unknown> = {
    id: d.id,
    incidentId: d.incidentId,
    seq: d.seq,
    status: d.status,
    url: target,
    idempotencyKey: d.idempotencyKey,
    state: d.state,
    attempts: d.attempts,
    createdAt: iso(d.createdAt),
  };
  if (d.state === 'pending') v.nextAttemptAt = iso(d.nextAt);
  if (d.lastAttemptAt !== undefined) v.lastAttemptAt = iso(d.lastAttemptAt);
  if (d.lastError !== undefined) v.lastError = d.lastError;
  if (d.lastHttpStatus !== undefined) v.lastHttpStatus = d.lastHttpStatus;
  if (d.deliveredAt !== undefined) v.deliveredAt = iso(d.deliveredAt);
  if (d.deadAt !== undefined) v.deadAt = iso(d.deadAt);
  return v;
}
