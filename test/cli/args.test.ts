/** Usage errors: what was given, in the form it was given, and the nearest flag or command. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine, UsageError } from '../../src/cli/args.js';

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  assert.fail(`no usage error for: ${argv.join(' ')}`);
}

const FLAGS = ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1'];

describe('usage errors', () => {
  it('a flag value followed by a second word names both words', () => {
    const expected = '--idle-timeout: expected a duration like 5m, got "5" followed by an extra argument "minutes"';
    assert.equal(usageError(['--idle-timeout', '5', 'minutes']), expected);
    assert.equal(usageError([...FLAGS, '--idle-timeout', '5', 'minutes']), expected);
    assert.equal(usageError(['127.0.0.1', '8080', '127.0.0.1', '9000', '--idle-timeout', '5', 'minutes']), expected);
    assert.equal(
      usageError(['--config', 'x.yaml', '--log-level', 'info', 'debug']),
      '--log-level: expected trace, debug, info, warn, error or silent, got "info" followed by an extra argument "debug"',
    );
    assert.equal(usageError(['demo', '--port', '8080', '8081']), '--port: expected a port number, got "8080" followed by an extra argument "8081"');
  });

  it('the 4-argument form is valid with flags before it, and its errors name the argument, never --listen', () => {
    assert.equal(parseCommandLine(['--idle-timeout', '5m', '127.0.0.1', '8080', '127.0.0.1', '9000']).kind, 'run');
    assert.equal(usageError(['127.0.0.1', '808O', '127.0.0.1', '9000']), '<local-port>: expected a port number, got "808O"');
    assert.equal(usageError(['127.0.0.1', '8080', '127.0.0.1', '0']), '<forward-port>: expected a port number from 1 to 65535, got "0"');
    assert.equal(usageError(['127.0.0.1', '70000', '127.0.0.1', '9000']), '<local-port>: expected a port number, got "70000"');
    assert.equal(
      usageError(['127.0.0.1', '8080', 'x']),
      'expected <local-host> <local-port> <forward-host> <forward-port>, got 3 arguments: "127.0.0.1" "8080" "x"',
    );
    assert.equal(usageError([...FLAGS, 'extra']), '--upstream: expected HOST:PORT, got "127.0.0.1:1" followed by an extra argument "extra"');
    assert.equal(usageError(['extra', ...FLAGS]), 'unexpected argument "extra": use either the 4-argument form or --listen/--upstream, not both');
  });

  it('an unknown flag or command gets the nearest known one', () => {
    assert.equal(usageError(['--upstrem', '127.0.0.1:1']), 'unknown option --upstrem (did you mean --upstream?)');
    assert.equal(usageError(['--lsiten', '127.0.0.1:0']), 'unknown option --lsiten (did you mean --listen?)');
    assert.equal(usageError(['--frobnicate']), 'unknown option --frobnicate');
    assert.equal(usageError(['-x']), 'unknown option -x');
    assert.equal(usageError(['demoo']), 'unknown command "demoo" (did you mean demo?)');
  });

  it('a missing value, a value that reads as a flag, a value given to a switch', () => {
    assert.equal(usageError(['--listen']), '--listen: expected HOST:PORT, got nothing');
    assert.equal(
      usageError(['--listen', '--upstream', '127.0.0.1:1']),
      '--listen: expected HOST:PORT, got nothing (the next argument, --upstream, is an option)',
    );
    assert.equal(
      usageError([...FLAGS, '--max-connections', '-1']),
      '--max-connections: expected a whole number, got "-1", which reads as an option (write --max-connections=-1 if it is the value)',
    );
    assert.equal(usageError([...FLAGS, '--max-connections=-1']), '--max-connections: expected an integer >= 1, got "-1"');
    assert.equal(usageError(['--check=yes']), '--check takes no value, got "yes"');
  });
});
