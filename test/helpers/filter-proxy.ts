/**
 * The filter and inspection tests' proxy: the real runtime (Listener, Bridge, pipeline) on
 * loopback in front of an upstream server that hands each accepted socket to the test, so
 * that a test drives both ends of one proxied connection and reads its access-log line.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import type { PipelineSpec } from '../../src/pipeline/pipeline.js';
import { filterSpecSchema, inspectSpecSchema } from '../../src/config/filter-schema.js';
import { startProxy, type LogLine, type TestProxy } from './proxy.js';
import { startServer, type TestServer } from './servers.js';
import type { Bridge } from '../../src/proxy/bridge.js';
import { readPcap, type Segment } from '../inspect/pcap-reader.js';
import { readToEnd } from './sockets.js';
import { until } from './wait.js';

export type { LogLine };

/** Parses raw config entries the way the config loader does (defaults, durations, sizes). */
export function pipelineSpec(raw: { inspect?: unknown; filters?: unknown[] }): PipelineSpec {
  return {
    inspect: raw.inspect === undefined ? undefined : inspectSpecSchema.parse(raw.inspect),
    filters: raw.filters?.map((entry) => filterSpecSchema.parse(entry)),
  };
}

export interface Proxied {
  /** The test's client socket. */
  readonly client: Socket;
  /** The upstream server's side of the upstream connection. */
  readonly upstream: Socket;
  /** The proxy's own sockets of this connection (the Bridge's), to watch what it buffers or writes. */
  readonly proxyFront: Socket;
  readonly proxyBack: Socket;
  /** The bridge's connection id (as in the access log and the data log). */
  readonly id: string;
  /** Resolves with this connection's access-log line once the proxy has finished it. */
  readonly closed: Promise<LogLine>;
}

export interface FilterProxy {
  readonly proxy: TestProxy;
  /** Every log line the proxy wrote (filter_block, filter_error, data, close, ...). */
  readonly lines: LogLine[];
  /** Opens one proxied connection, resolved once the proxy has bridged it (its filters run). */
  open(): Promise<Proxied>;
  /** Stops the proxy (flushing captures) and the upstream; fails if a connection is left listed. */
  dispose(): Promise<void>;
}

export interface FilterProxyOptions {
  /** Where relative plugin and capture paths resolve (the config file's folder). */
  readonly baseDir?: string;
  /** '127.0.0.1' (default) or '::1'. */
  readonly host?: string;
}

/** A proxy with one listener whose `filters` and `inspect` keys are given, in front of a fresh upstream. */
export async function startFilterProxy(keys: { filters?: unknown[]; inspect?: unknown }, options: FilterProxyOptions = {}): Promise<FilterProxy> {
  const host = options.host ?? '127.0.0.1';
  const accepted: Socket[] = [];
  const acceptedWaiters: ((socket: Socket) => void)[] = [];
  const upstreamServer: TestServer = await startServer((socket) => {
    const waiter = acceptedWaiters.shift();
    if (waiter) waiter(socket);
    else accepted.push(socket);
  }, host);
  const nextUpstream = (): Promise<Socket> =>
    new Promise((resolve) => {
      const socket = accepted.shift();
      if (socket) resolve(socket);
      else acceptedWaiters.push(resolve);
    });
  const listen = host.includes(':') ? `[${host}]:0` : `${host}:0`;
  const proxy = await startProxy(
    { listeners: [{ name: 'test', listen, upstreams: [upstreamServer.address], ...keys }] },
    options.baseDir === undefined ? {} : { baseDir: options.baseDir },
  );
  const clients = new Set<Socket>();

  return {
    proxy,
    lines: proxy.logs,
    async open() {
      const client = connect({ host, port: proxy.port, allowHalfOpen: true });
      clients.add(client);
      client.on('error', () => undefined); // each test asserts the errors it expects itself
      await once(client, 'connect');
      const label = peerLabel(client.localAddress!, client.localPort!);
      const upstream = await nextUpstream();
      const closed = proxy.waitForLog((line) => (line.event === 'close' || line.event === 'reject') && line.client === label, 30_000);
      let ended = false;
      void closed.then(
        () => (ended = true),
        () => undefined,
      );
      // Bridged (its filters run from now on), or already finished (a filter that drops at once).
      let bridge: Bridge | undefined;
      await until(() => (bridge = bridgeOf(proxy, label))?.upstreamLabel != null || ended, `the proxy to bridge ${label}`);
      const id = bridge?.id ?? String((await closed).id);
      // The bridge's sockets are private: tests read them only to observe buffering and writes.
      const sockets = bridge && { front: bridge['client'] as Socket, back: bridge['upstream'] as Socket };
      const own = (): { front: Socket; back: Socket } => {
        if (!sockets) throw new Error(`connection ${id} ended before the proxy's sockets could be observed`);
        return sockets;
      };
      return {
        client,
        upstream,
        id,
        closed,
        get proxyFront() {
          return own().front;
        },
        get proxyBack() {
          return own().back;
        },
      };
    },
    async dispose() {
      for (const client of clients) client.destroy();
      await proxy.stop();
      await upstreamServer.close();
      const left = proxy.runtime.connections();
      if (left.length > 0) throw new Error(`connections left after shutdown: ${JSON.stringify(left)}`);
    },
  };
}

