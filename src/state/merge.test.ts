import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeSnapshots } from './merge.js';
import { reservedBy } from './reserved.js';
import type { Snapshot } from '../sources/source.js';
import type { DiscoveredBackend } from './model.js';
import type { ServiceSpec, StatsSettings } from '../config/types.js';
import { isPilotError } from '../errors.js';

const backend = (name: string, source: string, port?: number): DiscoveredBackend => ({
  name,
  mode: port ? 'tcp' : 'http',
  servers: [{ name: 's1', host: '10.0.0.1', port: 80 }],
  source,
  ...(port ? { route: { port } } : {}),
});
const snap = (source: string, backends: DiscoveredBackend[], keys: Record<string, string> = {}, files?: Record<string, string>): Snapshot => ({ source, at: 0, keys, backends, ...(files ? { files } : {}) });
const stats = (port = 1936): StatsSettings => ({ port, uri: '/', auth: 'none', user: 'admin', passwordFile: '/x', prometheus: false, prometheusAuth: 'none' });
const service = (name: string, port: number, address = ''): ServiceSpec => ({
  name, mode: 'http', bind: { address, port }, servers: [], ssl: false, sslVerify: true, check: false, balance: 'roundrobin', origin: `SERVICE_${name.toUpperCase()}_BIND`,
});
const reserved = () => reservedBy({ stats: stats(), services: [service('myservice', 8081)] }, undefined);

test('a discovered backend that would take a reserved name or a used port is excluded and reported; the rest applies', () => {
  const merged = mergeSnapshots([snap('etcd', [backend('stats', 'etcd'), backend('myservice', 'etcd'), backend('galera', 'etcd', 1936), backend('web', 'etcd'), backend('db', 'etcd', 3306), backend('http', 'etcd', 80)])], reserved());
  assert.deepEqual(merged.backends.map((b) => b.name), ['web', 'db']);
  assert.deepEqual(merged.excluded.map((e) => `${e.entry}: ${e.reason}`), [
    'stats: the name is taken by the stats page',
    'myservice: the name is taken by service myservice',
    'galera: port 1936 is already used by the stats page (STATS_PORT)',
    'http: port 80 is already used by the HTTP routing frontend (seed 001)',
  ]);
});

test('the same name from two sources is renamed; two listens on one port keep the first', () => {
  const merged = mergeSnapshots([snap('kv', [backend('myapp', 'kv')]), snap('file', [backend('myapp', 'file'), backend('tcp-a', 'file', 3306)]), snap('etcd', [backend('tcp-b', 'etcd', 3306)])], reserved());
  assert.deepEqual(merged.backends.map((b) => `${b.source}:${b.name}`), ['etcd:tcp-b', 'file:myapp', 'kv:kv_myapp']);
  assert.deepEqual(merged.excluded.map((e) => `${e.source}/${e.entry}: ${e.reason}`), ['file/tcp-a: port 3306 is already used by backend tcp-b (source etcd)']);
});

test('listens on one port but different addresses both apply', () => {
  const on = (name: string, bindAddress: string): DiscoveredBackend => ({ ...backend(name, 'sidecar', 9000), route: { port: 9000, bindAddress } });
  const merged = mergeSnapshots([snap('sidecar', [on('a', '10.0.0.1'), on('b', '10.0.0.2')])], reserved());
  assert.deepEqual(merged.backends.map((b) => b.name), ['a', 'b']);
});

test('raw values with control characters never reach templates; files land under certs/', () => {
  const merged = mergeSnapshots([snap('kv', [], { '/apps/a/one': '10.0.0.1:80', '/apps/a/evil': '10.0.0.2:80\n    server x 6.6.6.6:80' }, { 'site.pem': 'PEM' })], reserved());
  assert.deepEqual(merged.keys, { '/apps/a/one': '10.0.0.1:80' });
  assert.deepEqual(merged.files, { 'certs/site.pem': 'PEM' });
});

test('reservedBy: two of the operator\'s own settings on one port are refused, naming both', () => {
  const table: [string, () => unknown, RegExp | undefined][] = [
    ['service on the stats port', () => reservedBy({ stats: stats(), services: [service('web', 1936)] }, undefined), /port 1936 is used twice: by the stats page \(STATS_PORT\) and by service web \(SERVICE_WEB_BIND\)/],
    ['two services on one port', () => reservedBy({ stats: stats(0), services: [service('a', 8080), service('b', 8080, '127.0.0.1')] }, undefined), /port 8080 is used twice: by service a .* and by service b/],
    ['a service on the demo port', () => reservedBy({ stats: stats(), services: [service('web', 8080)] }, { port: 8080, backendPort: 8081 }), /by service web .* and by the demo frontend/],
    ['a service on the control port', () => reservedBy({ stats: stats(), services: [service('web', 7778)] }, undefined, [{ address: '127.0.0.1', port: 7778, owner: 'the control server (PILOT_CONTROL_ADDR)' }]), /and by the control server/],
    [
      'listeners sharing one server (control and Sidecar pushes on 7778)',
      () => reservedBy({ stats: stats(), services: [] }, undefined, [{ address: '0.0.0.0', port: 7778, owner: 'PILOT_CONTROL_ADDR' }, { address: '0.0.0.0', port: 7778, owner: 'source sidecar' }]),
      undefined,
    ],
    [
      'a service on the port listeners share',
      () => reservedBy({ stats: stats(), services: [service('web', 7778)] }, undefined, [{ address: '0.0.0.0', port: 7778, owner: 'PILOT_CONTROL_ADDR' }, { address: '0.0.0.0', port: 7778, owner: 'source sidecar' }]),
      /port 7778 is used twice: by service web .* and by PILOT_CONTROL_ADDR/,
    ],
    ['two services on one port, different addresses', () => reservedBy({ stats: stats(0), services: [service('a', 8080, '127.0.0.1'), service('b', 8080, '127.0.0.2')] }, undefined), undefined],
    ['a service may use :80 (no discovered route needs it)', () => reservedBy({ stats: stats(), services: [service('web', 80)] }, undefined), undefined],
  ];
  for (const [name, fn, want] of table) {
    if (want === undefined) assert.doesNotThrow(fn, name);
    else assert.throws(fn, (err: unknown) => isPilotError(err, 'E_CONFIG') && want.test(err.message), name);
  }
});
