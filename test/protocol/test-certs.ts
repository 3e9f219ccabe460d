/**
 * A throwaway PKI for TLS tests, made with the `openssl` command: a CA, a server
 * certificate (localhost, 127.0.0.1, ::1 and any extra names) and a client certificate,
 * all EC P-256 and valid for two days. Returns file paths inside `dir`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface TestCertificateOptions {
  /** Extra DNS names for the server certificate, e.g. "*.example.com". */
  serverNames?: string[];
}

export async function makeTestCertificates(dir: string, options: TestCertificateOptions = {}): Promise<TestCertificates> {
  const names = ['localhost', ...(options.serverNames ?? [])];
  const altNames = [...names.map((name) => `DNS:${name}`), 'IP:127.0.0.1', 'IP:::1'].join(',');
  const config = join(dir, 'openssl.cnf');
  await writeFile(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[ca_ext]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[server_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${altNames}`,
      'authorityKeyIdentifier = keyid',
      '[client_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const file = (name: string) => join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  await run('openssl', [
    'req',
    '-x509',
    '-new',
    ...newKey,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=tcpproxy test CA',
    '-config',
    config,
    '-extensions',
    'ca_ext',
  ]);
  const issue = async (role: 'server' | 'client', commonName: string): Promise<void> => {
    await run('openssl', [
      'req',
      '-new',
      ...newKey,
      '-keyout',
      file(`${role}.key`),
      '-out',
      file(`${role}.csr`),
      '-subj',
      `/CN=${commonName}`,
      '-config',
      config,
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      file(`${role}.csr`),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-out',
      file(`${role}.crt`),
      '-extfile',
      config,
      '-extensions',
      `${role}_ext`,
    ]);
  };
  await Promise.all([issue('server', 'localhost'), issue('client', 'tcpproxy test client')]);

  return {
    caCert: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
  };
}
