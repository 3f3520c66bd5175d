import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confdLayout, validPem } from './confd-layout.js';

const P = '/haproxy-1';
const layout = (keys: Record<string, string>) => confdLayout(keys, { prefix: P, source: 'etcd' });

/** A real certificate and its key (EC P-256, CN=example.org, valid for 100 years): the layout parses both. */
const TEST_PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBgjCCASmgAwIBAgIUKaOHNMOcupkVVrLlLBXvZ5JJFkEwCgYIKoZIzj0EAwIw',
  'FjEUMBIGA1UEAwwLZXhhbXBsZS5vcmcwIBcNMjYxMjAxMjMyMTI3WhgPMjEyNjEx',
  'MDcyMzIxMjdaMBYxFDASBgNVBAMMC2V4YW1wbGUub3JnMFkwEwYHKoZIzj0CAQYI',
  'KoZIzj0DAQcDQgAEUy/TRIV2HVBTWEg+i1SWOlInyPzZ2oKg2jLjCBAcZ6t6dKCd',
  'bvmGLWOrAzBbq6CkVYV16PN8E5Baw2Xd1HHC6qNTMFEwHQYDVR0OBBYEFEqZ0GiM',
  'uiyNBcacTM1kaSqPaj1aMB8GA1UdIwQYMBaAFEqZ0GiMuiyNBcacTM1kaSqPaj1a',
  'MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgGalCqjx5nOaxmyH8',
  '4aIlYyuXqL9g9PsKVA7Nt6QWcu8CIBIzmqJERRjFbzg1hNoCwYf1iupyKjuHtJ0c',
  'SFWmLbsx',
  '-----END CERTIFICATE-----',
  '-----BEGIN PRIVATE KEY-----',
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggGwb6FUKGP5eWNqb',
  'yItnt9n3pKVHP0hbWlWPWOiXESahRANCAARTL9NEhXYdUFNYSD6LVJY6UifI/Nna',
  'gqDaMuMIEBxnq3p0oJ1u+YYtY6sDMFuroKRVhXXo83wTkFrDZd3UccLq',
  '-----END PRIVATE KEY-----',
  '',
].join('\n');

/** Another EC private key: not the certificate's. */
const OTHER_KEY = [
  '-----BEGIN PRIVATE KEY-----',
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgps/DCIEWsr7ZtAGv',
  'cJwz5sXvNUACcN9K6x7WJCynZKShRANCAAR2iBACSfcLkx4LJ2ibARerWQm2Cnq0',
  'PRotTERSO4rtIXLQM9ymQfQcXwhmPaXBwKKNuxdaNGTFvo09AKkxu7aT',
  '-----END PRIVATE KEY-----',
  '',
].join('\n');

/** TEST_PEM's key, encrypted (HAProxy cannot read it without a passphrase). */
const ENCRYPTED_KEY = [
  '-----BEGIN ENCRYPTED PRIVATE KEY-----',
  'MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAik0zdxk+BA1wICCAAw',
  'DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEKmZrcB1Ir1O2PmPPkiBqmIEgZD7',
  'K2w8YzTfYpmlNflfTEY1l0GecfqnqwiXokBsqvbOz1fgl8zMabW4QMjdb6a9QsMJ',
  'ScGr1pKS8OX8yPuRhW2Nn3cdADN/vMrBvYdPZZxU8LaWAwObE5/K1zy3eV3U7/6M',
  'PQ5q6hjuSM9cpxuB41ayGYVoVsMfczd0eqUGJc8hkzu/yLlvLy6evGvEYy720xw=',
  '-----END ENCRYPTED PRIVATE KEY-----',
  '',
].join('\n');

test('seed 001 services and tcp-services become DNS-discovered backends with routes', () => {
  const r = layout({
    '/haproxy-1/services/myapp/domain': 'example.org',
    '/haproxy-1/services/myapp/port': '80',
    '/haproxy-1/services/myapi/url_beg': '/api_A',
    '/haproxy-1/services/myapi/port': '8080',
    '/haproxy-1/tcp-services/galera/external_port': '3306',
    '/haproxy-1/tcp-services/galera/internal_port': '3307',
  });
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backends, [
    { name: 'myapi', mode: 'http', servers: [], dns: [{ name: 'myapi', port: 8080, slots: 10 }], route: { pathPrefix: '/api_A' }, source: 'etcd' },
    { name: 'myapp', mode: 'http', servers: [], dns: [{ name: 'myapp', port: 80, slots: 10 }], route: { domain: 'example.org' }, source: 'etcd' },
    { name: 'tcp-galera', mode: 'tcp', servers: [], dns: [{ name: 'galera', port: 3307, slots: 10 }], route: { port: 3306 }, source: 'etcd' },
  ]);
});

