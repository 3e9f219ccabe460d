/**
 * tcpproxy toxiproxy-server driven by the published toxiproxy client (toxiproxy-node-client),
 * as a user's test suite would drive toxiproxy: proxies, every toxic type with its effect
 * measured on real sockets (lower bounds only), toxicity, and toxics changed on open connections.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import type { Proxy } from 'toxiproxy-node-client';
import { refusedPort, startServer, type TestServer } from '../helpers/servers.js';
import { EchoClient, portOf, timeToClose, TIMER_SLACK_MS, toxiproxyAndEcho } from './helpers.js';
import { connect } from '../helpers/sockets.js';
import { pause, until } from '../helpers/wait.js';

describe('toxiproxy-server with toxiproxy-node-client', { timeout: 90_000 }, () => {
  const fixture = toxiproxyAndEcho();
  let count = 0;

  /** A fresh proxy to the echo server on a port of its own. */
  const echoProxy = (): Promise<Proxy> =>
    fixture.toxiproxy.client.createProxy({ name: `echo-${++count}`, listen: '127.0.0.1:0', upstream: fixture.echo.address });

  it('reports a version, creates a proxy on the port it got, and lists and gets it', async () => {
    assert.match(await fixture.toxiproxy.client.getVersion(), /"version":\s*"2\./);
    const proxy = await echoProxy();
    assert.equal(proxy.enabled, true);
    assert.ok(portOf(proxy.listen) > 0, proxy.listen);
    const again = await fixture.toxiproxy.client.get(proxy.name);
    assert.deepEqual(again.toJson(), proxy.toJson());
    assert.ok(proxy.name in (await fixture.toxiproxy.client.getAll()));
    const client = await EchoClient.open(portOf(proxy.listen));
    await client.roundTrip(1000);
    client.close();
  });

  it('refuses a duplicate name and an unknown one', async () => {
    const proxy = await echoProxy();
    await assert.rejects(fixture.toxiproxy.client.createProxy({ name: proxy.name, listen: '127.0.0.1:0', upstream: fixture.echo.address }), /409/);
    await assert.rejects(fixture.toxiproxy.client.get('no-such-proxy'), /404/);
    await proxy.addToxic({ name: 'latency', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 1, jitter: 0 } });
    await assert.rejects(proxy.addToxic({ name: 'latency', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 1, jitter: 0 } }), /409/);
    await assert.rejects(proxy.getToxic('no-such-toxic'), /404/);
  });

  it('populates: creates, keeps what is unchanged, and answers with every proxy', async () => {
    const body = [
      { name: 'pop-a', listen: '127.0.0.1:0', upstream: fixture.echo.address, enabled: true },
      { name: 'pop-b', listen: '127.0.0.1:0', upstream: fixture.echo.address, enabled: false },
    ];
    const proxies = await fixture.toxiproxy.client.populate(body);
    assert.deepEqual(Object.keys(proxies).sort(), ['pop-a', 'pop-b']);
    assert.equal(proxies['pop-a']!.enabled, true);
    assert.equal(proxies['pop-b']!.enabled, false);
    // The same list again, with pop-a at the address it got: kept as it is.
    const again = await fixture.toxiproxy.client.populate([{ ...body[0]!, listen: proxies['pop-a']!.listen }, body[1]!]);
    assert.equal(again['pop-a']!.listen, proxies['pop-a']!.listen);
    const client = await EchoClient.open(portOf(proxies['pop-a']!.listen));
    await client.roundTrip(10);
    client.close();
  });

  it('latency delays each direction by at least its latency', async () => {
    for (const stream of ['downstream', 'upstream'] as const) {
      const proxy = await echoProxy();
      await proxy.addToxic({ name: 'latency', type: 'latency', stream, toxicity: 1, attributes: { latency: 250, jitter: 0 } });
      const client = await EchoClient.open(portOf(proxy.listen));
      const ms = await client.roundTrip(100);
      assert.ok(ms >= 250 - TIMER_SLACK_MS, `${stream}: round trip took ${ms} ms`);
      client.close();
    }
  });

  it('bandwidth limits the rate (KB/s)', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({ name: 'bandwidth', type: 'bandwidth', stream: 'downstream', toxicity: 1, attributes: { rate: 100 } });
    const client = await EchoClient.open(portOf(proxy.listen));
    const ms = await client.roundTrip(60_000);
    // 100 KB/s = 100,000 bytes/s; the bucket lets 5,000 bytes through at once.
    assert.ok(ms >= 550 - TIMER_SLACK_MS, `60,000 bytes at 100 KB/s took ${ms} ms`);
    client.close();
  });

  it('slow_close holds the FIN back for its delay; the data is not delayed', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({ name: 'slow_close', type: 'slow_close', stream: 'downstream', toxicity: 1, attributes: { delay: 300 } });
    const client = await EchoClient.open(portOf(proxy.listen));
    await client.roundTrip(10);
    const closing = timeToClose(client.socket);
    client.socket.end();
    const { ms } = await closing;
    assert.ok(ms >= 300 - TIMER_SLACK_MS, `the FIN came after ${ms} ms`);
    client.close();
  });

  it('timeout 0 holds the data until the toxic is removed, then it flows', async () => {
    let received = 0;
    const arrived = once(
      await startServer((socket) => socket.on('data', (c: Buffer) => (received += c.length))).then((server) => {
        servers.push(server);
        return server.server;
      }),
      'connection',
    );
    const upstream = servers.at(-1)!;
    const proxy = await fixture.toxiproxy.client.createProxy({ name: `sink-${++count}`, listen: '127.0.0.1:0', upstream: upstream.address });
    const toxic = await proxy.addToxic({ name: 'timeout', type: 'timeout', stream: 'upstream', toxicity: 1, attributes: { timeout: 0 } });
    const client = await connect(portOf(proxy.listen));
    client.write('held');
    await arrived;
    // Nothing may pass while the toxic is there: give it time to (wrongly) pass.
    await pause(200);
    assert.equal(received, 0);
    await toxic.remove();
    await until(() => received >= 4, 'the held bytes to pass once the toxic is gone');
    assert.equal(received, 4);
    client.destroy();
  });

  it('timeout > 0 closes the connection that long after it started', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({ name: 'timeout', type: 'timeout', stream: 'downstream', toxicity: 1, attributes: { timeout: 300 } });
    const started = performance.now();
    const client = await connect(portOf(proxy.listen));
    client.write('lost');
    const { error } = await timeToClose(client);
    const ms = performance.now() - started;
    assert.ok(ms >= 300 - TIMER_SLACK_MS, `closed after ${ms} ms`);
    assert.equal(error, undefined, 'a normal close, not a reset');
  });

  it('reset_peer resets the connection its timeout after data arrives', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({ name: 'reset_peer', type: 'reset_peer', stream: 'upstream', toxicity: 1, attributes: { timeout: 200 } });
    const client = await connect(portOf(proxy.listen));
    const closing = timeToClose(client);
    client.write('boom');
    const { ms, error } = await closing;
    assert.equal(error, 'ECONNRESET');
    assert.ok(ms >= 200 - TIMER_SLACK_MS, `reset after ${ms} ms`);
  });

  it('slicer cuts the data into pieces spaced by its delay, intact', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({
      name: 'slicer',
      type: 'slicer',
      stream: 'downstream',
      toxicity: 1,
      attributes: { average_size: 10, size_variation: 5, delay: 2000 },
    });
    const client = await EchoClient.open(portOf(proxy.listen));
    let reads = 0;
    const bytes: Buffer[] = [];
    client.socket.on('data', (chunk: Buffer) => {
      reads++;
      bytes.push(chunk);
    });
    const ms = await client.roundTrip(1000);
    // At most 15 bytes a piece: at least 67 pieces, 66 gaps of 2 ms.
    assert.ok(ms >= 132 - TIMER_SLACK_MS, `1000 bytes in slices took ${ms} ms`);
    assert.ok(reads > 1, `received in ${reads} read(s)`);
    assert.deepEqual(Buffer.concat(bytes), Buffer.alloc(1000, 0x61));
    client.close();
  });

  it('limit_data lets its bytes through, then closes normally; toxicity 0 never applies', async () => {
    for (const toxicity of [1, 0]) {
      const proxy = await echoProxy();
      await proxy.addToxic({ name: 'limit_data', type: 'limit_data', stream: 'downstream', toxicity, attributes: { bytes: 500 } });
      const client = await EchoClient.open(portOf(proxy.listen));
      const closing = timeToClose(client.socket);
      client.socket.write(Buffer.alloc(2000, 0x62));
      if (toxicity === 1) {
        const { error } = await closing;
        assert.equal(client.received, 500);
        assert.equal(error, undefined);
      } else {
        await client.receivedAtLeast(2000);
        assert.equal(client.received, 2000);
      }
      client.close();
    }
  });

  it('toxics added, updated and removed act on a connection already open', async () => {
    const proxy = await echoProxy();
    const client = await EchoClient.open(portOf(proxy.listen));
    await client.roundTrip(10);
    const toxic = await proxy.addToxic({ name: 'latency', type: 'latency', stream: 'upstream', toxicity: 1, attributes: { latency: 200, jitter: 0 } });
    let ms = await client.roundTrip(10);
    assert.ok(ms >= 200 - TIMER_SLACK_MS, `after add: ${ms} ms`);
    const updated = await toxic.update({ name: 'latency', type: 'latency', stream: 'upstream', attributes: { latency: 400, jitter: 0 }, toxicity: 1 });
    assert.equal(updated.attributes.latency, 400);
    ms = await client.roundTrip(10);
    assert.ok(ms >= 400 - TIMER_SLACK_MS, `after update: ${ms} ms`);
    // limit_data counts from where the connection is; then removing the latency leaves it alone.
    await proxy.addToxic({ name: 'limit_data', type: 'limit_data', stream: 'downstream', toxicity: 1, attributes: { bytes: 5 } });
    await toxic.remove();
    const before = client.received;
    const closing = timeToClose(client.socket);
    client.socket.write('0123456789');
    await closing;
    assert.equal(client.received - before, 5);
  });

  it('disabling closes the listener and its connections; enabling listens on the same port again', async () => {
    const proxy = await echoProxy();
    const port = portOf(proxy.listen);
    const client = await EchoClient.open(port);
    await client.roundTrip(10);
    const closing = timeToClose(client.socket);
    const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    assert.equal(disabled.enabled, false);
    await closing;
    await assert.rejects(connect(port), /ECONNREFUSED/);
    const enabled = await proxy.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream });
    assert.equal(enabled.listen, proxy.listen);
    const again = await EchoClient.open(port);
    await again.roundTrip(10);
    again.close();
  });

  it('reset enables every proxy and removes every toxic', async () => {
    const proxy = await echoProxy();
    await proxy.addToxic({ name: 'latency', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 10_000, jitter: 0 } });
    await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    await fixture.toxiproxy.client.reset();
    const after = await fixture.toxiproxy.client.get(proxy.name);
    assert.equal(after.enabled, true);
    assert.deepEqual(await (await fetch(`${fixture.toxiproxy.url}/proxies/${proxy.name}/toxics`)).json(), []);
    const client = await EchoClient.open(portOf(after.listen));
    await client.roundTrip(10);
    client.close();
  });

  it('deletes a proxy: its port is closed and its name unknown', async () => {
    const proxy = await echoProxy();
    await proxy.remove();
    await assert.rejects(fixture.toxiproxy.client.get(proxy.name), /404/);
    await assert.rejects(connect(portOf(proxy.listen)), /ECONNREFUSED/);
  });

  it('an upstream that refuses: the client is closed', async () => {
    const proxy = await fixture.toxiproxy.client.createProxy({
      name: `refused-${++count}`,
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${await refusedPort()}`,
    });
    const client = await connect(portOf(proxy.listen));
    await timeToClose(client);
  });

  const servers: TestServer[] = [];
  after(async () => {
    for (const server of servers) await server.close();
  });
});
