/**
 * Reload serialisation and confirmation logic with an injected process and master CLI. The real
 * master (2.6 and 3.0) is exercised in e2e/supervise-haproxy.test.ts; here we drive the orderings
 * that are hard to force with a real one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../log.js';
import { isPilotError } from '../errors.js';
import type { ChildExit, ChildHandle, SpawnFn } from './child.js';
import { createHaproxyMaster, type MasterCommandFn } from './haproxy.js';

function showProc(version: string, reloads: number, failed: number, workers: number[]): string {
  return [
    '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
    `100             master          ${reloads} [failed: ${failed}]   0d00h00m01s     ${version}`,
    '# workers',
    ...workers.map((w) => `${w}             worker          0               0d00h00m01s     ${version}`),
    '# programs',
    '',
  ].join('\n');
}

function fakeMaster() {
  let exit!: (e: ChildExit) => void;
  const signals: string[] = [];
  const exited = new Promise<ChildExit>((r) => (exit = r));
  const child: ChildHandle = {
    pid: 100,
    exited,
    signal: (s) => signals.push(s),
    killTree: () => signals.push('KILLTREE'),
  };
  const spawn: SpawnFn = () => child;
  return { spawn, signals, exit };
}

const base = {
  bin: 'haproxy',
  configPath: '/x.cfg',
  masterSocket: '/x.sock',
  stopDelayMs: 0,
  stopTimeoutMs: 1000,
  reloadTimeoutMs: 2000,
  log: silentLogger(),
  pollIntervalMs: 1,
  onExit: () => () => {},
};

test('2.7+: reloads are serialised; calls during one share exactly one follow-up', async () => {
  const { spawn } = fakeMaster();
  let reloads = 0;
  let worker = 1;
  const gates: (() => void)[] = [];
  const command: MasterCommandFn = async (_s, cmd) => {
    if (cmd === 'show proc') return showProc('3.0.11', reloads, 0, [worker]);
    if (cmd === 'reload') {
      await new Promise<void>((r) => gates.push(r));
      reloads++;
      worker++;
      return 'Success=1\n--\n[NOTICE] Loading success.\n';
    }
    throw new Error(`unexpected ${cmd}`);
  };
  const m = createHaproxyMaster({ ...base, spawn, command });
  await m.start();
  const until = async (n: number) => {
    while (gates.length < n) await new Promise((r) => setImmediate(r));
  };

  const a = m.reload('a');
  await until(1);
  const b = m.reload('b');
  const c = m.reload('c');
  gates[0]!();
  assert.deepEqual((await a).workers, [2]);
  await until(2); // the follow-up started after a finished…
  const d = m.reload('d'); // …and d, made during it, waits for a third
  gates[1]!();
  const [rb, rc] = await Promise.all([b, c]);
  assert.equal(rb, rc);
  assert.deepEqual(rb.workers, [3]);
  await until(3);
  gates[2]!();
  assert.deepEqual((await d).workers, [4]);
  assert.equal(reloads, 3);
  assert.equal(m.status().reloads, 3);
});

test('2.7+: Success=0 is a failed reload naming HAProxy’s alert, old worker listed', async () => {
  const { spawn } = fakeMaster();
  const command: MasterCommandFn = async (_s, cmd) => {
    if (cmd === 'show proc') return showProc('3.0.11', 1, 1, [7]);
    return "Success=0\n--\n[ALERT]    (1) : config : parsing [/x.cfg:3] : unknown keyword 'nope'\n[WARNING]  (1) : Loading failure!\n";
  };
  const m = createHaproxyMaster({ ...base, spawn, command });
  await m.start();
  const r = await m.reload('x');
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /unknown keyword 'nope'/);
  assert.deepEqual(r.workers, [7]);
});

test('2.6: SIGUSR2, then show proc until a new worker appears (CLI down meanwhile)', async () => {
  const { spawn, signals } = fakeMaster();
  let phase = 0;
  const command: MasterCommandFn = async (_s, cmd) => {
    assert.equal(cmd, 'show proc');
    if (signals.includes('SIGUSR2')) {
      phase++;
      if (phase <= 2) throw new Error('ECONNREFUSED'); // master re-executing
      return showProc('2.6.12-1+deb12u4', 1, 0, [11]);
    }
    return showProc('2.6.12-1+deb12u4', 0, 0, [10]);
  };
  const m = createHaproxyMaster({ ...base, spawn, command });
  await m.start();
  const r = await m.reload('x');
  assert.deepEqual(signals, ['SIGUSR2']);
  assert.equal(r.ok, true);
  assert.deepEqual(r.workers, [11]);
  assert.equal(r.reloads, 1);
});

test('2.6: the failed-reload counter moving means failure; timeout without confirmation too', async () => {
  const { spawn, signals } = fakeMaster();
  const command: MasterCommandFn = async () =>
    signals.includes('SIGUSR2') ? showProc('2.6.12', 1, 1, [10]) : showProc('2.6.12', 0, 0, [10]);
  const m = createHaproxyMaster({ ...base, spawn, command });
  await m.start();
  const r = await m.reload('x');
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /failed reload counter/);
  assert.deepEqual(r.workers, [10]);

  const stuck = fakeMaster();
  const m2 = createHaproxyMaster({
    ...base,
    reloadTimeoutMs: 50,
    spawn: stuck.spawn,
    command: async () => showProc('2.6.12', 0, 0, [10]),
  });
  await m2.start();
  const r2 = await m2.reload('y');
  assert.equal(r2.ok, false);
  assert.match(r2.error ?? '', /not confirmed within 50 ms/);
});

test('start() rejects with E_HAPROXY and the exit code when the master dies first', async () => {
  const { spawn, exit } = fakeMaster();
  const command: MasterCommandFn = async () => {
    throw new Error('ENOENT');
  };
  const m = createHaproxyMaster({ ...base, spawn, command });
  const started = m.start();
  exit({ code: 1, signal: null });
  await assert.rejects(started, (e) => isPilotError(e, 'E_HAPROXY') && e.details?.code === 1);
  await assert.rejects(m.reload('after exit'), (e) => isPilotError(e, 'E_HAPROXY'));
});

test('stop: graceful sends SIGUSR1 after the delay; a fast stop meanwhile escalates to SIGTERM', async () => {
  const { spawn, signals, exit } = fakeMaster();
  const m = createHaproxyMaster({ ...base, stopDelayMs: 30, spawn, command: async () => showProc('2.6.12', 0, 0, [10]) });
  await m.start();
  const g = m.stop('graceful');
  assert.deepEqual(signals, []); // still serving during the stop delay
  const f = m.stop('fast');
  assert.deepEqual(signals, ['SIGTERM']);
  while (!(signals as string[]).includes('SIGUSR1')) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(signals as string[], ['SIGTERM', 'SIGUSR1']);
  exit({ code: 0, signal: null });
  assert.deepEqual(await g, { code: 0, signal: null });
  assert.equal(await f, await g);
});

test('stop: SIGKILL the group after the stop timeout', async () => {
  const { spawn, signals, exit } = fakeMaster();
  const m = createHaproxyMaster({ ...base, stopTimeoutMs: 20, spawn, command: async () => showProc('2.6.12', 0, 0, [10]) });
  await m.start();
  const s = m.stop('graceful');
  while (!signals.includes('KILLTREE')) await new Promise((r) => setTimeout(r, 5));
  exit({ code: null, signal: 'SIGKILL' });
  assert.deepEqual(await s, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(await m.exited, { code: null, signal: 'SIGKILL' });
});
