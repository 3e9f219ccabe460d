/**
 * The dashboard in a real headless Chromium (Debian's `chromium` package, driven by
 * playwright-core): the page must show the runtime's figures, follow them as they change,
 * act on its buttons, run under its own CSP without errors, and leave a screenshot in
 * artifacts/dashboard.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Page } from 'playwright-core';
import { AdminServer } from '../../src/admin/server.js';
import type { ConnectionInfo } from '../../src/admin/admin-runtime.js';
import { FakeRuntime } from './fake-runtime.js';
import { file, requires } from '../helpers/requirements.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
const REFRESH_MS = 250;
const TICK_MS = 25;

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** A fake proxy with traffic: open connections that move bytes, some that come and go. */
function trafficRuntime(): { runtime: FakeRuntime; tick: () => void } {
  const runtime = new FakeRuntime({ main: ['127.0.0.1:9000', '127.0.0.1:9001', '[::1]:9002'], api: ['127.0.0.1:9100'] });
  let next = 1;
  const open = (listener: string, upstream: string) => {
    const metrics = runtime.proxyMetrics.listenerMetrics(listener);
    metrics.bridged();
    metrics.connected(upstream, 0.0004 + (next % 5) / 10_000);
    const connection: ConnectionInfo = {
      id: `c${next}`,
      listener,
      client: `127.0.0.1:${40000 + next}`,
      upstream,
      age_ms: 1000 * next,
      bytes_from_client: 1000 * next,
      bytes_to_client: 5000 * next,
    };
    next++;
    runtime.open.push(connection);
  };
  for (let i = 0; i < 9; i++) open('main', runtime.upstreams[i % 3]!.upstream);
  for (let i = 0; i < 3; i++) open('api', '127.0.0.1:9100');
  // Ticks come faster than the page polls, so that the rates it computes are smooth.
  let step = 0;
  const tick = () => {
    step++;
    const swell = 1 + 0.6 * Math.sin(step / 15);
    for (const c of runtime.open) {
      c.age_ms += TICK_MS;
      c.bytes_from_client += Math.round(400 * swell);
      c.bytes_to_client += Math.round(9000 * swell);
    }
    if (step % 10 === 0) open('api', '127.0.0.1:9100');
    if (step % 10 === 5) {
      const [oldest] = runtime.open.filter((c) => c.listener === 'api');
      if (oldest !== undefined) {
        runtime.open = runtime.open.filter((c) => c !== oldest);
        runtime.proxyMetrics.listenerMetrics('api').closed('client_closed', oldest.upstream, oldest.bytes_from_client, oldest.bytes_to_client, 1);
      }
    }
  };
  return { runtime, tick };
}

async function valueOf(page: Page, selector: string): Promise<number> {
  return Number(await page.getAttribute(selector, 'data-value'));
}

/** The slice of the DOM the wait predicates use (the project compiles without the DOM library). */
interface PageDocument {
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): { length: number };
}

/**
 * Waits until the element's data-value equals (or exceeds) a number. Predicates are functions,
 * not strings: the page's CSP forbids eval, which string predicates would need.
 */
async function waitForValue(page: Page, selector: string, wanted: { equals: number } | { above: number } | { from: number; to: number }): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, want]) => {
        const doc = (globalThis as unknown as { document: PageDocument }).document;
        const text = doc.querySelector(sel)?.getAttribute('data-value');
        if (text === null || text === undefined) return false;
        const value = Number(text);
        if ('equals' in want) return value === want.equals;
        return 'above' in want ? value > want.above : value >= want.from && value <= want.to;
      },
      [selector, wanted] as const,
      { timeout: 10_000 },
    );
  } catch (error) {
    // Say what the page showed instead: a timeout alone does not tell a slow page from a wrong one.
    const shown = await page.getAttribute(selector, 'data-value', { timeout: 1000 }).catch(() => 'no such element');
    const status = await page.textContent('body', { timeout: 1000 }).catch(() => '');
    throw new Error(`${selector}: wanted ${JSON.stringify(wanted)}, page shows ${shown}; page text: ${status?.replace(/\s+/g, ' ').slice(0, 400)}`, {
      cause: error,
    });
  }
}

