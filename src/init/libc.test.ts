import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { decodeWaitStatus, loadLibc, type Libc, type WaitResult } from './libc.js';

test('wait statuses decode like the W* macros', () => {
  assert.deepEqual(decodeWaitStatus(9, 0x0000), { pid: 9, code: 0, signal: null });
  assert.deepEqual(decodeWaitStatus(9, 42 << 8), { pid: 9, code: 42, signal: null });
  assert.deepEqual(decodeWaitStatus(9, 15), { pid: 9, code: null, signal: 15 });
  assert.deepEqual(decodeWaitStatus(9, 0x80 | 6), { pid: 9, code: null, signal: 6 }, 'core dumped');
});

/** Polls until the orphan is reparented to us and has ended (ECHILD while it is still another's child). */
async function waitFor(libc: Libc, pid: number): Promise<WaitResult> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = libc.waitpidNoHang(pid);
    if (r !== null && r !== 'ECHILD') return r;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`orphan ${pid} was not reaped in time`);
}

test('real libc: as a subreaper we receive and reap orphans with their code or signal', async () => {
  const libc = loadLibc();
  assert.equal(libc.setChildSubreaper(), true);
  assert.equal(libc.waitpidNoHang(2 ** 22 - 1), 'ECHILD', 'not our child');
  // sh starts a background job, prints its pid and exits: the job is orphaned to us.
  const orphan = (script: string) => Number(execFileSync('sh', ['-c', `${script} >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
  // The job waits until it has been reparented (its PPid changed), so its parent cannot reap it first.
  // (The first sh passes its own pid as $1: $PPID would already be ours if it exited first.)
  const exited = orphan(`sh -c 'while [ "$(cut -d" " -f4 /proc/$$/stat)" = "$1" ]; do sleep 0.01; done; exit 7' _ $$`);
  const sleeper = orphan('sleep 30');
  assert.deepEqual(await waitFor(libc, exited), { pid: exited, code: 7, signal: null });
  assert.equal(libc.waitpidNoHang(sleeper), null, 'still running');
  process.kill(sleeper, 'SIGKILL');
  assert.deepEqual(await waitFor(libc, sleeper), { pid: sleeper, code: null, signal: 9 });
});
