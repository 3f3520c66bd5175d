import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PilotError } from '../errors.js';
import { silentLogger } from '../log.js';
import type { DiscoveredBackend, DiscoveredServer } from '../state/model.js';
import type { ExitInfo, HaproxyMaster, MasterStatus, ReloadResult } from '../haproxy/master.js';
import type { CheckOptions } from './check.js';
import { createApplier, runtimeAnswerOk, sha256, type ApplierOptions, type ApplyCandidate } from './applier.js';
import type { BindPort } from './ports.js';

interface FakeMaster {
  calls: string[];
  reloadResult: ReloadResult;
  reloadDelayMs: number;
  answer: (cmd: string) => string;
  maxActive: number;
  master: HaproxyMaster;
}

/** A master that records what it is asked; reload/runtime answers are scripted per test. */
function fakeMaster(): FakeMaster {
  let active = 0;
  const m: FakeMaster = {
    calls: [],
    reloadResult: { ok: true, workers: [2], durationMs: 1 },
    reloadDelayMs: 0,
    answer: (cmd) => (cmd.includes(' addr ') ? "IP changed from '10.0.0.1' to '10.0.0.9' by 'stats socket command'\n" : '\n'),
    maxActive: 0,
    master: {
      start: async () => {},
      reload: async (reason: string) => {
        active++;
        m.maxActive = Math.max(m.maxActive, active);
        m.calls.push(`reload ${reason}`);
        await new Promise((r) => setTimeout(r, m.reloadDelayMs));
        active--;
        return m.reloadResult;
      },
      runtime: async (command: string) => {
        m.calls.push(command);
        return m.answer(command);
      },
      masterCommand: async () => '',
      status: (): MasterStatus => ({ masterPid: 1, workers: [2], oldWorkers: [], reloads: 0 }),
      stop: async (): Promise<ExitInfo> => ({ code: 0, signal: null }),
      signal: () => {},
      exited: new Promise<ExitInfo>(() => {}),
    },
  };
  return m;
}

const srv = (name: string, host: string, port: number, extra: Partial<DiscoveredServer> = {}): DiscoveredServer => ({ name, host, port, ...extra });

/** A render shaped like templates/partials/discovered.hbs. */
function candidate(servers: DiscoveredServer[], opts: { extraBind?: string; bad?: boolean } = {}): ApplyCandidate {
  const backends: DiscoveredBackend[] = [{ name: 'web', mode: 'http', servers, source: 'kv' }];
  const lines = ['global', '    maxconn 100', 'frontend fe', '    bind :5000'];
  if (opts.extraBind) lines.push(`    bind ${opts.extraBind}`);
  if (opts.bad) lines.push('    bogus_keyword');
  lines.push('    default_backend web', '# backend web (source kv)', 'backend web', '    balance roundrobin');
  for (const s of servers) {
    const params = ['check'];
    if (s.state === 'maint') params.push('disabled');
    if (s.state === 'drain') params.push('weight 0');
    else if (s.weight !== undefined) params.push(`weight ${s.weight}`);
    lines.push(`    server ${s.name} ${s.host}:${s.port} ${params.join(' ')}`);
  }
  return { text: `${lines.join('\n')}\n`, backends };
}

async function setup(t: { after(fn: () => Promise<void>): void }, extra: Partial<ApplierOptions> & { initialFile?: ApplyCandidate } = {}) {
  const runDir = await mkdtemp(join(tmpdir(), 'pilot-applier-'));
  t.after(() => rm(runDir, { recursive: true, force: true }));
  const configPath = join(runDir, 'haproxy.cfg');
  if (extra.initialFile) await writeFile(configPath, extra.initialFile.text);
  const fm = fakeMaster();
  const checked: string[] = [];
  const portChecks: { next: BindPort[]; current: BindPort[] }[] = [];
  let now = 1000;
  // The fake check stands in for `haproxy -c` (tested for real in check.test.ts and e2e).
  const check = async ({ path }: CheckOptions) => {
    const text = await readFile(path, 'utf8');
    checked.push(text);
    if (text.includes('bogus_keyword')) {
      throw new PilotError('E_CHECK', `haproxy -c rejected ${path}: parsing [${path}:6] : unknown keyword 'bogus_keyword'`, { details: { file: path, line: 6, output: 'full output' } });
    }
    return { output: 'Configuration file is valid', warnings: [] };
  };
  const ports = async (next: BindPort[], current: BindPort[]) => {
    portChecks.push({ next, current });
    const busy = next.find((p) => p.port === 6666);
    if (busy) throw new PilotError('E_PORT_BUSY', `candidate config binds 0.0.0.0:${busy.port}, which is already in use`);
  };
  const applier = createApplier({
    master: fm.master,
    bin: 'haproxy',
    runDir,
    configPath,
    check,
    ports,
    log: silentLogger(),
    clock: () => (now += 5),
    ...extra,
  });
  const config = () => readFile(configPath, 'utf8');
  const rejected = () => readFile(join(runDir, 'haproxy.cfg.rejected'), 'utf8');
  return { applier, fm, checked, portChecks, config, rejected, runDir, configPath };
}

