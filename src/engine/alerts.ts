// Alerts for the consoles: no acknowledgement, target breached, nobody capable free, repeated
// non-responses, on scene far from the incident. Each is raised once per key (an incident, an
// assignment, a unit's shift), pushed to the consoles, written as an `alert` event on the
// incident's / unit's timeline, and kept in a ledger in the push log (recipient
// `ledger:alerts`; the Store port has no alerts table) from which a restarted engine reloads
// the recent ones and their acknowledgements.

import { randomUUID } from 'node:crypto';
import type { AlertKind, AlertView } from '../shared/events.ts';
import type { Store } from '../store/store.ts';

export const ALERT_LEDGER = 'ledger:alerts';
/** Ledger entries reloaded on start. */
const RELOAD = 5000;
/** Alerts kept in memory (newest). */
const KEEP = 2000;

export interface AlertRecord extends AlertView {
  key: string;
  acknowledgedBy?: string;
  acknowledgedAt?: string;
}

export interface NewAlert {
  kind: AlertKind;
  severity: AlertView['severity'];
  message: string;
  /** Raised once per key. */
  key: string;
  incidentId?: string;
  unitId?: string;
}

export function makeAlert(a: NewAlert, atIso: string): AlertRecord {
  const rec: AlertRecord = {
    id: `alr_${randomUUID()}`,
    kind: a.kind,
    severity: a.severity,
    message: a.message,
    at: atIso,
    key: a.key,
  };
  if (a.incidentId !== undefined) rec.incidentId = a.incidentId;
  if (a.unitId !== undefined) rec.unitId = a.unitId;
  return rec;
}

export const alertView = (r: AlertRecord): AlertView => {
  const v: AlertView = { id: r.id, kind: r.kind, severity: r.severity, message: r.message, at: r.at };
  if (r.incidentId !== undefined) v.incidentId = r.incidentId;
  if (r.unitId !== undefined) v.unitId = r.unitId;
  return v;
};

export class AlertBook {
  private readonly byId = new Map<string, AlertRecord>();
  private readonly keys = new Set<string>();

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(r: AlertRecord): void {
    this.keys.add(r.key);
    this.byId.set(r.id, r);
    if (this.byId.size > KEEP) {
      const oldest = this.byId.keys().next().value;
      if (oldest !== undefined) this.byId.delete(oldest);
    }
  }

  get(id: string): AlertRecord | undefined {
    return this.byId.get(id);
  }

  acknowledge(id: string, by: string, atIso: string): void {
    const r = this.byId.get(id);
    if (r) Object.assign(r, { acknowledgedBy: by, acknowledgedAt: atIso });
  }

  /** Latest alert of a kind for a unit (for per-shift throttling). */
  latest(kind: AlertKind, unitId: string): AlertRecord | undefined {
    let found: AlertRecord | undefined;
    for (const r of this.byId.values()) if (r.kind === kind && r.unitId === unitId) found = r;
    return found;
  }

  /** Unacknowledged alerts, newest first. */
  open(): AlertRecord[] {
    return [...this.byId.values()].filter((r) => !r.acknowledgedAt).reverse();
  }

  async reload(store: Store): Promise<void> {
    this.byId.clear();
    this.keys.clear();
    const last = await store.lastMessageSeq(ALERT_LEDGER);
    let after = Math.max(0, last - RELOAD);
    // Pages of RELOAD: one round trip in the usual case (each was ~100 ms after a crash).
    for (;;) {
      const batch = await store.messagesSince(ALERT_LEDGER, after, RELOAD);
      if (batch.length === 0) break;
      for (const m of batch) {
        const p = m.payload as Record<string, unknown>;
        if (m.event === 'alert') this.add(p as unknown as AlertRecord);
        else if (m.event === 'alert_ack') {
          this.acknowledge(String(p.alertId), String(p.by), String(p.at));
        }
      }
      after = batch[batch.length - 1].seq;
      if (batch.length < RELOAD) break;
    }
  }
}
