/**
 * haproxy-pilot as a container's init, end to end: the real binary as PID 1 of fresh namespaces
 * (and as a subreaper when it is not PID 1), real HAProxy, real helper programs.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPilot, childrenOf, createNetns, descendants, eventually, type PilotProcess } from './support/pilot-process.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SEED_003_CONFIG } from './support/supervise-seed003.js';

const running: PilotProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function pilot(env: Record<string, string> = {}, options: { pid1?: boolean; main?: string } = {}): Promise<PilotProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const p = startPilot({ PILOT_RUN_DIR: dir, STATS_AUTH: 'none', PILOT_STOP_TIMEOUT: '6s', ...env }, options);
  running.push(p);
  return p;
}

const isRunning = (line: { msg?: string }) => line.msg === 'HAProxy is running';

/** HAProxy's processes seen from the host: the master is haproxy-pilot's child, workers are the master's. */
async function haproxyPids(p: PilotProcess): Promise<{ master: number; workers: number[] }> {
  return eventually('HAProxy master and worker', async () => {
    const master = childrenOf(await p.pid()).find((pid) => comm(pid) === 'haproxy');
    if (master === undefined) return undefined;
    const workers = childrenOf(master).filter((pid) => comm(pid) === 'haproxy' && !isZombie(pid));
    return workers.length > 0 ? { master, workers } : undefined;
  });
}

const stat = (pid: number) => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '');
const comm = (pid: number) => /\((.*)\)/.exec(stat(pid))?.[1];
const isZombie = (pid: number) => /\) Z /.test(stat(pid));

/** Wait until a slow request has reached the demo backend (an established connection to :8081). */
async function inFlight(p: PilotProcess): Promise<void> {
  await eventually('a request in flight to the backend', async () => {
    const r = await p.exec(['ss', '-Htn', 'state', 'established', '( dport = :8081 )']);
    return r.stdout.trim().length > 0 || undefined;
  });
}

test('as PID 1: 200 orphans are reaped while execa-owned children report their exit codes', async () => {
  const p = await pilot({
    PROGRAM_ORPHANS: `sh -c 'for i in $(seq 200); do (sleep 0.3 &) ; done; exit 3'`,
    PROGRAM_ORPHANS_RESTART: 'never',
  });
  await p.waitForLog(isRunning);
  const exit = await p.waitForLog((l) => l.program === 'orphans' && l.code !== undefined);
  assert.equal(exit.code, 3, 'the program exit code seen through execa');
  const root = await p.pid();
  // Orphans sleep 0.3 s; a second later every one of them must have been reaped.
  await new Promise((r) => setTimeout(r, 1300));
  const zombies = descendants(root).filter((d) => d.state === 'Z');
  assert.deepEqual(zombies, []);
  assert.ok(p.logs.some((l) => typeof l.msg === 'string' && /reap/i.test(l.msg)), 'the reaper reported reaping orphans');
  // HAProxy (also owned by execa) still serves: its exit status was not stolen either.
  assert.equal((await p.http('/')).status, 200);
});

test('not PID 1: orphans of its subtree come to it as a subreaper and are reaped', async () => {
  const p = await pilot({
    PROGRAM_ORPHANS: `sh -c 'for i in $(seq 50); do (sleep 0.5 &) ; done; exit 0'`,
    PROGRAM_ORPHANS_RESTART: 'never',
  }, { pid1: false });
  await p.waitForLog(isRunning);
  const root = await p.pid();
  // While they sleep, the orphans are haproxy-pilot's direct children (PR_SET_CHILD_SUBREAPER).
  const adopted = await eventually('orphans adopted', () => {
    const sleeping = descendants(root).filter((d) => d.comm === 'sleep');
    return sleeping.length >= 10 ? sleeping : undefined;
  });
  assert.ok(adopted.length >= 10);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(descendants(root).filter((d) => d.state === 'Z' || d.comm === 'sleep'), []);
  // Not PID 1, nothing kills the rest for it: a clean stop leaves no process of its tree behind.
  const tree = descendants(root).map((d) => d.pid);
  await p.signal('SIGTERM');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  assert.deepEqual(tree.filter((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid)), []);
});

