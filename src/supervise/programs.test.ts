/**
 * Restart policy, backoff and stop order with an injected spawn and clock (the real processes
 * are exercised in e2e/supervise-programs.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { silentLogger } from '../log.js';
import type { ProgramSpec } from '../config/types.js';
import type { ChildExit, ChildHandle, SpawnFn, SpawnOptions } from './child.js';
import { createProgramSupervisor, type Clock } from './programs.js';

class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  /** Delays of the pending timers, relative to now. */
  pending(): number[] {
    return this.timers.map((x) => x.at - this.t).sort((a, b) => a - b);
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
  }
}

interface FakeChild extends ChildHandle {
  file: string;
  args: readonly string[];
  options: SpawnOptions;
  signals: string[];
  exit(e: Partial<ChildExit>): void;
  out: PassThrough;
}

function fakeSpawner() {
  const children: FakeChild[] = [];
  let nextPid = 1000;
  const spawn: SpawnFn = (file, args, options) => {
    let resolve!: (e: ChildExit) => void;
    const exited = new Promise<ChildExit>((r) => (resolve = r));
    const out = new PassThrough();
    const child: FakeChild = {
      pid: nextPid++,
      file,
      args,
      options,
      signals: [],
      stdout: out,
      stderr: new PassThrough(),
      out,
      exited,
      signal: (s) => child.signals.push(s),
      killTree: () => child.signals.push('KILLTREE'),
      exit: (e) => resolve({ code: e.code ?? null, signal: e.signal ?? null, ...(e.error ? { error: e.error } : {}) }),
    };
    children.push(child);
    return child;
  };
  return { spawn, children };
}

const spec = (name: string, extra: Partial<ProgramSpec> = {}): ProgramSpec => ({
  name,
  command: [`/bin/${name}`, '--x'],
  restart: 'on-failure',
  startOnReload: false,
  origin: `test:${name}`,
  ...extra,
});

const tick = () => new Promise((r) => setImmediate(r));

function setup(specs: ProgramSpec[]) {
  const clock = new FakeClock();
  const { spawn, children } = fakeSpawner();
  const lines: string[] = [];
  const sink = { write: (s: string) => lines.push(s) };
  const sup = createProgramSupervisor({ log: silentLogger(), specs, spawn, clock, output: { stdout: sink, stderr: sink } });
  return { sup, clock, children, lines };
}

test('spawns argv without a shell, detached, output prefixed per line', async () => {
  const { sup, children, lines } = setup([spec('web')]);
  sup.start();
  assert.equal(children.length, 1);
  assert.equal(children[0]!.file, '/bin/web');
  assert.deepEqual(children[0]!.args, ['--x']);
  assert.equal(children[0]!.options.detached, true);
  children[0]!.out.write('hello\nwor');
  children[0]!.out.end('ld');
  await tick();
  assert.deepEqual(lines, ['[web] hello\n', '[web] world\n']);
  assert.deepEqual(sup.status(), [{ name: 'web', pid: 1000, restarts: 0, state: 'running', origin: 'test:web', failures: 0 }]);
});

test('on-failure: backoff 1s, 2s, 4s … capped at 30s; a 10s run resets it', async () => {
  const { sup, clock, children } = setup([spec('app')]);
  sup.start();
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    children.at(-1)!.exit({ code: 1 });
    await tick();
    assert.equal(sup.status()[0]!.state, 'backoff');
    delays.push(clock.pending()[0]!);
    clock.advance(clock.pending()[0]!);
    assert.equal(children.length, i + 2);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(sup.status()[0]!.restarts, 7);
  // Runs 10 s, then fails: back to the first delay.
  clock.advance(10_000);
  children.at(-1)!.exit({ signal: 'SIGSEGV' });
  await tick();
  assert.deepEqual(clock.pending(), [1000]);
  assert.deepEqual(sup.status()[0]!.lastExit, { code: null, signal: 'SIGSEGV' });
});

