/** --help is the operator's first stop: every flag, subcommand and signal is in it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OPTIONS, SUBCOMMANDS } from '../../src/cli/args.js';
import { HELP } from '../../src/cli/help.js';

test('--help lists every flag the parser knows', () => {
  for (const flag of Object.keys(OPTIONS)) assert.match(HELP, new RegExp(`--${flag}\\b`), `--${flag} is missing from --help`);
});

test('--help lists the log level "silent", the subcommands and the signals', () => {
  assert.match(HELP, /--log-level trace\|debug\|info\|warn\|error\|silent/);
  for (const command of SUBCOMMANDS) assert.match(HELP, new RegExp(`^  (\\S+\\|)*${command}\\b`, 'm'), `${command} is missing from --help`);
  assert.match(HELP, /toxiproxy-server \[--host H\] \[--port P\] \[--config FILE\]/);
  assert.match(HELP, /reload\|stop\|status\|upgrade \[--config FILE \| --admin HOST:PORT \| --pid-file FILE\]/);
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT']) assert.match(HELP, new RegExp(`^  .*${signal}`, 'm'), `${signal} is missing from --help`);
});
