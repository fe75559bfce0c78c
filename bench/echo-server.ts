// The baseline of `npm run bench:live`: a bare fastify + socket.io server that does the least
// a dispatch server must do — take `POST /v1/incidents`, push an `assignment:offer` to one
// connected unit socket (round robin, with a delivery acknowledgement like the engine's), answer
// 201 — and answers unit events (`ack`, `status`, `location`) with `{ ok: true }`. No auth, no
// store, no queue, no optimiser: what is left of the engine's latency over this is its own.
//
// Run alone: `tsx bench/echo-server.ts [--port 0]` prints `listening on URL`.

import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Server, type Socket } from 'socket.io';

export interface EchoServer {
  url: string;
  close(): Promise<void>;
}

export async function startEchoServer(opts: { port?: number; host?: string } = {}): Promise<EchoServer> {
  const app = Fastify({ logger: false });
  const io = new Server(app.server, { serveClient: false });
  const units: Socket[] = [];
  let next = 0;
  let seq = 0;
  let ids = 0;

  io.on('connection', (socket) => {
    units.push(socket);
    const reply = (_input: unknown, cb?: (r: { ok: true }) => void) => {
      if (typeof cb === 'function') cb({ ok: true });
    };
    socket.on('ack', reply);
    socket.on('status', reply);
    socket.on('location', reply);
    socket.on('disconnect', () => {
      const i = units.indexOf(socket);
      if (i >= 0) units.splice(i, 1);
    });
  });

  app.post('/v1/incidents', async (req, res) => {
    const body = req.body as { type?: unknown; location?: unknown };
    if (typeof body?.type !== 'string' || !Array.isArray(body.location)) {
      return res.code(400).send({ error: { code: 'VALIDATION_FAILED', message: 'type and location' } });
    }
    const id = `inc_${++ids}`;
    const incident = { id, type: body.type, location: body.location, status: 'assigned' };
    if (units.length > 0) {
      const socket = units[next++ % units.length];
      const assignment = { id: `asg_${ids}`, incidentId: id, unitId: socket.id, status: 'offered' };
      socket
        .timeout(5000)
        .emit('assignment:offer', { seq: ++seq, at: Date.now(), data: { assignment, incident } }, () => {});
    }
    return res.code(201).send(incident);
  });
  app.get('/healthz', async () => ({ status: 'ok' }));

  const address = await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  return {
    url: address,
    async close() {
      io.disconnectSockets(true);
      io.close();
      await app.close();
    },
  };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const server = await startEchoServer({
    port: Number(values.port ?? 0),
    ...(values.host ? { host: values.host } : {}),
  });
  process.stdout.write(`listening on ${server.url}\n`);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
