/**
 * Fuzzing the config loader (#12 item 3): random YAML/JSON documents and mutations of a
 * valid config that uses every section. Whatever the input, loading either gives a
 * snapshot whose listeners can be built (their certificates, plugins and patterns load:
 * what `--check` does), or fails with a ConfigError whose every line names a key path or the
 * file: never another exception, never a stack trace. In-process for volume; a few documents
 * go through bin/tcpproxy for the exit status (2) and the message on stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { pino } from 'pino';
import { buildSnapshot, ConfigError, loadConfigFile, type ConfigSnapshot } from '../../src/config/load.js';
import { ProxyMetrics } from '../../src/observability/metrics.js';
import type { ListenerContext } from '../../src/proxy/listener-context.js';
import { buildListenerContext, checkListenerResources, retireContext } from '../../src/runtime/build-context.js';
import { BIN } from '../helpers/ops.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters } from '../helpers/fuzz.js';

/** A config touching every section the schema knows (no files: certificates and plugins are other tests'). */
const FULL = {
  admin: { listen: '127.0.0.1:0', token: 'secret' },
  log: { level: 'info', format: 'json' },
  shutdown_timeout: '30s',
  workers: 1,
  listeners: [
    {
      name: 'main',
      listen: '127.0.0.1:0',
      upstreams: ['127.0.0.1:9000', { address: '[::1]:9001', weight: 3, max_connections: 100 }],
      balance: 'least_connections',
      connect_timeout: '5s',
      connect_retries: 2,
      idle_timeout: '5m',
      max_lifetime: '1h',
      buffer_size: '64KiB',
      max_connections: 1000,
      max_connections_per_ip: 50,
      new_connections_per_ip: { limit: 20, per: '1s' },
      on_limit: 'queue',
      queue_timeout: '10s',
      max_queue: 10,
      access: {
        allow: ['10.0.0.0/8', '::1', '127.0.0.1'],
        deny: ['10.9.0.0/16'],
        schedule: { timezone: 'Europe/Paris', windows: [{ days: ['mon', 'fri'], from: '08:00', to: '18:30' }], enforce: 'close' },
      },
      health_check: { interval: '5s', timeout: '1s', healthy_threshold: 2, unhealthy_threshold: 3, send: 'PING\r\n', expect: '/^\\+PONG/i' },
      proxy_protocol: { send: 'v2', accept: 'any', trusted: ['127.0.0.0/8'], timeout: '2s' },
      inspect: { log_data: 'hex' },
      filters: [
        { type: 'replace', direction: 'to_upstream', match: 'foo', with: 'bar' },
        { type: 'replace', direction: 'to_client', match: '/b(a+)r/i', with: '$1', max_match: 64, hold: '20ms' },
        { type: 'block', direction: 'to_upstream', match: 'DROP TABLE' },
        { type: 'throttle', direction: 'to_client', bytes_per_second: 1048576, burst: '64KiB' },
        { type: 'delay', direction: 'both', latency: '50ms', jitter: '5ms' },
        { type: 'reset_after', direction: 'to_client', bytes: 1000 },
        { type: 'slice', direction: 'to_upstream', size: 10, delay: '1ms' },
        { type: 'drop_connection_probability', probability: 0.5 },
      ],
    },
    {
      name: 'sni',
      listen: '[::1]:0',
      upstreams: ['127.0.0.1:9443'],
      routes: [{ sni: '*.example.com', upstreams: ['127.0.0.1:9444'], balance: 'random' }],
    },
  ],
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value in `doc` (the empty path is the document itself). */
function paths(doc: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(doc)) doc.forEach((item, i) => out.push(...paths(item, [...prefix, i])));
  else if (doc !== null && typeof doc === 'object') for (const [key, value] of Object.entries(doc)) out.push(...paths(value, [...prefix, key]));
  return out;
}

