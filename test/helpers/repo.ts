/** The repository the tests run from, bin/tcpproxy run as users run it (a child process), config files for it. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  // This file runs from test/helpers under tsx, or from dist/test/helpers when compiled.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('package.json not found above the test helpers');
    dir = dirname(dir);
  }
  return dir;
}

export const REPO_ROOT = findRoot();

export interface BinResult {
  /** null when it had to be killed after `timeoutMs`. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/tcpproxy args...` to its exit (killed after `timeoutMs`). */
export async function runBin(args: readonly string[], timeoutMs = 60_000): Promise<BinResult> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'tcpproxy'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': only then has all of stdout and stderr been read.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Writes `text` as `name` in a new temporary folder (relative paths in it resolve there). */
export async function configFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-cli-'));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}