test('on-failure: a clean exit is not restarted; always: it is; never: nothing is', async () => {
  const { sup, clock, children } = setup([spec('a'), spec('b', { restart: 'always' }), spec('c', { restart: 'never' })]);
  sup.start();
  for (const c of children.slice(0, 2)) c.exit({ code: 0 });
  children[2]!.exit({ code: 3 });
  await tick();
  assert.deepEqual(
    sup.status().map((s) => s.state),
    ['exited', 'backoff', 'failed'],
  );
  clock.advance(1000);
  assert.equal(children.length, 4);
  assert.equal(children[3]!.file, '/bin/b');
});

test('a program that cannot be spawned is retried with backoff', async () => {
  const { sup, clock, children } = setup([spec('missing')]);
  sup.start();
  children[0]!.exit({ error: Object.assign(new Error('spawn /bin/missing ENOENT'), { code: 'ENOENT' }) });
  await tick();
  assert.equal(sup.status()[0]!.state, 'backoff');
  clock.advance(1000);
  assert.equal(children.length, 2);
});

test('stopAll: SIGTERM in reverse start order, SIGKILL the group of what is left at the deadline', async () => {
  const { sup, clock, children } = setup([spec('first'), spec('second'), spec('third')]);
  sup.start();
  const order: string[] = [];
  for (const c of children) c.signal = (s) => order.push(`${c.file}:${s}`);
  for (const c of children) c.killTree = () => order.push(`${c.file}:KILLTREE`);
  const done = sup.stopAll(5000);
  assert.deepEqual(order, ['/bin/third:SIGTERM', '/bin/second:SIGTERM', '/bin/first:SIGTERM']);
  children[2]!.exit({ signal: 'SIGTERM' });
  children[0]!.exit({ signal: 'SIGTERM' });
  await tick();
  clock.advance(5000);
  await tick();
  assert.deepEqual(order.slice(3), ['/bin/second:KILLTREE']);
  children[1]!.exit({ signal: 'SIGKILL' });
  await done;
  assert.deepEqual(
    sup.status().map((s) => s.state),
    ['stopped', 'stopped', 'stopped'],
  );
  // Exits during stop are not restarted.
  assert.deepEqual(clock.pending(), []);
});

test('stopAll cancels a pending backoff restart', async () => {
  const { sup, clock, children } = setup([spec('a')]);
  sup.start();
  children[0]!.exit({ code: 1 });
  await tick();
  await sup.stopAll(1000);
  clock.advance(60_000);
  assert.equal(children.length, 1);
  assert.equal(sup.status()[0]!.state, 'stopped');
});

test('onHaproxyReload restarts only startOnReload programs, once the old instance ended', async () => {
  const { sup, children } = setup([spec('keep'), spec('bounce', { startOnReload: true })]);
  sup.start();
  sup.onHaproxyReload();
  assert.deepEqual(children[0]!.signals, []);
  assert.deepEqual(children[1]!.signals, ['SIGTERM']);
  assert.equal(children.length, 2);
  children[1]!.exit({ signal: 'SIGTERM' });
  await tick();
  assert.equal(children.length, 3);
  assert.equal(children[2]!.file, '/bin/bounce');
  const st = sup.status().find((s) => s.name === 'bounce')!;
  assert.equal(st.state, 'running');
  assert.equal(st.restarts, 0);
});

test('user/group are resolved from passwd/group files', () => {
  const clock = new FakeClock();
  const { spawn, children } = fakeSpawner();
  const sup = createProgramSupervisor({
    log: silentLogger(),
    specs: [spec('a', { user: 'haproxy' }), spec('b', { user: 'haproxy', group: 'web' }), spec('c', { user: 'nobody-here' })],
    spawn,
    clock,
    identityFiles: () => ({
      passwd: 'root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:98::/var/lib/haproxy:/usr/sbin/nologin\n',
      group: 'root:x:0:\nweb:x:33:\n',
    }),
  });
  sup.start();
  assert.equal(children[0]!.options.uid, 99);
  assert.equal(children[0]!.options.gid, 98);
  assert.equal(children[1]!.options.gid, 33);
  assert.equal(children.length, 2);
  assert.equal(sup.status()[2]!.state, 'failed');
});

