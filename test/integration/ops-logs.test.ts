/**
 * Logs where operators want them, end to end through bin/tcpproxy: `log.file` rotated the
 * logrotate way (rename, SIGUSR1, no line lost, single process and --workers), RFC 5424
 * syslog over a real UDP, TCP and unix-socket listener, and `log.access_fields`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { BIN, ConfigFile, spawnProxy } from '../helpers/ops.js';
import { runBin } from '../helpers/repo.js';
import type { LogLine } from '../helpers/proxy.js';
import { eventually } from '../helpers/wait.js';

/**
 * One echo exchange through the proxy; returns the client's "ip:port" as the access log
 * names it (empty when a refused connection was reset before it counted as connected).
 */
async function exchange(port: number): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let client = '';
  socket.on('connect', () => {
    client = `${socket.localAddress}:${socket.localPort}`;
    socket.end('ping');
  });
  socket.on('error', () => undefined); // a refused client may be reset
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve));
  return client;
}

function readLines(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine); // a torn line would throw here
}

/** SIGTERM, then the clean exit (status 0) the contract promises. */
async function stopGracefully(proxy: ReturnType<typeof spawnBin>): Promise<void> {
  proxy.child.kill('SIGTERM');
  assert.equal(await proxy.exited, 0, proxy.stderr());
}

/** `--check` on a config that must be refused: exit 2 with a line matching `problem`. */
async function assertRefused(config: unknown, problem: RegExp): Promise<void> {
  const file = await ConfigFile.create(config);
  try {
    const result = await runBin(['--config', file.path, '--check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, problem);
  } finally {
    await file.remove();
  }
}

function spawnBin(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

let echo: TestServer;
before(async () => {
  echo = await startEchoServer();
});
after(async () => {
  await echo.close();
});

describe('log.file and SIGUSR1', { timeout: 120_000 }, () => {
  for (const workers of [1, 2]) {
    it(`a renamed log file is reopened at its path on SIGUSR1, losing no line (${workers === 1 ? 'one process' : '--workers 2'})`, async () => {
      const file = await ConfigFile.create({
        log: { file: 'logs/proxy.log' },
        workers,
        listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }],
      });
      const log = join(file.dir, 'logs', 'proxy.log');
      const rotated = `${log}.1`;
      const proxy = spawnBin(['--config', file.path]);
      try {
        const listening = await eventually(
          async () => {
            const lines = readLines(log).filter((line) => line.event === 'listening');
            return lines.length >= workers ? lines[0] : undefined;
          },
          'the listening lines in log.file',
          60_000,
        );
        const port = listening.port as number;

        const first: string[] = [];
        for (let i = 0; i < 10; i++) first.push(await exchange(port));
        await eventually(async () => (readLines(log).filter((l) => l.event === 'close').length === 10 ? true : undefined), 'the first 10 close lines');

        renameSync(log, rotated);
        proxy.child.kill('SIGUSR1');
        // Every process (the primary and each worker) writes one line to its reopened file.
        const reopeners = workers === 1 ? 1 : workers + 1;
        await eventually(
          async () => (readLines(log).filter((l) => l.event === 'log_reopened').length === reopeners ? true : undefined),
          'the reopened log file',
        );

        const second: string[] = [];
        for (let i = 0; i < 10; i++) second.push(await exchange(port));
        const closesIn = (path: string): string[] =>
          readLines(path)
            .filter((l) => l.event === 'close')
            .map((l) => l.client as string);
        await eventually(async () => (closesIn(log).length === 10 ? true : undefined), 'the second 10 close lines in the new file');

        assert.deepEqual(closesIn(rotated).sort(), first.sort(), 'the old file keeps the lines written before the rotation');
        assert.deepEqual(closesIn(log).sort(), second.sort(), 'the new file has every line written after it');
        await stopGracefully(proxy);
      } finally {
        proxy.child.kill('SIGKILL');
        await file.remove();
      }
    });
  }

  it('a log file that cannot be opened is a one-line start-up error (exit 1)', async () => {
    const file = await ConfigFile.create({
      log: { file: '/proc/tcpproxy-cannot-write-here.log' },
      listeners: [{ listen: '127.0.0.1:0', upstreams: [echo.address] }],
    });
    try {
      const result = await runBin(['--config', file.path]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^tcpproxy: log\.file \/proc\/tcpproxy-cannot-write-here\.log: cannot open it for appending \(E[A-Z]+\)\n$/);
    } finally {
      await file.remove();
    }
  });
});

/** RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG */
const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S{1,255}) (\S{1,48}) (\d+) (\S{1,32}) - (\{.*\})$/s;

interface SyslogMessage {
  pri: number;
  host: string;
  app: string;
  procid: number;
  msgid: string;
  entry: LogLine;
}

function parseSyslog(text: string): SyslogMessage {
  const match = RFC5424.exec(text);
  assert.ok(match, `not an RFC 5424 message: ${JSON.stringify(text)}`);
  return { pri: Number(match[1]), host: match[3]!, app: match[4]!, procid: Number(match[5]), msgid: match[6]!, entry: JSON.parse(match[7]!) as LogLine };
}

/** A syslog receiver's messages, with a way to wait for one. */
class Received {
  readonly messages: SyslogMessage[] = [];
  private waiters: (() => void)[] = [];

  add(text: string): void {
    this.messages.push(parseSyslog(text));
    for (const wake of this.waiters.splice(0)) wake();
  }

