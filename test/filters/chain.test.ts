import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterChain, FilterError, type ChainStage } from '../../src/filters/chain.js';
import type { Filter, Push } from '../../src/filters/filter.js';
import { memoryLogger } from '../helpers/log-collector.js';

function chainOf(filters: Filter[]): { chain: FilterChain; out: string[]; failures: FilterError[]; lines: Record<string, unknown>[] } {
  const { logger, lines } = memoryLogger();
  const stages: ChainStage[] = filters.map((filter, index) => ({ name: `f${index}`, filter }));
  const chain = new FilterChain(stages, { connectionId: '7', direction: 'to_upstream', log: logger });
  const out: string[] = [];
  const failures: FilterError[] = [];
  chain.connect({ data: (chunk) => void out.push(chunk.toString()), failed: (error) => void failures.push(error) });
  return { chain, out, failures, lines };
}

const suffix = (text: string): Filter => ({ data: (chunk, push) => push(Buffer.concat([chunk, Buffer.from(text)])) });

/** A filter that is busy (returns a promise) until the test releases it. */
function gate(): { filter: Filter; open: () => void } {
  const waiting: (() => void)[] = [];
  return {
    filter: {
      data(chunk: Buffer, push: Push) {
        return new Promise<void>((resolve) =>
          waiting.push(() => {
            push(chunk);
            resolve();
          }),
        );
      },
    },
    open: () => waiting.shift()?.(),
  };
}

test('stages run in order and a synchronous chain returns no promise', () => {
  const { chain, out } = chainOf([suffix('1'), suffix('2')]);
  assert.equal(chain.write(Buffer.from('a')), undefined);
  assert.deepEqual(out, ['a12']);
  assert.equal(chain.end(), undefined);
});

test('a busy stage makes write() return a promise and queues later chunks in order', async () => {
  const busy = gate();
  const { chain, out } = chainOf([suffix('<'), busy.filter, suffix('>')]);
  const pending = chain.write(Buffer.from('a'));
  assert.ok(pending instanceof Promise);
  // The FilteredDirection would have paused; chunks that still come are queued, not lost.
  // (A chain's write()/end() promise never rejects: failures go to ChainOutput.failed.)
  void chain.write(Buffer.from('b'));
  assert.deepEqual(out, []);
  busy.open();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(out, ['a<>']);
  busy.open();
  await pending;
  assert.deepEqual(out, ['a<>', 'b<>']);
});

test('end() waits for busy stages, then flushes each filter through the ones after it', async () => {
  const busy = gate();
  const holding: Filter = {
    data: () => undefined,
    end: (push) => push(Buffer.from('held')),
  };
  const { chain, out } = chainOf([busy.filter, holding, suffix('!')]);
  void chain.write(Buffer.from('x'));
  const ended = chain.end();
  assert.ok(ended instanceof Promise);
  busy.open();
  await ended;
  assert.deepEqual(out, ['held!']);
});

test('a throwing or rejecting filter is reported once, with its name, and the chain stops', async () => {
  const { chain, out, failures, lines } = chainOf([suffix(''), { data: () => Promise.reject(new Error('nope')) }]);
  await chain.write(Buffer.from('a'));
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.filter, 'f1');
  assert.match(failures[0]!.message, /nope/);
  assert.equal(chain.write(Buffer.from('b')), undefined);
  assert.deepEqual(out, []);
  assert.equal(lines.filter((line) => line.event === 'filter_error').length, 1);

  const thrower = chainOf([
    {
      data: () => {
        throw new Error('sync');
      },
    },
  ]);
  void thrower.chain.write(Buffer.from('a'));
  assert.equal(thrower.failures[0]!.filter, 'f0');
});

test('a push from a timer that fails later is still reported', async () => {
  let later: Push | undefined;
  const deferred: Filter = {
    data: (_chunk, push) => {
      later = push;
    },
  };
  const { chain, failures } = chainOf([
    deferred,
    {
      data: () => {
        throw new Error('late');
      },
    },
  ]);
  void chain.write(Buffer.from('a'));
  later!(Buffer.from('a'));
  assert.equal(failures.length, 1);
});

test('abort() before connect is reported at connect; destroy() releases every filter once', () => {
  const { logger } = memoryLogger();
  let destroyed = 0;
  const chain = new FilterChain([{ name: 'x', filter: { data: () => undefined, destroy: () => void destroyed++ } }], {
    connectionId: '1',
    direction: 'to_client',
    log: logger,
  });
  chain.abort('./plugin.js', new Error('factory failed'));
  const failures: FilterError[] = [];
  chain.connect({ data: () => undefined, failed: (error) => void failures.push(error) });
  assert.equal(failures[0]?.filter, './plugin.js');
  chain.destroy();
  chain.destroy();
  assert.equal(destroyed, 1);
});
