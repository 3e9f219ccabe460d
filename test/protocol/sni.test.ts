import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ClientHelloError, matchServerName, MAX_CLIENT_HELLO_LENGTH, peekServerName, readClientHello, type ClientHello } from '../../src/protocol/sni.js';
import { listenerCounts, startLoopbackServer, type LoopbackServer } from './loopback.js';
import { connect } from '../helpers/sockets.js';

// --- hand-built ClientHellos, for the cases a real client never sends -----------------

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}
function vector16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}
function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vector16(data)]);
}
function serverNameExtension(...names: [number, string][]): Buffer {
  return extension(0, vector16(...names.map(([type, name]) => Buffer.concat([Buffer.from([type]), vector16(Buffer.from(name, 'latin1'))]))));
}
/** A ClientHello handshake message (no record header); `extensions` undefined: none at all. */
function handshake(extensions: Buffer[] | undefined): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 0xab), // random
    Buffer.from([0]), // session id
    vector16(Buffer.from([0x13, 0x01])), // one cipher suite
    Buffer.from([1, 0]), // null compression
    extensions === undefined ? Buffer.alloc(0) : vector16(...extensions),
  ]);
  const length = Buffer.alloc(3);
  length.writeUIntBE(body.length, 0, 3);
  return Buffer.concat([Buffer.from([1]), length, body]);
}
/** Wraps handshake bytes in TLS records of at most `fragment` bytes each. */
function records(message: Buffer, fragment = 16384): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < message.length; at += fragment) {
    const piece = message.subarray(at, at + fragment);
    parts.push(Buffer.from([22, 3, 1]), u16(piece.length), piece);
  }
  return Buffer.concat(parts);
}

// --- real ClientHellos, from node:tls clients --------------------------------------------

