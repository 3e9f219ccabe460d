/**
 * The burst collector (proxy/burst-collector.ts): one full collection once a burst of
 * connections is over. Its rule with a recorded `collect` and mocked timers; the collection
 * itself on this Node (a major GC, without --expose-gc); and a real proxy that collects after a
 * burst of real connections, seen in its `burst_collected` log line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PerformanceObserver, constants as perf, type PerformanceEntry } from 'node:perf_hooks';
import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test';
import { BurstCollector, burstFromEnvironment, collectGarbage, DEFAULT_BURST } from '../../src/proxy/burst-collector.js';
import { BIN } from '../helpers/ops.js';
import { LogCollector, memoryLogger } from '../helpers/log-collector.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { connect, readBytes, readToEnd } from '../helpers/sockets.js';

const DELAY_MS = 1_000;

describe('BurstCollector', () => {
  let collections: number;
  let collector: BurstCollector;
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    collections = 0;
    collector = new BurstCollector({ burst: 16, delayMs: DELAY_MS, collect: () => collections++ });
  });
  afterEach(() => mock.timers.reset());

  function open(count: number): void {
    for (let i = 0; i < count; i++) collector.opened();
  }
  function close(count: number): void {
    for (let i = 0; i < count; i++) collector.closed();
  }

  it('collects once, a quiet second after a burst falls below an eighth of its peak', () => {
    open(16);
    close(14); // 2 left: 2 * 8 = 16, not below the peak yet
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 0);
    close(1); // 1 left
    mock.timers.tick(DELAY_MS - 1);
    assert.equal(collections, 0);
    mock.timers.tick(1);
    assert.equal(collections, 1);
    // The peak starts again from what was left: closing the last one is no new burst.
    close(1);
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 1);
  });

  it('never collects after fewer connections than a burst', () => {
    open(15);
    close(15);
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 0);
  });

  it('does not collect when the load came back within the quiet second', () => {
    open(16);
    close(16);
    open(8);
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 0);
    // Still the same burst: it collects once the count falls again.
    close(8);
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 1);
  });

  it('collects again after the next burst', () => {
    open(16);
    close(16);
    mock.timers.tick(DELAY_MS);
    open(20);
    close(20);
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 2);
  });

  it('logs each collection with what it freed', () => {
    const logs = memoryLogger();
    collector.reportTo(logs.logger);
    open(16);
    close(16);
    mock.timers.tick(DELAY_MS);
    const [line] = logs.lines.filter((l) => l.event === 'burst_collected');
    assert.ok(line, 'a burst_collected line');
    assert.equal(line.peak, 16);
    assert.equal(line.open, 0);
    assert.equal(typeof line.pause_ms, 'number');
    assert.equal(typeof line.heap_after_mb, 'number');
  });

  it('a collection that fails turns the collector off, with a warning, and the process goes on', () => {
    const logs = memoryLogger();
    let attempts = 0;
    const failing = new BurstCollector({
      burst: 16,
      delayMs: DELAY_MS,
      collect: () => {
        attempts++;
        throw new ReferenceError('gc is not defined');
      },
    });
    failing.reportTo(logs.logger);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 16; i++) failing.opened();
      for (let i = 0; i < 16; i++) failing.closed();
      mock.timers.tick(DELAY_MS);
    }
    assert.equal(attempts, 1);
    const warning = logs.lines.find((l) => l.event === 'burst_collected');
    assert.equal(warning?.ok, false);
    assert.match(String(warning?.error), /gc is not defined/);
  });

  it('burst 0 is off', () => {
    const off = new BurstCollector({ burst: 0, delayMs: DELAY_MS, collect: () => collections++ });
    for (let i = 0; i < 100; i++) off.opened();
    for (let i = 0; i < 100; i++) off.closed();
    mock.timers.tick(DELAY_MS);
    assert.equal(collections, 0);
  });
});

describe('TCPPROXY_COLLECT_AFTER_BURST', () => {
  it('is a whole number, the default when unset or empty', () => {
    assert.equal(burstFromEnvironment({}), DEFAULT_BURST);
    assert.equal(burstFromEnvironment({ TCPPROXY_COLLECT_AFTER_BURST: '' }), DEFAULT_BURST);
    assert.equal(burstFromEnvironment({ TCPPROXY_COLLECT_AFTER_BURST: '0' }), 0);
    assert.equal(burstFromEnvironment({ TCPPROXY_COLLECT_AFTER_BURST: '5000' }), 5000);
    for (const bad of ['lots', '-1', '1.5', '1e3', ' 10']) assert.equal(burstFromEnvironment({ TCPPROXY_COLLECT_AFTER_BURST: bad }), undefined, bad);
  });

  it('refuses to start with anything else (exit 2, naming the variable)', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [BIN, '127.0.0.1', '0', '127.0.0.1', '9'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TCPPROXY_COLLECT_AFTER_BURST: 'lots' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 2);
    assert.match(stderr, /TCPPROXY_COLLECT_AFTER_BURST: "lots" is not a whole number/);
  });
});

describe('collectGarbage', () => {
  it('runs a full (major) collection on this Node without --expose-gc', async () => {
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the test process has no global gc');
    const major = new Promise<PerformanceEntry>((resolve) => {
      const observer = new PerformanceObserver((list) => {
        const entry = list.getEntries().find((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR);
        if (entry === undefined) return;
        observer.disconnect();
        resolve(entry);
      });
      observer.observe({ entryTypes: ['gc'] });
    });
    collectGarbage();
    await major;
  });
});

describe('a proxy after a burst of connections', () => {
  let echo: TestServer;
  before(async () => {
    echo = await startEchoServer();
  });
  after(() => echo.close());

  it('runs one full collection once the burst is over, and logs it', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [BIN, '127.0.0.1', '0', '127.0.0.1', String(echo.port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TCPPROXY_COLLECT_AFTER_BURST: '40' },
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const logs = new LogCollector({});
    child.stdout.on('data', (chunk: Buffer) => logs.feed(chunk.toString()));
    try {
      const { port } = (await logs.waitFor((line) => line.event === 'listening', 30_000)) as { port: number };
      const clients = await Promise.all(Array.from({ length: 40 }, () => connect(port)));
      // Every connection carried a byte both ways: all 40 are open at once.
      await Promise.all(
        clients.map((client) => {
          const echoed = readBytes(client, 1);
          client.write('x');
          return echoed;
        }),
      );
      for (const client of clients) client.end();
      await Promise.all(clients.map((client) => readToEnd(client)));
      const collected = await logs.waitFor((line) => line.event === 'burst_collected', 10_000);
      assert.equal(collected.peak, 40);
      assert.ok((collected.open as number) < 5, `open at the collection: ${String(collected.open)}`);
      // Nothing was collected while the connections were open: the line came after every close line.
      const closes = logs.lines.filter((line) => line.event === 'close');
      assert.equal(closes.length, 40);
      assert.ok(logs.lines.indexOf(collected) > logs.lines.indexOf(closes.at(-1)!));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
});
