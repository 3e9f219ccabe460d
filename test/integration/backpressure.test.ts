/**
 * Backpressure end to end: 256 MiB pushed as fast as the sender can through a proxy process
 * to a reader that keeps stopping, each way. Nothing may be lost or reordered, and the
 * proxy's resident memory must stay flat: it reads only as fast as the slow side takes.
 * (Ignoring write()'s return value would queue most of the 256 MiB in the proxy.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ConfigFile, rssBytes, spawnProxy } from '../helpers/ops.js';
import { startServer, type TestServer } from '../helpers/servers.js';
import { deferred } from '../helpers/wait.js';

const TOTAL = 256 * 1024 * 1024;
/** The stream is this block repeated; an odd length so that chunks and block rarely align. */
const BLOCK = randomBytes(1024 * 1024 + 7);
/** The reader stops for PAUSE_MS after every STEP bytes: at most ~80 MiB/s. */
const STEP = 4 * 1024 * 1024;
const PAUSE_MS = 50;
/** Growth of the proxy's RSS allowed over its idle baseline. */
const RSS_BOUND = 48 * 1024 * 1024;

/** Writes TOTAL bytes of the pattern as fast as `socket` accepts them (respecting write()'s answer), then ends. */
async function pour(socket: Socket): Promise<void> {
  let sent = 0;
  while (sent < TOTAL) {
    const offset = sent % BLOCK.length;
    const chunk = BLOCK.subarray(offset, Math.min(BLOCK.length, offset + TOTAL - sent));
    sent += chunk.length;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
}

/**
 * Reads `socket` to its end, checking every byte against the pattern at its offset, and
 * stopping for PAUSE_MS after every STEP bytes. Resolves with the byte count.
 */
function readSlowly(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let nextPause = STEP;
    socket.on('data', (chunk: Buffer) => {
      for (let done = 0; done < chunk.length;) {
        const offset = (received + done) % BLOCK.length;
        const length = Math.min(chunk.length - done, BLOCK.length - offset);
        if (!chunk.subarray(done, done + length).equals(BLOCK.subarray(offset, offset + length))) {
          socket.destroy();
          return reject(new Error(`byte ${received + done}: the stream differs from what was sent`));
        }
        done += length;
      }
      received += chunk.length;
      if (received >= nextPause) {
        nextPause += STEP;
        socket.pause();
        setTimeout(() => socket.resume(), PAUSE_MS);
      }
    });
    socket.once('end', () => resolve(received));
    socket.once('error', reject);
  });
}

describe('backpressure through a proxy process', { timeout: 60_000 }, () => {
  for (const direction of ['server -> slow client', 'client -> slow server'] as const) {
    it(`${direction}: 256 MiB arrive intact while the proxy's memory stays bounded`, async () => {
      const serverDone = deferred<number>();
      const upstream: TestServer = await startServer((socket) => {
        if (direction === 'server -> slow client') {
          pour(socket).then(() => serverDone.resolve(0), serverDone.reject);
          socket.resume();
        } else {
          readSlowly(socket).then(serverDone.resolve, serverDone.reject);
          socket.on('end', () => socket.end());
        }
      });
      const config = await ConfigFile.create({ listeners: [{ listen: '127.0.0.1:0', upstreams: [upstream.address] }] });
      const proxy = await spawnProxy(config);
      const peak = { rss: 0 };
      let sampler: NodeJS.Timeout | undefined;
      try {
        const baseline = rssBytes(proxy.child.pid!);
        sampler = setInterval(() => (peak.rss = Math.max(peak.rss, rssBytes(proxy.child.pid!))), 20);
        const client = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
        await once(client, 'connect');
        let clientReceived: Promise<number>;
        if (direction === 'server -> slow client') {
          clientReceived = readSlowly(client);
          client.end();
        } else {
          await pour(client);
          clientReceived = new Promise((resolve) => client.on('data', () => undefined).once('end', () => resolve(0)));
        }
        const [readByClient, readByServer] = await Promise.all([clientReceived, serverDone.promise]);
        assert.equal(Math.max(readByClient, readByServer), TOTAL, 'bytes lost or added');
        assert.ok(peak.rss > 0, 'no memory sample was taken');
        const growth = peak.rss - baseline;
        assert.ok(growth < RSS_BOUND, `the proxy grew by ${(growth / 2 ** 20).toFixed(1)} MiB while a slow reader took 256 MiB`);
        client.destroy();
      } finally {
        clearInterval(sampler);
        await proxy.kill();
        await upstream.close();
        await config.remove();
      }
    });
  }
});
