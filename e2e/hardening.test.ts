/**
 * Issue 13's defects, end to end: the real binary as PID 1 of fresh namespaces with real HAProxy.
 * Each test reproduces one defect as a user would meet it.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { MAIN, childrenOf, startPilot, type PilotProcess } from './support/pilot-process.js';

const running: PilotProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function pilot(env: Record<string, string> = {}): Promise<PilotProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const p = startPilot({ PILOT_RUN_DIR: dir, STATS_AUTH: 'none', PILOT_STOP_TIMEOUT: '6s', ...env });
  running.push(p);
  return p;
}

const isRunning = (line: { msg?: string }) => line.msg === 'HAProxy is running';
const isListening = (line: { msg?: string }) => String(line.msg).startsWith('started:');

/** Sends `payload` as is to 127.0.0.1:<port> inside the pilot's namespaces; what came back. */
async function rawRequest(p: PilotProcess, port: number, payload: string): Promise<string> {
  const script = `const s=require('net').connect(${port},'127.0.0.1',()=>s.write(${JSON.stringify(payload)}));let o='';s.on('data',d=>o+=d);s.on('close',()=>{process.stdout.write(o)});s.on('error',e=>{process.stdout.write('ERROR '+e.code)});setTimeout(()=>{process.stdout.write(o);process.exit(0)},3000)`;
  return (await p.exec([process.execPath, '-e', script])).stdout;
}

test('one malformed request to the control port is a 400: HAProxy keeps running, the pilot keeps answering', async () => {
  const p = await pilot();
  await p.waitForLog(isRunning);
  await p.waitForLog(isListening);
  const answer = await rawRequest(p, 7778, 'GET http://[::1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.equal((await p.http('/health', 7778)).status, 200);
  assert.equal((await p.http('/')).status, 200, 'HAProxy still serves the demo');
  const early = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('running'), 300))]);
  assert.equal(early, 'running');
});

/** `haproxy-pilot check` with exactly `env`, under an open files limit of 4096. */
async function check(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const r = await execa('prlimit', ['--nofile=4096:4096', process.execPath, MAIN, 'check'], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PILOT_RUN_DIR: dir, SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '127.0.0.1:9001', ...env },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
  // Log lines are JSON: their messages, one a line.
  const out = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => {
      try {
        return (JSON.parse(l) as { msg?: string }).msg ?? l;
      } catch {
        return l;
      }
    })
    .join('\n');
  return { code: r.exitCode ?? -1, out };
}

test('check agrees with what HAProxy can run: maxconn past the open files limit, durations past a timer, padded enums are 78 naming the variable', async () => {
  const huge = await check({ HAPROXY_MAXCONN: '10000000' });
  assert.equal(huge.code, 78, huge.out);
  assert.match(huge.out, /HAPROXY_MAXCONN: 10000000 needs about 20000256 file descriptors .* limit\) is 4096/);
  const fits = await check({ HAPROXY_MAXCONN: '1900' });
  assert.equal(fits.code, 0, fits.out);
  for (const [name, value] of [['PILOT_STOP_TIMEOUT', '30d'], ['KV_INTERVAL', '30d'], ['STATS_AUTH', ' none ']] as const) {
    const r = await check({ HAPROXY_MAXCONN: '1900', KV_URL: 'http://127.0.0.1:1', [name]: value });
    assert.equal(r.code, 78, `${name}=${value}: ${r.out}`);
    assert.match(r.out, new RegExp(`${name}: ${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is `));
  }
});

/** Resolves with how the pilot ended, or 'still running' after `ms`. */
const endedWithin = (p: PilotProcess, ms: number) =>
  Promise.race([p.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms))]);

