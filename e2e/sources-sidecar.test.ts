/**
 * The sidecar source (seed 000) against the Sidecar protocol fixture (support/sidecar-fixture.ts:
 * a fixture that follows Sidecar's wire format; Sidecar itself cannot be installed here). The
 * source's push routes are served over real HTTP by the pilot's own listener (control/listeners.ts). No HAProxy at this level: the snapshots are what the pipeline would get.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createSidecarSource, type SidecarSource, type SidecarSourceDeps } from '../src/sources/sidecar/source.js';
import type { SidecarSettings } from '../src/sources/sidecar/settings.js';
import type { Snapshot } from '../src/sources/source.js';
import { goTime, startSidecarFixture, type SidecarFixture } from './support/sidecar-fixture.js';
import { openListeners } from '../src/control/listeners.js';
import { silentLogger } from '../src/log.js';
import { capturedLogger, recordingSink, type RecordingSink } from './support/sources-sink.js';

interface Setup {
  sc: SidecarFixture;
  source: SidecarSource;
  listener: { url: string; close(): Promise<void> };
  sink: RecordingSink;
  lines: string[];
  pushUrl: string;
}

async function setup(
  t: TestContext,
  options: { settings?: (sc: SidecarFixture) => Partial<SidecarSettings>; deps?: Partial<SidecarSourceDeps>; before?: (sc: SidecarFixture) => void; listenerQuery?: string; register?: boolean } = {},
): Promise<Setup> {
  const sc = await startSidecarFixture({ retryUnitMs: 5 });
  t.after(() => sc.close());
  options.before?.(sc);
  const { log, lines } = capturedLogger();
  const settings: SidecarSettings = { stateUrl: `${sc.url}/api/state.json`, listen: { host: '127.0.0.1', port: 0 }, useHostnames: false, notes: [], ...options.settings?.(sc) };
  const source = createSidecarSource(settings, { log, retryBaseMs: 50, retryMaxMs: 200, watchRetryMs: 100, ...options.deps });
  const opened = await openListeners([{ host: '127.0.0.1', port: 0, routes: source.listener.routes, owner: 'source sidecar' }], silentLogger());
  const listener = { url: `http://127.0.0.1:${opened.addresses[0]!.port}`, close: opened.close };
  t.after(() => listener.close());
  const pushUrl = `${listener.url}/update${options.listenerQuery ?? ''}`;
  if (options.register !== false) sc.addListener(pushUrl);
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  return { sc, source, listener, sink, lines, pushUrl };
}

const ORDERS = (id: string, port: number, host = 'web-01') => ({ host, id, name: 'orders', ports: [{ Port: port, ServicePort: 10100, IP: '10.0.1.11' }] });

function servers(s: Snapshot, backend = 'orders-10100'): string[] {
  return (s.backends.find((b) => b.name === backend)?.servers ?? []).map((x) => `${x.name}=${x.host}:${x.port}${x.state === undefined ? '' : ` ${x.state}`}`);
}

async function post(url: string, body: string | Buffer, path = ''): Promise<{ status: number; json: unknown }> {
  const res = await request(`${url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const text = await res.body.text();
  return { status: res.statusCode, json: text === '' ? undefined : JSON.parse(text) };
}

async function get(url: string): Promise<{ status: number; json: unknown }> {
  const res = await request(url);
  return { status: res.statusCode, json: JSON.parse(await res.body.text()) };
}

const stateReads = (sc: SidecarFixture): number => sc.requests.filter((r) => r.startsWith('GET /api/state.json')).length;

test('bootstrap: a failing state URL is reported and retried; the state read gives the backends; GET /state serves it', async (t) => {
  const { sc, source, listener, sink, lines } = await setup(t, {
    before: (sc) => {
      sc.add(ORDERS('3a1f0c9d2b7e', 31871));
      sc.add({ host: 'web-02', id: 'b81e44a07c10', name: 'billing', proxyMode: 'tcp', ports: [{ Port: 32004, ServicePort: 10200, IP: '10.0.1.12' }, { Port: 32005, IP: '10.0.1.12' }] });
      sc.fault = '500';
    },
  });
  const err = await sink.waitError(() => true);
  assert.equal(err.message, `sidecar: GET ${sc.url}/api/state.json answered 500`);
  assert.deepEqual(await get(`${listener.url}/state`), { status: 500, json: { errors: ['No currently stored state'] } });
  assert.deepEqual(source.health(), { last_changed: null, last_service_changed: null });

  sc.fault = 'none';
  const first = await sink.waitSnapshot(() => true);
  assert.equal(first.source, 'sidecar');
  assert.deepEqual(first.backends, [
    { name: 'billing-10200', mode: 'tcp', servers: [{ name: 'web-02-b81e44a07c10', host: '10.0.1.12', port: 32004 }], route: { port: 10200 }, source: 'sidecar' },
    { name: 'orders-10100', mode: 'http', servers: [{ name: 'web-01-3a1f0c9d2b7e', host: '10.0.1.11', port: 31871 }], route: { port: 10100 }, source: 'sidecar' },
  ]);
  const held = await get(`${listener.url}/state`);
  assert.equal(held.status, 200);
  assert.deepEqual(held.json, JSON.parse(sc.stateJson()), 'GET /state is the state, encoded like state.json');
  assert.equal(source.health().last_changed, sc.state().LastChanged);
  assert.ok(lines.some((l) => l.includes('the push endpoint') && l.includes('is open')), 'without a token, the log says the endpoint is open');
});

test('a pushed new instance gives a snapshot without reading the state again', async (t) => {
  const { sc, source, sink, pushUrl } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)) });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const reads = stateReads(sc);
  const added = sc.add(ORDERS('a2', 31002, 'web-02'));
  const next = await sink.waitSnapshot((s) => servers(s).length === 2);
  assert.deepEqual(servers(next), ['web-01-a1=10.0.1.11:31001', 'web-02-a2=10.0.1.11:31002']);
  await sc.settle();
  assert.equal(stateReads(sc), reads, 'the push carried the state');
  const d = sc.deliveries.filter((x) => x.url === pushUrl);
  assert.deepEqual(d.map((x) => [x.attempt, x.status]), [[1, 200]]);
  assert.match(d[0]!.cookie, /^sidecar-session-host=sidecar-fixture-/);
  assert.deepEqual(source.health(), { last_changed: sc.state().LastChanged, last_service_changed: JSON.parse(JSON.stringify(added)) });

  sc.setStatus('a2', 4); // drained through Sidecar's API
  assert.deepEqual(servers(await sink.waitSnapshot((s) => servers(s).some((x) => x.endsWith(' drain')))), ['web-01-a1=10.0.1.11:31001', 'web-02-a2=10.0.1.11:31002 drain']);
  sc.remove('a1');
  assert.deepEqual(servers(await sink.waitSnapshot((s) => servers(s).some((x) => x.endsWith(' maint')))), ['web-01-a1=10.0.1.11:31001 maint', 'web-02-a2=10.0.1.11:31002 drain']);
  assert.equal(sink.errors.length, 0);
});

test('out-of-order and duplicate pushes are ignored; a later change still comes through', async (t) => {
  const { sc, sink, listener, lines } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)) });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const old = sc.eventBody('a1');
  sc.add(ORDERS('a2', 31002, 'web-02'));
  await sink.waitSnapshot((s) => servers(s).length === 2);
  await sc.settle();
  const current = sc.eventBody('a2');
  const mark = sink.snapshots.length;

  assert.equal((await post(listener.url, old, '/update')).status, 200, 'answered like haproxy-api, then ignored');
  assert.equal((await post(listener.url, current, '/sidecar/update')).status, 200);
  assert.equal((await post(listener.url, current, '/update')).status, 200);
  sc.add(ORDERS('a3', 31003, 'web-03'));
  await sink.waitSnapshot((s) => servers(s).length === 3, 10_000, mark);
  assert.deepEqual(
    sink.snapshots.slice(mark).map((s) => servers(s).length),
    [3],
    'nothing between: the older state was not applied and the duplicate gave no snapshot',
  );
  assert.ok(lines.some((l) => l.includes('push ignored') && l.includes('"outcome":"older"') && l.includes('"level":20')), 'logged at debug');
  assert.ok(lines.some((l) => l.includes('push ignored') && l.includes('"outcome":"duplicate"')));
});

test("Sidecar's empty-bodied retry is answered 400 and recovered by re-reading the state", async (t) => {
  const { sc, sink, pushUrl } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)) });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const reads = stateReads(sc);
  const mark = sc.deliveries.length;
  sc.failNextAttempts(pushUrl, 1); // the first attempt (the only one with a body) is lost
  sc.add(ORDERS('a2', 31002, 'web-02'));
  const next = await sink.waitSnapshot((s) => servers(s).length === 2);
  assert.deepEqual(servers(next), ['web-01-a1=10.0.1.11:31001', 'web-02-a2=10.0.1.11:31002']);
  await sc.settle();
  const d = sc.deliveries.slice(mark);
  assert.equal(d[0]!.attempt, 1);
  assert.ok(d[0]!.bodyBytes > 0 && d[0]!.error !== undefined, 'first attempt carried the body and was lost');
  assert.deepEqual(
    d.slice(1).map((x) => [x.attempt, x.bodyBytes, x.status]),
    [2, 3, 4, 5, 6].map((n) => [n, 0, 400]),
    'every retry is empty, as Sidecar sends it, and answered 400',
  );
  assert.ok(stateReads(sc) > reads, 'the state was re-read');
});

test('a state too big for a push (413) reaches us through the re-read its empty retries trigger', async (t) => {
  const { sc, sink, pushUrl } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)), deps: { maxPushBytes: 256 * 1024 } });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const mark = sc.deliveries.length;
  sc.add({ ...ORDERS('big', 31002, 'web-02'), image: 'x'.repeat(300 * 1024) });
  await sink.waitSnapshot((s) => servers(s).length === 2);
  await sc.settle();
  assert.deepEqual(sc.deliveries.slice(mark).map((x) => [x.url, x.status]), [413, 400, 400, 400, 400, 400].map((st) => [pushUrl, st]));
});

test('follower mode: follows adds and removals over /api/watch and survives the Sidecar restarting', async (t) => {
  const { sc, sink, lines } = await setup(t, {
    register: false,
    before: (sc) => sc.add(ORDERS('a1', 31001)),
    settings: (sc) => ({ follow: { host: '127.0.0.1', port: sc.port } }),
  });
  assert.deepEqual(servers(await sink.waitSnapshot(() => true)), ['web-01-a1=10.0.1.11:31001'], 'the first watch document brings the state');
  assert.ok(sc.requests.includes('GET /api/watch 200'));
  sc.add(ORDERS('a2', 31002, 'web-02'));
  await sink.waitSnapshot((s) => servers(s).length === 2);
  sc.remove('a1');
  assert.deepEqual(servers(await sink.waitSnapshot((s) => servers(s).some((x) => x.endsWith(' maint')))), ['web-01-a1=10.0.1.11:31001 maint', 'web-02-a2=10.0.1.11:31002']);

  await sc.stop();
  const err = await sink.waitError(() => true);
  assert.match(err.message, new RegExp(`^sidecar: GET http://127\\.0\\.0\\.1:${sc.port}/api/watch `));
  // Changed while we could not see it; the restarted Sidecar comes back with it.
  sc.add(ORDERS('a3', 31003, 'web-03'));
  const mark = sink.snapshots.length;
  await sc.start();
  const back = await sink.waitSnapshot((s) => servers(s).length === 3, 10_000, mark);
  assert.deepEqual(servers(back), ['web-01-a1=10.0.1.11:31001 maint', 'web-02-a2=10.0.1.11:31002', 'web-03-a3=10.0.1.11:31003']);
  assert.ok(sc.requests.filter((r) => r === 'GET /api/watch 200').length >= 2, 'reconnected');
  assert.ok(lines.some((l) => l.includes('the watch stream failed')));
});

test('follower mode: a watch quiet for the idle time is re-opened', async (t) => {
  const { sc, sink } = await setup(t, {
    register: false,
    before: (sc) => sc.add(ORDERS('a1', 31001)),
    settings: (sc) => ({ follow: { host: '127.0.0.1', port: sc.port } }),
    deps: { watchIdleMs: 200 },
  });
  await sink.waitSnapshot(() => true);
  const deadline = Date.now() + 10_000;
  while (sc.requests.filter((r) => r === 'GET /api/watch 200').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(sc.requests.filter((r) => r === 'GET /api/watch 200').length >= 3, 'reconnected after each quiet period');
  assert.equal(sink.errors.length, 0, 'an idle reconnect is not an error');
});

test('hostile pushes: bad JSON, wrong types, 10 MB bodies, future dates are refused; hostile names are skipped or made safe', async (t) => {
  const { sc, sink, listener, lines, source } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)) });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const good = source.health().last_changed;
  const reads = stateReads(sc);

  const bad = await post(listener.url, '{"State": {"Servers": ', '/update');
  assert.equal(bad.status, 400);
  assert.match((bad.json as { errors: string[] }).errors[0]!, /^the body is not JSON .*; the state is re-read from Sidecar$/);
  const types = await post(listener.url, JSON.stringify({ State: { Servers: [], LastChanged: goTime(BigInt(Date.now()) * 1_000_000n) } }), '/update');
  assert.deepEqual(types, { status: 400, json: { errors: ['State.Servers is not an object (an array); the state is re-read from Sidecar'] } });
  const noTime = await post(listener.url, JSON.stringify({ State: { Servers: {}, LastChanged: 'now' } }), '/update');
  assert.equal(noTime.status, 400);
  const huge = await post(listener.url, Buffer.alloc(10 * 1024 * 1024, 0x20), '/update');
  assert.equal(huge.status, 413);
  const future = JSON.parse(sc.eventBody('a1'));
  future.State.LastChanged = '2999-01-01T00:00:00Z';
  future.State.Servers = {};
  assert.equal((await post(listener.url, JSON.stringify(future), '/update')).status, 400);
  assert.equal(source.health().last_changed, good, 'the last good state is kept');
  assert.ok(stateReads(sc) > reads, 'unusable pushes trigger a re-read');

  // Hostile records served and pushed by Sidecar itself: good ones served, bad ones skipped by key, nothing unsafe.
  sc.add({ host: 'web-01', id: 'evilname', name: 'web\n  server evil 6.6.6.6:80\nlisten x', ports: [{ Port: 31100, ServicePort: 10300, IP: '10.0.1.11' }] });
  sc.add({ host: 'web-01\n  server evil 6.6.6.6:80', id: 'evilhost', name: 'orders', ports: [{ Port: 31101, ServicePort: 10100, IP: '' }] });
  sc.add({ host: 'web-01', id: 'evilip', name: 'orders', ports: [{ Port: 31102, ServicePort: 10100, IP: '10.0.0.1 backup' }] });
  sc.add({ host: 'web-01', id: 'bigport', name: 'orders', ports: [{ Port: 99999, ServicePort: 10100, IP: '10.0.1.11' }] });
  sc.add({ host: 'web-01', id: 'bigservice', name: 'other', ports: [{ Port: 31103, ServicePort: 70000, IP: '10.0.1.11' }] });
  sc.inject('web-01', 'wrongtype', { ...sc.state().Servers['web-01']!.Services.a1, ID: 'wrongtype', Status: 'Alive' });
  sc.inject('web-02', 'notanobject', 'x'.repeat(100));
  sc.add({ host: 'web-01', id: 'last', name: 'orders', ports: [{ Port: 31104, ServicePort: 10100, IP: '10.0.1.11' }] });
  const snap = await sink.waitSnapshot((s) => servers(s).length === 2);
  assert.deepEqual(
    snap.backends.map((b) => [b.name, servers(snap, b.name)]),
    [
      ['orders-10100', ['web-01-a1=10.0.1.11:31001', 'web-01-last=10.0.1.11:31104']],
      ['web---server-evil-6-6-6-6-80-listen-x-10300', ['web-01-evilname=10.0.1.11:31100']],
    ],
  );
  for (const s of sink.snapshots) for (const b of s.backends) for (const text of [b.name, ...b.servers.flatMap((x) => [x.name, x.host])]) assert.match(text, /^[A-Za-z0-9_.:-]+$/);
  const keys = ['Servers/"web-01\\n  server evil 6.6.6.6:80"/Services/evilhost', 'Servers/web-01/Services/evilip', 'Servers/web-01/Services/bigport', 'Servers/web-01/Services/bigservice', 'Servers/web-01/Services/wrongtype', 'Servers/web-02/Services/notanobject'];
  await sc.settle();
  const skipLines = lines.filter((l) => l.includes('skipped'));
  for (const key of keys) assert.equal(skipLines.filter((l) => (JSON.parse(l) as { key: string }).key === key).length, 1, `${key} is logged once, by key`);
  assert.equal(skipLines.length, keys.length);
});

test('token guard: pushes and GET /state need ?token=; Sidecar configured with it gets through', async (t) => {
  const token = 'push-token-9d3e1f';
  const { sc, sink, listener, lines, pushUrl } = await setup(t, {
    before: (sc) => sc.add(ORDERS('a1', 31001)),
    settings: () => ({ pushToken: token }),
    listenerQuery: `?token=${token}`,
  });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  const body = sc.eventBody('a1');
  assert.equal((await post(listener.url, body, '/update')).status, 401);
  assert.equal((await post(listener.url, body, '/update?token=wrong')).status, 401);
  assert.equal((await post(listener.url, body, `/update?token=${token}x`)).status, 401);
  assert.equal((await get(`${listener.url}/state`)).status, 401);
  assert.equal((await get(`${listener.url}/state?token=${token}`)).status, 200);
  sc.add(ORDERS('a2', 31002, 'web-02'));
  await sink.waitSnapshot((s) => servers(s).length === 2);
  assert.equal(sc.deliveries.filter((d) => d.url === pushUrl).at(-1)?.status, 200);
  assert.ok(!lines.some((l) => l.includes('is open')));
  assert.ok(!lines.some((l) => l.includes(token)), 'the token never reaches the log');
});

test("Sidecar's 20-event buffer drops events when full; the events still sent carry the latest state", async (t) => {
  const { sc, sink, pushUrl } = await setup(t, { before: (sc) => sc.add(ORDERS('a0', 31000)) });
  await sink.waitSnapshot((s) => servers(s).length === 1);
  sc.hold();
  for (let i = 1; i <= 25; i++) sc.add(ORDERS(`a${i}`, 31000 + i, `web-${i}`));
  assert.equal(sc.dropped.length, 5);
  sc.release();
  const all = await sink.waitSnapshot((s) => servers(s).length === 26);
  assert.equal(servers(all).length, 26);
  await sc.settle();
  assert.equal(sc.deliveries.filter((d) => d.url === pushUrl && d.attempt === 1).length, 20, 'the 20 buffered events were sent, the 5 others dropped');
});

test('the routes answer 404/405 for other paths and methods, and a handler never needs HAProxy', async (t) => {
  const { listener, sink } = await setup(t, { before: (sc) => sc.add(ORDERS('a1', 31001)), register: false });
  await sink.waitSnapshot(() => true);
  assert.equal((await get(`${listener.url}/nope`)).status, 404);
  assert.equal((await get(`${listener.url}/update`)).status, 405);
  assert.equal((await post(listener.url, '{}', '/state')).status, 405);
  assert.equal((await post(listener.url, '', '/api/update')).status, 400, "/api/update (Sidecar's README URL) is served too");
});
