/**
 * `replace`: rewrites every match of a literal or `/regex/` in the stream, also matches that
 * span chunk boundaries. The tail that could be the start of a match is held back (bounded:
 * the pattern's length - 1 for a literal, `max_match` bytes for a regex) until more data,
 * the end of the stream, or `hold` ms without data, whichever comes first; a match split
 * by a pause longer than `hold` is passed through unchanged.
 */
import type { Filter, Push } from './filter.js';
import { HoldTimer } from './hold-timer.js';
import { partialMatchLength, toByteString, type Pattern, type RegexPattern } from './pattern.js';

export interface ReplaceOptions {
  readonly pattern: Pattern;
  /** UTF-8 text; for a regex, `$&`, `$1`..`$99`, `$<name>` and `$$` are expanded. */
  readonly replacement: string;
  /** The longest regex match found across a chunk boundary (bytes held back). */
  readonly maxMatch: number;
  readonly holdMs: number;
}

/** The part of a replacer that knows the pattern kind; the filter adds the hold timer. */
interface Replacer {
  /** Pushes what is final, keeps what a later chunk might still change. */
  feed(chunk: Buffer, push: Push): void;
  /** Pushes the held tail, replaced as if the stream ended here. */
  flush(push: Push): void;
  readonly holding: boolean;
}

const EMPTY = Buffer.alloc(0);

class LiteralReplacer implements Replacer {
  private tail = EMPTY;

  constructor(
    private readonly needle: Buffer,
    private readonly replacement: Buffer,
  ) {}

  get holding(): boolean {
    return this.tail.length > 0;
  }

  feed(chunk: Buffer, push: Push): void {
    const data = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const { needle } = this;
    let at = data.indexOf(needle);
    if (at === -1) {
      // The common case: no match, pass the chunk on without copying.
      const keep = partialMatchLength(data, 0, needle);
      if (data.length > keep) push(keep === 0 ? data : data.subarray(0, data.length - keep));
      this.keepTail(data, keep);
      return;
    }
    const parts: Buffer[] = [];
    let position = 0;
    while (at !== -1) {
      if (at > position) parts.push(data.subarray(position, at));
      parts.push(this.replacement);
      position = at + needle.length;
      at = data.indexOf(needle, position);
    }
    const keep = partialMatchLength(data, position, needle);
    parts.push(data.subarray(position, data.length - keep));
    push(Buffer.concat(parts));
    this.keepTail(data, keep);
  }

  flush(push: Push): void {
    // A held tail is shorter than the needle: it cannot contain a match.
    if (this.tail.length > 0) push(this.tail);
    this.tail = EMPTY;
  }

  private keepTail(data: Buffer, keep: number): void {
    // A copy, so that a few held bytes do not pin a whole 64 KiB chunk.
    this.tail = keep === 0 ? EMPTY : Buffer.from(data.subarray(data.length - keep));
  }
}

class RegexReplacer implements Replacer {
  private tail = '';
  private readonly regex: RegExp;
  private readonly expand: (match: RegExpExecArray) => string;

  constructor(
    pattern: RegexPattern,
    replacement: string,
    private readonly maxMatch: number,
  ) {
    this.regex = pattern.regex;
    this.expand = compileReplacement(toByteString(replacement));
  }

  get holding(): boolean {
    return this.tail.length > 0;
  }

  feed(chunk: Buffer, push: Push): void {
    const text = this.tail + chunk.toString('latin1');
    // A match starting in the last maxMatch bytes may still grow with the next chunk.
    this.replace(text, text.length - this.maxMatch, push);
  }

  flush(push: Push): void {
    if (this.tail.length > 0) this.replace(this.tail, Infinity, push);
  }

  /** Replaces matches that start before `deferFrom`; holds the text from there on. */
  private replace(text: string, deferFrom: number, push: Push): void {
    const { regex } = this;
    regex.lastIndex = 0;
    let out = '';
    let position = 0;
    for (let match = regex.exec(text); match !== null && match.index < deferFrom; match = regex.exec(text)) {
      out += text.slice(position, match.index) + this.expand(match);
      position = match.index + match[0].length;
      if (match[0].length === 0) regex.lastIndex++;
    }
    const keepFrom = Math.max(position, Math.min(deferFrom, text.length));
    out += text.slice(position, keepFrom);
    this.tail = text.slice(keepFrom);
    if (out.length > 0) push(Buffer.from(out, 'latin1'));
  }
}

type ReplacementPart = string | number | { readonly group: string };

/**
 * Pre-parses a replacement template ($$, $&, $1..$99, $<name>) once, so that each match is
 * expanded without re-scanning the template. `$\`` and `$'` are not supported: a stream has
 * no fixed "before" and "after".
 */
export function compileReplacement(template: string): (match: RegExpExecArray) => string {
  const parts: ReplacementPart[] = [];
  let literal = '';
  const token = /\$(\$|&|\d{1,2}|<([^>]+)>)/g;
  let last = 0;
  for (let m = token.exec(template); m !== null; m = token.exec(template)) {
    literal += template.slice(last, m.index);
    last = m.index + m[0].length;
    const [, what, name] = m;
    if (what === '$') {
      literal += '$';
      continue;
    }
    if (literal) parts.push(literal);
    literal = '';
    if (what === '&') parts.push(0);
    else if (name !== undefined) parts.push({ group: name });
    else parts.push(Number(what));
  }
  literal += template.slice(last);
  if (literal) parts.push(literal);
  if (parts.every((part) => typeof part === 'string')) {
    const constant = parts.join('');
    return () => constant;
  }
  return (match) => {
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') out += part;
      else if (typeof part === 'number') out += match[part] ?? '';
      else out += match.groups?.[part.group] ?? '';
    }
    return out;
  };
}

class ReplaceFilter implements Filter {
  private readonly hold: HoldTimer;
  /** The push to release a held tail with when the hold expires (stable per stage). */
  private push: Push | undefined;

  constructor(
    private readonly replacer: Replacer,
    holdMs: number,
  ) {
    this.hold = new HoldTimer(holdMs, this.release);
  }

  data(chunk: Buffer, push: Push): void {
    this.push = push;
    this.replacer.feed(chunk, push);
    if (this.replacer.holding) this.hold.arm();
    else this.hold.cancel();
  }

  end(push: Push): void {
    this.hold.cancel();
    this.replacer.flush(push);
  }

  destroy(): void {
    this.hold.cancel();
  }

  private readonly release = (): void => {
    if (this.push) this.replacer.flush(this.push);
  };
}

export function createReplaceFilter(options: ReplaceOptions): Filter {
  const { pattern } = options;
  const replacer =
    pattern.kind === 'literal'
      ? new LiteralReplacer(pattern.bytes, Buffer.from(options.replacement, 'utf8'))
      : new RegexReplacer(pattern, options.replacement, options.maxMatch);
  return new ReplaceFilter(replacer, options.holdMs);
}