const A = [srv('a', '10.0.0.1', 80), srv('b', '10.0.0.2', 80)];

test('unchanged text does nothing: no check, no runtime op, no reload', async (t) => {
  const initial = candidate(A);
  const { applier, fm, checked } = await setup(t, { initial, initialFile: initial });
  const r = await applier.apply(candidate(A), 'source kv');
  assert.equal(r.ok, true);
  assert.equal(r.kind, 'none');
  assert.deepEqual(fm.calls, []);
  assert.deepEqual(checked, []);
  assert.equal(applier.status().configHash, sha256(initial.text));
});

test('first apply with no known state: check, port preflight, install, reload', async (t) => {
  const { applier, fm, checked, portChecks, config, runDir } = await setup(t);
  const c = candidate(A);
  const r = await applier.apply(c, 'start');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'reload');
  assert.deepEqual(fm.calls, ['reload start']);
  assert.deepEqual(checked, [c.text]);
  assert.deepEqual(portChecks[0]?.next, [{ address: '0.0.0.0', port: 5000 }]);
  assert.equal(await config(), c.text);
  await assert.rejects(access(join(runDir, 'haproxy.cfg.candidate')), 'the candidate was moved, not copied');
  const s = applier.status();
  assert.equal(s.reloads, 1);
  assert.equal(s.lastReloadAt !== undefined, true);
  assert.deepEqual(s.lastApply && { ok: s.lastApply.ok, kind: s.lastApply.kind }, { ok: true, kind: 'reload' });
  assert.equal(s.configHash, sha256(c.text));
});

test('without `initial`, the running config file is the base: same text → nothing', async (t) => {
  const c = candidate(A);
  const { applier, fm } = await setup(t, { initialFile: c });
  assert.equal((await applier.apply(c, 'x')).kind, 'none');
  assert.deepEqual(fm.calls, []);
});

test('an address change goes through the runtime API, then the file is updated for the next reload', async (t) => {
  const initial = candidate(A);
  const { applier, fm, checked, config } = await setup(t, { initial, initialFile: initial });
  const next = candidate([srv('a', '10.0.0.9', 8080), srv('b', '10.0.0.2', 80)]);
  const r = await applier.apply(next, 'source kv');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'runtime');
  assert.deepEqual(fm.calls, ['set server web/a addr 10.0.0.9 port 8080']);
  assert.deepEqual(checked, [next.text], 'checked before anything is sent');
  assert.equal(await config(), next.text);
  assert.equal(applier.status().runtimeOps, 1);
  assert.equal(applier.status().reloads, 0);
});

test('a removed server goes to maint, and comes back to ready, with no reload', async (t) => {
  const initial = candidate(A);
  const { applier, fm, config } = await setup(t, { initial, initialFile: initial });
  const without = candidate([srv('a', '10.0.0.1', 80)]);
  assert.equal((await applier.apply(without, 'b gone')).kind, 'runtime');
  assert.equal(await config(), without.text, 'the file no longer has b: the next reload drops it');
  assert.equal((await applier.apply(candidate(A), 'b back')).kind, 'runtime');
  assert.deepEqual(fm.calls, ['set server web/b state maint', 'set server web/b state ready']);
});

test('a new server needs a reload', async (t) => {
  const initial = candidate(A);
  const { applier, fm } = await setup(t, { initial, initialFile: initial });
  const r = await applier.apply(candidate([...A, srv('c', '10.0.0.3', 80)]), 'scale up');
  assert.equal(r.kind, 'reload');
  assert.match(r.planReason ?? '', /server web\/c added/);
  assert.deepEqual(fm.calls, ['reload scale up']);
});

test('a runtime op HAProxy refuses falls back to a reload of the checked candidate', async (t) => {
  const initial = candidate(A);
  const { applier, fm, config } = await setup(t, { initial, initialFile: initial });
  fm.answer = (cmd) => (cmd.includes('weight') ? "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n" : '\n');
  const next = candidate([srv('a', '10.0.0.1', 80, { weight: 7 }), srv('b', '10.0.0.2', 80)]);
  const r = await applier.apply(next, 'weights');
  assert.equal(r.ok, true);
  assert.equal(r.kind, 'reload');
  assert.match(r.planReason ?? '', /runtime op failed.*static LB/);
  assert.deepEqual(fm.calls, ['set server web/a weight 7', 'reload weights']);
  assert.equal(await config(), next.text);
});

