/** Config errors name the key path and, for an unknown key or filter type, the nearest valid one. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSnapshot, ConfigError } from '../../src/config/load.js';

function problems(raw: unknown): readonly string[] {
  try {
    buildSnapshot(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail('expected a ConfigError');
}

const listener = { listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9000'] };

describe('config errors: did you mean', () => {
  it('suggests the nearest key of the object at that path, at every depth', () => {
    const found = problems({
      lgo: {},
      listeners: [{ listen: '127.0.0.1:0', upstream: ['127.0.0.1:9000'], conect_timeout: '5s', health_check: { intreval: '5s' } }],
    });
    assert.ok(found.includes('lgo: unknown key (did you mean log?)'), found.join('\n'));
    assert.ok(found.includes('listeners[0].upstream: unknown key (did you mean upstreams?)'), found.join('\n'));
    assert.ok(found.includes('listeners[0].conect_timeout: unknown key (did you mean connect_timeout?)'), found.join('\n'));
    assert.ok(found.includes('listeners[0].health_check.intreval: unknown key (did you mean interval?)'), found.join('\n'));
  });

  it('a key far from every known one gets no suggestion', () => {
    assert.deepEqual(problems({ listeners: [{ ...listener, frobnicate: true }] }), ['listeners[0].frobnicate: unknown key']);
  });

  it("a filter's keys are those of its own type; an unknown type names the nearest", () => {
    const found = problems({
      listeners: [
        {
          ...listener,
          filters: [
            { type: 'delay', latency: '5ms', jiter: '1ms' },
            { type: 'replce', match: 'a', with: 'b' },
            { module: './x.js', optoins: {} },
          ],
        },
      ],
    });
    assert.ok(found.includes('listeners[0].filters[0].jiter: unknown key (did you mean jitter?)'), found.join('\n'));
    assert.ok(
      found.some(
        (line) => line.startsWith('listeners[0].filters[1].type: expected one of replace, block,') && line.endsWith('got "replce" (did you mean replace?)'),
      ),
      found.join('\n'),
    );
    assert.ok(found.includes('listeners[0].filters[2].optoins: unknown key (did you mean options?)'), found.join('\n'));
  });

  it('a key valid only for another filter type is not suggested from that type', () => {
    // `bytes` belongs to reset_after; a throttle has bytes_per_second, too far from "byts" to suggest.
    const found = problems({ listeners: [{ ...listener, filters: [{ type: 'throttle', bytes_per_second: 1000, byts: 5 }] }] });
    assert.deepEqual(found, ['listeners[0].filters[0].byts: unknown key']);
  });
});
