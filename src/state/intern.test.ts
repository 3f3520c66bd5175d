import { test } from 'node:test';
import assert from 'node:assert/strict';
import { internBackends, sameBackend } from './intern.js';
import type { DiscoveredBackend } from './model.js';

const be = (name: string, port = 80, extra: Partial<DiscoveredBackend> = {}): DiscoveredBackend => ({ name, mode: 'http', source: 'kv', servers: [{ name: 's1', host: '10.0.0.1', port }], ...extra });

test('an unchanged backend keeps its earlier object; a changed one is the new object', () => {
  const previous = [be('a'), be('b'), be('c')];
  const next = internBackends([be('a'), be('b', 81), be('c')], previous);
  assert.equal(next[0], previous[0]);
  assert.notEqual(next[1], previous[1]);
  assert.equal(next[2], previous[2]);
});

test('a snapshot equal to the previous one is the previous array itself', () => {
  const previous = [be('a'), be('b')];
  assert.equal(internBackends([be('a'), be('b')], previous), previous);
  assert.notEqual(internBackends([be('b'), be('a')], previous), previous, 'order counts');
});

test('sameBackend looks at every field that reaches the config', () => {
  const base = be('a');
  const variants: Partial<DiscoveredBackend>[] = [
    { mode: 'tcp' }, { route: { port: 1 } }, { route: { bindAddress: '10.0.0.1', port: 1 } }, { dns: [{ name: 'x', port: 1, slots: 2 }] },
    { options: ['balance leastconn'] }, { serverOptions: ['check'] }, { servers: [{ name: 's1', host: '10.0.0.1', port: 80, weight: 2 }] },
    { servers: [{ name: 's1', host: '10.0.0.1', port: 80, state: 'drain' }] }, { source: 'etcd' },
  ];
  for (const v of variants) assert.equal(sameBackend(base, { ...base, ...v }), false, JSON.stringify(v));
  assert.equal(sameBackend(base, be('a')), true);
});