function bridgeOf(proxy: TestProxy, label: string): Bridge | undefined {
  // The runtime keeps its listener states private; the open bridges are what this helper is about.
  const state = proxy.runtime['running'].get('test')?.state;
  for (const bridge of state?.connections ?? []) if (bridge.clientLabel === label) return bridge;
  return undefined;
}

/** "ip:port" or "[v6]:port", as the access log writes a client. */
export function peerLabel(address: string, port: number): string {
  const plain = address.replace(/^::ffff:(?=\d+\.)/, '');
  return plain.includes(':') ? `[${plain}]:${port}` : `${plain}:${port}`;
}

/**
 * Sends `toUpstream` from the client and `toClient` from the upstream, each followed by FIN,
 * and resolves with what arrived at each end, as text.
 */
export async function exchange(proxied: Proxied, toUpstream: string, toClient: string): Promise<{ atUpstream: string; atClient: string }> {
  const atUpstream = readToEnd(proxied.upstream);
  const atClient = readToEnd(proxied.client);
  proxied.client.end(toUpstream);
  proxied.upstream.end(toClient);
  return { atUpstream: (await atUpstream).toString(), atClient: (await atClient).toString() };
}

export const DIRECTIONS = ['to_upstream', 'to_client'] as const;

/** The sending and receiving ends for a direction. */
export function ends(proxied: Proxied, direction: (typeof DIRECTIONS)[number]): { sender: Socket; receiver: Socket } {
  return direction === 'to_upstream' ? { sender: proxied.client, receiver: proxied.upstream } : { sender: proxied.upstream, receiver: proxied.client };
}

// -- what the proxy's capture saw, for timing read on the proxy's own clock ---------------

/** The four endpoints of a proxied connection, as the pcap reader prints them. */
export interface StreamLabels {
  readonly client: string;
  readonly front: string;
  readonly back: string;
  readonly upstream: string;
}

/** Read from the test's two sockets (the client's and the upstream server's), while they are open. */
export function streamLabels(proxied: Proxied): StreamLabels {
  const { client, upstream } = proxied;
  return {
    client: pcapLabel(client.localAddress!, client.localPort!),
    front: pcapLabel(client.remoteAddress!, client.remotePort!),
    back: pcapLabel(upstream.remoteAddress!, upstream.remotePort!),
    upstream: pcapLabel(upstream.localAddress!, upstream.localPort!),
  };
}

function pcapLabel(address: string, port: number): string {
  return address.includes(':') ? `[${expandV6(address)}]:${port}` : `${address}:${port}`;
}

/** ::1 -> 0:0:0:0:0:0:0:1, as the reader prints IPv6 addresses. */
function expandV6(address: string): string {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((group) => parseInt(group, 16).toString(16)).join(':');
}

/**
 * Runs `body` against a proxy that has `keys` and captures to a temporary pcap file, stops
 * it (which flushes the file) and returns the parsed segments. The capture stamps each
 * segment with the proxy's clock as a filter hands it on: the way to check a filter's
 * timing from its own point of view, whatever the load on the machine.
 */
export async function captured(keys: { filters?: unknown[] }, body: (harness: FilterProxy) => Promise<void>): Promise<Segment[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-filter-capture-'));
  try {
    const harness = await startFilterProxy({ ...keys, inspect: { capture: 'capture.pcap' } }, { baseDir: dir });
    try {
      await body(harness);
    } finally {
      await harness.dispose();
    }
    return readPcap(await readFile(join(dir, 'capture.pcap')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The segments carrying data from `src` to `dst`, in capture order. */
export function payloads(segments: readonly Segment[], src: string, dst: string): Segment[] {
  return segments.filter((segment) => segment.src === src && segment.dst === dst && segment.payload.length > 0);
}
