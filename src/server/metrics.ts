// Prometheus metrics of one app instance (its own prom-client Registry, so tests and several
// apps in one process never collide). The engine observes decisions into it; gauges that
// describe state (incidents by status, queue depths) are read from sources at scrape time.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type CountSource = () => Promise<Record<string, number>> | Record<string, number>;

export interface Metrics {
  readonly registry: Registry;
  /** `dispatch_incidents{status}` — set from the incident source at scrape time, or directly. */
  readonly incidentsByStatus: Gauge<'status'>;
  /** `dispatch_decision_duration_seconds{policy}` — one observation per optimiser decision. */
  readonly decisionLatency: Histogram<'policy'>;
  /** `dispatch_queue_depth{queue}` — from the queue source at scrape time. */
  readonly queueDepth: Gauge<'queue'>;
  readonly connectedConsoles: Gauge;
  readonly connectedUnits: Gauge;
  /** `dispatch_http_requests_total{method,route,status}`. */
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** `dispatch_socket_messages_total{event}` pushed to clients (replays included). */
  readonly socketMessages: Counter<'event'>;
  /** `dispatch_lane_batch_tasks`, `…_work_seconds`, `…_commit_seconds`, `…_busy_seconds_total`. */
  readonly laneBatchTasks: Histogram;
  readonly laneWork: Histogram;
  readonly laneCommit: Histogram;
  readonly laneBusy: Counter;
  /** Records one decision's wall time in milliseconds. */
  observeDecision(ms: number, policy?: string): void;
  /** Records one batch of the engine's lane (times in milliseconds). */
  observeBatch(b: { tasks: number; workMs: number; commitMs: number; totalMs: number; busyMs: number }): void;
  /** Where queue depths come from (e.g. queue.depth of each named queue). */
  setQueueDepthSource(fn: CountSource | undefined): void;
  /** Where incident counts by status come from; when unset the gauge keeps what was set. */
  setIncidentCountSource(fn: CountSource | undefined): void;
  hasIncidentCountSource(): boolean;
}

export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): Metrics {
  const registry = new Registry();
  const p = opts.prefix ?? 'dispatch_';
  let queueSource: CountSource | undefined;
  let incidentSource: CountSource | undefined;

  const incidentsByStatus = new Gauge({
    name: `${p}incidents`,
    help: 'Incidents by status (open ones; closed/cancelled when the source reports them)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      if (!incidentSource) return;
      const counts = await incidentSource();
      this.reset();
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  const decisionLatency = new Histogram({
    name: `${p}decision_duration_seconds`,
    help: 'Wall time of one dispatch decision (optimiser run)',
    labelNames: ['policy'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  // The engine's lane runs every state change in batches (the work of one overlapping the
  // commit of the one before): its busy share says how close the engine is to its capacity,
  // and work vs commit where a batch's time goes.
  const laneBatchTasks = new Histogram({
    name: `${p}lane_batch_tasks`,
    help: 'State changes (lane tasks) per batch, committed together',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const LANE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28];
  const laneWork = new Histogram({
    name: `${p}lane_work_seconds`,
    help: "Time of one lane batch's work on the event loop (its changes and decision round)",
    buckets: LANE_BUCKETS,
    registers: [registry],
  });
  const laneCommit = new Histogram({
    name: `${p}lane_commit_seconds`,
    help: "Time from the end of a lane batch's work to its commit's answer",
    buckets: LANE_BUCKETS,
    registers: [registry],
  });
  const laneBusy = new Counter({
    name: `${p}lane_busy_seconds_total`,
    help: 'Time the lane had a batch in progress (work, commit, publishing; overlaps counted once)',
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: `${p}queue_depth`,
    help: 'Jobs waiting per queue',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      if (!queueSource) return;
      const depths = await queueSource();
      this.reset();
      for (const [queue, n] of Object.entries(depths)) this.set({ queue }, n);
    },
  });
  const connectedConsoles = new Gauge({
    name: `${p}connected_consoles`,
    help: 'Connected console sockets (dispatcher, planner, admin)',
    registers: [registry],
  });
  const connectedUnits = new Gauge({
    name: `${p}connected_units`,
    help: 'Connected field-unit sockets',
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: `${p}http_requests_total`,
    help: 'HTTP requests by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: `${p}http_request_duration_seconds`,
    help: 'HTTP request duration by route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const socketMessages = new Counter({
    name: `${p}socket_messages_total`,
    help: 'Envelopes pushed to socket clients by event',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: p });

  return {
    registry,
    incidentsByStatus,
    decisionLatency,
    queueDepth,
    connectedConsoles,
    connectedUnits,
    httpRequests,
    httpDuration,
    socketMessages,
    laneBatchTasks,
    laneWork,
    laneCommit,
    laneBusy,
    observeBatch(b) {
      laneBatchTasks.observe(b.tasks);
      laneWork.observe(b.workMs / 1000);
      laneCommit.observe(b.commitMs / 1000);
      laneBusy.inc(b.busyMs / 1000);
    },
    observeDecision(ms, policy = 'default') {
      if (Number.isFinite(ms) && ms >= 0) decisionLatency.observe({ policy }, ms / 1000);
    },
    setQueueDepthSource(fn) {
      queueSource = fn;
    },
    setIncidentCountSource(fn) {
      incidentSource = fn;
    },
    hasIncidentCountSource: () => incidentSource !== undefined,
  };
}
