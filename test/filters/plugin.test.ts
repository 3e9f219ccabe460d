import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPipelineFactory, PipelineSetupError } from '../../src/pipeline/pipeline.js';
import { REPO_ROOT } from '../helpers/repo.js';
import { exchange, pipelineSpec, startFilterProxy } from '../helpers/filter-proxy.js';
import { readToEnd, readUntilClosed } from '../helpers/sockets.js';
import { memoryLogger } from '../helpers/log-collector.js';

/** A folder of plugin files for one test; removed afterwards. */
async function pluginDir(files: Record<string, string>): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-plugins-'));
  for (const [name, source] of Object.entries(files)) await writeFile(join(dir, name), source);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

test('the example plugin (examples/plugins/uppercase.js) changes case in each direction', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy(
    {
      filters: [
        { module: './examples/plugins/uppercase.js', direction: 'to_upstream' },
        { module: './examples/plugins/uppercase.js', direction: 'to_client', options: { mode: 'lower' } },
      ],
    },
    { baseDir: REPO_ROOT },
  );
  try {
    const proxied = await harness.open();
    const { atUpstream, atClient } = await exchange(proxied, 'Hello, World! ÄÖ 123', 'OK, Fine.');
    assert.equal(atUpstream, 'HELLO, WORLD! ÄÖ 123');
    assert.equal(atClient, 'ok, fine.');
  } finally {
    await harness.dispose();
  }
});

const FAILING_PLUGINS = {
  'throws.js': `export function createFilter(context) {
    return { data(chunk, push) { if (chunk.includes('boom')) throw new Error('boom in data'); push(chunk); } };
  }`,
  'rejects.js': `export default function (context) {
    return { async data(chunk, push) { await null; if (chunk.includes('boom')) throw new Error('boom, rejected'); push(chunk); } };
  }`,
  'factory-throws.js': `export default function () { throw new Error('cannot start'); }`,
  'no-factory.js': `export const answer = 42;`,
};

for (const plugin of ['./throws.js', './rejects.js']) {
  test(`a plugin whose data() ${plugin === './throws.js' ? 'throws' : 'rejects'} closes only its connection`, { timeout: 10_000 }, async () => {
    const plugins = await pluginDir(FAILING_PLUGINS);
    const harness = await startFilterProxy({ filters: [{ module: plugin }] }, { baseDir: plugins.dir });
    try {
      const healthy = await harness.open();
      const failing = await harness.open();
      const failingAtUpstream = readUntilClosed(failing.upstream);
      failing.client.write('fine, then boom');
      const line = await failing.closed;
      assert.equal(line.reason, 'filter');
      assert.match(String(line.error), /boom/, 'the access log says what failed');
      assert.equal(line.error_code, 'filter_failed');
      assert.equal(line.bytes_from_client, 'fine, then boom'.length);
      assert.equal((await failingAtUpstream).length, 0);
      const logged = harness.lines.find((line) => line.event === 'filter_error');
      assert.equal(logged?.filter, plugin, 'the log names the plugin');
      assert.equal(logged?.direction, 'to_upstream');
      assert.match(String((logged?.err as { message?: string })?.message), /boom/);

      // The other connection, and new ones, carry on.
      const atUpstream = readToEnd(healthy.upstream);
      healthy.client.end('still here');
      assert.equal((await atUpstream).toString(), 'still here');
      const later = await harness.open();
      const laterAtClient = readToEnd(later.client);
      later.upstream.end('and here');
      assert.equal((await laterAtClient).toString(), 'and here');
    } finally {
      await harness.dispose();
      await plugins.remove();
    }
  });
}

test('a plugin factory that throws closes the connection before any byte passes', { timeout: 10_000 }, async () => {
  const plugins = await pluginDir(FAILING_PLUGINS);
  const harness = await startFilterProxy({ filters: [{ module: './factory-throws.js', direction: 'to_client' }] }, { baseDir: plugins.dir });
  try {
    const proxied = await harness.open();
    const atClient = readUntilClosed(proxied.client);
    proxied.upstream.write('banner');
    const line = await proxied.closed;
    assert.equal(line.reason, 'filter');
    assert.equal(line.bytes_to_client, 0);
    assert.equal((await atClient).length, 0);
    const logged = harness.lines.find((line) => line.event === 'filter_error');
    assert.equal(logged?.filter, './factory-throws.js');
    assert.equal(logged?.direction, 'to_client');
  } finally {
    await harness.dispose();
    await plugins.remove();
  }
});

