/** Errors exit 2 and say what was given, as users meet them: bin/tcpproxy in a child process. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configFile, REPO_ROOT, runBin } from '../helpers/repo.js';

describe('usage and config errors', { timeout: 120_000 }, () => {
  it('usage errors exit 2 naming what was given, in the form it was given (the messages: args.test.ts)', async () => {
    const cases: [string[], RegExp][] = [
      [['--idle-timeout', '5', 'minutes'], /^tcpproxy: --idle-timeout: expected a duration like 5m, got "5" followed by an extra argument "minutes"$/m],
      [['127.0.0.1', '808O', '127.0.0.1', '9000'], /^tcpproxy: <local-port>: expected a port number, got "808O"$/m],
      // A host is checked by the config schema: its error is still named as the argument.
      [['bad!host', '8080', '127.0.0.1', '9000'], /^tcpproxy: <local-host>: invalid host in "bad!host:8080"$/m],
    ];
    for (const [args, expected] of cases) {
      const result = await runBin(args, 30_000);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, expected, args.join(' '));
      assert.doesNotMatch(result.stderr, /--listen/, `${args.join(' ')}: no flag that was not given is blamed`);
    }
  });

  it('unknown config keys get the nearest valid key, exit 2', async () => {
    const file = await configFile('typo.yaml', 'listeners:\n  - listen: 127.0.0.1:0\n    upstream: [127.0.0.1:9000]\n');
    const result = await runBin(['--config', file, '--check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^tcpproxy: listeners\[0\]\.upstream: unknown key \(did you mean upstreams\?\)$/m);
  });

  it("a plugin's options validator runs in --check and at start-up: bad options exit 2 naming the key", async () => {
    const example = join(REPO_ROOT, 'examples/plugins/uppercase.js');
    const file = await configFile(
      'sideways.yaml',
      `listeners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n    filters:\n      - { module: ${example}, options: { mode: sideways } }\n`,
    );
    for (const args of [['--check'], ['--log-level', 'silent']]) {
      const result = await runBin(['--config', file, ...args]);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /^tcpproxy: listeners\[0\]\.filters\[0\]\.options\.mode: expected "upper" or "lower", got "sideways"$/m);
      assert.equal(result.stdout, '');
    }
  });
});
