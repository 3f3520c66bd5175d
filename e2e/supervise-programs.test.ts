/** The helper-program supervisor with real processes (node and id), real signals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { silentLogger } from '../src/log.js';
import type { ProgramSpec } from '../src/config/types.js';
import { createProgramSupervisor, type ProgramSupervisor } from '../src/supervise/programs.js';
import { pidAlive, waitFor } from './support/supervise-helpers.js';

function program(name: string, script: string, extra: Partial<ProgramSpec> = {}): ProgramSpec {
  return { name, command: [process.execPath, '-e', script], restart: 'on-failure', startOnReload: false, origin: `e2e:${name}`, ...extra };
}

function supervise(t: import('node:test').TestContext, specs: ProgramSpec[], backoff = { initialMs: 50, maxMs: 200 }) {
  const out: string[] = [];
  const err: string[] = [];
  const sup = createProgramSupervisor({
    log: silentLogger(),
    specs,
    backoff,
    output: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
  });
  t.after(() => stopAndCheck(sup));
  return { sup, out, err };
}

async function stopAndCheck(sup: ProgramSupervisor): Promise<void> {
  await sup.stopAll(2000);
}

test('a program exiting 1 is restarted with backoff; output is prefixed with its name', async (t) => {
  const { sup, out, err } = supervise(t, [program('flaky', "console.log('starting'); console.error('oops'); process.exit(1)")]);
  sup.start();
  const st = await waitFor('three restarts', () => {
    const s = sup.status()[0]!;
    return s.restarts >= 3 ? s : undefined;
  });
  assert.deepEqual(st.lastExit, { code: 1, signal: null });
  await waitFor('output of several runs', () => out.length >= 3 && err.length >= 3);
  assert.ok(out.every((l) => l === '[flaky] starting\n'), out.join(''));
  assert.ok(err.every((l) => l === '[flaky] oops\n'), err.join(''));
});

test('a clean exit is not restarted under on-failure', async (t) => {
  const { sup } = supervise(t, [program('once', 'process.exit(0)')]);
  sup.start();
  // 'exited' is terminal: a scheduled restart would show as 'backoff'.
  const st = await waitFor('program to exit', () => {
    const s = sup.status()[0]!;
    return s.state !== 'running' ? s : undefined;
  });
  assert.equal(st.state, 'exited');
  assert.equal(st.restarts, 0);
  assert.deepEqual(st.lastExit, { code: 0, signal: null });
});

test('stopAll: SIGTERM first, SIGKILL for a program that ignores it', async (t) => {
  const { sup, out } = supervise(t, [
    program('polite', "setInterval(() => {}, 1000); console.log('up')"),
    program('stubborn', "process.on('SIGTERM', () => console.log('ignoring TERM')); setInterval(() => {}, 1000); console.log('up')"),
  ]);
  sup.start();
  await waitFor('both programs up', () => out.filter((l) => l.endsWith('up\n')).length === 2);
  const pids = sup.status().map((s) => s.pid!);
  await sup.stopAll(500);
  assert.deepEqual(
    sup.status().map((s) => [s.name, s.state, s.lastExit?.signal]),
    [
      ['polite', 'stopped', 'SIGTERM'],
      ['stubborn', 'stopped', 'SIGKILL'],
    ],
  );
  assert.ok(out.includes('[stubborn] ignoring TERM\n'));
  for (const pid of pids) assert.equal(pidAlive(pid), false);
});

test('user/group: uid and gid from /etc/passwd and /etc/group', async (t) => {
  const { sup, out } = supervise(t, [
    program('ids', 'console.log(process.getuid(), process.getgid(), process.getgroups().join(","))', {
      restart: 'never',
      user: 'nobody',
      group: 'nogroup',
    }),
  ]);
  sup.start();
  await waitFor('ids output', () => out.length >= 1);
  // nobody/nogroup are 65534 on Debian; no supplementary groups inherited from root.
  assert.equal(out[0], '[ids] 65534 65534 65534\n');
});

test('onHaproxyReload restarts a startOnReload program with a new pid', async (t) => {
  const { sup } = supervise(t, [program('hook', 'setInterval(() => {}, 1000)', { startOnReload: true })]);
  sup.start();
  const first = sup.status()[0]!.pid!;
  sup.onHaproxyReload();
  const second = await waitFor('new instance', () => {
    const s = sup.status()[0]!;
    return s.state === 'running' && s.pid !== undefined && s.pid !== first ? s.pid : undefined;
  });
  assert.equal(pidAlive(first), false);
  assert.equal(pidAlive(second), true);
});

/** Pids of the processes whose command line is exactly `args` (joined by NUL in /proc/<pid>/cmdline). */
function pidsRunning(args: string[]): number[] {
  const want = `${args.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8') === want;
      } catch {
        return false;
      }
    })
    .map(Number);
}

test("a program's exit is its process's exit, even when a child of it keeps its stdout open", async (t) => {
  // A unique sleep so the test finds exactly the leftovers of this program.
  const nap = String(600 + Math.floor(Math.random() * 1000));
  const { sup } = supervise(t, [{ name: 'leaky', command: ['sh', '-c', `(sleep ${nap} &); exit 1`], restart: 'on-failure', startOnReload: false, origin: 'e2e:leaky' }]);
  t.after(() => pidsRunning(['sleep', nap]).forEach((pid) => process.kill(pid, 'SIGKILL')));
  sup.start();
  const st = await waitFor('the exit seen and a restart', () => {
    const s = sup.status()[0]!;
    return s.restarts >= 2 ? s : undefined;
  }, 5000);
  assert.deepEqual(st.lastExit, { code: 1, signal: null });
  assert.ok(pidsRunning(['sleep', nap]).length >= 2, 'each run left a sleep holding the pipe');
  // The stop does not wait for the pipes: it returns long before its 30 s timeout, and the
  // leftovers in the programs' process groups are gone.
  const t0 = Date.now();
  await sup.stopAll(30_000);
  assert.ok(Date.now() - t0 < 10_000, `stopAll took ${Date.now() - t0} ms`);
  await waitFor('the leftovers to be killed', () => pidsRunning(['sleep', nap]).length === 0, 5000);
});
