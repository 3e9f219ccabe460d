/**
 * `tcpproxy reload|stop|status|upgrade` end to end: a real proxy process found through its
 * admin API (with a token) and its pid file, each action checked on the proxy itself, the
 * exit codes when nothing runs (1) and for refused actions (3), and the pid file written
 * after the binds and removed at exit. Signals by pid file alone: ops-control-pid-file.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { AdminClient, ConfigFile, roundTrip, spawnProxy, type ProxyProcess, type Stats } from '../helpers/ops.js';
import { runBin } from '../helpers/repo.js';
import { connect } from '../helpers/sockets.js';

const TOKEN = 'control-test-token';

describe('control commands through the admin API and the pid file', { timeout: 120_000 }, () => {
  let echo: TestServer;
  let file: ConfigFile;
  let proxy: ProxyProcess;
  let pidFile: string;
  let adminPort: number;
  const config = (extra: Record<string, unknown> = {}) => ({
    admin: { listen: `127.0.0.1:${adminPort}`, token: TOKEN },
    pid_file: 'run/tcpproxy.pid',
    shutdown_timeout: '5s',
    listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }],
    ...extra,
  });

  before(async () => {
    echo = await startEchoServer();
    // The control commands find the admin endpoint from the config file: it needs a fixed port.
    const probe = await startEchoServer();
    adminPort = probe.port;
    await probe.close();
    file = await ConfigFile.create({});
    pidFile = join(file.dir, 'run', 'tcpproxy.pid');
    await file.write(config());
    proxy = await spawnProxy(file, { admin: true });
  });
  after(async () => {
    await proxy?.kill();
    await file?.remove();
    await echo.close();
  });

  it('the pid file names the running process once it listens', () => {
    assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.child.pid}\n`);
  });

  it('status prints pid, uptime, listeners and active connections, and --json the document', async () => {
    const client = await connect(proxy.port);
    await roundTrip(client, 'hello');
    const human = await runBin(['status', '--config', file.path]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`is running: pid ${proxy.child.pid}, up \\d+s`));
    assert.match(human.stdout, /active connections: 1/);
    assert.match(human.stdout, new RegExp(`listener main on 127\\.0\\.0\\.1:${proxy.port}: 1 active, 1 total`));
    const json = await runBin(['status', '--admin', `127.0.0.1:${adminPort}`, '--admin-token', TOKEN, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const stats = JSON.parse(json.stdout) as Stats & { running: boolean };
    assert.equal(stats.running, true);
    assert.equal(stats.pid, proxy.child.pid);
    assert.deepEqual(stats.listening, [{ name: 'main', address: '127.0.0.1', port: proxy.port }]);
    client.destroy();
  });

  it('a wrong token is a refused action (exit 3), not "not running"', async () => {
    const result = await runBin(['status', '--admin', `127.0.0.1:${adminPort}`, '--admin-token', 'wrong']);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /refused the request: missing or wrong bearer token/);
  });

  it('status by pid file alone says what it can', async () => {
    const result = await runBin(['status', '--pid-file', pidFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`running: pid ${proxy.child.pid} \\(pid file`));
  });

  it('reload applies the file; a config the proxy refuses is exit 3 with its reason', async () => {
    await file.write(
      config({
        listeners: [
          { name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] },
          { name: 'second', listen: '127.0.0.1:0', upstreams: [echo.address] },
        ],
      }),
    );
    const ok = await runBin(['reload', '--config', file.path]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^reloaded/);
    const stats = await new AdminClient(adminPort, TOKEN).json<Stats>('/api/stats');
    assert.deepEqual(stats.listeners.map((l) => l.name).sort(), ['main', 'second']);

    // Valid for the schema (so the command sends it) but not loadable: a certificate that does not exist.
    await file.write(
      config({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address], tls: { cert: 'missing.pem', key: 'missing.pem' } }] }),
    );
    const refused = await runBin(['reload', '--admin', `127.0.0.1:${adminPort}`, '--admin-token', TOKEN]);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /reload refused, the running configuration is kept: .*missing\.pem/);

    await file.write('listeners: [');
    const invalid = await runBin(['reload', '--config', file.path]);
    assert.equal(invalid.code, 2, 'a config file that does not load is a usage/config error: nothing is sent');
    await file.write(config());
    assert.equal((await runBin(['reload', '--config', file.path])).code, 0);
  });

  it('upgrade without --workers is refused (exit 3), and SIGUSR2 only logs why', async () => {
    const result = await runBin(['upgrade', '--config', file.path]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /upgrade needs --workers/);
    proxy.child.kill('SIGUSR2');
    await proxy.waitForLog((line) => line.signal === 'SIGUSR2' && String(line.msg).includes('needs --workers'));
    assert.equal(proxy.child.exitCode, null, 'still running');
  });

  it('stop waits for the process to exit; it exits 0 and removes its pid file', async () => {
    const result = await runBin(['stop', '--config', file.path]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^stopped \\(pid ${proxy.child.pid}\\) after`));
    assert.equal(await proxy.exited, 0);
    assert.equal(existsSync(pidFile), false);
  });

  it('with nothing running: exit 1 naming every place looked', async () => {
    const result = await runBin(['status', '--config', file.path]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `no running instance found: nothing answers on the admin endpoint 127\\.0\\.0\\.1:${adminPort} \\(ECONNREFUSED\\); pid file ${pidFile} does not exist`,
      ),
    );
    for (const action of ['reload', 'stop', 'upgrade']) {
      assert.equal((await runBin([action, '--pid-file', pidFile])).code, 1, action);
    }
  });
});