type Mutation = { kind: 'set'; value: Json } | { kind: 'delete' } | { kind: 'rename'; key: string } | { kind: 'add'; key: string; value: Json };

/** Applies one mutation at `path` of a deep copy of `doc`. */
function mutate(doc: Json, path: (string | number)[], mutation: Mutation): Json {
  if (path.length === 0) return mutation.kind === 'set' ? mutation.value : doc;
  const copy = structuredClone(doc) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  const value = parent[last]!;
  switch (mutation.kind) {
    case 'set':
      parent[last] = mutation.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case 'rename':
      if (Array.isArray(parent)) return copy;
      delete parent[last];
      parent[mutation.key] = value;
      break;
    case 'add':
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) (value as Record<string, Json>)[mutation.key] = mutation.value;
      else if (Array.isArray(value)) value.push(mutation.value);
      break;
  }
  return copy;
}

/** Values a user might plausibly write, wrong or right. */
const PLAUSIBLE_VALUES: readonly Json[] = [
    '', '0', '-1', '1.5', '5s', '5 s', '-5s', '30d', '1e400', 'NaN', 'forever', '99999999999999999999h', '1KiB', '1 MiB', '0B', '17MiB',
    '127.0.0.1', '127.0.0.1:99999', '[::1]:0', ':80', 'localhost:0', '[zz]:1', '0.0.0.0/33', '::/0', '10.0.0.0/8',
    '/(/', '/a/gg', '/^$/', '/(?=x)/', '/a/x', '//', '/\\b/', 'Mars/Olympus', '25:00', '24:00', 'tue',
    'v1', 'v3', 'queue', 'auto', 'TLSv1.1', './x.js', 'file:///nonexistent/p.js', '$1', 'é',
    0, -1, 1, 1.5, 2 ** 31, 2 ** 53 + 1, 1e308, -0, true, false, null, [], {}, [null], { '': null },
];

/** ...and arbitrary JSON. */
const plausibleValue: fc.Arbitrary<Json> = fc.oneof(fc.constantFrom(...PLAUSIBLE_VALUES), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>);

const keyName = fc.oneof(fc.constantFrom('listen', 'upstreams', 'type', 'match', 'module', '__proto__', 'constructor', 'toString', 'address', 'sni'), fc.string({ maxLength: 12 }));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), value: plausibleValue }),
  fc.record({ kind: fc.constant('delete' as const) }),
  fc.record({ kind: fc.constant('rename' as const), key: keyName }),
  fc.record({ kind: fc.constant('add' as const), key: keyName, value: plausibleValue }),
);

const ALL_PATHS = paths(FULL as unknown as Json);

/** One to three mutations of the full config. */
const mutatedConfig: fc.Arbitrary<Json> = fc
  .array(fc.tuple(fc.nat(ALL_PATHS.length - 1), mutation), { minLength: 1, maxLength: 3 })
  .map((steps) => steps.reduce<Json>((doc, [index, step]) => {
    // Paths are taken from the original; one that a previous step removed is skipped.
    const path = ALL_PATHS[index]!;
    try {
      return mutate(doc, path, step);
    } catch {
      return doc;
    }
  }, FULL as unknown as Json));

/** Text edits of the YAML or JSON form: a character deleted, inserted or replaced. */
const textEdit = fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom(...': -[]{}"\'\n\t#&*!|>%@`,?'.split(''), 'a', '0', '\u0000', '\uFEFF'));
function editText(text: string, [at, kind, char]: [number, string, string]): string {
  const i = at % (text.length + 1);
  if (kind === 'delete') return text.slice(0, i) + text.slice(i + 1);
  if (kind === 'insert') return text.slice(0, i) + char + text.slice(i);
  return text.slice(0, i) + char + text.slice(i + 1);
}

