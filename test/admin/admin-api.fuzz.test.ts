/**
 * Fuzzing the admin HTTP API (#12 item 3) of a real runtime (listener, upstream, open
 * connections, token): random methods, paths (mutations of the real routes: case, slashes,
 * dot segments, percent-encoding, queries), headers and bodies, sent raw over TCP, with and
 * without the token. Never a 5xx (but the documented 503 of /readyz), and a request without
 * the token never changes anything: the connections, the upstreams' states, the counters
 * and the running config are compared before and after each.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { buildSnapshot, type ConfigSnapshot } from '../../src/config/load.js';
import { ProxyRuntime } from '../../src/runtime/runtime.js';
import { request } from './http-client.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters } from '../helpers/fuzz.js';
import { pause } from '../helpers/wait.js';

const TOKEN = 's3cret-token';
const ROUTES = [
  '/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/api/stats',
  '/api/connections',
  '/api/connections/1',
  '/api/reload',
  '/api/upstreams/main/UPSTREAM/drain',
  '/api/upstreams/main/UPSTREAM/enable',
];

interface RawReply {
  status: number | undefined;
  text: string;
}

/** One raw HTTP/1.1 request on its own connection; the status is undefined if the server just closed. */
async function rawRequest(port: number, head: string, body: string): Promise<RawReply> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(Buffer.from(head + body, 'latin1'));
  socket.end();
  await once(socket, 'close');
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  return { status: match ? Number(match[1]) : undefined, text };
}

/** The path part of a request target, percent-decoded when it can be. */
function decodedPath(target: string): string {
  const path = target.replace(/[?#].*$/s, '');
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

type Mutation = [kind: number, at: number, text: string];

/** Path mutations an attacker would try to slip past the router or the token check. */
function mutatePath(path: string, [kind, at, text]: Mutation): string {
  const i = at % (path.length + 1);
  switch (kind % 9) {
    case 0:
      return path.slice(0, i) + path.slice(i, i + 1).toUpperCase() + path.slice(i + 1);
    case 1:
      return `${path.slice(0, i)}/${path.slice(i)}`;
    case 2:
      return `${path.slice(0, i)}/./${path.slice(i)}`;
    case 3:
      return `${path.slice(0, i)}/../${path.slice(i)}`;
    case 4:
      return (
        path.slice(0, i) + encodeURIComponent(path.slice(i, i + 1)).replace(/^[A-Za-z0-9]$/, (c) => `%${c.charCodeAt(0).toString(16)}`) + path.slice(i + 1)
      );
    case 5:
      return `${path}?${text}`;
    case 6:
      return `${path}#${text}`;
    case 7:
      return path.slice(0, i) + text + path.slice(i);
    default:
      return `${path}/`;
  }
}

const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'get', 'Post', 'PROPFIND'),
  fc.stringMatching(/^[A-Z!#$%&'*+.^_`|~-]{1,10}$/),
);
const pathArb = fc.oneof(
  fc
    .tuple(fc.constantFrom(...ROUTES), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 8 })), { maxLength: 3 }))
    .map(([path, edits]) => edits.reduce(mutatePath, path)),
  fc.string({ maxLength: 40 }).map((s) => `/${s}`),
  fc.constantFrom(
    '*',
    'http://127.0.0.1/api/reload',
    '//api/reload',
    '/api/reload%00',
    '/api/connections/%2e%2e',
    '/%61pi/reload',
    '/api/connections/' + 'x'.repeat(5000),
  ),
);
/** The Authorization header: absent, the token in several spellings, or a wrong one. */
const authorization = fc.constantFrom<string | undefined>(
  undefined,
  `Bearer ${TOKEN}`,
  `bearer ${TOKEN}`,
  `Bearer  ${TOKEN} `,
  `Bearer ${TOKEN}x`,
  `Bearer ${TOKEN.slice(0, -1)}`,
  'Bearer',
  'Bearer ',
  `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`,
  `Token ${TOKEN.toUpperCase()}`,
  '',
);
const extraHeaders = fc.array(
  fc.oneof(
    fc.constantFrom(
      'Origin: http://evil.example',
      'Origin: null',
      'Origin: http://127.0.0.1',
      'Host: evil.example',
      'Transfer-Encoding: chunked',
      'Content-Length: 5',
      'Content-Length: -1',
      'Content-Length: 99999999',
      'Expect: 100-continue',
      'Connection: keep-alive',
      'X-Forwarded-For: 127.0.0.1',
      'Authorization: Bearer wrong',
    ),
    fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.string({ maxLength: 30 })).map(([name, value]) => `${name}: ${value}`),
  ),
  { maxLength: 4 },
);
const body = fc.oneof(fc.constant(''), fc.string({ maxLength: 100 }), fc.constantFrom('{}', '{"ok":true}', '5\r\nhello\r\n0\r\n\r\n', 'x'.repeat(70_000)));

