/**
 * The zookeeper source (seed 004, ProxyMgr's schema) against real ZooKeeper from Debian's
 * package, driven directly (no HAProxy at this level): the README scenario, server and service
 * changes at both levels, hostile nodes, digest auth, the other watcher types, session expiry
 * with a change made during the outage, a start while ZooKeeper is down, and a 3-member
 * ensemble losing (or freezing) the member the source is connected to.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createZookeeperSource } from '../src/sources/zookeeper/source.js';
import type { ZookeeperSettings } from '../src/sources/zookeeper/settings.js';
import type { ZkBackend } from '../src/sources/zookeeper/proxymgr-layout.js';
import type { Snapshot, Source } from '../src/sources/source.js';
import { capturedLogger, recordingSink, type RecordingSink } from './support/sources-sink.js';
import { connectedPorts, startTcpProxy } from './support/sources-etcd.js';
import { fourLetterWord, startZookeeper, zkAdmin, zkModule, type ZkAdmin, type ZkEnsemble } from './support/zookeeper.js';

let zk: ZkEnsemble;
let admin: ZkAdmin;
before(async () => {
  zk = await startZookeeper(1);
  admin = await zkAdmin(zk.connectString);
});
after(async () => {
  await admin?.close();
  await zk?.close();
});

const backends = (s: Snapshot): ZkBackend[] => s.backends as unknown as ZkBackend[];
const names = (s: Snapshot): string[] => s.backends.map((b) => b.name).sort();
const servers = (s: Snapshot, backend: string): string[] => (s.backends.find((b) => b.name === backend)?.servers ?? []).map((x) => x.name).sort();

function settings(connect: string, path: string, over: Partial<ZookeeperSettings> = {}): ZookeeperSettings {
  return { servers: [], connectString: connect, path, sessionTimeoutMs: 4000, ...over };
}

interface Running {
  source: Source;
  sink: RecordingSink;
  lines: string[];
}

function run(t: { after(fn: () => unknown): void }, s: ZookeeperSettings, extra: { errorAfterMs?: number; readFile?: (p: string) => string } = {}): Running {
  const { log, lines } = capturedLogger();
  const source = createZookeeperSource(s, { log, ...extra });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  return { source, sink, lines };
}

/** Waits for a log line matching `re`, counting from line `from`. */
async function waitLog(lines: string[], re: RegExp, from = 0, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = lines.slice(from).find((l) => re.test(l));
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) throw new Error(`no log line matched ${re} within ${ms} ms:\n${lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("seed 004's README: a service_config node with a zookeeper watcher and {address, port} server nodes", async (t) => {
  // The README's blob, plus `port` (ProxyMgr refused to start a watcher without one).
  await admin.put('/readme/service_config/testservice', {
    type: 'zookeeper',
    server: zk.connectString,
    path: '/readme/services/testservice',
    port: 18080,
    listen_options: ['mode http'],
    server_options: ['check inter 2000'],
  });
  await admin.put('/readme/services/testservice/node1', { address: '1.2.3.4', port: 8080 });
  const { sink } = run(t, settings(zk.connectString, '/readme/service_config'));
  const first = await sink.waitSnapshot(() => true);
  assert.equal(first.source, 'zookeeper');
  assert.deepEqual(first.backends, [
    {
      name: 'testservice',
      mode: 'http',
      servers: [{ name: '1.2.3.4:8080', host: '1.2.3.4', port: 8080 }],
      route: { port: 18080 },
      options: [],
      serverOptions: ['check', 'inter', '2000'],
      source: 'zookeeper',
    },
  ]);
  assert.equal(sink.errors.length, 0);
});

test('server nodes added, removed and re-added; other services keep their backend objects', async (t) => {
  const P = '/servers/service_config';
  await admin.put(`${P}/web`, { type: 'zookeeper', path: '/servers/web', port: 18081, listen_options: ['mode http', 'balance leastconn'] });
  await admin.put(`${P}/db`, { type: 'zookeeper', path: '/servers/db', port: 15432 });
  await admin.put('/servers/web/a', { address: '10.0.0.1', port: 80 });
  await admin.put('/servers/db/a', { address: '10.0.1.1', port: 5432 });
  const { sink } = run(t, settings(zk.connectString, P));
  const first = await sink.waitSnapshot(() => true);
  assert.deepEqual(servers(first, 'web'), ['10.0.0.1:80']);
  assert.deepEqual(backends(first).find((b) => b.name === 'web')!.options, ['balance leastconn']);
  assert.equal(first.backends.find((b) => b.name === 'db')!.mode, 'tcp');
  const db = first.backends.find((b) => b.name === 'db');

  let from = sink.snapshots.length;
  await admin.put('/servers/web/b', { address: '10.0.0.2', port: 80 });
  const added = await sink.waitSnapshot((s) => servers(s, 'web').length === 2, 10_000, from);
  assert.deepEqual(servers(added, 'web'), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.equal(added.backends.find((b) => b.name === 'db'), db, 'db unchanged: the same object');

  from = sink.snapshots.length;
  await admin.remove('/servers/web/a');
  const removed = await sink.waitSnapshot((s) => servers(s, 'web').length === 1, 10_000, from);
  assert.deepEqual(servers(removed, 'web'), ['10.0.0.2:80']);

  from = sink.snapshots.length;
  await admin.put('/servers/web/a', { address: '10.0.0.1', port: 80 });
  const back = await sink.waitSnapshot((s) => servers(s, 'web').length === 2, 10_000, from);
  assert.deepEqual(servers(back, 'web'), ['10.0.0.1:80', '10.0.0.2:80']);

  // A server node's data changing moves the server.
  from = sink.snapshots.length;
  await admin.put('/servers/web/a', { address: '10.0.0.3', port: 80 });
  const moved = await sink.waitSnapshot((s) => servers(s, 'web').includes('10.0.0.3:80'), 10_000, from);
  assert.deepEqual(servers(moved, 'web'), ['10.0.0.2:80', '10.0.0.3:80']);

  // The watcher path disappearing empties the backend; coming back fills it.
  from = sink.snapshots.length;
  await admin.removeTree('/servers/web');
  const empty = await sink.waitSnapshot((s) => servers(s, 'web').length === 0, 10_000, from);
  assert.deepEqual(names(empty), ['db', 'web']);
  from = sink.snapshots.length;
  await admin.put('/servers/web/c', { address: '10.0.0.9', port: 80 });
  const refilled = await sink.waitSnapshot((s) => servers(s, 'web').length === 1, 10_000, from);
  assert.deepEqual(servers(refilled, 'web'), ['10.0.0.9:80']);
  for (const s of sink.snapshots) assert.deepEqual(names(s), ['db', 'web'], 'no snapshot ever lacked a service');
  assert.equal(sink.errors.length, 0);
});

test('services added, changed and removed; a service watching another ensemble', async (t) => {
  const other = await startZookeeper(1);
  t.after(() => other.close());
  const otherAdmin = await zkAdmin(other.connectString);
  t.after(() => otherAdmin.close());
  const P = '/svc/service_config';
  await admin.put(`${P}/one`, { type: 'zookeeper', path: '/svc/one', port: 18101 });
  await admin.put('/svc/one/a', { address: '10.1.0.1', port: 80 });
  const { sink } = run(t, settings(zk.connectString, P));
  await sink.waitSnapshot((s) => names(s).join() === 'one');

  let from = sink.snapshots.length;
  await otherAdmin.put('/elsewhere/two/x', { address: '10.2.0.1', port: 81 });
  await admin.put(`${P}/two`, { type: 'zookeeper', server: other.connectString, path: '/elsewhere/two', port: 18102 });
  const two = await sink.waitSnapshot((s) => names(s).join() === 'one,two', 10_000, from);
  assert.deepEqual(servers(two, 'two'), ['10.2.0.1:81']);
  const one = two.backends.find((b) => b.name === 'one');

  from = sink.snapshots.length;
  await otherAdmin.put('/elsewhere/two/y', { address: '10.2.0.2', port: 81 });
  const more = await sink.waitSnapshot((s) => servers(s, 'two').length === 2, 10_000, from);
  assert.equal(more.backends.find((b) => b.name === 'one'), one, 'one unchanged: the same object');

  from = sink.snapshots.length;
  await admin.put(`${P}/two`, { type: 'zookeeper', server: other.connectString, path: '/elsewhere/two', port: 18102, listen_options: ['mode http'] });
  const changed = await sink.waitSnapshot((s) => s.backends.find((b) => b.name === 'two')?.mode === 'http', 10_000, from);
  assert.deepEqual(servers(changed, 'two'), ['10.2.0.1:81', '10.2.0.2:81']);

  from = sink.snapshots.length;
  await admin.remove(`${P}/two`);
  const gone = await sink.waitSnapshot((s) => names(s).join() === 'one', 10_000, from);
  assert.equal(gone.backends[0], one);
  assert.equal(sink.errors.length, 0);
});

test('hostile blobs and node names are skipped, naming the node; the others are served', async (t) => {
  const P = '/hostile/service_config';
  await admin.put(`${P}/good`, { type: 'zookeeper', path: '/hostile/good', port: 18201, listen_options: ['mode http'] });
  await admin.put('/hostile/good/a', { address: '10.3.0.1', port: 80 });
  await admin.put('/hostile/good/evil', { address: '10.3.0.2\n  server evil 6.6.6.6:80', port: 80 });
  await admin.put('/hostile/good/junk', 'not json');
  // ZooKeeper itself refuses control characters in node names; spaces, '#' and quotes it takes.
  await admin.put(`${P}/evil listen injected 0.0.0.0:1`, { type: 'zookeeper', path: '/hostile/good', port: 18202 });
  await admin.put(`${P}/x#"y`, { type: 'zookeeper', path: '/hostile/good', port: 18210 });
  await admin.put(`${P}/with space`, { type: 'zookeeper', path: '/hostile/good', port: 18203 });
  await admin.put(`${P}/${'x'.repeat(300)}`, { type: 'zookeeper', path: '/hostile/good', port: 18204 });
  await admin.put(`${P}/badjson`, '{"type": "zookeeper", "port": 1');
  await admin.put(`${P}/options`, { type: 'zookeeper', path: '/hostile/good', port: 18205, listen_options: ['mode http\nlisten injected 0.0.0.0:2'] });
  await admin.put(`${P}/directive`, { type: 'zookeeper', path: '/hostile/good', port: 18206, listen_options: ['stats enable'] });
  await admin.put(`${P}/serveropts`, { type: 'zookeeper', path: '/hostile/good', port: 18207, server_options: ['check', 'track x/y'] });
  await admin.put(`${P}/noport`, { type: 'zookeeper', path: '/hostile/good' });
  await admin.put(`${P}/huge`, { type: 'zookeeper', path: '/hostile/good', port: 18208, pad: 'y'.repeat(100_000) });
  const { sink, lines } = run(t, settings(zk.connectString, P));
  const s = await sink.waitSnapshot(() => true);
  assert.deepEqual(names(s), ['good']);
  assert.deepEqual(servers(s, 'good'), ['10.3.0.1:80']);
  const skipped = lines.filter((l) => l.includes('"msg":"zookeeper: skipped'));
  const keyOf = (l: string): string => (JSON.parse(l) as { key: string }).key;
  const keys = skipped.map(keyOf).sort();
  assert.deepEqual(keys, [
    `${P}/"evil listen injected 0.0.0.0:1"`,
    `${P}/x#"y`,
    `${P}/"with space"`,
    `${P}/"${'x'.repeat(80)}…"`, // shortened in keys and logs
    `${P}/badjson`,
    `${P}/directive`,
    `${P}/huge`,
    `${P}/noport`,
    `${P}/options`,
    `${P}/serveropts`,
    '/hostile/good/evil',
    '/hostile/good/junk',
  ].sort());
  for (const l of skipped) assert.ok(!/\\n\s+(server|listen)/.test((JSON.parse(l) as { msg: string }).msg.replace(/"[^"]*"/g, '')), l);
  // Nothing from the store reaches a backend without passing its grammar.
  const text = JSON.stringify(s.backends);
  assert.ok(!text.includes('6.6.6.6') && !text.includes('injected') && !text.includes('stats') && !text.includes('track'));

  // Skips are logged once, not on every snapshot.
  const from = sink.snapshots.length;
  await admin.put('/hostile/good/b', { address: '10.3.0.3', port: 80 });
  await sink.waitSnapshot((x) => servers(x, 'good').length === 2, 10_000, from);
  assert.equal(lines.filter((l) => l.includes('"msg":"zookeeper: skipped')).length, skipped.length);

  // Fixing a node brings its service in.
  const from2 = sink.snapshots.length;
  await admin.put(`${P}/noport`, { type: 'zookeeper', path: '/hostile/good', port: 18209 });
  const fixed = await sink.waitSnapshot((x) => names(x).includes('noport'), 10_000, from2);
  assert.deepEqual(names(fixed), ['good', 'noport']);
});

test('digest auth from ZK_AUTH_FILE reads protected nodes; the password is never logged', async (t) => {
  const zkm = zkModule();
  const password = 'pw-Secret-4711';
  const digest = createHash('sha1').update(`pilot:${password}`).digest('base64');
  const acl = [new zkm.ACL(zkm.Permission.ALL, new zkm.Id('digest', `pilot:${digest}`))];
  const P = '/auth/service_config';
  await admin.put('/auth/servers/a', { address: '10.4.0.1', port: 80 });
  await admin.put(P, '');
  await admin.put(`${P}/secure`, { type: 'zookeeper', path: '/auth/servers', port: 18301 }, acl);
  await admin.put(`${P}/open`, { type: 'zookeeper', path: '/auth/servers', port: 18302 });

  const withAuth = run(t, settings(zk.connectString, P, { authFile: '/run/secrets/zk' }), { readFile: () => `pilot:${password}\n` });
  const s = await withAuth.sink.waitSnapshot(() => true);
  assert.deepEqual(names(s), ['open', 'secure']);

  const without = run(t, settings(zk.connectString, P));
  const s2 = await without.sink.waitSnapshot(() => true);
  assert.deepEqual(names(s2), ['open']);
  assert.ok(without.lines.some((l) => l.includes(`"key":"${P}/secure"`) && l.includes('NO_AUTH')), 'the unreadable node is named');
  for (const l of [...withAuth.lines, ...without.lines]) assert.ok(!l.includes(password), l);
});

test('campanjazk, file and dns watchers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-zk-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'servers.txt');
  await writeFile(file, '10.5.0.1:80\n');
  const P = '/watchers/service_config';
  await admin.put('/watchers/hosts/web1.internal', '');
  await admin.put(`${P}/camp`, { type: 'campanjazk', path: '/watchers/hosts', port: 18401, remote_port: 8080 });
  await admin.put(`${P}/flat`, { type: 'file', file, port: 18402 });
  await admin.put(`${P}/dns`, { type: 'dns', port: 18403, backends: [{ name: 'api.example.com', port: 443 }] });
  const { sink } = run(t, settings(zk.connectString, P));
  const s = await sink.waitSnapshot(() => true);
  assert.deepEqual(names(s), ['camp', 'dns', 'flat']);
  assert.deepEqual(servers(s, 'camp'), ['web1.internal:8080']);
  assert.deepEqual(servers(s, 'flat'), ['10.5.0.1:80']);
  assert.deepEqual(backends(s).find((b) => b.name === 'dns')!.dns, [{ name: 'api.example.com', port: 443, slots: 8 }]);

  let from = sink.snapshots.length;
  await admin.put('/watchers/hosts/10.5.9.9', '');
  await sink.waitSnapshot((x) => servers(x, 'camp').length === 2, 10_000, from);

  // A write-and-rename (what deploy tools do) is seen through the directory watch.
  from = sink.snapshots.length;
  await writeFile(`${file}.tmp`, '10.5.0.1:80\n10.5.0.2:80\n');
  await rename(`${file}.tmp`, file);
  const f = await sink.waitSnapshot((x) => servers(x, 'flat').length === 2, 10_000, from);
  assert.deepEqual(servers(f, 'flat'), ['10.5.0.1:80', '10.5.0.2:80']);
});

