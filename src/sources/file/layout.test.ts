import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileLayout, flattenKeys } from './layout.js';

const opts = { source: 'file' };

test('services with string and object servers, dns and routes', () => {
  const r = fileLayout(
    {
      services: {
        web: { servers: ['10.0.0.1:80', { address: 'web-2:8080', name: 'b', weight: 50, state: 'drain' }], route: { domain: 'example.org', path: '/api' } },
        db: { mode: 'tcp', dns: { name: 'db.internal', port: 5432 }, route: { port: 5432 } },
      },
    },
    opts,
  );
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backends, [
    {
      name: 'web',
      mode: 'http',
      source: 'file',
      servers: [
        { name: '10.0.0.1_80', host: '10.0.0.1', port: 80 },
        { name: 'b', host: 'web-2', port: 8080, weight: 50, state: 'drain' },
      ],
      route: { domain: 'example.org', pathPrefix: '/api' },
    },
    { name: 'db', mode: 'tcp', source: 'file', servers: [], dns: [{ name: 'db.internal', port: 5432, slots: 10 }], route: { port: 5432 } },
  ]);
});

test('empty documents are empty; non-mappings are whole-file errors', () => {
  assert.deepEqual(fileLayout(null, opts).backends, []);
  assert.deepEqual(fileLayout({ services: {} }, opts).backends, []);
  assert.throws(() => fileLayout(['x'], opts), /not a mapping/);
  assert.throws(() => fileLayout({ services: ['x'] }, opts), /"services" is not a mapping/);
});

test('an invalid service is skipped with its location; others stay', () => {
  const bad: Record<string, unknown> = {
    typo: { sever: ['10.0.0.1:80'] },
    inject: { servers: ['10.0.0.1:80\n  server x 6.6.6.6:80'] },
    mode: { mode: 'udp' },
    weight: { servers: [{ address: '10.0.0.1:80', weight: 1000 }] },
    state: { servers: [{ address: '10.0.0.1:80', state: 'up' }] },
    dup: { servers: ['10.0.0.1:80', { address: '10.0.0.2:80', name: '10.0.0.1_80' }] },
    path: { route: { path: 'api' } },
    domain: { route: { domain: 'a b' } },
    port: { route: { port: 0 } },
    dns: { dns: { name: 'x;y', port: 80 } },
    'bad name': { servers: [] },
    notmap: 'x',
  };
  const r = fileLayout({ services: { ...bad, ok: { servers: ['10.0.0.9:80'] } } }, { source: 'file', locate: (p) => `/d.yaml:${p.length}` });
  assert.deepEqual(r.backends.map((b) => b.name), ['ok']);
  // A name that is not one visible word is shown quoted (it cannot forge a log line).
  assert.deepEqual(r.skipped.map((s) => s.key).sort(), Object.keys(bad).map((k) => `services.${k === 'bad name' ? '"bad name"' : k}`).sort());
  for (const s of r.skipped) assert.match(s.reason, /^\/d\.yaml:2 services\./);
});

test('flattenKeys gives confd-style keys', () => {
  assert.deepEqual(flattenKeys({ services: { web: { servers: ['a:1'], mode: 'http' } } }), {
    '/services/web/servers/0': 'a:1',
    '/services/web/mode': 'http',
  });
});
