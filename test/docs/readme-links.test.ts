/** The README's table of contents lists every top-level section, and every #link lands on a heading. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/repo.js';

const text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
/** Headings outside code blocks (a `# comment` in a shell block is not one). */
const headings = text
  .replace(/^```[\s\S]*?^```/gm, '')
  .split('\n')
  .filter((line) => /^#{1,4} /.test(line));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .replace(/^#+ /, '')
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

test('the table of contents lists every top-level section, in order', () => {
  const contents = /^Contents:\n\n((?:- .*\n)+)/m.exec(text)?.[1];
  assert.ok(contents, 'a "Contents:" list near the top of the README');
  const listed = [...contents.matchAll(/^- \[(.+)\]\(#(.+)\)$/gm)].map((m) => [m[1], m[2]]);
  const sections = headings.filter((h) => h.startsWith('## ')).map((h) => [h.slice(3), anchor(h)]);
  assert.deepEqual(listed, sections, 'update the README\'s "Contents:" list to match its ## sections');
});

test('every #anchor link and every examples/ link in the README resolves', () => {
  const anchors = new Set(headings.map(anchor));
  for (const [, target] of text.matchAll(/\]\(#([^)]+)\)/g)) assert.ok(anchors.has(target!), `#${target} names no heading`);
  for (const [, path] of text.matchAll(/\]\((examples\/[^)#]*)\)/g)) assert.ok(existsSync(join(REPO_ROOT, path!)), `${path} does not exist`);
});
