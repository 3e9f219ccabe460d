import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closest, didYouMean, editDistance } from '../../src/config/did-you-mean.js';

describe('did-you-mean', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one edit each', () => {
    assert.equal(editDistance('upstrem', 'upstream'), 1);
    assert.equal(editDistance('upstreams', 'upstream'), 1);
    assert.equal(editDistance('lisen', 'listen'), 1);
    assert.equal(editDistance('lsiten', 'listen'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('same', 'same'), 0);
  });

  it('suggests the nearest candidate only when it is near enough for the word length', () => {
    const flags = ['listen', 'upstream', 'idle-timeout', 'connect-timeout', 'log-level'];
    assert.equal(closest('upstrem', flags), 'upstream');
    assert.equal(closest('idle-timout', flags), 'idle-timeout');
    assert.equal(closest('LISTEN', flags), 'listen');
    assert.equal(closest('xyz', flags), undefined);
    assert.equal(closest('log', ['lgo', 'ab']), 'lgo', 'a swap in a short word is one edit');
    assert.equal(closest('ab', ['cd']), undefined, 'two edits in a two-letter word is no match');
    assert.equal(
      didYouMean('upstrem', flags, (name) => `--${name}`),
      ' (did you mean --upstream?)',
    );
    assert.equal(didYouMean('nothing-like-it', flags), '');
  });
});
