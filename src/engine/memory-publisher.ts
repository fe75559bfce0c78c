// In-process Publishers: a recording one (tests, the demo's simulated units, any in-process
// listener) and a silent one (headless runs). The socket.io one lives with the server.

import type { Publisher, Recipient } from './ports.ts';

export interface Published {
  recipient: Recipient;
  event: string;
  envelope: { seq: number; at: number; data: unknown };
}

export type PublishListener = (m: Published) => void;

export class RecordingPublisher implements Publisher {
  readonly messages: Published[] = [];
  private readonly listeners = new Set<PublishListener>();

  publish(recipient: Recipient, event: string, envelope: { seq: number; at: number; data: unknown }): void {
    const m: Published = { recipient, event, envelope };
    this.messages.push(m);
    for (const l of this.listeners) l(m);
  }

  /** Subscribes; returns the unsubscribe function. */
  on(listener: PublishListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  for(recipient: Recipient, event?: string): Published[] {
    return this.messages.filter(
      (m) => m.recipient === recipient && (event === undefined || m.event === event),
    );
  }

  clear(): void {
    this.messages.length = 0;
  }
}

export const nullPublisher: Publisher = { publish: () => {} };

/** Fans one message out to several publishers (e.g. socket.io and a recorder). */
export function fanOut(...publishers: Publisher[]): Publisher {
  return {
    publish(recipient, event, envelope) {
      for (const p of publishers) p.publish(recipient, event, envelope);
    },
  };
}
