/**
 * Zero-downtime upgrade with --workers 2, under traffic: while short connect/echo/close
 * clients run without pause and long-lived connections stream data both ways, every worker
 * is replaced (by `tcpproxy upgrade`, then by SIGUSR2). Not one connection may be refused or
 * cut, every streamed byte must come back intact, and afterwards every worker pid is new.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { ConfigFile, spawnProxy, type ProxyProcess, type Stats } from '../helpers/ops.js';
import { runBin } from '../helpers/repo.js';
import { connect } from '../helpers/sockets.js';

/** Short connections in `parallel` loops: connect, send, half-close, read the echo to its end. */
class Traffic {
  succeeded = 0;
  readonly failures: string[] = [];
  private stopped = false;
  private readonly waiters: { count: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly loops: Promise<void>[];

  constructor(
    private readonly port: number,
    parallel: number,
  ) {
    this.loops = Array.from({ length: parallel }, (_, loop) => this.loop(loop));
  }

  /** Resolves once `count` connections in all have succeeded; rejects at the first failure. */
  reach(count: number): Promise<void> {
    if (this.failures.length > 0) return Promise.reject(new Error(`connection failed: ${this.failures[0]}`));
    if (this.succeeded >= count) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ count, resolve, reject }));
  }

  async stop(): Promise<string[]> {
    this.stopped = true;
    await Promise.all(this.loops);
    return this.failures;
  }

  private async loop(loop: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const payload = `loop ${loop} connection ${n} ${randomBytes(8).toString('hex')}`;
      try {
        const echoed = await exchange(this.port, payload);
        if (echoed !== payload) throw new Error(`echo mismatch: ${JSON.stringify(echoed)}`);
        this.succeeded++;
        for (const waiter of [...this.waiters]) {
          if (this.succeeded < waiter.count) continue;
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      } catch (error) {
        this.failures.push(`${payload}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`connection failed: ${this.failures[0]}`));
      }
    }
  }
}

async function exchange(port: number, payload: string): Promise<string> {
  const socket = await connect(port);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString()));
    socket.end(payload);
  });
}

/** A long-lived connection sending 4 KiB chunks, each echoed before the next, until told to finish. */
class Stream {
  chunks = 0;
  private readonly sent: Buffer[] = [];
  private readonly received: Buffer[] = [];
  private receivedBytes = 0;
  private sentBytes = 0;
  private finishing = false;
  private readonly done: Promise<void>;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private progressed: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.receivedBytes += chunk.length;
      this.wake?.();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.wake?.();
      this.notifyProgress();
    });
    socket.on('close', () => {
      this.failure ??= new Error('closed by the proxy');
      this.wake?.();
      this.notifyProgress();
    });
    this.done = this.run();
  }

  static async open(port: number): Promise<Stream> {
    return new Stream(await connect(port));
  }

  /** Resolves once `more` further chunks have made the round trip. */
  async progress(more: number): Promise<void> {
    const target = this.chunks + more;
    while (this.chunks < target) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.progressed.push(resolve));
    }
  }

  destroy(): void {
    this.finishing = true;
    this.socket.destroy();
  }

  /** Stops sending, half-closes, and returns what was sent and what came back. */
  async finish(): Promise<{ sent: Buffer; received: Buffer }> {
    this.finishing = true;
    await this.done;
    const ended = new Promise<void>((resolve) => this.socket.once('end', resolve));
    this.socket.end();
    await ended;
    return { sent: Buffer.concat(this.sent), received: Buffer.concat(this.received) };
  }

  private notifyProgress(): void {
    const waiting = this.progressed;
    this.progressed = [];
    for (const resolve of waiting) resolve();
  }

  private async run(): Promise<void> {
    while (!this.finishing) {
      const chunk = randomBytes(4096);
      this.sent.push(chunk);
      this.sentBytes += chunk.length;
      this.socket.write(chunk);
      while (this.receivedBytes < this.sentBytes) {
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      this.chunks++;
      this.notifyProgress();
    }
  }
}

describe('zero-downtime upgrade with --workers 2', { timeout: 240_000 }, () => {
  let echo: TestServer;
  let file: ConfigFile;
  let proxy: ProxyProcess;

  before(async () => {
    echo = await startEchoServer();
    // The long-lived streams must outlast the old workers' drain: shutdown_timeout well above the test.
    file = await ConfigFile.create({
      admin: { listen: '127.0.0.1:0' },
      shutdown_timeout: '2m',
      listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }],
    });
    proxy = await spawnProxy(file, { args: ['--workers', '2'], listening: 2, admin: true, startTimeoutMs: 60_000 });
  });
  after(async () => {
    await proxy?.kill();
    await file?.remove();
    await echo.close();
  });

  const workerPids = async (): Promise<number[]> => ((await proxy.admin!.json<Stats>('/api/stats')).worker_pids ?? []).sort();

  /** Runs `trigger` under traffic and checks the whole promise of an upgrade. */
  async function upgradeUnderTraffic(trigger: () => Promise<{ old_pid: number; new_pid: number }[]>): Promise<void> {
    const before = await workerPids();
    assert.equal(before.length, 2);
    const retiredBefore = proxy.logs.filter((line) => line.event === 'worker_retired').length;
    const traffic = new Traffic(proxy.port, 4);
    const streams = await Promise.all(Array.from({ length: 4 }, () => Stream.open(proxy.port)));
    try {
      await Promise.all([traffic.reach(20), ...streams.map((s) => s.progress(5))]);

      const replaced = await trigger();
      assert.deepEqual(replaced.map((r) => r.old_pid).sort(), before);

      // Traffic goes on after the upgrade (new workers), and the streams (on the old ones) keep flowing.
      await Promise.all([traffic.reach(traffic.succeeded + 20), ...streams.map((s) => s.progress(5))]);
      for (const stream of streams) {
        const { sent, received } = await stream.finish();
        assert.ok(sent.length > 0);
        assert.ok(received.equals(sent), `a long-lived stream got ${received.length} of ${sent.length} bytes back, or other bytes`);
      }
      assert.deepEqual(await traffic.stop(), [], 'no refused, reset or cut connection');
      assert.ok(traffic.succeeded >= 40);

      // The drained old workers exit once their last connection is done; only the new ones remain.
      await proxy.waitForLines((line) => line.event === 'worker_retired', retiredBefore + 2, 60_000);
      const after = await workerPids();
      assert.deepEqual(after, replaced.map((r) => r.new_pid).sort());
      assert.equal(after.filter((pid) => before.includes(pid)).length, 0, 'every worker pid replaced');
    } finally {
      await traffic.stop();
      for (const stream of streams) stream.destroy();
    }
  }

  it('`tcpproxy upgrade` replaces every worker, refusing and cutting nothing', async () => {
    await upgradeUnderTraffic(async () => {
      const result = await runBin(['upgrade', '--admin', `127.0.0.1:${proxy.admin!.port}`, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const parsed = JSON.parse(result.stdout) as { ok: boolean; replaced: { old_pid: number; new_pid: number }[] };
      assert.equal(parsed.ok, true);
      return parsed.replaced;
    });
  });

  it('SIGUSR2 does the same', async () => {
    const seen = proxy.logs.length;
    await upgradeUnderTraffic(async () => {
      proxy.child.kill('SIGUSR2');
      await proxy.waitForLog((line) => line.event === 'upgrade' && line.ok === true && proxy.logs.indexOf(line) >= seen, 60_000);
      return proxy.logs
        .slice(seen)
        .filter((line) => line.event === 'upgrade' && typeof line.old_pid === 'number')
        .map((line) => ({ old_pid: line.old_pid as number, new_pid: line.new_pid as number }));
    });
  });

  it('a new worker that cannot start stops the upgrade; the old workers keep serving', async () => {
    const before = await workerPids();
    const valid = JSON.parse(readFileSync(file.path, 'utf8')) as unknown;
    await file.write({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: ['not-an-address'] }] });
    try {
      const result = await runBin(['upgrade', '--admin', `127.0.0.1:${proxy.admin!.port}`]);
      assert.equal(result.code, 3);
      assert.match(result.stderr, /upgrade failed: the new worker exited \(code 2\) before binding its listeners.*\(0 of 2 workers replaced/);
      assert.deepEqual(await workerPids(), before);
      const traffic = new Traffic(proxy.port, 2);
      await traffic.reach(10);
      assert.deepEqual(await traffic.stop(), []);
    } finally {
      await file.write(valid);
    }
  });
});
