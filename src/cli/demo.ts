/**
 * `tcpproxy demo`: two small echo servers on loopback inside this process, a proxy
 * listener on 127.0.0.1:8080 balancing across them, and the admin endpoint (dashboard)
 * on 127.0.0.1:9901. Each echo server greets first (a server-speaks-first protocol, like
 * SMTP) so that `nc` shows which one the balancer picked.
 */
import net, { type AddressInfo } from 'node:net';
import { buildSnapshot } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { ProxyRuntime } from '../runtime/runtime.js';
import { handleSignals } from '../runtime/signals.js';
import type { DemoOptions } from './args.js';

export async function runDemo(options: DemoOptions): Promise<void> {
  const echoServers = await Promise.all(Array.from({ length: options.echoServers }, (_, i) => startEchoServer(`echo-${i + 1}`)));
  const snapshot = buildSnapshot({
    admin: { listen: `127.0.0.1:${options.adminPort}` },
    listeners: [
      {
        name: 'demo',
        listen: `127.0.0.1:${options.listenPort}`,
        upstreams: echoServers.map((server) => `127.0.0.1:${(server.address() as AddressInfo).port}`),
        balance: 'round_robin',
        health_check: { interval: '2s', timeout: '500ms' },
      },
    ],
  });
  const logger = createLogger({ level: 'info' });
  const runtime = new ProxyRuntime(snapshot, logger);
  handleSignals(
    {
      reload: () => runtime.reload(),
      shutdown: async () => {
        await runtime.shutdown(2_000);
        for (const server of echoServers) server.close();
      },
    },
    logger,
  );
  await runtime.start();
  const proxy = runtime.listenerAddress('demo')!;
  const admin = runtime.adminAddress()!;
  process.stderr.write(
    [
      '',
      `tcpproxy demo: ${echoServers.length} echo servers behind 127.0.0.1:${proxy.port} (round robin)`,
      '',
      `  nc 127.0.0.1 ${proxy.port}                        type a line, it comes back; run it twice to see both servers`,
      `  open http://127.0.0.1:${admin.port}/              the live dashboard`,
      `  curl http://127.0.0.1:${admin.port}/metrics       Prometheus metrics`,
      `  curl http://127.0.0.1:${admin.port}/api/connections`,
      '',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
}

function startEchoServer(name: string): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`hello from ${name}\n`);
    socket.pipe(socket);
  });
  server.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
