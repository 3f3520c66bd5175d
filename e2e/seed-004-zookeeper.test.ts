/**
 * Seed 004 (ProxyMgr) end to end: the real haproxy-pilot binary as PID 1 in a network namespace,
 * real HAProxy, and real ZooKeeper (Debian's, e2e/support/zookeeper.ts) running in the same
 * namespace, with small HTTP servers there too. The pilot reads the example's pilot.yaml
 * (examples/zookeeper-proxymgr: a proxymgr.yml as it is), with ZK_SERVERS pointing at a TCP
 * proxy in front of ZooKeeper that the session-expiry test cuts.
 *
 * - seed 004's README scenario: a service_config node with a zookeeper watcher and
 *   {address, port} server nodes becomes a listen section that serves traffic;
 * - server nodes added, removed, re-added and replaced under wrk load: 0 failed requests,
 *   0 reloads (the same worker, /status apply.reloads unchanged);
 * - a new service: exactly one reload; its listen_options (`balance leastconn`,
 *   `option httpchk GET /health`) and server_options (`check inter 2000`) work: a server added
 *   at run time is health-checked with that request and taken out when it fails it;
 * - hostile blobs and node names: skipped with a log line naming the node, nothing reaches
 *   haproxy.cfg, the others are served;
 * - a server keyword `add server` refuses (docs/zookeeper.md): new servers reload, planned;
 * - session expiry: a change made while the session was gone is served once it is back;
 * - a 3-member ensemble loses the member the pilot is connected to: HAProxy serves on (same
 *   worker, no reload, no failed request) and later changes still arrive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { masterCommand } from '../src/haproxy/master-cli.js';
import { createNetns, eventually, startPilot, type Netns, type PilotProcess } from './support/pilot-process.js';
import { startServersIn, type NetnsProcess } from './support/seeds-netns.js';
import { distinct, sample, sourceStatus, status } from './support/seeds-traffic.js';
import { connectedPortsOf, startZookeeperIn, type NetnsProxy, type NetnsZookeeper } from './support/seeds-zookeeper.js';
import { startWrk } from './support/wrk.js';

const EXAMPLE_YAML = fileURLToPath(new URL('../../examples/zookeeper-proxymgr/pilot.yaml', import.meta.url));
const P = '/service_config'; // the example's service_config.path
const PORTS = { one: 8001, two: 8002, three: 8003, sick: 8004 } as const;
const node = (name: keyof typeof PORTS) => ({ address: '127.0.0.1', port: PORTS[name] });
const url = (port: number) => `http://127.0.0.1:${port}/`;

let netns: Netns;
let dir: string;
let servers: NetnsProcess;
let zk: NetnsZookeeper;
let proxy: NetnsProxy;
let pilot: PilotProcess;

before(async () => {
  netns = await createNetns();
  dir = await mkdtemp(join(tmpdir(), 'pilot-seed004-'));
  servers = await startServersIn(netns, [
    ...(['one', 'two', 'three'] as const).map((name) => ({ kind: 'http' as const, name, host: '127.0.0.1', port: PORTS[name] })),
    { kind: 'sick', name: 'sick', host: '127.0.0.1', port: PORTS.sick },
  ]);
  zk = await startZookeeperIn(netns, 1);
  proxy = await zk.proxy();
  // Seed 004's README, with the `port` ProxyMgr refused to run without. Its `server` names the
  // ensemble directly (the README's localhost:2181), a second session next to ZK_SERVERS's.
  await zk.put('/services/testservice/node1', node('one'));
  await zk.put(`${P}/testservice`, {
    type: 'zookeeper',
    server: zk.connectString,
    path: '/services/testservice',
    port: 18080,
    listen_options: ['mode http'],
    server_options: ['check inter 2000'],
  });
  pilot = startPilot(
    { PILOT_CONFIG: EXAMPLE_YAML, ZK_SERVERS: proxy.address, ZK_SESSION_TIMEOUT: '3s', STATS_AUTH: 'none', PILOT_RUN_DIR: join(dir, 'run') },
    { netns },
  );
  await pilot.waitForLog((l) => String(l.msg).startsWith('started:'), 60_000);
  // Should it die, its last words are what a failing test needs.
  void pilot.exited.then((r) => {
    if (!stopping) process.stderr.write(`haproxy-pilot exited (${JSON.stringify(r)}); last output:\n${pilot.lines.slice(-60).join('\n')}\n`);
  });
});

let stopping = false;
after(async () => {
  stopping = true;
  await pilot?.kill();
  await zk?.close();
  await servers?.stop();
  await netns?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const serving = (p: PilotProcess, port: number, want: string, ms = 30_000) =>
  eventually(`traffic on :${port} reaches ${want}`, async () => (distinct(await sample(p, url(port), 12)).join() === want ? true : undefined), ms);

async function haproxyState(p: PilotProcess): Promise<{ workers: number[]; reloads: number }> {
  const s = await status(p);
  return { workers: (s.haproxy as { workers: number[] }).workers, reloads: (s.apply as { reloads: number }).reloads };
}

const liveConfig = (): Promise<string> => readFile(join(dir, 'run', 'haproxy.cfg'), 'utf8');

/**
 * Waits until the config on disk is the one /status says is applied: HAProxy may serve a new
 * config a moment before its reload is confirmed (and counted), so counters are read only once
 * the apply that carried the change just seen in traffic has finished. (The live file is written
 * before a reload and after runtime ops; /status's configHash changes once either is confirmed.
 * A candidate with no files hashes as its text.)
 */