  async waitFor(predicate: (message: SyslogMessage) => boolean): Promise<SyslogMessage> {
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

/** Splits an octet-counted stream ("LEN SP MSG"...), checking each length against the bytes. */
function octetCounted(received: Received): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const space = buffered.indexOf(0x20);
      if (space < 0) return;
      const length = Number(buffered.subarray(0, space).toString());
      assert.ok(Number.isInteger(length) && length > 0, `bad octet count ${JSON.stringify(buffered.subarray(0, space).toString())}`);
      if (buffered.length < space + 1 + length) return;
      received.add(buffered.subarray(space + 1, space + 1 + length).toString());
      buffered = buffered.subarray(space + 1 + length);
    }
  };
}

function newlineFramed(received: Received): (chunk: Buffer) => void {
  let buffered = '';
  return (chunk) => {
    buffered += chunk.toString();
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      received.add(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  };
}

describe('log.syslog (RFC 5424)', { timeout: 120_000 }, () => {
  /** Starts the proxy logging to `address`, makes one connection, and checks the messages. */
  async function check(address: string, received: Received, facility: string, expectedFacility: number, framing?: string): Promise<void> {
    const file = await ConfigFile.create({
      log: { syslog: { address, facility, app_name: 'edge-proxy', ...(framing && { framing }) } },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] }],
    });
    const proxy = spawnBin(['--config', file.path]);
    try {
      const listening = await received.waitFor((m) => m.msgid === 'listening');
      assert.equal(listening.pri, expectedFacility * 8 + 6, 'info is severity 6');
      assert.equal(listening.host, hostname());
      assert.equal(listening.app, 'edge-proxy');
      assert.equal(listening.procid, proxy.child.pid);
      assert.equal(listening.entry.listener, 'main');

      const client = await exchange(listening.entry.port as number);
      const close = await received.waitFor((m) => m.msgid === 'close' && m.entry.client === client);
      assert.equal(close.entry.event, 'close');
      assert.equal(close.entry.bytes_from_client, 4);
      await stopGracefully(proxy);
    } finally {
      proxy.child.kill('SIGKILL');
      await file.remove();
    }
  }

  it('over UDP: one message per datagram', async () => {
    const server = dgram.createSocket('udp4');
    const received = new Received();
    server.on('message', (datagram: Buffer) => received.add(datagram.toString()));
    server.bind(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      await check(`udp://127.0.0.1:${server.address().port}`, received, 'local3', 19);
    } finally {
      server.close();
    }
  });

  it('over TCP: octet-counting framing', async () => {
    const received = new Received();
    const server = net.createServer((socket) => socket.on('data', octetCounted(received)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      await check(`tcp://127.0.0.1:${(server.address() as AddressInfo).port}`, received, 'daemon', 3);
    } finally {
      server.close();
    }
  });

  it('over a unix stream socket, newline framing', async () => {
    const dir = await ConfigFile.create({});
    const path = join(dir.dir, 'syslog.sock');
    const received = new Received();
    const server = net.createServer((socket) => socket.on('data', newlineFramed(received)));
    server.listen(path);
    await once(server, 'listening');
    try {
      await check(`unix:${path}`, received, 'local0', 16, 'newline');
    } finally {
      server.close();
      await dir.remove();
    }
  });

  it('a bad address is a config error naming the key', async () => {
    await assertRefused(
      { log: { syslog: { address: 'udp:/127.0.0.1:514' } }, listeners: [{ listen: '127.0.0.1:0', upstreams: [echo.address] }] },
      /log\.syslog\.address: expected udp:\/\/HOST:PORT, tcp:\/\/HOST:PORT or unix:\/PATH/,
    );
  });
});

describe('log.access_fields', { timeout: 60_000 }, () => {
  it('access-log lines hold `event` and the selected fields only, for closes and refusals', async () => {
    const file = await ConfigFile.create({
      log: { access_fields: ['client', 'reason', 'bytes_from_client'] },
      listeners: [
        { name: 'open', listen: '127.0.0.1:0', upstreams: [echo.address] },
        { name: 'closed', listen: '127.0.0.1:0', upstreams: [echo.address], access: { allow: ['10.0.0.0/8'] } },
      ],
    });
    const proxy = await spawnProxy(file, { listening: 2 });
    try {
      const ports = proxy.logs.filter((l) => l.event === 'listening').map((l) => [l.listener, l.port as number] as const);
      const port = (name: string): number => ports.find(([listener]) => listener === name)![1];
      const client = await exchange(port('open'));
      const refused = await exchange(port('closed'));
      const close = await proxy.waitForLog((l) => l.event === 'close' && l.client === client);
      const reject = await proxy.waitForLog((l) => l.event === 'reject' && (refused === '' || l.client === refused));
      const pinoFields = ['level', 'time', 'pid', 'msg'];
      assert.deepEqual(Object.keys(close).sort(), [...pinoFields, 'event', 'client', 'reason', 'bytes_from_client'].sort());
      assert.equal(close.bytes_from_client, 4);
      assert.equal(close.reason, 'client_closed');
      assert.deepEqual(Object.keys(reject).sort(), [...pinoFields, 'event', 'client', 'reason', 'bytes_from_client'].sort());
      assert.equal(reject.reason, 'acl');
    } finally {
      await proxy.kill();
      await file.remove();
    }
  });

  it('an unknown field is a config error naming it', async () => {
    await assertRefused(
      { log: { access_fields: ['client', 'bytes'] }, listeners: [{ listen: '127.0.0.1:0', upstreams: [echo.address] }] },
      /log\.access_fields\[1\]: expected one of .*"bytes_from_client"/,
    );
  });
});