async function waitForCount(page: Page, selector: string, count: number): Promise<void> {
  await page.waitForFunction(
    ([sel, n]) => (globalThis as unknown as { document: PageDocument }).document.querySelectorAll(sel).length === n,
    [selector, count] as const,
    { timeout: 5000 },
  );
}

test('the dashboard shows live figures, follows changes, acts, and is screenshotted', { timeout: 90_000 }, async (t) => {
  if (!(await requires(t, file(CHROMIUM, "install Debian's chromium package (apt-get install -y chromium)")))) return;
  const { runtime, tick } = trafficRuntime();
  const admin = new AdminServer({ listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, runtime, logger: pino({ level: 'silent' }) });
  const { port } = await admin.start();
  t.after(() => admin.close());
  const traffic = setInterval(tick, TICK_MS);
  t.after(() => clearInterval(traffic));

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  const problems: string[] = [];
  const newPage = async () => {
    // A fresh context each time: nothing kept in sessionStorage from an earlier page.
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Chromium logs failed requests (our expected 401s, and the 409 of a refused upstream add) as console errors.
      if (message.type() === 'error' && !/status of (401|409)\b/.test(message.text()) && !message.text().includes('401'))
        problems.push(`console: ${message.text()}`);
    });
    return page;
  };
  const base = `http://127.0.0.1:${port}/?refresh=${REFRESH_MS}`;

  // Without the token the page asks for it, and works once it is entered.
  const asking = await newPage();
  await asking.goto(base);
  await asking.waitForSelector('#auth:not([hidden])', { timeout: 5000 });
  assert.equal(await asking.textContent('[data-testid="summary-active"]'), '–');
  await asking.fill('#token', TOKEN);
  await asking.click('#auth button[type=submit]');
  // 12 open, and the api listener's 13th comes and goes every 250 ms (the page's own period:
  // a page in step with it may only ever see 13).
  await waitForValue(asking, '[data-testid="summary-active"]', { from: 12, to: 13 });
  assert.equal(await asking.isHidden('#auth'), true);
  await asking.context().close();

  // The token can also come in the fragment, which then leaves the address bar.
  const page = await newPage();
  await page.goto(`${base}#token=${TOKEN}`);
  await waitForValue(page, '[data-testid="summary-active"]', { from: 12, to: 13 });
  assert.equal(new URL(page.url()).hash, '');
  assert.equal(await page.isHidden('#auth'), true);
  assert.equal(await page.textContent('tr[data-listener="main"] [data-field="active"]'), '9');

  // Rates come from counter differences: traffic is flowing, so they rise above zero.
  await waitForValue(page, '[data-testid="summary-out-rate"]', { above: 10000 });
  await waitForValue(page, '[data-testid="summary-in-rate"]', { above: 1000 });
  assert.match(String(await page.textContent('[data-testid="summary-out-rate"]')), /iB\/s$/);

  // Counters change in the runtime: the page follows.
  const main = runtime.proxyMetrics.listenerMetrics('main');
  const totalBefore = await valueOf(page, 'tr[data-listener="main"] [data-field="total"]');
  for (let i = 0; i < 5; i++) main.bridged();
  await waitForValue(page, 'tr[data-listener="main"] [data-field="active"]', { equals: 14 });
  await waitForValue(page, 'tr[data-listener="main"] [data-field="total"]', { equals: totalBefore + 5 });
  for (let i = 0; i < 5; i++) main.closed('client_closed', '127.0.0.1:9000', 10, 10, 0.5);
  main.rejected('acl');
  main.rejected('acl');
  main.rejected('rate_limit');
  await waitForValue(page, '[data-reason="acl"]', { equals: 2 });
  await waitForValue(page, '[data-testid="summary-refusals"]', { equals: 3 });

  // Upstream health, and the drain button.
  runtime.upstreams[2]!.state = 'down';
  await page.waitForSelector('tr[data-upstream="main [::1]:9002"] .badge.down', { timeout: 5000 });
  await waitForValue(page, '[data-testid="summary-upstreams"]', { equals: 3 });
  await page.click('tr[data-upstream="main 127.0.0.1:9000"] button[data-action="drain"]');
  await page.waitForSelector('tr[data-upstream="main 127.0.0.1:9000"] .badge.draining', { timeout: 5000 });
  assert.ok(runtime.calls.includes('drain main 127.0.0.1:9000'));

  // Run-time upstream management: the listener's upstreams with their settings, editable.
  const managed = (address: string) => `#manage-upstreams tr[data-managed="${address}"]`;
  await page.waitForSelector(managed('127.0.0.1:9001'), { timeout: 5000 });
  assert.equal(await page.inputValue(`${managed('127.0.0.1:9001')} input[name=weight]`), '1');
  await page.fill(`${managed('127.0.0.1:9001')} input[name=weight]`, '5');
  await page.fill(`${managed('127.0.0.1:9001')} input[name=max_connections]`, '40');
  await page.click(`${managed('127.0.0.1:9001')} button[data-action="save-upstream"]`);
  await waitForValue(page, `${managed('127.0.0.1:9001')} td:nth-child(4)`, { equals: 5 });
  assert.ok(runtime.calls.includes('update main 127.0.0.1:9001 weight 5'));
  assert.deepEqual(runtime.settings.get('main 127.0.0.1:9001'), { weight: 5, max_connections: 40 });
  // Typing survives the page's refreshes until saved.
  await page.fill(`${managed('127.0.0.1:9000')} input[name=weight]`, '7');
  const asked = runtime.listCalls;
  while (runtime.listCalls < asked + 2) await new Promise((resolve) => setTimeout(resolve, TICK_MS)); // two refreshes pass
  assert.equal(await page.inputValue(`${managed('127.0.0.1:9000')} input[name=weight]`), '7');
  await page.fill(`${managed('127.0.0.1:9000')} input[name=weight]`, '1');

  await page.fill('#add-upstream input[name=address]', '127.0.0.1:9010');
  await page.fill('#add-upstream input[name=weight]', '2');
  await page.click('#add-upstream button[type=submit]');
  await page.waitForSelector(managed('127.0.0.1:9010'), { timeout: 5000 });
  await page.waitForSelector('tr[data-upstream="main 127.0.0.1:9010"]', { timeout: 5000 });
  assert.ok(runtime.calls.includes('add main 127.0.0.1:9010 weight 2'));
  assert.equal(await page.inputValue('#add-upstream input[name=address]'), '');
  // A refused change is shown, not swallowed.
  await page.fill('#add-upstream input[name=address]', '127.0.0.1:9010');
  await page.click('#add-upstream button[type=submit]');
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document
        .getElementById('toast')
        ?.textContent.includes('already an upstream') === true,
    undefined,
    { timeout: 5000 },
  );
  await page.fill('#add-upstream input[name=address]', '');

  await page.click(`${managed('127.0.0.1:9010')} button[data-action="remove-upstream"]`);
  await page.waitForSelector(managed('127.0.0.1:9010'), { state: 'detached', timeout: 5000 });
  assert.ok(runtime.calls.includes('remove main 127.0.0.1:9010'));

  await page.selectOption('#manage-listener', 'api');
  await page.waitForSelector(managed('127.0.0.1:9100'), { timeout: 5000 });
  assert.equal(await page.locator('#manage-upstreams tr[data-managed]').count(), 1);

  // Busiest connections: the ten largest, largest first, each with a working close button.
  await waitForCount(page, '#connections tr[data-connection-id]', 10);
  const ids = await page.$$eval('#connections tr[data-connection-id]', (rows: { getAttribute(name: string): string | null }[]) =>
    rows.map((row) => row.getAttribute('data-connection-id')),
  );
  const expected = [...runtime.open].sort((a, b) => b.bytes_from_client + b.bytes_to_client - (a.bytes_from_client + a.bytes_to_client)).map((c) => c.id);
  assert.equal(ids[0], expected[0]);
  const victim = ids[0]!;
  await page.click(`#connections tr[data-connection-id="${victim}"] button[data-action="close"]`);
  await page.waitForSelector(`#connections tr[data-connection-id="${victim}"]`, { state: 'detached', timeout: 5000 });
  assert.ok(runtime.calls.includes(`close ${victim}`));

  // A few more seconds of history for the charts, then the screenshot.
  await waitForCount(page, '#chart-throughput path.line', 2);
  await page.waitForTimeout(3000); // fills the chart for the picture; nothing is asserted on it
  const path = join(repositoryRoot(), 'artifacts', 'dashboard.png');
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  assert.ok(existsSync(path));
  assert.deepEqual(problems, []);
});
