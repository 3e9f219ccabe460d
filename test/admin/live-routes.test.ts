/**
 * Run-time control through the admin API, end to end on real sockets: live filters added,
 * replaced and removed on a running listener (open connections follow), listeners created
 * and removed, and what a reload does to them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { readPcap } from '../inspect/pcap-reader.js';
import { buildSnapshot } from '../../src/config/load.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';
import { EchoClient, timeToClose, TIMER_SLACK_MS } from '../toxiproxy/helpers.js';
import { connect } from '../helpers/sockets.js';

async function call(proxy: TestProxy, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${proxy.runtime.adminAddress()!.port}${path}`, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  return { status: response.status, body: await response.json() };
}

const config = (echo: string, extra: Record<string, unknown> = {}) => ({
  admin: { listen: '127.0.0.1:0' },
  listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo], ...extra }],
});

describe('run-time control (admin API)', { timeout: 60_000 }, () => {
  it('live filters on an always-live listener change connections already open', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(config(echo.address, { live_filters: true }));
    try {
      const client = await EchoClient.open(proxy.port);
      assert.equal(await client.exchange('cat'), 'cat');
      const added = await call(proxy, 'POST', '/api/listeners/main/filters', {
        name: 'swap',
        type: 'replace',
        direction: 'to_client',
        match: 'cat',
        with: 'dog',
      });
      assert.equal(added.status, 201);
      assert.equal(await client.exchange('cat'), 'dog');
      const replaced = await call(proxy, 'POST', '/api/listeners/main/filters/swap', { type: 'replace', direction: 'to_client', match: 'cat', with: 'cow' });
      assert.equal(replaced.status, 200);
      assert.equal(await client.exchange('cat'), 'cow');
      await call(proxy, 'POST', '/api/listeners/main/filters', { type: 'delay', direction: 'to_upstream', latency: '250ms' });
      const ms = await client.roundTrip(10);
      assert.ok(ms >= 250 - TIMER_SLACK_MS, `with a live delay: ${ms} ms`);
      assert.deepEqual((await call(proxy, 'GET', '/api/listeners/main/filters')).body, [
        { name: 'swap', toxicity: 1, type: 'replace', direction: 'to_client', match: 'cat', with: 'cow' },
        { name: 'delay-1', toxicity: 1, type: 'delay', direction: 'to_upstream', latency: '250ms' },
      ]);
      assert.equal((await call(proxy, 'DELETE', '/api/listeners/main/filters/swap')).status, 200);
      assert.equal(await client.exchange('cat'), 'cat');
      await proxy.waitForLog((line) => line.event === 'live_filter' && line.action === 'remove');
      client.close();
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('on another listener, connections opened while it has live filters follow them; older ones stay plain', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(config(echo.address));
    try {
      const older = await EchoClient.open(proxy.port);
      assert.equal(await older.exchange('cat'), 'cat');
      await call(proxy, 'POST', '/api/listeners/main/filters', { name: 'swap', type: 'replace', match: 'cat', with: 'dog', direction: 'to_client' });
      const newer = await EchoClient.open(proxy.port);
      assert.equal(await newer.exchange('cat'), 'dog');
      assert.equal(await older.exchange('cat'), 'cat', 'a connection on the plain path is not switched over');
      await call(proxy, 'DELETE', '/api/listeners/main/filters/swap');
      assert.equal(await newer.exchange('cat'), 'cat');
      older.close();
      newer.close();
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('refuses bad filters, unknown names and duplicates', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(config(echo.address));
    try {
      assert.equal((await call(proxy, 'POST', '/api/listeners/nope/filters', { type: 'delay', latency: 5 })).status, 404);
      const bad = await call(proxy, 'POST', '/api/listeners/main/filters', { type: 'delay' });
      assert.equal(bad.status, 400);
      assert.match((bad.body as { error: string }).error, /latency/);
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/filters', { type: 'delay', latency: 5, toxicity: 2 })).status, 400);
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/filters', { name: 'd', type: 'delay', latency: 5 })).status, 201);
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/filters', { name: 'd', type: 'delay', latency: 5 })).status, 409);
      assert.equal((await call(proxy, 'POST', '/api/listeners/main/filters/nope', { type: 'delay', latency: 5 })).status, 404);
      assert.equal((await call(proxy, 'DELETE', '/api/listeners/main/filters/nope')).status, 404);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('creates and removes listeners at run time; a reload keeps them and the live filters', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(config(echo.address));
    try {
      const created = await call(proxy, 'POST', '/api/listeners', { name: 'extra', listen: '127.0.0.1:0', upstreams: [echo.address] });
      assert.equal(created.status, 201);
      const port = (created.body as { port: number }).port;
      assert.equal((await call(proxy, 'POST', '/api/listeners', { name: 'extra', listen: '127.0.0.1:0', upstreams: [echo.address] })).status, 409);
      assert.equal((await call(proxy, 'POST', '/api/listeners', { name: 'broken', listen: 'nowhere' })).status, 400);
      assert.equal((await call(proxy, 'DELETE', '/api/listeners/main')).status, 409, 'a config listener');
      await call(proxy, 'POST', '/api/listeners/main/filters', { name: 'swap', type: 'replace', match: 'cat', with: 'dog', direction: 'to_client' });

      assert.deepEqual(await proxy.runtime.reload(buildSnapshot({ log: { level: 'info' }, ...config(echo.address) })), { ok: true });
      const listed = (await call(proxy, 'GET', '/api/listeners')).body as { name: string; runtime: boolean; live_filters: unknown[] }[];
      assert.deepEqual(listed.map((l) => [l.name, l.runtime, l.live_filters.length]).sort(), [
        ['extra', true, 0],
        ['main', false, 1],
      ]);
      const client = await EchoClient.open(port);
      assert.equal(await client.exchange('cat'), 'cat');
      const closing = timeToClose(client.socket);
      assert.equal((await call(proxy, 'DELETE', '/api/listeners/extra')).status, 200);
      await closing;
      await assert.rejects(connect(port), /ECONNREFUSED/);
      assert.equal((await call(proxy, 'DELETE', '/api/listeners/extra')).status, 404);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('the dashboard shows listeners created at run time and live filters', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(config(echo.address));
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      await call(proxy, 'POST', '/api/listeners', { name: 'extra', listen: '127.0.0.1:0', upstreams: [echo.address] });
      await call(proxy, 'POST', '/api/listeners/main/filters', { name: 'swap', type: 'replace', match: 'cat', with: 'dog' });
      const page = await browser.newPage({ acceptDownloads: true });
      await page.goto(`http://127.0.0.1:${proxy.runtime.adminAddress()!.port}/?refresh=250`);
      await page.waitForSelector('tr[data-listener="main"] [data-field="live_filters"]:has-text("swap (replace)")', { timeout: 15_000 });
      assert.match((await page.textContent('tr[data-listener="extra"] [data-field="name"]')) ?? '', /extra \(run time\)/);
      // The busiest-connections table captures a connection on demand and saves the pcap.
      const client = await EchoClient.open(proxy.port);
      await client.exchange('before');
      await page.locator('#connections button[data-action="capture"]').click({ timeout: 15_000 });
      await proxy.waitForLog((line) => line.event === 'capture' && line.action === 'start');
      await client.exchange('in the capture');
      const download = page.waitForEvent('download', { timeout: 15_000 });
      await page.locator('#connections button[data-action="save-capture"]').click({ timeout: 15_000 });
      const file = await readFile(await (await download).path());
      const payloads = readPcap(file)
        .map((segment) => segment.payload.toString())
        .join('');
      assert.match(payloads, /in the capture/);
      assert.doesNotMatch(payloads, /before/);
      client.close();
    } finally {
      await browser.close();
      await proxy.stop();
      await echo.close();
    }
  });
});