test('setSpecs after start: removed stopped, changed restarted, new started', async () => {
  const { sup, children } = setup([spec('a'), spec('b')]);
  sup.start();
  sup.setSpecs([spec('b', { command: ['/bin/b', '--new'] }), spec('c')]);
  assert.deepEqual(children[0]!.signals, ['SIGTERM']);
  assert.deepEqual(children[1]!.signals, ['SIGTERM']);
  assert.equal(children[2]!.file, '/bin/c');
  children[0]!.exit({ signal: 'SIGTERM' });
  children[1]!.exit({ signal: 'SIGTERM' });
  await tick();
  assert.deepEqual(children[3]!.args, ['--new']);
  assert.deepEqual(
    sup.status().map((s) => [s.name, s.state]).sort(),
    [
      ['b', 'running'],
      ['c', 'running'],
    ],
  );
});

test('setSpecs: a program removed and re-added while its old instance is stopping comes back once it exits', async () => {
  const { sup, children } = setup([spec('a'), spec('b')]);
  sup.start();
  sup.setSpecs([spec('b')]);
  assert.deepEqual(children[0]!.signals, ['SIGTERM']);
  sup.setSpecs([spec('a'), spec('b')]);
  // Not started twice: the new instance waits for the old one to end.
  assert.equal(children.length, 2);
  children[0]!.exit({ signal: 'SIGTERM' });
  await tick();
  assert.equal(children.length, 3);
  assert.equal(children[2]!.file, '/bin/a');
  assert.deepEqual(
    sup.status().map((s) => [s.name, s.state, s.pid]),
    [
      ['a', 'running', children[2]!.pid],
      ['b', 'running', children[1]!.pid],
    ],
  );
});

test('setSpecs: a program changed and then removed while stopping is not relaunched', async () => {
  const { sup, children } = setup([spec('a'), spec('b')]);
  sup.start();
  sup.setSpecs([spec('a', { command: ['/bin/a', '--new'] }), spec('b')]);
  sup.setSpecs([spec('b')]);
  children[0]!.exit({ signal: 'SIGTERM' });
  await tick();
  assert.equal(children.length, 2);
  assert.deepEqual(sup.status().map((s) => s.name), ['b']);
});

test('failed starts in a row are counted with the last error; a 10 s run ends the streak; restarts are reported', async () => {
  const clock = new FakeClock();
  const { spawn, children } = fakeSpawner();
  const restarted: string[] = [];
  const sink = { write: () => {} };
  const sup = createProgramSupervisor({ log: silentLogger(), specs: [spec('bad')], spawn, clock, output: { stdout: sink, stderr: sink }, onRestart: (n) => restarted.push(n) });
  sup.start();
  for (let i = 0; i < 3; i++) {
    children.at(-1)!.exit({ error: Object.assign(new Error('spawn /bin/bad ENOENT'), { code: 'ENOENT' }) });
    await tick();
    clock.advance(clock.pending()[0]!);
  }
  assert.equal(sup.status()[0]!.failures, 3);
  assert.equal(sup.status()[0]!.lastError, 'spawn /bin/bad ENOENT');
  assert.deepEqual(restarted, ['bad', 'bad', 'bad']);
  children.at(-1)!.exit({ code: 2 });
  await tick();
  assert.equal(sup.status()[0]!.failures, 4);
  assert.equal(sup.status()[0]!.lastError, 'exited with code 2');
  clock.advance(clock.pending()[0]!);
  clock.advance(10_000);
  children.at(-1)!.exit({ code: 1 });
  await tick();
  assert.equal(sup.status()[0]!.failures, 1, 'a start that ran 10 s worked: a new streak begins');
});