/** The first flight of a real node:tls client, as read by readClientHello on a plain TCP server. */
async function captureClientHello(server: LoopbackServer, options: tls.ConnectionOptions): Promise<ClientHello> {
  const client = tls.connect({ port: server.port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
  client.on('error', () => {}); // the server never answers; the reset is expected
  const socket = await server.accepted();
  try {
    return await readClientHello(socket, 5_000);
  } finally {
    client.destroy();
    socket.destroy();
  }
}

describe('SNI peek', { timeout: 20_000 }, () => {
  let server: LoopbackServer;
  let withName: ClientHello;
  before(async () => {
    server = await startLoopbackServer();
    withName = await captureClientHello(server, { servername: 'API.Example.com', ALPNProtocols: ['h2', 'http/1.1'] });
  });
  after(() => server.close());

  test('the server name of a real node:tls ClientHello, lower-cased', () => {
    assert.equal(withName.tls, true);
    assert.equal(withName.serverName, 'api.example.com');
    assert.equal(withName.buffered[0], 22);
    assert.equal(withName.buffered.length, 5 + withName.buffered.readUInt16BE(3), 'exactly the ClientHello record was read');
  });

  test('a real ClientHello without SNI', async () => {
    const hello = await captureClientHello(server, {}); // connecting to an IP address: no SNI
    assert.deepEqual({ tls: hello.tls, serverName: hello.serverName }, { tls: true, serverName: undefined });
  });

  test('every proper prefix needs more; the whole, with anything after it, is done', () => {
    const bytes = withName.buffered;
    for (let length = 0; length < bytes.length; length++) {
      assert.deepEqual(peekServerName(bytes.subarray(0, length)), { state: 'need-more' }, `prefix of ${length}`);
    }
    const done = { state: 'done', serverName: 'api.example.com' };
    assert.deepEqual(peekServerName(bytes), done);
    assert.deepEqual(peekServerName(Buffer.concat([bytes, Buffer.from('garbage after the hello')])), done);
  });

  test('a ClientHello spread over several records is reassembled', () => {
    const message = withName.buffered.subarray(5);
    for (const fragment of [1, 3, 100, 512]) {
      assert.deepEqual(peekServerName(records(message, fragment)), { state: 'done', serverName: 'api.example.com' }, `${fragment}-byte records`);
    }
  });

  test('hand-built hellos: no extensions, other name types, the first host name wins', () => {
    assert.deepEqual(peekServerName(records(handshake(undefined))), { state: 'done', serverName: undefined });
    assert.deepEqual(peekServerName(records(handshake([extension(16, Buffer.from([0, 3, 2, 0x68, 0x32]))]))), { state: 'done', serverName: undefined });
    const names = serverNameExtension([7, 'not-a-host-name'], [0, 'first.example'], [0, 'second.example']);
    assert.deepEqual(peekServerName(records(handshake([names]))), { state: 'done', serverName: 'first.example' });
  });

  test('a name that is not a DNS host name is no name', () => {
    for (const bad of ['with space.example', 'nul\u0000.example', '.leading.example', 'trailing.example.', 'double..dot', 'é.example', 'a'.repeat(254)]) {
      assert.deepEqual(peekServerName(records(handshake([serverNameExtension([0, bad])]))), { state: 'done', serverName: undefined }, bad);
    }
    assert.deepEqual(peekServerName(records(handshake([serverNameExtension([0, 'a'.repeat(253)])]))), { state: 'done', serverName: 'a'.repeat(253) });
  });

  test('not TLS, or not a ClientHello, is recognised from the first bytes', () => {
    const notTls = (bytes: Buffer, reason: RegExp) => {
      const result = peekServerName(bytes);
      assert.equal(result.state, 'not-tls', bytes.toString('hex'));
      assert.match(result.state === 'not-tls' ? result.reason : '', reason);
    };
    notTls(Buffer.from('G'), /not a TLS handshake record/);
    notTls(Buffer.from([0x80, 0x2e, 0x01]), /not a TLS handshake record/); // SSLv2-style hello
    notTls(Buffer.from([22, 2]), /not a TLS record version/);
    notTls(Buffer.from([22, 3, 1, 0, 0]), /invalid TLS record length/);
    notTls(Buffer.from([22, 3, 1, 0x40, 0x01]), /invalid TLS record length/);
    notTls(Buffer.from([22, 3, 1, 0, 4, 2]), /not a ClientHello/);
    notTls(Buffer.from([22, 3, 1, 0x40, 0, 1, 0, 0x40, 0x01]), new RegExp(`larger than ${MAX_CLIENT_HELLO_LENGTH}`));
    // the hello's first fragment, then an alert record instead of the rest
    const firstFragment = records(handshake(undefined), 10).subarray(0, 15);
    notTls(Buffer.concat([firstFragment, Buffer.from([21, 3, 3, 0, 2, 2, 40])]), /not a TLS handshake record/);
  });

  test('structurally broken ClientHellos are not TLS', () => {
    const good = handshake([serverNameExtension([0, 'ok.example'])]);
    const broken: Buffer[] = [
      handshake([serverNameExtension([0, 'a.example']), serverNameExtension([0, 'b.example'])]), // duplicate extension
      handshake([extension(0, Buffer.from([0, 5, 0, 0, 1]))]), // server_name list overruns
      handshake([extension(0, Buffer.alloc(0))]), // empty server_name in a ClientHello
      Buffer.concat([good, Buffer.from([0])]).fill(good[3]! + 1, 3, 4), // one stray byte after the extensions
    ];
    for (const message of broken) assert.deepEqual(peekServerName(records(message)), { state: 'not-tls', reason: 'malformed ClientHello' });
  });

  test('random and mutated input: never throws, and prefixes never contradict the whole', () => {
    const base = [...withName.buffered];
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
        const bytes = [...base];
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return Buffer.from(bytes);
      }),
    );
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
        const whole = peekServerName(input);
        for (const cut of cuts) {
          const prefix = peekServerName(input.subarray(0, cut % (input.length + 1)));
          if (prefix.state !== 'need-more') assert.deepEqual(prefix, whole);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('readClientHello over loopback', { timeout: 10_000 }, () => {
  let server: LoopbackServer;
  before(async () => {
    server = await startLoopbackServer();
  });
  after(() => server.close());

  test('a ClientHello arriving byte by byte', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const baseline = listenerCounts(socket);
    const bytes = Buffer.concat([records(handshake([serverNameExtension([0, 'slow.example'])]), 40), Buffer.from('next record')]);
    const reading = readClientHello(socket, 5_000);
    for (let at = 0; at < bytes.length; at += 37) {
      const arrived = once(socket, 'data');
      client.write(bytes.subarray(at, at + 37));
      await arrived;
    }
    const hello = await reading;
    assert.equal(hello.serverName, 'slow.example');
    assert.ok(bytes.subarray(0, hello.buffered.length).equals(hello.buffered), 'buffered is the exact stream prefix');
    assert.deepEqual(listenerCounts(socket), baseline);
    assert.equal(socket.readableFlowing, false);
    client.destroy();
  });

  test('plain text resolves at once as not TLS, keeping the bytes', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    client.write('GET / HTTP/1.1\r\n');
    const hello = await readClientHello(socket, 5_000);
    assert.equal(hello.tls, false);
    assert.equal(hello.buffered.toString(), 'GET / HTTP/1.1\r\n');
    client.destroy();
  });

  test('the read budget ends a hello that never completes', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    client.write(records(handshake([extension(21, Buffer.alloc(3000))])).subarray(0, 1500));
    const hello = await readClientHello(socket, 5_000, 1000);
    assert.equal(hello.tls, false);
    assert.match(hello.reason ?? '', /no complete ClientHello in the first 1000 bytes/);
    assert.ok(hello.buffered.length >= 1000);
    client.destroy();
  });

  test('silence times out, an early close is refused', async () => {
    const silent = await connect(server.port);
    const silentSocket = await server.accepted();
    await assert.rejects(
      readClientHello(silentSocket, 100),
      (err: unknown) => err instanceof ClientHelloError && err.message.includes('not complete within 100 ms'),
    );
    silent.destroy();

    const closing = await connect(server.port);
    const closingSocket = await server.accepted();
    closing.end(Buffer.from([22, 3, 1, 0, 200, 1]));
    await assert.rejects(readClientHello(closingSocket, 5_000), /connection closed before the TLS ClientHello was complete/);
  });
});

describe('matchServerName', () => {
  const cases: [string, string, boolean][] = [
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'API.Example.COM', true],
    ['API.example.com', 'api.example.com', true],
    ['api.example.com', 'api.example.co', false],
    ['api.example.com', 'xapi.example.com', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'A.EXAMPLE.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['*.example.com', 'a.example.org', false],
    ['*.example.com', 'aexample.com', false],
    ['*.example.com', 'a.notexample.com', false],
  ];
  for (const [pattern, name, expected] of cases) {
    test(`${pattern} ${expected ? 'matches' : 'does not match'} ${name}`, () => {
      assert.equal(matchServerName(pattern, name), expected);
    });
  }
});
