/**
 * The etcd source against real etcd (Debian's etcd 3.4): seed 001's layout end to end, watch
 * resume after a restart, changes made while the client was cut off, compaction recovery,
 * failover in a 3-member cluster, and user/password auth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEtcdSource } from '../src/sources/etcd/transport.js';
import type { EtcdSourceSettings } from '../src/sources/etcd/kind.js';
import type { Snapshot } from '../src/sources/source.js';
import { connectedPorts, restartMember, startEtcd, startTcpProxy, waitHealthy } from './support/sources-etcd.js';
import { capturedLogger, recordingSink } from './support/sources-sink.js';
import { TEST_PEM } from './support/test-certificate.js';

const PEM = TEST_PEM;

const names = (s: Snapshot): string[] => s.backends.map((b) => b.name).sort();
const reads = (lines: string[]): number => lines.filter((l) => /"msg":"etcd: read \d+ keys/.test(l)).length;

function settings(endpoints: string[], over: Partial<EtcdSourceSettings> = {}): EtcdSourceSettings {
  return { endpoints, prefix: '/haproxy-1', haproxyId: '1', layout: 'confd', ...over };
}

test('seed 001 keys end to end: put → backends and cert files; bad service skipped; delete → gone', async (t) => {
  const etcd = await startEtcd(1);
  t.after(() => etcd.close());
  await etcd.ctl(['put', '/haproxy-1/services/myapp/domain', 'example.org']);
  await etcd.ctl(['put', '/haproxy-1/services/myapp/port', '80']);
  await etcd.ctl(['put', '/haproxy-10/services/other/port', '80']);
  const { log, lines } = capturedLogger();
  const source = createEtcdSource(settings(etcd.endpoints), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  const first = await sink.waitSnapshot(() => true);
  assert.equal(first.source, 'etcd');
  assert.deepEqual(first.keys, { '/haproxy-1/services/myapp/domain': 'example.org', '/haproxy-1/services/myapp/port': '80' });
  assert.deepEqual(first.backends, [
    { name: 'myapp', mode: 'http', servers: [], dns: [{ name: 'myapp', port: 80, slots: 10 }], route: { domain: 'example.org' }, source: 'etcd' },
  ]);

  await etcd.ctl(['put', '/haproxy-1/tcp-services/galera/external_port', '3306']);
  await etcd.ctl(['put', '/haproxy-1/tcp-services/galera/internal_port', '3306']);
  await etcd.ctl(['put', '/haproxy-1/services/evil/port', '80\n  server x 6.6.6.6:80']);
  await etcd.ctl(['put', '--', '/haproxy-1/certs/example.org', PEM]);
  const full = await sink.waitSnapshot((s) => names(s).includes('tcp-galera') && s.files !== undefined);
  assert.deepEqual(names(full), ['myapp', 'tcp-galera']);
  assert.deepEqual(full.backends.find((b) => b.name === 'tcp-galera')!.route, { port: 3306 });
  assert.deepEqual(full.files, { 'example.org.pem': PEM });
  assert.ok(lines.some((l) => l.includes('skipped') && l.includes('/haproxy-1/services/evil')));

  await etcd.ctl(['del', '--prefix', '/haproxy-1/services/myapp/']);
  const gone = await sink.waitSnapshot((s) => !names(s).includes('myapp'));
  assert.deepEqual(names(gone), ['tcp-galera']);
  assert.equal(sink.errors.length, 0);
  assert.equal(reads(lines), 1, 'one full read, then the watch');
});

test('the watch resumes after etcd restarts, and catches up on changes made while it was cut off; compaction forces a re-read', async (t) => {
  const etcd = await startEtcd(1);
  t.after(() => etcd.close());
  const target = new URL(etcd.endpoints[0]!);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  t.after(() => proxy.close());
  await etcd.ctl(['put', '/haproxy-1/services/a/port', '80']);
  const { log, lines } = capturedLogger();
  const source = createEtcdSource(settings([proxy.url]), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot((s) => names(s).join() === 'a');

  // 1. etcd itself restarts (same data dir); a change after it is back arrives through the resumed watch.
  await restartMember(etcd.members[0]!);
  await etcd.ctl(['put', '/haproxy-1/services/b/port', '80']);
  await sink.waitSnapshot((s) => names(s).join() === 'a,b', 20_000);
  await sink.waitError((e) => /watch disconnected/.test(e.message));
  assert.equal(reads(lines), 1, 'resumed, not re-read');

  // 2. Cut off: changes made meanwhile are replayed from the last revision on reconnect.
  await proxy.pause();
  let from = sink.snapshots.length;
  await etcd.ctl(['put', '/haproxy-1/services/c/port', '80']);
  await etcd.ctl(['del', '/haproxy-1/services/a/port']);
  await proxy.resume();
  await sink.waitSnapshot((s) => names(s).join() === 'b,c', 20_000, from);
  assert.equal(reads(lines), 1, 'resumed from the last revision, not re-read');
  assert.ok(lines.some((l) => l.includes('watch resumed from revision')));

  // 3. Cut off again, and the history the watch would resume from is compacted away.
  await proxy.pause();
  from = sink.snapshots.length;
  await etcd.ctl(['put', '/haproxy-1/services/d/port', '80']);
  await etcd.ctl(['del', '/haproxy-1/services/b/port']);
  const status = JSON.parse(await etcd.ctl(['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number } } }[];
  await etcd.ctl(['compact', String(status[0]!.Status.header.revision)]);
  await proxy.resume();
  await sink.waitSnapshot((s) => names(s).join() === 'c,d', 20_000, from);
  assert.equal(reads(lines), 2, 'compaction: everything read again');
  assert.ok(lines.some((l) => l.includes('reading everything again')));
});

test('3-member cluster: whichever member the client uses can stop, changes keep arriving', async (t) => {
  const etcd = await startEtcd(3);
  t.after(() => etcd.close());
  const { log } = capturedLogger();
  const source = createEtcdSource(settings(etcd.endpoints), { log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  await sink.waitSnapshot(() => true);
  // Stopping each member in turn is sure to stop the one the watch stream is on (etcd3 picks
  // a random endpoint per connection and we cannot ask it which).
  const times: string[] = [];
  for (const [i, member] of etcd.members.entries()) {
    const used = (await connectedPorts()).has(Number(new URL(member.clientUrl).port));
    await member.stop();
    const started = Date.now();
    await etcd.ctl(['put', `/haproxy-1/services/s${i}/port`, '80']);
    await sink.waitSnapshot((s) => names(s).includes(`s${i}`), 30_000);
    times.push(`${member.name}${used ? ' (connected)' : ''}: ${Date.now() - started}`);
    await member.start();
    await waitHealthy(member);
  }
  const last = sink.snapshots[sink.snapshots.length - 1]!;
  assert.deepEqual(names(last), ['s0', 's1', 's2']);
  t.diagnostic(`ms from stopping a member to the change in a snapshot: ${times.join(', ')}`);
});

test('user/password auth: the right password reads, a wrong one is an error that does not show it', async (t) => {
  const etcd = await startEtcd(1);
  t.after(() => etcd.close());
  await etcd.ctl(['user', 'add', 'root:root-pw-1', '--interactive=false']);
  await etcd.ctl(['auth', 'enable']);
  const root = { user: 'root:root-pw-1' };
  await etcd.ctl(['role', 'add', 'pilot-ro'], root);
  await etcd.ctl(['role', 'grant-permission', 'pilot-ro', '--prefix=true', 'read', '/haproxy-1/'], root);
  await etcd.ctl(['user', 'add', 'pilot:pilot-pw-2', '--interactive=false'], root);
  await etcd.ctl(['user', 'grant-role', 'pilot', 'pilot-ro'], root);
  await etcd.ctl(['put', '/haproxy-1/services/web/port', '8080'], root);

  const good = capturedLogger();
  const source = createEtcdSource(settings(etcd.endpoints, { user: 'pilot', password: 'pilot-pw-2' }), { log: good.log });
  const sink = recordingSink();
  source.start(sink);
  t.after(() => source.stop());
  const s = await sink.waitSnapshot(() => true);
  assert.deepEqual(s.backends.map((b) => `${b.name}:${b.dns?.[0]?.port}`), ['web:8080']);
  await etcd.ctl(['put', '/haproxy-1/services/api/port', '81'], root);
  await sink.waitSnapshot((x) => names(x).includes('api'), 10_000);

  const bad = capturedLogger();
  const wrong = 'wrong-pw-3';
  const badSource = createEtcdSource(settings(etcd.endpoints, { user: 'pilot', password: wrong }), { log: bad.log });
  const badSink = recordingSink();
  badSource.start(badSink);
  t.after(() => badSource.stop());
  const err = await badSink.waitError(() => true);
  assert.equal((err as Error & { code?: string }).code, 'E_SOURCE');
  assert.match(err.message, /^etcd: read failed \(http:\/\/127\.0\.0\.1:\d+ prefix \/haproxy-1\/\): .*authentication failed/);
  assert.equal(badSink.snapshots.length, 0);
  for (const text of [err.message, String(err.cause), ...bad.lines, ...good.lines]) {
    assert.ok(!text.includes(wrong) && !text.includes('pilot-pw-2'), 'passwords never shown');
  }
});
