/**
 * One error base class with stable codes: the README lists exactly the codes of
 * src/errors/errors.ts, src/ raises no bare Error, and the access log and the admin API
 * carry the codes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { errorReply } from '../../src/admin/reply.js';
import { ConfigError } from '../../src/config/load.js';
import { ERROR_CODES, TcpProxyError } from '../../src/errors/errors.js';
import { FilterError } from '../../src/filters/chain.js';
import { errorFields } from '../../src/observability/access-log.js';
import { ListenError } from '../../src/proxy/listener.js';
import { PeerGoneError } from '../../src/proxy/peer-probe.js';
import { REPO_ROOT } from '../helpers/repo.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('error codes', { timeout: 10_000 }, () => {
  it('the README\'s "Error codes" table is the list in src/errors/errors.ts', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /^## Error codes\n([\s\S]*?)^## /m.exec(readme)?.[1];
    assert.ok(section, 'the README has an "## Error codes" section');
    const rows = [...section.matchAll(/^\| `([^`]+)` \| (.*) \|$/gm)].map((m) => [m[1], m[2]!.replace(/\\\|/g, '|')]);
    assert.deepEqual(rows, Object.entries(ERROR_CODES));
  });

  it('src/ raises its errors as TcpProxyError (TypeError/RangeError only for its own bugs)', () => {
    const root = join(REPO_ROOT, 'src');
    const offenders = sources(root)
      // The dashboard's browser script runs in the page, not in the proxy.
      .filter((file) => !relative(root, file).startsWith(join('admin', 'dashboard')))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .map((line, index) => ({ line, at: `${relative(REPO_ROOT, file)}:${index + 1}` }))
          .filter(({ line }) => /\bnew Error\(|\bextends Error\b/.test(line) && !line.includes('class TcpProxyError extends Error')),
      )
      .map(({ at, line }) => `${at}: ${line.trim()}`);
    assert.deepEqual(offenders, []);
  });

  it('subclasses keep their name and carry their code', () => {
    const config = new ConfigError(['listeners[0].listen: expected HOST:PORT']);
    assert.ok(config instanceof TcpProxyError && config instanceof Error);
    assert.equal(config.name, 'ConfigError');
    assert.equal(config.code, 'config_invalid');
    assert.equal(new ListenError('cannot listen', 'EADDRINUSE').code, 'EADDRINUSE');
    assert.equal(new ListenError('cannot listen', undefined).code, 'listen_failed');
    assert.equal(new PeerGoneError().code, 'ECONNRESET');
    assert.equal(new FilterError('replace', 'to_client', new Error('boom')).code, 'filter_failed');
  });

  it("the access log's error is the system code or the message; error_code is the code", () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.deepEqual(errorFields(refused), { error: 'ECONNREFUSED', error_code: 'ECONNREFUSED' });
    assert.deepEqual(errorFields(new PeerGoneError()), { error: 'ECONNRESET', error_code: 'ECONNRESET' });
    assert.deepEqual(errorFields(new FilterError('block', 'to_upstream', new Error('boom'))), {
      error: 'filter block (to_upstream) failed: boom',
      error_code: 'filter_failed',
    });
    assert.deepEqual(errorFields(new Error('no code')), { error: 'no code' });
  });

  it('admin API refusals carry a code: the given one, else the one of their HTTP status', () => {
    const body = (status: number, code?: 'unknown_listener'): unknown => JSON.parse(errorReply(status, 'why', code).body as string);
    assert.deepEqual(body(404), { error: 'why', code: 'not_found' });
    assert.deepEqual(body(404, 'unknown_listener'), { error: 'why', code: 'unknown_listener' });
    assert.deepEqual(body(500), { error: 'why', code: 'internal' });
    for (const status of [400, 401, 403, 405, 409, 413, 415, 501]) {
      assert.ok((body(status) as { code: string }).code in ERROR_CODES, `status ${status}`);
    }
  });
});
