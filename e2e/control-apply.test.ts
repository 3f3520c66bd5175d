/**
 * The control server over a real transaction and a real HAProxy master: a rejected candidate shows
 * on /status and /metrics and turns /health (and `haproxy-pilot healthcheck`) unhealthy; the next
 * good apply makes it healthy again; POST /reload reloads through the master.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../src/log.js';
import type { DiscoveredBackend } from '../src/state/model.js';
import type { Candidate } from '../src/candidate.js';
import { startControlServer, type ControlServer } from '../src/control/server.js';
import { healthcheck } from '../src/control/healthcheck.js';
import { healthReasons } from '../src/control/health.js';
import { startTransactionRig, type TransactionRig } from './support/transaction-haproxy.js';
import { freePort } from './support/ports.js';

const backendsOn = (fePort: number, serverPort: number): DiscoveredBackend[] => [
  { name: 'web', mode: 'http', servers: [{ name: 's1', host: '127.0.0.1', port: serverPort }], route: { port: fePort }, source: 'e2e' },
];

let rig: TransactionRig;
let control: ControlServer;
let fe: number;
let base: string;
let current: Candidate;

before(async () => {
  fe = await freePort();
  rig = await startTransactionRig(backendsOn(fe, 9));
  current = await rig.candidate(backendsOn(fe, 9));
  const { transaction, master } = rig;
  control = await startControlServer({
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    status: () => ({ haproxy: master.status(), apply: transaction.status() }),
    health: () => healthReasons(master.status(), transaction.status().lastApply, []),
    reload: () => transaction.apply(current, 'POST /reload', { force: true }),
    metrics: () => ({ apply: transaction.status(), sources: [] }),
  });
  base = `http://127.0.0.1:${control.address.port}`;
});

/** Applies and, when it worked, makes it what POST /reload reloads. */
async function applyGood(c: Candidate) {
  const r = await rig.transaction.apply(c, 'test');
  if (r.ok) current = c;
  return r;
}

after(async () => {
  if (control) await control.close();
  await rig?.close();
});

test('healthy at start', async () => {
  assert.equal(await healthcheck(control.address), 0);
  const res = await fetch(`${base}/health`);
  assert.deepEqual(await res.json(), { ok: true });
});

test('a rejected candidate: /status shows the error, /metrics counts it, /health is 503', async () => {
  const routed: DiscoveredBackend = { name: 'site', mode: 'http', servers: [{ name: 's1', host: '127.0.0.1', port: 9 }], route: { domain: 'example.org' }, source: 'e2e' };
  const bad = await rig.candidate([...backendsOn(fe, 9), routed], { files: { 'certs/what_is_this.pem': 'not a certificate\n' } });
  const r = await rig.transaction.apply(bad, 'bad');
  assert.equal(r.ok, false);
  const status = (await (await fetch(`${base}/status`)).json()) as { apply: { lastApply: { ok: boolean; error: { code: string; message: string } }; rejectedPath: string } };
  assert.equal(status.apply.lastApply.ok, false);
  assert.equal(status.apply.lastApply.error.code, 'E_CHECK');
  assert.match(status.apply.lastApply.error.message, /rejected\/haproxy\.cfg:\d+\].*what_is_this/);
  assert.equal(status.apply.rejectedPath, rig.generations.rejectedDir);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^haproxy_pilot_apply_failures_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_last_apply_success 0$/m);
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 503);
  const body = (await health.json()) as { reasons: string[] };
  assert.match(body.reasons.join('\n'), /the last change was not applied .*haproxy -c rejected/);
  assert.equal(await healthcheck(control.address), 1);
});

test('a good apply makes it healthy again; POST /reload reloads through the master', async () => {
  const r = await applyGood(await rig.candidate(backendsOn(fe, 10)));
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  assert.equal(await healthcheck(control.address), 0);

  const before = rig.master.status();
  const res = await fetch(`${base}/reload`, { method: 'POST' });
  assert.equal(res.status, 200);
  const result = (await res.json()) as { ok: boolean; kind: string };
  assert.deepEqual([result.ok, result.kind], [true, 'reload']);
  const after = rig.master.status();
  assert.ok(after.reloads > before.reloads);
  assert.ok(after.workers.every((w) => !before.workers.includes(w)));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^haproxy_pilot_reloads_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_runtime_ops_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_last_apply_success 1$/m);
});