for (const signal of ['SIGTERM', 'SIGUSR1'] as const) {
  test(`${signal}: graceful stop finishes the in-flight request and exits 0`, async () => {
    const p = await pilot();
    await p.waitForLog(isRunning);
    const slow = p.http('/delay/1500');
    await inFlight(p);
    await p.signal(signal);
    const answer = await slow;
    assert.equal(answer.status, 200, 'the in-flight request completed');
    assert.match(answer.body, /demo backend/);
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.ok(p.logs.some((l) => l.msg === 'haproxy-pilot stopped' && l.exitCode === 0));
  });
}

test('a stop during start-up ends it at once: HAProxy is never started behind it', async (t) => {
  // A key/value endpoint that accepts connections and never answers keeps start-up waiting for
  // the first snapshot.
  const netns = await createNetns();
  const silent = spawn(netns.enter[0]!, [...netns.enter.slice(1), 'python3', '-c', 'import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",8500));s.listen(16);print("ready",flush=True)\nconns=[]\nwhile True: conns.append(s.accept())'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(async () => {
    silent.kill('SIGKILL');
    await netns.remove();
  });
  await new Promise((resolve) => silent.stdout!.once('data', resolve));
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const p = startPilot({ PILOT_RUN_DIR: dir, STATS_AUTH: 'none', KV_URL: 'http://127.0.0.1:8500', KV_PREFIX: 'apps/x', KV_TIMEOUT: '30s', PILOT_QUIET_MAX: '20s' }, { netns });
  running.push(p);
  await p.waitForLog((l) => l.component === 'source-kv' || /kv/.test(String(l.msg)));
  await p.signal('SIGTERM');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  assert.ok(!p.logs.some((l) => l.msg === 'starting haproxy master'), 'HAProxy was never started');
});

test('SIGINT: fast stop', async () => {
  const p = await pilot();
  await p.waitForLog(isRunning);
  const slow = p.http('/delay/5000');
  await inFlight(p);
  await p.signal('SIGINT');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  // A fast stop does not wait for the 5 s request.
  assert.notEqual((await slow).status, 200);
});

for (const signal of ['SIGHUP', 'SIGUSR2'] as const) {
  test(`${signal}: a confirmed reload with a new worker, the old one gone`, async () => {
    const p = await pilot();
    await p.waitForLog(isRunning);
    const before = await haproxyPids(p);
    await p.signal(signal);
    await p.waitForLog((l) => l.msg === 'haproxy reload confirmed');
    // The new worker runs and the old one has left (no connection kept it).
    await eventually('only a new worker left', async () => {
      const after = await haproxyPids(p);
      return after.master === before.master && after.workers.length === 1 && !before.workers.includes(after.workers[0]!) || undefined;
    });
    assert.equal((await p.http('/')).status, 200);
  });
}

test('a burst of 20 SIGHUPs gives a few reloads and HAProxy serves throughout', async () => {
  const p = await pilot();
  await p.waitForLog(isRunning);
  let failures = 0;
  let served = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const r = await p.http('/');
      if (r.status === 200) served++;
      else failures++;
    }
  })();
  for (let i = 0; i < 20; i++) await p.signal('SIGHUP');
  await p.waitForLog((l) => l.msg === 'haproxy reload confirmed');
  // Any follow-up reload of the coalesced burst starts within PILOT_QUIET_MAX (2 s): watch that long.
  await new Promise((r) => setTimeout(r, 2500));
  polling = false;
  await poller;
  const reloads = p.logs.filter((l) => l.msg === 'haproxy reload confirmed').length;
  assert.ok(reloads >= 1 && reloads <= 4, `reloads: ${reloads}`);
  assert.equal(failures, 0, `failed requests (served ${served})`);
});

test('HAProxy worker killed with SIGKILL: everything stops with the documented exit code', async () => {
  const p = await pilot();
  await p.waitForLog(isRunning);
  const { workers } = await haproxyPids(p);
  process.kill(workers[0]!, 'SIGKILL');
  const exit = await p.exited;
  assert.equal(exit.code, 137);
  assert.ok(p.logs.some((l) => /HAProxy exited on its own/.test(String(l.msg))));
});

