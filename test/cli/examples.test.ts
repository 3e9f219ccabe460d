/** The copyable examples in examples/ pass `--check` as shipped, and the systemd unit is sound. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseDuration } from '../../src/config/duration.js';
import { REPO_ROOT, runBin } from '../helpers/repo.js';

const run = promisify(execFile);
const EXAMPLES = join(REPO_ROOT, 'examples');

const check = (config: string) => runBin(['--config', config, '--check'], 30_000);

describe('examples/', { timeout: 120_000 }, () => {
  it('every example config passes --check (the TLS one with a certificate made by its documented command)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-examples-'));
    try {
      // A copy, so that the generated certificate never lands in the repository.
      await cp(EXAMPLES, dir, { recursive: true });
      await mkdir(join(dir, 'certs'), { recursive: true });
      // The command in tls-edge.yaml's comment.
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=www.example.com',
        '-addext',
        'subjectAltName=DNS:www.example.com,DNS:localhost',
        '-keyout',
        join(dir, 'certs/edge.key'),
        '-out',
        join(dir, 'certs/edge.crt'),
      ]);
      const configs = (await readdir(dir)).filter((name) => /\.(ya?ml|json)$/.test(name)).sort();
      for (const expected of ['capture.yaml', 'database-balancer.yaml', 'fault-injection.yaml', 'tls-edge.yaml'])
        assert.ok(configs.includes(expected), expected);
      for (const name of configs) {
        const result = await check(join(dir, name));
        assert.equal(result.stderr, '', name);
        assert.equal(result.stdout, 'ok\n', name);
        assert.equal(result.code, 0, name);
      }
      // Without the certificate the TLS example is refused, naming the key: the check is real.
      await rm(join(dir, 'certs'), { recursive: true });
      const missing = await check(join(dir, 'tls-edge.yaml'));
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /listeners\[0\]\.tls\.cert: cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the systemd unit reloads with SIGHUP, drains with SIGTERM for longer than shutdown_timeout, and is hardened', async () => {
    const unit = await readFile(join(EXAMPLES, 'tcpproxy.service'), 'utf8');
    const settings = new Map<string, string>();
    for (const line of unit.split('\n')) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (match) settings.set(match[1]!, match[2]!);
    }
    assert.equal(settings.get('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(settings.get('KillSignal'), 'SIGTERM');
    const defaultShutdownTimeout = 30_000;
    assert.ok(parseDuration(settings.get('TimeoutStopSec')) > defaultShutdownTimeout, 'TimeoutStopSec above the default shutdown_timeout');
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE'],
      ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'],
      ['RestartPreventExitStatus', '2'],
    ]) {
      assert.equal(settings.get(key!), value, key);
    }
    assert.match(settings.get('ExecStart') ?? '', /bin\/tcpproxy --config \S+/);
    // Where systemd is installed, its own checker reads the unit too.
    const verify = await run('systemd-analyze', ['verify', join(EXAMPLES, 'tcpproxy.service')]).catch(
      (error: NodeJS.ErrnoException & { stderr?: string }) => error,
    );
    if (verify instanceof Error && verify.code === 'ENOENT') return;
    assert.ok(!(verify instanceof Error), `systemd-analyze verify: ${verify instanceof Error ? verify.stderr : ''}`);
    assert.equal(verify.stderr, '');
  });
});
