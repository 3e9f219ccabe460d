/**
 * The V8 flags bin/tcpproxy sets before anything is loaded. The optimising compiler is off
 * while a command starts (loading the modules would have TurboFan compile Node's module
 * resolver, which is never used again) and back on once it has started: a proxy whose
 * optimiser stayed off would still pass every functional test, only slowly, so this checks it.
 * A probe given with --import reports, at exit, whether V8 optimises a function then.
 * The young generation stays at its 1 MiB semi-spaces unless the operator sizes it: a second
 * probe keeps 3 million objects alive across scavenges at exit and reports the nursery's size.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { BIN } from '../helpers/ops.js';
import { LogCollector } from '../helpers/log-collector.js';

/** V8's %GetOptimizationStatus bit for "optimised by TurboFan" (src/runtime/runtime.h, OptimizationStatus). */
const TURBOFANNED = 64;

let dir: string;
let probe: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tcpproxy-launcher-'));
  probe = join(dir, 'probe.mjs');
  // Natives syntax (--allow-natives-syntax) compiles a fresh function with TurboFan at once,
  // if V8 may use TurboFan at all: the status says whether it did.
  await writeFile(
    probe,
    [
      `import { writeFileSync } from 'node:fs';`,
      `process.on('exit', () => {`,
      `  const status = new Function('f', '%PrepareFunctionForOptimization(f); f(1); f(2); %OptimizeFunctionOnNextCall(f); f(3); return %GetOptimizationStatus(f);')(new Function('return function launcherProbe(x) { return x * 2 + 1; }')());`,
      `  writeFileSync(process.env.PROBE_REPORT, String(status));`,
      `});`,
    ].join('\n'),
  );
});
after(() => rm(dir, { recursive: true, force: true }));

/** Starts a proxy with `nodeFlags`, stops it once listening; its stdout lines (V8's traces too) and the probe's status at exit. */
async function startAndStop(nodeFlags: string[], name: string): Promise<{ lines: LogCollector['lines']; statusAtExit: number }> {
  const report = join(dir, `${name}.status`);
  const child = spawn(
    process.execPath,
    [...nodeFlags, '--allow-natives-syntax', '--import', pathToFileURL(probe).href, BIN, '127.0.0.1', '0', '127.0.0.1', '9'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PROBE_REPORT: report },
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const logs = new LogCollector({ keepUnparsed: true });
  child.stdout.on('data', (chunk: Buffer) => logs.feed(chunk.toString()));
  try {
    await logs.waitFor((line) => line.event === 'listening', 30_000);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
  return { lines: logs.lines, statusAtExit: Number(await readFile(report, 'utf8')) };
}

describe('bin/tcpproxy: the optimising compiler', () => {
  it('compiles nothing with TurboFan while starting, and optimises again once started', { timeout: 60_000 }, async () => {
    const { lines, statusAtExit } = await startAndStop(['--trace-opt'], 'default');
    // --trace-opt writes its lines to stdout (buffered by the C library: all of them are there
    // at exit, after the log lines). The probe's own compile at exit is in them: the trace was read.
    assert.ok(
      lines.some((line) => line.event === 'unparsed' && /launcherProbe.*TURBOFAN/.test(String(line.text))),
      'the probe function appears in the TurboFan trace',
    );
    const optimised = lines.filter(
      (line) =>
        line.event === 'unparsed' && /completed (optimizing|compiling).*TURBOFAN/.test(String(line.text)) && !String(line.text).includes('launcherProbe'),
    );
    assert.deepEqual(
      optimised.map((line) => line.text),
      [],
    );
    // The probe's function was compiled (the check can tell, and the optimiser is on).
    assert.ok((statusAtExit & TURBOFANNED) !== 0, `optimisation status at exit: ${statusAtExit}`);
  });

  it("leaves an operator's own optimiser flag alone (--no-opt stays off)", { timeout: 60_000 }, async () => {
    const { statusAtExit } = await startAndStop(['--no-opt'], 'no-opt');
    assert.equal(statusAtExit & TURBOFANNED, 0, `optimisation status at exit: ${statusAtExit}`);
  });
});

describe('bin/tcpproxy: the young generation', () => {
  /** new_space's size (both semi-spaces) after a run of survivors, for `tcpproxy --version` under `nodeFlags`. */
  async function nurseryBytes(nodeFlags: string[]): Promise<number> {
    const survivors = join(dir, 'survivors.mjs');
    await writeFile(
      survivors,
      [
        `import v8 from 'node:v8';`,
        `process.on('exit', () => {`,
        `  const kept = [];`,
        `  for (let i = 0; i < 3_000_000; i++) kept.push({ i });`,
        `  const nursery = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');`,
        `  process.stderr.write('NURSERY ' + nursery.space_size + ' ' + kept.length + '\\n');`,
        `});`,
      ].join('\n'),
    );
    const { stderr } = await promisify(execFile)(process.execPath, [...nodeFlags, '--import', pathToFileURL(survivors).href, BIN, '--version']);
    const match = /NURSERY (\d+)/.exec(stderr);
    assert.ok(match, stderr);
    return Number(match[1]);
  }

  it('stays at two 1 MiB semi-spaces however much survives', { timeout: 60_000 }, async () => {
    assert.equal(await nurseryBytes([]), 2 * 1024 * 1024);
  });

  it("grows to the operator's own --max-semi-space-size", { timeout: 60_000 }, async () => {
    assert.equal(await nurseryBytes(['--max-semi-space-size=8']), 2 * 8 * 1024 * 1024);
  });
});
