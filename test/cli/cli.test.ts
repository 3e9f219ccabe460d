/** The command line as users run it: bin/tcpproxy in a child process. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startEchoServer } from '../helpers/servers.js';
import { configFile, REPO_ROOT, runBin } from '../helpers/repo.js';
import { connect, readToEnd } from '../helpers/sockets.js';

const BIN = join(REPO_ROOT, 'bin', 'tcpproxy');

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

describe('cli', { timeout: 180_000 }, () => {
  it('--help and --version exit 0', async () => {
    const help = await runBin(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--upstream HOST:PORT/);
    const version = await runBin(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('usage errors exit 2 naming the option', async () => {
    const unknown = await runBin(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--bogus/);
    const badDuration = await runBin(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--idle-timeout', 'soon']);
    assert.equal(badDuration.code, 2);
    assert.match(badDuration.stderr, /--idle-timeout: expected a duration/);
    const badUpstream = await runBin(['--listen', '127.0.0.1:0', '--upstream', '10.0.0.1']);
    assert.equal(badUpstream.code, 2);
    assert.match(badUpstream.stderr, /--upstream \(#1\): expected HOST:PORT, got "10.0.0.1"/);
    const arity = await runBin(['127.0.0.1', '8080', 'x']);
    assert.equal(arity.code, 2);
  });

  it('--check validates a config: ok exits 0, errors exit 2 with the key path', async () => {
    const good = await configFile('good.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9000]\n');
    const ok = await runBin(['--config', good, '--check']);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout.trim(), 'ok');
    const bad = await configFile(
      'bad.yaml',
      ['listeners:', '  - listen: 127.0.0.1:0', '    upstreams: [127.0.0.1:9000, "10.0.0.1"]', '    conect_timeout: 5s', '    idle_timeout: forever'].join(
        '\n',
      ),
    );
    const result = await runBin(['--config', bad, '--check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listeners\[0\]\.upstreams\[1\]\.address: expected HOST:PORT, got "10.0.0.1"/);
    assert.match(result.stderr, /listeners\[0\]\.conect_timeout: unknown key/);
    assert.match(result.stderr, /listeners\[0\]\.idle_timeout: expected a duration/);
    const json = await configFile('c.json', '{"listeners": [{"listen": "127.0.0.1:0", "upstreams": []}]}');
    const jsonResult = await runBin(['--config', json, '--check']);
    assert.equal(jsonResult.code, 2);
    assert.match(jsonResult.stderr, /listeners\[0\]\.upstreams: at least one upstream/);
    const routes = await configFile(
      'routes.yaml',
      [
        'listeners:',
        '  - listen: 127.0.0.1:0',
        '    upstreams: [127.0.0.1:9000]',
        '    routes:',
        '      - { sni: a.example, upstreams: [127.0.0.1:9001] }',
        '      - { sni: a.example, upstreams: [127.0.0.1:9002] }',
      ].join('\n'),
    );
    const duplicate = await runBin(['--config', routes, '--check']);
    assert.equal(duplicate.code, 2);
    assert.match(duplicate.stderr, /listeners\[0\]\.routes\[1\]\.sni: "a\.example" is already routed by routes\[0\]/);
    const missing = await runBin(['--config', '/nonexistent/x.yaml', '--check']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read/);
  });

  it('a plugin that cannot be loaded exits 2 naming the key', async () => {
    const file = await configFile(
      'plugin.yaml',
      'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    filters: [{ module: ./missing.js }]\n',
    );
    const result = await runBin(['--config', file, '--log-level', 'silent']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listeners\[0\]\.filters\[0\]: cannot load \.\/missing\.js/);
  });

  it('--check loads plugins and certificates too: a missing one exits 2 naming the key, without starting', async () => {
    const plugin = await configFile(
      'plugin.yaml',
      'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    filters: [{ module: ./missing.js }]\n',
    );
    const missingPlugin = await runBin(['--config', plugin, '--check']);
    assert.equal(missingPlugin.code, 2);
    assert.match(missingPlugin.stderr, /listeners\[0\]\.filters\[0\]: cannot load \.\/missing\.js/);
    assert.equal(missingPlugin.stdout, '');
    const cert = await configFile(
      'tls.yaml',
      'listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    tls: { cert: ./none.pem, key: ./none.key }\n',
    );
    const missingCert = await runBin(['--config', cert, '--check']);
    assert.equal(missingCert.code, 2);
    assert.match(missingCert.stderr, /listeners\[0\]\.tls\.cert: /);
  });

  it('a port already in use exits 1 with a one-line message', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = await runBin(['127.0.0.1', String(port), '127.0.0.1', '9']);
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
      const reply = readToEnd(client);
      client.end('round trip');
      assert.equal((await reply).toString(), 'round trip');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'close')) as [number];
      assert.equal(code, 0);
      assert.ok(lines.some((l) => l.event === 'close' && l.bytes_from_client === 10));
    } finally {
      child.kill('SIGKILL');
      await echo.close();
    }
  });
});
