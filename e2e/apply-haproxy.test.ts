/**
 * The applier against a real HAProxy master (2.6 here): reloads that serve the new config,
 * rejected candidates that leave the running one alone, the bind-port preflight, no-op applies
 * and runtime API changes without a reload. One master for the whole file, scenarios in order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, get, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import type { DiscoveredBackend, DiscoveredServer } from '../src/state/model.js';
import { createApplier, type Applier, type ApplyCandidate } from '../src/apply/applier.js';
import { createTestMaster, type TestMaster } from './support/apply-haproxy.js';
import { freePort } from './support/ports.js';

const BIN = process.env.HAPROXY_BIN ?? 'haproxy';

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

interface Listener {
  port: number;
}

/** A small render in the shape of templates/partials/discovered.hbs. */
function render(servers: DiscoveredServer[], listeners: Listener[], extra = ''): ApplyCandidate {
  const backends: DiscoveredBackend[] = [{ name: 'web', mode: 'http', servers, source: 'e2e' }];
  const lines = [
    'global',
    '    maxconn 200',
    '    hard-stop-after 5s',
    'defaults',
    '    mode http',
    '    timeout connect 2s',
    '    timeout client 10s',
    '    timeout server 10s',
  ];
  listeners.forEach((l, i) => lines.push(`frontend fe${i}`, `    bind 127.0.0.1:${l.port}`, '    default_backend web'));
  if (extra) lines.push(extra);
  lines.push('backend web', '    balance roundrobin');
  for (const s of servers) lines.push(`    server ${s.name} ${s.host}:${s.port}${s.weight === undefined ? '' : ` weight ${s.weight}`}`);
  return { text: `${lines.join('\n')}\n`, backends };
}

let dir: string;
let master: TestMaster;
let applier: Applier;
let a: HttpServer;
let b: HttpServer;
let feA: number;
let configPath: string;
let servers: DiscoveredServer[];
let listeners: Listener[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pilot-apply-e2e-'));
  a = await listenHttp('A');
  b = await listenHttp('B');
  feA = await freePort();
  configPath = join(dir, 'haproxy.cfg');
  servers = [{ name: 's1', host: '127.0.0.1', port: portOf(a) }];
  listeners = [{ port: feA }];
  const initial = render(servers, listeners);
  await writeFile(configPath, initial.text);
  master = createTestMaster({ bin: BIN, configPath, socket: join(dir, 'master.sock') });
  await master.start();
  applier = createApplier({ master, bin: BIN, runDir: dir, configPath, log: silentLogger(), initial });
});

after(async () => {
  if (master) await master.stop('fast');
  await Promise.all([a, b].filter(Boolean).map((s) => new Promise((r) => s.close(r))));
  await rm(dir, { recursive: true, force: true });
});

test('the initial config serves', async () => {
  assert.equal(await fetchBody(feA), '200 A');
});

test('an unchanged candidate does nothing: same worker, no reload', async () => {
  const before = await master.showProc();
  const r = await applier.apply(render(servers, listeners), 'unchanged');
  assert.equal(r.ok, true);
  assert.equal(r.kind, 'none');
  const after = await master.showProc();
  assert.deepEqual(after.workers, before.workers);
  assert.equal(after.reloads, before.reloads);
});

test('a server address change goes through the runtime API: same worker, traffic moves', async () => {
  const before = await master.showProc();
  servers = [{ name: 's1', host: '127.0.0.1', port: portOf(b) }];
  const next = render(servers, listeners);
  const r = await applier.apply(next, 'server moved');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  assert.deepEqual(r.ops, [`set server web/s1 addr 127.0.0.1 port ${portOf(b)}`]);
  assert.equal(await fetchBody(feA), '200 B');
  const after = await master.showProc();
  assert.deepEqual(after.workers, before.workers, 'no new worker');
  assert.equal(after.reloads, before.reloads);
  // The file already says B, so a later reload keeps serving B.
  assert.equal(await readFile(configPath, 'utf8'), next.text);
});

test('a valid change that needs a reload: a new worker serves the new config', async () => {
  const before = await master.showProc();
  const feB = await freePort();
  listeners = [...listeners, { port: feB }];
  servers = [...servers, { name: 's2', host: '127.0.0.1', port: portOf(a) }];
  const r = await applier.apply(render(servers, listeners), 'new listener and server');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'reload');
  const after = await master.showProc();
  assert.ok(after.workers.every((w) => !before.workers.includes(w)), `new worker: ${before.workers} → ${after.workers}`);
  // The new listener answers, and roundrobin reaches both servers.
  const bodies = new Set([await fetchBody(feB), await fetchBody(feB), await fetchBody(feA), await fetchBody(feA)]);
  assert.deepEqual([...bodies].sort(), ['200 A', '200 B']);
  assert.equal(applier.status().reloads, 1);
});

test('an invalid candidate keeps the old config serving; the error names file:line; the candidate is kept', async () => {
  const before = await master.showProc();
  const running = await readFile(configPath, 'utf8');
  const bad = render(servers, listeners, 'frontend broken\n    bind 127.0.0.1:1\n    no_such_keyword on');
  const badLine = bad.text.split('\n').indexOf('    no_such_keyword on') + 1;
  const r = await applier.apply(bad, 'broken');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_CHECK');
  assert.ok(r.error?.message.includes(`haproxy.cfg.candidate:${badLine}]`), r.error?.message);
  assert.match(r.error?.message ?? '', /no_such_keyword/);
  assert.match(String(r.error?.details?.output), /\[ALERT\]/);
  const rejected = join(dir, 'haproxy.cfg.rejected');
  assert.equal(await readFile(rejected, 'utf8'), bad.text);
  assert.equal(r.error?.details?.rejected, rejected);
  await assert.rejects(access(join(dir, 'haproxy.cfg.candidate')));
  assert.equal(await readFile(configPath, 'utf8'), running);
  const after = await master.showProc();
  assert.deepEqual(after.workers, before.workers);
  assert.equal(after.reloads, before.reloads);
  assert.equal(applier.status().lastApply?.ok, false);
  assert.match(await fetchBody(feA), /^200 [AB]$/);
});

test('a candidate binding a port another socket holds is refused before the reload', async (t) => {
  const holder = createTcpServer();
  await new Promise<void>((r) => holder.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  t.after(() => new Promise<void>((r) => holder.close(() => r())));
  const busy = portOf(holder);
  const before = await master.showProc();
  const running = await readFile(configPath, 'utf8');
  const r = await applier.apply(render(servers, [...listeners, { port: busy }]), 'busy port');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_PORT_BUSY');
  assert.ok(r.error?.message.includes(`127.0.0.1:${busy}`), r.error?.message);
  const after = await master.showProc();
  assert.deepEqual(after.workers, before.workers);
  assert.equal(after.reloads, before.reloads, 'no reload was attempted');
  assert.equal(await readFile(configPath, 'utf8'), running);
  assert.match(await fetchBody(feA), /^200 [AB]$/);
});

test('after the failures, a good candidate applies again', async () => {
  servers = servers.map((s) => ({ ...s, weight: 3 }));
  const r = await applier.apply(render(servers, listeners), 'weights');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  const state = await master.runtime('show servers state web');
  // srv_uweight is the 8th column of `show servers state` (2.6).
  const weights = state.split('\n').filter((l) => /^\d+ web /.test(l)).map((l) => l.split(' ')[7]);
  assert.deepEqual(weights, ['3', '3']);
  assert.equal(applier.status().lastApply?.ok, true);
});
