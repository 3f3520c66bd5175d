/**
 * The etcd source's TLS options against real etcd (Debian's etcd 3.4) serving https:// with
 * --client-cert-auth, with a throwaway PKI made by `openssl` at test time: the client certificate
 * reads and watches; a missing client certificate, a CA that did not sign the server, or a client
 * certificate from a foreign CA is an E_SOURCE error with no snapshot and no key material in it;
 * and ETCD_ENDPOINTS/ETCD_NODE + ETCD_CA/ETCD_CERT/ETCD_KEY through loadConfig give settings that
 * work.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createEtcdSource } from '../src/sources/etcd/transport.js';
import { loadConfig } from '../src/config/load.js';
import type { EtcdSourceSettings } from '../src/sources/etcd/kind.js';
import { settingsOf } from '../src/sources/registry.js';
import type { Snapshot } from '../src/sources/source.js';
import { capturedLogger, recordingSink } from './support/sources-sink.js';
import { keyMaterial, makePki, startTlsEtcd, type TlsEtcd, type TlsFiles } from './support/sources-etcd-tls.js';

let pki: TlsFiles;
let etcd: TlsEtcd;
let secrets: string[];

before(async () => {
  pki = await makePki();
  etcd = await startTlsEtcd(pki);
  secrets = await keyMaterial(pki);
  await etcd.ctl(['put', '/haproxy-1/services/web/domain', 'example.org']);
  await etcd.ctl(['put', '/haproxy-1/services/web/port', '8080']);
  await etcd.ctl(['put', '/haproxy-2/services/other/port', '80']);
});

after(async () => {
  await etcd?.close();
  if (pki) await rm(pki.dir, { recursive: true, force: true });
});

const names = (s: Snapshot): string[] => s.backends.map((b) => b.name).sort();

function settings(endpoints: string[], tls: EtcdSourceSettings['tls']): EtcdSourceSettings {
  return { endpoints, prefix: '/haproxy-1', haproxyId: '1', layout: 'confd', ...(tls ? { tls } : {}) };
}

/** No private key line anywhere in these texts. */
function assertNoKeyMaterial(texts: string[]): void {
  for (const text of texts) {
    assert.ok(!/PRIVATE KEY/.test(text), `"PRIVATE KEY" in ${text.slice(0, 200)}`);
    for (const line of secrets) assert.ok(!text.includes(line), `key material in ${text.slice(0, 200)}`);
  }
}

