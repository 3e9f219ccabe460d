/**
 * `tcpproxy reload|stop|status|upgrade`: find the running instance and act on it, as
 * `nginx -s` and haproxyctl do.
 *
 * Where it looks: the admin API (`--admin`, or `admin.listen` of `--config`), which answers
 * with the outcome, else the pid file (`--pid-file`, or `pid_file` of `--config`), which
 * takes signals (SIGHUP, SIGTERM, SIGUSR2) whose outcome is in the proxy's log.
 *
 * Exit status (README "Controlling a running instance"): 0 done; 1 no running instance
 * found (the message names every place looked); 2 usage or configuration error; 3 the
 * instance was found but the action failed (reload refused, upgrade failed, stop timed out,
 * admin token refused).
 */
import { request } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { StatsSnapshot, UpgradeResult } from '../admin/admin-runtime.js';
import { parseHostPort, formatHostPort, type HostPort } from '../net/address.js';
import { loadConfigFile } from '../config/load.js';
import { inspectPidFile } from '../runtime/pid-file.js';
import { UsageError } from './args.js';
import type { ControlCommand } from './control-command.js';
import { TcpProxyError } from '../errors/errors.js';

const EXIT = { ok: 0, notRunning: 1, usage: 2, failed: 3 } as const;

/** Without --timeout and without a config saying shutdown_timeout, how long `stop` waits. */
const DEFAULT_STOP_WAIT_MS = 60_000;
/** `stop` waits this much longer than the proxy's shutdown_timeout (the forced closes, the exit). */
const STOP_WAIT_MARGIN_MS = 10_000;
const POLL_MS = 100;

interface Target {
  admin?: HostPort;
  token?: string | undefined;
  pidFile?: string;
  stopWaitMs: number;
}

/** What was learnt about the instance: reachable through the admin API, or by pid only. */
type Found = { via: 'admin'; admin: HostPort; stats: StatsSnapshot } | { via: 'pid'; pid: number; pidFile: string };

class ControlFailure extends TcpProxyError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super('control_failed', message);
  }
}

export async function runControl(command: ControlCommand): Promise<number> {
  const out = (human: string, json: unknown): void => {
    process.stdout.write(command.json ? `${JSON.stringify(json)}\n` : `${human}\n`);
  };
  try {
    const target = await resolveTarget(command);
    const found = await locate(target);
    switch (command.action) {
      case 'status':
        return status(found, out);
      case 'reload':
        return await reload(found, target, out);
      case 'stop':
        return await stop(found, target, out);
      case 'upgrade':
        return await upgrade(found, target, out);
    }
  } catch (error) {
    if (!(error instanceof ControlFailure)) throw error;
    if (command.json) process.stdout.write(`${JSON.stringify({ ok: false, action: command.action, error: error.message })}\n`);
    process.stderr.write(`tcpproxy: ${error.message}\n`);
    return error.exitCode;
  }
}

async function resolveTarget(command: ControlCommand): Promise<Target> {
  const target: Target = { stopWaitMs: command.timeoutMs ?? DEFAULT_STOP_WAIT_MS };
  if (command.configFile !== undefined) {
    // A config that does not load is exit 2 (main reports it): nothing is sent to anyone.
    const snapshot = await loadConfigFile(command.configFile);
    if (snapshot.admin) target.admin = loopbackFor(snapshot.admin.listen);
    target.token = snapshot.admin?.token;
    if (snapshot.pid_file !== undefined) target.pidFile = resolve(snapshot.baseDir, snapshot.pid_file);
    target.stopWaitMs = command.timeoutMs ?? snapshot.shutdown_timeout + STOP_WAIT_MARGIN_MS;
  }
  if (command.admin !== undefined) {
    const parsed = parseHostPort(command.admin);
    if (typeof parsed === 'string') throw new UsageError(`--admin: ${parsed}`);
    target.admin = loopbackFor(parsed);
  }
  if (command.adminToken !== undefined) target.token = command.adminToken;
  if (command.pidFile !== undefined) target.pidFile = resolve(command.pidFile);
  if (target.admin === undefined && target.pidFile === undefined) {
    throw new ControlFailure(
      `${command.configFile} has neither admin.listen nor pid_file: no way to find the running instance (add one, or give --admin / --pid-file)`,
      EXIT.usage,
    );
  }
  return target;
}

