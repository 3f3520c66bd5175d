import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kvBackendName, kvLayout } from './kv-layout.js';

const P = 'apps/myapp/containers';

test('seed 002 keys become one backend named after the app, servers named by base key', () => {
  const r = kvLayout(
    { '/apps/myapp/containers/one': '10.9.1.1:32001', '/apps/myapp/containers/two': '10.9.1.2:32002' },
    { prefix: P, source: 'kv' },
  );
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backends, [
    {
      name: 'myapp',
      mode: 'http',
      source: 'kv',
      servers: [
        { name: 'one', host: '10.9.1.1', port: 32001 },
        { name: 'two', host: '10.9.1.2', port: 32002 },
      ],
    },
  ]);
  assert.equal(r.backends[0]!.route, undefined, 'no route: the default frontend :5000 serves it');
});

test('backend name derives from the prefix', () => {
  assert.equal(kvBackendName('apps/myapp/containers'), 'myapp');
  assert.equal(kvBackendName('/apps/my app/containers/'), 'my_app');
  assert.equal(kvBackendName('services/web'), 'web');
  assert.equal(kvBackendName('/'), 'kv');
});

test('an empty prefix yields an empty backend, not none', () => {
  assert.deepEqual(kvLayout({}, { prefix: P, source: 'kv' }).backends[0]!.servers, []);
});

test('bad values are skipped naming the key; good ones stay', () => {
  const keys: Record<string, string> = {
    '/apps/myapp/containers/good': '10.0.0.1:80',
    '/apps/myapp/containers/noport': '10.0.0.2',
    '/apps/myapp/containers/bigport': '10.0.0.3:70000',
    '/apps/myapp/containers/zero': '10.0.0.3:0',
    '/apps/myapp/containers/nl': '10.0.0.4:80\n    server evil 6.6.6.6:80',
    '/apps/myapp/containers/space': '10.0.0.5:80 backup',
    '/apps/myapp/containers/hash': '10.0.0.6:80#',
    '/apps/myapp/containers/empty': '',
  };
  const r = kvLayout(keys, { prefix: P, source: 'kv' });
  assert.deepEqual(r.backends[0]!.servers, [{ name: 'good', host: '10.0.0.1', port: 80 }]);
  assert.deepEqual(r.skipped.map((s) => s.key).sort(), Object.keys(keys).filter((k) => !k.endsWith('/good')).sort());
  for (const s of r.skipped) assert.ok(s.reason.startsWith(`${s.key}:`), s.reason);
  for (const s of r.skipped) assert.ok(!s.reason.includes('\n'), 'reasons are one line');
});

test('key names are made safe and duplicates after cleaning are skipped', () => {
  const r = kvLayout(
    { '/apps/myapp/containers/a b': '10.0.0.1:80', '/apps/myapp/containers/a_b': '10.0.0.2:80', '/apps/myapp/containers/x\ny': '10.0.0.3:80' },
    { prefix: P, source: 'kv' },
  );
  assert.deepEqual(r.backends[0]!.servers.map((s) => s.name), ['a_b', 'x_y']);
  assert.equal(r.skipped.length, 1);
});

test('keys outside the prefix, folder keys and deeper keys are not servers', () => {
  const r = kvLayout(
    {
      '/apps/myapp/containers': '',
      '/apps/myapp/containers2/x': '10.0.0.9:80',
      '/apps/other/containers/x': '10.0.0.9:80',
      '/apps/myapp/containers/one/meta': 'x',
      '/apps/myapp/containers/one': '[::1]:8080',
    },
    { prefix: '/apps/myapp/containers/', source: 'kv' },
  );
  assert.deepEqual(r.backends[0]!.servers, [{ name: 'one', host: '::1', port: 8080 }]);
  assert.deepEqual(r.skipped, []);
});

test('a key that is not one visible word is shown quoted: a skipped reason is one line (fuzz regression)', () => {
  // Shrunk counterexample: the key `apps/myapp/containers/\n` with a valid address.
  for (const child of ['\n', 'a b', '\u001b[31mred', 'x\r\nserver evil 6.6.6.6:1']) {
    const key = `/apps/myapp/containers/${child}`;
    const r = kvLayout({ [key]: 'localhost:1', '/apps/myapp/containers/ok': '10.0.0.1:80' }, { prefix: P, source: 'kv' });
    assert.deepEqual(r.backends[0]!.servers.map((s) => s.name).includes('ok'), true);
    for (const s of r.skipped) {
      assert.equal(s.key, key);
      assert.doesNotMatch(s.reason, /[\r\n\u001b]/, JSON.stringify(s.reason));
      assert.ok(s.reason.startsWith(JSON.stringify(key).slice(0, 20)), s.reason);
    }
  }
});
