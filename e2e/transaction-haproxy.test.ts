/**
 * The transaction against a real HAProxy master (2.6 here), with the embedded templates and the
 * product's supervisor: reloads that serve the new config, rejected candidates (a certificate
 * HAProxy refuses) that leave every live file alone, the bind-port preflight, no-op applies and
 * runtime API changes without a reload. One master for the whole file, scenarios in order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, get, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiscoveredBackend, DiscoveredServer } from '../src/state/model.js';
import { startTransactionRig, type TransactionRig } from './support/transaction-haproxy.js';
import { freePort } from './support/ports.js';

function listenHttp(name: string): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    // Connection: close, so HAProxy opens a new server connection per request and a moved
    // server is reached at its new address on the very next request (no idle-connection reuse).
    const s = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(name));
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => resolve(s));
  });
}

const portOf = (s: HttpServer | TcpServer): number => (s.address() as { port: number }).port;


/** GET on a fresh connection (agent: false) through HAProxy. */
function fetchBody(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const web = (servers: DiscoveredServer[], port: number): DiscoveredBackend => ({ name: 'web', mode: 'http', servers, route: { port }, source: 'e2e' });

let rig: TransactionRig;
let a: HttpServer;
let b: HttpServer;
let feA: number;
let servers: DiscoveredServer[];
let backends: DiscoveredBackend[];
const live = () => readFile(rig.generations.liveConfig, 'utf8');
const workers = () => rig.master.status().workers;

before(async () => {
  a = await listenHttp('A');
  b = await listenHttp('B');
  feA = await freePort();
  servers = [{ name: 's1', host: '127.0.0.1', port: portOf(a) }];
  backends = [web(servers, feA)];
  rig = await startTransactionRig(backends);
});

after(async () => {
  await rig?.close();
  await Promise.all([a, b].filter(Boolean).map((s) => new Promise((r) => s.close(r))));
});

test('the initial config serves', async () => {
  assert.equal(await fetchBody(feA), '200 A');
});

test('an unchanged candidate does nothing: same worker, no reload', async () => {
  const before = workers();
  const r = await rig.transaction.apply(await rig.candidate(backends), 'unchanged');
  assert.deepEqual([r.ok, r.kind], [true, 'none']);
  assert.deepEqual(workers(), before);
});

test('a server address change goes through the runtime API: same worker, traffic moves, the live file mirrors it', async () => {
  const before = workers();
  servers = [{ name: 's1', host: '127.0.0.1', port: portOf(b) }];
  backends = [web(servers, feA)];
  const next = await rig.candidate(backends);
  const r = await rig.transaction.apply(next, 'server moved');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  assert.deepEqual(r.ops, [`set server web/s1 addr 127.0.0.1 port ${portOf(b)}`]);
  assert.equal(await fetchBody(feA), '200 B');
  assert.deepEqual(workers(), before, 'no new worker');
  assert.equal(await live(), next.text, 'a later reload keeps serving B');
});

test('a valid change that needs a reload: a new worker serves the new config', async () => {
  const before = workers();
  const feB = await freePort();
  servers = [...servers, { name: 's2', host: '127.0.0.1', port: portOf(a) }];
  backends = [web(servers, feA), { ...web([{ name: 's1', host: '127.0.0.1', port: portOf(a) }], feB), name: 'web2' }];
  const r = await rig.transaction.apply(await rig.candidate(backends), 'new listener and server');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'reload');
  assert.ok(workers().every((w) => !before.includes(w)), `new worker: ${before} → ${workers()}`);
  assert.equal(await fetchBody(feB), '200 A');
  const bodies = new Set([await fetchBody(feA), await fetchBody(feA), await fetchBody(feA)]);
  assert.deepEqual([...bodies].sort(), ['200 A', '200 B'], 'roundrobin reaches both servers');
  assert.equal(rig.transaction.status().reloads, 1);
});

test('a candidate whose certificate HAProxy refuses changes nothing HAProxy reads; it is kept whole for inspection', async () => {
  const before = workers();
  const liveBefore = await live();
  const liveFiles = await readdir(rig.generations.liveDir);
  const routed: DiscoveredBackend = { name: 'site', mode: 'http', servers: [{ name: 's1', host: '127.0.0.1', port: portOf(a) }], route: { domain: 'example.org' }, source: 'e2e' };
  const bad = await rig.candidate([...backends, routed], { files: { 'certs/example.org.pem': '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n' } });
  const r = await rig.transaction.apply(bad, 'bad certificate');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_CHECK');
  const rejected = rig.generations.rejectedDir;
  assert.equal(r.error?.details?.rejected, rejected);
  assert.ok(r.error?.message.includes(join(rejected, 'haproxy.cfg')), `the message points at the kept copy: ${r.error?.message}`);
  assert.equal(await readFile(join(rejected, 'haproxy.cfg'), 'utf8'), bad.text);
  assert.match(await readFile(join(rejected, 'certs/example.org.pem'), 'utf8'), /not a certificate/);
  assert.equal(await live(), liveBefore);
  assert.deepEqual(await readdir(rig.generations.liveDir), liveFiles, 'no certificate reached the live folder');
  assert.deepEqual(workers(), before);
  assert.equal(rig.transaction.status().rejectedPath, rejected);
  assert.match(await fetchBody(feA), /^200 [AB]$/);
});

test('a candidate binding a port another socket holds is refused before the reload', async (t) => {
  const holder = createTcpServer();
  await new Promise<void>((r) => holder.listen({ host: '0.0.0.0', port: 0 }, () => r()));
  t.after(() => new Promise<void>((r) => holder.close(() => r())));
  const busy = portOf(holder);
  const before = workers();
  const liveBefore = await live();
  const r = await rig.transaction.apply(await rig.candidate([...backends, { ...web(servers, busy), name: 'busy' }]), 'busy port');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_PORT_BUSY');
  assert.ok(r.error?.message.includes(`:${busy}`), r.error?.message);
  assert.deepEqual(workers(), before, 'no reload was attempted');
  assert.equal(await live(), liveBefore);
  assert.match(await fetchBody(feA), /^200 [AB]$/);
});

test('after the failures, a good candidate applies again', async () => {
  servers = servers.map((s) => ({ ...s, weight: 3 }));
  backends = [web(servers, feA), backends[1]!];
  const r = await rig.transaction.apply(await rig.candidate(backends), 'weights');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  const state = await rig.master.runtime('show servers state web');
  // srv_uweight is the 8th column of `show servers state` (2.6).
  const weights = state.split('\n').filter((l) => /^\d+ web /.test(l)).map((l) => l.split(' ')[7]);
  assert.deepEqual(weights, ['3', '3']);
  assert.equal(rig.transaction.status().lastApply?.ok, true);
});
