/**
 * What a new user met (#12 item 7): a security flag dropped with --config, a busy admin
 * address answered with a stack trace, a broken stdout wedging the process, and a busy data
 * port followed by a bogus accept_error. bin/tcpproxy in a child process each time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../admin/http-client.js';
import { BIN, ConfigFile } from '../helpers/ops.js';

/**
 * How long a process that should exit on its own may take before the test calls it wedged
 * (generous: a loaded CI machine can take seconds just to start node; a wedged one never exits).
 */
const EXIT_BOUND_MS = 60_000;

/** Resolves with the exit code, or null if the process was still running after `ms` (then SIGKILLs it). */
async function exitWithin(child: ChildProcess, ms: number): Promise<number | null | 'wedged'> {
  if (child.exitCode !== null) return child.exitCode;
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return signal === 'SIGKILL' ? 'wedged' : code;
}

/**
 * `tcpproxy ... 2>&1 | head -3`: a reader child that prints the first `lines` lines it gets
 * (so that the test can read them) and exits, leaving the proxy's stdout a broken pipe.
 */
function spawnBehindHead(args: string[], lines = 3) {
  const head = spawn(
    process.execPath,
    [
      '-e',
      `let n=0,b='';process.stdin.on('data',c=>{b+=c;let i;while((i=b.indexOf('\\n'))>=0){process.stdout.write(b.slice(0,i+1));b=b.slice(i+1);if(++n>=${lines})process.exit(0)}})`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const proxy = spawn(process.execPath, [BIN, ...args, '--log-format', 'json'], { stdio: ['ignore', head.stdin, head.stdin] });
  // Only the reader may hold the read end, and only the proxy the write end: when the reader exits, the pipe is broken.
  head.stdin.destroy();
  let printed = '';
  head.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const headExited = once(head, 'exit');
  return { proxy, headExited, printed: () => printed };
}

/** Runs bin/tcpproxy until it exits (or is called wedged): its exit code and output. */
async function runToExit(args: string[]): Promise<{ code: number | null | 'wedged'; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = once(child, 'close'); // after 'exit', once the output is all read
  const code = await exitWithin(child, EXIT_BOUND_MS);
  await closed;
  return { code, stdout, stderr };
}

/** Starts bin/tcpproxy and resolves with its admin port once it has announced the endpoint (however long a loaded machine takes). */
async function startWithAdmin(args: string[]): Promise<{ child: ChildProcess; adminPort: number }> {
  const child = spawn(process.execPath, [BIN, ...args, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buffered = '';
  const adminPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`exited ${code} during startup`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /"event":"admin_listening".*?"port":(\d+)/.exec(buffered);
      if (match) resolve(Number(match[1]));
    });
  });
  return { child, adminPort };
}

