import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeSnapshots } from './build-candidate.js';
import type { Snapshot } from '../sources/source.js';
import type { DiscoveredBackend } from '../state/model.js';
import { silentLogger } from '../log.js';

const backend = (name: string, source: string, port?: number): DiscoveredBackend => ({
  name,
  mode: port ? 'tcp' : 'http',
  servers: [{ name: 's1', host: '10.0.0.1', port: 80 }],
  source,
  ...(port ? { route: { port } } : {}),
});
const snap = (source: string, backends: DiscoveredBackend[], keys: Record<string, string> = {}): Snapshot => ({ source, at: 0, keys, backends });
const taken = () => ({ names: new Set(['stats', 'fe_http', 'myservice']), ports: new Set([80, 443, 1936, 5000]) });

test('a discovered backend that would take a reserved name or a used port is skipped; the rest applies', () => {
  const merged = mergeSnapshots([snap('etcd', [backend('stats', 'etcd'), backend('myservice', 'etcd'), backend('galera', 'etcd', 1936), backend('web', 'etcd'), backend('db', 'etcd', 3306)])], taken(), silentLogger());
  assert.deepEqual(merged.backends.map((b) => b.name), ['web', 'db']);
});

test('the same name from two sources is renamed; two listens on one port keep the first', () => {
  const merged = mergeSnapshots([snap('kv', [backend('myapp', 'kv')]), snap('file', [backend('myapp', 'file'), backend('tcp-a', 'file', 3306)]), snap('etcd', [backend('tcp-b', 'etcd', 3306)])], taken(), silentLogger());
  assert.deepEqual(merged.backends.map((b) => `${b.source}:${b.name}`), ['etcd:tcp-b', 'file:myapp', 'kv:kv_myapp']);
});

test('raw values with control characters never reach templates', () => {
  const merged = mergeSnapshots([snap('kv', [], { '/apps/a/one': '10.0.0.1:80', '/apps/a/evil': '10.0.0.2:80\n    server x 6.6.6.6:80' })], taken(), silentLogger());
  assert.deepEqual(merged.keys, { '/apps/a/one': '10.0.0.1:80' });
});
