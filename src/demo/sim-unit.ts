// One simulated field unit of the live demo: a socket.io client with a unit token that behaves
// like the field app. It acknowledges offers (accepting, or declining with the scenario's
// sim.declineProb), reports `en_route`, drives there (turnout, then the travel model's time,
// both divided by the demo speed) streaming its position along the straight line every few
// seconds of demo time, reports `on_scene`, stays for the incident's on-scene time and
// reports `available` (cleared), then drives home (sim.returnHome, default true).
//
// It follows the replay simulator's rules (src/sim/simulate.ts) so a demo looks like a replay:
// an offered unit stops where it is until it answers (after sim.ackDelayS); on accept it sets
// off from there, with no turnout when it was already rolling (a pre-emption); the on-scene
// work of an incident starts when its first unit arrives, and every unit there clears when
// that work ends (one arriving later clears on arrival). Positions follow src/sim/motion.ts.
//
// Only the public contract is used: socket events `ack`, `status`, `location` (with their
// reply callbacks), pushed `assignment:offer` / `assignment:updated`, and the handshake's
// `auth.lastSeq` to catch up after a reconnect.

import { io, type Socket } from 'socket.io-client';
import type { TravelTimes } from '../core/ports.ts';
import type { LonLat } from '../core/types.ts';
import type { Rng } from '../scenario/rng.ts';
import type {
  AssignmentView,
  ClientToServerEvents,
  Envelope,
  IncidentView,
  OfferView,
  ServerToClientEvents,
} from '../shared/events.ts';
import { positionAt } from '../sim/motion.ts';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
type ReplyValue = { ok: true } | { ok: false; code: string; message: string };

/** Shortest real interval between two position reports of one unit. */
const MIN_TICK_MS = 200;
/** How long a socket event waits for the server's reply. */
const REPLY_TIMEOUT_MS = 10_000;
/** Remembered offer ids per unit (duplicates from re-sends and replays are dropped). */
const HANDLED_KEEP = 200;

export interface UnitSpec {
  id: string;
  home: LonLat;
  speedKmh: number;
  turnoutS: number;
}

export interface DemoStats {
  /** Incidents posted and created (201). */
  posted: number;
  /** Posts answered 200: merged into an open duplicate, or a key already seen. */
  replayed: number;
  /** Posts that failed for good (after retries). */
  failedPosts: number;
  offers: number;
  accepted: number;
  declined: number;
  onScene: number;
  cleared: number;
  /** Assignments taken away (pre-empted, cancelled, timed out). */
  released: number;
  /** Socket events the server refused or did not answer. */
  refused: number;
}

export const emptyStats = (): DemoStats => ({
  posted: 0,
  replayed: 0,
  failedPosts: 0,
  offers: 0,
  accepted: 0,
  declined: 0,
  onScene: 0,
  cleared: 0,
  released: 0,
  refused: 0,
});

export interface DemoLog {
  info(msg: string, obj?: Record<string, unknown>): void;
  warn(msg: string, obj?: Record<string, unknown>): void;
  debug(msg: string, obj?: Record<string, unknown>): void;
}

/** Work on scene: the first arrival at an incident starts it; everyone there clears at its end. */
export class SceneBook {
  private readonly ends = new Map<string, number>();

  /** Epoch ms at which the work at `incidentId` ends (set by its first arrival). */
  arrive(incidentId: string, nowMs: number, workMs: number): number {
    let end = this.ends.get(incidentId);
    if (end === undefined) {
      end = nowMs + workMs;
      this.ends.set(incidentId, end);
      if (this.ends.size > 5000) {
        for (const [id, e] of this.ends) if (e < nowMs - 3_600_000) this.ends.delete(id);
      }
    }
    return end;
  }
}

/** What the units of one demo share: speed, travel model, behaviour, scenes, counters. */
export interface DemoWorld {
  readonly speed: number;
  readonly travel: TravelTimes;
  readonly ackDelayS: number;
  readonly declineProb: number;
  readonly returnHome: boolean;
  /** Position reports every this many seconds of demo time while moving. */
  readonly positionEveryS: number;
  /** Seconds (demo time) of on-scene work at an incident. */
  onSceneS(incidentId: string, type: string): number;
  readonly scenes: SceneBook;
  readonly stats: DemoStats;
  readonly log: DemoLog;
}

interface Trip {
  kind: 'incident' | 'home';
  from: LonLat;
  to: LonLat;
  startMs: number;
  turnoutMs: number;
  travelMs: number;
}

interface Job {
  assignmentId: string;
  incidentId: string;
  type: string;
  location: LonLat;
}

type Phase = 'idle' | 'offered' | 'en_route' | 'on_scene' | 'returning';

const samePoint = (a: LonLat, b: LonLat) => a[0] === b[0] && a[1] === b[1];