describe('startup failures a new user met', { timeout: 300_000 }, () => {
  let blocker: net.Server;
  let busyPort: number;
  const configs: ConfigFile[] = [];
  const config = async (value: unknown): Promise<ConfigFile> => {
    const file = await ConfigFile.create(value);
    configs.push(file);
    return file;
  };
  const listener = (name: string) => ({ name, listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'] });

  before(async () => {
    blocker = net.createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    busyPort = (blocker.address() as net.AddressInfo).port;
  });
  after(async () => {
    blocker.close();
    for (const file of configs) await file.remove();
  });

  it('--admin-token with --config is applied: the admin API wants the token', async () => {
    // Before the fix the flag was parsed and dropped: /api/stats answered 200 to anyone.
    const file = await config({ listeners: [listener('main')] });
    const proxy = await startWithAdmin(['--config', file.path, '--admin', '127.0.0.1:0', '--admin-token', 's3cret']);
    try {
      const port = proxy.adminPort;
      assert.equal((await request(port, 'GET', '/api/stats')).status, 401);
      assert.equal((await request(port, 'GET', '/api/stats', { headers: { Authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await request(port, 'GET', '/api/stats', { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
    } finally {
      proxy.child.kill('SIGKILL');
    }
  });

  it('--admin-token overrides admin.token from the file', async () => {
    const file = await config({ admin: { listen: '127.0.0.1:0', token: 'from-file' }, listeners: [listener('main')] });
    const proxy = await startWithAdmin(['--config', file.path, '--admin-token', 'from-flag']);
    try {
      const port = proxy.adminPort;
      assert.equal((await request(port, 'GET', '/api/stats', { headers: { Authorization: 'Bearer from-file' } })).status, 401);
      assert.equal((await request(port, 'GET', '/api/stats', { headers: { Authorization: 'Bearer from-flag' } })).status, 200);
    } finally {
      proxy.child.kill('SIGKILL');
    }
  });

  it('a busy admin address: exit 1, one line naming it, and no "listening" announced', async () => {
    const file = await config({ admin: { listen: `127.0.0.1:${busyPort}` }, listeners: [listener('main')] });
    const { code, stdout, stderr } = await runToExit(['--config', file.path]);
    assert.equal(code, 1);
    assert.equal(stderr, `tcpproxy: admin: cannot listen on 127.0.0.1:${busyPort}: EADDRINUSE (address already in use)\n`);
    assert.doesNotMatch(stdout, /"event":"(listening|admin_listening)"/);
  });

  it('a busy admin address with output piped into a reader that exits (`2>&1 | head -3`): still exits 1', async () => {
    // Before the fix this process never exited (a stack trace filled head's 3 lines, then
    // pino's exit flush looped on EPIPE) and ignored SIGTERM.
    const file = await config({ admin: { listen: `127.0.0.1:${busyPort}` }, listeners: [listener('a'), listener('b')] });
    const { proxy, headExited } = spawnBehindHead(['--config', file.path]);
    await headExited.catch(() => undefined);
    assert.equal(await exitWithin(proxy, EXIT_BOUND_MS), 1);
  });

  /** Three listeners and the admin endpoint: four lines, so the reader exits after three and the rest meet a broken pipe. */
  const startBehindHead = async () => {
    const file = await config({ admin: { listen: '127.0.0.1:0' }, listeners: [listener('a'), listener('b'), listener('c')] });
    const run = spawnBehindHead(['--config', file.path]);
    await run.headExited;
    const listening = run
      .printed()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; port: number })
      .filter((line) => line.event === 'listening');
    assert.ok(listening.length > 0, run.printed());
    return { proxy: run.proxy, port: listening[0]!.port };
  };

  it('SIGTERM stops a proxy whose stdout reader has gone', async () => {
    // The shutdown lines are the first to meet the broken pipe, at exit: before the fix the
    // exit flush retried EPIPE forever and the process ignored SIGTERM from then on.
    const { proxy } = await startBehindHead();
    try {
      proxy.kill('SIGTERM');
      assert.equal(await exitWithin(proxy, EXIT_BOUND_MS), 0);
    } finally {
      proxy.kill('SIGKILL');
    }
  });

  it('a proxy whose stdout reader has gone keeps serving, then stops on SIGTERM', async () => {
    const { proxy, port } = await startBehindHead();
    try {
      // Each connection is accepted and logged (upstream port 9 refuses), the log going nowhere.
      for (let i = 0; i < 5; i++) {
        const client = net.connect(port, '127.0.0.1');
        client.on('error', () => undefined);
        await once(client, 'close');
      }
      proxy.kill('SIGTERM');
      assert.equal(await exitWithin(proxy, EXIT_BOUND_MS), 0);
    } finally {
      proxy.kill('SIGKILL');
    }
  });

  it('a busy data port: exit 1 with one line, and no accept_error', async () => {
    const file = await config({ listeners: [{ ...listener('main'), listen: `127.0.0.1:${busyPort}` }] });
    const { code, stdout, stderr } = await runToExit(['--config', file.path]);
    assert.equal(code, 1);
    assert.equal(stderr, `tcpproxy: listener "main": cannot listen on 127.0.0.1:${busyPort}: EADDRINUSE (address already in use)\n`);
    assert.equal(stdout, '', 'nothing is logged for a listener that never listened');
  });
});
