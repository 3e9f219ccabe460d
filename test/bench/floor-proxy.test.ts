/**
 * bench/floor-proxy.ts is a measuring stick: the README's conclusions about what Node can reach
 * rest on it doing a correct proxy's work. So it carries bytes intact both ways, carries a FIN
 * through while the other direction goes on, and closes both sides when they are done.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/repo.js';
import { startEchoServer, startServer, type TestServer } from '../helpers/servers.js';
import { closed, connect, readBytes, readToEnd, sha256 } from '../helpers/sockets.js';

const FLOOR = join(REPO_ROOT, 'dist', 'bench', 'floor-proxy.js');

async function startFloor(upstreamPort: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [FLOOR, '0', String(upstreamPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const match = /^ready (\d+)/.exec(line.toString());
  assert.ok(match, `floor-proxy said: ${line.toString()}`);
  return { child, port: Number(match[1]) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('bench/floor-proxy', { timeout: 30_000 }, () => {
  let echo: TestServer;
  let floor: { child: ChildProcess; port: number };
  before(async () => {
    echo = await startEchoServer();
    floor = await startFloor(echo.port);
  });
  after(async () => {
    await stop(floor.child);
    await echo.close();
  });

  it('carries 8 MiB to the upstream and back intact, then the FIN both ways', async () => {
    const payload = randomBytes(8 * 1024 * 1024);
    const client = await connect(floor.port);
    const back = readToEnd(client);
    client.end(payload);
    assert.equal(sha256(await back), sha256(payload));
    assert.equal((await closed(client)).error, undefined);
  });

  it('keeps the other direction open after the client half-closes', async () => {
    // An upstream that answers only after the client's FIN, then ends itself.
    const lateAnswer = await startServer((socket) => {
      socket.resume();
      socket.once('end', () => socket.end('answer after your FIN'));
    });
    const proxy = await startFloor(lateAnswer.port);
    try {
      const client = await connect(proxy.port);
      client.end('question');
      assert.equal((await readToEnd(client)).toString(), 'answer after your FIN');
    } finally {
      await stop(proxy.child);
      await lateAnswer.close();
    }
  });

  it('carries a message each way on one connection, read by read', async () => {
    const client = await connect(floor.port);
    for (const size of [1, 64, 100_000]) {
      const message = randomBytes(size);
      const back = readBytes(client, size);
      client.write(message);
      assert.ok((await back).equals(message));
    }
    client.end();
    await readToEnd(client);
  });
});
