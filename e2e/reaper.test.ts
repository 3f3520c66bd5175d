/**
 * PID-1 duties with real processes: orphans reaped as PID 1 (pid namespace via unshare) and as
 * a child subreaper, without stealing the exit status of Node's own children; signals that
 * would end PID 1 or start Node's inspector are handled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

const harness = fileURLToPath(new URL('./support/init-harness.js', import.meta.url));
const signalsHarness = fileURLToPath(new URL('./support/init-signals-harness.js', import.meta.url));

interface HarnessResult {
  scenario: string;
  pid: number;
  mode: string;
  reaping: boolean;
  error?: string;
  exitChecks: { total: number; wrong: unknown[] };
  orphansReparented: number | null;
  reapedOrphans: { count: number; ends: Record<string, number> };
  zombies: number;
  scanMicros: Record<string, number> | null;
}

function parseResult(stdout: string): HarnessResult {
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as HarnessResult;
}

test('as PID 1 in a pid namespace: 200 orphans reaped, no zombies, execa children keep their exit codes', async () => {
  // --kill-child: if the test is cancelled and unshare is killed, the namespace's init goes too.
  const run = await execa(
    'unshare',
    ['--pid', '--fork', '--mount-proc', '--net', '--kill-child', process.execPath, harness, 'pid1'],
    { reject: false, timeout: 60_000 },
  );
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const r = parseResult(run.stdout);
  assert.equal(r.error, undefined);
  assert.equal(r.pid, 1);
  assert.equal(r.mode, 'pid1');
  assert.equal(r.reaping, true);
  assert.deepEqual(r.exitChecks, { total: 20, wrong: [] });
  assert.deepEqual(r.reapedOrphans, { count: 200, ends: { 'code 0': 200 } });
  assert.equal(r.zombies, 0);
});

test('as a child subreaper: orphans of our subtree come to us while alive and are reaped', async (t) => {
  const run = await execa(process.execPath, [harness, 'subreaper'], { reject: false, timeout: 60_000 });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const r = parseResult(run.stdout);
  assert.equal(r.error, undefined);
  assert.equal(r.mode, 'subreaper');
  assert.equal(r.orphansReparented, 200, 'every orphan had PPid == harness pid while alive');
  assert.deepEqual(r.exitChecks, { total: 20, wrong: [] });
  assert.deepEqual(r.reapedOrphans, { count: 200, ends: { 'signal 15': 200 } });
  assert.equal(r.zombies, 0);
  // Not asserted (timings belong in bench/): printed for the record.
  t.diagnostic(`one reaper scan over ${r.scanMicros?.children} children: median ${r.scanMicros?.median} µs, max ${r.scanMicros?.max} µs`);
});

/** Starts the signals harness and gives a way to wait for stdout lines. */
function startSignals(mode: 'installed' | 'bare') {
  // --inspect-port=0: should the inspector start, it must not fight over 9229 with anyone.
  const child = execa(process.execPath, ['--inspect-port=0', signalsHarness, mode], { reject: false, buffer: { stdout: false } });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ raw: l });
    }
  });
  const until = async (what: string, cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout ${JSON.stringify(lines)} stderr ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { child: child as ResultPromise, lines, stderr: () => stderr, until };
}

test('SIGUSR1 is a graceful stop, not the inspector; signals signal-exit would act on do not end us', async (t) => {
  // Control: without the handlers, SIGUSR1 does start Node's inspector (so the check below can fail).
  const bare = startSignals('bare');
  t.after(() => bare.child.kill('SIGKILL'));
  await bare.until('bare harness ready', () => bare.lines.some((l) => l.ready));
  bare.child.kill('SIGUSR1');
  await bare.until('the inspector to start in the bare harness', () => /Debugger listening/.test(bare.stderr()));
  bare.child.kill('SIGKILL');

  const h = startSignals('installed');
  t.after(() => h.child.kill('SIGKILL'));
  await h.until('harness ready', () => h.lines.some((l) => l.ready));
  const intent = async (signal: NodeJS.Signals, expected: string) => {
    const before = h.lines.length;
    h.child.kill(signal);
    await h.until(`${signal} → ${expected}`, () => h.lines.slice(before).some((l) => l.signal === signal && l.intent === expected));
  };
  await intent('SIGUSR1', 'graceful-stop');
  for (const signal of ['SIGALRM', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGTRAP', 'SIGSYS', 'SIGIO', 'SIGABRT', 'SIGSTKFLT'] as const) {
    const before = h.lines.length;
    h.child.kill(signal);
    await h.until(`${signal} ignored`, () => h.lines.slice(before).some((l) => l.msg === 'signal ignored' && l.signal === signal));
  }
  await intent('SIGHUP', 'reload');
  await intent('SIGUSR2', 'reload');
  await intent('SIGPWR', 'graceful-stop');
  await intent('SIGTTIN', 'relay');
  // Still alive through all of the above: SIGINT is handled and ends it cleanly.
  h.child.kill('SIGINT');
  const run = await h.child;
  assert.equal(run.exitCode, 0);
  assert.equal(run.signal, undefined);
  assert.deepEqual(h.lines.at(-1), { exit: true, code: 0, signal: null });
  assert.doesNotMatch(h.stderr(), /Debugger listening/);
});
