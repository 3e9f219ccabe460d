/**
 * The soak (#12 item 5): the real proxy process (bin/tcpproxy, three listeners: plain,
 * filtered, queued) under mixed traffic with chaos for N minutes, reloaded by SIGHUP with a
 * rewritten config every few seconds. Traffic runs in rounds; after each round, once the
 * proxy's active gauges are back to zero, it samples RSS and descriptors (/proc/<pid>),
 * heap (/metrics) and the gauges (/api/stats). It fails when any checked byte is lost or
 * altered, when a gauge does not return to zero, or when RSS or descriptors drift after
 * warm-up (more than 10%).
 *
 *     npm run soak -- --minutes 10
 *
 * The suite runs a 30 s version (test/bench/soak.test.ts) through runSoak().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, rssKiB } from './proxy-process.js';

export interface SoakOptions {
  readonly durationMs: number;
  /** Rounds in the first part of the run are not held to the drift limits. */
  readonly warmupMs?: number;
  /**
   * Hold RSS to the drift limit (default true). RSS climbs for the first minutes while V8's
   * heap and the recycled read buffers grow to their working size (flat from about 200 s in a
   * 10-minute run), so a run of seconds can only judge descriptors, gauges and bytes.
   */
  readonly checkRssDrift?: boolean;
  /** A SIGHUP with a rewritten config at most this often. */
  readonly reloadEveryMs?: number;
  /** Connections per round (of each kind, roughly). */
  readonly intensity?: number;
  readonly log?: (line: string) => void;
}

export interface Sample {
  readonly atMs: number;
  readonly rssKiB: number;
  readonly heapUsedMiB: number;
  readonly fds: number;
  readonly active: number;
  readonly queued: number;
}

export interface SoakReport {
  readonly problems: string[];
  readonly samples: Sample[];
  readonly connections: number;
  readonly bytesChecked: number;
  readonly reloads: number;
  readonly durationMs: number;
  readonly rssDrift: number;
  readonly fdDrift: number;
}

/** What the drift check allows after warm-up. */
const MAX_DRIFT = 0.1;
const TOKEN = 'soak';

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warmupMs = options.warmupMs ?? Math.min(60_000, options.durationMs / 3);
  const reloadEveryMs = options.reloadEveryMs ?? 5_000;
  const intensity = options.intensity ?? 4;
  const problems: string[] = [];
  const upstreams = await Promise.all([startEcho(), startEcho(), startEcho()]);
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-soak-'));
  const configFile = join(dir, 'soak.json');
  let generation = 0;
  writeFileSync(configFile, JSON.stringify(soakConfig(upstreams, generation)));
  const proxy = await startProxy(configFile);
  const counts = { connections: 0, bytesChecked: 0 };
  const samples: Sample[] = [];
  const started = Date.now();
  let lastReload = started;
  try {
    while (Date.now() - started < options.durationMs && problems.length === 0) {
      if (Date.now() - lastReload >= reloadEveryMs) {
        // One reload at a time (the previous one is long done): each SIGHUP gets its own "reload" line.
        await waitForReload(proxy, generation);
        lastReload = Date.now();
        writeFileSync(configFile, JSON.stringify(soakConfig(upstreams, ++generation)));
        proxy.child.kill('SIGHUP');
      }
      await round(proxy.ports, intensity, counts, problems);
      // Quiescent: every connection of the round is over on the client side; the proxy's gauges must follow.
      const settled = await waitForIdle(proxy.adminPort);
      if (!settled.ok) problems.push(`gauges did not return to zero after a round: ${settled.detail}`);
      samples.push(await sample(proxy, started));
      const last = samples[samples.length - 1]!;
      log(
        `${formatSeconds(last.atMs)}  rss ${(last.rssKiB / 1024).toFixed(1)} MiB  heap ${last.heapUsedMiB.toFixed(1)} MiB  fds ${last.fds}  connections ${counts.connections}  checked ${(counts.bytesChecked / 2 ** 20).toFixed(0)} MiB  reloads ${proxy.reloads()}`,
      );
    }
    await waitForReload(proxy, generation);
    if (proxy.failedReloads() > 0) problems.push(`${proxy.failedReloads()} reload(s) failed`);
  } finally {
    proxy.child.kill('SIGTERM');
    const [code] = (await once(proxy.child, 'exit')) as [number | null];
    if (code !== 0) problems.push(`the proxy exited with ${code} on SIGTERM`);
    for (const upstream of upstreams) upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const steady = samples.filter((s) => s.atMs >= warmupMs);
  const rssDrift = drift(steady.map((s) => s.rssKiB));
  const fdDrift = drift(steady.map((s) => s.fds));
  if (steady.length < 3) problems.push(`only ${steady.length} samples after warm-up: run longer`);
  if (options.checkRssDrift !== false && rssDrift > MAX_DRIFT) problems.push(`RSS drifted ${(rssDrift * 100).toFixed(1)}% after warm-up`);
  if (fdDrift > MAX_DRIFT) problems.push(`descriptors drifted ${(fdDrift * 100).toFixed(1)}% after warm-up`);
  return { problems, samples, ...counts, reloads: proxy.reloads(), durationMs: Date.now() - started, rssDrift, fdDrift };
}

