import { it } from 'node:test';
import net from 'node:net';
import { oneListener, startProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';
it('x', async () => {
  const echo = await startEchoServer();
  const proxy = await startProxy(oneListener([echo.address]));
  const server = proxy.runtime['running'].get('test').listener['server'] as net.Server;
  let undef = 0, total = 0;
  server.prependListener('connection', (s: net.Socket) => { total++; if (s.remoteAddress === undefined) undef++; });
  await Promise.all(Array.from({ length: 100 }, async () => {
    const socket = net.connect({ port: proxy.port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.resetAndDestroy());
    await new Promise((r) => socket.once('close', r));
  }));
  await new Promise((r) => setTimeout(r, 1000));
  console.log('access lines', proxy.accessLog().length, 'accepted', total, 'no remoteAddress', undef);
  await proxy.stop(); await echo.close();
});
