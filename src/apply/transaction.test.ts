/**
 * The transaction with the embedded templates and the real `haproxy -c`, against a scripted
 * master (a real one is in e2e/transaction-haproxy.test.ts): which plans become runtime commands,
 * which reload, and what a refusal leaves on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../log.js';
import { loadConfig } from '../config/load.js';
import { createBuilder, type Candidate } from '../candidate.js';
import type { DiscoveredBackend, DiscoveredServer } from '../state/model.js';
import type { ExitInfo, HaproxyMaster, MasterStatus, ReloadResult } from '../haproxy/master.js';
import { createGenerations } from './generations.js';
import { createTransaction, installFirst, runtimeAnswerOk } from './transaction.js';

/** A certificate and its key in one PEM, as the stores hold them. */
function selfSigned(dir: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=example.org',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8');
}

function fakeMaster() {
  const m = {
    calls: [] as string[],
    reloadResult: { ok: true, workers: [2], durationMs: 1 } as ReloadResult,
    answer: (cmd: string): string => (cmd.includes(' addr ') ? "IP changed from '10.0.0.1' to '10.0.0.9' by 'stats socket command'\n" : '\n'),
  };
  const master: HaproxyMaster = {
    start: async () => {},
    reload: async (reason) => {
      m.calls.push(`reload ${reason}`);
      return m.reloadResult;
    },
    runtime: async (command) => {
      m.calls.push(command);
      return m.answer(command);
    },
    runtimeBatch: async (commands) => commands.map((command) => {
      m.calls.push(command);
      return m.answer(command);
    }),
    masterCommand: async () => '',
    status: (): MasterStatus => ({ masterPid: 1, workers: [2], oldWorkers: [], reloads: 0 }),
    stop: async (): Promise<ExitInfo> => ({ code: 0, signal: null }),
    signal: () => {},
    exited: new Promise<ExitInfo>(() => {}),
  };
  return Object.assign(m, { master });
}

const srv = (name: string, host: string, port: number, extra: Partial<DiscoveredServer> = {}): DiscoveredServer => ({ name, host, port, ...extra });
const web = (servers: DiscoveredServer[]): DiscoveredBackend[] => [{ name: 'web', mode: 'http', servers, route: { port: 18080 }, source: 'kv' }];
const A = [srv('a', '10.0.0.1', 80), srv('b', '10.0.0.2', 80)];

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-transaction-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({ env: { PILOT_RUN_DIR: dir, STATS_PORT: '0', PILOT_DEMO: 'off', HAPROXY_SERVER_STATE_FILE: 'off' }, readFile: (p) => readFileSync(p, 'utf8'), fileExists: existsSync });
  const builder = createBuilder({ config, hasPrometheus: false });
  const candidate = (backends: DiscoveredBackend[], files: Record<string, string> = {}): Promise<Candidate> => builder.build({ keys: {}, backends, files, fileSources: {}, excluded: [] });
  const generations = createGenerations(dir);
  const deps = { bin: 'haproxy', generations, relativePaths: true, log: silentLogger() };
  const initial = await candidate(web(A));
  await installFirst(deps, initial);
  const fm = fakeMaster();
  // No port preflight here: the candidates bind ports nobody holds, and e2e tests the preflight.
  const transaction = createTransaction({ ...deps, master: fm.master, initial, ports: async () => {} });
  const live = () => readFile(generations.liveConfig, 'utf8');
  return { dir, fm, transaction, candidate, generations, initial, live };
}

test('unchanged: nothing is checked, sent or reloaded', async (t) => {
  const { transaction, candidate, fm } = await setup(t);
  const r = await transaction.apply(await candidate(web(A)), 'source kv');
  assert.deepEqual([r.ok, r.kind], [true, 'none']);
  assert.deepEqual(fm.calls, []);
});

test('an address change is a runtime command; the live file then mirrors it', async (t) => {
  const { transaction, candidate, fm, live } = await setup(t);
  const next = await candidate(web([srv('a', '10.0.0.9', 8080), A[1]!]));
  assert.equal(transaction.plan(next), 'runtime');
  const r = await transaction.apply(next, 'moved');
  assert.deepEqual([r.ok, r.kind], [true, 'runtime']);
  assert.deepEqual(fm.calls, ['set server web/a addr 10.0.0.9 port 8080']);
  assert.equal(await live(), next.text);
});

test('a removed server goes to maint and comes back ready, with no reload', async (t) => {
  const { transaction, candidate, fm, live } = await setup(t);
  const without = await candidate(web([A[0]!]));
  assert.equal((await transaction.apply(without, 'b gone')).kind, 'runtime');
  assert.equal(await live(), without.text, 'the file no longer has b: the next reload drops it');
  assert.equal((await transaction.apply(await candidate(web(A)), 'b back')).kind, 'runtime');
  assert.deepEqual(fm.calls, ['set server web/b state maint', 'set server web/b state ready']);
});

test('a new server is added at runtime with its check, and made ready: no reload', async (t) => {
  const { transaction, candidate, fm, live } = await setup(t);
  fm.answer = (cmd) => (cmd.startsWith('add server') ? 'New server registered.\n' : '\n');
  const next = await candidate(web([...A, srv('c', '10.0.0.3', 80)]));
  const r = await transaction.apply(next, 'scale up');
  assert.deepEqual([r.ok, r.kind], [true, 'runtime']);
  assert.deepEqual(fm.calls, ['add server web/c 10.0.0.3:80 check', 'enable health web/c', 'set server web/c state ready']);
  assert.equal(await live(), next.text, 'the file has c: a later reload keeps it');
});

