/**
 * The README lists every close and reject reason where operators look them up (the access
 * log, `/api/stats`, the metrics table): checked against the code, so the lists cannot drift.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLOSE_REASONS, REJECT_REASONS } from '../../src/observability/reasons.js';
import { REPO_ROOT } from '../helpers/repo.js';

/** The single `code` words of a text (reason names; `schedule.enforce: close` is not one). */
function codeWords(text: string): string[] {
  return [...new Set([...text.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!))].sort();
}

const text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const closeReasons = [...CLOSE_REASONS].sort();
const rejectReasons = [...REJECT_REASONS].sort();

test('the access-log section lists every close and reject reason', () => {
  const closes = /Close reasons: ([\s\S]*?)Reject reasons:/.exec(text)?.[1];
  const rejects = /Reject reasons: ([\s\S]*?)Extra fields:/.exec(text)?.[1];
  assert.ok(closes && rejects, 'the README has the "Close reasons: ... Reject reasons: ... Extra fields:" paragraph');
  assert.deepEqual(codeWords(closes), closeReasons);
  // There `error` is the log field saying why no upstream took it, not a reason.
  assert.deepEqual(
    codeWords(rejects).filter((word) => word !== 'error'),
    rejectReasons,
  );
});

test('the metrics table lists every reason label', () => {
  const row = (metric: string): string[] => {
    const line = text.split('\n').find((l) => l.startsWith(`| \`${metric}\``));
    assert.ok(line, `${metric} is in the metrics table`);
    return codeWords(line.slice(line.indexOf('reason `')));
  };
  assert.deepEqual(row('tcpproxy_rejections_total'), rejectReasons);
  assert.deepEqual(row('tcpproxy_closes_total'), closeReasons);
});

test('the /api/stats example has every reason key', () => {
  const block = /\n`GET \/api\/stats`[\s\S]*?```json\n([\s\S]*?)```/.exec(text)?.[1];
  assert.ok(block, 'the README has the /api/stats example');
  const stats = JSON.parse(block) as { listeners: { rejections: object; closes: object }[] };
  assert.deepEqual(Object.keys(stats.listeners[0]!.rejections).sort(), rejectReasons);
  assert.deepEqual(Object.keys(stats.listeners[0]!.closes).sort(), closeReasons);
});