describe('admin API fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  let echo: TestServer;
  let echo2: TestServer;
  let runtime: ProxyRuntime;
  let snapshot: ConfigSnapshot;
  let proxyPort: number;
  let adminPort: number;
  const clients: Socket[] = [];

  const authed = (path: string) => request(adminPort, 'GET', path, { headers: { Authorization: `Bearer ${TOKEN}` } });

  /** What a request without the token must leave alone. */
  async function state(): Promise<unknown> {
    const stats = JSON.parse((await authed('/api/stats')).body) as { upstreams: unknown[]; listeners: { closes: unknown; rejections: unknown }[] };
    const connections = JSON.parse((await authed('/api/connections')).body) as { id: string }[];
    return {
      config: runtime.config === snapshot ? 'unchanged' : 'replaced',
      connections: connections.map((c) => c.id).sort(),
      upstreams: stats.upstreams,
      closes: stats.listeners.map((l) => l.closes),
    };
  }

  /** After a request that may have changed something (a DELETE), until the effects (closes counted) are over. */
  async function settled(): Promise<void> {
    let previous = JSON.stringify(await state());
    for (;;) {
      await pause(20);
      const current = JSON.stringify(await state());
      if (current === previous) return;
      previous = current;
    }
  }

  /** Keeps two proxied connections open, so that a DELETE has something to close. */
  async function openConnections(): Promise<void> {
    while (clients.filter((c) => !c.destroyed).length < 2) {
      const client = net.connect(proxyPort, '127.0.0.1');
      client.on('error', () => undefined);
      clients.push(client);
      await once(client, 'connect');
      client.write('x');
      await once(client, 'data');
    }
  }

  before(async () => {
    echo = await startEchoServer();
    echo2 = await startEchoServer();
    snapshot = buildSnapshot({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      log: { level: 'silent' },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address, echo2.address] }],
    });
    // A reload (with the token) reads the same config again: it succeeds and swaps the snapshot.
    runtime = new ProxyRuntime(snapshot, pino({ level: 'silent' }), async () => snapshot);
    await runtime.start();
    proxyPort = runtime.listenerAddress('main')!.port;
    adminPort = runtime.adminAddress()!.port;
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await runtime.shutdown(0);
    await echo.close();
    await echo2.close();
  });

  test('random requests: never a 5xx; without the token, nothing changes', async () => {
    const statuses = new Map<number | undefined, number>();
    await fc.assert(
      fc.asyncProperty(method, pathArb, authorization, extraHeaders, body, async (verb, path, auth, headers, content) => {
        await openConnections();
        const lines = [
          `${verb} ${path} HTTP/1.1`,
          'Host: 127.0.0.1',
          'Connection: close',
          ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
          ...headers,
        ];
        if (content !== '' && !headers.some((h) => /^(content-length|transfer-encoding):/i.test(h)))
          lines.push(`Content-Length: ${Buffer.byteLength(content, 'latin1')}`);
        const withToken = auth?.includes(TOKEN) === true;
        const before = withToken ? undefined : await state();
        const head = `${lines.join('\r\n')}\r\n\r\n`.replaceAll('UPSTREAM', echo.address);
        const reply = await rawRequest(adminPort, head, content);
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        // The route as the router sees it: without the query, percent-decoded (/%72eadyz is /readyz).
        const route = decodedPath(path);
        const readyProbe = reply.status === 503 && route === '/readyz';
        assert.ok(reply.status === undefined || reply.status < 500 || readyProbe, `${reply.status} for ${verb} ${path}: ${reply.text.slice(0, 300)}`);
        if (before !== undefined) {
          assert.deepEqual(await state(), before, `${verb} ${path} without the token changed the state`);
          if (reply.status === 200) assert.match(route, /^\/(healthz|readyz)?$/, `${verb} ${path} answered 200 without the token`);
        }
        if (withToken) await settled();
        snapshot = runtime.config;
      }),
      fuzzParameters(400),
    );
    // The fuzzer reached past the token check and the router (not only 400s and 401s).
    for (const status of [200, 401, 404]) assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...statuses])}`);
  });
});
