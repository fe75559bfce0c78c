// Every job the engine emits, by queue, and the outbox topics the relay turns into jobs.
// workers/index.ts checks at start-up that each of them has a handler.

export const QUEUES = {
  intake: 'intake',
  decisions: 'decisions',
  timers: 'timers',
  notifications: 'notifications',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export interface JobRef {
  queue: QueueName;
  name: string;
  /** Attempts for this job (default: the queue adapter's). */
  attempts?: number;
}

export const JOBS = {
  /**
   * A new incident was stored (outbox): arm its target timer, decide, tell a webhook reporter.
   * The engine writes it only for an incident with a webhook callback (the rest it did at
   * commit); other writers of incidents get it by default (Store.createIncident).
   */
  incidentCreated: { queue: QUEUES.intake, name: 'incident.created', attempts: 5 },
  /** Run one decision over all open incidents (coalesced triggers). */
  decide: { queue: QUEUES.decisions, name: 'decide', attempts: 3 },
  /** An offer's acknowledgement deadline (jobId `ack:<assignmentId>`). */
  ackDeadline: { queue: QUEUES.timers, name: 'ack.deadline', attempts: 5 },
  /** An incident's arrival target (jobId `target:<incidentId>`). */
  targetBreach: { queue: QUEUES.timers, name: 'target.breach', attempts: 5 },
  /** Tell the reporter's callback URL about a status change (outbox; retried with back-off). */
  reporterNotify: { queue: QUEUES.notifications, name: 'reporter.notify', attempts: 6 },
} as const satisfies Record<string, JobRef>;

/** Outbox topic → job. The store writes `incident.created`; the engine `reporter.notify`. */
export const OUTBOX_ROUTES: Readonly<Record<string, JobRef>> = {
  'incident.created': JOBS.incidentCreated,
  'reporter.notify': JOBS.reporterNotify,
};

/** Job names per queue that something in the engine emits. */
export function emittedJobs(): Map<QueueName, Set<string>> {
  const out = new Map<QueueName, Set<string>>();
  for (const j of [...Object.values(JOBS), ...Object.values(OUTBOX_ROUTES)]) {
    let s = out.get(j.queue);
    if (!s) {
      s = new Set();
      out.set(j.queue, s);
    }
    s.add(j.name);
  }
  return out;
}

/**
 * Does the incident's reporter hear back by webhook (an http(s) callback URL)? Only then does
 * its `incident.created` job have work left once the engine stored it (see reportIncident).
 */
export const callsBack = (payload: { readonly callback?: unknown }): boolean =>
  typeof payload.callback === 'string' && /^https?:\/\//i.test(payload.callback);

export const ackJobId = (assignmentId: string) => `ack:${assignmentId}`;
export const targetJobId = (incidentId: string) => `target:${incidentId}`;
export const outboxJobId = (outboxId: number) => `outbox:${outboxId}`;
