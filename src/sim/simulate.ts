// The discrete-event replay: a scenario's incidents and units on a virtual clock, driving
// the real dispatch core. Pure and deterministic — no I/O, no wall clock (the caller may
// hand in one to time the policy; it never influences the replay), randomness only from a
// PRNG seeded with the scenario's seed.
//
// The clock. Scheduled events sit in a binary heap ordered by (time, priority, sequence);
// at equal times they run in this order: arrivals on scene, ends of on-scene work, units
// reaching home, offer answers, offer timeouts, ends of refusal cooldowns, incident reports,
// cancellations, and last the policy decision — so a decision sees everything that
// happened at its instant.
//
// Decisions. The policy is called only when something changed that could change its
// answer: an incident was reported, a slot reopened (decline, timeout, pre-emption), or a
// unit became free while some open slot needs one of its capabilities. With sim.cadenceS = 0
// the decision runs at the same instant; with cadenceS = N > 0 at the next multiple of N.
// The state handed to the policy holds only what can matter: incidents with open slots,
// the free units having a capability some open slot needs, every unit committed to those
// incidents, and — when an immediate incident is open and pre-emption is on — the units
// bound for lower-priority incidents not yet on scene (with those incidents and their units).
// Units in a refusal cooldown are not dispatchable.
//
// Units. An offer makes the unit `offered`; it stays where it is until it answers. The answer
// (sim block, see options.ts): with noResponseProb no answer at all, else after ackDelayS
// (if that is not less than ackTimeoutS: a timeout) a decline with declineProb, else an
// accept. A timeout or decline reopens the slot and sends the unit into a refusal cooldown.
// On accept the unit is `en_route` and arrives exactly `etaS` later — the decision's ETA,
// i.e. turnout + travel by the travel model from where it stood; turnout is 0 for a unit
// that was already en route when the decision took it (a pre-emption). Positions while en
// route follow the straight-line rule of motion.ts; a unit taken from its incident stops at
// that point until it answers the new offer.
//
// Incidents. On-scene work starts when the first unit arrives and lasts the incident's
// onSceneS (or the catalogue's). At its end every unit on scene clears at the same instant;
// units still offered or on the way are released where they are (available at once), slots
// never filled are abandoned, and the incident is resolved. A cleared unit is available at
// once. With sim.returnHome (default) it drives home: until the return drive's modelled end
// it counts as standing at the scene (a dispatch during the drive starts from the scene, with
// turnout), from then on at home (`returned`); without returnHome it stays at the scene.
// An incident with a cancelAtS is cancelled then if no unit has arrived yet (its units are
// released where they are). When the clock stops (nothing left to happen, or drainS after the
// duration), incidents no unit ever reached are reported `unserved`.

import { AreaIndex } from '../core/areas.ts';
import { buildCatalog, type CatalogIndex } from '../core/catalog.ts';
import { DEFAULT_OPTIONS, type DispatchOptions, type DispatchPolicy } from '../core/policy.ts';
import type { Budget, TravelTimes } from '../core/ports.ts';
import { RoadNetworkTravel } from '../core/road-network.ts';
import { DEFAULT_DETOUR_FACTOR, GreatCircleTravel } from '../core/travel.ts';
import type {
  Decision,
  DispatchState,
  Incident,
  IncidentStatus,
  IncidentType,
  LonLat,
  Priority,
  Unit,
} from '../core/types.ts';
import { Rng } from '../scenario/rng.ts';
import type { Scenario, ScenarioIncident, ScenarioUnit } from '../scenario/types.ts';
import { type EvQueued, ms, type OpenSlot, roundLonLat, type SimEvent } from './events.ts';
import { positionAt } from './motion.ts';
import { resolveSimOptions, type SimOptions } from './options.ts';
import { EventQueue } from './queue.ts';

/** Order of events at equal times (see the header). */
const P_ARRIVE = 0;
const P_JOB_END = 1;
const P_HOME = 2;
const P_ACK = 3;
const P_TIMEOUT = 4;
const P_COOLDOWN = 5;
const P_REPORT = 6;
const P_CANCEL = 7;
const P_DECIDE = 9;