/**
 * Growth between the start and the end of the steady part: the median of its last third
 * against the median of its first third (medians, so that one GC cycle is not a trend).
 */
function drift(values: number[]): number {
  if (values.length < 3) return 0;
  const third = Math.max(1, Math.floor(values.length / 3));
  const first = median(values.slice(0, third));
  const last = median(values.slice(-third));
  return first === 0 ? 0 : Math.max(0, last - first) / first;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// -- the proxy under test ------------------------------------------------------------------

interface Ports {
  plain: number;
  filtered: number;
  queued: number;
}

/** A reload changes what a reload can change without changing the bytes: balance, upstreams, timeouts, limits. */
function soakConfig(upstreams: Echo[], generation: number): unknown {
  const [a, b, c] = upstreams.map((u) => `127.0.0.1:${u.port}`) as [string, string, string];
  const odd = generation % 2 === 1;
  return {
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    log: { level: 'info', format: 'json' },
    listeners: [
      {
        name: 'plain',
        listen: '127.0.0.1:0',
        upstreams: odd ? [a, b, c] : [a, b],
        balance: odd ? 'least_connections' : 'round_robin',
        idle_timeout: odd ? '5m' : '6m',
      },
      {
        name: 'filtered',
        listen: '127.0.0.1:0',
        upstreams: [c],
        filters: [{ type: 'replace', direction: 'to_upstream', match: 'foo', with: 'bar' }],
        max_lifetime: odd ? '1h' : '2h',
      },
      { name: 'queued', listen: '127.0.0.1:0', upstreams: [b], max_connections: odd ? 3 : 4, on_limit: 'queue', queue_timeout: '60s' },
    ],
  };
}

interface ProxyProcess {
  child: ChildProcess;
  ports: Ports;
  adminPort: number;
  reloads(): number;
  failedReloads(): number;
  /** Resolves when `count` successful reloads have been logged. */
  reloaded(count: number): Promise<void>;
}

async function startProxy(configFile: string): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tcpproxy'), '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = new Map<string, number>();
  let adminPort = 0;
  let reloads = 0;
  let failed = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  let buffered = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`tcpproxy exited with ${code} during startup`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const end = buffered.lastIndexOf('\n');
      if (end < 0) return;
      for (const line of buffered.slice(0, end).split('\n')) {
        // Only the few lines of interest are parsed: the access log is most of the output.
        if (!line.includes('"event":"listening"') && !line.includes('"event":"admin_listening"') && !line.includes('"event":"reload"')) continue;
        const entry = JSON.parse(line) as { event: string; listener?: string; port?: number; ok?: boolean };
        if (entry.event === 'listening') ports.set(entry.listener!, entry.port!);
        else if (entry.event === 'admin_listening') adminPort = entry.port!;
        else if (entry.ok === true) reloads++;
        else if (entry.ok === false) failed++;
      }
      buffered = buffered.slice(end + 1);
      for (const waiter of waiters.filter((w) => reloads >= w.count)) waiter.resolve();
      if (ports.size === 3 && adminPort !== 0) resolve();
    });
  });
  await ready;
  return {
    child,
    ports: { plain: ports.get('plain')!, filtered: ports.get('filtered')!, queued: ports.get('queued')! },
    adminPort,
    reloads: () => reloads,
    failedReloads: () => failed,
    reloaded: (count) => (reloads >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

async function waitForReload(proxy: ProxyProcess, generation: number): Promise<void> {
  const timeout = setTimeout(() => proxy.child.kill('SIGKILL'), 30_000);
  await Promise.race([proxy.reloaded(generation), once(proxy.child, 'exit')]);
  clearTimeout(timeout);
}

async function adminGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Authorization: `Bearer ${TOKEN}` }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Gauges {
  active: number;
  queued: number;
}

async function gauges(adminPort: number): Promise<Gauges> {
  const stats = JSON.parse(await adminGet(adminPort, '/api/stats')) as { listeners: { active: number; queue_length: number }[] };
  return {
    active: stats.listeners.reduce((sum, l) => sum + l.active, 0),
    queued: stats.listeners.reduce((sum, l) => sum + l.queue_length, 0),
  };
}

/** Polls until no connection is active or queued (the clients are all gone): 10 s at most. */
async function waitForIdle(adminPort: number): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await gauges(adminPort);
    if (now.active === 0 && now.queued === 0) return { ok: true, detail: '' };
    if (Date.now() > deadline) return { ok: false, detail: JSON.stringify(now) };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function sample(proxy: ProxyProcess, started: number): Promise<Sample> {
  const pid = proxy.child.pid!;
  const metrics = await adminGet(proxy.adminPort, '/metrics');
  const heap = /^tcpproxy_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics);
  const now = await gauges(proxy.adminPort);
  return {
    atMs: Date.now() - started,
    rssKiB: rssKiB(pid),
    heapUsedMiB: heap ? Number(heap[1]) / 2 ** 20 : Number.NaN,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    ...now,
  };
}

