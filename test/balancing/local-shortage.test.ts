import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localShortage, ShortageWarnings } from '../../src/balancing/local-shortage.js';
import { memoryLogger } from '../helpers/log-collector.js';

describe('local shortages', () => {
  it("tells this host's own shortages from the upstream's failures", () => {
    for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']) assert.ok(localShortage(code), code);
    for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EACCES', 'timeout', undefined]) {
      assert.equal(localShortage(code), undefined, code);
    }
  });

  it('warns at most once per code per interval, and says how many it left out', () => {
    let now = 0;
    const warnings = new ShortageWarnings(1000, () => now);
    const log = memoryLogger();
    const warn = (code: string): void => warnings.warn(log.logger, code, { listener: 'main', during: 'connect' }, 'refused');
    warn('EMFILE');
    warn('EMFILE');
    warn('ENFILE'); // another shortage is news
    now = 999;
    warn('EMFILE');
    now = 1000;
    warn('EMFILE');
    const lines = log.lines.map((l) => ({ event: l.event, error: l['error'], suppressed: l['suppressed'], level: l['level'] }));
    assert.deepEqual(lines, [
      { event: 'resource_shortage', error: 'EMFILE', suppressed: 0, level: 40 },
      { event: 'resource_shortage', error: 'ENFILE', suppressed: 0, level: 40 },
      { event: 'resource_shortage', error: 'EMFILE', suppressed: 2, level: 40 },
    ]);
    assert.match(String(log.lines[0]!['msg']), /^out of file descriptors .*\(EMFILE\): refused$/);
  });
});
