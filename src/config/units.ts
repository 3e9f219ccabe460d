/**
 * Durations and byte sizes as config values (zod v4): what the user writes ("250ms", "64KiB"
 * or a plain number) in, milliseconds and bytes out, with the parser's message as the issue.
 */
import { z } from 'zod';
import { parseByteSize } from './byte-size.js';
import { parseDuration } from './duration.js';

function convert(parse: (value: unknown) => number) {
  return z.unknown().transform((value, ctx): number => {
    try {
      return parse(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/** A duration ("250ms", "5s", "2m" or milliseconds), as milliseconds. */
export const duration = convert(parseDuration);
/** A size (65536, "64KiB", "1MB"), as bytes. */
export const byteSize = convert(parseByteSize);
