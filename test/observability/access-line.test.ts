/**
 * The access line written directly (src/observability/access-line.ts) against the line pino
 * writes for the same call: byte for byte, for records of every shape, close and reject, with
 * and without `log.access_fields`, on a logger and its children; and the loggers it leaves to pino.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { ACCESS_FIELDS, logClose, logReject, selectAccessFields, type AccessField, type AccessRecord } from '../../src/observability/access-log.js';
import { accessLineWriter } from '../../src/observability/access-line.js';
import { CLOSE_REASONS, REJECT_REASONS } from '../../src/observability/reasons.js';
import { createLogger } from '../../src/observability/logger.js';
import { fuzzParameters } from '../helpers/fuzz.js';

/** A destination that keeps every write. */
class Recorder {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
}

/** Both paths call the logger's own time function: a fixed one makes their lines comparable. */
const fixedTime = (): string => ',"time":"2026-11-30T06:31:45.853Z"';
/** openLogs()'s options, with the time fixed. */
const OPEN_LOGS: LoggerOptions = { level: 'info', base: { pid: process.pid }, formatters: { level: (label) => ({ level: label }) }, timestamp: fixedTime };
/** pino's defaults (numeric level, hostname, epoch time), as in the tests' memoryLogger(). */
const PINO_DEFAULTS: LoggerOptions = { level: 'info', timestamp: fixedTime };

/** An identity streamWrite hook changes no byte but makes the access line go through pino. */
const throughPino = (options: LoggerOptions): LoggerOptions => ({ ...options, hooks: { streamWrite: (line: string) => line } });

interface Pair {
  readonly direct: Logger;
  readonly reference: Logger;
  readonly directLines: Recorder;
  readonly referenceLines: Recorder;
}

function pair(options: LoggerOptions, derive: (logger: Logger) => Logger = (logger) => logger): Pair {
  const directLines = new Recorder();
  const referenceLines = new Recorder();
  return { direct: derive(pino(options, directLines)), reference: derive(pino(throughPino(options), referenceLines)), directLines, referenceLines };
}

const PAIRS = {
  'openLogs() logger': pair(OPEN_LOGS),
  'worker child': pair(OPEN_LOGS, (logger) => logger.child({ worker: 3 })),
  'pipeline grandchild': pair(OPEN_LOGS, (logger) => logger.child({ worker: 3 }).child({ listener: 'we"b\n' })),
  'pino defaults': pair(PINO_DEFAULTS),
};

const writeClose = accessLineWriter('close', 'connection closed');

