/**
 * CommonJS dependencies are loaded with require() (src/deps/commonjs.ts): an `import` of one
 * makes Node 20 scan its source with cjs-module-lexer, whose optimisation by V8 left ~5 MB in
 * the proxy's RSS. Checked twice: no compiled module of src/ imports a CommonJS package, and a
 * proxy that loads all of them (a YAML config, pino, ipaddr.js, a metrics scrape) never loads
 * the lexer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN } from '../helpers/ops.js';
import { LogCollector } from '../helpers/log-collector.js';
import { REPO_ROOT } from '../helpers/repo.js';

const COMPILED_SRC = join(REPO_ROOT, 'dist', 'src');
/** The bare specifier of a static `import ... from`, `export ... from`, side-effect `import` or dynamic `import()`. */
const BARE_IMPORT = /^(?:import|export)\s[^;]*?\bfrom\s*['"]([^./'"][^'"]*)['"]|^import\s*['"]([^./'"][^'"]*)['"]|\bimport\(\s*['"]([^./'"][^'"]*)['"]\s*\)/gm;

/** `pino`, `@scope/name` or `node:fs` out of a specifier that may name a file inside the package. */
function packageOf(specifier: string): string {
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}

async function isCommonJs(name: string): Promise<boolean> {
  const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { type?: string };
  return manifest.type !== 'module';
}

const scratch: string[] = [];
after(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('CommonJS dependencies', () => {
  it('no compiled module of src/ imports a CommonJS package (deps/commonjs.ts requires them)', async () => {
    const offending: string[] = [];
    const packages = new Set<string>();
    const modules = (await readdir(COMPILED_SRC, { recursive: true })).filter((file) => file.endsWith('.js'));
    for (const file of modules) {
      const text = await readFile(join(COMPILED_SRC, file), 'utf8');
      for (const match of text.matchAll(BARE_IMPORT)) {
        const name = packageOf(match[1] ?? match[2] ?? match[3]!);
        if (name.startsWith('node:')) continue;
        packages.add(name);
        if (await isCommonJs(name)) offending.push(`${file} imports ${name}`);
      }
    }
    assert.deepEqual(offending, []);
    // The scan saw the ESM imports it should let through: it does read the modules.
    assert.ok(packages.has('zod'), `packages imported: ${[...packages].join(', ')}`);
  });

  it('a running proxy, from a YAML config through a metrics scrape, never loads the lexer', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-commonjs-'));
    scratch.push(dir);
    const probe = join(dir, 'probe.mjs');
    const report = join(dir, 'modules.json');
    await writeFile(
      probe,
      `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(report)}, JSON.stringify(process.moduleLoadList)));\n`,
    );
    const config = join(dir, 'tcpproxy.yaml');
    await writeFile(config, 'admin:\n  listen: 127.0.0.1:0\nlisteners:\n  - listen: 127.0.0.1:0\n    upstreams: [127.0.0.1:9]\n');
    const child = spawn(process.execPath, [BIN, '--config', config, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: `--import=${pathToFileURL(probe).href}` },
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const logs = new LogCollector({});
      child.stdout.on('data', (chunk: Buffer) => logs.feed(chunk.toString()));
      const admin = await logs.waitFor((line) => line.event === 'admin_listening', 30_000);
      const scrape = await fetch(`http://127.0.0.1:${admin.port as number}/metrics`);
      assert.equal(scrape.status, 200);
      assert.match(await scrape.text(), /^tcpproxy_/m);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    const loaded = JSON.parse(await readFile(report, 'utf8')) as string[];
    // The probe saw the process's internal modules (the list is the one it means to read).
    assert.ok(
      loaded.some((name) => name.includes('internal/modules/esm')),
      'an ESM-loaded process',
    );
    assert.deepEqual(
      loaded.filter((name) => name.includes('cjs-module-lexer')),
      [],
    );
  });
});
