/** Certificate bundles for the fuzz suite, made once with openssl: good ones and PEM-shaped bad ones. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pems {
  /** Bundles HAProxy loads: a certificate and its key. */
  good: string[];
  /** PEM-shaped bundles HAProxy refuses (no key, a key of another certificate, garbage, an encrypted key). */
  bad: string[];
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

export function makePems(): Pems {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-fuzz-pem-'));
  try {
    const pair = (name: string, keyArgs: string[]): { cert: string; key: string } => {
      openssl(['req', '-x509', ...keyArgs, '-nodes', '-days', '2', '-subj', `/CN=${name}.example.org`, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)]);
      return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
    };
    const ec = pair('ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']);
    const ec2 = pair('ec2', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']);
    const rsa = pair('rsa', ['-newkey', 'rsa:2048']);
    openssl(['pkey', '-in', join(dir, 'ec.key'), '-aes256', '-passout', 'pass:secret', '-out', join(dir, 'ec-enc.key')]);
    const encrypted = readFileSync(join(dir, 'ec-enc.key'), 'utf8');
    const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    return {
      good: [ec.cert + ec.key, ec.key + ec.cert, rsa.cert + rsa.key, (ec2.cert + ec2.key).replace(/\n/g, '\r\n'), (ec.cert + ec.key).trimEnd()],
      bad: [ec.cert, ec.key, ec.cert + ec2.key, garbage, ec.cert + encrypted, rsa.cert.replace(/[A-Za-z]{8}\n/, 'AAAAAAAA\n') + rsa.key],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
