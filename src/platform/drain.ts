/**
 * Graceful drain on close, so a rolling restart loses no request even on kept-alive connections.
 *
 * Node's `server.close()` also closes idle keep-alive connections at once; a client that sends its next request
 * on one of them at that moment sees "other side closed". So before Fastify closes the server, this:
 *   1. stops accepting connections (under node:cluster, new ones go to the other workers),
 *   2. keeps answering requests that arrive on open connections, each with `Connection: close`, so clients
 *      retire those connections themselves,
 *   3. waits until every connection is gone or `windowMs` passed; Fastify then closes what remains.
 * Requests in flight are never cut; Fastify's close waits for them.
 */
import { Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';

export function installGracefulDrain(app: FastifyInstance, windowMs = 5_000): void {
  let draining = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (draining) reply.header('connection', 'close');
  });
  app.addHook('preClose', async () => {
    const server = app.server;
    if (!server.listening) return;
    draining = true;
    // net.Server's close: stop listening, but leave the open connections alone (http's close would cut idle ones).
    NetServer.prototype.close.call(server);
    const deadline = Date.now() + windowMs;
    while (Date.now() < deadline) {
      const open = await new Promise<number>((resolve) =>
        server.getConnections((_err, n) => resolve(n ?? 0)),
      );
      if (open === 0) break;
      await sleep(50);
    }
  });
}
