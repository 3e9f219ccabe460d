/**
 * An echo upstream in a process of its own (started by echo-process.ts): a test that holds
 * thousands of connections cannot also hold their upstream ends in its own process, whose
 * descriptor limit is shared by both. Prints {"port":N} once listening; answers each line on
 * stdin with {"connections":N}, the connections it holds; exits when stdin closes (its parent
 * is gone), so it never outlives the test.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const sockets = new Set<Socket>();
const server = net.createServer((socket) => {
  sockets.add(socket);
  socket.on('error', () => undefined);
  socket.once('close', () => sockets.delete(socket));
  // Echoes, and ends its side once the proxy ends its own (allowHalfOpen is off).
  socket.pipe(socket);
});
// A deep accept queue: the proxy connects thousands of upstream sockets in bursts.
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
createInterface({ input: process.stdin })
  .on('line', () => process.stdout.write(`${JSON.stringify({ connections: sockets.size })}\n`))
  .once('close', () => process.exit(0));
