import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../log.js';
import { createReaper, parseStat } from './reaper.js';
import type { Libc, WaitResult } from './libc.js';

/** A libc whose waitpid answers from a table and records what it was asked. */
function fakeLibc(answers: Record<number, WaitResult | null | 'ECHILD'>, subreaper = true) {
  const waited: number[] = [];
  let subreaperCalls = 0;
  const libc: Libc = {
    setChildSubreaper: () => (subreaperCalls++, subreaper),
    waitpidNoHang: (pid) => {
      waited.push(pid);
      return pid in answers ? answers[pid]! : 'ECHILD';
    },
  };
  return { libc, waited, subreaperCalls: () => subreaperCalls };
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream;
  return { log: createLogger({ level: 'debug', format: 'json', destination }), lines };
}

async function fakeProc(tasks: Record<string, string | null>, stats: Record<string, string> = {}) {
  const root = await mkdtemp(join(tmpdir(), 'pilot-reaper-'));
  for (const [tid, children] of Object.entries(tasks)) {
    await mkdir(join(root, 'self/task', tid), { recursive: true });
    if (children !== null) await writeFile(join(root, 'self/task', tid, 'children'), children);
  }
  for (const [pid, stat] of Object.entries(stats)) {
    await mkdir(join(root, pid), { recursive: true });
    await writeFile(join(root, pid, 'stat'), stat);
  }
  return root;
}

test('scan waits for the children of every thread, skips what child_process owns, logs reaped orphans', async (t) => {
  // A real child spawned after start(): published on the diagnostics channel, so owned.
  const { log, lines } = captureLog();
  const fake = fakeLibc({
    201: { pid: 201, code: 0, signal: null },
    202: null,
    203: { pid: 203, code: null, signal: 9 },
  });
  const root = await fakeProc({ '100': '', '101': '203 204 ', '102': null });
  t.after(() => rm(root, { recursive: true, force: true }));
  const reaper = createReaper({ libc: fake.libc, log, procRoot: root, isPid1: true, selfPid: 100, proc: new EventEmitter() });
  assert.deepEqual(reaper.start(), { mode: 'pid1', reaping: true });
  t.after(() => reaper.stop());
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  const ownPid = child.pid!;
  assert.deepEqual([...reaper.ownedPids()], [ownPid]);
  await writeFile(join(root, 'self/task/100/children'), `201 ${ownPid} 202`);

  assert.equal(reaper.reapNow(), 2);
  assert.deepEqual(fake.waited.sort(), [201, 202, 203, 204]);
  const reaped = lines.filter((l) => l.msg === 'reaped orphan').map((l) => [l.pid, l.code, l.signal]);
  assert.deepEqual(reaped, [
    [201, 0, null],
    [203, null, 9],
  ]);

  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(reaper.ownedPids().size, 0, 'a child that exited is no longer owned');
});

test('without children files the scan falls back to /proc/<pid>/stat PPid', async (t) => {
  const root = await fakeProc(
    { '100': null },
    {
      '300': '300 (sleep) S 100 300 1 0 -1',
      '301': '301 (a) b (c) Z 100 1 1 0 -1', // comm with spaces and parentheses
      '302': '302 (other) S 1 302 1 0 -1',
    },
  );
  t.after(() => rm(root, { recursive: true, force: true }));
  const fake = fakeLibc({ 301: { pid: 301, code: 5, signal: null } });
  const { log } = captureLog();
  const reaper = createReaper({ libc: fake.libc, log, procRoot: root, isPid1: true, selfPid: 100, proc: new EventEmitter() });
  reaper.start();
  t.after(() => reaper.stop());
  assert.equal(reaper.reapNow(), 1);
  assert.deepEqual(fake.waited.sort(), [300, 301]);
});

test('parseStat reads state and PPid after the last parenthesis', () => {
  assert.deepEqual(parseStat('42 (x) y) R 7 42 0'), { state: 'R', ppid: 7 });
  assert.equal(parseStat('garbage'), null);
});

test('start: PID 1 needs no subreaper flag; otherwise the flag is set; without either a warning', () => {
  const pid1 = fakeLibc({});
  assert.equal(createReaper({ libc: pid1.libc, log: captureLog().log, isPid1: true, proc: new EventEmitter() }).start().mode, 'pid1');
  assert.equal(pid1.subreaperCalls(), 0);

  const sub = fakeLibc({});
  const r1 = createReaper({ libc: sub.libc, log: captureLog().log, isPid1: false, proc: new EventEmitter() });
  assert.deepEqual(r1.start(), { mode: 'subreaper', reaping: true });
  r1.stop();
  assert.equal(sub.subreaperCalls(), 1);

  const refused = fakeLibc({}, false);
  const { log, lines } = captureLog();
  const proc = new EventEmitter();
  const r2 = createReaper({ libc: refused.libc, log, isPid1: false, proc });
  assert.deepEqual(r2.start(), { mode: 'none', reaping: false });
  assert.equal(r2.start().mode, 'none', 'start is idempotent');
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.match(String(warnings[0]!.msg), /zombies accumulate/);
  assert.equal(proc.listenerCount('SIGCHLD'), 0);
});

test('start: a libc that cannot load leaves PID 1 warned and not reaping', () => {
  const { log, lines } = captureLog();
  const r = createReaper({
    libc: () => {
      throw new Error('no koffi');
    },
    log,
    isPid1: true,
    proc: new EventEmitter(),
  });
  assert.deepEqual(r.start(), { mode: 'pid1', reaping: false });
  assert.equal(r.reapNow(), 0);
  assert.ok(lines.some((l) => l.level === 40 && /zombies will accumulate/.test(String(l.msg))));
});

test('SIGCHLD bursts collapse into one deferred scan; stop() removes the listener', async (t) => {
  const root = await fakeProc({ '100': '500' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const fake = fakeLibc({ 500: null });
  const proc = new EventEmitter();
  const reaper = createReaper({ libc: fake.libc, log: captureLog().log, procRoot: root, isPid1: true, selfPid: 100, proc, intervalMs: 3_600_000 });
  reaper.start();
  assert.equal(proc.listenerCount('SIGCHLD'), 1);
  proc.emit('SIGCHLD');
  proc.emit('SIGCHLD');
  proc.emit('SIGCHLD');
  assert.equal(fake.waited.length, 0, 'the scan is deferred past the signal');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(fake.waited, [500]);
  proc.emit('SIGCHLD');
  reaper.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(fake.waited, [500], 'a scan pending at stop() does not run');
  assert.equal(proc.listenerCount('SIGCHLD'), 0);
});

test('a failing scan is logged once per distinct error and does not throw out of the timer', async (t) => {
  const { log, lines } = captureLog();
  const proc = new EventEmitter();
  const reaper = createReaper({ libc: fakeLibc({}).libc, log, procRoot: '/nonexistent-proc', isPid1: true, proc });
  reaper.start();
  t.after(() => reaper.stop());
  assert.throws(() => reaper.reapNow()); // direct calls surface the error
  proc.emit('SIGCHLD');
  await new Promise((resolve) => setImmediate(resolve));
  proc.emit('SIGCHLD');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines.filter((l) => l.msg === 'orphan reaping scan failed').length, 1);
});
