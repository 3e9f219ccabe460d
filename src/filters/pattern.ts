/**
 * The `match` of replace and block: a literal string, or `/regex/flags`.
 *
 * The stream is bytes, so regexes run on latin1 strings (one char per byte, lossless for
 * any data). A pattern's non-ASCII characters are turned into their UTF-8 bytes, so a
 * literal `é` in a pattern matches the UTF-8 bytes of `é` on the wire (inside a regex
 * character class it would stand for its bytes separately).
 */
import { TcpProxyError } from '../errors/errors.js';
export type Pattern = LiteralPattern | RegexPattern;

export interface LiteralPattern {
  readonly kind: 'literal';
  /** The UTF-8 bytes to find. */
  readonly bytes: Buffer;
  /** The same bytes as a latin1 string. */
  readonly text: string;
}

export interface RegexPattern {
  readonly kind: 'regex';
  /** Global (for exec loops); always used from lastIndex 0, synchronously. */
  readonly regex: RegExp;
}

const REGEX_LITERAL = /^\/(.+)\/([a-z]*)$/s;
const ALLOWED_FLAGS = /^[gimsu]*$/;

/** UTF-8 text -> the latin1 string of its bytes. */
export function toByteString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * Parses a `match` value; throws an Error with a readable message when a regex is invalid.
 * `literal: true` takes the text as is even when it looks like `/.../`.
 */
export function parsePattern(match: string, literal = false): Pattern {
  const regexLiteral = literal ? null : REGEX_LITERAL.exec(match);
  if (!regexLiteral) {
    if (match.length === 0) throw new TcpProxyError('config_invalid', 'must not be empty');
    const bytes = Buffer.from(match, 'utf8');
    return { kind: 'literal', bytes, text: bytes.toString('latin1') };
  }
  const source = regexLiteral[1]!;
  const flags = regexLiteral[2]!;
  if (!ALLOWED_FLAGS.test(flags)) throw new TcpProxyError('config_invalid', `unsupported regex flags "${flags}" (allowed: i, m, s, u)`);
  let regex: RegExp;
  try {
    regex = new RegExp(toByteString(source), flags.replace('g', '') + 'g');
  } catch (error) {
    throw new TcpProxyError('config_invalid', oneLine((error as Error).message));
  }
  if (new RegExp(regex.source, regex.flags.replace('g', '')).test('')) {
    throw new TcpProxyError('config_invalid', `regex ${oneLine(match)} matches the empty string`);
  }
  return { kind: 'regex', regex };
}

/** A config error is one line per key: line breaks in a pattern are shown escaped (found by fuzzing, #12). */
function oneLine(text: string): string {
  return text.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/**
 * The length of the longest suffix of `haystack` (from `from` on) that is a proper prefix
 * of `needle`: the bytes to hold back because the next chunk may complete a match.
 */
export function partialMatchLength(haystack: Buffer, from: number, needle: Buffer): number {
  const end = haystack.length;
  const first = needle[0];
  for (let k = Math.min(needle.length - 1, end - from); k > 0; k--) {
    if (haystack[end - k] === first && haystack.compare(needle, 0, k, end - k, end) === 0) return k;
  }
  return 0;
}

/** The same as partialMatchLength, on latin1 strings. */
export function partialTextMatchLength(haystack: string, from: number, needle: string): number {
  const end = haystack.length;
  const first = needle.charCodeAt(0);
  for (let k = Math.min(needle.length - 1, end - from); k > 0; k--) {
    if (haystack.charCodeAt(end - k) === first && haystack.startsWith(needle.slice(0, k), end - k)) return k;
  }
  return 0;
}
