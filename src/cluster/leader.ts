// Leadership of a cluster of engine processes sharing PostgreSQL and Redis: exactly one
// process runs the core (the lane, the mirror, the timers, the workers) at a time. The lease
// is a PostgreSQL session-level advisory lock held on a connection of its own: it is released
// by the server the moment that connection dies (a crashed or killed leader), and a
// follower polling every `pollMs` takes over. The leader's HTTP address is kept in Redis
// (refreshed each poll, expiring) so that followers can forward work to it.
//
// Fencing: a leader that cannot reach its lock connection may have lost the lease; it calls
// `onLost` at once (the entry point exits, and the supervisor restarts it as a follower).

import type { Redis } from 'ioredis';
import pg from 'pg';

/** Advisory-lock key of the dispatch core (any 64-bit number, fixed for the product). */
export const CORE_LOCK_KEY = 7_340_223_911n;

export interface LeaderLeaseOptions {
  databaseUrl: string;
  redis: Redis;
  /** Redis key of the leader's address (use the queue prefix: one cluster per prefix). */
  addressKey: string;
  /**
   * This node's id and the address followers forward to. The address may also be set later
   * (setUrl), for a node that takes the lease before it listens.
   */
  nodeId: string;
  url?: string;
  /** Poll and refresh period (default 500 ms). */
  pollMs?: number;
  /** Called once when this node becomes leader (start the core here). */
  onAcquired(): Promise<void>;
  /** Called when a held lease may be lost (stop writing at once). */
  onLost(err: unknown): void;
  log?: (msg: string, err?: unknown) => void;
}

export interface LeaderInfo {
  nodeId: string;
  url: string;
}

export class LeaderLease {
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private leading = false;
  private stopped = false;
  private busy = false;
  private cachedLeader?: LeaderInfo;

  private url: string | undefined;

  constructor(private readonly o: LeaderLeaseOptions) {
    this.url = o.url;
  }

  /** Sets the address followers forward to (advertised at once when leading). */
  async setUrl(url: string): Promise<void> {
    this.url = url;
    if (this.leading)
      await this.advertise().catch((err) => this.o.log?.('leader lease: advertising failed', err));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The current leader's address as last read (this node's own when leading). */
  get leader(): LeaderInfo | undefined {
    return this.leading ? { nodeId: this.o.nodeId, url: this.url ?? '' } : this.cachedLeader;
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.pollMs ?? 500);
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = new pg.Client({
      connectionString: this.o.databaseUrl,
      application_name: `dispatch-lease:${this.o.nodeId}`,
    });
    c.on('error', (err) => this.lost(err));
    await c.connect();
    this.client = c;
    return c;
  }

  private lost(err: unknown): void {
    const c = this.client;
    this.client = undefined;
    c?.end().catch(() => {});
    if (this.leading && !this.stopped) {
      this.leading = false;
      this.o.onLost(err);
    }
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const c = await this.connect();
      if (!this.leading) {
        const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
          CORE_LOCK_KEY.toString(),
        ]);
        if (r.rows[0]?.ok) {
          this.leading = true;
          await this.advertise();
          this.o.log?.(`node ${this.o.nodeId} is the leader`);
          await this.o.onAcquired();
          return;
        }
        const raw = await this.o.redis.get(this.o.addressKey);
        this.cachedLeader = raw ? (JSON.parse(raw) as LeaderInfo) : undefined;
      } else {
        await c.query('SELECT 1'); // the lock connection is alive: the lease holds
        await this.advertise();
      }
    } catch (err) {
      if (this.leading) this.lost(err);
      else {
        this.client?.end().catch(() => {});
        this.client = undefined;
        this.o.log?.('leader lease: poll failed (retrying)', err);
      }
    } finally {
      this.busy = false;
    }
  }

  private async advertise(): Promise<void> {
    if (this.url === undefined) return;
    const ttl = Math.max(2000, (this.o.pollMs ?? 500) * 6);
    await this.o.redis.set(
      this.o.addressKey,
      JSON.stringify({ nodeId: this.o.nodeId, url: this.url }),
      'PX',
      ttl,
    );
  }

  /** Releases the lease (graceful stop): a follower takes over at its next poll. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    if (this.leading) {
      const raw = await this.o.redis.get(this.o.addressKey).catch(() => null);
      if (raw && (JSON.parse(raw) as LeaderInfo).nodeId === this.o.nodeId)
        await this.o.redis.del(this.o.addressKey).catch(() => 0);
    }
    this.leading = false;
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }
}
