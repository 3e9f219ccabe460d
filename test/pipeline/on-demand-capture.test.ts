/**
 * On-demand capture through the admin API, read back with the pcap reader (and tshark):
 * one live connection from the moment the capture joined, a listener's new connections,
 * the byte bound, and the refusals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';
import { EchoClient } from '../toxiproxy/helpers.js';
import { followStream, readPcap } from '../inspect/pcap-reader.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../helpers/wait.js';

const run = promisify(execFile);
const tsharkMissing = await run('tshark', ['--version']).then(
  () => false,
  () => true,
);

async function call(proxy: TestProxy, method: string, path: string): Promise<{ status: number; body: Buffer; type: string | null }> {
  const response = await fetch(`http://127.0.0.1:${proxy.runtime.adminAddress()!.port}${path}`, { method });
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') };
}

const json = (answer: { body: Buffer }): Record<string, unknown> => JSON.parse(answer.body.toString()) as Record<string, unknown>;

/** The id of the one open connection. */
async function onlyConnection(proxy: TestProxy): Promise<string> {
  const list = JSON.parse((await call(proxy, 'GET', '/api/connections')).body.toString()) as { id: string }[];
  assert.equal(list.length, 1);
  return list[0]!.id;
}

describe('on-demand capture', { timeout: 60_000 }, () => {
  it('captures one live connection from the moment it starts, until stopped', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy({
      admin: { listen: '127.0.0.1:0' },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address], live_filters: true }],
    });
    try {
      const client = await EchoClient.open(proxy.port);
      await client.exchange('before the capture;');
      const id = await onlyConnection(proxy);
      assert.equal((await call(proxy, 'GET', `/api/connections/${id}/capture`)).status, 404);
      const started = await call(proxy, 'POST', `/api/connections/${id}/capture?seconds=30`);
      assert.equal(started.status, 201);
      assert.equal(json(started).state, 'running');
      assert.equal((await call(proxy, 'POST', `/api/connections/${id}/capture`)).status, 409, 'one at a time');
      await client.exchange('captured both ways');
      assert.equal((await call(proxy, 'GET', `/api/connections/${id}/capture`)).status, 409, 'still running');
      const stopped = await call(proxy, 'DELETE', `/api/connections/${id}/capture`);
      assert.deepEqual([json(stopped).state, json(stopped).bytes], ['stopped', 36]);
      await client.exchange('after;');
      const file = await call(proxy, 'GET', `/api/connections/${id}/capture`);
      assert.equal(file.type, 'application/vnd.tcpdump.pcap');
      const segments = readPcap(file.body);
      const clientAddress = `127.0.0.1:${client.socket.localPort}`;
      const front = `127.0.0.1:${proxy.port}`;
      assert.equal(followStream(segments, clientAddress, front).data.toString(), 'captured both ways');
      assert.equal(followStream(segments, front, clientAddress).data.toString(), 'captured both ways');
      assert.equal(
        followStream(segments, `127.0.0.1:${echo.port}`, segments.find((s) => s.dst === `127.0.0.1:${echo.port}`)!.src).data.toString(),
        'captured both ways',
      );
      if (!tsharkMissing) {
        const dir = mkdtempSync(join(tmpdir(), 'capture-'));
        writeFileSync(join(dir, 'c.pcap'), file.body);
        const { stdout } = await run('tshark', ['-r', join(dir, 'c.pcap'), '-T', 'fields', '-e', 'tcp.stream']);
        assert.deepEqual([...new Set(stdout.trim().split('\n'))].sort(), ['0', '1'], 'tshark sees two TCP conversations');
      }
      client.close();
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it("captures a listener's new connections and stops by itself at max_bytes", async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy({ admin: { listen: '127.0.0.1:0' }, listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }] });
    try {
      const plain = await EchoClient.open(proxy.port);
      await plain.exchange('x');
      const plainId = await onlyConnection(proxy);
      assert.equal((await call(proxy, 'POST', `/api/connections/${plainId}/capture`)).status, 409, 'a plain-path connection');
      plain.close();
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/capture?max_bytes=0')).status, 400);
      assert.equal((await call(proxy, 'POST', '/api/listeners/nope/capture')).status, 404);
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/capture?max_bytes=1000')).status, 201);
      const client = await EchoClient.open(proxy.port);
      await client.exchange('y'.repeat(800));
      await client.exchange('z'.repeat(800));
      await proxy.waitForLog((line) => line.event === 'capture' && line.action === 'start');
      // It stopped by itself: the file can be read without a DELETE.
      const file = await eventually(
        async () => {
          const answer = await call(proxy, 'GET', '/api/listeners/main/capture');
          return answer.status === 409 ? undefined : answer;
        },
        'the capture to stop by itself',
        5_000,
        25,
      );
      assert.equal(file.status, 200);
      assert.equal(json(await call(proxy, 'DELETE', '/api/listeners/main/capture')).stop_reason, 'max_bytes');
      const payload = readPcap(file.body).filter((s) => s.payload.length > 0);
      assert.ok(payload.length > 0, 'the new connection was captured');
      // The live capture filter is gone: the listener is back to no live filters.
      assert.equal(proxy.runtime.liveFilters('main')!.list().length, 0);
      client.close();
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});
