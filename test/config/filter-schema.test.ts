import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseByteSize } from '../../src/config/byte-size.js';
import { filterSpecSchema, inspectSpecSchema } from '../../src/config/filter-schema.js';

function issues(value: unknown): string[] {
  const result = filterSpecSchema.safeParse(value);
  assert.equal(result.success, false, `${JSON.stringify(value)} should be rejected`);
  return result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

test('filter entries: defaults, durations in ms, sizes in bytes, plugin entries get type "module"', () => {
  assert.deepEqual(filterSpecSchema.parse({ type: 'delay', latency: '50ms' }), {
    type: 'delay',
    direction: 'both',
    latency: 50,
    jitter: 0,
    max_held: 4 * 1024 * 1024,
  });
  assert.deepEqual(filterSpecSchema.parse({ type: 'throttle', direction: 'to_client', bytes_per_second: '1MiB' }), {
    type: 'throttle',
    direction: 'to_client',
    bytes_per_second: 1024 * 1024,
  });
  assert.deepEqual(filterSpecSchema.parse({ module: './x.js', options: { a: 1 } }), {
    type: 'module',
    direction: 'both',
    module: './x.js',
    options: { a: 1 },
  });
  assert.equal(filterSpecSchema.parse({ type: 'reset_after', after: '2s' }).type, 'reset_after');
});

test('bad filter entries are rejected with the offending key', () => {
  assert.match(issues({ type: 'compress' })[0]!, /^type: Invalid discriminator value/);
  assert.match(issues({ type: 'replace', match: '/(/', with: 'x' })[0]!, /^match: Invalid regular expression/);
  assert.match(issues({ type: 'block', match: '/x*/' })[0]!, /^match: .*matches the empty string/);
  assert.match(issues({ type: 'block', match: '/x/y' })[0]!, /^match: unsupported regex flags "y"/);
  assert.match(issues({ type: 'replace', match: 'a' })[0]!, /^with: /);
  assert.match(issues({ type: 'delay', latency: 'soon' })[0]!, /^latency: expected a duration/);
  assert.match(issues({ type: 'throttle', bytes_per_second: 0 })[0]!, /^bytes_per_second: must be more than 0/);
  assert.match(issues({ type: 'reset_after' })[0]!, /needs `bytes` or `after`/);
  assert.match(issues({ type: 'drop_connection_probability', probability: 1.5 })[0]!, /^probability: /);
  assert.match(issues({ type: 'drop_connection_probability', probability: 0.1, direction: 'both' })[0]!, /Unrecognized key/);
  assert.match(issues({ module: 'some-package' })[0]!, /^module: expected a path/);
  assert.match(issues({ type: 'slice', size: 10, sise: 1 })[0]!, /Unrecognized key/);
});

test('inspect: defaults and sizes', () => {
  assert.deepEqual(inspectSpecSchema.parse({ log_data: 'text', capture: 'c.pcap', capture_max_bytes: '10MB' }), {
    log_data: 'text',
    log_data_limit: 65536,
    capture: 'c.pcap',
    capture_max_bytes: 10_000_000,
    capture_keep: 5,
  });
  assert.equal(inspectSpecSchema.safeParse({ log_data: 'binary' }).success, false);
});

test('byte sizes', () => {
  assert.equal(parseByteSize(1500), 1500);
  assert.equal(parseByteSize('64k'), 65536);
  assert.equal(parseByteSize('1.5 MiB'), 1572864);
  assert.equal(parseByteSize('2MB'), 2_000_000);
  assert.equal(parseByteSize('1G'), 1024 ** 3);
  assert.throws(() => parseByteSize('lots'), /expected a size/);
  assert.throws(() => parseByteSize(-1), /expected a size/);
});