async function settled(p: PilotProcess, runDir = join(dir, 'run')): Promise<void> {
  await eventually('the last apply is confirmed', async () => {
    const text = await readFile(join(runDir, 'haproxy.cfg'), 'utf8');
    const hash = ((await status(p)).apply as { configHash?: string }).configHash;
    return createHash('sha256').update(text).digest('hex') === hash ? true : undefined;
  }, 30_000);
}

/** `show stat` through the master CLI (its socket is a file: reachable from outside the namespace). */
async function serverStats(runDir: string, backend: string): Promise<Record<string, { status: string; check: string }>> {
  const text = await masterCommand(join(runDir, 'master.sock'), '@1 show stat');
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const cols = header!.replace(/^# /, '').split(',');
  const at = (name: string): number => cols.indexOf(name);
  const out: Record<string, { status: string; check: string }> = {};
  for (const row of rows) {
    const f = row.split(',');
    if (f[at('pxname')] !== backend || f[at('svname')] === 'BACKEND' || f[at('svname')] === 'FRONTEND') continue;
    out[f[at('svname')]!] = { status: f[at('status')]!, check: f[at('check_status')]! };
  }
  return out;
}

test("seed 004's README: a service_config node with a zookeeper watcher and {address, port} server nodes serves traffic", async () => {
  await serving(pilot, 18080, 'one');
  await settled(pilot);
  const cfg = await liveConfig();
  assert.match(cfg, /^listen testservice\n {4}bind :18080\n {4}mode http\n/m);
  assert.match(cfg, /^ {4}server 127\.0\.0\.1:8001 127\.0\.0\.1:8001 check inter 2000$/m);
  // ProxyMgr's template had no health check request of its own: `check` is a TCP check here too.
  assert.doesNotMatch(cfg, /httpchk|http-check/);
  // The example is a proxymgr.yml: its file and socket paths are noted and left alone.
  assert.ok(pilot.logs.some((l) => /haproxy\.config_path \(ProxyMgr\) is ignored/.test(String(l.msg))));
  assert.ok(pilot.logs.some((l) => /haproxy\.socket_path \(ProxyMgr\) is ignored/.test(String(l.msg))));
  assert.match(cfg, /^ {4}retries 3$/m, "the example's haproxy.defaults lines");
});

test('server nodes added, removed, re-added and replaced under load: 0 failed requests, 0 reloads', async (t) => {
  await serving(pilot, 18080, 'one');
  await settled(pilot);
  const beforeState = await haproxyState(pilot);
  const fromLog = pilot.logs.length;
  const wrk = startWrk(url(18080), { connections: 8, threads: 1, close: false, maxSeconds: 180, enter: netns.enter });
  t.after(() => void wrk.stop().catch(() => undefined));

  await zk.put('/services/testservice/node2', node('two'));
  await serving(pilot, 18080, 'one,two');
  await zk.remove('/services/testservice/node1');
  await serving(pilot, 18080, 'two');
  await zk.put('/services/testservice/node1', node('one'));
  await serving(pilot, 18080, 'one,two');
  // A node's data changes: ProxyMgr's server name is address:port, so a new server replaces it.
  await zk.put('/services/testservice/node2', node('three'));
  await serving(pilot, 18080, 'one,three');
  await settled(pilot);

  const load = await wrk.stop();
  const afterState = await haproxyState(pilot);
  assert.ok(load.requests > 100, `wrk ran: ${load.requests} requests`);
  assert.equal(load.failed, 0, `no failed request:\n${load.raw}`);
  assert.deepEqual(afterState.workers, beforeState.workers, 'the same HAProxy worker served throughout');
  assert.equal(afterState.reloads, beforeState.reloads, 'no reload');
  const runtime = pilot.logs.slice(fromLog).filter((l) => l.msg === 'applied (runtime)');
  assert.ok(runtime.length >= 4, `every step went through the runtime API (${runtime.length} runtime applies)`);
  const ops = runtime.flatMap((l) => (l.ops as string[] | undefined) ?? []);
  // The added servers were health-checked from the start (added servers start with checks off).
  assert.ok(ops.includes('enable health testservice/127.0.0.1:8002'), ops.join('\n'));
  assert.ok(ops.includes('add server testservice/127.0.0.1:8003 127.0.0.1:8003 check inter 2000'), ops.join('\n'));
});

test('a new service reloads once; its listen_options and server_options work, for servers added at run time too', async () => {
  await settled(pilot);
  const r0 = (await haproxyState(pilot)).reloads;
  await zk.put('/services/checked/a', node('one'));
  await zk.put(`${P}/checked`, {
    type: 'zookeeper',
    path: '/services/checked',
    port: 18081,
    listen_options: ['mode http', 'balance leastconn', 'option httpchk GET /health'],
    server_options: ['check inter 2000'],
  });
  await serving(pilot, 18081, 'one');
  await settled(pilot);
  assert.equal((await haproxyState(pilot)).reloads, r0 + 1, 'exactly one reload for the new service');
  const cfg = await liveConfig();
  const section = cfg.slice(cfg.indexOf('listen checked'), cfg.indexOf('\n\n', cfg.indexOf('listen checked')));
  assert.match(section, /^ {4}balance leastconn$/m);
  assert.doesNotMatch(section, /balance roundrobin/);
  assert.match(section, /^ {4}option httpchk GET \/health$/m);

  // `sick` answers 200 on / but 503 on /health: only `option httpchk GET /health` finds out,
  // and only if the server added at run time got its checks enabled.
  const state = await haproxyState(pilot);
  await zk.put('/services/checked/b', node('sick'));
  const run = join(dir, 'run');
  const stats = await eventually('the added server is health-checked with GET /health and marked down', async () => {
    const s = await serverStats(run, 'checked');
    return s['127.0.0.1:8004']?.status === 'DOWN' ? s : undefined;
  }, 30_000);
  // (`* ` in front: a check is running right now.)
  assert.match(stats['127.0.0.1:8004']!.check, /^(\* )?L7STS$/, 'an HTTP status failure');
  assert.equal(stats['127.0.0.1:8001']!.status, 'UP');
  assert.match(stats['127.0.0.1:8001']!.check, /^(\* )?L7OK$/);
  await serving(pilot, 18081, 'one');
  await settled(pilot);
  assert.deepEqual(await haproxyState(pilot), state, 'the server was added without a reload');
});

test('hostile blobs and node names are skipped with a log line naming the node; nothing reaches haproxy.cfg; the others are served', async () => {
  await settled(pilot);
  const r0 = (await haproxyState(pilot)).reloads;
  const fromLog = pilot.logs.length;
  const ok = { type: 'zookeeper', path: '/services/good' };
  const hostile: Record<string, string | object> = {
    'evil listen injected 0.0.0.0:1': { ...ok, port: 18201 },
    'x#"y': { ...ok, port: 18202 },
    badjson: '{"type": "zookeeper", "port": 1',
    newline: { ...ok, port: 18203, listen_options: ['mode http\nlisten injected 0.0.0.0:18299'] },
    directive: { ...ok, port: 18204, listen_options: ['stats enable'] },
    serveropts: { ...ok, port: 18205, server_options: ['check', 'track x/y'] },
    tlsnoca: { ...ok, port: 18206, server_options: ['ssl'] },
    huge: { ...ok, port: 18207, pad: 'y'.repeat(100_000) },
    hugeport: { ...ok, port: 99_999_999 },
    noport: { ...ok },
  };
  for (const [name, data] of Object.entries(hostile)) await zk.put(`${P}/${name}`, data);
  // A newline in a node name never gets that far: ZooKeeper refuses control characters in paths
  // (the layout refuses such names too: proxymgr-layout.test.ts).
  await assert.rejects(zk.put(`${P}/evil\nlisten injected 0.0.0.0:18298`, { ...ok, port: 18208 }));
  await zk.put('/services/testservice/evil', { address: '127.0.0.1\n    server evil 6.6.6.6:80', port: 80 });
  await zk.put('/services/testservice/junk', 'not json');
  await zk.put('/services/testservice/fat', { address: '127.0.0.1', port: 8002, pad: 'z'.repeat(5000) });
  // A good service next to them.
  await zk.put('/services/good/a', node('two'));
  await zk.put(`${P}/good`, { ...ok, port: 18082, listen_options: ['mode http'] });
  await serving(pilot, 18082, 'two');
  await serving(pilot, 18080, 'one,three');
  await settled(pilot);

  const skipped = await eventually('every hostile node is named in a log line', () => {
    const lines = pilot.logs.slice(fromLog).filter((l) => String(l.msg).startsWith('zookeeper: skipped'));
    return lines.length >= 13 ? lines : undefined;
  }, 20_000);
  const keys = skipped.map((l) => String(l.key)).sort();
  assert.deepEqual(keys, [
    `${P}/"evil listen injected 0.0.0.0:1"`,
    `${P}/x#"y`,
    `${P}/badjson`,
    `${P}/directive`,
    `${P}/huge`,
    `${P}/hugeport`,
    `${P}/newline`,
    `${P}/noport`,
    `${P}/serveropts`,
    `${P}/tlsnoca`,
    '/services/testservice/evil',
    '/services/testservice/fat',
    '/services/testservice/junk',
  ].sort());
  const reason = (key: string): string => String(skipped.find((l) => l.key === key)?.msg);
  assert.match(reason(`${P}/tlsnoca`), /verify none/);
  assert.match(reason(`${P}/directive`), /stats/);
  assert.match(reason(`${P}/serveropts`), /track/);
  for (const l of skipped) assert.ok(!String(l.msg).includes('\n'), `one line: ${String(l.msg)}`);

  const cfg = await liveConfig();
  assert.doesNotMatch(cfg, /injected|6\.6\.6\.6|track|evil|:1820\d|:18299/);
  assert.equal(cfg.match(/stats enable/g)?.length, 1, "only the stats frontend's own");
  assert.equal((await haproxyState(pilot)).reloads, r0 + 1, 'one reload, for the good service; the skipped ones changed nothing');
  await serving(pilot, 18080, 'one,three');
  await serving(pilot, 18081, 'one');
});

test('a server_options keyword `add server` refuses (non-stick): a new server is a planned reload, a removed one still goes at run time', async () => {
  await zk.put('/services/sticky/a', node('one'));
  await zk.put(`${P}/sticky`, { type: 'zookeeper', path: '/services/sticky', port: 18083, listen_options: ['mode http'], server_options: ['check', 'non-stick'] });
  await serving(pilot, 18083, 'one');
  await settled(pilot);
  const r0 = (await haproxyState(pilot)).reloads;
  const fromLog = pilot.logs.length;
  await zk.put('/services/sticky/b', node('two'));
  await serving(pilot, 18083, 'one,two');
  await settled(pilot);
  assert.equal((await haproxyState(pilot)).reloads, r0 + 1, 'one reload for the new server');
  const applied = await pilot.waitForLog((l) => pilot.logs.indexOf(l) >= fromLog && l.msg === 'applied (reload)');
  assert.match(String(applied.planReason), /"non-stick" cannot be given to an added server/);
  assert.ok(!pilot.logs.slice(fromLog).some((l) => /a runtime API op failed/.test(String(l.msg))), 'planned, not a refused add server');
  const state = await haproxyState(pilot);
  await zk.remove('/services/sticky/a');
  await serving(pilot, 18083, 'two');
  await settled(pilot);
  assert.deepEqual(await haproxyState(pilot), state, 'the removal went through the runtime API');
});

test('session expiry: a server added while the session was gone is served once it is back, with no reload', async () => {
  await serving(pilot, 18081, 'one');
  await settled(pilot);
  const state = await haproxyState(pilot);
  const s0 = await zk.sessions();
  const fromLog = pilot.logs.length;
  await proxy.pause(); // the pilot's ZK_SERVERS session (service_config, and the `checked` watcher on it)
  await zk.put('/services/checked/c', node('two'));
  await eventually('ZooKeeper expired the pilot session', async () => ((await zk.sessions()) < s0 ? true : undefined), 30_000);
  await eventually('the source is reported failing', async () => ((await sourceStatus(pilot, 'zookeeper'))?.ok === false ? true : undefined), 20_000);
  await proxy.resume();
  await pilot.waitForLog((l) => pilot.logs.indexOf(l) >= fromLog && /session expired/.test(String(l.msg)), 30_000);
  await serving(pilot, 18081, 'one,two');
  await settled(pilot);
  assert.deepEqual(await haproxyState(pilot), state, 'the outage and the new session changed nothing but the added server');
  await eventually('the source is healthy again', async () => ((await sourceStatus(pilot, 'zookeeper'))?.ok === true ? true : undefined), 20_000);
});

test('3-member ensemble: the member the pilot is connected to is killed; HAProxy serves on, later changes arrive', async (t) => {
  const ns = await createNetns();
  t.after(() => ns.remove());
  const d = await mkdtemp(join(tmpdir(), 'pilot-seed004-ens-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  const srv = await startServersIn(ns, (['one', 'two', 'three'] as const).map((name) => ({ kind: 'http' as const, name, host: '127.0.0.1', port: PORTS[name] })));
  t.after(() => srv.stop());
  const ens = await startZookeeperIn(ns, 3);
  t.after(() => ens.close());
  await ens.put('/services/web/a', node('one'));
  await ens.put('/services/web/b', node('two'));
  await ens.put(`${P}/web`, { type: 'zookeeper', path: '/services/web', port: 18090, listen_options: ['mode http'] });
  const p = startPilot({ ZK_SERVERS: ens.connectString, ZK_PATH: P, ZK_SESSION_TIMEOUT: '4s', STATS_AUTH: 'none', PILOT_RUN_DIR: join(d, 'run') }, { netns: ns });
  t.after(() => p.kill());
  await p.waitForLog((l) => String(l.msg).startsWith('started:'), 60_000);
  await serving(p, 18090, 'one,two');
  await settled(p, join(d, 'run'));
  const state = await haproxyState(p);

  const ports = await connectedPortsOf(await p.pid());
  const used = ens.ensemble.members.filter((m) => ports.has(m.clientPort));
  assert.equal(used.length, 1, `the pilot holds one ensemble connection (ports ${[...ports].join(',')})`);
  const wrk = startWrk(url(18090), { connections: 8, threads: 1, close: false, maxSeconds: 120, enter: ns.enter });
  t.after(() => void wrk.stop().catch(() => undefined));
  const fromLog = p.logs.length;
  await used[0]!.kill();
  await p.waitForLog((l) => p.logs.indexOf(l) >= fromLog && /connection to .* lost/.test(String(l.msg)), 20_000);
  await p.waitForLog((l) => p.logs.indexOf(l) >= fromLog && /^zookeeper: connected to/.test(String(l.msg)), 30_000);
  await serving(p, 18090, 'one,two');
  await ens.put('/services/web/c', node('three'));
  await serving(p, 18090, 'one,three,two');
  await settled(p, join(d, 'run'));

  const load = await wrk.stop();
  assert.ok(load.requests > 100, `wrk ran: ${load.requests} requests`);
  assert.equal(load.failed, 0, `no failed request:\n${load.raw}`);
  assert.deepEqual(await haproxyState(p), state, 'the same worker, no reload');
  assert.ok(!p.logs.some((l) => /session expired/.test(String(l.msg))), 'the session survived the member');
  assert.equal((await sourceStatus(p, 'zookeeper'))?.ok, true);
});