const DECLINE_REASONS = [
  'crew busy with an unlogged task',
  'vehicle fault',
  'crew at meal break',
  'outside patrol beat',
] as const;

type UnitState = 'available' | 'offered' | 'en_route' | 'on_scene' | 'cooldown';

interface SUnit {
  def: ScenarioUnit;
  id: string;
  homeArea?: string;
  state: UnitState;
  /** Where it stands; for an en-route unit, where it set off. */
  pos: LonLat;
  inc: SIncident | null;
  role: string | null;
  since: number;
  /** Bumped whenever the unit's commitment changes: scheduled events of older generations are stale. */
  gen: number;
  // the pending offer (state offered)
  offerEtaS: number;
  offerTurnoutS: number;
  // the trip (state en_route)
  tripStart: number;
  tripTurnoutS: number;
  tripTravelS: number;
  /** Position handed to the policy in the current decision (interpolated for en-route units). */
  statePos: LonLat | null;
  /** Decision counter when last put into a state (dedupe without Sets). */
  stamp: number;
  /** The core's view, refreshed in place before each decision. */
  core: Unit | null;
}

type IncState = 'pending' | 'active' | 'done' | 'cancelled';

interface SIncident {
  def: ScenarioIncident;
  id: string;
  type: IncidentType;
  priority: Priority;
  immediate: boolean;
  requires: [string, number][];
  requiredTotal: number;
  onSceneS: number;
  area?: string;
  cell?: string;
  state: IncState;
  committed: SUnit[];
  firstArrival: number | null;
  queuedLogged: boolean;
  /** Open slots per capability as last indexed (see refreshOpen). */
  contrib: Map<string, number>;
  stamp: number;
  core: Incident | null;
}

type Job =
  | { k: 'arrive'; u: SUnit; gen: number }
  | { k: 'jobEnd'; inc: SIncident }
  | { k: 'home'; u: SUnit; gen: number }
  | { k: 'ack'; u: SUnit; gen: number; accept: boolean; reason: string }
  | { k: 'timeout'; u: SUnit; gen: number }
  | { k: 'cooldown'; u: SUnit; gen: number }
  | { k: 'report'; inc: SIncident }
  | { k: 'cancel'; inc: SIncident }
  | { k: 'decide' };

export interface SimulateOptions {
  policy: DispatchPolicy;
  /** Overrides of the scenario's sim block (e.g. the CLI's --cadence). */
  sim?: Partial<SimOptions>;
  /** Options handed to the policy (defaults: the core's DEFAULT_OPTIONS). */
  dispatch?: Partial<DispatchOptions>;
  /** Deterministic work budget per decision (default: unlimited). */
  budget?: Budget;
  /** Travel model; default from the scenario (road network when given, else great circle). */
  travel?: TravelTimes;
  /** Catalogue index; default built from the scenario's catalogue. */
  catalog?: CatalogIndex;
  /**
   * Wall clock in milliseconds (e.g. performance.now), used only to time each policy call
   * for SimResult.solverMs. Never influences the replay.
   */
  clock?: () => number;
  /** Called every `progressEvery` processed events with the virtual time. */
  onProgress?: (t: number) => void;
  progressEvery?: number;
}

export interface SimResult {
  events: SimEvent[];
  /** Wall-clock milliseconds of each policy call (empty without `clock`). */
  solverMs: number[];
  decisions: number;
  /** Virtual time at which the clock stopped. */
  endT: number;
  options: SimOptions;
  travel: TravelTimes;
  catalog: CatalogIndex;
}

/** The travel model a scenario asks for: its road network, else great circle × detour factor. */
export function travelFor(scenario: Scenario): TravelTimes {
  const detour = scenario.travel?.detourFactor ?? DEFAULT_DETOUR_FACTOR;
  if (scenario.travel?.roads) return new RoadNetworkTravel(scenario.travel.roads, { detourFactor: detour });
  return new GreatCircleTravel(detour);
}

