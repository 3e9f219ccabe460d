/**
 * The fallback: with TCPPROXY_RAW_HANDLES=0 (as when Node's internals are missing) the plain
 * path runs on net.Socket as before. The bridge suites run again in a child process with the
 * switch off, so that both ways stay covered (the other suites run on the raw path).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
// Without the runner's NODE_TEST_CONTEXT: the child is a test run of its own, not a subtest.
const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env;
const env = { ...parentEnv, TCPPROXY_RAW_HANDLES: '0' };

async function run(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

describe('fallback to net.Socket (TCPPROXY_RAW_HANDLES=0)', { timeout: 300_000 }, () => {
  it('switches the raw handles off', async () => {
    const probe = `import(${JSON.stringify(here('../../src/proxy/tcp-handle.js'))}).then((m) => process.exit(m.tcpHandles === undefined ? 0 : 1))`;
    const { code } = await run(['--input-type=module', '-e', probe]);
    assert.equal(code, 0);
  });

  it('passes the bridge suites on net.Socket', async () => {
    const { code, output } = await run(['--test', here('bridge.test.js'), here('tls-and-proxy-protocol.test.js')]);
    assert.equal(code, 0, output.slice(-4000));
    assert.match(output, /# fail 0/);
  });
});