test('a runtime command HAProxy refuses falls back to a checked reload', async (t) => {
  const { transaction, candidate, fm, live } = await setup(t);
  fm.answer = (cmd) => (cmd.includes('weight') ? "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n" : '\n');
  const next = await candidate(web([srv('a', '10.0.0.1', 80, { weight: 7 }), A[1]!]));
  const r = await transaction.apply(next, 'weights');
  assert.deepEqual([r.ok, r.kind], [true, 'reload']);
  assert.match(r.planReason ?? '', /runtime op failed.*static LB/);
  assert.deepEqual(fm.calls, ['set server web/a weight 7', 'reload weights']);
  assert.equal(await live(), next.text);
});

test('a certificate change reloads, with the certificate staged next to the config', async (t) => {
  const { transaction, candidate, fm, generations, dir } = await setup(t);
  const pem = selfSigned(dir);
  const routed: DiscoveredBackend = { name: 'site', mode: 'http', servers: [A[0]!], route: { domain: 'example.org' }, source: 'etcd' };
  const r = await transaction.apply(await candidate([...web(A), routed], { 'certs/example.org.pem': pem }), 'cert');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.kind, 'reload');
  assert.deepEqual(fm.calls, ['reload cert']);
  assert.equal(await readFile(join(generations.liveDir, 'certs/example.org.pem'), 'utf8'), pem);
});

test('a reload the master refuses puts the previous generation back and keeps the candidate', async (t) => {
  const { transaction, candidate, fm, generations, initial, live, dir } = await setup(t);
  const before = await readlink(generations.liveDir);
  fm.reloadResult = { ok: false, workers: [2], error: 'new worker exited', durationMs: 3 };
  const next = await candidate([...web(A), { name: 'other', mode: 'tcp', servers: [A[0]!], route: { port: 18081 }, source: 'kv' }]);
  const r = await transaction.apply(next, 'scale up');
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'E_RELOAD');
  assert.match(r.error?.message ?? '', /new worker exited/);
  assert.equal(await readlink(generations.liveDir), before);
  assert.equal(await live(), initial.text);
  assert.equal(await readFile(join(dir, 'rejected', 'haproxy.cfg'), 'utf8'), next.text);
  assert.equal(transaction.status().reloads, 0);
});

test('force reloads an unchanged config (SIGHUP, POST /reload)', async (t) => {
  const { transaction, candidate, fm } = await setup(t);
  const r = await transaction.apply(await candidate(web(A)), 'signal SIGHUP', { force: true });
  assert.deepEqual([r.ok, r.kind], [true, 'reload']);
  assert.deepEqual(fm.calls, ['reload signal SIGHUP']);
});

test('runtimeAnswerOk reads HAProxy 2.6 answers', () => {
  assert.equal(runtimeAnswerOk({ kind: 'state' }, '\n'), true);
  assert.equal(runtimeAnswerOk({ kind: 'weight' }, 'No such server.\n'), false);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "IP changed from '127.0.0.1' to '127.0.0.2', port changed from '1' to '8081' by 'stats socket command'\n"), true);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "no need to change the addr, no need to change the port by 'stats socket command'\n"), true);
  assert.equal(runtimeAnswerOk({ kind: 'addr' }, "Invalid addr 'foo.example' by 'stats socket command'\n"), false);
  assert.equal(runtimeAnswerOk({ kind: 'state' }, "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"), false);
});

test('a forced reload of the generation that runs, unchanged since its check, is not checked again; after a runtime change it is', async (t) => {
  const { dir, fm, candidate, generations, initial } = await setup(t);
  let checks = 0;
  const check = async (): Promise<{ output: string; warnings: string[] }> => {
    checks++;
    return { output: '', warnings: [] };
  };
  const deps = { bin: 'haproxy', generations, relativePaths: true, log: silentLogger(), check };
  const transaction = createTransaction({ ...deps, master: fm.master, initial, ports: async () => {} });
  const before = await readlink(generations.liveDir);
  const r = await transaction.apply(await candidate(web(A)), 'signal SIGHUP', { force: true });
  assert.deepEqual([r.ok, r.kind, checks], [true, 'reload', 0]);
  assert.equal(await readlink(generations.liveDir), before, 'the same generation stays live');
  assert.deepEqual(fm.calls, ['reload signal SIGHUP']);

  // A runtime change rewrites the live file unchecked: the next forced reload checks a new generation.
  const moved = await candidate(web([srv('a', '10.0.0.9', 80), A[1]!]));
  assert.equal((await transaction.apply(moved, 'source kv')).kind, 'runtime');
  const again = await transaction.apply(moved, 'POST /reload', { force: true });
  assert.deepEqual([again.ok, again.kind, checks], [true, 'reload', 1]);
  assert.notEqual(await readlink(generations.liveDir), before);

  // A reload the master refuses is reported and leaves the generation as it was.
  const live = await readlink(generations.liveDir);
  fm.reloadResult = { ok: false, workers: [2], error: 'new worker exited', durationMs: 3 };
  const refused = await transaction.apply(moved, 'signal SIGHUP', { force: true });
  assert.deepEqual([refused.ok, refused.error?.code, checks], [false, 'E_RELOAD', 1]);
  assert.equal(await readlink(generations.liveDir), live);
  assert.equal(transaction.status().reloads, 2);
  void dir;
});
