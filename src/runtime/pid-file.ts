/**
 * The pid file (`pid_file`, `--pid-file`): how `tcpproxy stop|reload|status|upgrade`, a
 * logrotate script or a service manager find the running process. It holds the pid of the
 * process that owns the listeners (the primary with --workers) and one newline, is written
 * (with its directory, if missing) once every listener is bound, and removed at exit, only if it still names this process.
 *
 * A pid file left by a process that died without removing it (SIGKILL, power loss) is
 * "stale": its pid is not running, or is now some other program (pids are reused), which
 * on Linux /proc/<pid>/cmdline tells.
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TcpProxyError } from '../errors/errors.js';

export class PidFileError extends TcpProxyError {
  constructor(message: string) {
    super('pid_file', message);
  }
}

export type PidFileState =
  { kind: 'missing' } | { kind: 'unreadable'; error: string } | { kind: 'stale'; pid: number; why: string } | { kind: 'running'; pid: number };

/** What the pid file at `path` says about a running tcpproxy. */
export function inspectPidFile(path: string): PidFileState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { kind: 'missing' } : { kind: 'unreadable', error: code ?? (error as Error).message };
  }
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < 1) return { kind: 'unreadable', error: `not a pid: ${JSON.stringify(trimmed.slice(0, 40))}` };
  const pid = Number(trimmed);
  const why = notTcpproxy(pid);
  return why === undefined ? { kind: 'running', pid } : { kind: 'stale', pid, why };
}

/** Why `pid` is not a running tcpproxy, or undefined when it is one (as far as can be told). */
function notTcpproxy(pid: number): string | undefined {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user; it may well be ours (run as a service user).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return 'no such process';
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined; // no /proc (not Linux) or not readable: trust the signal probe
  }
  return cmdline.includes('tcpproxy') ? undefined : 'that pid is now another program';
}

/** Throws when the pid file names another running tcpproxy (a second instance with the same config). */
export function checkPidFileFree(path: string): void {
  const state = inspectPidFile(path);
  if (state.kind === 'running' && state.pid !== process.pid) {
    throw new PidFileError(`pid_file ${path}: another tcpproxy is running with pid ${state.pid}`);
  }
}

/**
 * Writes this process's pid, refusing when the file names another running tcpproxy (a
 * second instance started with the same config). A stale file is replaced. The write goes
 * through a temporary file and a rename, so a reader never sees a half-written pid.
 * Returns a remover for the exit path.
 */
export function writePidFile(path: string): () => void {
  checkPidFileFree(path);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(temporary, `${process.pid}\n`, { mode: 0o644 });
    renameSync(temporary, path);
  } catch (error) {
    throw new PidFileError(`pid_file ${path}: cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return () => {
    const now = inspectPidFile(path);
    // A newer instance may have taken the file over: only remove our own.
    if (now.kind === 'running' && now.pid !== process.pid) return;
    try {
      unlinkSync(path);
    } catch {
      // already gone: nothing to undo
    }
  };
}

/** Writes the pid file and removes it when the process exits, however it exits (short of SIGKILL). */
export function holdPidFile(path: string): void {
  const remove = writePidFile(path);
  process.once('exit', remove);
}
