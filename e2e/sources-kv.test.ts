/**
 * The Consul-KV source (seed 002) against a protocol fixture: neither Consul nor Container
 * Cloud's key/value endpoint can be installed here (see support/sources-consul-kv-fixture.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKvSource } from '../src/sources/kv/transport.js';
import type { KvSourceSettings } from '../src/sources/kv/kind.js';
import { startConsulKvFixture } from './support/sources-consul-kv-fixture.js';
import { capturedLogger, recordingSink, serverList } from './support/sources-sink.js';

const TOKEN = 'occs-token-5f1e9c2a';
const PREFIX = 'apps/myapp/containers';

function settings(url: string, over: Partial<KvSourceSettings> = {}): KvSourceSettings {
  return { url, token: TOKEN, prefix: PREFIX, intervalMs: 200, watch: false, timeoutMs: 2000, layout: 'containers', ...over };
}

test('polling: snapshot of the prefix with the token sent; changes and deletions follow', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  kv.put('apps/myapp/containers/two', '10.9.1.2:32002');
  kv.put('apps/other/containers/x', '10.9.9.9:1');
  const { log, lines } = capturedLogger();
  const source = createKvSource(settings(kv.url), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());

  const first = await sink.waitSnapshot(() => true);
  assert.equal(first.source, 'kv');
  assert.deepEqual(first.keys, { '/apps/myapp/containers/one': '10.9.1.1:32001', '/apps/myapp/containers/two': '10.9.1.2:32002' });
  assert.deepEqual(first.backends, [
    { name: 'myapp', mode: 'http', source: 'kv', servers: [{ name: 'one', host: '10.9.1.1', port: 32001 }, { name: 'two', host: '10.9.1.2', port: 32002 }] },
  ]);
  assert.equal(kv.requests[0]!.path, '/v1/kv/apps/myapp/containers');
  assert.ok('recurse' in kv.requests[0]!.query);
  assert.ok(kv.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));

  kv.put('apps/myapp/containers/three', '10.9.1.3:32003');
  kv.put('apps/myapp/containers/evil', '10.9.1.4:1\n  server x 6.6.6.6:80');
  const third = await sink.waitSnapshot((s) => serverList(s, 'myapp').length === 3);
  assert.deepEqual(serverList(third, 'myapp'), ['one=10.9.1.1:32001', 'three=10.9.1.3:32003', 'two=10.9.1.2:32002']);
  assert.ok(lines.some((l) => l.includes('skipped') && l.includes('/apps/myapp/containers/evil')), 'the bad key is logged by name');

  for (const k of ['one', 'two', 'three', 'evil']) kv.delete(`apps/myapp/containers/${k}`);
  // 404: a successful read that says "empty" empties the backend.
  const empty = await sink.waitSnapshot((s) => Object.keys(s.keys).length === 0);
  assert.deepEqual(empty.backends, [{ name: 'myapp', mode: 'http', source: 'kv', servers: [] }]);
  assert.equal(sink.errors.length, 0);
  assert.ok(!lines.some((l) => l.includes(TOKEN)), 'the token never reaches the log');
});

test('a wrong token: 401 is an error naming the URL, no snapshot, token not shown', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  const wrong = 'wrong-token-77aa';
  const { log, lines } = capturedLogger();
  const source = createKvSource(settings(kv.url, { token: wrong }), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitError(() => sink.errors.length >= 2);
  const err = sink.errors[0] as Error & { code?: string };
  assert.equal(err.code, 'E_SOURCE');
  assert.equal(err.message, `kv: GET ${kv.url}/v1/kv/apps/myapp/containers?recurse answered 401`);
  assert.equal(sink.snapshots.length, 0);
  assert.equal(kv.requests[0]!.authorization, `Bearer ${wrong}`);
  for (const e of sink.errors) assert.ok(!JSON.stringify({ m: e.message, c: String(e.cause) }).includes(wrong));
  assert.ok(!lines.some((l) => l.includes(wrong)));
});

test('unreachable endpoint, 500, garbage, wrong shape and hangs are errors; the last snapshot stands until recovery', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  const source = createKvSource(settings(kv.url, { timeoutMs: 300 }), { log: capturedLogger().log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  const cases = [
    ['500', /answered 500$/],
    ['garbage', /answered 200 with a body that is not JSON/],
    ['shape', /answered 200 with an unexpected shape: not a JSON array/],
    ['hang', /timed out/],
  ] as const;
  for (const [fault, expected] of cases) {
    const snaps = sink.snapshots.length;
    const errs = sink.errors.length;
    kv.fault = fault;
    const err = await sink.waitError((e) => expected.test(e.message), 10_000, errs);
    assert.match(err.message, /^kv: GET http:\/\/127\.0\.0\.1:\d+\/v1\/kv\/apps\/myapp\/containers\?recurse /);
    assert.equal(sink.snapshots.length, snaps, `${fault}: no snapshot while failing`);
    kv.fault = 'none';
    // Recovery re-announces the (unchanged) data so the loop can clear "stale".
    const back = await sink.waitSnapshot(() => true, 10_000, snaps);
    assert.deepEqual(serverList(back, 'myapp'), ['one=10.9.1.1:32001']);
  }
  await kv.close();
  const errs = sink.errors.length;
  const down = await sink.waitError(() => true, 10_000, errs);
  assert.match(down.message, /^kv: GET .* failed: .*ECONNREFUSED/);
});

test('an answer that drips one byte every 500 ms times out after KV_TIMEOUT: the whole request is bounded', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  kv.fault = 'drip';
  const source = createKvSource(settings(kv.url, { timeoutMs: 1000 }), { log: capturedLogger().log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  // The body is about 150 bytes: dripped, it would take over a minute.
  const err = await sink.waitError(() => true, 6000);
  assert.match(err.message, /^kv: GET .* timed out after 1000 ms/);
  assert.equal(sink.snapshots.length, 0);
  kv.fault = 'none';
  await sink.waitSnapshot(() => true, 10_000);
});

test('a blocking query that drips is bounded by its wait plus KV_TIMEOUT', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  const source = createKvSource(settings(kv.url, { watch: true, intervalMs: 60_000, timeoutMs: 1000 }), { log: capturedLogger().log, waitSeconds: 1 });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  await waitUntil(() => kv.requests.some((r) => r.query.index !== undefined));
  kv.fault = 'drip';
  kv.put('apps/myapp/containers/two', '10.9.1.2:32002');
  // wait 1 s + Consul's jitter (1/16) + KV_TIMEOUT 1 s.
  const err = await sink.waitError(() => true, 8000);
  assert.match(err.message, /index=\d+&wait=1s timed out after 2063 ms/);
});

test('the longest KV_TIMEOUT plus a blocking wait is capped at what a timer holds, not turned into 1 ms', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  // KV_TIMEOUT just under 2^31-1 ms: with the wait added, an unclamped timer would fire at once.
  const source = createKvSource(settings(kv.url, { watch: true, intervalMs: 60_000, timeoutMs: 2 ** 31 - 1000 }), { log: capturedLogger().log, waitSeconds: 30 });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  await waitUntil(() => kv.requests.some((r) => r.query.index !== undefined));
  await new Promise((r) => setTimeout(r, 300));
  kv.put('apps/myapp/containers/two', '10.9.1.2:32002');
  await sink.waitSnapshot((x) => serverList(x, 'myapp').length === 2, 10_000);
  assert.deepEqual(sink.errors.map((e) => e.message), []);
});

test('blocking queries deliver a change long before the next poll would', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  kv.put('apps/myapp/containers/one', '10.9.1.1:32001');
  // One poll a minute: only a blocking query can bring the change within the 10 s deadline below.
  const source = createKvSource(settings(kv.url, { watch: true, intervalMs: 60_000 }), { log: capturedLogger().log, waitSeconds: 30 });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  // Wait for the blocking query to be held, then change the data.
  await waitUntil(() => kv.requests.some((r) => r.query.index !== undefined));
  const held = kv.requests.find((r) => r.query.index !== undefined)!;
  assert.equal(held.query.wait, '30s');
  assert.ok(Number(held.query.index) > 0);
  kv.put('apps/myapp/containers/two', '10.9.1.2:32002');
  const s = await sink.waitSnapshot((x) => serverList(x, 'myapp').length === 2, 10_000);
  assert.deepEqual(serverList(s, 'myapp'), ['one=10.9.1.1:32001', 'two=10.9.1.2:32002']);
  kv.delete('apps/myapp/containers/one');
  await sink.waitSnapshot((x) => serverList(x, 'myapp').length === 1 && serverList(x, 'myapp')[0]!.startsWith('two='), 10_000);
});

test('blocking queries recover when the index goes backwards (store restored)', async (t) => {
  const kv = await startConsulKvFixture({ token: TOKEN });
  t.after(() => kv.close());
  for (let i = 0; i < 20; i++) kv.put('apps/myapp/containers/one', `10.9.1.1:${32000 + i}`);
  const source = createKvSource(settings(kv.url, { watch: true, intervalMs: 60_000 }), { log: capturedLogger().log, waitSeconds: 30 });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  await waitUntil(() => kv.requests.some((r) => Number(r.query.index) >= 21));
  const before = kv.requests.length;
  kv.resetIndex(1); // the held query answers at once with index 1
  // Consul's rule: reset to 0 (a fresh read), then block on the new index.
  await waitUntil(() => kv.requests.slice(before).some((r) => r.query.index === undefined));
  await waitUntil(() => kv.requests.slice(before).some((r) => Number(r.query.index) >= 1 && Number(r.query.index) < 21));
  // A source that kept blocking on index 21 would only see this after its 30 s wait.
  kv.put('apps/myapp/containers/two', '10.9.1.2:32002');
  const s = await sink.waitSnapshot((x) => serverList(x, 'myapp').length === 2, 10_000);
  assert.deepEqual(serverList(s, 'myapp'), ['one=10.9.1.1:32019', 'two=10.9.1.2:32002']);
});

async function waitUntil(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}
