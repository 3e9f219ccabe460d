/**
 * The log lines' time (src/observability/iso-time.ts) against pino's isoTime: the same text at
 * any instant, whether the second it falls in is the one formatted last or not.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { isoTime, isoTimeAt } from '../../src/observability/iso-time.js';
import { fuzzParameters } from '../helpers/fuzz.js';

/** pino.stdTimeFunctions.isoTime at `now`. */
const expected = (now: number): string => `,"time":"${new Date(now).toISOString()}"`;

describe('the log time', () => {
  it("is pino's isoTime at any instant, in any order", () => {
    const instant = fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.integer({ min: 1_700_000_000_000, max: 1_700_000_003_000 }),
      fc.constantFrom(0, -1, 999, 1000, -1000, -1001, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001),
    );
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 20 }), (instants) => {
        for (const now of instants) assert.equal(isoTimeAt(now), expected(now), String(now));
      }),
      fuzzParameters(2_000),
    );
  });

  it('runs through every millisecond of a second, and on into the next', () => {
    for (let now = 1_700_000_000_000; now < 1_700_000_001_010; now++) assert.equal(isoTimeAt(now), expected(now));
  });

  it('reads the clock', () => {
    const before = pino.stdTimeFunctions.isoTime();
    const time = isoTime();
    assert.ok(time >= before && time <= pino.stdTimeFunctions.isoTime(), time);
  });
});