test('mutual TLS: the client certificate reads the prefix, then the watch delivers a change', async (t) => {
  const { log, lines } = capturedLogger();
  const source = createEtcdSource(settings([etcd.endpoint], { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());

  const first = await sink.waitSnapshot(() => true);
  assert.deepEqual(first.keys, { '/haproxy-1/services/web/domain': 'example.org', '/haproxy-1/services/web/port': '8080' });
  assert.deepEqual(first.backends.map((b) => `${b.name}:${b.dns?.[0]?.port}:${b.route?.domain}`), ['web:8080:example.org']);

  const from = sink.snapshots.length;
  await etcd.ctl(['put', '/haproxy-1/services/api/port', '81']);
  const changed = await sink.waitSnapshot((s) => names(s).includes('api'), 10_000, from);
  assert.deepEqual(names(changed), ['api', 'web']);
  assert.equal(changed.keys['/haproxy-1/services/api/port'], '81');
  assert.equal(sink.errors.length, 0, sink.errors.map((e) => e.message).join('\n'));
  assert.equal(lines.filter((l) => /"msg":"etcd: read \d+ keys/.test(l)).length, 1, 'one full read, the change came through the watch');
  assertNoKeyMaterial(lines);
});

// `why`: what the first error must name so an operator sees it is a certificate problem
// (Node's verify error for the server; etcd's TLS alert 42 "bad certificate" for the client).
const rejected: { what: string; tls: () => EtcdSourceSettings['tls']; why: RegExp }[] = [
  { what: 'no client certificate (ca only)', tls: () => ({ ca: pki.ca }), why: /bad certificate/ },
  { what: 'a CA that did not sign the server certificate', tls: () => ({ ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey }), why: /unable to verify the first certificate/ },
  { what: 'a client certificate signed by a foreign CA', tls: () => ({ ca: pki.ca, cert: pki.foreignCert, key: pki.foreignKey }), why: /bad certificate/ },
];

for (const { what, tls, why } of rejected) {
  test(`refused: ${what} → E_SOURCE through sink.error, no snapshot, no key material`, async (t) => {
    const { log, lines } = capturedLogger();
    const source = createEtcdSource(settings([etcd.endpoint], tls()), { log });
    const sink = recordingSink();
    source.start(sink);
    t.after(() => source.stop());
    // Two errors: the first read and its retry both failed (and neither produced a snapshot).
    await sink.waitError(() => true, 15_000);
    await sink.waitError(() => true, 15_000, 1);
    assert.equal(sink.snapshots.length, 0);
    for (const err of sink.errors) {
      assert.equal((err as Error & { code?: string }).code, 'E_SOURCE');
      assert.match(err.message, /^etcd: read failed \(https:\/\/127\.0\.0\.1:\d+ prefix \/haproxy-1\/\): /);
    }
    const err = sink.errors[0]!;
    t.diagnostic(`error: ${err.message}`);
    assert.match(err.message, why);
    assertNoKeyMaterial([err.message, String(err.cause), JSON.stringify(err), JSON.stringify(err.cause), ...lines]);
  });
}

test('an unreadable TLS file is E_CONFIG naming the file, thrown by start() before any connection', (t) => {
  const missing = `${pki.dir}/missing.key`;
  const { log, lines } = capturedLogger();
  const source = createEtcdSource(settings([etcd.endpoint], { ca: pki.ca, cert: pki.clientCert, key: missing }), { log });
  const sink = recordingSink();
  t.after(() => source.stop());
  assert.throws(() => source.start(sink), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_CONFIG');
    assert.equal(err.message, `etcd: TLS key file ${missing} cannot be read (ENOENT)`);
    return true;
  });
  assert.equal(sink.snapshots.length + sink.errors.length, 0);
  assertNoKeyMaterial(lines);
});

// grpc-js's createSsl throws a bare OpenSSL error (ERR_OSSL_X509_KEY_VALUES_MISMATCH) for a key
// that does not match its certificate: the source turns it into E_CONFIG naming the files (exit 78).
test('a key that does not match the certificate is E_CONFIG naming the files', (t) => {
  const { log } = capturedLogger();
  const source = createEtcdSource(settings([etcd.endpoint], { ca: pki.ca, cert: pki.clientCert, key: pki.foreignKey }), { log });
  const sink = recordingSink();
  t.after(() => source.stop());
  assert.throws(() => source.start(sink), (err: Error & { code?: string }) => {
    assert.ok(!secrets.some((line) => err.message.includes(line)), 'no key material');
    assert.equal(err.code, 'E_CONFIG', `${err.name} ${err.code}: ${err.message}`);
    assert.ok(err.message.includes(pki.foreignKey) && err.message.includes(pki.clientCert), err.message);
    return true;
  });
});

test('loadConfig: ETCD_ENDPOINTS/ETCD_NODE with ETCD_CA, ETCD_CERT, ETCD_KEY give settings that read and watch', async (t) => {
  const files = { readFile: (p: string) => readFileSync(p, 'utf8'), fileExists: (p: string) => existsSync(p) };
  const tlsEnv = { ETCD_CA: pki.ca, ETCD_CERT: pki.clientCert, ETCD_KEY: pki.clientKey, HAPROXY_ID: '1' };
  // An https:// URL as given, and a bare host:port that must become https:// because TLS is configured.
  const variants = [
    { env: { ...tlsEnv, ETCD_ENDPOINTS: etcd.endpoint }, endpoint: etcd.endpoint },
    { env: { ...tlsEnv, ETCD_NODE: `127.0.0.1:${etcd.port}` }, endpoint: etcd.endpoint },
  ];
  for (const [i, v] of variants.entries()) {
    const config = loadConfig({ env: v.env, ...files });
    const etcdSettings = settingsOf<EtcdSourceSettings>(config.sources, 'etcd');
    assert.ok(etcdSettings, 'sources.etcd is set');
    assert.deepEqual(etcdSettings.endpoints, [v.endpoint]);
    assert.deepEqual(etcdSettings.tls, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    assert.equal(etcdSettings.prefix, '/haproxy-1');

    const { log, lines } = capturedLogger();
    const source = createEtcdSource(etcdSettings, { log });
    const sink = recordingSink();
    source.start(sink);
    t.after(() => source.stop());
    const first = await sink.waitSnapshot(() => true);
    assert.ok(names(first).includes('web'), `variant ${i}: ${names(first).join()}`);
    const key = `/haproxy-1/services/cfg${i}/port`;
    await etcd.ctl(['put', key, '9000']);
    const changed = await sink.waitSnapshot((s) => s.keys[key] === '9000', 10_000);
    assert.ok(names(changed).includes(`cfg${i}`));
    assert.equal(sink.errors.length, 0, sink.errors.map((e) => e.message).join('\n'));
    assertNoKeyMaterial(lines);
  }
});
