// One unit of work of the engine: the writes of one state change in one store transaction,
// the messages it pushes (recorded in the same transaction, so a change and its messages
// commit together and are replayable), and what runs after the commit (timers, triggers).

import type { MessageRecord, Store } from '../store/store.ts';
import type { Recipient } from './ports.ts';

export interface Outgoing {
  recipients: Recipient[];
  event: string;
  /** Evaluated at the end of the work, so views show the final state. undefined = skip. */
  data: () => unknown;
}

export class Work {
  readonly messages: Outgoing[] = [];
  readonly afterCommit: (() => unknown)[] = [];
  /** Units / incidents whose `…:updated` view is pushed at the end (once each). */
  readonly changedUnits = new Set<string>();
  readonly changedIncidents = new Set<string>();
  /** Incidents announced with `incident:created` (no `incident:updated` for them). */
  readonly createdIncidents = new Set<string>();
  /** Records touched, re-read into the mirror when the transaction fails. */
  readonly touchedUnits = new Set<string>();
  readonly touchedIncidents = new Set<string>();
  wroteOutbox = false;
  records: MessageRecord[] = [];
  readonly undo: (() => void)[] = [];

  /** True once the change touched the store (a failure then may have left writes behind). */
  used = false;

  get tx(): Store {
    this.used = true;
    return this.store;
  }

  constructor(
    private readonly store: Store,
    /** Epoch seconds of the change. */
    readonly at: number,
    /** Actor tag written to events and audit rows. */
    readonly actor: string,
  ) {}

  push(recipients: Recipient[], event: string, data: () => unknown): void {
    this.messages.push({ recipients, event, data });
  }

  /** Undoes in-memory bookkeeping (outside the mirror) when the change is rolled back. */
  onRollback(fn: () => void): void {
    this.undo.push(fn);
  }

  after(fn: () => unknown): void {
    this.afterCommit.push(fn);
  }

  unitChanged(id: string): void {
    this.changedUnits.add(id);
    this.touchedUnits.add(id);
  }

  incidentChanged(id: string): void {
    this.changedIncidents.add(id);
    this.touchedIncidents.add(id);
  }
}
