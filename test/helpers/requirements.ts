/**
 * What some tests need from the machine (the IPv6 loopback, tshark, chromium), under one
 * rule: locally a missing requirement skips the test with a visible reason; in CI
 * (`process.env.CI` set, as .ci/run does) it fails the test, so that nothing is skipped
 * silently where the suite is supposed to run whole.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';

export interface Requirement {
  /** What is needed, for the skip or failure message. */
  readonly what: string;
  /** How to get it (a package to install, a setting). */
  readonly hint: string;
  readonly available: () => Promise<boolean>;
}

/**
 * Resolves true when the test may go on. Otherwise skips it with the reason and resolves
 * false (the test returns), or, under CI, fails it.
 */
export async function requires(t: TestContext, ...requirements: Requirement[]): Promise<boolean> {
  for (const requirement of requirements) {
    if (await requirement.available()) continue;
    const reason = `${requirement.what} is not available: ${requirement.hint}`;
    if (process.env.CI) assert.fail(`${reason} (CI runs every test: a missing requirement fails)`);
    t.skip(reason);
    return false;
  }
  return true;
}

function once<T>(probe: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= probe());
}

/** The IPv6 loopback address ::1 can be bound. */
export const IPV6_LOOPBACK: Requirement = {
  what: 'the IPv6 loopback (::1)',
  hint: 'enable IPv6 on the loopback interface (sysctl net.ipv6.conf.lo.disable_ipv6=0)',
  available: once(
    () =>
      new Promise<boolean>((resolve) => {
        const probe = net.createServer();
        probe.once('error', () => resolve(false));
        probe.listen(0, '::1', () => probe.close(() => resolve(true)));
      }),
  ),
};

/** A command on the PATH that answers `args` with exit status 0. */
export function command(name: string, hint: string, args: string[] = ['--version']): Requirement {
  return {
    what: name,
    hint,
    available: once(() => new Promise<boolean>((resolve) => execFile(name, args, (error) => resolve(error === null)))),
  };
}

/** A file that must exist (a browser binary, say). */
export function file(path: string, hint: string): Requirement {
  return { what: path, hint, available: () => Promise.resolve(existsSync(path)) };
}

export const TSHARK = command('tshark', "install Debian's tshark package (apt-get install -y tshark)");
