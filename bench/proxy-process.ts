/**
 * tcpproxy as the benchmark runs it: its own process, started from a config written to a
 * temporary file; its listeners' ports are read back from its "listening" log lines.
 * (A module of its own: extras.ts needs it too, and importing bench.ts, the entry point
 * still awaiting its main(), from a module it loads would never finish.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;

export async function startTcpproxy(config: Record<string, unknown>, extraArgs: string[] = []): Promise<{ child: ChildProcess; ports: Map<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-bench-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ log: { level: 'info', format: 'json' }, ...config }));
  const child = spawn(process.execPath, [join(ROOT, 'bin/tcpproxy'), '--config', file, ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listeners = (config.listeners as unknown[]).length;
  const ports = new Map<string, number>();
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`tcpproxy exited with ${code}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      if (ports.size === listeners) return; // keep draining the access log, unread
      buffered += chunk.toString();
      for (const line of buffered.split('\n').slice(0, -1)) {
        const entry = JSON.parse(line) as { event?: string; listener?: string; port?: number };
        if (entry.event === 'listening') ports.set(entry.listener!, entry.port!);
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
      if (ports.size === listeners) resolve();
    });
  });
  return { child, ports };
}

/** `count` loopback ports free right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = net.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** CPU time (user + system, µs) a process has used so far. */
export function cpuMicros(pid: number): number {
  // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks; the name (field 2) may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}
