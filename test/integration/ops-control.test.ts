/**
 * `tcpproxy reload|stop|status|upgrade` end to end: a real proxy process found through its
 * admin API (with a token) or its pid file, each action checked on the proxy itself, the
 * exit codes when nothing runs (1), for usage errors (2) and for refused actions (3), and
 * the pid file's life: written after the binds, removed at exit, stale ones detected.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, startEchoServer, type TestServer } from '../helpers/servers.js';
import { AdminClient, ConfigFile, roundTrip, spawnProxy, type ProxyProcess, type Stats } from '../helpers/ops.js';
import { runBin } from '../helpers/repo.js';

const TOKEN = 'control-test-token';

/** A pid that certainly runs no tcpproxy: a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

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
    await file.write(config({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }, { name: 'second', listen: '127.0.0.1:0', upstreams: [echo.address] }] }));
    const ok = await runBin(['reload', '--config', file.path]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^reloaded/);
    const stats = await new AdminClient(adminPort, TOKEN).json<Stats>('/api/stats');
    assert.deepEqual(stats.listeners.map((l) => l.name).sort(), ['main', 'second']);

    // Valid for the schema (so the command sends it) but not loadable: a certificate that does not exist.
    await file.write(config({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address], tls: { cert: 'missing.pem', key: 'missing.pem' } }] }));
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
    await proxy.waitForLog((line) => line.signal === 'SIGUSR2' && /needs --workers/.test(String(line.msg)));
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
    assert.match(result.stderr, new RegExp(`no running instance found: nothing answers on the admin endpoint 127\\.0\\.0\\.1:${adminPort} \\(ECONNREFUSED\\); pid file ${pidFile} does not exist`));
    for (const action of ['reload', 'stop', 'upgrade']) {
      assert.equal((await runBin([action, '--pid-file', pidFile])).code, 1, action);
    }
  });
});

describe('control commands by pid file only (signals)', { timeout: 120_000 }, () => {
  let echo: TestServer;
  let file: ConfigFile;
  let pidFile: string;

  before(async () => {
    echo = await startEchoServer();
    file = await ConfigFile.create({});
    pidFile = join(file.dir, 'tcpproxy.pid');
  });
  after(async () => {
    await file.remove();
    await echo.close();
  });

  const config = () => ({ pid_file: pidFile, shutdown_timeout: '5s', listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }] });

  it('a stale pid file is reported as such, then replaced at start', async () => {
    const stale = await deadPid();
    writeFileSync(pidFile, `${stale}\n`);
    const status = await runBin(['status', '--pid-file', pidFile]);
    assert.equal(status.code, 1);
    assert.match(status.stderr, new RegExp(`no running instance found: pid file ${pidFile} is stale: pid ${stale}`));

    await file.write(config());
    const proxy = await spawnProxy(file);
    try {
      assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.child.pid}\n`);
    } finally {
      await proxy.kill();
    }
  });

  it('reload sends SIGHUP, stop sends SIGTERM and waits; a second instance on the same pid file is refused', async () => {
    await file.write(config());
    const proxy = await spawnProxy(file);
    try {
      const second = await runBin(['--config', file.path]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`pid_file ${pidFile}: another tcpproxy is running with pid ${proxy.child.pid}`));
      assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.child.pid}\n`, 'the refused instance left the pid file alone');

      const reload = await runBin(['reload', '--pid-file', pidFile]);
      assert.equal(reload.code, 0, reload.stderr);
      assert.match(reload.stdout, new RegExp(`sent SIGHUP to pid ${proxy.child.pid}`));
      await proxy.waitForLog((line) => line.event === 'reload' && line.ok === true);

      const client = await connect(proxy.port);
      await roundTrip(client, 'still here');
      const stopping = runBin(['stop', '--pid-file', pidFile, '--timeout', '30s']);
      // A connection open at stop time holds the drain; ending it lets the proxy exit.
      await proxy.waitForLog((line) => line.event === 'shutdown');
      client.end();
      client.resume();
      const stop = await stopping;
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(await proxy.exited, 0);
      assert.equal(existsSync(pidFile), false);
    } finally {
      await proxy.kill();
    }
  });

  it('stop gives up after --timeout with exit 3 while connections drain', async () => {
    await file.write({ ...config(), shutdown_timeout: '1m' });
    const proxy = await spawnProxy(file);
    const client = await connect(proxy.port);
    try {
      await roundTrip(client, 'held');
      const stop = await runBin(['stop', '--pid-file', pidFile, '--timeout', '300ms']);
      assert.equal(stop.code, 3);
      assert.match(stop.stderr, new RegExp(`pid ${proxy.child.pid} is still running`));
      assert.equal(proxy.child.exitCode, null);
    } finally {
      client.destroy();
      await proxy.kill();
    }
  });

  it('usage errors are exit 2', async () => {
    const nowhere = await runBin(['stop']);
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.stderr, /say where the running instance is/);
    const foreign = await runBin(['status', '--pid-file', pidFile, '--listen', '127.0.0.1:1']);
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /--listen is not an option of "tcpproxy status"/);
    const neither = await ConfigFile.create({ listeners: [{ listen: '127.0.0.1:0', upstreams: [echo.address] }] });
    try {
      const result = await runBin(['status', '--config', neither.path]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /has neither admin\.listen nor pid_file/);
    } finally {
      await neither.remove();
    }
  });
});
