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

// Regression cases found by the fuzz suite (e2e/fuzz-file.test.ts, docs/fuzzing.md). The first
// three were accepted and refused by `haproxy -c` (blocking every other change); the others were
// a valid entry dropped, or a reason that was not one line. [service, expected reason or null when kept]
const FUZZ_CASES: [string, unknown, RegExp | null][] = [
  ['a tcp service without a route', { mode: 'tcp' }, /route\.port: missing: a tcp service needs a listen port/],
  ['a tcp service with a domain', { mode: 'tcp', route: { domain: 'example.org', port: 9000 } }, /route: domain and path route HTTP requests/],
  ['a tcp service with a path', { mode: 'tcp', route: { path: '/api' } }, /route: domain and path route HTTP requests/],
  ['a server named like a DNS slot', { servers: [{ address: 'A:1', name: 'srv1' }], dns: { name: 'a.aa', port: 1 } }, /server name "srv1" is the name of one of the DNS slots \(srv1\.\.srv10\)/],
  ['the last DNS slot', { servers: [{ address: 'A:1', name: 'srv4' }], dns: { name: 'a.aa', port: 1, slots: 4 } }, /"srv4" is the name of one of the DNS slots/],
  ['a mode that is a prototype-less object', { mode: Object.create(null) as unknown }, /mode: "\{\}" is not http or tcp/],
  ['a tcp service with a listen port', { mode: 'tcp', route: { port: 9000 }, servers: ['10.0.0.1:80'] }, null],
  ['a name past the DNS slots', { servers: [{ address: 'A:1', name: 'srv5' }, { address: 'A:2', name: 'srv01' }], dns: { name: 'a.aa', port: 1, slots: 4 } }, null],
  ["a server name with ':' (HAProxy allows it)", { mode: 'http', servers: [{ address: 'a.aa:1', name: 'a:' }], route: { port: 10000 } }, null],
];

test('what HAProxy refuses is skipped naming the service; valid entries stay (fuzz regressions)', () => {
  for (const [what, svc, reason] of FUZZ_CASES) {
    const r = fileLayout({ services: { s: svc, ok: { servers: ['10.0.0.9:80'] } } }, { source: 'file' });
    if (reason === null) {
      assert.deepEqual(r.skipped, [], what);
      assert.deepEqual(r.backends.map((b) => b.name), ['s', 'ok'], what);
    } else {
      assert.deepEqual(r.backends.map((b) => b.name), ['ok'], what);
      assert.equal(r.skipped.length, 1, what);
      assert.equal(r.skipped[0]!.key, 'services.s', what);
      assert.match(r.skipped[0]!.reason, reason, `${what}: ${r.skipped[0]!.reason}`);
    }
  }
});

test('names that are not one visible word are shown quoted: a skipped reason is one line (fuzz regressions)', () => {
  const r = fileLayout({ services: { '\n    server evil 6.6.6.6:1a': {} }, '!"': '' }, { source: 'file' });
  assert.deepEqual(r.skipped.map((s) => s.key).sort(), ['!"', 'services."\\n    server evil 6.6.6.6:1a"']);
  for (const s of r.skipped) {
    assert.doesNotMatch(s.reason, /\n/);
    assert.ok(s.reason.includes(s.key), s.reason);
  }
});
