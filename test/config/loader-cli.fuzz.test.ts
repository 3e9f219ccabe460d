/**
 * The config loader fuzzer's exit path (#12 item 3): mutations of a valid config through
 * `bin/tcpproxy --check` give exit 0 with "ok", or exit 2 with one "tcpproxy: <key>: ..." line
 * per problem and no stack trace. (A file of its own: each run is a process start.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { BIN } from '../helpers/ops.js';
import { FUZZ_TIMEOUT_MS, fuzzParameters } from '../helpers/fuzz.js';
import { mutatedConfig } from './config-arbitraries.js';

describe('config loader fuzzing through the CLI', { timeout: FUZZ_TIMEOUT_MS }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tcpproxy-config-cli-fuzz-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('through bin/tcpproxy --check: exit 0 with "ok", or exit 2 with "tcpproxy: <key>: ..." lines and no stack', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedConfig, async (doc) => {
        const file = join(dir, `cli${n++}.json`);
        await writeFile(file, JSON.stringify(doc));
        const result = spawnSync(process.execPath, [BIN, '--config', file, '--check'], { encoding: 'utf8', timeout: 60_000 });
        if (result.status === 0) return assert.equal(result.stdout, 'ok\n');
        assert.equal(result.status, 2, `exit ${result.status} for ${JSON.stringify(doc)}: ${result.stderr}`);
        for (const line of result.stderr.trimEnd().split('\n')) assert.match(line, /^tcpproxy: \S+: \S/, `${JSON.stringify(doc)}: ${result.stderr}`);
        assert.doesNotMatch(result.stderr, /\n\s+at /);
      }),
      fuzzParameters(3, 0.001),
    );
  });
});
