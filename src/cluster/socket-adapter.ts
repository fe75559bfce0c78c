// The socket.io Redis adapter of a cluster, behind a module of ours: `dispatch serve` loads it
// with the HTTP stack, after the core started (a dynamic import of the CommonJS package itself
// would not see its named exports in the bundle).
//
// One change to the library's adapter: a node hears its own serverSideEmit messages back
// from Redis, and the library parses each whole (every push of a batch, as JSON) before it
// finds its own uid and drops it — 1.9% of the leader's event loop at 150 reports/s, paid
// even with no other node. Here such a message is known by its first bytes and dropped
// unparsed; anything else goes to the library as before.

import { RedisAdapter, type RedisAdapterOptions } from '@socket.io/redis-adapter';

/** RequestType.SERVER_SIDE_EMIT in the library (serverSideEmit without an ack). */
const SERVER_SIDE_EMIT = 6;

type OnRequest = (channel: string | Buffer, msg: Buffer | string) => unknown;

class SelfSkippingAdapter extends RedisAdapter {}

const libraryOnRequest = (RedisAdapter.prototype as unknown as { onrequest: OnRequest }).onrequest;
const ownPrefixes = new WeakMap<RedisAdapter, Buffer>();

// On the prototype, because the library's constructor subscribes with this.onrequest.bind(this).
(SelfSkippingAdapter.prototype as unknown as { onrequest: OnRequest }).onrequest = function (
  this: RedisAdapter,
  channel,
  msg,
) {
  let own = ownPrefixes.get(this);
  if (!own) {
    // The library writes JSON.stringify({ uid, type, data }): this exact start is this node's.
    own = Buffer.from(`{"uid":${JSON.stringify(this.uid)},"type":${SERVER_SIDE_EMIT},`);
    ownPrefixes.set(this, own);
  }
  if (Buffer.isBuffer(msg) && msg.length > own.length && msg.compare(own, 0, own.length, 0, own.length) === 0)
    return undefined;
  return libraryOnRequest.call(this, channel, msg);
};

/** As the library's createAdapter, with a node's own serverSideEmit messages dropped unparsed. */
export function createAdapter(
  pubClient: unknown,
  subClient: unknown,
  opts?: Partial<RedisAdapterOptions>,
): (nsp: unknown) => RedisAdapter {
  // A function, not an arrow: socket.io calls it with `new`.
  return function adapter(nsp: unknown) {
    return new SelfSkippingAdapter(nsp, pubClient, subClient, opts);
  };
}