test("a program that exits but leaves a child holding its stdout: the exit is seen, it restarts, and the stop does not wait for the pipe", async () => {
  const p = await pilot({ PROGRAM_D: 'sh -c "(sleep 600 &); exit 1"', PILOT_STOP_TIMEOUT: '20s' });
  await p.waitForLog(isRunning);
  await p.waitForLog(isListening);
  const seen = await p.waitForLog((l) => l.program === 'd' && l.msg === 'program exited; restarting after backoff', 10_000);
  assert.equal(seen.code, 1);
  let status: { programs: { name: string; restarts: number; lastExit?: { code: number | null } }[] } | undefined;
  for (let i = 0; i < 50; i++) {
    status = JSON.parse((await p.http('/status', 7778)).body) as typeof status;
    if ((status!.programs.find((x) => x.name === 'd')?.restarts ?? 0) >= 1) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const d = status!.programs.find((x) => x.name === 'd')!;
  assert.ok(d.restarts >= 1, JSON.stringify(d));
  assert.equal(d.lastExit?.code, 1);
  await p.signal('SIGTERM');
  // Not the 20 s stop timeout: the sleeps holding the pipes are killed with their groups.
  assert.deepEqual(await endedWithin(p, 10_000), { code: 0, signal: null });
});

test('a stdout nobody reads does not freeze the control plane: /health and POST /reload answer, drops are counted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  // Like startPilot, but stdout is a pipe that is never read once the pilot runs: it fills up.
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    PILOT_RUN_DIR: dir,
    STATS_AUTH: 'none',
    PILOT_STOP_TIMEOUT: '6s',
    PILOT_LOG_LEVEL: 'debug',
    // Far more output than a pipe holds (64 KiB), after HAProxy is up.
    PROGRAM_NOISE: "sh -c 'sleep 1; seq 1 100000; sleep 600'",
  };
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--net', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, MAIN], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    const pilotPid = childrenOf(child.pid!)[0];
    if (pilotPid) process.kill(pilotPid, 'SIGKILL');
    child.kill('SIGKILL');
    await exited;
  };
  try {
    // Read until the control server is up, then never again.
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pilot did not start:\n${seen.slice(-2000)}`)), 30_000);
      const onData = (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"msg":"started:')) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.stdout!.pause();
          resolve();
        }
      };
      child.stdout!.on('data', onData);
    });
    const pilotPid = childrenOf(child.pid!)[0]!;
    const inside = (args: string[], timeoutMs: number) =>
      execa('nsenter', ['--target', String(pilotPid), '--net', '--pid', ...args], { reject: false, timeout: timeoutMs });
    const curl = (args: string[]) => inside(['curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '2', ...args], 5000);
    // Let the noise fill the pipe (and Node's read buffer behind it).
    await new Promise((r) => setTimeout(r, 3000));
    for (let i = 0; i < 3; i++) {
      const health = await curl(['http://127.0.0.1:7778/health']);
      assert.match(health.stdout, /\n200$/, `/health while stdout is full: ${health.stdout} ${health.stderr}`);
    }
    const reload = await inside(['curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '10', '-X', 'POST', 'http://127.0.0.1:7778/reload'], 15_000);
    assert.match(reload.stdout, /\n200$/, `POST /reload while stdout is full: ${reload.stdout}`);
    const metrics = await curl(['http://127.0.0.1:7778/metrics']);
    const dropped = Number(/^haproxy_pilot_log_dropped_total (\d+)$/m.exec(metrics.stdout)?.[1] ?? 'NaN');
    assert.ok(dropped > 0, `dropped lines counted: ${metrics.stdout.slice(0, 300)}`);
  } finally {
    await stop();
  }
});

for (const second of ['SIGTERM', 'SIGINT'] as const) {
  test(`a second stop signal (SIGTERM, then ${second}) escalates: PILOT_STOP_DELAY is cut short, HAProxy gets SIGTERM at once`, async () => {
    const p = await pilot({ PILOT_STOP_DELAY: '6s', PILOT_STOP_TIMEOUT: '20s' });
    await p.waitForLog(isRunning);
    await p.waitForLog(isListening);
    await p.signal('SIGTERM');
    await p.waitForLog((l) => l.msg === 'stopping haproxy' && l.mode === 'graceful');
    // Still serving during the delay.
    assert.equal((await p.http('/')).status, 200);
    await p.signal(second);
    // Not the 6 s delay.
    const ended = await endedWithin(p, 4000);
    assert.deepEqual(ended, { code: 0, signal: null }, `output:\n${p.lines.slice(-15).join('\n')}`);
  });
}