test('session expiry: a new session, watches re-established, the change made during the outage picked up, no empty snapshot', async (t) => {
  const P = '/expiry/service_config';
  await admin.put(`${P}/svc`, { type: 'zookeeper', path: '/expiry/svc', port: 18501 });
  await admin.put('/expiry/svc/a', { address: '10.6.0.1', port: 80 });
  // The source reaches ZooKeeper through a proxy we can cut; the admin client goes direct.
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: zk.members[0]!.clientPort });
  t.after(() => proxy.close());
  const proxied = proxy.url.replace(/^http:\/\//, '');
  const sessions = async (): Promise<number> => Number(/zk_global_sessions\s+(\d+)/.exec(await fourLetterWord(zk.members[0]!.clientPort, 'mntr'))?.[1] ?? NaN);
  const before0 = await sessions();
  const { sink, lines } = run(t, settings(proxied, P, { sessionTimeoutMs: 2000 }));
  await sink.waitSnapshot(() => true);
  assert.equal(await sessions(), before0 + 1);

  await proxy.pause();
  await admin.put('/expiry/svc/b', { address: '10.6.0.2', port: 80 }); // during the outage
  await admin.put(`${P}/late`, { type: 'zookeeper', path: '/expiry/svc', port: 18502 });
  // Wait until ZooKeeper itself has expired the source's session.
  for (const deadline = Date.now() + 20_000; (await sessions()) > before0; ) {
    if (Date.now() > deadline) throw new Error('the session did not expire');
    await new Promise((r) => setTimeout(r, 100));
  }
  await sink.waitError((e) => /no connection to/.test(e.message));
  const from = sink.snapshots.length;
  const fromLine = lines.length;
  await proxy.resume();
  await waitLog(lines, /session expired/, fromLine);
  const after = await sink.waitSnapshot((s) => servers(s, 'svc').length === 2 && names(s).includes('late'), 20_000, from);
  assert.deepEqual(servers(after, 'svc'), ['10.6.0.1:80', '10.6.0.2:80']);
  for (const s of sink.snapshots) assert.ok(s.backends.length > 0, 'never an empty snapshot');

  // The watches live on in the new session, at both levels.
  const from2 = sink.snapshots.length;
  await admin.remove('/expiry/svc/a');
  await admin.remove(`${P}/late`);
  const later = await sink.waitSnapshot((s) => servers(s, 'svc').length === 1 && !names(s).includes('late'), 10_000, from2);
  assert.deepEqual(servers(later, 'svc'), ['10.6.0.2:80']);
});

