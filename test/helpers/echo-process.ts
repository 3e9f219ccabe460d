/** Starts echo-process-main.js as a child process and talks to it over its stdin/stdout. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface EchoProcess {
  readonly child: ChildProcess;
  readonly address: string;
  /** How many connections it holds now. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export async function startEchoProcess(): Promise<EchoProcess> {
  const main = fileURLToPath(new URL('./echo-process-main.js', import.meta.url));
  const child = spawn(process.execPath, [main], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, number>> => {
    const line = await lines.next();
    if (line.done) throw new Error('the echo process exited');
    return JSON.parse(line.value) as Record<string, number>;
  };
  const { port } = await next();
  // One question at a time: answers come back in order on one stream.
  let pending: Promise<unknown> = Promise.resolve();
  return {
    child,
    address: `127.0.0.1:${port}`,
    connections() {
      const answer = pending.then(() => {
        child.stdin.write('count\n');
        return next();
      });
      pending = answer.catch(() => undefined);
      return answer.then((reply) => reply.connections!);
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}