/** An endpoint bound to every address is reached on loopback. */
function loopbackFor(listen: HostPort): HostPort {
  if (listen.host === '0.0.0.0') return { host: '127.0.0.1', port: listen.port };
  if (listen.host === '::') return { host: '::1', port: listen.port };
  return listen;
}

/** Tries the admin API first (it reports outcomes), then the pid file; names both when neither answers. */
async function locate(target: Target): Promise<Found> {
  const looked: string[] = [];
  if (target.admin !== undefined) {
    const where = `admin endpoint ${formatHostPort(target.admin.host, target.admin.port)}`;
    const answer = await call(target, 'GET', '/api/stats').catch((error: NodeJS.ErrnoException) => error);
    if (answer instanceof Error) looked.push(`nothing answers on the ${where} (${answer.code ?? answer.message})`);
    else if (answer.status === 401)
      throw new ControlFailure(`the ${where} refused the request: missing or wrong bearer token (give --admin-token, or admin.token in --config)`, EXIT.failed);
    else if (answer.status !== 200) looked.push(`the ${where} answered ${answer.status} to GET /api/stats: is it a tcpproxy?`);
    else return { via: 'admin', admin: target.admin, stats: JSON.parse(answer.body) as StatsSnapshot };
  }
  if (target.pidFile !== undefined) {
    const state = inspectPidFile(target.pidFile);
    switch (state.kind) {
      case 'running':
        return { via: 'pid', pid: state.pid, pidFile: target.pidFile };
      case 'missing':
        looked.push(`pid file ${target.pidFile} does not exist`);
        break;
      case 'stale':
        looked.push(`pid file ${target.pidFile} is stale: pid ${state.pid}: ${state.why}`);
        break;
      case 'unreadable':
        looked.push(`pid file ${target.pidFile} is unreadable (${state.error})`);
        break;
    }
  }
  throw new ControlFailure(`no running instance found: ${looked.join('; ')}`, EXIT.notRunning);
}

type Out = (human: string, json: unknown) => void;

function status(found: Found, out: Out): number {
  if (found.via === 'pid') {
    const since = startedAt(found.pidFile);
    out(
      `tcpproxy is running: pid ${found.pid} (pid file ${found.pidFile})${since ? `, up ${formatUptime((Date.now() - since) / 1000)}` : ''}\n` +
        '  (listeners and connections: give --admin, or set admin.listen, to see them)',
      { ok: true, running: true, pid: found.pid, pid_file: found.pidFile, ...(since && { uptime_s: Math.round((Date.now() - since) / 1000) }) },
    );
    return EXIT.ok;
  }
  const stats = found.stats;
  const active = stats.listeners.reduce((sum, listener) => sum + listener.active, 0);
  const lines = [
    `tcpproxy ${stats.version ?? ''} is running: pid ${stats.pid ?? '?'}, up ${formatUptime(stats.uptime_s ?? 0)}` +
      (stats.workers !== undefined ? `, ${stats.workers} workers (pids ${(stats.worker_pids ?? []).join(', ')})` : ''),
    `  active connections: ${active}`,
    ...stats.listeners.map((listener) => {
      const bound = stats.listening?.find((entry) => entry.name === listener.name);
      const address = bound ? formatHostPort(bound.address, bound.port) : '?';
      return `  listener ${listener.name} on ${address}: ${listener.active} active, ${listener.connections_total} total`;
    }),
  ];
  out(lines.join('\n'), { ok: true, running: true, admin: formatHostPort(found.admin.host, found.admin.port), ...stats });
  return EXIT.ok;
}

async function reload(found: Found, target: Target, out: Out): Promise<number> {
  if (found.via === 'pid') {
    signal(found.pid, 'SIGHUP');
    out(`sent SIGHUP to pid ${found.pid}: the proxy's log says whether the new config was taken`, {
      ok: true,
      action: 'reload',
      pid: found.pid,
      signal: 'SIGHUP',
    });
    return EXIT.ok;
  }
  const answer = await call(target, 'POST', '/api/reload');
  const result = parseJson(answer.body) as { ok?: boolean; error?: string };
  if (answer.status !== 200 || result.ok !== true) {
    throw new ControlFailure(`reload refused, the running configuration is kept: ${result.error ?? `HTTP ${answer.status}`}`, EXIT.failed);
  }
  out(`reloaded (pid ${found.stats.pid ?? '?'})`, { ok: true, action: 'reload', pid: found.stats.pid });
  return EXIT.ok;
}

