/**
 * Real etcd behind mutual TLS for the etcd source's TLS e2e test: a throwaway PKI made with the
 * `openssl` CLI in a temp dir (a CA, a server certificate for IP 127.0.0.1, a client certificate,
 * and a second CA that signed neither), and Debian's etcd 3.4 serving https:// on a free loopback
 * port with --client-cert-auth (peer traffic stays plaintext: one member, loopback only).
 * Stopped by pid; the temp dir is removed on close.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from './sources-etcd.js';

export interface TlsFiles {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing we use (the client must reject the server with it). */
  otherCa: string;
  /** A client certificate and key signed by otherCa (the server must reject it). */
  foreignCert: string;
  foreignKey: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir });
}

/** A self-signed CA (EC P-256: quick to make). */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=pilot-test-${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf certificate `name` signed by CA `ca`, with the given extensions. */
async function makeLeaf(dir: string, name: string, ca: string, cn: string, ext: string): Promise<void> {
  await openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`,
  ]);
}

export async function makePki(): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-etcd-tls-'));
  try {
    await makeCa(dir, 'ca');
    await makeCa(dir, 'other-ca');
    // etcd 3.4's grpc-gateway dials its own client port with the server certificate, so the
    // server certificate also carries clientAuth.
    await makeLeaf(dir, 'server', 'ca', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    await makeLeaf(dir, 'client', 'ca', 'pilot', 'extendedKeyUsage=clientAuth\n');
    await makeLeaf(dir, 'foreign', 'other-ca', 'pilot', 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const f = (n: string): string => join(dir, n);
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    otherCa: f('other-ca.pem'),
    foreignCert: f('foreign.pem'),
    foreignKey: f('foreign.key'),
  };
}

/** The base64 body lines of every private key in the PKI, to check that none leaks anywhere. */
export async function keyMaterial(pki: TlsFiles): Promise<string[]> {
  const out: string[] = [];
  for (const file of [pki.clientKey, pki.serverKey, pki.foreignKey]) {
    for (const line of (await readFile(file, 'utf8')).split('\n')) if (line !== '' && !line.startsWith('-----')) out.push(line.trim());
  }
  return out;
}

export interface TlsEtcd {
  /** https://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  pid: number;
  /** etcdctl over TLS with the client certificate. */
  ctl(args: string[]): Promise<string>;
  close(): Promise<void>;
}

/** GET /health with the client certificate (the port demands one). */
function health(port: number, ca: Buffer, cert: Buffer, key: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', ca, cert, key, timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export async function startTlsEtcd(pki: TlsFiles): Promise<TlsEtcd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pilot-etcd-tls-data-'));
  const port = await freePort();
  const peer = await freePort();
  const endpoint = `https://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(
    'etcd',
    [
      '--name', 'tls0',
      '--data-dir', dataDir,
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--cert-file', pki.serverCert,
      '--key-file', pki.serverKey,
      '--trusted-ca-file', pki.ca,
      '--client-cert-auth',
      '--listen-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `tls0=http://127.0.0.1:${peer}`,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `pilot-tls-${peer}`,
      '--logger', 'zap',
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const close = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    if (proc.pid === undefined) throw new Error('etcd did not start');
    const [ca, cert, key] = await Promise.all([readFile(pki.ca), readFile(pki.clientCert), readFile(pki.clientKey)]);
    const deadline = Date.now() + 20_000;
    while (!(await health(port, ca, cert, key))) {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}`);
      if (Date.now() > deadline) throw new Error(`etcd at ${endpoint} not healthy within 20 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    port,
    pid: proc.pid,
    async ctl(args) {
      const { stdout } = await execa(
        'etcdctl',
        ['--endpoints', endpoint, '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, '--command-timeout', '5s', ...args],
        { env: { ETCDCTL_API: '3' } },
      );
      return stdout;
    },
    close,
  };
}
