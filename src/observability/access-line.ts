/**
 * The access-log line built directly from the parts pino caches (level prefix, time,
 * bindings, line end), byte for byte what `logger.info(obj, msg)` writes. pino's generic
 * path (an object spread per line, then a for..in with a type switch per value) was ~11% of
 * the proxy's CPU per connection. A logger configured beyond what `openLogs()` does
 * (mixin, hooks, serializers, redaction, a stream that wants metadata...) is left to pino.
 */
import type { Logger } from 'pino';
import { requireCommonJs } from '../deps/commonjs.js';

const { pino } = requireCommonJs('pino');
const symbols = pino.symbols;

/** What a pino logger holds under its symbols (lib/symbols.js): what the line is made of and what decides whether it may be. */
interface PinoParts {
  readonly [symbols.lsCacheSym]: Readonly<Record<number, string | undefined>>;
  readonly [symbols.timeSym]: () => string;
  readonly [symbols.chindingsSym]: string;
  readonly [symbols.endSym]: string;
  readonly [symbols.streamSym]: { write(line: string): unknown; readonly [symbols.needsMetadataGsym]?: boolean } | undefined;
  readonly [symbols.stringifySym]: (value: unknown, safe: unknown) => string | undefined;
  readonly [symbols.stringifySafeSym]: unknown;
  readonly [symbols.stringifiersSym]: object | undefined;
  readonly [symbols.serializersSym]: Readonly<Record<string, unknown>> | undefined;
  readonly [symbols.formattersSym]: { readonly log?: unknown } | undefined;
  readonly [symbols.hooksSym]: { readonly logMethod?: unknown; readonly streamWrite?: unknown } | undefined;
  readonly [symbols.mixinSym]: unknown;
  readonly [symbols.messageKeySym]: unknown;
  readonly [symbols.errorKeySym]: unknown;
  readonly [symbols.nestedKeySym]: unknown;
}
type PinoLogger = Logger & PinoParts;

/** Writes one access line; false when pino has to write it (the caller then logs the object as before). */
export type AccessLineWriter = (logger: Logger, reason: string, record: Readonly<Record<string, unknown>>, fields: readonly string[] | null) => boolean;

/**
 * The writer of one kind of line (`event` and `msg` fixed). `fields` is `log.access_fields`
 * after `event` (null: `reason` then every field of the record, as the spread
 * `{ event, reason, ...record }` orders them).
 */
export function accessLineWriter(event: string, message: string): AccessLineWriter {
  const eventMember = ',"event":' + asString(event);
  const reasonKey = eventMember + ',"reason":';
  const messageMember = ',"msg":' + asString(message);
  return (logger, reason, record, fields) => {
    if (!plainJson(logger)) return false;
    if (!logger.isLevelEnabled('info')) return true;
    // 30: info's level number (isPlain checked it).
    let line = logger[symbols.lsCacheSym][30]! + logger[symbols.timeSym]() + logger[symbols.chindingsSym];
    if (fields === null) {
      line += reasonKey + asString(reason);
      for (const key in record) {
        if (!Object.prototype.hasOwnProperty.call(record, key)) continue;
        // The spread would move a record's event/reason into the first two places and its
        // index keys ('0') before them (a key starting with a digit, or lower, goes to pino);
        // pino maps an object with a `socket` (and `method`, `headers`) as an HTTP request.
        if (key === 'event' || key === 'reason' || key === 'socket' || key.charCodeAt(0) <= 57) return false;
        const member = memberOf(logger, key, record[key]);
        if (member === undefined) return false;
        line += member;
      }
    } else {
      line += eventMember;
      for (const field of fields) {
        const member = memberOf(logger, field, field === 'reason' ? reason : record[field]);
        if (member === undefined) return false;
        line += member;
      }
    }
    logger[symbols.streamSym]!.write(line + messageMember + logger[symbols.endSym]);
    return true;
  };
}

/**
 * `,"key":value` as pino's asJson writes it ('' where it leaves the key out), or undefined
 * where its err serializer (on `err`) or its HTTP-response mapping (a `setHeader` function)
 * could change the line.
 */
