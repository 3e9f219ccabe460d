/**
 * The bridge end to end over real loopback sockets: integrity, concurrency, half-close,
 * resets, refusals, timeouts, the access log, and teardown without leaks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { refusedPort, startBlackHole, startEchoServer, startServer, type TestServer } from '../helpers/servers.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { assertClosedWithoutAByte } from '../helpers/integration.js';
import { deadlineWheel } from '../../src/proxy/deadline-wheel.js';
import { deferred } from '../helpers/wait.js';
import { closed, connect, readBytes, readToEnd, sha256 } from '../helpers/sockets.js';

describe('bridge: data integrity', { timeout: 120_000 }, () => {
  let echo: TestServer;
  let proxy: TestProxy;
  before(async () => {
    echo = await startEchoServer();
    proxy = await startProxy(oneListener([echo.address]));
  });
  after(async () => {
    await proxy.stop();
    await echo.close();
  });

  for (const { label, size, options } of [
    { label: '64 MiB', size: 64 * 1024 * 1024, options: {} },
    { label: '16 MiB with buffer_size 4KiB (thousands of partial reads, recycled buffers)', size: 16 * 1024 * 1024, options: { buffer_size: '4KiB' } },
  ]) {
    it(`carries ${label} of random bytes each way unchanged (sha256)`, async () => {
      const up = randomBytes(size);
      const down = randomBytes(size);
      const server = await startServer((socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => {
          socket.end(sha256(Buffer.concat(chunks)));
        });
        socket.write(down);
      });
      const p = await startProxy(oneListener([server.address], options));
      try {
        const client = await connect(p.port);
        const received: Buffer[] = [];
        let receivedBytes = 0;
        const gotDown = new Promise<void>((resolve) => {
          client.on('data', (chunk: Buffer) => {
            received.push(chunk);
            receivedBytes += chunk.length;
            if (receivedBytes >= down.length) resolve();
          });
        });
        client.write(up);
        await gotDown;
        client.end();
        await once(client, 'end');
        const all = Buffer.concat(received);
        assert.equal(sha256(all.subarray(0, down.length)), sha256(down), 'server -> client bytes differ');
        assert.equal(all.subarray(down.length).toString(), sha256(up), 'client -> server bytes differ');
        const line = await p.waitForLog((l) => l.event === 'close');
        assert.equal(line.bytes_from_client, up.length);
        assert.equal(line.bytes_to_client, down.length + 64);
      } finally {
        await p.stop();
        await server.close();
      }
    });
  }

  it('serves 200 concurrent connections, each getting its own bytes back', async () => {
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect(proxy.port)));
    const payloads = clients.map(() => randomBytes(32 * 1024));
    const results = await Promise.all(
      clients.map(async (client, i) => {
        const done = readToEnd(client);
        client.end(payloads[i]!);
        return done;
      }),
    );
    results.forEach((result, i) => assert.ok(result.equals(payloads[i]!), `connection ${i} got other bytes`));
  });

  it('carries small messages, a 24 MiB burst, then small messages again, unchanged both ways (the read buffers grow)', async () => {
    const client = await connect(proxy.port);
    const exchange = async (payload: Buffer): Promise<void> => {
      const back = readBytes(client, payload.length);
      client.write(payload);
      assert.equal(sha256(await back), sha256(payload));
    };
    for (let i = 0; i < 20; i++) await exchange(randomBytes(1 + i * 37));
    await exchange(randomBytes(24 * 1024 * 1024));
    for (let i = 0; i < 20; i++) await exchange(randomBytes(1 + i * 37));
    client.end();
    const total = Array.from({ length: 20 }, (_, i) => 1 + i * 37).reduce((a, b) => a + b, 0) * 2 + 24 * 1024 * 1024;
    const line = await proxy.waitForLog((l) => l.event === 'close' && l.bytes_from_client === total);
    assert.equal(line.bytes_to_client, total);
  });
});

describe('bridge: half-close, close and reset', { timeout: 30_000 }, () => {
  it('client FIN first: the server sees end and can still answer', async () => {
    const server = await startServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).toString()}`));
    });
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      const reply = readToEnd(client);
      client.end('question');
      assert.equal((await reply).toString(), 'got question');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'client_closed');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('server FIN first: the client sees end and can keep sending', async () => {
    let serverReceived = '';
    const serverDone = deferred();
    const server = await startServer((socket) => {
      socket.end('bye');
      socket.on('data', (c: Buffer) => (serverReceived += c.toString()));
      socket.on('end', () => serverDone.resolve());
    });
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      assert.equal((await readToEnd(client)).toString(), 'bye');
      client.end('still talking');
      await serverDone.promise;
      assert.equal(serverReceived, 'still talking');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'upstream_closed');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('a server that speaks first is heard before the client sends anything', async () => {
    const server = await startServer((socket) => socket.write('220 smtp ready\r\n'));
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      const [greeting] = (await once(client, 'data')) as [Buffer];
      assert.equal(greeting.toString(), '220 smtp ready\r\n');
      client.destroy();
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('a client reset closes the upstream connection', async () => {
    const upstreamClosed = deferred();
    const upstreamGotData = deferred();
    const server = await startServer((socket) => {
      socket.once('data', () => upstreamGotData.resolve());
      socket.on('close', () => upstreamClosed.resolve());
    });
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      client.write('x');
      await upstreamGotData.promise;
      client.resetAndDestroy();
      await upstreamClosed.promise;
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'error');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('an upstream reset closes the client connection', async () => {
    const server = await startServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      const result = closed(client);
      client.write('trigger');
      const { error } = await result;
      assert.equal(error?.code, 'ECONNRESET');
      assert.equal((await proxy.waitForLog((l) => l.event === 'close')).reason, 'error');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });
});

describe('bridge: unreachable upstreams are refused without a byte', { timeout: 30_000 }, () => {
  it('refused connect -> reject no_upstream, client closed without data', async () => {
    const port = await refusedPort();
    const proxy = await startProxy(oneListener([`127.0.0.1:${port}`], { connect_retries: 0 }));
    try {
      const client = await connect(proxy.port);
      // Counts every byte, whether the proxy closes or resets (a .catch on the read would drop what came before a reset).
      await assertClosedWithoutAByte(client);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'no_upstream');
      assert.equal(line.error, 'ECONNREFUSED');
      assert.equal(line.error_code, 'ECONNREFUSED');
      assert.equal(line.upstream, null);
    } finally {
      await proxy.stop();
    }
  });

  it('black-holed upstream -> connect_timeout, then refused', async () => {
    const hole = await startBlackHole();
    const proxy = await startProxy(oneListener([`127.0.0.1:${hole.port}`], { connect_timeout: '300ms', connect_retries: 0 }));
    try {
      const started = Date.now();
      const client = await connect(proxy.port);
      await closed(client);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 5_000, `closed after ${elapsed}ms`);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'no_upstream');
      assert.equal(line.error, 'ETIMEDOUT');
      assert.equal(line.error_code, 'ETIMEDOUT');
    } finally {
      await proxy.stop();
      await hole.close();
    }
  });
});

describe('bridge: timeouts', { timeout: 30_000 }, () => {
  it('idle_timeout closes both sides after silence', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { idle_timeout: '300ms' }));
    try {
      const client = await connect(proxy.port);
      client.write('ping');
      await once(client, 'data');
      const started = Date.now();
      await closed(client);
      assert.ok(Date.now() - started >= 250);
      assert.equal((await proxy.waitForLog((l) => l.event === 'close')).reason, 'idle_timeout');
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('traffic keeps a connection from idling out; max_lifetime still ends it', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { idle_timeout: '1s', max_lifetime: '2500ms' }));
    try {
      const client = await connect(proxy.port);
      // Ping-pong driven by the echoes (no ticker that a busy machine could delay past the
      // idle timeout): the connection is never silent, for more than twice its idle_timeout.
      client.on('data', () => client.write('.'));
      client.write('.');
      await closed(client);
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'max_lifetime');
      assert.ok(Number(line.duration_ms) >= 2_499, `closed after ${String(line.duration_ms)} ms`);
      assert.ok(Number(line.bytes_from_client) > 1, 'the connection carried traffic');
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});

describe('bridge: access log and teardown', { timeout: 60_000 }, () => {
  it('logs the contract fields with exact byte counts', async () => {
    const server = await startServer((socket) => {
      socket.once('data', () => socket.end(Buffer.alloc(1234, 1)));
    });
    const proxy = await startProxy(oneListener([server.address]));
    try {
      const client = await connect(proxy.port);
      const clientPort = client.localPort;
      const reply = readToEnd(client);
      client.write(Buffer.alloc(777, 2));
      assert.equal((await reply).length, 1234);
      client.end();
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.listener, 'test');
      assert.equal(line.client, `127.0.0.1:${clientPort}`);
      assert.equal(line.upstream, server.address);
      assert.equal(line.bytes_from_client, 777);
      assert.equal(line.bytes_to_client, 1234);
      assert.equal(typeof line.duration_ms, 'number');
      assert.equal(line.reason, 'upstream_closed');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('leaves no sockets, timers or slots behind after 500 connections', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { max_lifetime: '1h' }));
    try {
      const baseline = process.getActiveResourcesInfo().length;
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          Array.from({ length: 100 }, async (_, i) => {
            const client = await connect(proxy.port);
            if (i % 3 === 0) {
              // Bridged for sure (the echo came back), then reset mid-connection.
              client.write('x');
              await once(client, 'data');
              client.resetAndDestroy();
              return;
            }
            const reply = readToEnd(client);
            client.end('hello');
            await reply;
          }),
        );
      }
      await proxy.waitForLog(() => proxy.accessLog().length >= 500);
      await new Promise((resolve) => setImmediate(resolve));
      const listener = proxy.runtime.connections();
      assert.equal(listener.length, 0, 'bridges still registered');
      const endpoints = proxy.runtime.stats().upstreams;
      assert.ok(
        endpoints.every((u) => u.active === 0),
        'upstream slots leaked',
      );
      // max_lifetime (and the raw sockets' timeouts) sit on the deadline wheel: all taken off.
      assert.equal(deadlineWheel.size, 0, 'deadlines left on the wheel');
      // Echo-side sockets finish closing asynchronously; allow for them, not for growth.
      const leaked = process.getActiveResourcesInfo().length - baseline;
      assert.ok(leaked <= 5, `active resources grew by ${leaked}: ${process.getActiveResourcesInfo().join(',')}`);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});