/** The contract for a failure: a ConfigError, every line "<key path or file>: <what>", no stack. */
function assertNamesAKey(error: unknown, input: unknown): void {
  if (!(error instanceof ConfigError)) {
    assert.fail(`not a ConfigError for ${inspect(input).slice(0, 400)}: ${(error as Error)?.stack ?? String(error)}`);
  }
  assert.ok(error.problems.length > 0);
  // A flood of lines means the loader enumerated something that is not the user's keys.
  assert.ok(error.problems.length <= 40, `${error.problems.length} problems for ${inspect(input).slice(0, 200)}: ${error.problems.slice(0, 5).join(' | ')}`);
  for (const line of error.problems) {
    assert.ok(line.indexOf(': ') > 0, `does not name a key: ${JSON.stringify(line)}`);
    assert.doesNotMatch(line, /\n|\s+at \S+ \(/, `stack trace in ${JSON.stringify(line)}`);
  }
}

const silent = pino({ level: 'silent' });

/**
 * What `--check` does, and then what a start does, in-process: load, check the listeners'
 * certificates, plugins and patterns, then build each listener's context (no socket bound).
 * A config that passes the check must start: a failure there would be a stack trace at run.
 */
async function check(load: () => Promise<ConfigSnapshot> | ConfigSnapshot, input: unknown): Promise<void> {
  let snapshot: ConfigSnapshot;
  try {
    snapshot = await load();
    for (const listener of snapshot.listeners) await checkListenerResources(listener, snapshot.baseDir);
  } catch (error) {
    return assertNamesAKey(error, input);
  }
  const metrics = new ProxyMetrics();
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
  process.on('warning', onWarning);
  for (const listener of snapshot.listeners) {
    let context: ListenerContext;
    try {
      context = await buildListenerContext(listener, { snapshot, logger: silent, metrics, previous: undefined });
    } catch (error) {
      assert.fail(`passes --check but cannot start: ${inspect(input).slice(0, 400)}: ${(error as Error)?.stack ?? String(error)}`);
    }
    await retireContext(context);
  }
  // Node's warnings come on the next tick: a timer that overflows (and fires at once) is one.
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.deepEqual(warnings, [], `warnings for ${inspect(input).slice(0, 400)}`);
}

describe('config loader fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tcpproxy-config-fuzz-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the full config is valid (the mutations start from a config that loads)', async () => {
    await check(() => buildSnapshot(FULL), FULL);
    assert.equal(buildSnapshot(FULL).listeners.length, 2);
  });

  test('every value of the full config replaced by every plausible value, one at a time', async () => {
    for (const path of ALL_PATHS) {
      for (const value of PLAUSIBLE_VALUES) {
        const doc = mutate(FULL as unknown as Json, path, { kind: 'set', value });
        await check(() => buildSnapshot(doc), doc);
      }
    }
  });

  // Regressions: counterexamples the fuzzers found, fixed.
  const withListener = (patch: Record<string, Json>): Json => ({ listeners: [{ listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], ...patch }] });

  test('regression: an invalid health_check.expect regex is a config error (it passed --check, then the start threw)', () => {
    assert.throws(() => buildSnapshot(withListener({ health_check: { expect: '/(/' } })), /listeners\[0\]\.health_check\.expect: Invalid regular expression/);
  });

  test('regression: a duration beyond a Node timer\'s range is refused (idle_timeout: 30d fired after 1 ms)', () => {
    for (const key of ['idle_timeout', 'max_lifetime', 'connect_timeout', 'queue_timeout']) {
      assert.throws(() => buildSnapshot(withListener({ [key]: '30d' })), new RegExp(`listeners\\[0\\]\\.${key}: at most 24d`));
    }
    assert.equal(buildSnapshot(withListener({ idle_timeout: '24d' })).listeners[0]!.idle_timeout, 24 * 86_400_000);
  });

  test('regression: a zero rate-limit window is a config error (it passed --check, then the start threw)', () => {
    assert.throws(() => buildSnapshot(withListener({ new_connections_per_ip: { limit: 1, per: 0 } })), /listeners\[0\]\.new_connections_per_ip\.per: must be more than 0ms/);
  });

  test('regression: a key that is not a plain word is quoted in the path, so that one problem is one line', () => {
    assert.throws(() => buildSnapshot({ 'a\nb': 1, listeners: [{ listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], ' ': 2 }] }), (error: unknown) =>
      error instanceof ConfigError && error.problems.includes('["a\\nb"]: unknown key') && error.problems.includes('listeners[0][" "]: unknown key'));
  });

  test('regression: YAML 1.1 tags stay strings (a !!binary document gave a hundred "unknown key" lines)', async () => {
    const file = join(dir, 'binary.yaml');
    await writeFile(file, '!!binary AAAA');
    await assert.rejects(loadConfigFile(file), (error: unknown) => error instanceof ConfigError && error.problems.length === 1 && /^\(top level\): /.test(error.problems[0]!));
  });

  test('mutations of a valid config: a snapshot, or a ConfigError naming a key', async () => {
    await fc.assert(fc.asyncProperty(mutatedConfig, (doc) => check(() => buildSnapshot(doc), doc)), fuzzParameters(1000));
  });

  test('random documents: a snapshot, or a ConfigError naming a key', async () => {
    const doc = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record({ listeners: fc.array(fc.dictionary(keyName, plausibleValue, { maxKeys: 6 }), { maxLength: 3 }) }),
      fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withBoxedValues: true, withSparseArray: true }),
    );
    await fc.assert(fc.asyncProperty(doc, (value) => check(() => buildSnapshot(value), value)), fuzzParameters(1000));
  });

  test('edited YAML and JSON files: a snapshot, or a ConfigError naming the file or a key', async () => {
    const yamlText = toYaml(FULL);
    const jsonText = JSON.stringify(FULL, null, 2);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(textEdit, { minLength: 1, maxLength: 4 }), async (json, edits) => {
        const text = edits.reduce(editText, json ? jsonText : yamlText);
        const file = join(dir, `c${n++ % 16}.${json ? 'json' : 'yaml'}`);
        await writeFile(file, text);
        await check(() => loadConfigFile(file), text);
      }),
      fuzzParameters(500),
    );
  });

  test('random YAML text: a snapshot, or a ConfigError naming the file or a key', async () => {
    const file = join(dir, 'random.yaml');
    const yamlish = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(fc.constantFrom('listeners:', '  - listen: 127.0.0.1:0', '    upstreams: [127.0.0.1:1]', '&a [*a]', '*a', '!!binary AAAA', '!!set {a}', '? [a]\n: b', '---', '...', '%YAML 1.1', 'a: !!timestamp 2001-12-14', '<<: *b', 'x: &b {y: 1}', '- [', '\t'), { maxLength: 8 }).map((lines) => lines.join('\n')),
    );
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => {
        await writeFile(file, text);
        await check(() => loadConfigFile(file), text);
      }),
      fuzzParameters(500),
    );
  });

  test('through bin/tcpproxy --check: exit 0 with "ok", or exit 2 with "tcpproxy: <key>: ..." lines and no stack', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedConfig, async (doc) => {
        const file = join(dir, `cli${n++}.json`);
        await writeFile(file, JSON.stringify(doc));
        const result = spawnSync(process.execPath, [BIN, '--config', file, '--check'], { encoding: 'utf8', timeout: 30_000 });
        if (result.status === 0) return assert.equal(result.stdout, 'ok\n');
        assert.equal(result.status, 2, `exit ${result.status} for ${JSON.stringify(doc)}: ${result.stderr}`);
        for (const line of result.stderr.trimEnd().split('\n')) assert.match(line, /^tcpproxy: \S+: \S/, `${JSON.stringify(doc)}: ${result.stderr}`);
        assert.doesNotMatch(result.stderr, /\n\s+at /);
      }),
      fuzzParameters(4, 0.001),
    );
  });
});