async function stop(found: Found, target: Target, out: Out): Promise<number> {
  const started = Date.now();
  let pid: number | undefined;
  if (found.via === 'pid') {
    pid = found.pid;
    signal(pid, 'SIGTERM');
  } else {
    const answer = await call(target, 'POST', '/api/stop');
    if (answer.status !== 202) throw new ControlFailure(`stop refused: HTTP ${answer.status} ${answer.body.trim()}`, EXIT.failed);
    pid = (parseJson(answer.body) as { pid?: number }).pid;
  }
  const gone =
    pid !== undefined && (found.via === 'pid' || isLoopback(found.admin.host))
      ? () => !processAlive(pid)
      : // A remote instance: its admin endpoint is the last thing it closes before exiting.
        async () =>
          await call(target, 'GET', '/healthz').then(
            () => false,
            () => true,
          );
  const deadline = started + target.stopWaitMs;
  while (!(await gone())) {
    if (Date.now() >= deadline) {
      throw new ControlFailure(
        `pid ${pid ?? '?'} is still running ${Math.round(target.stopWaitMs / 1000)}s after the stop request (connections still draining?); run stop again later, or send a second SIGTERM to close them now`,
        EXIT.failed,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const seconds = (Date.now() - started) / 1000;
  out(`stopped (pid ${pid ?? '?'}) after ${seconds.toFixed(1)}s`, { ok: true, action: 'stop', pid, seconds });
  return EXIT.ok;
}

async function upgrade(found: Found, target: Target, out: Out): Promise<number> {
  if (found.via === 'pid') {
    signal(found.pid, 'SIGUSR2');
    out(`sent SIGUSR2 to pid ${found.pid}: the workers are replaced one by one (the proxy's log follows it)`, {
      ok: true,
      action: 'upgrade',
      pid: found.pid,
      signal: 'SIGUSR2',
    });
    return EXIT.ok;
  }
  const answer = await call(target, 'POST', '/api/upgrade', 10 * 60_000);
  const result = parseJson(answer.body) as UpgradeResult & { error?: string };
  if (answer.status !== 200 || !result.ok) throw new ControlFailure(`upgrade failed: ${result.error ?? `HTTP ${answer.status}`}`, EXIT.failed);
  out(
    `upgraded: ${result.replaced.length} workers replaced (${result.replaced.map((r) => `${r.old_pid} -> ${r.new_pid}`).join(', ')}); the old ones drain within shutdown_timeout`,
    { action: 'upgrade', ...result },
  );
  return EXIT.ok;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new ControlFailure(`no running instance found: pid ${pid} exited just now`, EXIT.notRunning);
    throw new ControlFailure(`cannot signal pid ${pid}: ${code === 'EPERM' ? "permission denied (run as the proxy's user or root)" : code}`, EXIT.failed);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** Exited but not yet reaped by its parent: it still answers signal 0, yet it is gone. */
function isZombie(pid: number): boolean {
  try {
    // "PID (comm) STATE ...": comm may hold spaces and parentheses, so read after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false; // no /proc, or already reaped
  }
}

/** The pid file is written once at start: its time is when the instance came up. */
function startedAt(pidFile: string): number | undefined {
  try {
    return statSync(pidFile).mtimeMs;
  } catch {
    return undefined;
  }
}

function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

interface HttpAnswer {
  status: number;
  body: string;
}

/** One admin API request (no keep-alive, bounded in time); rejects with the socket error when nothing answers. */
function call(target: Target, method: string, path: string, timeoutMs = 30_000): Promise<HttpAnswer> {
  const { host, port } = target.admin!;
  const headers: Record<string, string> = target.token === undefined ? {} : { Authorization: `Bearer ${target.token}` };
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new TcpProxyError('ETIMEDOUT', `no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end();
  });
}