export class SimUnit {
  private socket?: Client;
  private phase: Phase = 'idle';
  private job?: Job;
  private trip?: Trip;
  private pos: LonLat;
  private lastSent?: LonLat;
  /** Bumped at every change of plan: continuations of an older plan stop. */
  private gen = 0;
  /** Set when a pre-emption stopped the unit on the way: its next trip has no turnout. */
  private rolling = false;
  private lastSeq = 0;
  private readonly handled: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private tick?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    readonly spec: UnitSpec,
    private readonly world: DemoWorld,
    private readonly rng: Rng,
    private readonly token: () => Promise<string>,
    position?: LonLat,
  ) {
    this.pos = position ?? spec.home;
  }

  get status(): Phase {
    return this.phase;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** Connects; resolves on the first successful handshake, rejects on a refused one. */
  connect(url: string): Promise<void> {
    const socket: Client = io(url, {
      transports: ['websocket'],
      reconnectionDelayMax: 5000,
      auth: (cb) => {
        this.token().then(
          (token) => cb({ token, ...(this.lastSeq > 0 ? { lastSeq: this.lastSeq } : {}) }),
          () => cb({}),
        );
      },
    });
    this.socket = socket;
    socket.onAny((_event: string, env: unknown) => {
      const seq = (env as Envelope<unknown> | undefined)?.seq;
      if (typeof seq === 'number' && seq > this.lastSeq) this.lastSeq = seq;
    });
    socket.on('assignment:offer', (env, received) => {
      if (typeof received === 'function') received(true);
      this.onOffer(env.data);
    });
    socket.on('assignment:updated', (env) => this.onAssignmentUpdated(env.data));
    socket.on('error', (e) => this.world.log.debug('unit socket error', { unit: this.spec.id, ...e }));
    return new Promise((resolve, reject) => {
      const ok = () => {
        socket.off('connect_error', bad);
        resolve();
      };
      const bad = (err: Error & { data?: { code?: string } }) => {
        socket.off('connect', ok);
        socket.disconnect();
        reject(new Error(`unit ${this.spec.id} could not connect: ${err.data?.code ?? err.message}`));
      };
      socket.once('connect', ok);
      socket.once('connect_error', bad);
    });
  }

  /** Picks up work the unit already holds (after a restart of the demo): offers, trips, scenes. */
  resume(a: AssignmentView, inc: IncidentView): void {
    const job: Job = { assignmentId: a.id, incidentId: inc.id, type: inc.type, location: inc.location };
    switch (a.status) {
      case 'offered':
        this.onOffer({ assignment: a, incident: inc });
        return;
      case 'accepted':
        this.newPlan();
        this.job = job;
        this.remember(a.id);
        void this.setOff(this.gen, job);
        return;
      case 'en_route':
        this.newPlan();
        this.job = job;
        this.remember(a.id);
        this.rolling = true;
        this.startTrip('incident', job.location, this.gen);
        return;
      case 'on_scene': {
        this.newPlan();
        this.job = job;
        this.remember(a.id);
        this.phase = 'on_scene';
        this.scheduleClear(this.gen, job);
        return;
      }
      default:
    }
  }

  /** Stops timers and disconnects. */
  stop(): void {
    this.stopped = true;
    this.newPlan();
    this.socket?.disconnect();
  }

  // ------------------------------------------------------------ behaviour

  private onOffer(offer: OfferView): void {
    if (this.stopped) return;
    const { assignment: a, incident } = offer;
    if (a.status !== 'offered' || this.handled.includes(a.id)) return;
    this.remember(a.id);
    this.world.stats.offers++;
    // The unit stops where it is until it answers; a unit taken off its way keeps rolling.
    const wasRolling = this.rolling || (this.phase === 'en_route' && this.isMoving(Date.now()));
    this.newPlan();
    this.rolling = wasRolling;
    this.phase = 'offered';
    const job: Job = {
      assignmentId: a.id,
      incidentId: incident.id,
      type: incident.type,
      location: incident.location,
    };
    this.job = job;
    const gen = this.gen;
    this.later(this.demoMs(this.world.ackDelayS), () => void this.answer(gen, job));
  }

  private async answer(gen: number, job: Job): Promise<void> {
    const decline = this.world.declineProb > 0 && this.rng.chance(this.world.declineProb);
    if (decline) {
      const r = await this.send('ack', {
        assignmentId: job.assignmentId,
        accept: false,
        reason: 'simulated decline (demo)',
      });
      if (r.ok) this.world.stats.declined++;
      if (gen !== this.gen) return;
      this.rolling = false;
      this.becomeFree();
      return;
    }
    const r = await this.send('ack', { assignmentId: job.assignmentId, accept: true });
    if (gen !== this.gen) return;
    if (!r.ok) {
      this.becomeFree();
      return;
    }
    this.world.stats.accepted++;
    await this.setOff(gen, job);
  }

  private async setOff(gen: number, job: Job): Promise<void> {
    const r = await this.send('status', { status: 'en_route', incidentId: job.incidentId });
    if (gen !== this.gen) return;
    if (!r.ok) {
      this.becomeFree();
      return;
    }
    this.startTrip('incident', job.location, gen);
  }

  private startTrip(kind: Trip['kind'], to: LonLat, gen: number): void {
    const now = Date.now();
    const from = this.pos;
    const travelS = samePoint(from, to) ? 0 : this.world.travel.travelS(from, to, this.spec.speedKmh);
    const turnoutS = kind === 'incident' && !this.rolling ? this.spec.turnoutS : 0;
    this.rolling = false;
    this.trip = {
      kind,
      from,
      to,
      startMs: now,
      turnoutMs: this.demoMs(turnoutS),
      travelMs: this.demoMs(travelS),
    };
    this.phase = kind === 'incident' ? 'en_route' : 'returning';
    const every = Math.max(MIN_TICK_MS, this.demoMs(this.world.positionEveryS));
    this.tick = setInterval(() => this.report(), every);
    this.later(this.demoMs(turnoutS + travelS), () => void this.arrive(gen));
  }

  private async arrive(gen: number): Promise<void> {
    const trip = this.trip;
    if (gen !== this.gen || !trip) return;
    this.stopMoving(trip.to);
    await this.send('location', { position: trip.to, at: Date.now() });
    this.lastSent = trip.to;
    if (gen !== this.gen) return;
    if (trip.kind === 'home') {
      this.phase = 'idle';
      return;
    }
    const job = this.job;
    if (!job) return;
    const r = await this.send('status', { status: 'on_scene', incidentId: job.incidentId });
    if (gen !== this.gen) return;
    if (!r.ok) {
      this.becomeFree();
      return;
    }
    this.world.stats.onScene++;
    this.phase = 'on_scene';
    this.scheduleClear(gen, job);
  }

  private scheduleClear(gen: number, job: Job): void {
    const now = Date.now();
    const end = this.world.scenes.arrive(
      job.incidentId,
      now,
      this.demoMs(this.world.onSceneS(job.incidentId, job.type)),
    );
    this.later(Math.max(0, end - now), () => void this.clear(gen));
  }

  private async clear(gen: number): Promise<void> {
    const r = await this.send('status', { status: 'available' });
    if (gen !== this.gen) return;
    if (r.ok) this.world.stats.cleared++;
    this.becomeFree();
  }

  private onAssignmentUpdated(a: AssignmentView): void {
    if (this.stopped || !this.job || a.id !== this.job.assignmentId) return;
    if (a.status !== 'preempted' && a.status !== 'cancelled' && a.status !== 'timed_out') return;
    const moving = this.phase === 'en_route' && this.isMoving(Date.now());
    this.newPlan();
    this.world.stats.released++;
    if (a.status === 'preempted') {
      // The new offer follows at once; the unit keeps rolling towards it.
      this.rolling = moving;
      this.phase = 'idle';
      return;
    }
    this.becomeFree();
  }

  /** No work in hand: drive home (sim.returnHome) or wait where it is. */
  private becomeFree(): void {
    this.job = undefined;
    this.phase = 'idle';
    if (this.world.returnHome && !samePoint(this.pos, this.spec.home) && !this.stopped) {
      this.startTrip('home', this.spec.home, this.gen);
    }
  }

  // ------------------------------------------------------------ motion

  private position(nowMs: number): LonLat {
    const t = this.trip;
    if (!t) return this.pos;
    return positionAt(t.from, t.to, t.startMs, t.turnoutMs, t.travelMs, nowMs);
  }

  private isMoving(nowMs: number): boolean {
    const t = this.trip;
    return t !== undefined && nowMs >= t.startMs + t.turnoutMs;
  }

  private report(): void {
    const p = this.position(Date.now());
    this.pos = p;
    if (this.lastSent && samePoint(p, this.lastSent)) return;
    this.lastSent = p;
    void this.send('location', { position: p, at: Date.now() });
  }

  private stopMoving(at?: LonLat): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = undefined;
    this.pos = at ?? this.position(Date.now());
    this.trip = undefined;
  }

  /** A new plan: pending timers of the old one are dropped, the unit stops where it is. */
  private newPlan(): void {
    this.gen++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stopMoving();
  }

  // ------------------------------------------------------------ plumbing

  private demoMs(demoS: number): number {
    return (demoS * 1000) / this.world.speed;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  private remember(assignmentId: string): void {
    this.handled.push(assignmentId);
    if (this.handled.length > HANDLED_KEEP) this.handled.shift();
  }

  /** Emits a unit event and waits for the server's reply (never rejects). */
  private send<E extends 'ack' | 'status' | 'location'>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<ReplyValue> {
    const socket = this.socket;
    if (!socket || this.stopped) {
      return Promise.resolve({ ok: false, code: 'STOPPED', message: 'the unit is stopped' });
    }
    return new Promise((resolve) => {
      const timed = socket.timeout(REPLY_TIMEOUT_MS) as unknown as {
        emit(ev: string, p: unknown, cb: (err: Error | null, r?: ReplyValue) => void): void;
      };
      timed.emit(event, payload, (err, r) => {
        const reply: ReplyValue = err
          ? { ok: false, code: 'NO_REPLY', message: err.message }
          : (r ?? { ok: false, code: 'NO_REPLY', message: 'empty reply' });
        if (!reply.ok) {
          this.world.stats.refused++;
          this.world.log.debug('unit event refused', {
            unit: this.spec.id,
            event,
            code: reply.code,
            message: reply.message,
          });
        }
        resolve(reply);
      });
    });
  }
}
