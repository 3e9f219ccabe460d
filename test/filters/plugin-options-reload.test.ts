/**
 * A reload whose plugin options the plugin's validateOptions rejects is refused (400 naming
 * the key) and the running config, with its plugin, keeps serving: a real CLI process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigFile, spawnProxy } from '../helpers/ops.js';
import { REPO_ROOT } from '../helpers/repo.js';
import { startEchoServer } from '../helpers/servers.js';
import { connect, readToEnd } from '../helpers/sockets.js';

const PLUGIN = join(REPO_ROOT, 'examples/plugins/uppercase.js');

function config(upstream: string, mode: string) {
  return {
    admin: { listen: '127.0.0.1:0' },
    shutdown_timeout: '5s',
    listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [upstream], filters: [{ module: PLUGIN, direction: 'to_client', options: { mode } }] }],
  };
}

async function echoed(port: number, text: string): Promise<string> {
  const client = await connect(port);
  const reply = readToEnd(client);
  client.end(text);
  return (await reply).toString();
}

test('a reload with plugin options its validator rejects keeps the running config', { timeout: 60_000 }, async () => {
  const echo = await startEchoServer();
  const file = await ConfigFile.create(config(echo.address, 'lower'));
  const proxy = await spawnProxy(file, { admin: true });
  try {
    assert.equal(await echoed(proxy.port, 'Hello'), 'hello');
    await file.write(config(echo.address, 'sideways'));
    const reload = await proxy.admin!.call('POST', '/api/reload');
    assert.equal(reload.status, 400, reload.body);
    assert.match(reload.body, /listeners\[0\]\.filters\[0\]\.options\.mode: expected \\?"upper\\?" or \\?"lower\\?", got \\?"sideways\\?"/);
    assert.equal(await echoed(proxy.port, 'Still Here'), 'still here', 'the old plugin options still apply');
  } finally {
    await proxy.kill();
    await file.remove();
    await echo.close();
  }
});
