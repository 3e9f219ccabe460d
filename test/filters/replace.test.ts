import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Filter } from '../../src/filters/filter.js';
import { parsePattern } from '../../src/filters/pattern.js';
import { createReplaceFilter } from '../../src/filters/replace.js';
import { DIRECTIONS, ends, exchange, startFilterProxy } from '../helpers/filter-proxy.js';
import { readBytes, readToEnd } from '../helpers/sockets.js';

/** Runs chunks through a filter synchronously, as the chain would, and ends it (replace never returns a promise). */
function run(filter: Filter, chunks: readonly Buffer[]): Buffer {
  const out: Buffer[] = [];
  const push = (chunk: Buffer): void => void out.push(Buffer.from(chunk));
  for (const chunk of chunks) void filter.data(chunk, push);
  void filter.end?.(push);
  filter.destroy?.();
  return Buffer.concat(out);
}

function replaceFilter(match: string, replacement: string, maxMatch = 64): Filter {
  return createReplaceFilter({ pattern: parsePattern(match), replacement, maxMatch, holdMs: 60_000 });
}

/** Texts made of pieces that often form (or nearly form) a match. */
function tokens(pieces: string[]): fc.Arbitrary<string> {
  return fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((parts) => parts.join(''));
}

/** Splits `text` at the given cut points (fast-check picks them). */
function split(text: string, cuts: number[]): Buffer[] {
  const bytes = Buffer.from(text, 'latin1');
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(last, point));
    last = point;
  }
  return chunks.filter((chunk) => chunk.length > 0);
}

test('literal replace gives the same result however the stream is split', { timeout: 20_000 }, () => {
  fc.assert(
    fc.property(tokens(['a', 'f', 'o', 'fo', 'foo', ' ']), fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
      const expected = text.replaceAll('foo', 'BAR!');
      assert.equal(run(replaceFilter('foo', 'BAR!'), split(text, cuts)).toString('latin1'), expected);
    }),
  );
});

test('regex replace gives the same result however the stream is split', { timeout: 20_000 }, () => {
  // max_match 8 > the longest match (6), and the texts are longer, so the tail logic is exercised.
  fc.assert(
    fc.property(tokens(['a', 'b', '1', '23', ' ', 'a1b', 'a1234b', 'a12']), fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
      const expected = text.replace(/a(\d{1,4})b/g, '<$1>');
      assert.equal(run(replaceFilter('/a(\\d{1,4})b/', '<$1>', 8), split(text, cuts)).toString('latin1'), expected);
    }),
  );
});

test('regex replacement templates: $&, $$, named groups, case-insensitive flag', () => {
  assert.equal(run(replaceFilter('/(?<word>hello)/i', '[$<word>|$&|$$]'), [Buffer.from('Hello world')]).toString(), '[Hello|Hello|$] world');
});

test('non-ASCII patterns match their UTF-8 bytes', () => {
  assert.equal(run(replaceFilter('héllo', 'hi'), [Buffer.from('héllo wörld')]).toString(), 'hi wörld');
  assert.equal(run(replaceFilter('/w.rld/', 'x'), [Buffer.from('wörld w_rld')]).toString(), 'wörld x');
});

test('only a possible start of the pattern is held back, and released after `hold`', { timeout: 5_000 }, async () => {
  const filter = createReplaceFilter({ pattern: parsePattern('foo'), replacement: 'bar', maxMatch: 64, holdMs: 30 });
  const out: string[] = [];
  let released: (() => void) | undefined;
  const push = (chunk: Buffer): void => {
    out.push(chunk.toString());
    released?.();
  };
  void filter.data(Buffer.from('xyz'), push);
  assert.deepEqual(out, ['xyz'], 'nothing held when the chunk cannot start a match');
  void filter.data(Buffer.from('abcfo'), push);
  assert.deepEqual(out, ['xyz', 'abc']);
  const started = performance.now();
  // The hold timer is the only thing that can push "fo" now: wait for that push. It is
  // unref()ed (it must not keep a proxy alive), so this test keeps the event loop up itself.
  const keepAlive = setInterval(() => undefined, 1_000);
  await new Promise<void>((resolve) => (released = resolve));
  clearInterval(keepAlive);
  assert.deepEqual(out, ['xyz', 'abc', 'fo'], 'the held "fo" is released once no more data came');
  assert.ok(performance.now() - started >= 29, 'not before `hold`');
  filter.destroy?.();
});

for (const direction of DIRECTIONS) {
  test(`replace on real sockets, ${direction}: a match split over two writes is replaced`, { timeout: 10_000 }, async () => {
    const harness = await startFilterProxy({ filters: [{ type: 'replace', direction, match: 'secret', with: 'XXXXXX', hold: '5s' }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readToEnd(receiver);
      sender.write('the sec');
      // The bytes before the possible match arrive; "sec" waits for the rest.
      await readBytes(receiver, 'the '.length);
      sender.write('ret is out; a secret again');
      sender.end();
      assert.equal((await received).toString(), 'the XXXXXX is out; a XXXXXX again');
      const sent = 'the secret is out; a secret again'.length;
      // The other direction is untouched.
      const { sender: otherSender, receiver: otherReceiver } = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      const echoed = readToEnd(otherReceiver);
      otherSender.end('secret');
      assert.equal((await echoed).toString(), 'secret');
      // Same length in and out: the access log counts the bytes on the client's side.
      const line = await proxied.closed;
      assert.equal(line.reason, direction === 'to_upstream' ? 'client_closed' : 'upstream_closed');
      assert.deepEqual([line.bytes_from_client, line.bytes_to_client], direction === 'to_upstream' ? [sent, 6] : [6, sent]);
    } finally {
      await harness.dispose();
    }
  });
}

test('replace in both directions of one connection', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'replace', match: '/colou?r/', with: 'hue' }] });
  try {
    const proxied = await harness.open();
    const { atUpstream, atClient } = await exchange(proxied, 'color and colour', 'colours');
    assert.equal(atUpstream, 'hue and hue');
    assert.equal(atClient, 'hues');
    const line = await proxied.closed;
    assert.deepEqual([line.bytes_from_client, line.bytes_to_client], ['color and colour'.length, 'hues'.length]);
  } finally {
    await harness.dispose();
  }
});
