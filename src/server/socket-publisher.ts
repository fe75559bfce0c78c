// The engine's Publisher for socket.io, apart from socket.io itself: the engine is built with
// it before the HTTP and socket stack is loaded (a restarted engine decides first, listens after).

import type { Publisher, Recipient } from '../engine/ports.ts';
import type { Envelope as Typed } from '../shared/events.ts';

type Envelope = Typed<unknown>;

/**
 * The engine's Publisher for socket.io. Create it before the engine (it drops messages until
 * `attachSockets` binds it: they are in the store, and clients resync on connect).
 */
export class SocketPublisher implements Publisher {
  private sink?: (recipient: Recipient, event: string, envelope: Envelope) => void;

  publish(recipient: Recipient, event: string, envelope: Envelope): void {
    this.sink?.(recipient, event, envelope);
  }

  get bound(): boolean {
    return this.sink !== undefined;
  }

  /** @internal Used by attachSockets; returns the unbind function. */
  bind(sink: (recipient: Recipient, event: string, envelope: Envelope) => void): () => void {
    this.sink = sink;
    return () => {
      if (this.sink === sink) this.sink = undefined;
    };
  }
}
