/** The command line as users run it: bin/tcpproxy in a child process. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect, readAll, startEchoServer } from '../helpers/servers.js';

const BIN = new URL('../../../bin/tcpproxy', import.meta.url).pathname;

interface Run { code: number | null; stdout: string; stderr: string }

async function run(args: string[], timeoutMs = 10_000): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function configFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-cli-'));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

/** Starts the proxy, waits for its "listening" log line, returns the child and the port. */
async function startBin(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (line.event === 'listening') resolve(line.port as number);
      }
    });
  });
  return { child, lines, port: await listening };
}

describe('cli', { timeout: 60_000 }, () => {
  it('--help and --version exit 0', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--upstream HOST:PORT/);
    const version = await run(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('usage errors exit 2 naming the option', async () => {
    const unknown = await run(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--bogus/);
    const badDuration = await run(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--idle-timeout', 'soon']);
    assert.equal(badDuration.code, 2);
    assert.match(badDuration.stderr, /--idle-timeout: expected a duration/);
    const badUpstream = await run(['--listen', '127.0.0.1:0', '--upstream', '10.0.0.1']);
    assert.equal(badUpstream.code, 2);
    assert.match(badUpstream.stderr, /--upstream \(#1\): expected HOST:PORT, got "10.0.0.1"/);
    const arity = await run(['127.0.0.1', '8080', 'x']);
    assert.equal(arity.code, 2);
  });

  it('usage errors name what was given, in the form it was given, and suggest the nearest flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--idle-timeout', '5', 'minutes'], /^tcpproxy: --idle-timeout: expected a duration like 5m, got "5" followed by an extra argument "minutes"$/m],
      [
        ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--idle-timeout', '5', 'minutes'],
        /^tcpproxy: --idle-timeout: expected a duration like 5m, got "5" followed by an extra argument "minutes"$/m,
      ],
      [['127.0.0.1', '808O', '127.0.0.1', '9000'], /^tcpproxy: <local-port>: expected a port number, got "808O"$/m],
      [['127.0.0.1', '8080', '127.0.0.1', '9x'], /^tcpproxy: <forward-port>: expected a port number from 1 to 65535, got "9x"$/m],
      [['bad!host', '8080', '127.0.0.1', '9000'], /^tcpproxy: <local-host>: invalid host in "bad!host:8080"$/m],
      [['127.0.0.1', '8080', 'x'], /^tcpproxy: expected <local-host> <local-port> <forward-host> <forward-port>, got 3 arguments: "127.0.0.1" "8080" "x"$/m],
      [['--upstrem', '127.0.0.1:1'], /^tcpproxy: unknown option --upstrem \(did you mean --upstream\?\)$/m],
      [['--frobnicate'], /^tcpproxy: unknown option --frobnicate$/m],
      [['demoo'], /^tcpproxy: unknown command "demoo" \(did you mean demo\?\)$/m],
      [['--listen'], /^tcpproxy: --listen: expected HOST:PORT, got nothing$/m],
      [['--listen', '--upstream', '127.0.0.1:1'], /^tcpproxy: --listen: expected HOST:PORT, got nothing \(the next argument, --upstream, is an option\)$/m],
      [['--check=yes'], /^tcpproxy: --check takes no value, got "yes"$/m],
    ];
    for (const [args, expected] of cases) {
      const result = await run(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, expected, args.join(' '));
      if (!args.includes('--listen')) assert.doesNotMatch(result.stderr, /--listen/, `${args.join(' ')}: no flag that was not given is blamed`);
    }
  });

  it('unknown config keys get the nearest valid key, exit 2', async () => {
    const file = await configFile('typo.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstream: [127.0.0.1:9000]\n');
    const result = await run(['--config', file, '--check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^tcpproxy: listeners\[0\]\.upstream: unknown key \(did you mean upstreams\?\)$/m);
  });

  it('--check validates a config: ok exits 0, errors exit 2 with the key path', async () => {
    const good = await configFile('good.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9000]\n');
    const ok = await run(['--config', good, '--check']);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout.trim(), 'ok');
    const bad = await configFile('bad.yaml', [
      'listeners:',
      '  - listen: 127.0.0.1:0',
      '    upstreams: [127.0.0.1:9000, "10.0.0.1"]',
      '    conect_timeout: 5s',
      '    idle_timeout: forever',
    ].join('\n'));
    const result = await run(['--config', bad, '--check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listeners\[0\]\.upstreams\[1\]\.address: expected HOST:PORT, got "10.0.0.1"/);
    assert.match(result.stderr, /listeners\[0\]\.conect_timeout: unknown key/);
    assert.match(result.stderr, /listeners\[0\]\.idle_timeout: expected a duration/);
    const json = await configFile('c.json', '{"listeners": [{"listen": "127.0.0.1:0", "upstreams": []}]}');
    const jsonResult = await run(['--config', json, '--check']);
    assert.equal(jsonResult.code, 2);
    assert.match(jsonResult.stderr, /listeners\[0\]\.upstreams: at least one upstream/);
    const routes = await configFile('routes.yaml', [
      'listeners:',
      '  - listen: 127.0.0.1:0',
      '    upstreams: [127.0.0.1:9000]',
      '    routes:',
      '      - { sni: a.example, upstreams: [127.0.0.1:9001] }',
      '      - { sni: a.example, upstreams: [127.0.0.1:9002] }',
    ].join('\n'));
    const duplicate = await run(['--config', routes, '--check']);
    assert.equal(duplicate.code, 2);
    assert.match(duplicate.stderr, /listeners\[0\]\.routes\[1\]\.sni: "a\.example" is already routed by routes\[0\]/);
    const missing = await run(['--config', '/nonexistent/x.yaml', '--check']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read/);
  });

  it('a plugin that cannot be loaded exits 2 naming the key', async () => {
    const file = await configFile('plugin.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    filters: [{ module: ./missing.js }]\n');
    const result = await run(['--config', file, '--log-level', 'silent']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listeners\[0\]\.filters\[0\]: cannot load \.\/missing\.js/);
  });

  it('--check loads plugins and certificates too: a missing one exits 2 naming the key, without starting', async () => {
    const plugin = await configFile('plugin.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    filters: [{ module: ./missing.js }]\n');
    const missingPlugin = await run(['--config', plugin, '--check']);
    assert.equal(missingPlugin.code, 2);
    assert.match(missingPlugin.stderr, /listeners\[0\]\.filters\[0\]: cannot load \.\/missing\.js/);
    assert.equal(missingPlugin.stdout, '');
    const cert = await configFile('tls.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    tls: { cert: ./none.pem, key: ./none.key }\n');
    const missingCert = await run(['--config', cert, '--check']);
    assert.equal(missingCert.code, 2);
    assert.match(missingCert.stderr, /listeners\[0\]\.tls\.cert: /);
  });

  it('a port already in use exits 1 with a one-line message', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = await run(['127.0.0.1', String(port), '127.0.0.1', '9']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`));
    } finally {
      blocker.close();
    }
  });

  it('the 4-argument form proxies, and SIGTERM exits 0', async () => {
    const echo = await startEchoServer();
    const { child, port, lines } = await startBin(['127.0.0.1', '0', '127.0.0.1', String(echo.port)]);
    try {
      const client = await connect(port);
      const reply = readAll(client);
      client.end('round trip');
      assert.equal((await reply).toString(), 'round trip');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0);
      assert.ok(lines.some((l) => l.event === 'close' && l.bytes_from_client === 10));
    } finally {
      child.kill('SIGKILL');
      await echo.close();
    }
  });
});
