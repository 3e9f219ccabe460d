/**
 * Fuzzing the filter pattern compiler (#12 item 3): whatever the `match` text, parsePattern
 * gives a literal with the text's UTF-8 bytes, or a global regex that cannot match the empty
 * string, or throws an Error with a one-line message (what the config error shows after the
 * key path). The partial-match helpers agree with each other and with a brute-force reference.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parsePattern, partialMatchLength, partialTextMatchLength, toByteString } from '../../src/filters/pattern.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters } from '../helpers/fuzz.js';

/** Regex-ish text: the syntax's own characters, so that most inputs reach the RegExp compiler. */
const regexPiece = fc.constantFrom(
  'a',
  'b',
  'é',
  '😀',
  '.',
  '*',
  '+',
  '?',
  '*?',
  '|',
  '^',
  '$',
  '(',
  ')',
  '(?:',
  '(?=',
  '(?!',
  '(?<=',
  '(?<n>',
  '\\k<n>',
  '[',
  ']',
  '[^',
  '-',
  '{',
  '}',
  '{2}',
  '{1,}',
  '{,3}',
  '\n',
  '\\',
  '\\b',
  '\\B',
  '\\d',
  '\\w',
  '\\s',
  '\\1',
  '\\x41',
  '\\u0041',
  '\\u{1F600}',
  '\\p{L}',
  '\\0',
  '\\n',
  '/',
  '\u0000',
  '\uD800',
);
const matchText = fc.oneof(
  fc.string({ maxLength: 30, unit: 'grapheme' }),
  fc.tuple(fc.array(regexPiece, { minLength: 1, maxLength: 10 }), fc.stringMatching(/^[a-z]{0,4}$/)).map(([pieces, flags]) => `/${pieces.join('')}/${flags}`),
  fc.array(regexPiece, { maxLength: 8 }).map((pieces) => pieces.join('')),
);

/** The longest k < needle.length with haystack[from..] ending in needle's first k bytes. */
function referencePartial(haystack: Buffer, from: number, needle: Buffer): number {
  for (let k = Math.min(needle.length - 1, haystack.length - from); k > 0; k--) {
    if (haystack.subarray(haystack.length - k).equals(needle.subarray(0, k))) return k;
  }
  return 0;
}

describe('pattern compiler fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  test('parsePattern: a literal, a regex that cannot match nothing, or an Error with one line', () => {
    let regexes = 0;
    let errors = 0;
    fc.assert(
      fc.property(matchText, fc.boolean(), (text, literal) => {
        let pattern;
        try {
          pattern = parsePattern(text, literal);
        } catch (error) {
          errors++;
          assert.ok(error instanceof Error, `threw a non-Error for ${JSON.stringify(text)}`);
          assert.ok(error.message.length > 0 && !error.message.includes('\n'), `message ${JSON.stringify(error.message)} for ${JSON.stringify(text)}`);
          // Only an empty text, or one written as /regex/, may be refused.
          assert.ok(text === '' || (!literal && /^\/.+\/[a-z]*$/s.test(text)), `refused ${JSON.stringify(text)}`);
          return;
        }
        if (pattern.kind === 'literal') {
          assert.ok(pattern.bytes.equals(Buffer.from(text, 'utf8')));
          assert.equal(pattern.text, toByteString(text));
          assert.ok(pattern.bytes.length > 0);
        } else {
          regexes++;
          assert.equal(literal, false);
          assert.ok(pattern.regex.global);
          assert.equal(new RegExp(pattern.regex.source, pattern.regex.flags.replace('g', '')).test(''), false);
          // Always used from lastIndex 0 by the filters: a compiled pattern is reusable.
          pattern.regex.lastIndex = 0;
          pattern.regex.exec(toByteString(`${text} abc é`));
        }
      }),
      fuzzParameters(20_000),
    );
    // The generator reached both the RegExp compiler's acceptances and its refusals.
    assert.ok(regexes > 100 && errors > 100, `regexes ${regexes}, errors ${errors}`);
  });

  test('regression: a line break in a bad or empty-matching regex stays on one line of the config error', () => {
    assert.throws(
      () => parsePattern('/(\na/'),
      (error: Error) => !error.message.includes('\n') && error.message.includes('(\\na'),
    );
    assert.throws(
      () => parsePattern('/\n?/'),
      (error: Error) => error.message === 'regex /\\n?/ matches the empty string',
    );
  });

  test('partial matches: the byte and the latin1 versions agree with a brute-force reference', () => {
    const bytes = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b.map((x) => x % 4)));
    fc.assert(
      fc.property(
        bytes,
        bytes.filter((n) => n.length > 0),
        fc.nat(),
        (haystack, needle, from) => {
          const start = from % (haystack.length + 1);
          const expected = referencePartial(haystack, start, needle);
          assert.equal(partialMatchLength(haystack, start, needle), expected);
          assert.equal(partialTextMatchLength(haystack.toString('latin1'), start, needle.toString('latin1')), expected);
        },
      ),
      fuzzParameters(20_000),
    );
  });
});
