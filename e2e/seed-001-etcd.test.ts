/**
 * Seed 001 (haproxy-confd) end to end: the real haproxy-pilot binary as PID 1 in a network
 * namespace, real HAProxy, real etcd (Debian's 3.4) and a real DNS server (dnsmasq) in the same
 * namespace. Services live under /haproxy-<HAPROXY_ID>/ as the seed lays them out; their servers
 * are whatever DNS answers for the service name (the seed relied on weave/Kontena DNS). Like the
 * seed, the run sets no DNS variable: with no RESOLVER_<NAME>, haproxy-pilot gives discovered
 * backends a `resolvers` block with `parse-resolv-conf`, and the namespace's /etc/resolv.conf
 * (`ip netns exec` mounts /etc/netns/<name>/resolv.conf over it) names dnsmasq, as a container's
 * names its runtime's DNS. PILOT_RUN_DIR is a temp dir only because tests share the host's /run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { createNetns, eventually, MAIN, startPilot, type Netns, type PilotProcess } from './support/pilot-process.js';
import { startDnsmasq, type Dnsmasq } from './support/dnsmasq.js';
import { startEtcdIn, type NetnsEtcd } from './support/seeds-etcd.js';
import { startServersIn, type NetnsProcess } from './support/seeds-netns.js';
import { distinct, reloads, sample, sourceStatus } from './support/seeds-traffic.js';

const BASE = '/haproxy-haproxy-1';
const HOST = ['-H', 'Host: example.org'];

let netns: Netns;
let dir: string;
let etcd: NetnsEtcd;
let dns: Dnsmasq;
let servers: NetnsProcess;
let pilot: PilotProcess;
let pem: string;

const hosts = (myapp: string[]): Record<string, string[]> => ({ myapp, api: ['127.0.0.4'], galera: ['127.0.0.5'] });

before(async () => {
  netns = await createNetns();
  await mkdir(join('/etc/netns', netns.name), { recursive: true });
  await writeFile(join('/etc/netns', netns.name, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  dir = await mkdtemp(join(tmpdir(), 'pilot-seed001-'));
  // A self-signed certificate for example.org, certificate and key in one PEM as the store holds it.
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=example.org',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  pem = (await readFile(join(dir, 'cert.pem'), 'utf8')) + (await readFile(join(dir, 'key.pem'), 'utf8'));
  etcd = await startEtcdIn(netns);
  dns = await startDnsmasq({ port: 53, hosts: hosts(['127.0.0.2', '127.0.0.3']), enter: netns.enter });
  servers = await startServersIn(netns, [
    { kind: 'http', name: 'myapp-a', host: '127.0.0.2', port: 8080 },
    { kind: 'http', name: 'myapp-b', host: '127.0.0.3', port: 8080 },
    { kind: 'http', name: 'myapp-c', host: '127.0.0.6', port: 8080 },
    { kind: 'http', name: 'api', host: '127.0.0.4', port: 8080 },
    { kind: 'echo', name: 'galera-db', host: '127.0.0.5', port: 3307 },
  ]);
  // The seed's own commands, in etcd v3 form.
  await etcd.ctl(['put', `${BASE}/services/myapp/domain`, 'example.org']);
  await etcd.ctl(['put', `${BASE}/services/myapp/port`, '8080']);
  await etcd.ctl(['put', `${BASE}/services/api/url_beg`, '/api_A']);
  await etcd.ctl(['put', `${BASE}/services/api/port`, '8080']);
  await etcd.ctl(['put', `${BASE}/tcp-services/galera/external_port`, '3306']);
  await etcd.ctl(['put', `${BASE}/tcp-services/galera/internal_port`, '3307']);
  // Missing its port: skipped with a log line naming it, the others unaffected.
  await etcd.ctl(['put', `${BASE}/services/broken/domain`, 'broken.example.org']);
  await etcd.ctl(['put', `${BASE}/certs/example.org`], pem);

  pilot = startPilot(
    {
      ETCD_ENDPOINTS: etcd.endpoint,
      HAPROXY_ID: 'haproxy-1',
      STATS_PASSWORD: 'seed001-stats',
      PILOT_STALE_AFTER: '3s',
      PILOT_RUN_DIR: dir,
    },
    { netns },
  );
  await pilot.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
});

after(async () => {
  await pilot?.kill();
  await servers?.stop();
  await dns?.stop();
  await etcd?.close();
  await netns?.remove();
  if (netns) await rm(join('/etc/netns', netns.name), { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('HTTP on :80 by Host reaches the servers DNS gives for the service; url_beg routes a path to another service', async () => {
  await eventually('both myapp servers get traffic', async () => distinct(await sample(pilot, 'http://127.0.0.1:80/', 8, HOST)).join() === 'myapp-a,myapp-b', 20_000);
  await eventually('/api_A goes to api', async () => distinct(await sample(pilot, 'http://127.0.0.1:80/api_A/x', 4, HOST)).join() === 'api', 20_000);
  assert.deepEqual(distinct(await sample(pilot, 'http://127.0.0.1:80/', 2, ['-H', 'Host: other.example'])), ['<503>'], 'an unknown Host is not routed');
});

test('a tcp-service listens on external_port and forwards to internal_port of the DNS-named servers', async () => {
  const probe = [
    "const s=require('net').connect(3306,'127.0.0.1');let b='';",
    "s.on('data',d=>{b+=d;if(b.includes('ping')){console.log(b);s.end();}});",
    "s.on('connect',()=>s.write('ping'));s.on('error',e=>{console.log('ERR '+e.message)});setTimeout(()=>process.exit(1),3000);",
  ].join('');
  const answer = await eventually('the echo server answers through HAProxy', async () => {
    const r = await pilot.exec([process.execPath, '-e', probe]);
    return r.stdout.includes('galera-db:ping') ? r.stdout : undefined;
  }, 20_000);
  assert.match(answer, /^galera-db:ping/);
});

test('a certificate from the store: :443 serves TLS with it, and its file is mode 0600', async () => {
  const r = await eventually('TLS on :443', async () => {
    const out = await pilot.exec(['curl', '-sk', '-v', '--max-time', '5', '--resolve', 'example.org:443:127.0.0.1', 'https://example.org/']);
    return /^myapp-[ab]$/.test(out.stdout.trim()) ? out : undefined;
  }, 20_000);
  assert.match(r.stderr, /subject: CN=example\.org/);
  const certDir = join(dir, 'live', 'certs');
  const files = await readdir(certDir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^example\.org\./);
  assert.equal((await stat(join(certDir, files[0]!))).mode & 0o777, 0o600);
  assert.equal((await stat(certDir)).mode & 0o077, 0, 'the certs directory is private too');
  assert.ok(!pilot.lines.some((l) => l.includes('PRIVATE KEY')), 'the key is never printed');
});

test('a PEM-shaped bundle that is not a certificate is skipped naming its key; the certificates folder stays as it was; an unrelated change applies', async () => {
  const certDir = join(dir, 'live', 'certs');
  const contents = async () => Object.fromEntries(await Promise.all((await readdir(certDir)).map(async (f) => [f, await readFile(join(certDir, f), 'utf8')] as const)));
  const before = await contents();
  // PEM-shaped but not a certificate: the layout parses it as HAProxy would and leaves it out
  // (before, only HAProxy refused it, and the pass had to find and exclude it).
  const fake = '-----BEGIN CERTIFICATE-----\nQUJDREVGR0hJSktMTU5PUA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUA==\n-----END PRIVATE KEY-----\n';
  await etcd.ctl(['put', `${BASE}/certs/bad.example`], fake);
  // …and, at the same time, a valid change from the same store.
  await etcd.ctl(['put', `${BASE}/tcp-services/mysql2/internal_port`, '3307']);
  await etcd.ctl(['put', `${BASE}/tcp-services/mysql2/external_port`, '3310']);
  const line = await pilot.waitForLine((l) => l.includes('skipped') && l.includes(`${BASE}/certs/bad.example`));
  assert.match(line, /not a certificate/);
  assert.ok(!line.includes('QUJDREVG'), 'the bundle is never printed');
  await eventually('the valid change applied', async () => (/^listen tcp-mysql2$/m.test(await readFile(join(dir, 'haproxy.cfg'), 'utf8')) ? true : undefined), 20_000);
  assert.deepEqual(await contents(), before, 'the certificates folder is byte-for-byte as it was');
  const out = await pilot.exec(['curl', '-sk', '--max-time', '5', '--resolve', 'example.org:443:127.0.0.1', 'https://example.org/']);
  assert.match(out.stdout.trim(), /^myapp-[ab]$/);
  assert.equal((await pilot.http('/health', 7778)).status, 200, 'one skipped entry does not make the pilot unhealthy');
  await etcd.ctl(['del', `${BASE}/certs/bad.example`]);
  await etcd.ctl(['del', '--prefix', `${BASE}/tcp-services/mysql2/`]);
});

test('an entry only HAProxy can refuse (its port held by another process) is found, left out and reported; an unrelated change applies', async () => {
  // Something else in the namespace holds :3320: the layout cannot know, the port preflight does.
  const holder = spawn(netns.enter[0]!, [...netns.enter.slice(1), process.execPath, '-e', "require('net').createServer().listen(3320,'0.0.0.0',()=>console.log('held'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    await etcd.ctl(['txn'], [
      '', // no compare: a transaction that always succeeds, so both entries come in one snapshot
      `put ${BASE}/tcp-services/taken/internal_port 3307`,
      `put ${BASE}/tcp-services/taken/external_port 3320`,
      `put ${BASE}/tcp-services/mysql3/internal_port 3307`,
      `put ${BASE}/tcp-services/mysql3/external_port 3321`,
      '',
      '',
    ].join('\n') + '\n');
    const status = await eventually('the valid entry applied, the refused one reported', async () => {
      const st = JSON.parse((await pilot.http('/status', 7778)).body) as { excluded: { source: string; entry: string; reason: string }[] };
      const cfg = await readFile(join(dir, 'haproxy.cfg'), 'utf8');
      return /^listen tcp-mysql3$/m.test(cfg) && !/^listen tcp-taken$/m.test(cfg) && st.excluded.some((e) => e.entry === 'tcp-taken') ? st : undefined;
    }, 20_000);
    const refused = status.excluded.find((e) => e.entry === 'tcp-taken')!;
    assert.equal(refused.source, 'etcd');
    assert.match(refused.reason, /HAProxy refused it: .*3320/);
    assert.equal((await pilot.http('/health', 7778)).status, 200, 'one refused entry does not make the pilot unhealthy');
  } finally {
    holder.kill();
    await etcd.ctl(['del', '--prefix', `${BASE}/tcp-services/taken/`]);
    await etcd.ctl(['del', '--prefix', `${BASE}/tcp-services/mysql3/`]);
  }
});

test('a service with a missing key is skipped with a log line naming it; the others work', async () => {
  const line = await pilot.waitForLine((l) => l.includes('skipped') && l.includes(`${BASE}/services/broken`));
  assert.match(line, /port/);
  const cfg = await readFile(join(dir, 'haproxy.cfg'), 'utf8');
  assert.doesNotMatch(cfg, /broken/);
  assert.match(cfg, /backend myapp/);
});

test("the seed's literal HAPROXY-ID variable name selects the same keys", async () => {
  // startPilot goes through `sh -c`, and dash drops variables whose names are not shell names
  // ('HAPROXY-ID'); a container runtime passes them straight to PID 1. So run the binary
  // directly (no shell) in the namespace: `render` reads etcd and prints the config.
  const r = await execa(netns.enter[0]!, [...netns.enter.slice(1), process.execPath, MAIN, 'render'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCD_ENDPOINTS: etcd.endpoint, 'HAPROXY-ID': 'haproxy-1', STATS_PASSWORD: 'x', PILOT_RUN_DIR: join(dir, 'render') },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /^backend myapp$/m);
  assert.match(r.stdout, /^listen tcp-galera$/m);
  assert.match(r.stdout, /use_backend api if \{ path_beg \/api_A \}/);
  assert.match(r.stdout, /^resolvers system\n\s+parse-resolv-conf$/m, 'no resolver variable: the one from resolv.conf');
});

test('removing a service removes its route', async () => {
  const from = pilot.logs.length;
  await etcd.ctl(['del', '--prefix', `${BASE}/services/api/`]);
  // /api_A now falls to the Host rule of myapp.
  await eventually('/api_A no longer reaches api', async () => {
    const got = distinct(await sample(pilot, 'http://127.0.0.1:80/api_A/x', 6, HOST));
    return got.every((x) => x.startsWith('myapp-'));
  }, 20_000);
  // The new worker serves before the master confirms the reload: wait for the apply to finish.
  await pilot.waitForLog((l) => pilot.logs.indexOf(l) >= from && /^applied \(reload\)/.test(l.msg ?? ''));
  const cfg = await readFile(join(dir, 'haproxy.cfg'), 'utf8');
  assert.doesNotMatch(cfg, /backend api\b/);
  assert.doesNotMatch(cfg, /api_A/);
});

test('a DNS change moves traffic without a reload', async () => {
  const before = await reloads(pilot);
  assert.ok(Number.isFinite(before));
  await dns.setHosts(hosts(['127.0.0.6']));
  await eventually('traffic follows DNS to myapp-c', async () => distinct(await sample(pilot, 'http://127.0.0.1:80/', 6, HOST)).join() === 'myapp-c', 30_000);
  assert.equal(await reloads(pilot), before, 'HAProxy resolved the change itself: no reload');
});

test('a reload while DNS does not answer: the DNS-named servers start from their saved addresses and serve on', async () => {
  await eventually('myapp-c serves', async () => distinct(await sample(pilot, 'http://127.0.0.1:80/', 4, HOST)).join() === 'myapp-c', 30_000);
  const before = await reloads(pilot);
  dns.pause();
  try {
    // POST /reload answers once the new worker is confirmed.
    const reload = await pilot.exec(['curl', '-s', '-X', 'POST', '--max-time', '10', 'http://127.0.0.1:7778/reload']);
    assert.equal((JSON.parse(reload.stdout) as { ok: boolean }).ok, true, reload.stdout);
    assert.equal(await reloads(pilot), before + 1);
    // The new worker cannot resolve anything: it serves from the server state saved before the
    // reload (`init-addr last,none`), where `init-addr none` left every slot empty (503).
    assert.deepEqual(distinct(await sample(pilot, 'http://127.0.0.1:80/', 6, HOST)), ['myapp-c']);
  } finally {
    dns.resume();
  }
});

test('etcd dies: HAProxy keeps serving the last good config; /health turns 503 only after PILOT_STALE_AFTER', async () => {
  assert.equal((await pilot.http('/health', 7778)).status, 200);
  const killedAt = Date.now();
  await etcd.kill();
  await eventually('the etcd source is reported stale', async () => (await sourceStatus(pilot, 'etcd'))?.stale === true, 15_000);
  const soon = await pilot.http('/health', 7778);
  const seenStaleAfter = Date.now() - killedAt;
  assert.ok(seenStaleAfter < 2500, `precondition: etcd's failure noticed and checked ${seenStaleAfter} ms after the kill, before PILOT_STALE_AFTER`);
  assert.equal(soon.status, 200, 'not unhealthy before PILOT_STALE_AFTER');
  assert.deepEqual(distinct(await sample(pilot, 'http://127.0.0.1:80/', 4, HOST)), ['myapp-c']);
  const h = await eventually('/health 503', async () => {
    const r = await pilot.http('/health', 7778);
    return r.status === 503 ? r : undefined;
  }, 20_000);
  assert.ok(Date.now() - killedAt >= 3000);
  assert.match(h.body, /etcd/);
  assert.deepEqual(distinct(await sample(pilot, 'http://127.0.0.1:80/', 4, HOST)), ['myapp-c'], 'still serving');
});
