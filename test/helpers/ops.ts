/**
 * Operations test helpers: the admin API over real HTTP, and bin/tcpproxy as a child
 * process (config file, JSON log lines on stdout, signals) for reload, drain and workers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, type Response } from '../admin/http-client.js';
import { rssKiB } from '../../bench/proxy-process.js';
import { LogCollector, type LogLine } from './log-collector.js';
import { readBytes } from './sockets.js';

export { sampleValue } from '../admin/prometheus-text.js';
export type { Response } from '../admin/http-client.js';

/** The repository root: found upwards, so that this works from test/ (tsx) and dist/test/ (npm test). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}

export const BIN = join(findRepoRoot(), 'bin', 'tcpproxy');

/** The admin API of one proxy; `token` is sent as a bearer token when set. */
export class AdminClient {
  constructor(
    readonly port: number,
    private readonly token?: string,
  ) {}

  call(method: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
    const auth: Record<string, string> = this.token === undefined ? {} : { Authorization: `Bearer ${this.token}` };
    return request(this.port, method, path, { headers: { ...auth, ...headers } });
  }

  /** GET a JSON route; fails the test on any status but 200. */
  async json<T>(path: string): Promise<T> {
    const response = await this.call('GET', path);
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${response.body}`);
    return JSON.parse(response.body) as T;
  }

  async metrics(): Promise<string> {
    const response = await this.call('GET', '/metrics');
    if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${response.body}`);
    return response.body;
  }
}

/** What /api/stats and /api/connections answer: the admin API's own types. */
export type { ConnectionInfo as Connection, StatsSnapshot as Stats } from '../../src/admin/admin-runtime.js';

/** A process's resident memory in bytes now (the benchmark's /proc VmRSS reader). */
export function rssBytes(pid: number): number {
  return rssKiB(pid) * 1024;
}

/**
 * This process's hard limit on open files: what it and its children (Node raises its own soft
 * limit to the hard one at startup) can open, and no more without privileges.
 */
export function descriptorHardLimit(): number {
  const line = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!;
  return line === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(line);
}

/** A temporary directory holding one JSON config file that the test may rewrite (for reloads). */
export class ConfigFile {
  private constructor(
    readonly dir: string,
    readonly path: string,
  ) {}

  static async create(config: unknown): Promise<ConfigFile> {
    const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-ops-'));
    const file = new ConfigFile(dir, join(dir, 'tcpproxy.json'));
    await file.write(config);
    return file;
  }

  write(config: unknown): Promise<void> {
    return writeFile(this.path, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

export interface ProxyProcess {
  readonly child: ChildProcess;
  /** The first listener's port (from its "listening" line). */
  readonly port: number;
  /** The admin endpoint, when the config has one. */
  readonly admin: AdminClient | undefined;
  readonly logs: LogLine[];
  /** Resolves with the first log line matching, now or later (stdout JSON lines of every process). */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the matching lines once there are `count` of them (each worker logs its own). */
  waitForLines(predicate: (line: LogLine) => boolean, count: number, timeoutMs?: number): Promise<LogLine[]>;
  /** Resolves with the exit code (null when killed by a signal), once all its output has been read. */
  readonly exited: Promise<number | null>;
  /** SIGKILLs the process if still running (its workers follow); for `finally` blocks. */
  kill(): Promise<void>;
}

/**
 * Runs `bin/tcpproxy --config FILE [args]` (built with `npx tsc -p tsconfig.json`) with JSON
 * logs and waits until `listening` "listening" lines (one per worker and listener) and, if
 * `admin` is set, the admin endpoint's line have appeared.
 */
export async function spawnProxy(
  config: ConfigFile,
  options: { args?: string[]; listening?: number; admin?: boolean; startTimeoutMs?: number } = {},
): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [BIN, '--config', config.path, '--log-format', 'json', ...(options.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const collector = new LogCollector({ keepUnparsed: true, context: () => `; stderr: ${stderr}` });
  const logs = collector.lines;
  child.stdout.on('data', (chunk: Buffer) => collector.feed(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': the process may exit before its last log lines were read from the
  // pipe; 'close' comes once stdout and stderr have ended, so every line is in `logs`.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine> => collector.waitFor(predicate, timeoutMs);

  const waitForLines = async (predicate: (line: LogLine) => boolean, count: number, timeoutMs?: number): Promise<LogLine[]> => {
    let seen = 0;
    await waitForLog((line) => predicate(line) && ++seen >= count, timeoutMs);
    return logs.filter(predicate);
  };

  // Workers need no separate kill: a cluster worker exits when its primary's IPC channel closes.
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  try {
    const startup = Promise.race([
      exited.then((code) => Promise.reject(new Error(`tcpproxy exited ${code} during startup: ${stderr}`))),
      (async () => {
        const [listening] = (await waitForLines((l) => l.event === 'listening', options.listening ?? 1, options.startTimeoutMs ?? 30_000)) as [LogLine];
        const adminLine = options.admin ? await waitForLog((l) => l.event === 'admin_listening', options.startTimeoutMs ?? 30_000) : undefined;
        return { port: listening.port as number, adminPort: adminLine?.port as number | undefined };
      })(),
    ]);
    const { port, adminPort } = await startup;
    const admin = adminPort === undefined ? undefined : new AdminClient(adminPort);
    return { child, port, admin, logs, waitForLog, waitForLines, exited, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}

/** Sends `payload` on an open connection to an echo upstream and waits until it has come back. */
export async function roundTrip(client: Socket, payload: string | Buffer): Promise<void> {
  const back = readBytes(client, typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length);
  client.write(payload);
  await back;
}

/**
 * Lowers a running process's open-files limit (soft and hard) to `max`, with util-linux's
 * prlimit: set after startup, because loading the ES modules opens many files at once.
 */
export async function limitDescriptors(pid: number, max: number): Promise<void> {
  await promisify(execFile)('prlimit', ['--pid', String(pid), `--nofile=${max}:${max}`]);
}

/** How many descriptors a process has open now (Linux /proc). */
export function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * The lowest descriptor number a process has free now (Linux /proc): the one its next
 * socket or file gets. With the limit set to this plus one, exactly one more can be opened.
 */
export function lowestFreeDescriptor(pid: number): number {
  const open = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (open.has(fd)) fd++;
  return fd;
}