test('a service with only a port has no route; slots are configurable', () => {
  const r = confdLayout({ '/haproxy-1/services/plain/port': '80' }, { prefix: 'haproxy-1/', source: 'etcd', dnsSlots: 3 });
  assert.deepEqual(r.backends[0], { name: 'plain', mode: 'http', servers: [], dns: [{ name: 'plain', port: 80, slots: 3 }], source: 'etcd' });
});

test('missing keys skip the service, naming it; others are unaffected', () => {
  const r = layout({
    '/haproxy-1/services/noport/domain': 'example.org',
    '/haproxy-1/tcp-services/half/external_port': '3306',
    '/haproxy-1/services/ok/port': '80',
  });
  assert.deepEqual(r.backends.map((b) => b.name), ['ok']);
  assert.deepEqual(r.skipped.map((s) => s.key), ['/haproxy-1/services/noport', '/haproxy-1/tcp-services/half']);
  assert.match(r.skipped[0]!.reason, /port: missing/);
  assert.match(r.skipped[1]!.reason, /internal_port: missing/);
});

test('injection attempts in every field are skipped', () => {
  const evil = ['80\n  server x 6.6.6.6:80', '/a\nb', '/a b', '/a#b', '/a"', '80 # x', 'a b', 'x"y', '${HOME}', 'a;b', ''];
  for (const bad of evil) {
    for (const [field, good] of [['domain', 'example.org'], ['port', '80'], ['url_beg', '/a']] as const) {
      const keys: Record<string, string> = { '/haproxy-1/services/s/domain': 'example.org', '/haproxy-1/services/s/port': '80', '/haproxy-1/services/s/url_beg': '/a' };
      assert.equal(keys[`/haproxy-1/services/s/${field}`], good);
      keys[`/haproxy-1/services/s/${field}`] = bad;
      const r = layout(keys);
      assert.deepEqual(r.backends, [], `services/s/${field}=${JSON.stringify(bad)}`);
      assert.equal(r.skipped[0]!.key, '/haproxy-1/services/s');
    }
    for (const field of ['external_port', 'internal_port']) {
      const keys: Record<string, string> = { '/haproxy-1/tcp-services/t/external_port': '3306', '/haproxy-1/tcp-services/t/internal_port': '3306' };
      keys[`/haproxy-1/tcp-services/t/${field}`] = bad;
      assert.deepEqual(layout(keys).backends, [], `tcp-services/t/${field}=${JSON.stringify(bad)}`);
    }
  }
  // Names come from the key path: they must be names and DNS names as they are.
  for (const name of ['a b', 'a\nb', 'a#b', '-a', 'a"b', 'x'.repeat(64)]) {
    const r = layout({ [`/haproxy-1/services/${name}/port`]: '80', [`/haproxy-1/tcp-services/${name}/external_port`]: '1', [`/haproxy-1/tcp-services/${name}/internal_port`]: '1' });
    assert.deepEqual(r.backends, [], JSON.stringify(name));
    assert.equal(r.skipped.length, 2);
  }
  for (const [port, why] of [['0', 'zero'], ['65536', 'too big'], ['1e3', 'exponent'], ['-1', 'negative'], [' 80', 'space']]) {
    assert.deepEqual(layout({ '/haproxy-1/services/s/port': port! }).backends, [], why);
  }
});

test('services/x and tcp-services/x coexist; a tcp external_port is used once', () => {
  const r = layout({
    '/haproxy-1/services/db/port': '80',
    '/haproxy-1/tcp-services/db/external_port': '3306',
    '/haproxy-1/tcp-services/db/internal_port': '3306',
    '/haproxy-1/tcp-services/db2/external_port': '3306',
    '/haproxy-1/tcp-services/db2/internal_port': '3306',
  });
  assert.deepEqual(r.backends.map((b) => b.name), ['db', 'tcp-db']);
  assert.match(r.skipped[0]!.reason, /3306 is already used/);
});