test('haproxy -c failure keeps the running config, keeps the rejected candidate, shows in status', async (t) => {
  const initial = candidate(A);
  const { applier, fm, config, rejected } = await setup(t, { initial, initialFile: initial });
  const bad = candidate([srv('a', '10.0.0.9', 80), srv('b', '10.0.0.2', 80)], { bad: true });
  const r = await applier.apply(bad, 'broken template');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_CHECK');
  assert.match(r.error?.message ?? '', /haproxy\.cfg\.candidate:6/);
  assert.deepEqual(fm.calls, [], 'no runtime op and no reload for a rejected candidate');
  assert.equal(await config(), initial.text);
  assert.equal(await rejected(), bad.text);
  const s = applier.status();
  assert.equal(s.lastApply?.ok, false);
  assert.equal(s.lastApply?.error?.code, 'E_CHECK');
  assert.equal(s.lastApply?.error?.details?.output, 'full output');
  assert.equal(s.applyFailures, 1);
  assert.equal(s.configHash, sha256(initial.text));
  assert.match(s.rejectedPath ?? '', /haproxy\.cfg\.rejected$/);
  // Fixing the input applies normally, against the config that still runs.
  const good = candidate([srv('a', '10.0.0.9', 80), srv('b', '10.0.0.2', 80)]);
  const r2 = await applier.apply(good, 'fixed');
  assert.equal(r2.ok, true);
  assert.equal(r2.kind, 'runtime');
  assert.equal(applier.status().lastApply?.ok, true);
});

test('a busy new port is refused before the reload', async (t) => {
  const initial = candidate(A);
  const { applier, fm, config, rejected, portChecks } = await setup(t, { initial, initialFile: initial });
  const next = candidate(A, { extraBind: ':6666' });
  const r = await applier.apply(next, 'new listener');
  assert.equal(r.ok, false);
  assert.equal(r.kind, 'reload');
  assert.equal(r.error?.code, 'E_PORT_BUSY');
  assert.deepEqual(fm.calls, []);
  assert.equal(await config(), initial.text);
  assert.equal(await rejected(), next.text);
  assert.deepEqual(portChecks[0]?.current, [{ address: '0.0.0.0', port: 5000 }], 'the running ports are passed as already held');
});

test('a reload the master refuses restores the previous config file', async (t) => {
  const initial = candidate(A);
  const { applier, fm, config, rejected } = await setup(t, { initial, initialFile: initial });
  fm.reloadResult = { ok: false, workers: [2], error: 'new worker exited', durationMs: 3 };
  const next = candidate([...A, srv('c', '10.0.0.3', 80)]);
  const r = await applier.apply(next, 'scale up');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_RELOAD');
  assert.match(r.error?.message ?? '', /new worker exited/);
  assert.equal(await config(), initial.text);
  assert.equal(await rejected(), next.text);
  assert.equal(applier.status().reloads, 0);
});

test('force reloads an unchanged config (SIGHUP, POST /reload)', async (t) => {
  const initial = candidate(A);
  const { applier, fm } = await setup(t, { initial, initialFile: initial });
  const r = await applier.apply(candidate(A), 'signal SIGHUP', { force: true });
  assert.equal(r.kind, 'reload');
  assert.equal(r.ok, true);
  assert.deepEqual(fm.calls, ['reload signal SIGHUP']);
});

test('applies never overlap and run in call order', async (t) => {
  const { applier, fm } = await setup(t);
  fm.reloadDelayMs = 30;
  const results = await Promise.all([
    applier.apply(candidate(A, { extraBind: ':7001' }), 'one'),
    applier.apply(candidate(A, { extraBind: ':7002' }), 'two'),
    applier.apply(candidate(A, { extraBind: ':7003' }), 'three'),
  ]);
  assert.deepEqual(results.map((r) => r.ok), [true, true, true]);
  assert.deepEqual(fm.calls, ['reload one', 'reload two', 'reload three']);
  assert.equal(fm.maxActive, 1);
});

test('runtimeAnswerOk reads HAProxy 2.6 answers', () => {
  assert.equal(runtimeAnswerOk({ kind: 'state' }, '\n'), true);
  assert.equal(runtimeAnswerOk({ kind: 'weight' }, 'No such server.\n'), false);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "IP changed from '127.0.0.1' to '127.0.0.2', port changed from '1' to '8081' by 'stats socket command'\n"), true);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "no need to change the addr, no need to change the port by 'stats socket command'\n"), true);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "Invalid addr 'foo.example' by 'stats socket command'\n"), false);
  assert.equal(runtimeAnswerOk({ kind: 'state' }, "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"), false);
});
