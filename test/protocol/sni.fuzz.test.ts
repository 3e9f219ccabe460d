/**
 * Fuzzing the TLS ClientHello/SNI parser (#12 item 3): random bytes and structure-aware
 * mutations of real ClientHellos (node:tls clients: TLS 1.2 and 1.3, with and without SNI,
 * ALPN, session tickets) re-fragmented into records. peekServerName is total (never throws,
 * returns at once), a name it returns is a DNS host name, and its verdict does not depend
 * on how much has arrived. Over loopback, readClientHello settles (resolves, or rejects with
 * ClientHelloError only) however the bytes are chunked, and leaves no listener behind.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ClientHelloError, peekServerName, readClientHello } from '../../src/protocol/sni.js';
import { listenerCounts, startLoopbackServer, type LoopbackServer } from './loopback.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters } from '../helpers/fuzz.js';
import { connect } from '../helpers/sockets.js';

const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/** The first flight of a real node:tls client. */
async function capture(server: LoopbackServer, options: tls.ConnectionOptions): Promise<Buffer> {
  const client = tls.connect({ port: server.port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
  client.on('error', () => undefined);
  const socket = await server.accepted();
  try {
    return (await readClientHello(socket, 5_000)).buffered;
  } finally {
    client.destroy();
    socket.destroy();
  }
}

/** The handshake message of a ClientHello record stream, re-cut into records of `size` bytes. */
function refragment(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const parts: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const piece = message.subarray(at, at + size);
    const header = Buffer.from([22, 3, 1, 0, 0]);
    header.writeUInt16BE(piece.length, 3);
    parts.push(header, piece);
  }
  return Buffer.concat(parts);
}

type Edit = [kind: number, at: number, value: number, bytes: Uint8Array];

/** Mutations that aim at a parser's weak spots: lengths, truncation, repetition, stray bytes. */
function applyEdit(input: Buffer, [kind, at, value, bytes]: Edit): Buffer {
  const i = input.length === 0 ? 0 : at % input.length;
  switch (kind % 7) {
    case 0: {
      // one byte
      const out = Buffer.from(input);
      if (out.length > 0) out[i] = value & 0xff;
      return out;
    }
    case 1: {
      // a 16-bit length field set to a boundary value
      const out = Buffer.from(input);
      const boundaries = [0, 1, 2, 3, 4, 0x7f, 0xff, 0x100, 0x3fff, 0x4000, 0x4001, 0xfffe, 0xffff];
      if (out.length >= 2) out.writeUInt16BE(boundaries[value % boundaries.length]!, Math.min(i, out.length - 2));
      return out;
    }
    case 2:
      return input.subarray(0, i); // truncated
    case 3:
      return Buffer.concat([input.subarray(0, i), Buffer.from(bytes), input.subarray(i)]); // inserted
    case 4:
      return Buffer.concat([input.subarray(0, i), input.subarray(i + (value % 64))]); // cut out
    case 5:
      return Buffer.concat([input.subarray(0, i + (value % 64)), input.subarray(i)]); // repeated
    default:
      return Buffer.concat([input, Buffer.from(bytes)]); // trailing
  }
}

const edit: fc.Arbitrary<Edit> = fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 8 }));

describe('SNI parser fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  let server: LoopbackServer;
  const hellos: Buffer[] = [];

  before(async () => {
    server = await startLoopbackServer();
    const variants: tls.ConnectionOptions[] = [
      { servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] },
      { servername: 'x.example', maxVersion: 'TLSv1.2' },
      { servername: 'a'.repeat(63) + '.example', minVersion: 'TLSv1.3' },
      {}, // no SNI (an IP address)
      { servername: 'Mixed.Case-Name_1.example', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', ecdhCurve: 'X25519:P-256' },
    ];
    for (const options of variants) hellos.push(await capture(server, options));
  });
  after(() => server.close());

  /** A real hello (maybe re-fragmented), a few edits of it, or noise. */
  const input = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 600 }), fc.array(edit, { maxLength: 4 })).map(([which, size, edits]) => {
        const hello = hellos[which % hellos.length]!;
        return edits.reduce(applyEdit, size === 0 ? hello : refragment(hello, size));
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.uint8Array({ maxLength: 1000 }), fc.integer({ min: 0, max: 0xffff })).map(([bytes, length]) => {
        const out = Buffer.concat([Buffer.from([22, 3, 1, length >> 8, length & 0xff, 1]), Buffer.from(bytes)]);
        return out;
      }),
    },
  );

  test('the real hellos parse (the mutations start from good input)', () => {
    assert.equal(hellos.length, 5);
    const names = hellos.map((hello) => peekServerName(hello));
    assert.deepEqual(
      names.map((n) => (n.state === 'done' ? n.serverName : n.state)),
      ['api.example.com', 'x.example', `${'a'.repeat(63)}.example`, undefined, 'mixed.case-name_1.example'],
    );
    for (const size of [1, 7, 100]) assert.deepEqual(peekServerName(refragment(hellos[0]!, size)), names[0]);
  });

  test('peekServerName: never throws, names are host names, prefixes never contradict the whole', () => {
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 4 }), (bytes, cuts) => {
        const whole = peekServerName(bytes);
        assert.ok(['need-more', 'done', 'not-tls'].includes(whole.state));
        if (whole.state === 'done' && whole.serverName !== undefined) {
          assert.match(whole.serverName, HOST_NAME);
          assert.ok(whole.serverName.length <= 253);
        }
        for (const cut of cuts) {
          const prefix = peekServerName(bytes.subarray(0, cut % (bytes.length + 1)));
          if (prefix.state !== 'need-more') assert.deepEqual(prefix, whole);
        }
        // More bytes after a verdict never change it.
        if (whole.state !== 'need-more') assert.deepEqual(peekServerName(Buffer.concat([bytes, Buffer.from([22, 3, 1, 0, 1, 1])])), whole);
      }),
      fuzzParameters(5000),
    );
  });

  test('readClientHello over loopback: settles with a verdict or a ClientHelloError, however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(input, fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 6 }), async (bytes, sizes) => {
        const client = await connect(server.port);
        const socket = await server.accepted();
        const baseline = listenerCounts(socket);
        const reading = readClientHello(socket, 10_000).then(
          (hello) => ({ hello }),
          (error: unknown) => ({ error }),
        );
        // Chunks of the given sizes (cycled), each written once the previous was flushed; then FIN.
        for (let at = 0, i = 0; at < bytes.length; at += sizes[i++ % sizes.length]!) {
          const chunk = bytes.subarray(at, at + sizes[i % sizes.length]!);
          if (!client.write(chunk)) await once(client, 'drain');
        }
        client.end();
        const outcome = await reading;
        try {
          if ('error' in outcome) {
            assert.ok(outcome.error instanceof ClientHelloError, `not a ClientHelloError: ${String(outcome.error)}`);
          } else {
            assert.ok(bytes.subarray(0, outcome.hello.buffered.length).equals(outcome.hello.buffered), 'buffered is a prefix of what was sent');
            const verdict = peekServerName(outcome.hello.buffered);
            if (outcome.hello.tls) assert.deepEqual(verdict, { state: 'done', serverName: outcome.hello.serverName });
          }
          assert.deepEqual(listenerCounts(socket), baseline, 'listeners left behind');
        } finally {
          client.destroy();
          socket.destroy();
        }
      }),
      fuzzParameters(150, 0.05),
    );
  });
});
