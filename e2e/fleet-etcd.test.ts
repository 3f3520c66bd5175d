/**
 * A fleet survives its store: three haproxy-pilot instances, each PID 1 of its own PID, mount and
 * network namespaces, follow one real etcd cluster of three members (Debian's etcd 3.4) that
 * they reach over veth links to a bridge (e2e/support/fleet.ts), with real HAProxy in each.
 * Backends use seed 002's layout (`ETCD_LAYOUT=containers`: every key under the prefix is a
 * `host:port` server of one backend, served on :5000).
 *
 *   - Under wrk load against every pilot, the etcd leader is killed (SIGKILL by pid). Every pilot
 *     keeps serving (0 failed requests), follows a surviving member, and applies the next change
 *     (a key put after the kill). The time each took to serve it is printed, not asserted
 *     (bench/fleet-converge.ts measures it: docs/benchmarks.md).
 *   - With the whole store down, a pilot restarts: it serves the config it applied last (kept in
 *     its run dir) instead of one without servers, says so on /health, holds back a reload that
 *     would build from nothing, and follows the store again once it is back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPilot, type PilotProcess } from './support/pilot-process.js';
import { startServersIn, type NetnsProcess } from './support/seeds-netns.js';
import { distinct, sample, sourceStatus } from './support/seeds-traffic.js';
import { connectedTo, createFleetNet, probeUntil, startEtcdClusterIn, startWrkIn, waitUntil, type FleetNet, type NetnsEtcdCluster } from './support/fleet.js';

const MEMBERS = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];
const SERVERS = { a: '10.77.0.21', b: '10.77.0.22', c: '10.77.0.23' };
const PREFIX = '/fleet/web';
const FRONTEND = 'http://127.0.0.1:5000/';

let net: FleetNet;
let etcd: NetnsEtcdCluster;
let servers: NetnsProcess;
const runDirs: string[] = [];
const pilots: PilotProcess[] = [];

const envFor = (i: number): Record<string, string> => ({
  ETCD_ENDPOINTS: MEMBERS.map((m) => `http://${m}:2379`).join(','),
  ETCD_PREFIX: PREFIX,
  ETCD_LAYOUT: 'containers',
  STATS_PASSWORD: 'fleet-stats',
  PILOT_RUN_DIR: runDirs[i]!,
  PILOT_LOG_LEVEL: 'info',
});

async function startFleetPilot(i: number): Promise<PilotProcess> {
  const p = startPilot(envFor(i), { netns: net.pilots[i]! });
  pilots[i] = p;
  await p.waitForLog((l) => String(l.msg).startsWith('started:'), 60_000);
  return p;
}

const serves = async (p: PilotProcess, want: string[], timeoutMs = 20_000): Promise<void> =>
  waitUntil(`pilot to serve ${want.join(',')}`, async () => distinct(await sample(p, FRONTEND, 6)).join() === want.join(), timeoutMs, 200);

before(async () => {
  net = await createFleetNet(3, [...MEMBERS, ...Object.values(SERVERS)]);
  etcd = await startEtcdClusterIn(net.store, MEMBERS);
  servers = await startServersIn(net.store, Object.entries(SERVERS).map(([name, host]) => ({ kind: 'http' as const, name, host, port: 8080 })));
  await etcd.ctl(['put', `${PREFIX}/a`, `${SERVERS.a}:8080`]);
  for (let i = 0; i < 3; i++) runDirs.push(await mkdtemp(join(tmpdir(), `pilot-fleet-${i}-`)));
  await Promise.all([0, 1, 2].map((i) => startFleetPilot(i)));
  for (const p of pilots) await serves(p, ['a']);
});

after(async () => {
  for (const p of pilots) await p?.kill();
  await servers?.stop();
  await etcd?.close();
  await net?.remove();
  for (const d of runDirs) await rm(d, { recursive: true, force: true });
});

test('the etcd leader is killed under load: every pilot serves on with 0 failed requests, follows a survivor and applies the next change', async (t) => {
  const wrks = net.pilots.map((ns) => startWrkIn(ns, FRONTEND, { connections: 4, maxSeconds: 60 }));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    // Make the member most pilots watch through the leader, so that killing the leader also
    // cuts at least one pilot off (etcd3 picks a member at random for each connection).
    const watched = await Promise.all(pilots.map(async (p) => (await connectedTo(await p.pid())).filter((a) => a.endsWith(':2379')).map((a) => a.split(':')[0]!)));
    const count = (m: { ip: string }) => watched.filter((w) => w.includes(m.ip)).length;
    const busiest = [...etcd.members].sort((x, y) => count(y) - count(x))[0]!;
    assert.ok(count(busiest) > 0, `the pilots watch through a member (${JSON.stringify(watched)})`);
    await etcd.moveLeader(busiest);
    const leader = await etcd.leader();
    const cut = watched.flatMap((w, i) => (w.includes(leader.ip) ? [i] : []));
    const probe = await probeUntil(net.pilots, FRONTEND, 'b');
    await leader.kill();
    t.diagnostic(`killed the leader ${leader.name} (${leader.ip}), which pilot(s) ${cut.join(', ')} watched through`);
    // The next change, once the survivors have elected a new leader (about 1 s: etcd's election
    // timeout; a put sent before would wait out etcdctl's 5 s command timeout).
    const killedAt = Date.now();
    await waitUntil('a new leader', async () => (await etcd.leader()) !== leader, 30_000, 50);
    const putAt = Date.now();
    await waitUntil('the put to commit on the survivors', async () => (await etcd.ctl(['put', `${PREFIX}/b`, `${SERVERS.b}:8080`])).includes('OK'), 30_000, 200);
    const committedAt = Date.now();
    const seen = await probe.firstSeen;
    await probe.stop();
    t.diagnostic(`new leader ${putAt - killedAt} ms after the kill; put committed in ${committedAt - putAt} ms; pilots serve it ${seen.map((s) => `${s - committedAt} ms`).join(', ')} after the commit`);
    // Keep the load on a little longer: the reload that added b is behind us, its old workers finish.
    await new Promise((r) => setTimeout(r, 1000));
    // wrk shares the round robin with these requests, so 8 in a row can all land on one server
    // (about 1 in 128 per pilot): both must answer within a few rounds.
    for (const [i, p] of pilots.entries()) {
      await waitUntil(`pilot ${i} serving a and b`, async () => distinct(await sample(p, FRONTEND, 8)).join() === 'a,b', 10_000, 100);
    }
    for (const [i, p] of pilots.entries()) {
      const s = await sourceStatus(p, 'etcd');
      assert.equal(s?.ok, true, `pilot ${i}: etcd source ok`);
      assert.equal(s?.stale, false, `pilot ${i}: etcd source not stale`);
      const peers = (await connectedTo(await p.pid())).filter((a) => a.endsWith(':2379'));
      assert.ok(peers.length > 0, `pilot ${i} holds a connection to a member`);
      assert.ok(!peers.includes(`${leader.ip}:2379`), `pilot ${i} no longer talks to the dead leader (${peers.join(', ')})`);
    }
  } finally {
    const results = await Promise.all(wrks.map((w) => w.stop()));
    for (const [i, r] of results.entries()) {
      t.diagnostic(`pilot ${i}: ${r.requests} requests, ${r.failed} failed (socket ${JSON.stringify(r.socketErrors)}, status>399 ${r.badStatus})`);
    }
    for (const [i, r] of results.entries()) {
      assert.ok(r.requests > 100, `pilot ${i} was under load (${r.requests} requests)`);
      assert.equal(r.failed, 0, `pilot ${i}: failed requests during the leader's death:\n${r.raw}`);
    }
  }
});

test('a pilot restarted while the whole store is down serves the config it applied last, says so on /health, and follows the store once it is back', async (t) => {
  for (const m of etcd.members) await m.kill();
  const old = pilots[0]!;
  await old.signal('SIGTERM');
  assert.equal((await old.exited).code, 0);
  const p = await startFleetPilot(0);
  // Not a config without servers: what it applied before it stopped.
  assert.deepEqual(distinct(await sample(p, FRONTEND, 8)), ['a', 'b']);
  const health = await p.http('/health', 7778);
  t.diagnostic(`/health ${health.status} ${health.body}`);
  const body = JSON.parse(health.body) as { lastApplied?: string; reasons?: string[] };
  assert.match(body.lastApplied ?? '', new RegExp(`^serving the last applied config from ${runDirs[0]}/gen/\\d+/haproxy\\.cfg \\(applied [^)]+\\): source etcd has not answered since start$`));
  if (health.status === 503) assert.ok(body.reasons?.includes(body.lastApplied!), 'unhealthy: the reasons say so too');
  assert.ok(p.logs.some((l) => String(l.msg).startsWith('serving the last applied config from')), 'the log says so');

  // A reload asked for now would build from no data at all: held back, and said why.
  const reload = await p.exec(['curl', '-s', '-X', 'POST', '--max-time', '10', 'http://127.0.0.1:7778/reload']);
  assert.match(reload.stdout, /serving the last applied config/);
  assert.deepEqual(distinct(await sample(p, FRONTEND, 8)), ['a', 'b'], 'still serving');

  // The store comes back: the pilot follows it, and the next change applies.
  for (const m of etcd.members) await m.start();
  await waitUntil('the etcd cluster to elect a leader', async () => Boolean(await etcd.leader()), 30_000, 200);
  await waitUntil('the etcd source to recover', async () => (await sourceStatus(p, 'etcd'))?.ok === true, 30_000, 200);
  await waitUntil('/health to drop the notice', async () => !('lastApplied' in (JSON.parse((await p.http('/health', 7778)).body) as object)), 20_000, 200);
  await etcd.ctl(['del', `${PREFIX}/a`]);
  await etcd.ctl(['put', `${PREFIX}/c`, `${SERVERS.c}:8080`]);
  await serves(p, ['b', 'c']);
  for (const other of pilots.slice(1)) await serves(other, ['b', 'c']);
});
