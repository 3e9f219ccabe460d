/**
 * The comparison baseline: the naive Node TCP proxy (net.createServer + socket.pipe()),
 * as most examples write it. Usage: node naive-proxy.js LISTEN_PORT UPSTREAM_PORT ...
 * (pairs), prints "ready" when all listen.
 */
import net from 'node:net';

const pairs = process.argv.slice(2).map(Number);
let listening = 0;
for (let i = 0; i < pairs.length; i += 2) {
  const upstreamPort = pairs[i + 1]!;
  net
    .createServer((client) => {
      const upstream = net.connect(upstreamPort, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    })
    .listen(pairs[i], '127.0.0.1', () => {
      if (++listening === pairs.length / 2) process.stdout.write('ready\n');
    });
}
