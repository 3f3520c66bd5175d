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