export function simulate(scenario: Scenario, opts: SimulateOptions): SimResult {
  const sim = resolveSimOptions(scenario.sim, opts.sim);
  const catalog = opts.catalog ?? buildCatalog(scenario.catalog, 'catalog');
  const travel = opts.travel ?? travelFor(scenario);
  const dispatch: DispatchOptions = { ...DEFAULT_OPTIONS, ...opts.dispatch };
  const ctx = { catalog, travel, options: dispatch, budget: opts.budget };
  const policy = opts.policy;
  const clock = opts.clock;
  const rng = new Rng(scenario.seed).fork('sim:answers');
  const areas = scenario.areas.features.length > 0 ? new AreaIndex(scenario.areas, 'areas') : null;

  const events: SimEvent[] = [];
  const solverMs: number[] = [];
  const queue = new EventQueue<Job>();

  const units: SUnit[] = scenario.units.map((def) => ({
    def,
    id: def.id,
    homeArea: def.homeArea ?? areas?.place(def.home).area,
    state: 'available',
    pos: def.home,
    inc: null,
    role: null,
    since: 0,
    gen: 0,
    offerEtaS: 0,
    offerTurnoutS: 0,
    tripStart: 0,
    tripTurnoutS: 0,
    tripTravelS: 0,
    statePos: null,
    stamp: 0,
    core: null,
  }));
  const unitById = new Map(units.map((u) => [u.id, u]));

  const incidents: SIncident[] = scenario.incidents.map((def) => {
    const type = catalog.get(def.type);
    if (!type) throw new RangeError(`incident ${def.id}: type "${def.type}" is not in the catalogue`);
    const requires = Object.keys(type.requires)
      .sort()
      .map((c): [string, number] => [c, type.requires[c]]);
    const place = areas?.place(def.location);
    return {
      def,
      id: def.id,
      type,
      priority: def.priority ?? type.priority,
      immediate: type.immediate,
      requires,
      requiredTotal: requires.reduce((s, [, n]) => s + n, 0),
      onSceneS: def.onSceneS ?? type.onSceneS,
      area: place?.area,
      cell: place?.cell,
      state: 'pending',
      committed: [],
      firstArrival: null,
      queuedLogged: false,
      contrib: new Map(),
      stamp: 0,
      core: null,
    };
  });
  const incById = new Map(incidents.map((i) => [i.id, i]));
  const capabilityExists = new Set(units.flatMap((u) => u.def.capabilities));

  /** Active incidents with at least one open slot, in the order they (re)opened. */
  const open = new Set<SIncident>();
  /** The same by open capability, with open-slot totals; immediate ones; those owing a `queued` record. */
  const openByCap = new Map<string, Set<SIncident>>();
  const openNeed = new Map<string, number>();
  const openImmediate = new Set<SIncident>();
  const owesQueued = new Set<SIncident>();
  /** Available units per capability, and units offered or en route (pre-emption candidates). */
  const availByCap = new Map<string, Set<SUnit>>();
  const bound = new Set<SUnit>();
  for (const u of units) {
    for (const c of u.def.capabilities) {
      let s = availByCap.get(c);
      if (!s) {
        s = new Set();
        availByCap.set(c, s);
      }
      s.add(u);
    }
  }
  let dirty = false;
  let decideScheduled = false;
  let decisions = 0;
  const horizon = scenario.durationS + sim.drainS;

  for (const inc of incidents) {
    queue.push(inc.def.atS, P_REPORT, { k: 'report', inc });
    if (inc.def.cancelAtS !== undefined) queue.push(inc.def.cancelAtS, P_CANCEL, { k: 'cancel', inc });
  }

  // ---- helpers ------------------------------------------------------------------------

  function setState(u: SUnit, s: UnitState): void {
    const was = u.state;
    if (was === s) return;
    u.state = s;
    if (was === 'available') for (const c of u.def.capabilities) availByCap.get(c)!.delete(u);
    else if (s === 'available') for (const c of u.def.capabilities) availByCap.get(c)!.add(u);
    if (s === 'offered' || s === 'en_route') bound.add(u);
    else bound.delete(u);
  }

  const openSlots = (inc: SIncident) => inc.requiredTotal - inc.committed.length;

  function roleCount(inc: SIncident, cap: string): number {
    let n = 0;
    for (const u of inc.committed) if (u.role === cap) n++;
    return n;
  }

  function openCaps(inc: SIncident): string[] {
    const out: string[] = [];
    for (const [cap, n] of inc.requires) for (let k = roleCount(inc, cap); k < n; k++) out.push(cap);
    return out;
  }

  /** Re-indexes an incident's open slots after its units or its state changed. */
  function refreshOpen(inc: SIncident): void {
    const active = inc.state === 'active';
    for (const [cap, n] of inc.requires) {
      const now = active ? Math.max(0, n - roleCount(inc, cap)) : 0;
      const was = inc.contrib.get(cap) ?? 0;
      if (now === was) continue;
      inc.contrib.set(cap, now);
      openNeed.set(cap, (openNeed.get(cap) ?? 0) + now - was);
      let set = openByCap.get(cap);
      if (!set) {
        set = new Set();
        openByCap.set(cap, set);
      }
      if (now > 0) set.add(inc);
      else set.delete(inc);
    }
    if (active && openSlots(inc) > 0) {
      open.add(inc);
      if (inc.immediate) openImmediate.add(inc);
      if (!inc.queuedLogged) owesQueued.add(inc);
    } else {
      open.delete(inc);
      openImmediate.delete(inc);
      owesQueued.delete(inc);
    }
  }

  /** The incident lost a unit: it owes a new `queued` record if it is left with open slots. */
  function reopened(inc: SIncident): void {
    inc.queuedLogged = false;
    if (open.has(inc)) owesQueued.add(inc);
  }

  function markDirty(t: number): void {
    dirty = true;
    if (decideScheduled) return;
    decideScheduled = true;
    const c = sim.cadenceS;
    queue.push(c > 0 ? Math.max(t, Math.ceil(t / c) * c) : t, P_DECIDE, { k: 'decide' });
  }

  /** A unit became free: worth a decision if an open slot needs one of its capabilities. */
  function unitFreed(u: SUnit, t: number): void {
    if (u.def.capabilities.some((c) => (openNeed.get(c) ?? 0) > 0)) markDirty(t);
  }

  function currentPos(u: SUnit, t: number): LonLat {
    if (u.state !== 'en_route' || !u.inc) return u.pos;
    return roundLonLat(positionAt(u.pos, u.inc.def.location, u.tripStart, u.tripTurnoutS, u.tripTravelS, t));
  }

  function detach(u: SUnit): SIncident | null {
    const inc = u.inc;
    if (!inc) return null;
    const i = inc.committed.indexOf(u);
    if (i >= 0) inc.committed.splice(i, 1);
    u.inc = null;
    u.role = null;
    u.gen++;
    refreshOpen(inc);
    return inc;
  }

  /** Frees a unit where it stands (available now), e.g. released, or cleared without returning home. */
  function makeAvailable(u: SUnit, t: number): void {
    setState(u, 'available');
    u.since = t;
    unitFreed(u, t);
  }

  function startCooldown(u: SUnit, t: number): void {
    setState(u, 'cooldown');
    u.since = t;
    queue.push(t + sim.refuseCooldownS, P_COOLDOWN, { k: 'cooldown', u, gen: u.gen });
  }

  function incidentStatus(inc: SIncident): IncidentStatus {
    if (inc.firstArrival !== null) return 'on_scene';
    let offered = false;
    for (const u of inc.committed) {
      if (u.state === 'en_route') return 'en_route';
      if (u.state === 'offered') offered = true;
    }
    return offered ? 'assigned' : 'queued';
  }

  // ---- offers and answers -----------------------------------------------------------------

  function accept(u: SUnit, t: number): void {
    const inc = u.inc!;
    const travelS = u.offerEtaS - u.offerTurnoutS;
    setState(u, 'en_route');
    u.since = t;
    u.tripStart = t;
    u.tripTurnoutS = u.offerTurnoutS;
    u.tripTravelS = travelS;
    events.push({
      t: ms(t),
      kind: 'en_route',
      incidentId: inc.id,
      unitId: u.id,
      from: roundLonLat(u.pos),
      turnoutS: ms(u.offerTurnoutS),
      travelS: ms(travelS),
      etaS: ms(u.offerEtaS),
    });
    queue.push(t + u.offerEtaS, P_ARRIVE, { k: 'arrive', u, gen: u.gen });
  }

  function refuse(u: SUnit, t: number, timeout: boolean, reason: string): void {
    const inc = u.inc!;
    if (timeout) events.push({ t: ms(t), kind: 'ack_timeout', incidentId: inc.id, unitId: u.id });
    else events.push({ t: ms(t), kind: 'declined', incidentId: inc.id, unitId: u.id, reason });
    detach(u);
    reopened(inc);
    startCooldown(u, t);
    markDirty(t);
  }

  function offerAnswer(u: SUnit, t: number): void {
    if (sim.noResponseProb > 0 && rng.chance(sim.noResponseProb)) {
      queue.push(t + sim.ackTimeoutS, P_TIMEOUT, { k: 'timeout', u, gen: u.gen });
      return;
    }
    if (sim.ackDelayS >= sim.ackTimeoutS) {
      queue.push(t + sim.ackTimeoutS, P_TIMEOUT, { k: 'timeout', u, gen: u.gen });
      return;
    }
    const decline = sim.declineProb > 0 && rng.chance(sim.declineProb);
    const reason = decline ? DECLINE_REASONS[rng.int(0, DECLINE_REASONS.length - 1)] : '';
    if (sim.ackDelayS === 0) {
      if (decline) refuse(u, t, false, reason);
      else accept(u, t);
      return;
    }
    queue.push(t + sim.ackDelayS, P_ACK, { k: 'ack', u, gen: u.gen, accept: !decline, reason });
  }

  // ---- the decision -----------------------------------------------------------------------

  /** The state handed to the policy (see the header), or null when it has no candidate unit. */
  let stamp = 0;

  /** The core's view of a unit, kept per unit and refreshed in place (the core copies its input). */
  function coreUnit(u: SUnit, position: LonLat): Unit {
    let cu = u.core;
    if (!cu) {
      cu = {
        id: u.id,
        department: u.def.department,
        capabilities: u.def.capabilities,
        home: u.def.home,
        speedKmh: u.def.speedKmh,
        turnoutS: u.def.turnoutS,
        status: 'available',
      };
      if (u.homeArea !== undefined) cu.homeArea = u.homeArea;
      u.core = cu;
    }
    cu.status = u.state === 'available' ? 'available' : (u.state as 'offered' | 'en_route' | 'on_scene');
    cu.position = position;
    cu.incidentId = u.inc ? u.inc.id : undefined;
    cu.role = u.inc ? u.role! : undefined;
    cu.since = u.inc ? u.since : undefined;
    return cu;
  }

  function coreIncident(inc: SIncident): Incident {
    let ci = inc.core;
    if (!ci) {
      ci = {
        id: inc.id,
        type: inc.def.type,
        location: inc.def.location,
        reportedAt: inc.def.atS,
        status: 'queued',
      };
      if (inc.cell !== undefined) ci.cell = inc.cell;
      if (inc.area !== undefined) ci.area = inc.area;
      if (inc.def.priority !== undefined) ci.priority = inc.def.priority;
      inc.core = ci;
    }
    ci.status = incidentStatus(inc);
    return ci;
  }

  /** The state handed to the policy (see the header), or null when it has no candidate unit. */
  function buildState(t: number): { state: DispatchState; inState: SIncident[]; chosen: SUnit[] } | null {
    stamp++;
    // Pre-emption candidates: per capability, the least urgent priority some bound unit
    // (offered or en route, its incident not yet on scene) could be taken from.
    let boundPriority: Map<string, number> | null = null;
    if (dispatch.preemption && openImmediate.size > 0) {
      boundPriority = new Map();
      for (const u of bound) {
        if (u.inc!.firstArrival !== null) continue;
        for (const c of u.def.capabilities) {
          if ((boundPriority.get(c) ?? 0) < u.inc!.priority) boundPriority.set(c, u.inc!.priority);
        }
      }
    }
    // Open incidents some slot of which has a candidate; the others could only stay unserved.
    const inState: SIncident[] = [];
    const take = (inc: SIncident) => {
      if (inc.stamp === stamp) return;
      inc.stamp = stamp;
      inState.push(inc);
    };
    const needed: string[] = [];
    for (const [cap, set] of openByCap) {
      if (set.size === 0 || (availByCap.get(cap)?.size ?? 0) === 0) continue;
      needed.push(cap);
      for (const inc of set) take(inc);
    }
    /** Capability → most urgent priority of an included immediate incident needing it. */
    const immNeed = new Map<string, number>();
    if (boundPriority) {
      for (const inc of openImmediate) {
        if (inc.stamp !== stamp) {
          for (const [cap, n] of inc.contrib) {
            if (n > 0 && (boundPriority.get(cap) ?? 0) > inc.priority) {
              take(inc);
              break;
            }
          }
        }
        if (inc.stamp !== stamp) continue;
        for (const [cap, n] of inc.contrib) {
          if (n > 0 && inc.priority < (immNeed.get(cap) ?? 5)) immNeed.set(cap, inc.priority);
        }
      }
    }
    if (inState.length === 0) return null;
    // Free units with a capability some open slot needs.
    const chosen: SUnit[] = [];
    const pick = (u: SUnit) => {
      if (u.stamp === stamp) return;
      u.stamp = stamp;
      chosen.push(u);
    };
    for (const cap of needed) for (const u of availByCap.get(cap)!) pick(u);
    if (immNeed.size > 0) {
      for (const u of bound) {
        const b = u.inc!;
        if (b.firstArrival !== null) continue;
        if (u.def.capabilities.some((c) => b.priority > (immNeed.get(c) ?? 5))) {
          take(b);
          pick(u);
        }
      }
    }
    for (const inc of inState) for (const u of inc.committed) pick(u);
    const coreUnits: Unit[] = new Array(chosen.length);
    for (let i = 0; i < chosen.length; i++) {
      const u = chosen[i];
      const position = currentPos(u, t);
      u.statePos = position;
      coreUnits[i] = coreUnit(u, position);
    }
    const coreIncidents: Incident[] = new Array(inState.length);
    for (let i = 0; i < inState.length; i++) coreIncidents[i] = coreIncident(inState[i]);
    return { state: { units: coreUnits, incidents: coreIncidents }, inState, chosen };
  }

  /** Logs `queued` for open incidents not yet logged since they last (re)opened. */
  function logQueued(t: number, reasons: Map<string, OpenSlot[]>): void {
    for (const inc of owesQueued) {
      const ev: EvQueued = {
        t: ms(t),
        kind: 'queued',
        incidentId: inc.id,
        open:
          reasons.get(inc.id) ??
          openCaps(inc).map((capability) => ({
            capability,
            reason: capabilityExists.has(capability)
              ? `no free ${capability} unit`
              : `no unit with capability ${capability} exists`,
          })),
      };
      events.push(ev);
      inc.queuedLogged = true;
    }
    owesQueued.clear();
  }

  function decide(t: number): void {
    const built = buildState(t);
    if (!built) {
      // No free or pre-emptible unit could serve any open slot: the policy could not act.
      logQueued(t, new Map());
      return;
    }
    const { state, chosen } = built;
    const t0 = clock?.();
    const d: Decision = policy.decide(state, t, ctx);
    if (clock && t0 !== undefined) solverMs.push(clock() - t0);
    decisions++;
    events.push({
      t: ms(t),
      kind: 'decision',
      rows: d.stats.rows,
      units: state.units.length,
      assignments: d.assignments.length,
      preemptions: d.preemptions.length,
      unserved: d.unserved.length,
      work: d.stats.work,
      exact: d.stats.exact,
    });
    // Status of each unit as the policy saw it (turnout rule), before pre-emptions change it.
    const wasEnRoute = new Set<SUnit>();
    for (const a of d.assignments) {
      const u = unitById.get(a.unitId)!;
      if (u.state === 'en_route') wasEnRoute.add(u);
    }
    for (const p of d.preemptions) {
      const u = unitById.get(p.unitId)!;
      const from = incById.get(p.fromIncidentId)!;
      if (u.inc !== from)
        throw new Error(`decision pre-empts ${u.id} from ${from.id}, but it is not bound there`);
      const at = u.statePos ?? currentPos(u, t);
      u.pos = at;
      detach(u);
      reopened(from);
      setState(u, 'available'); // momentarily: the assignment below takes it at once
      events.push({
        t: ms(t),
        kind: 'preempted',
        incidentId: from.id,
        unitId: u.id,
        toIncidentId: p.toIncidentId,
        position: roundLonLat(at),
      });
    }
    const offered: SUnit[] = [];
    for (const a of d.assignments) {
      const u = unitById.get(a.unitId)!;
      const inc = incById.get(a.incidentId)!;
      if (u.state !== 'available' || u.inc) {
        throw new Error(`decision assigns ${u.id} (${u.state}) to ${inc.id}: the unit is not free`);
      }
      if (u.statePos) u.pos = u.statePos;
      setState(u, 'offered');
      u.inc = inc;
      u.role = a.capability;
      u.since = t;
      u.gen++;
      u.offerEtaS = a.etaS;
      u.offerTurnoutS = wasEnRoute.has(u) ? 0 : u.def.turnoutS;
      inc.committed.push(u);
      refreshOpen(inc);
      events.push({
        t: ms(t),
        kind: 'assigned',
        incidentId: inc.id,
        unitId: u.id,
        capability: a.capability,
        etaS: ms(a.etaS),
        lateS: ms(a.explanation.lateS),
        crossesJurisdiction: a.crossesJurisdiction,
        ...(a.preemptedFrom !== undefined ? { preemptedFrom: a.preemptedFrom } : {}),
        summary: a.explanation.summary,
        alternatives: a.explanation.alternatives.map((x) => ({ unitId: x.unitId, etaS: ms(x.etaS) })),
      });
      offered.push(u);
    }
    // Slots still open after this decision, with the policy's reasons (only for the incidents
    // that owe a `queued` record: a long queue is not re-described at every decision).
    const reasons = new Map<string, OpenSlot[]>();
    if (owesQueued.size > 0) {
      for (const slot of d.unserved) {
        const inc = incById.get(slot.incidentId);
        if (!inc || !owesQueued.has(inc)) continue;
        let l = reasons.get(slot.incidentId);
        if (!l) {
          l = [];
          reasons.set(slot.incidentId, l);
        }
        l.push({ capability: slot.capability, reason: slot.reason });
      }
    }
    logQueued(t, reasons);
    for (const p of d.preemptions) {
      const u = unitById.get(p.unitId)!;
      if (u.inc?.id !== p.toIncidentId)
        throw new Error(`pre-empted unit ${u.id} was not re-assigned to ${p.toIncidentId}`);
    }
    for (const u of chosen) u.statePos = null;
    for (const u of offered) if (u.state === 'offered') offerAnswer(u, t);
  }

  // ---- handlers ---------------------------------------------------------------------------

  function onArrive(u: SUnit, t: number): void {
    const inc = u.inc!;
    setState(u, 'on_scene');
    u.since = t;
    u.pos = inc.def.location;
    events.push({ t: ms(t), kind: 'on_scene', incidentId: inc.id, unitId: u.id });
    if (inc.firstArrival === null) {
      inc.firstArrival = t;
      queue.push(t + inc.onSceneS, P_JOB_END, { k: 'jobEnd', inc });
    }
  }

  function release(u: SUnit, t: number, reason: 'cancelled' | 'job_done'): void {
    const inc = u.inc!;
    const at = currentPos(u, t);
    u.pos = at;
    detach(u);
    events.push({
      t: ms(t),
      kind: 'released',
      incidentId: inc.id,
      unitId: u.id,
      reason,
      position: roundLonLat(at),
    });
    makeAvailable(u, t);
  }

  function onJobEnd(inc: SIncident, t: number): void {
    inc.state = 'done';
    refreshOpen(inc);
    for (const u of [...inc.committed]) {
      if (u.state !== 'on_scene') {
        release(u, t, 'job_done');
        continue;
      }
      events.push({ t: ms(t), kind: 'cleared', incidentId: inc.id, unitId: u.id });
      detach(u);
      const home = u.def.home;
      if (sim.returnHome && (u.pos[0] !== home[0] || u.pos[1] !== home[1])) {
        queue.push(t + travel.travelS(u.pos, home, u.def.speedKmh), P_HOME, { k: 'home', u, gen: u.gen });
      }
      makeAvailable(u, t);
    }
    events.push({ t: ms(t), kind: 'resolved', incidentId: inc.id });
  }

  function onCancel(inc: SIncident, t: number): void {
    if (inc.state !== 'active' || inc.firstArrival !== null) return;
    inc.state = 'cancelled';
    refreshOpen(inc);
    const freed = [...inc.committed];
    for (const u of freed) release(u, t, 'cancelled');
    events.push({ t: ms(t), kind: 'cancelled', incidentId: inc.id });
  }

  function onReport(inc: SIncident, t: number): void {
    inc.state = 'active';
    const ev: SimEvent = {
      t: ms(t),
      kind: 'reported',
      incidentId: inc.id,
      type: inc.def.type,
      priority: inc.priority,
      location: roundLonLat(inc.def.location),
    };
    if (inc.area !== undefined) ev.area = inc.area;
    if (inc.cell !== undefined) ev.cell = inc.cell;
    events.push(ev);
    refreshOpen(inc);
    markDirty(t);
  }

  // ---- the loop ---------------------------------------------------------------------------

  let now = 0;
  let processed = 0;
  const every = opts.progressEvery ?? 2000;
  for (;;) {
    const next = queue.pop();
    if (!next) break;
    if (next.t > horizon) break;
    now = next.t;
    const job = next.item;
    switch (job.k) {
      case 'arrive':
        if (job.gen === job.u.gen && job.u.state === 'en_route') onArrive(job.u, now);
        break;
      case 'jobEnd':
        if (job.inc.state === 'active') onJobEnd(job.inc, now);
        break;
      case 'home':
        // Not dispatched since it cleared: it is home now (no new decision: it was free all along).
        if (job.gen === job.u.gen && job.u.state === 'available') {
          job.u.pos = job.u.def.home;
          events.push({ t: ms(now), kind: 'returned', unitId: job.u.id, position: roundLonLat(job.u.pos) });
        }
        break;
      case 'ack':
        if (job.gen === job.u.gen && job.u.state === 'offered') {
          if (job.accept) accept(job.u, now);
          else refuse(job.u, now, false, job.reason);
        }
        break;
      case 'timeout':
        if (job.gen === job.u.gen && job.u.state === 'offered') refuse(job.u, now, true, '');
        break;
      case 'cooldown':
        if (job.gen === job.u.gen && job.u.state === 'cooldown') makeAvailable(job.u, now);
        break;
      case 'report':
        onReport(job.inc, now);
        break;
      case 'cancel':
        onCancel(job.inc, now);
        break;
      case 'decide':
        decideScheduled = false;
        if (dirty && open.size > 0) {
          dirty = false;
          decide(now);
        } else dirty = false;
        break;
    }
    if (opts.onProgress && ++processed % every === 0) opts.onProgress(now);
  }

  const endT = Math.max(now, scenario.durationS);
  for (const inc of incidents) {
    if (inc.state === 'active' && inc.firstArrival === null) {
      events.push({ t: ms(endT), kind: 'unserved', incidentId: inc.id, open: openCaps(inc) });
    }
  }
  return { events, solverMs, decisions, endT, options: sim, travel, catalog };
}
