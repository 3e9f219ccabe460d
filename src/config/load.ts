/**
 * Loading a configuration: read YAML or JSON (by extension), validate against the schema,
 * and return an immutable snapshot. A reload builds a new snapshot and swaps it; a
 * connection keeps the snapshot it started with.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import type { z } from 'zod';
import { didYouMean } from './did-you-mean.js';
import { knownKeys } from './known-keys.js';
import { configSchema, type ParsedConfig, type ParsedListener } from './schema.js';
import { TcpProxyError } from '../errors/errors.js';
import { requireCommonJs } from '../deps/commonjs.js';

/** A configuration problem: exit status 2, one line per offending key path. */
export class ConfigError extends TcpProxyError {
  constructor(readonly problems: readonly string[]) {
    super('config_invalid', problems.join('\n'));
  }
}

export type ListenerConfig = Readonly<ParsedListener & { name: string; index: number }>;

export interface ConfigSnapshot extends Readonly<Omit<ParsedConfig, 'listeners'>> {
  readonly listeners: readonly ListenerConfig[];
  /** The file it came from (undefined for a CLI-built config): what SIGHUP reloads. */
  readonly file: string | undefined;
  /** Where relative paths in the config (plugins, certificates, captures) are resolved. */
  readonly baseDir: string;
}

/** A key as written in a path: bare when it looks like one, else quoted (`["a b"]`), so that a path is one unambiguous line. */
const BARE_KEY = /^[A-Za-z_][\w-]*$/;

/** `listeners[0].upstreams[1].address` from zod's path array. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (!BARE_KEY.test(String(key))) out += `[${JSON.stringify(String(key))}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = formatKeyPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(configSchema, issue.path, issue.input);
    return issue.keys.map((key) => `${formatKeyPath([...issue.path, key])}: unknown key${didYouMean(key, known)}`).join('\n');
  }
  if (issue.code === 'invalid_union' && issue.discriminator !== undefined && 'options' in issue && issue.options !== undefined) {
    // An unknown filter `type`: name the types there are, and the nearest one.
    const given = (issue.input as Record<string, unknown> | undefined)?.[issue.discriminator];
    const types = issue.options.map(String);
    const got = given === undefined ? 'got nothing' : `got ${JSON.stringify(given)}${typeof given === 'string' ? didYouMean(given, types) : ''}`;
    return `${path}: expected one of ${types.join(', ')}, ${got}`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return `${path}: required`;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${path}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
  }
  return `${path}: ${issue.message}`;
}

/** Validates a raw object (parsed from a file or built from CLI flags) into a snapshot. */
export function buildSnapshot(raw: unknown, source: { file?: string; baseDir?: string } = {}): ConfigSnapshot {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(result.error.issues.flatMap((i) => describeIssue(i).split('\n')));
  const parsed = result.data;
  const listeners = parsed.listeners.map((listener, index) => ({ ...listener, index, name: listener.name ?? `listener-${index}` }));
  const seen = new Map<string, number>();
  const problems: string[] = [];
  listeners.forEach((listener, index) => {
    const first = seen.get(listener.name);
    if (first !== undefined) problems.push(`listeners[${index}].name: "${listener.name}" is already used by listeners[${first}]`);
    seen.set(listener.name, index);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    ...parsed,
    listeners,
    file: source.file,
    baseDir: source.baseDir ?? (source.file ? dirname(source.file) : process.cwd()),
  });
}

/**
 * Reads and validates a config file; every failure is a ConfigError naming the file or key.
 * `adjust` lets command-line overrides (log level, admin address...) apply before validation.
 */
export async function loadConfigFile(file: string, adjust: (raw: unknown) => unknown = (raw) => raw): Promise<ConfigSnapshot> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  let raw: unknown;
  try {
    // A config is JSON-shaped: YAML 1.1 tags (!!binary, !!set, !!timestamp...) stay strings
    // rather than becoming a Buffer, Set or Date that no key path can name (#12 fuzzing),
    // and YAML's warnings are not printed as Node process warnings.
    // yaml is loaded with the first file that needs it: a proxy started from the command line never does.
    raw = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : requireCommonJs('yaml').parse(text, { resolveKnownTags: false, logLevel: 'error' });
  } catch (err) {
    throw new ConfigError([`${file}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`]);
  }
  return buildSnapshot(adjust(raw), { file: path });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value) && !(value instanceof RegExp)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
