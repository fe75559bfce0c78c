// Shared by the follow-up integration tests: the real Engine with its workers and a FollowUp
// (review scanner and webhook sender driven by hand: pollMs 0) on a manual clock, and a real
// HTTP receiver on 127.0.0.1 that can be taken down and brought back on the same port.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultCatalog } from '../../src/core/catalog.ts';
import { GreatCircleTravel } from '../../src/core/travel.ts';
import type { LonLat } from '../../src/core/types.ts';
import type { Actor } from '../../src/engine/api.ts';
import type { EngineConfig } from '../../src/engine/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { ScenarioContext } from '../../src/engine/factory.ts';
import { FollowUp, type FollowUpOptions } from '../../src/engine/followup.ts';
import { RecordingPublisher } from '../../src/engine/memory-publisher.ts';
import type { Clock } from '../../src/engine/ports.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../src/engine/webhooks.ts';
import { MemoryQueue } from '../../src/queue/memory-queue.ts';
import type { OfferView } from '../../src/shared/events.ts';
import type { Store } from '../../src/store/store.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';

export const DISPATCHER: Actor = { role: 'dispatcher', id: 'd.li' };
export const ADMIN: Actor = { role: 'admin', id: 'root' };
export const PLANNER: Actor = { role: 'planner', id: 'p.wu' };
export const unit = (id: string): Actor => ({ role: 'unit', id: `u-${id}`, unitId: id });
export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789abcdef';

// Huangpu, Guangzhou. 0.01° of longitude here ≈ 1.02 km.
export const BASE: LonLat = [113.45, 23.1];
export const at = (dxKm: number, dyKm = 0): LonLat => [BASE[0] + dxKm / 102.4, BASE[1] + dyKm / 111.2];

export class ManualClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  advance(s: number): void {
    this.t = Math.round((this.t + s) * 1000) / 1000;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface Stack {
  engine: Engine;
  store: Store;
  queue: MemoryQueue;
  pub: RecordingPublisher;
  workers: Workers;
  followUp: FollowUp;
  clock: ManualClock;
  /** Waits until no decision, state change or (non-delayed) job is pending. */
  settle(): Promise<void>;
  offerFor(unitId: string, incidentId: string): Promise<OfferView>;
  addUnit(id: string, caps: string[], home: LonLat, department?: string, speedKmh?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function stack(opts: {
  store: Store;
  config?: Partial<EngineConfig>;
  followUp?: Partial<Omit<FollowUpOptions, 'store' | 'engineConfig' | 'webhookSecret' | 'clock'>>;
  /** Epoch seconds the manual clock starts at (default: now, whole seconds). */
  t0?: number;
  /** Catalogue, areas and travel model (default: the default catalogue, no areas, great circle). */
  context?: ScenarioContext;
}): Promise<Stack> {
  const clock = new ManualClock(opts.t0 ?? Math.floor(Date.now() / 1000));
  const queue = new MemoryQueue({ retry: { backoffMs: 20 } });
  const pub = new RecordingPublisher();
  const engine = new Engine({
    store: opts.store,
    queue,
    publisher: pub,
    clock,
    ...(opts.context ?? { catalog: defaultCatalog(), travel: new GreatCircleTravel() }),
    config: {
      decideDebounceMs: 2,
      sweepIntervalMs: 0,
      callbackAllowHttp: true,
      callbackAllowPrivate: true,
      ...opts.config,
    },
  });
  await engine.start();
  const followUp = new FollowUp({
    store: opts.store,
    engineConfig: engine.config,
    webhookSecret: WEBHOOK_SECRET,
    clock,
    ...opts.followUp,
    webhooks: { pollMs: 0, timeoutMs: 2000, ...opts.followUp?.webhooks },
    scanner: { pollMs: 0, gapWaitS: 0, ...opts.followUp?.scanner },
  });
  const workers = await startWorkers(engine, queue, opts.store, { relay: { pollMs: 20 }, followUp });
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await until(() => !engine.busy, 'the engine to be quiet');
      // The relay spaces its passes (minGapMs): rows may wait for the next one.
      await until(async () => (await opts.store.outboxBacklog()) === 0, 'the outbox relayed');
      await queue.whenIdle();
      await sleep(5);
    }
    await until(() => !engine.busy, 'the engine to be quiet');
  };
  const s: Stack = {
    engine,
    store: opts.store,
    queue,
    pub,
    workers,
    followUp,
    clock,
    settle,
    async offerFor(unitId, incidentId) {
      try {
        return await until(
          () =>
            pub
              .for(`unit:${unitId}`, 'assignment:offer')
              .map((m) => m.envelope.data as OfferView)
              .find((o) => o.incident.id === incidentId),
          `an offer of ${incidentId} to ${unitId}`,
        );
      } catch (err) {
        // Say what happened instead, so that a failure in CI can be read from its log.
        const offered = pub.messages
          .filter((m) => m.event === 'assignment:offer')
          .map((m) => m.envelope.data as OfferView)
          .filter((o) => o.incident.id === incidentId)
          .map((o) => `${o.assignment.unitId} (${o.assignment.status})`);
        const d = await engine.getIncident(incidentId, DISPATCHER).catch((e: Error) => e.message);
        const status =
          typeof d === 'string'
            ? d
            : `${d.status}; assignments ${d.assignments.map((a) => `${a.unitId} ${a.status}`).join(', ') || 'none'}`;
        throw new Error(
          `${(err as Error).message}: offered to ${offered.join(', ') || 'no unit'}; incident ${status}; decision rounds ${engine.decisions}`,
        );
      }
    },
    async addUnit(id, caps, home, department = 'police', speedKmh = 40) {
      await engine.upsertUnit(id, { department, capabilities: caps, home, speedKmh, turnoutS: 60 }, ADMIN);
    },
    async stop() {
      await engine.stop();
      await workers.stop();
      await followUp.stop();
      await queue.close();
    },
  };
  return s;
}

export interface Received {
  key: string;
  incidentId: string;
  seq: number;
  status: string;
  body: string;
  timestamp: string;
  signature: string;
}

/** A webhook receiver on a fixed 127.0.0.1 port that can be down (connection refused) or up. */
export class Receiver {
  readonly got: Received[] = [];
  /** Status to answer (default 204). */
  answer = 204;
  private server?: Server;
  private constructor(readonly port: number) {}

  static async reserve(): Promise<Receiver> {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    return new Receiver(port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/reporter`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        if (this.answer >= 200 && this.answer < 300) {
          const b = JSON.parse(body) as { incidentId: string; sequence: number; status: string };
          this.got.push({
            key: String(req.headers['idempotency-key']),
            incidentId: b.incidentId,
            seq: b.sequence,
            status: b.status,
            body,
            timestamp: String(req.headers[TIMESTAMP_HEADER]),
            signature: String(req.headers[SIGNATURE_HEADER]),
          });
        }
        res.writeHead(this.answer).end();
      });
    });
    server.keepAliveTimeout = 1;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
