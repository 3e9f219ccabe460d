/** The bridge in filtered mode: filters and inspection configured on a listener, end to end. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { oneListener, startProxy } from '../helpers/proxy.js';
import { startEchoServer, startServer } from '../helpers/servers.js';
import { deferred } from '../helpers/wait.js';
import { connect, readToEnd, sha256 } from '../helpers/sockets.js';

describe('filtered bridge', { timeout: 60_000 }, () => {
  it('replace works both ways and large payloads stay intact around it', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(
      oneListener([echo.address], {
        filters: [
          { type: 'replace', direction: 'to_upstream', match: 'cat', with: 'dog' },
          { type: 'replace', direction: 'to_client', match: 'dog', with: 'wolf' },
        ],
      }),
    );
    try {
      const client = await connect(proxy.port);
      const reply = readToEnd(client);
      const filler = randomBytes(4 * 1024 * 1024)
        .toString('base64')
        .replace(/cat|dog|wolf/gi, 'xxx');
      client.write('a ca');
      client.write(`t and ${filler}`);
      client.end(' the end');
      assert.equal(sha256(await reply), sha256(Buffer.from(`a wolf and ${filler} the end`)));
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('block closes the connection with reason filter; nothing of the match reaches the upstream', async () => {
    const received = deferred<string>();
    const server = await startServer((socket) => {
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('end', () => received.resolve(text));
      socket.on('close', () => received.resolve(text));
    });
    const proxy = await startProxy(oneListener([server.address], { filters: [{ type: 'block', direction: 'to_upstream', match: 'DROP TABLE' }] }));
    try {
      const client = await connect(proxy.port);
      client.on('error', () => undefined);
      client.write('SELECT 1;');
      client.write(' DROP TABLE users;');
      assert.equal((await proxy.waitForLog((l) => l.event === 'close')).reason, 'filter');
      const text = await received.promise;
      assert.ok(!text.includes('DROP'), `upstream got ${JSON.stringify(text)}`);
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  it('log_data hex dumps each chunk with direction and offset', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { inspect: { log_data: 'hex' } }));
    try {
      const client = await connect(proxy.port);
      const reply = readToEnd(client);
      client.end('hello');
      assert.equal((await reply).toString(), 'hello');
      const line = await proxy.waitForLog((l) => l.event === 'data' && l.direction === 'to_upstream');
      assert.equal(line.offset, 0);
      assert.equal(line.length, 5);
      assert.match(JSON.stringify(line), /68 65 6c 6c 6f/);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});
