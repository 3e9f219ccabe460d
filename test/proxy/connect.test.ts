/**
 * connectUpstream(): the promise answers with the connected socket or a ConnectRefusal, the
 * AbortSignal drops an attempt in flight, and the endpoint's slot is given back either way.
 * Real sockets on loopback, on both kinds of socket (raw handles and net.Socket).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamPool, type UpstreamSpec } from '../../src/balancing/upstream-pool.js';
import { ConnectRefusal, connectUpstream, type ConnectOptions } from '../../src/proxy/connect.js';
import { ConnectAbort } from '../../src/proxy/connect-abort.js';
import { destroySocket } from '../../src/proxy/destroy-socket.js';
import { tcpHandles } from '../../src/proxy/tcp-handle.js';
import { memoryLogger } from '../helpers/log-collector.js';
import { endAtOnce, refusedPort, startServer } from '../helpers/servers.js';

function spec(port: number): UpstreamSpec {
  return { address: `127.0.0.1:${port}`, host: '127.0.0.1', port, weight: 1 };
}

async function poolOf(...ports: number[]): Promise<UpstreamPool> {
  const pool = new UpstreamPool({ listener: 'main', logger: memoryLogger().logger });
  pool.apply(await pool.prepare({ balance: 'round_robin', upstreams: ports.map(spec) }));
  return pool;
}

function options(pool: UpstreamPool, raw: boolean, failed: string[] = []): ConnectOptions {
  return {
    pool,
    clientIp: '127.0.0.1',
    timeoutMs: 2000,
    retries: 1,
    onread: { buffer: Buffer.alloc(1024), callback: () => true },
    raw: raw ? tcpHandles : undefined,
    preamble: undefined,
    tls: undefined,
    queue: undefined,
    metrics: { connectFailed: (label) => void failed.push(label) },
  };
}

const active = (pool: UpstreamPool): number => pool.endpoints().reduce((sum, endpoint) => sum + endpoint.active, 0);

for (const raw of tcpHandles ? [true, false] : [false]) {
  describe(`connectUpstream (${raw ? 'raw handles' : 'net.Socket'})`, () => {
    it('answers with the connected socket and its endpoint, which holds one slot', async () => {
      const server = await startServer(endAtOnce);
      const pool = await poolOf(server.port);
      try {
        const connected = await connectUpstream(options(pool, raw), new AbortController().signal);
        assert.equal(connected.endpoint.label, `127.0.0.1:${server.port}`);
        assert.ok(connected.connectMs >= 0);
        assert.equal(active(pool), 1);
        destroySocket(connected.socket, false);
        pool.release(connected.endpoint);
      } finally {
        pool.close();
        await server.close();
      }
    });

    it('refuses with no_upstream and the last error after every attempt failed, each counted', async () => {
      const port = await refusedPort();
      const pool = await poolOf(port);
      const failed: string[] = [];
      try {
        const refusal = await connectUpstream(options(pool, raw, failed), new AbortController().signal).then(
          () => assert.fail('connected to a refused port'),
          (error: unknown) => error,
        );
        assert.ok(refusal instanceof ConnectRefusal);
        assert.equal(refusal.reason, 'no_upstream');
        const failure: NodeJS.ErrnoException | undefined = refusal.failure;
        assert.equal(failure?.code, 'ECONNREFUSED');
        assert.deepEqual(failed, [`127.0.0.1:${port}`]);
        assert.equal(active(pool), 0);
      } finally {
        pool.close();
      }
    });

    for (const [kind, makeController] of [
      ['AbortController', () => new AbortController()],
      ["the bridge's ConnectAbort", () => new ConnectAbort()],
    ] as const) {
      it(`an abort while connecting (${kind}) rejects with the signal reason and gives the slot back`, async () => {
        const server = await startServer(endAtOnce);
        const pool = await poolOf(server.port);
        try {
          const controller = makeController();
          const connecting = connectUpstream(options(pool, raw), controller.signal);
          assert.equal(active(pool), 1, 'the attempt holds its slot');
          const reason = new Error('the client left');
          controller.abort(reason);
          await assert.rejects(connecting, (error) => error === reason);
          assert.equal(active(pool), 0);
          controller.abort(new Error('again'));
          assert.equal(controller.signal.reason, reason, 'aborted once');
        } finally {
          pool.close();
          await server.close();
        }
      });
    }

    it('a connect that succeeded leaves no listener on the ConnectAbort', async () => {
      const server = await startServer(endAtOnce);
      const pool = await poolOf(server.port);
      try {
        const abort = new ConnectAbort();
        const connected = await connectUpstream(options(pool, raw), abort.signal);
        abort.abort();
        assert.equal(active(pool), 1, 'an abort after the connect does not release the slot the bridge holds');
        connected.socket.destroy();
      } finally {
        pool.close();
        await server.close();
      }
    });
  });
}