test('certificates under certs/<name> become <name>.pem files; bad ones are skipped without showing them', () => {
  const r = layout({
    '/haproxy-1/certs/example.org': TEST_PEM,
    '/haproxy-1/certs/..': TEST_PEM,
    '/haproxy-1/certs/nokey': TEST_PEM.split('-----BEGIN PRIVATE KEY-----')[0]!,
    '/haproxy-1/certs/inject': `${TEST_PEM}\nbind :1 ssl crt /etc/passwd`,
    '/haproxy-1/certs/sub/dir': TEST_PEM,
  });
  assert.deepEqual(Object.keys(r.files ?? {}), ['example.org.pem']);
  assert.equal(r.files!['example.org.pem'], TEST_PEM);
  assert.deepEqual(r.skipped.map((s) => s.key).sort(), ['/haproxy-1/certs/..', '/haproxy-1/certs/inject', '/haproxy-1/certs/nokey']);
  for (const s of r.skipped) assert.ok(!s.reason.includes('MIGHAgEA'), 'never shows key material');
  assert.equal(validPem('k', TEST_PEM.trimEnd()), TEST_PEM, 'adds the final newline HAProxy wants');
});

test('keys of other proxies and unknown fields are ignored', () => {
  const r = layout({ '/haproxy-10/services/x/port': '80', '/haproxy-1/services/y/port': '80', '/haproxy-1/services/y/weight': 'zz', '/haproxy-1/other/z': '1' });
  assert.deepEqual(r.backends.map((b) => b.name), ['y']);
  assert.deepEqual(r.skipped, []);
});

// Regression cases found by the fuzz suite (e2e/fuzz-kv.test.ts, docs/fuzzing.md): each was
// accepted by the layout and refused by `haproxy -c`, blocking every other change; the shrunk
// counterexample is the key's value here. Each is now skipped alone, naming its key.
const CERT = TEST_PEM.split('-----BEGIN PRIVATE KEY-----')[0]!;
const GARBAGE = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
const CERT_CASES: [string, string, string, RegExp][] = [
  // [what, certificate name, value, reason]
  ['PEM-shaped garbage', 'a', GARBAGE, /CERTIFICATE block 1 is not a certificate/],
  ['a certificate without its key', 'nokey', CERT, /needs a CERTIFICATE block and one unencrypted PRIVATE KEY block/],
  ["another certificate's key", 'mismatch', CERT + OTHER_KEY, /the private key is not the first certificate's/],
  ['an encrypted key', 'encrypted', CERT + ENCRYPTED_KEY, /one unencrypted PRIVATE KEY block/],
  ['a key block that is not a key', 'badkey', CERT + '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /the PRIVATE KEY block is not a private key/],
  ['a name too long for <name>.pem', `0a..00..0A--0.aA.0__00AAA0..a_0_-0.-a.-AAa__a.AAa_-__-A.A_0AAa.`, TEST_PEM, /\.pem" is not a name/],
];

test('certificates HAProxy refuses are skipped alone, naming their key (fuzz regressions)', () => {
  for (const [what, name, value, reason] of CERT_CASES) {
    const r = layout({ [`/haproxy-1/certs/${name}`]: value, '/haproxy-1/certs/good': TEST_PEM, '/haproxy-1/services/web/port': '80', '/haproxy-1/services/web/domain': 'example.org' });
    assert.deepEqual(Object.keys(r.files ?? {}), ['good.pem'], what);
    assert.equal(r.skipped.length, 1, what);
    assert.equal(r.skipped[0]!.key, `/haproxy-1/certs/${name}`, what);
    assert.match(r.skipped[0]!.reason, reason, what);
    assert.ok(r.skipped[0]!.reason.startsWith(`/haproxy-1/certs/${name}`), what);
    assert.ok(!r.skipped[0]!.reason.includes('MIGHAgEA') && !r.skipped[0]!.reason.includes('AAAA'), `${what}: never shows the bundle`);
  }
  // The bundles HAProxy loads stay: key first, CRLF line ends, no final newline.
  const key = TEST_PEM.slice(CERT.length);
  for (const good of [TEST_PEM, key + CERT, TEST_PEM.replace(/\n/g, '\r\n'), TEST_PEM.trimEnd()]) assert.doesNotThrow(() => validPem('k', good));
});

test('a hostile service name is shown quoted: a skipped reason is one line (fuzz regression)', () => {
  const r = layout({ '/haproxy-1/services/a\n    server evil 6.6.6.6:1/port': '80' });
  assert.equal(r.backends.length, 0);
  assert.equal(r.skipped.length, 1);
  assert.doesNotMatch(r.skipped[0]!.reason, /\n/);
  assert.ok(r.skipped[0]!.reason.startsWith('"/haproxy-1/services/a\\n    server evil'), r.skipped[0]!.reason);
});
