/**
 * The floors of src/ (scripts/check-layers.mjs lists them, lowest first): no folder imports
 * from a floor above its own, so there is no import cycle between folders. The checker itself
 * is tried on small trees that break the rule, so that a checker that sees nothing fails too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/repo.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'check-layers.mjs');

function checkLayers(srcDir?: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [SCRIPT, ...(srcDir === undefined ? [] : [srcDir])], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const trees: string[] = [];
after(() => {
  for (const tree of trees) rmSync(tree, { recursive: true, force: true });
});

/** A throwaway src/ tree: file path -> contents. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'tcpproxy-layers-'));
  trees.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The checker fails on the tree `files`, with every one of `lines` in its output. */
function refused(files: Record<string, string>, ...lines: RegExp[]): void {
  const { status, output } = checkLayers(tree(files));
  assert.equal(status, 1, output);
  for (const line of lines) assert.match(output, line);
}

describe('src/ floors', { timeout: 60_000 }, () => {
  it('hold in this repository', () => {
    const { status, output } = checkLayers();
    assert.equal(status, 0, output);
  });

  it('an import from a higher floor fails, naming the file, the line and both floors', () => {
    refused(
      {
        'net/address.ts': 'export const a = 1;\n',
        'config/load.ts': "import { a } from '../net/address.js';\nexport const b = a;\n",
        'net/uses-config.ts': "// a lower floor reaching up\nimport type { b } from '../config/load.js';\n",
      },
      /^net\/uses-config\.ts:2: src\/net\/ imports \.\.\/config\/load\.js from the higher floor src\/config\/$/m,
      /^import cycle between the folders src\/config\/, src\/net\/$/m,
    );
  });

  it('dynamic imports, re-exports and folders without a floor are checked too', () => {
    refused(
      {
        'protocol/late.ts': "export async function f() { return import('../proxy/bridge.js'); }\n",
        'errors/again.ts': "export { x } from '../cli/main.js';\n",
        'gadgets/thing.ts': 'export const y = 2;\n',
      },
      /^protocol\/late\.ts:1: src\/protocol\/ imports \.\.\/proxy\/bridge\.js from the higher floor src\/proxy\/$/m,
      /^errors\/again\.ts:1: src\/errors\/ imports \.\.\/cli\/main\.js from the higher floor src\/cli\/$/m,
      /^gadgets\/thing\.ts: folder "gadgets" has no floor/m,
    );
  });
});