function memberOf(logger: PinoLogger, key: string, value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return keyPrefix(key) + asString(value);
    case 'number':
      return keyPrefix(key) + (Number.isFinite(value) ? String(value) : 'null');
    case 'boolean':
      return keyPrefix(key) + String(value);
    case 'undefined':
      return '';
    default: {
      if (key === 'err' || key === 'setHeader') return undefined;
      if (typeof value === 'function') return '';
      const text = value === null ? 'null' : logger[symbols.stringifySym](value, logger[symbols.stringifySafeSym]);
      return text === undefined ? '' : keyPrefix(key) + text;
    }
  }
}

/**
 * `,"key":` by key: quoting the same few keys again on every line cost more than the values.
 * Bounded, since nothing but practice limits a record's keys to a few.
 */
const keyPrefixes = new Map<string, string>();

function keyPrefix(key: string): string {
  let prefix = keyPrefixes.get(key);
  if (prefix === undefined) {
    prefix = ',' + asString(key) + ':';
    if (keyPrefixes.size < 64) keyPrefixes.set(key, prefix);
  }
  return prefix;
}

/** Whether a logger's lines are plain JSON this module can write; decided once per logger (its options are fixed at creation). */
const plainLoggers = new WeakMap<Logger, boolean>();

function plainJson(logger: Logger): logger is PinoLogger {
  let plain = plainLoggers.get(logger);
  if (plain === undefined) {
    plain = isPlain(logger as PinoLogger);
    plainLoggers.set(logger, plain);
  }
  return plain;
}

function isPlain(logger: PinoLogger): boolean {
  const stream = logger[symbols.streamSym];
  const hooks = logger[symbols.hooksSym];
  const stringifiers = logger[symbols.stringifiersSym];
  return (
    typeof stream?.write === 'function' &&
    // pino.multistream reads the level and object of the line pino is writing.
    stream[symbols.needsMetadataGsym] !== true &&
    typeof logger.isLevelEnabled === 'function' &&
    logger.levels?.values['info'] === 30 &&
    typeof logger[symbols.lsCacheSym]?.[30] === 'string' &&
    typeof logger[symbols.timeSym] === 'function' &&
    typeof logger[symbols.chindingsSym] === 'string' &&
    typeof logger[symbols.endSym] === 'string' &&
    typeof logger[symbols.stringifySym] === 'function' &&
    hooks !== undefined &&
    hooks.logMethod === undefined &&
    hooks.streamWrite === undefined &&
    logger[symbols.formattersSym]?.log === undefined &&
    logger[symbols.mixinSym] === undefined &&
    logger.msgPrefix === undefined &&
    logger[symbols.messageKeySym] === 'msg' &&
    logger[symbols.errorKeySym] === 'err' &&
    logger[symbols.nestedKeySym] === null &&
    // Redaction installs stringifiers; custom serializers apply by key.
    stringifiers !== undefined &&
    Reflect.ownKeys(stringifiers).length === 0 &&
    onlyPinosErrSerializer(logger[symbols.serializersSym])
  );
}

/** pino's default, which changes only an error-like value (under `err`, which memberOf leaves to pino). */
function onlyPinosErrSerializer(serializers: Readonly<Record<string, unknown>> | undefined): boolean {
  if (serializers === undefined || Object.getPrototypeOf(serializers) !== null) return false;
  const keys = Reflect.ownKeys(serializers);
  return keys.length === 0 || (keys.length === 1 && keys[0] === 'err' && serializers['err'] === pino.stdSerializers.err);
}

/**
 * pino's asString (lib/tools.js): below Node 25, a string of up to 100 characters without a
 * control character is quoted with only `"` and `\` escaped (a lone surrogate stays as it
 * is, where JSON.stringify escapes it); anything else goes through JSON.stringify.
 */
const asString = Number(process.versions.node.split('.')[0]) >= 25 ? (text: string) => JSON.stringify(text) : quote;

function quote(text: string): string {
  if (text.length > 100) return JSON.stringify(text);
  let escaped = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 32) return JSON.stringify(text);
    if (code === 34 || code === 92) {
      escaped += text.slice(last, i) + '\\';
      last = i;
    }
  }
  return '"' + escaped + text.slice(last) + '"';
}