// -- traffic -------------------------------------------------------------------------------

interface Counts {
  connections: number;
  bytesChecked: number;
}

/** One round: every kind of connection at once; resolves when all are over on the client side. */
async function round(ports: Ports, intensity: number, counts: Counts, problems: string[]): Promise<void> {
  const jobs: Promise<void>[] = [];
  const checked = (what: string, job: Promise<number>): void => {
    jobs.push(
      job.then(
        (bytes) => {
          counts.connections++;
          counts.bytesChecked += bytes;
        },
        (error: unknown) => void problems.push(`${what}: ${(error as Error).message}`),
      ),
    );
  };
  const chaos = (job: Promise<void>): void => {
    jobs.push(job.then(() => void counts.connections++));
  };
  for (let i = 0; i < intensity; i++) {
    checked('round trip', roundTrip(ports.plain, randomBytes(1024 + randomInt(256 * 1024))));
    checked('slow reader', roundTrip(ports.plain, randomBytes(512 * 1024), { slowReader: true }));
    checked('queued', roundTrip(ports.queued, randomBytes(64 * 1024 + randomInt(64 * 1024))));
    checked('queued', roundTrip(ports.queued, randomBytes(16 * 1024)));
    checked('filtered', filteredRoundTrip(ports.filtered));
    chaos(resetAfter(ports.plain, 0));
    chaos(resetAfter(ports.plain, randomInt(200 * 1024)));
    chaos(resetAfter(ports.queued, randomInt(32 * 1024)));
    chaos(resetAfter(ports.filtered, randomInt(32 * 1024)));
    chaos(closeWithoutReading(ports.plain, 50 * 1024));
  }
  checked('large transfer', roundTrip(ports.plain, randomBytes(8 * 1024 * 1024)));
  await Promise.all(jobs);
}

