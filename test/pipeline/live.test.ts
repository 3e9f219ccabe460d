/**
 * Live filters on a FilterChain: stages inserted and removed while bytes flow keep the
 * order of the bytes, a removed stage passes on what it held first, and the list's order
 * decides where a stage goes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FilterChain } from '../../src/filters/chain.js';
import type { Filter, FilterContext } from '../../src/filters/filter.js';
import { LiveFilters, type LiveFilter } from '../../src/pipeline/live.js';
import { emptyPipeline, type ConnectionContext } from '../../src/pipeline/pipeline.js';
import { createHoldFilter } from '../../src/filters/hold.js';

const log = pino({ level: 'silent' });

function collect(chain: FilterChain): string[] {
  const out: string[] = [];
  chain.connect({ data: (chunk) => out.push(chunk.toString()), failed: (error) => assert.fail(error) });
  return out;
}

/** A filter that tags every chunk with its letter (to see the order of the stages). */
const tag = (letter: string): Filter => ({ data: (chunk, push) => push(Buffer.concat([chunk, Buffer.from(letter)])) });

function live(name: string, create: (context: FilterContext) => Filter, toxicity = 1): LiveFilter {
  return { name, toxicity, spec: { name }, plan: { name, directions: ['to_upstream'], create } };
}

const connection: ConnectionContext = {
  id: '1',
  listener: 'test',
  log,
  client: { address: '127.0.0.1', port: 1 },
  proxyFront: { address: '127.0.0.1', port: 2 },
  proxyBack: { address: '127.0.0.1', port: 3 },
  upstream: { address: '127.0.0.1', port: 4 },
  close: () => assert.fail('not closed'),
};

describe('live filters', () => {
  // write() answers a promise only while a stage is busy, and it never rejects: these tests look at the output.
  it('a held chunk is passed on before newer ones when its stage is removed', () => {
    const chain = new FilterChain([], { connectionId: '1', direction: 'to_upstream', log });
    const out = collect(chain);
    void chain.write(Buffer.from('a'));
    const hold = chain.insert(0, { name: 'hold', filter: createHoldFilter({ close: () => assert.fail('closed') } as unknown as FilterContext, 0) });
    const pending = chain.write(Buffer.from('b'));
    assert.ok(pending, 'the chain is busy while the chunk is held');
    void chain.write(Buffer.from('c'));
    assert.deepEqual(out, ['a']);
    chain.remove(hold);
    assert.deepEqual(out, ['a', 'b', 'c']);
    void chain.write(Buffer.from('d'));
    assert.deepEqual(out, ['a', 'b', 'c', 'd']);
  });

  it('stages follow the order of the list; replacing keeps the place; toxicity 0 adds nothing', () => {
    const filters = new LiveFilters();
    const pipeline = emptyPipeline(connection);
    const out = collect(pipeline.toUpstream);
    const detach = filters.attach(pipeline, connection);
    filters.add(live('x', () => tag('x')));
    filters.add(live('y', () => tag('y')));
    filters.add(live('never', () => tag('!'), 0));
    void pipeline.toUpstream.write(Buffer.from('1'));
    filters.replace(live('x', () => tag('X')));
    void pipeline.toUpstream.write(Buffer.from('2'));
    filters.remove('y');
    void pipeline.toUpstream.write(Buffer.from('3'));
    assert.deepEqual(out, ['1xy', '2Xy', '3X']);
    assert.deepEqual(
      filters.list().map((f) => f.name),
      ['x', 'never'],
    );
    assert.equal(filters.follows('1'), true);
    detach();
    assert.equal(filters.follows('1'), false);
    filters.add(live('z', () => tag('z')));
    void pipeline.toUpstream.write(Buffer.from('4'));
    assert.deepEqual(out.at(-1), '4X', 'a detached connection no longer follows');
  });
});