const EDGE_STRINGS = [
  '',
  '"',
  '\\',
  'a"b\\c"',
  '\n',
  'tab\there',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u2028\u2029',
  '\ud800',
  'x\udc00y',
  'é',
  '🙂',
  '127.0.0.1:5000',
  '[::1]:443',
  'x'.repeat(100),
  'x'.repeat(101),
  '"'.repeat(100),
  '\\'.repeat(101),
  'y'.repeat(99) + '\n',
  // pino quotes up to 100 characters itself (a lone surrogate stays), longer ones with JSON.stringify (it is escaped).
  'x'.repeat(99) + '\ud800',
  'x'.repeat(100) + '\ud800',
];
const text = fc.oneof(
  fc.constantFrom(...EDGE_STRINGS),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', 'é', '\ud83d', '\ude42'), maxLength: 110 }),
);
const number = fc.oneof(fc.constantFrom(0, -0, 1, 0.1, 1.5e-7, 2 ** 53, 1e21, -1, Number.MAX_VALUE, NaN, Infinity, -Infinity), fc.nat(), fc.double());
const nested = fc.oneof(
  fc.record({ version: text, cipher: text, sni: fc.option(text, { nil: undefined }), alpn: fc.option(text) }, { requiredKeys: ['version', 'cipher'] }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.object({ maxDepth: 2 }),
);
const value = fc.oneof(
  text,
  number,
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  nested,
  fc.constant(10n),
  fc.constant(() => 1),
);
/** Extra keys: the real ones, made-up ones, and those the spread or pino treat apart (those go through pino). */
const extraKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('error', 'error_code', 'proxied_client', 'tls', 'note', 'key"quoted', 'ключ') },
  { weight: 1, arbitrary: fc.constantFrom('event', 'reason', 'socket', 'err', 'setHeader', '0', '12', '1a', '-x', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const record = fc
  .record({
    id: text,
    listener: text,
    client: text,
    upstream: fc.option(text),
    bytes_from_client: number,
    bytes_to_client: number,
    duration_ms: number,
    extras: fc.array(fc.tuple(extraKey, value), { maxLength: 5 }),
  })
  .map(({ extras, ...fixed }): AccessRecord => {
    const result: Record<string, unknown> = { ...fixed };
    for (const [key, extra] of extras) result[key] = extra;
    return result as AccessRecord;
  });
const selection = fc.option(
  fc.subarray([...ACCESS_FIELDS], { minLength: 1 }).chain((fields) => fc.shuffledSubarray(fields, { minLength: fields.length })),
  {
    nil: undefined,
  },
);

/** A close record of a connection that exchanged nothing, with `fields` over it (their keys keep the record's order). */
function closeRecord(id: string, fields: Partial<AccessRecord> = {}): AccessRecord {
  return { id, listener: 'l', client: 'c', upstream: null, bytes_from_client: 0, bytes_to_client: 0, duration_ms: 0, ...fields };
}

/** What a connection that reached its upstream and exchanged a few bytes adds. */
const EXCHANGED = { upstream: 'u', bytes_from_client: 1, bytes_to_client: 2, duration_ms: 3 } as const;

function lastLine(recorder: Recorder): string {
  assert.equal(recorder.lines.length, 1);
  return recorder.lines.pop()!;
}

describe('the access line written directly', () => {
  afterEach(() => selectAccessFields(undefined));

  it('is the line pino writes, byte for byte', () => {
    fc.assert(
      fc.property(
        record,
        fc.constantFrom(...CLOSE_REASONS),
        fc.constantFrom(...REJECT_REASONS),
        selection,
        (access: AccessRecord, closeReason, rejectReason, fields: AccessField[] | undefined) => {
          selectAccessFields(fields);
          for (const [name, { direct, reference, directLines, referenceLines }] of Object.entries(PAIRS)) {
            logClose(direct, closeReason, access);
            logClose(reference, closeReason, access);
            assert.equal(lastLine(directLines), lastLine(referenceLines), `close, ${name}`);
            logReject(direct, rejectReason, access);
            logReject(reference, rejectReason, access);
            assert.equal(lastLine(directLines), lastLine(referenceLines), `reject, ${name}`);
          }
        },
      ),
      fuzzParameters(2_000),
    );
  });

  it('leaves to pino the records it would write differently from a spread (same bytes)', () => {
    const base: AccessRecord = closeRecord('c0');
    const odd: Record<string, unknown>[] = [
      { event: 'other' },
      { event: undefined },
      { reason: 'mine' },
      { 0: 'index key first', 7: 'then this' },
      { method: 'GET', headers: { host: 'x' }, socket: { remoteAddress: '1.2.3.4' } },
      { setHeader: () => undefined, statusCode: 200 },
      { err: new Error('boom') },
      { err: { message: 'error-like', code: 'E' } },
    ];
    const { direct, reference, directLines, referenceLines } = PAIRS['worker child'];
    for (const extra of odd) {
      const access = { ...base, ...extra };
      assert.equal(writeClose(direct, 'error', access, null), false, JSON.stringify(Object.keys(extra)));
      logClose(direct, 'error', access);
      logClose(reference, 'error', access);
      assert.equal(lastLine(directLines), lastLine(referenceLines));
    }
  });

  it('writes only a record’s own fields, as the spread copies them', () => {
    const access = Object.assign(Object.create({ inherited: 'not copied' }) as object, closeRecord('c6', EXCHANGED));
    const { direct, reference, directLines, referenceLines } = PAIRS['openLogs() logger'];
    assert.equal(writeClose(direct, 'client_closed', access, null), true);
    logClose(reference, 'client_closed', access);
    assert.equal(lastLine(directLines), lastLine(referenceLines));
  });

  it('writes the proxy’s usual records itself, and they parse as the fields given', () => {
    const access: AccessRecord = {
      id: 'c1',
      listener: 'web',
      client: '10.0.0.1:40000',
      upstream: null,
      bytes_from_client: 0,
      bytes_to_client: 1.5,
      duration_ms: 12,
      error: 'ECONNRESET',
      error_code: 'ECONNRESET',
      tls: { version: 'TLSv1.3', sni: 'a"b' },
    };
    for (const fields of [undefined, ['client', 'reason', 'tls', 'error'] as const]) {
      selectAccessFields(fields);
      for (const [name, { direct, reference, directLines, referenceLines }] of Object.entries(PAIRS)) {
        assert.equal(writeClose(direct, 'client_closed', access, fields ?? null), true, name);
        assert.equal(writeClose(reference, 'client_closed', access, null), false, name);
        const line = lastLine(directLines);
        logClose(reference, 'client_closed', access);
        assert.equal(line, lastLine(referenceLines), name);
      }
    }
    selectAccessFields(undefined);
    logClose(PAIRS['worker child'].direct, 'error', access);
    assert.deepEqual(JSON.parse(lastLine(PAIRS['worker child'].directLines)), {
      level: 'info',
      time: '2026-11-30T06:31:45.853Z',
      pid: process.pid,
      worker: 3,
      event: 'close',
      reason: 'error',
      ...access,
      msg: 'connection closed',
    });
  });

  it("follows openLogs()'s logger, time included", () => {
    const recorder = new Recorder();
    const logger = createLogger({ level: 'info', destination: recorder });
    const access: AccessRecord = closeRecord('c2', EXCHANGED);
    const before = new Date().toISOString();
    assert.equal(writeClose(logger, 'shutdown', access, null), true);
    const line = lastLine(recorder);
    const time = /,"time":"([^"]+)"/.exec(line)![1]!;
    assert.ok(time >= before && time <= new Date().toISOString(), time);
    assert.equal(
      line,
      `{"level":"info","time":"${time}","pid":${process.pid},"event":"close","reason":"shutdown","id":"c2","listener":"l","client":"c","upstream":"u","bytes_from_client":1,"bytes_to_client":2,"duration_ms":3,"msg":"connection closed"}\n`,
    );
  });

  it('writes nothing below the level, and follows a level changed later (reload)', () => {
    const recorder = new Recorder();
    const logger = createLogger({ level: 'warn', destination: recorder });
    const access: AccessRecord = closeRecord('c3');
    logClose(logger, 'client_closed', access);
    logReject(logger, 'acl', access);
    assert.deepEqual(recorder.lines, []);
    logger.level = 'info';
    logClose(logger, 'client_closed', access);
    assert.equal(recorder.lines.length, 1);
    logger.level = 'silent';
    logReject(logger.child({ worker: 1 }), 'acl', access);
    assert.equal(recorder.lines.length, 1);
  });

  it('leaves a multistream (it wants each line’s metadata) to pino, which writes the same line', () => {
    const streams = [new Recorder(), new Recorder()];
    const multi = pino(OPEN_LOGS, pino.multistream(streams.map((stream) => ({ stream, level: 'trace' as const })))).child({ worker: 2 });
    const { direct, directLines } = pair(OPEN_LOGS, (logger) => logger.child({ worker: 2 }));
    const access = closeRecord('c4', { ...EXCHANGED, proxied_client: '1.2.3.4:5' });
    assert.equal(writeClose(multi, 'client_closed', access, null), false);
    logClose(multi, 'client_closed', access);
    logClose(direct, 'client_closed', access);
    const expected = lastLine(directLines);
    for (const stream of streams) assert.deepEqual(stream.lines, [expected]);
  });

  it('leaves to pino a logger configured beyond openLogs()', () => {
    const access: AccessRecord = closeRecord('c5');
    const root = (options: LoggerOptions): Logger => pino({ ...OPEN_LOGS, ...options }, new Recorder());
    const loggers: Record<string, Logger> = {
      mixin: root({ mixin: () => ({ extra: 1 }) }),
      'logMethod hook': root({
        hooks: {
          logMethod(args, method) {
            method.apply(this, args);
          },
        },
      }),
      'log formatter': root({ formatters: { level: (label) => ({ level: label }), log: (object) => object } }),
      serializers: root({ serializers: { client: () => 'hidden' } }),
      redact: root({ redact: ['client'] }),
      'message key': root({ messageKey: 'message' }),
      'error key': root({ errorKey: 'error' }),
      'nested key': root({ nestedKey: 'payload' }),
      'child msgPrefix': root({}).child({}, { msgPrefix: '[x] ' }),
      'child redact': root({}).child({}, { redact: ['client'] }),
      'child serializers': root({}).child({}, { serializers: { id: () => 'x' } }),
      'not a pino logger': { info: () => undefined, isLevelEnabled: () => true } as unknown as Logger,
    };
    for (const [name, logger] of Object.entries(loggers)) assert.equal(writeClose(logger, 'client_closed', access, null), false, name);
  });
});