test('a program that exits 1 is restarted with backoff', async () => {
  const p = await pilot({ PROGRAM_FLAKY: `sh -c 'echo flaky ran; exit 1'` });
  await p.waitForLog(isRunning);
  const restarts = await eventually('three restarts', () => {
    const r = p.logs.filter((l) => l.program === 'flaky' && typeof l.delayMs === 'number');
    return r.length >= 3 ? r : undefined;
  }, 15_000);
  const delays = restarts.map((l) => l.delayMs as number);
  assert.ok(delays[1]! > delays[0]! && delays[2]! > delays[1]!, `backoff grows: ${delays.join(', ')}`);
  assert.ok(p.lines.some((l) => l.includes('flaky ran') && l.includes('flaky')), 'program output is attributed');
});

test("helper programs do not get haproxy-pilot's secrets", async () => {
  const p = await pilot({ STATS_AUTH: 'basic', STATS_PASSWORD: 'not-for-programs-4d1f', PROGRAM_ENVCHECK: `sh -c 'echo "password=[$STATS_PASSWORD] path=[$PATH]"'`, PROGRAM_ENVCHECK_RESTART: 'never' });
  const line = await p.waitForLine((l) => l.includes('[envcheck]') && l.includes('password='));
  assert.match(line, /password=\[\] path=\[\/.+\]/, 'the secret is gone, the rest of the environment is there');
  assert.ok(!p.lines.some((l) => l.includes('not-for-programs-4d1f')), 'the secret appears nowhere in the output');
});

test("seed 003's config runs unchanged with its program lifted and supervised", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const cfg = join(dir, 'seed-003.cfg');
  await writeFile(cfg, SEED_003);
  const p = await pilot({ HAPROXY_CONFIG: cfg, PILOT_RUN_DIR: dir });
  await p.waitForLog(isRunning);
  const answer = await eventually('python backend serving through HAProxy', async () => {
    const r = await p.http('/');
    return r.status === 200 ? r : undefined;
  });
  assert.match(answer.body, /Directory listing/);
  assert.ok(p.logs.some((l) => l.program === 'myserver'), 'the lifted program is supervised by haproxy-pilot');
  // HAProxy's own log line reached stdout (log stdout format raw).
  await p.waitForLine((l) => /myapp/.test(l) && /GET \//.test(l));
});

test('an uncaught error: orderly stop of HAProxy and the programs, exit 70, nothing orphaned', async () => {
  const p = await pilot({ PILOT_E2E_THROW_AFTER_MS: '2500' }, { pid1: false, main: fileURLToPath(new URL('./support/init-throwing-main.js', import.meta.url)) });
  await p.waitForLog(isRunning);
  const tree = descendants(await p.pid()).map((d) => d.pid);
  assert.ok(tree.length >= 3, 'HAProxy master, worker and the demo program run');
  assert.equal((await p.exited).code, 70);
  assert.ok(p.logs.some((l) => l.level === 60 && /injected bug/.test(String(l.msg))), 'the error is logged as fatal');
  assert.ok(p.logs.some((l) => l.msg === 'haproxy master exited'), 'HAProxy was stopped, not abandoned');
  // Not PID 1, so nothing else would clean up: every process of its tree is gone.
  assert.deepEqual(tree.filter((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid)), []);
});

test('an invalid HAProxy config: a clear error naming the file and line, exit code 78', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const cfg = join(dir, 'broken.cfg');
  await writeFile(cfg, 'global\n  maxconn 100\n\ndefaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\nfrontend f\n  bind :8080\n  no-such-directive here\n');
  const p = await pilot({ HAPROXY_CONFIG: cfg, PILOT_RUN_DIR: dir });
  const exit = await p.exited;
  assert.equal(exit.code, 78);
  const error = p.logs.find((l) => l.level === 50);
  assert.ok(error, 'an error line');
  assert.match(String(error.msg), /broken\.cfg|haproxy\.cfg/);
  assert.match(String(error.msg), /:12\b/);
});

// Seed 003 part 1 verbatim, plus the resolvers block of its part 2 ("Say my name").
const SEED_003 = SEED_003_CONFIG.replace('listen myapp', 'resolvers aws\n    nameserver aws_local 169.254.169.253:53\n    hold valid 60s\nlisten myapp');
