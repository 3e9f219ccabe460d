/**
 * Property-based tests of the PROXY header parser: whatever the input and however it is
 * chunked, the parser either waits, accepts a header within the limits, or throws a
 * ProxyProtocolError, and the verdict does not depend on the chunking.
 */
import assert from 'node:assert/strict';
import { isIPv4, SocketAddress } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import {
  encodeV1,
  encodeV2,
  ProxyHeaderParser,
  ProxyProtocolError,
  V1_MAX_LENGTH,
  V2_DEFAULT_MAX_LENGTH,
  type ProxyAccept,
  type ProxyAddresses,
  type ProxyHeader,
  type ProxyTlv,
} from '../../src/protocol/proxy-protocol.js';

type Outcome = { kind: 'need-more' } | { kind: 'done'; header: ProxyHeader; consumed: number; rest: Buffer } | { kind: 'error'; message: string };

/** Feeds `input` cut at `cuts`; anything thrown other than ProxyProtocolError propagates. */
function feed(input: Buffer, cuts: number[], accept: ProxyAccept, maxV2Length: number): Outcome {
  const points = [...new Set(cuts.map((cut) => cut % (input.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const point of [...points, input.length]) {
    chunks.push(input.subarray(previous, point));
    previous = point;
  }
  const parser = new ProxyHeaderParser(accept, { maxV2Length });
  for (let i = 0; i < chunks.length; i++) {
    let result;
    try {
      result = parser.push(chunks[i]!);
    } catch (err) {
      if (!(err instanceof ProxyProtocolError)) throw err;
      return { kind: 'error', message: err.message };
    }
    if (result.done) {
      const rest = Buffer.concat([result.rest, ...chunks.slice(i + 1)]);
      return { kind: 'done', header: result.header, consumed: input.length - rest.length, rest };
    }
  }
  return { kind: 'need-more' };
}

/** The invariants every outcome must satisfy. */
function checkOutcome(input: Buffer, outcome: Outcome, maxV2Length: number): void {
  if (outcome.kind === 'done') {
    const limit = outcome.header.version === 1 ? V1_MAX_LENGTH : maxV2Length;
    assert.ok(outcome.consumed <= limit, `v${outcome.header.version} header of ${outcome.consumed} bytes accepted`);
    assert.ok(outcome.consumed >= (outcome.header.version === 1 ? 15 : 16));
    assert.deepEqual(outcome.rest, input.subarray(outcome.consumed));
  }
  if (outcome.kind === 'need-more') {
    assert.ok(input.length < Math.max(V1_MAX_LENGTH, maxV2Length), `still waiting after ${input.length} bytes`);
  }
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const accepts = fc.constantFrom<ProxyAccept>('any', 'v1', 'v2');
const maxV2Lengths = fc.oneof(fc.constant(V2_DEFAULT_MAX_LENGTH), fc.integer({ min: 16, max: 300 }));
const cutLists = fc.array(fc.nat({ max: 4096 }), { maxLength: 8 });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((array) => Buffer.from(array));

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 0, max: 65535 });
const addresses: fc.Arbitrary<ProxyAddresses> = fc.oneof(
  fc.record({ family: fc.constant('tcp4' as const), source: fc.record({ address: ipv4, port }), destination: fc.record({ address: ipv4, port }) }),
  fc.record({ family: fc.constant('tcp6' as const), source: fc.record({ address: ipv6, port }), destination: fc.record({ address: ipv6, port }) }),
);
const tlvs: fc.Arbitrary<ProxyTlv[]> = fc.array(
  fc
    .record({
      type: fc.integer({ min: 0, max: 255 }).filter((type) => type !== 0x03), // CRC32C has its own test
      value: bytes(40),
    })
    .map(({ type, value }) => ({ type, value })), // a plain object, as the parser builds (deepEqual compares prototypes)
  { maxLength: 4 },
);
/** A valid header (v1 or v2, PROXY or LOCAL/UNKNOWN) followed by client bytes. */
const validInputs = fc
  .record({ version: fc.constantFrom(1, 2), addresses: fc.option(addresses, { nil: undefined }), tlvs, payload: bytes(64) })
  .map(({ version, addresses, tlvs, payload }) => ({
    version,
    addresses,
    tlvs: version === 2 && addresses !== undefined && tlvs.length > 0 ? tlvs : undefined,
    header: version === 1 ? encodeV1(addresses) : encodeV2(addresses, addresses === undefined ? [] : tlvs),
    payload,
  }));

/** What the parser must report for `addresses` sent through the encoder. */
function expectedAddresses(sent: ProxyAddresses): ProxyAddresses {
  const source = ipaddr.process(sent.source.address);
  const destination = ipaddr.process(sent.destination.address);
  const ipv4Pair = source.kind() === 'ipv4' && destination.kind() === 'ipv4';
  const canonical = (ip: ipaddr.IPv4 | ipaddr.IPv6): string => {
    if (ipv4Pair) return ip.toString();
    const v6 = ip.kind() === 'ipv4' ? (ip as ipaddr.IPv4).toIPv4MappedAddress() : ip;
    return new SocketAddress({ address: v6.toNormalizedString(), family: 'ipv6' }).address;
  };
  return {
    family: ipv4Pair ? 'tcp4' : 'tcp6',
    source: { address: canonical(source), port: sent.source.port },
    destination: { address: canonical(destination), port: sent.destination.port },
  };
}

const RUNS = { numRuns: 1000 };

describe('PROXY header parser properties', { timeout: 60_000 }, () => {
  test('random bytes: only ProxyProtocolError, limits kept, same verdict for any chunking', () => {
    const prefixes = fc.oneof(
      fc.constant(Buffer.alloc(0)),
      fc.constant(Buffer.from('PROXY ')),
      fc.constantFrom('PROXY TCP4 ', 'PROXY TCP6 ', 'PROXY UNKNOWN').map((text) => Buffer.from(text)),
      bytes(4).map((tail) => Buffer.concat([V2_SIGNATURE, tail])),
    );
    fc.assert(
      fc.property(prefixes, bytes(300), accepts, maxV2Lengths, cutLists, (prefix, tail, accept, maxV2Length, cuts) => {
        const input = Buffer.concat([prefix, tail]);
        const whole = feed(input, [], accept, maxV2Length);
        checkOutcome(input, whole, maxV2Length);
        assert.deepEqual(feed(input, cuts, accept, maxV2Length), whole);
      }),
      RUNS,
    );
  });

  test('valid headers: decoded as sent, at every split point', () => {
    fc.assert(
      fc.property(validInputs, ({ version, addresses, tlvs, header, payload }) => {
        const input = Buffer.concat([header, payload]);
        const expected: ProxyHeader = { version, command: addresses === undefined ? 'local' : 'proxy' };
        if (addresses !== undefined) expected.addresses = expectedAddresses(addresses);
        if (tlvs !== undefined) expected.tlvs = tlvs;
        for (let cut = 0; cut <= input.length; cut++) {
          assert.deepEqual(feed(input, [cut], 'any', V2_DEFAULT_MAX_LENGTH), {
            kind: 'done',
            header: expected,
            consumed: header.length,
            rest: payload,
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  test('mutated valid headers: only ProxyProtocolError, limits kept, same verdict for any chunking', () => {
    const mutations = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
        fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
      ),
      { minLength: 1, maxLength: 4 },
    );
    fc.assert(
      fc.property(validInputs, mutations, accepts, maxV2Lengths, cutLists, ({ header, payload }, edits, accept, maxV2Length, cuts) => {
        const mutated = [...Buffer.concat([header, payload])];
        for (const { kind, at, value } of edits) {
          const index = at % (mutated.length + 1);
          if (kind === 'set' && index < mutated.length) mutated[index] = value;
          if (kind === 'insert') mutated.splice(index, 0, value);
          if (kind === 'delete') mutated.splice(index, 1);
          if (kind === 'truncate') mutated.length = index;
        }
        const input = Buffer.from(mutated);
        const whole = feed(input, [], accept, maxV2Length);
        checkOutcome(input, whole, maxV2Length);
        assert.deepEqual(feed(input, cuts, accept, maxV2Length), whole);
        if (whole.kind === 'done' && whole.header.addresses !== undefined) {
          // Whatever got through is a well-formed address pair.
          const { family, source, destination } = whole.header.addresses;
          for (const address of [source.address, destination.address]) assert.equal(isIPv4(address), family === 'tcp4');
        }
      }),
      RUNS,
    );
  });
});
