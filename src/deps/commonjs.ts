/**
 * The CommonJS dependencies, loaded with `require()`, never with `import`.
 *
 * Why: Node 20 learns the exports of an imported CommonJS module by scanning its source with
 * cjs-module-lexer, in JavaScript. Scanning pino's sources at start-up is enough work for
 * V8 to optimise the scanner (a 50 ms TurboFan compile), and the compiler's memory stays in
 * the process: the proxy's RSS at start was 70 MB with `import`, 65 MB with `require()`
 * (docs/architecture.md, "The cost of a connection, and its memory"). The types still come
 * from `import type`, which the compiler erases.
 *
 * test/architecture/commonjs.test.ts keeps it so: no value import of a CommonJS package in
 * src/, and a started proxy never loads the lexer.
 */
import { createRequire } from 'node:module';

interface CommonJsDependencies {
  'ipaddr.js': typeof import('ipaddr.js');
  ioredis: typeof import('ioredis');
  pino: typeof import('pino');
  'pino-pretty': typeof import('pino-pretty');
  'prom-client': typeof import('prom-client');
  yaml: typeof import('yaml');
}

const requireHere = createRequire(import.meta.url);

export function requireCommonJs<Name extends keyof CommonJsDependencies>(name: Name): CommonJsDependencies[Name] {
  return requireHere(name) as CommonJsDependencies[Name];
}