function randomInt(below: number): number {
  return Math.floor(Math.random() * below);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Sends `payload` and half-closes; reads the echo to its end and compares digests: what
 * came back must be exactly `expected` (the payload, or what the filter makes of it).
 */
async function roundTrip(port: number, payload: Buffer, options: { slowReader?: boolean; expected?: Buffer } = {}): Promise<number> {
  const socket = await connectTo(port);
  const expected = options.expected ?? payload;
  const hash = createHash('sha256');
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      if (options.slowReader) {
        // A reader that takes its time: the proxy must hold back, not buffer without bound.
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
    });
    socket.once('end', resolve);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed after ${received} of ${expected.length} bytes`)));
  });
  socket.end(payload);
  try {
    await done;
  } finally {
    socket.destroy();
  }
  if (received !== expected.length || hash.digest('hex') !== sha256(expected)) {
    throw new Error(`${received} bytes back for ${expected.length} sent: lost or altered`);
  }
  return payload.length + received;
}

/** Text with "foo" here and there: the filter turns each into "bar" on the way up, the echo sends that back. */
function filteredRoundTrip(port: number): Promise<number> {
  const words = Array.from({ length: 2000 + randomInt(4000) }, () => (Math.random() < 0.1 ? 'foo' : randomBytes(4).toString('hex').replace(/f/g, 'e')));
  const text = words.join(' ');
  return roundTrip(port, Buffer.from(text), { expected: Buffer.from(text.replaceAll('foo', 'bar')) });
}

/** Sends `bytes` (maybe none), then resets. Nothing to check but that the proxy lets go. */
async function resetAfter(port: number, bytes: number): Promise<void> {
  const socket = await connectTo(port).catch(() => undefined);
  if (!socket) return;
  socket.on('error', () => undefined);
  if (bytes > 0) await new Promise<void>((resolve) => socket.write(randomBytes(bytes), () => resolve()));
  socket.resetAndDestroy();
  await once(socket, 'close');
}

/** Sends and closes without reading a byte of the echo (the proxy meets a reset while writing). */
async function closeWithoutReading(port: number, bytes: number): Promise<void> {
  const socket = await connectTo(port).catch(() => undefined);
  if (!socket) return;
  socket.on('error', () => undefined);
  socket.pause();
  socket.end(randomBytes(bytes));
  await once(socket, 'finish');
  socket.destroy();
  await once(socket, 'close');
}

interface Echo {
  port: number;
  close(): void;
}

async function startEcho(): Promise<Echo> {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

// -- the command ---------------------------------------------------------------------------

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(0).padStart(5)} s`;
}

export function summary(report: SoakReport): string {
  const rss = report.samples.map((s) => s.rssKiB / 1024);
  const fds = report.samples.map((s) => s.fds);
  const heap = report.samples.map((s) => s.heapUsedMiB);
  const row = (name: string, value: string): string => `  ${name.padEnd(22)} ${value}`;
  const range = (values: number[], digits = 1): string =>
    values.length === 0
      ? '-'
      : `${Math.min(...values).toFixed(digits)} .. ${Math.max(...values).toFixed(digits)} (last ${values[values.length - 1]!.toFixed(digits)})`;
  return [
    'soak summary',
    row('duration', `${(report.durationMs / 1000).toFixed(0)} s, ${report.samples.length} samples, ${report.reloads} reloads`),
    row('RSS (MiB)', `${range(rss)}, drift after warm-up ${(report.rssDrift * 100).toFixed(1)}%`),
    row('heap used (MiB)', range(heap)),
    row('descriptors', `${range(fds, 0)}, drift after warm-up ${(report.fdDrift * 100).toFixed(1)}%`),
    row('connections', `${report.connections} (${(report.connections / (report.durationMs / 1000)).toFixed(0)}/s)`),
    row('bytes checked (sha256)', `${(report.bytesChecked / 2 ** 20).toFixed(0)} MiB`),
    row('result', report.problems.length === 0 ? 'ok' : `FAILED: ${report.problems.join('; ')}`),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' } } });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) {
    process.stderr.write(`soak: --minutes: expected a positive number, got "${values.minutes}"\n`);
    process.exit(2);
  }
  const report = await runSoak({ durationMs: minutes * 60_000 });
  process.stdout.write(`${summary(report)}\n`);
  process.exit(report.problems.length === 0 ? 0 : 1);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
