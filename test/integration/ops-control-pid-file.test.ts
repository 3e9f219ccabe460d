/**
 * The control commands by pid file alone (signals): reload by SIGHUP, stop by SIGTERM with its
 * bounded wait, a stale pid file reported and replaced, a second instance on the same pid file
 * refused, and the usage errors (exit 2). The admin API side is ops-control.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { ConfigFile, roundTrip, spawnProxy } from '../helpers/ops.js';
import { runBin } from '../helpers/repo.js';
import { connect } from '../helpers/sockets.js';

/** A pid that certainly runs no tcpproxy: a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

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
