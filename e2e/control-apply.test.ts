/**
 * The control server over a real applier and a real HAProxy master: a rejected candidate shows
 * on /status and /metrics and turns /health (and `haproxy-pilot healthcheck`) unhealthy; the next
 * good apply makes it healthy again; POST /reload reloads through the master.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { createApplier, type Applier, type ApplyCandidate } from '../src/apply/applier.js';
import { startControlServer, type ControlServer } from '../src/control/server.js';
import { healthcheck } from '../src/control/healthcheck.js';
import { createTestMaster, type TestMaster } from './support/apply-haproxy.js';
import { freePort } from './support/ports.js';

const BIN = process.env.HAPROXY_BIN ?? 'haproxy';


function render(fePort: number, serverPort: number, extra = ''): ApplyCandidate {
  const text = [
    'global',
    '    maxconn 100',
    '    hard-stop-after 5s',
    'defaults',
    '    mode http',
    '    timeout connect 2s',
    '    timeout client 10s',
    '    timeout server 10s',
    'frontend fe',
    `    bind 127.0.0.1:${fePort}`,
    '    default_backend web',
    ...(extra ? [extra] : []),
    'backend web',
    `    server s1 127.0.0.1:${serverPort}`,
    '',
  ].join('\n');
  return { text, backends: [{ name: 'web', mode: 'http', servers: [{ name: 's1', host: '127.0.0.1', port: serverPort }], source: 'e2e' }] };
}

let dir: string;
let master: TestMaster;
let applier: Applier;
let control: ControlServer;
let fe: number;
let base: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pilot-control-e2e-'));
  fe = await freePort();
  const initial = render(fe, 9);
  const configPath = join(dir, 'haproxy.cfg');
  await writeFile(configPath, initial.text);
  master = createTestMaster({ bin: BIN, configPath, socket: join(dir, 'master.sock') });
  await master.start();
  applier = createApplier({ master, bin: BIN, runDir: dir, configPath, log: silentLogger(), initial });
  let current = initial;
  control = await startControlServer({
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    status: () => ({ haproxy: master.status(), apply: applier.status() }),
    // The same rules as the composition root: master and a worker run, the last apply succeeded.
    health: async () => {
      const reasons: string[] = [];
      const proc = await master.showProc();
      if (!proc.masterPid) reasons.push('the HAProxy master is not running');
      else if (proc.workers.length === 0) reasons.push('no HAProxy worker is running');
      const last = applier.status().lastApply;
      if (last && !last.ok) reasons.push(`the last apply failed: ${last.error?.message}`);
      return reasons;
    },
    reload: () => applier.apply(current, 'POST /reload', { force: true }),
    metrics: () => ({ apply: applier.status(), sources: [] }),
  });
  base = `http://127.0.0.1:${control.address.port}`;
  // Keep `current` in step with what the tests apply, so POST /reload reloads the latest good one.
  applyGood = async (c) => {
    const r = await applier.apply(c, 'test');
    if (r.ok) current = c;
    return r;
  };
});

let applyGood: (c: ApplyCandidate) => ReturnType<Applier['apply']>;

after(async () => {
  if (control) await control.close();
  if (master) await master.stop('fast');
  await rm(dir, { recursive: true, force: true });
});

test('healthy at start', async () => {
  assert.equal(await healthcheck(control.address), 0);
  const res = await fetch(`${base}/health`);
  assert.deepEqual(await res.json(), { ok: true });
});

test('a rejected candidate: /status shows the error, /metrics counts it, /health is 503', async () => {
  const r = await applier.apply(render(fe, 9, 'frontend x\n    bind 127.0.0.1:1\n    what_is_this'), 'bad');
  assert.equal(r.ok, false);
  const status = (await (await fetch(`${base}/status`)).json()) as { apply: { lastApply: { ok: boolean; error: { code: string; message: string } }; rejectedPath: string } };
  assert.equal(status.apply.lastApply.ok, false);
  assert.equal(status.apply.lastApply.error.code, 'E_CHECK');
  assert.match(status.apply.lastApply.error.message, /haproxy\.cfg\.candidate:\d+\].*what_is_this/);
  assert.equal(status.apply.rejectedPath, join(dir, 'haproxy.cfg.rejected'));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^haproxy_pilot_apply_failures_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_last_apply_success 0$/m);
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 503);
  const body = (await health.json()) as { reasons: string[] };
  assert.match(body.reasons.join('\n'), /the last apply failed: haproxy -c rejected/);
  assert.equal(await healthcheck(control.address), 1);
});

test('a good apply makes it healthy again; POST /reload reloads through the master', async () => {
  const r = await applyGood(render(fe, 10));
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  assert.equal(await healthcheck(control.address), 0);

  const before = await master.showProc();
  const res = await fetch(`${base}/reload`, { method: 'POST' });
  assert.equal(res.status, 200);
  const result = (await res.json()) as { ok: boolean; kind: string };
  assert.deepEqual([result.ok, result.kind], [true, 'reload']);
  const after = await master.showProc();
  assert.ok(after.reloads > before.reloads);
  assert.ok(after.workers.every((w) => !before.workers.includes(w)));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^haproxy_pilot_reloads_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_runtime_ops_total 1$/m);
  assert.match(metrics, /^haproxy_pilot_last_apply_success 1$/m);
});