test('a missing plugin, or one without a factory, fails the config load with the key path', { timeout: 10_000 }, async () => {
  const plugins = await pluginDir(FAILING_PLUGINS);
  const { logger } = memoryLogger();
  const build = (module: string) =>
    buildPipelineFactory(pipelineSpec({ filters: [{ type: 'delay', latency: 1 }, { module }] }), { baseDir: plugins.dir, logger, listener: 'test' });
  try {
    await assert.rejects(build('./missing.js'), /^Error: filters\[1\]: cannot load \.\/missing\.js .*no such file/);
    await assert.rejects(build('./no-factory.js'), /^Error: filters\[1\]: \.\/no-factory\.js exports no filter factory/);
  } finally {
    await plugins.remove();
  }
});

test("a plugin's validateOptions runs at config load: every problem is named under options, nothing starts", { timeout: 10_000 }, async () => {
  const plugins = await pluginDir({
    'checked.js': `export function validateOptions(options) {
      return [{ path: ['mode'], message: 'expected "upper" or "lower"' }, { path: ['targets', 1], message: 'expected a string' }];
    }
    export default function () { throw new Error('never called for bad options'); }`,
    'fine.js': `export const validateOptions = () => [];
    export default function () { return { data(chunk, push) { push(chunk); } }; }`,
    'bad-validator.js': `export const validateOptions = 'yes';
    export default function () { return { data(chunk, push) { push(chunk); } }; }`,
  });
  const { logger } = memoryLogger();
  const build = (module: string, options?: unknown) =>
    buildPipelineFactory(
      pipelineSpec({
        filters: [
          { type: 'delay', latency: 1 },
          { module, ...(options !== undefined && { options }) },
        ],
      }),
      {
        baseDir: plugins.dir,
        logger,
        listener: 'test',
      },
    );
  try {
    await assert.rejects(build('./checked.js', { mode: 'sideways' }), (error: unknown) => {
      assert.ok(error instanceof PipelineSetupError);
      assert.deepEqual(error.problems, ['filters[1].options.mode: expected "upper" or "lower"', 'filters[1].options.targets[1]: expected a string']);
      return true;
    });
    await assert.rejects(build('./bad-validator.js'), /^Error: filters\[1\]: \.\/bad-validator\.js: its export "validateOptions" is not a function/);
    const factory = await build('./fine.js');
    await factory?.close();
  } finally {
    await plugins.remove();
  }
});

test('the example plugin rejects a mode other than upper or lower, and unknown options', { timeout: 10_000 }, async () => {
  const { logger } = memoryLogger();
  const build = (options: unknown) =>
    buildPipelineFactory(pipelineSpec({ filters: [{ module: './examples/plugins/uppercase.js', options }] }), { baseDir: REPO_ROOT, logger, listener: 'test' });
  await assert.rejects(build({ mode: 'sideways', mdoe: 'upper' }), (error: unknown) => {
    assert.ok(error instanceof PipelineSetupError);
    assert.deepEqual(error.problems, [
      'filters[0].options.mode: expected "upper" or "lower", got "sideways"',
      'filters[0].options.mdoe: unknown option (this plugin has only "mode")',
    ]);
    return true;
  });
  for (const options of [{}, { mode: 'lower' }]) await (await build(options))?.close();
});

test('nothing configured: no pipeline, the bridge keeps its plain path', async () => {
  const { logger } = memoryLogger();
  assert.equal(await buildPipelineFactory({}, { baseDir: '.', logger, listener: 'test' }), undefined);
  assert.equal(await buildPipelineFactory(pipelineSpec({ inspect: {}, filters: [] }), { baseDir: '.', logger, listener: 'test' }), undefined);
});
