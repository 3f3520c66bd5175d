/**
 * Seed 002 (Container Cloud HAProxy image) end to end: the real haproxy-pilot binary as PID 1 in
 * a network namespace, real HAProxy, configured with the seed's variables alone (KV_IP, KV_PORT,
 * OCCS_API_TOKEN, OCCS_BACKEND_KEY) plus a short KV_INTERVAL, STATS_PASSWORD and
 * PILOT_STALE_AFTER. PILOT_RUN_DIR is a temp dir only because these tests share the host's /run
 * with other tests running at the same time.
 *
 * The key/value endpoint is a protocol fixture (support/sources-consul-kv-fixture.ts, run in the
 * netns by support/seeds-kv-fixture-main.ts): neither Consul nor Container Cloud's endpoint can be
 * installed on this machine. The backends are real HTTP servers in the netns answering their name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, eventually, startPilot, type Netns, type PilotProcess } from './support/pilot-process.js';
import { startKvFixtureIn, startServersIn, type NetnsKvFixture } from './support/seeds-netns.js';
import { distinct, sample, sourceStatus } from './support/seeds-traffic.js';

const TOKEN = 'occs-e2e-token-3b9f7d21';
const PREFIX = 'apps/myapp/containers';
const STATS_PASSWORD = 'occspass-e2e';
const FRONTEND = 'http://127.0.0.1:5000/';

interface World {
  netns: Netns;
  kv: NetnsKvFixture;
  pilot: PilotProcess;
  dir: string;
}

async function world(t: { after(fn: () => Promise<void>): void }, env: Record<string, string>): Promise<World> {
  const netns = await createNetns();
  t.after(() => netns.remove());
  const dir = await mkdtemp(join(tmpdir(), 'pilot-seed002-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const kv = await startKvFixtureIn(netns, TOKEN);
  t.after(() => kv.proc.stop());
  const servers = await startServersIn(netns, [
    { kind: 'http', name: 'one', host: '127.0.0.1', port: 8001 },
    { kind: 'http', name: 'two', host: '127.0.0.1', port: 8002 },
  ]);
  t.after(() => servers.stop());
  const pilot = startPilot(
    {
      KV_IP: '127.0.0.1',
      KV_PORT: String(kv.port),
      OCCS_API_TOKEN: TOKEN,
      OCCS_BACKEND_KEY: PREFIX,
      STATS_PASSWORD,
      PILOT_STALE_AFTER: '3s',
      PILOT_RUN_DIR: dir,
      ...env,
    },
    { netns },
  );
  t.after(() => pilot.kill());
  await pilot.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
  return { netns, kv, pilot, dir };
}

test('seed 002 variables: keys become servers behind :5000, token sent and never shown, stats behind auth; a dead store keeps the last good config', async (t) => {
  const { kv, pilot, dir } = await world(t, { KV_INTERVAL: '300ms' });

  // Nothing under the prefix yet (404 = a successful, empty read): the frontend has no server.
  assert.deepEqual(distinct(await sample(pilot, FRONTEND, 2)), ['<503>']);

  await kv.put(`${PREFIX}/one`, '127.0.0.1:8001');
  await eventually('traffic reaches one', async () => distinct(await sample(pilot, FRONTEND, 4)).join() === 'one', 15_000);

  await kv.put(`${PREFIX}/two`, '127.0.0.1:8002');
  await eventually('both get traffic', async () => distinct(await sample(pilot, FRONTEND, 8)).join() === 'one,two', 15_000);

  await kv.delete(`${PREFIX}/one`);
  await eventually('one stops getting traffic', async () => distinct(await sample(pilot, FRONTEND, 8)).join() === 'two', 15_000);
  assert.deepEqual(distinct(await sample(pilot, FRONTEND, 8)), ['two'], 'and stays out');

  // The token: every request carried it (the fixture would have answered 401 otherwise), and it
  // appears nowhere in haproxy-pilot's or HAProxy's output.
  const seen = await kv.requests();
  assert.ok(seen.length >= 3);
  assert.ok(seen.every((r) => r.authorization === `Bearer ${TOKEN}` && r.path === `/v1/kv/${PREFIX}` && 'recurse' in r.query));
  assert.ok(!pilot.lines.some((l) => l.includes(TOKEN)), 'the token is never printed');
  for (const file of await readdir(dir, { recursive: true })) {
    const text = await readFile(join(dir, file)).catch(() => Buffer.alloc(0));
    assert.ok(!text.includes(TOKEN), `the token is not written to ${file}`);
  }

  // Stats on :1936 ask for basic auth; the given password opens them.
  const anonymous = await pilot.http('/haproxy?stats', 1936);
  assert.equal(anonymous.status, 401);
  const authed = await pilot.http('/haproxy?stats', 1936, ['-u', `admin:${STATS_PASSWORD}`]);
  assert.equal(authed.status, 200);
  assert.match(authed.body, /myapp/);
  assert.ok(!pilot.lines.some((l) => l.includes(STATS_PASSWORD)), 'the stats password is never printed');

  // The store dies: HAProxy keeps serving the last good config, /status says stale, /health stays
  // 200 until PILOT_STALE_AFTER (3s) has passed, then 503.
  assert.equal((await pilot.http('/health', 7778)).status, 200);
  const killedAt = Date.now();
  await kv.proc.stop('SIGKILL');
  const stale = await eventually('the kv source is reported stale', async () => {
    const s = await sourceStatus(pilot, 'kv');
    return s?.stale === true && s.ok === false ? s : undefined;
  });
  const healthSoonAfter = await pilot.http('/health', 7778);
  const elapsed = Date.now() - killedAt;
  assert.ok(elapsed < 2500, `precondition: checked ${elapsed} ms after the kill, before PILOT_STALE_AFTER`);
  assert.equal(healthSoonAfter.status, 200, 'a source failing for less than PILOT_STALE_AFTER does not make the pilot unhealthy');
  assert.match(stale.lastError ?? '', /ECONNREFUSED|failed/);
  assert.ok(!(stale.lastError ?? '').includes(TOKEN));
  assert.deepEqual(distinct(await sample(pilot, FRONTEND, 6)), ['two'], 'still serving the last good config');

  const unhealthy = await eventually('/health turns 503 after PILOT_STALE_AFTER', async () => {
    const h = await pilot.http('/health', 7778);
    return h.status === 503 ? h : undefined;
  });
  assert.ok(Date.now() - killedAt >= 3000, '503 only once the source has failed for PILOT_STALE_AFTER');
  assert.match(unhealthy.body, /kv/);
  assert.deepEqual(distinct(await sample(pilot, FRONTEND, 6)), ['two'], 'HAProxy keeps serving while the store is gone');
  assert.ok(!pilot.lines.some((l) => l.includes(TOKEN)));
});

test('KV_WATCH=1: a blocking query delivers a change without waiting for the poll interval', async (t) => {
  // A poll interval far longer than the test's deadline: only the blocking query can bring the change in time.
  const { kv, pilot } = await world(t, { KV_WATCH: '1', KV_INTERVAL: '120s' });
  await kv.put(`${PREFIX}/one`, '127.0.0.1:8001');
  await eventually('one gets traffic', async () => distinct(await sample(pilot, FRONTEND, 4)).join() === 'one', 30_000);
  await kv.put(`${PREFIX}/two`, '127.0.0.1:8002');
  await eventually('two gets traffic', async () => distinct(await sample(pilot, FRONTEND, 8)).join() === 'one,two', 30_000);
  const seen = await kv.requests();
  assert.ok(seen.some((r) => Number(r.query.index) > 0 && r.query.wait !== undefined), 'blocking queries (index=&wait=) were used');
  assert.ok(seen.every((r) => r.authorization === `Bearer ${TOKEN}`));
});
