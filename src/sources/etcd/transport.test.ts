import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { silentLogger } from '../../log.js';
import { kvLayout } from '../../state/kv-layout.js';
import { createEtcdSource, type EtcdClientLike } from './transport.js';
import type { Snapshot } from '../source.js';
import type { SourceClock } from '../common.js';

/** A client whose watch is an EventEmitter the test feeds. */
function fakeClient() {
  const watcher = Object.assign(new EventEmitter(), { request: { start_revision: '0' }, cancel: async () => undefined });
  const client: EtcdClientLike = {
    getAll: () => ({ prefix: () => ({ exec: async () => ({ header: { revision: '5' }, kvs: [] }) }) }),
    watch: () => ({ prefix: () => ({ startRevision: () => ({ watcher: () => watcher as never }) }) }),
    close: () => undefined,
  };
  let revision = 5;
  const put = (key: string, value: string) => {
    revision++;
    watcher.emit('data', { header: { revision: String(revision) }, events: [{ type: 'Put', kv: { key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(revision) } }] });
  };
  return { client, put };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('a change after a quiet spell is sent at once; changes right after it are coalesced by the debounce', async (t) => {
  let now = 0;
  const clock: SourceClock = { now: () => now, random: () => 0.5, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
  const { client, put } = fakeClient();
  const snapshots: Snapshot[] = [];
  // A debounce far longer than the test: only the immediate path can deliver within it.
  const source = createEtcdSource(
    { endpoints: ['127.0.0.1:2379'], prefix: '/apps/web', layout: 'containers' } as never,
    { log: silentLogger(), clock, debounceMs: 600_000, maxDebounceMs: 600_000, createClient: () => client, layout: (keys) => kvLayout(keys, { prefix: '/apps/web', source: 'etcd' }) },
  );
  source.start({ snapshot: (s) => void snapshots.push(s), error: () => undefined });
  t.after(() => source.stop());
  await until(() => snapshots.length === 1, 'the first read');

  now = 60_000_000; // long after the first read's snapshot
  put('/apps/web/a', '10.0.0.1:80');
  await until(() => snapshots.length === 2, 'the change, without waiting for the debounce');
  assert.deepEqual(snapshots[1]!.backends[0]!.servers.map((s) => s.name), ['a']);

  now += 10; // a burst: these wait for quiet
  put('/apps/web/b', '10.0.0.2:80');
  put('/apps/web/c', '10.0.0.3:80');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(snapshots.length, 2, 'the burst is held by the debounce');
});