test('ZooKeeper down at start: an error, then everything once it comes', async (t) => {
  const own = await startZookeeper(1);
  t.after(() => own.close());
  const a = await zkAdmin(own.connectString);
  await a.put('/late/service_config/svc', { type: 'zookeeper', path: '/late/svc', port: 18601 });
  await a.put('/late/svc/a', { address: '10.7.0.1', port: 80 });
  await a.close();
  await own.members[0]!.stop();

  const { sink } = run(t, settings(own.connectString, '/late/service_config', { sessionTimeoutMs: 2000 }), { errorAfterMs: 300 });
  const err = await sink.waitError(() => true);
  assert.match(err.message, /^zookeeper: no connection to 127\.0\.0\.1:\d+ for 300 ms$/);
  assert.equal(sink.snapshots.length, 0, 'no snapshot without a read');

  await own.members[0]!.start();
  await own.members[0]!.ready();
  const s = await sink.waitSnapshot(() => true, 20_000);
  assert.deepEqual(servers(s, 'svc'), ['10.7.0.1:80']);
});

test('3-member ensemble: the member the source uses is killed (no change), and then frozen (the watchdog moves on)', async (t) => {
  const ens = await startZookeeper(3);
  t.after(() => ens.close());
  const P = '/ens/service_config';
  const seed = await zkAdmin(ens.connectString);
  await seed.put(`${P}/svc`, { type: 'zookeeper', path: '/ens/svc', port: 18701 });
  await seed.put('/ens/svc/a', { address: '10.8.0.1', port: 80 });
  await seed.close();

  const memberInUse = async (): Promise<(typeof ens.members)[number]> => {
    const ports = await connectedPorts();
    const used = ens.members.filter((m) => m.running && ports.has(m.clientPort));
    assert.equal(used.length, 1, `one connection to the ensemble (ports ${[...ports].join(',')})`);
    return used[0]!;
  };
  const { sink, lines } = run(t, settings(ens.connectString, P, { sessionTimeoutMs: 3000 }));
  const first = await sink.waitSnapshot(() => true);
  const svc = first.backends[0];

  // Killed: the socket closes, the client resumes the session on another member.
  const victim = await memberInUse();
  let fromLine = lines.length;
  await victim.kill();
  await waitLog(lines, /connection to .* lost/, fromLine);
  await waitLog(lines, /connected to/, fromLine);
  const survivors = ens.members.filter((m) => m !== victim).map((m) => m.address).join(',');
  const a = await zkAdmin(survivors);
  t.after(() => a.close());
  let from = sink.snapshots.length;
  await a.put('/ens/svc/b', { address: '10.8.0.2', port: 80 });
  const changed = await sink.waitSnapshot((s) => servers(s, 'svc').length === 2, 10_000, from);
  for (const s of sink.snapshots.slice(1, sink.snapshots.indexOf(changed))) assert.equal(s.backends[0], svc, 'no change in the backends from the kill');
  assert.equal(sink.errors.length, 0, 'a member loss is not an outage');
  assert.ok(!lines.some((l) => /session expired/.test(l)), 'the session survived');
  await a.close(); // so that the only connection to the ensemble is the source's

  // Frozen (SIGSTOP): the socket stays open and silent; without the watchdog the client would wait forever.
  await victim.start();
  await victim.ready();
  const frozen = await memberInUse();
  t.after(() => frozen.resume());
  fromLine = lines.length;
  frozen.pause();
  await waitLog(lines, /no answer from .* moving to another server/, fromLine, 20_000);
  await waitLog(lines, /connected to/, fromLine, 20_000);
  const others = ens.members.filter((m) => m !== frozen).map((m) => m.address).join(',');
  const b = await zkAdmin(others);
  t.after(() => b.close());
  from = sink.snapshots.length;
  await b.put('/ens/svc/c', { address: '10.8.0.3', port: 80 });
  const seen = await sink.waitSnapshot((s) => servers(s, 'svc').length === 3, 20_000, from);
  assert.deepEqual(servers(seen, 'svc'), ['10.8.0.1:80', '10.8.0.2:80', '10.8.0.3:80']);
  frozen.resume();
});
