/**
 * Fuzzing the config loader (#12 item 3): random YAML/JSON documents and mutations of a
 * valid config that uses every section. Whatever the input, loading either gives a
 * snapshot whose listeners can be built (their certificates, plugins and patterns load:
 * what `--check` does), or fails with a ConfigError whose every line names a key path or the
 * file: never another exception, never a stack trace. In-process for volume; a few documents
 * go through bin/tcpproxy for the exit status (loader-cli.fuzz.test.ts).
 */
import assert from 'node:assert/strict';
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
import { ListenerState } from '../../src/proxy/listener-state.js';
import { buildListenerPlan, checkListenerResources, retirePlan } from '../../src/runtime/build-context.js';
import { ConnectionIds } from '../../src/proxy/connection-ids.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters, LONG_RUN } from '../helpers/fuzz.js';
import { ALL_PATHS, FULL, keyName, mutate, mutatedConfig, PLAUSIBLE_VALUES, plausibleValue, type Json } from './config-arbitraries.js';

/** Text edits of the YAML or JSON form: a character deleted, inserted or replaced. */
const textEdit = fc.tuple(
  fc.nat(),
  fc.constantFrom('delete', 'insert', 'replace'),
  fc.constantFrom(...': -[]{}"\'\n\t#&*!|>%@`,?'.split(''), 'a', '0', '\u0000', '\uFEFF'),
);
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
/** One registry for every check (a new one per check was most of the sweep's time). */
const metrics = new ProxyMetrics();

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
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
  process.on('warning', onWarning);
  for (const listener of snapshot.listeners) {
    const state = new ListenerState(listener.name, new ConnectionIds());
    let context: ListenerContext;
    try {
      context = await buildListenerPlan(listener, state, { snapshot, logger: silent, metrics });
      state.apply(context);
    } catch (error) {
      assert.fail(`passes --check but cannot start: ${inspect(input).slice(0, 400)}: ${(error as Error)?.stack ?? String(error)}`);
    }
    state.close();
    await retirePlan(context);
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

  test('every value of the full config replaced by plausible values, one at a time (all of them with FUZZ_RUNS)', async () => {
    // In CI a quarter of the values per key (a different quarter for the next key): every
    // value is tried on a quarter of the keys. Validating is about 3 ms a document.
    for (const [i, path] of ALL_PATHS.entries()) {
      for (const value of PLAUSIBLE_VALUES.filter((_, j) => LONG_RUN || (i + j) % 4 === 0)) {
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

  test("regression: a duration beyond a Node timer's range is refused (idle_timeout: 30d fired after 1 ms)", () => {
    for (const key of ['idle_timeout', 'max_lifetime', 'connect_timeout', 'queue_timeout']) {
      assert.throws(() => buildSnapshot(withListener({ [key]: '30d' })), new RegExp(`listeners\\[0\\]\\.${key}: at most 24d`));
    }
    assert.equal(buildSnapshot(withListener({ idle_timeout: '24d' })).listeners[0]!.idle_timeout, 24 * 86_400_000);
  });

  test('regression: a zero rate-limit window is a config error (it passed --check, then the start threw)', () => {
    assert.throws(
      () => buildSnapshot(withListener({ new_connections_per_ip: { limit: 1, per: 0 } })),
      /listeners\[0\]\.new_connections_per_ip\.per: must be more than 0ms/,
    );
  });

  test('regression: a key that is not a plain word is quoted in the path, so that one problem is one line', () => {
    assert.throws(
      () => buildSnapshot({ 'a\nb': 1, listeners: [{ listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], ' ': 2 }] }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.includes('["a\\nb"]: unknown key') && error.problems.includes('listeners[0][" "]: unknown key'),
    );
  });

  test('regression: YAML 1.1 tags stay strings (a !!binary document gave a hundred "unknown key" lines)', async () => {
    const file = join(dir, 'binary.yaml');
    await writeFile(file, '!!binary AAAA');
    await assert.rejects(
      loadConfigFile(file),
      (error: unknown) => error instanceof ConfigError && error.problems.length === 1 && error.problems[0]!.startsWith('(top level): '),
    );
  });

  test('mutations of a valid config: a snapshot, or a ConfigError naming a key', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedConfig, (doc) => check(() => buildSnapshot(doc), doc)),
      fuzzParameters(600),
    );
  });

  test('random documents: a snapshot, or a ConfigError naming a key', async () => {
    const doc = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record({ listeners: fc.array(fc.dictionary(keyName, plausibleValue, { maxKeys: 6 }), { maxLength: 3 }) }),
      fc.anything({
        maxDepth: 3,
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true,
        withBoxedValues: true,
        withSparseArray: true,
      }),
    );
    await fc.assert(
      fc.asyncProperty(doc, (value) => check(() => buildSnapshot(value), value)),
      fuzzParameters(1000),
    );
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
      fuzzParameters(300),
    );
  });

  test('random YAML text: a snapshot, or a ConfigError naming the file or a key', async () => {
    const file = join(dir, 'random.yaml');
    const yamlish = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc
        .array(
          fc.constantFrom(
            'listeners:',
            '  - listen: 127.0.0.1:0',
            '    upstreams: [127.0.0.1:1]',
            '&a [*a]',
            '*a',
            '!!binary AAAA',
            '!!set {a}',
            '? [a]\n: b',
            '---',
            '...',
            '%YAML 1.1',
            'a: !!timestamp 2001-12-14',
            '<<: *b',
            'x: &b {y: 1}',
            '- [',
            '\t',
          ),
          { maxLength: 8 },
        )
        .map((lines) => lines.join('\n')),
    );
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => {
        await writeFile(file, text);
        await check(() => loadConfigFile(file), text);
      }),
      fuzzParameters(500),
    );
  });
});
