/**
 * Drives the reaper with real processes and prints one JSON line for e2e/reaper.test.ts.
 *   node dist/e2e/support/init-harness.js pid1       (run as PID 1 under unshare --pid --fork --mount-proc)
 *   node dist/e2e/support/init-harness.js subreaper  (run normally: we become a child subreaper)
 * While a shell leaves 200 orphans behind, execa children with known ends run concurrently: each
 * must still report its own code/signal (the reaper must not steal libuv's children).
 */
import { execa } from 'execa';
import { readFileSync, readdirSync } from 'node:fs';
import { createLogger } from '../../src/log.js';
import { createReaper, parseStat } from '../../src/init/reaper.js';

const scenario = process.argv[2] === 'pid1' ? 'pid1' : 'subreaper';
const ORPHANS = 200;
const ROUNDS = 5;

const logLines: Array<Record<string, unknown>> = [];
const log = createLogger({
  level: 'debug',
  format: 'json',
  destination: { write: (s: string) => void logLines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream,
});
// SIGCHLD alone must drive reaping here: the safety-net timer is set far out so it cannot hide a
// missed SIGCHLD.
const reaper = createReaper({ log, intervalMs: 3_600_000 });
const started = reaper.start();

const watchdog = setTimeout(() => finish({ error: 'harness deadline passed (a child never reported its exit?)' }, 2), 45_000);

function finish(result: Record<string, unknown>, code = 0): never {
  process.stdout.write(`${JSON.stringify({ scenario, pid: process.pid, ...started, ...result })}\n`);
  process.exit(code);
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Our children that child_process did not spawn (the orphans reparented to us). */
function foreignChildren(): number[] {
  const owned = reaper.ownedPids();
  const pids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    for (const w of (readOrNull(`/proc/self/task/${tid}/children`) ?? '').split(/\s+/)) {
      if (w !== '' && !owned.has(Number(w))) pids.push(Number(w));
    }
  }
  return pids;
}

function processes(): Array<{ pid: number; state: string; ppid: number }> {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOrNull(`/proc/${name}/stat`);
    const parsed = stat === null ? null : parseStat(stat);
    if (parsed) out.push({ pid: Number(name), ...parsed });
  }
  return out;
}

async function until(what: string, condition: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) finish({ error: `timed out waiting for ${what}` }, 2);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const describe = (r: { signal?: string | undefined; exitCode?: number | undefined }): string =>
  r.signal ? `signal ${r.signal}` : `code ${r.exitCode}`;

/** A child whose 'exit' never comes (its status was stolen) shows up as "no exit reported". */
function withDeadline<T extends { expected: string; got: string }>(p: Promise<T>, expected: string): Promise<T | { expected: string; got: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ expected: string; got: string }>((resolve) => {
    timer = setTimeout(() => resolve({ expected, got: 'no exit reported within 10 s' }), 10_000);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Children with known ends; returns the ones that reported something else. Meanwhile scans run
 * back to back (besides the SIGCHLD-driven ones), so a scan that waited for a pid libuv owns
 * would steal its status and the ChildProcess would never report its exit.
 */
async function exitChecks(): Promise<{ total: number; wrong: unknown[] }> {
  let hammering = true;
  const hammer = (): void => {
    if (!hammering) return;
    reaper.reapNow();
    setImmediate(hammer);
  };
  hammer();
  const wrong: unknown[] = [];
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const killed = execa('sleep', ['30'], { reject: false });
    killed.kill('SIGTERM');
    const results = await Promise.all([
      ...[0, 3, 42].map((code) =>
        withDeadline(
          execa('sh', ['-c', `exit ${code}`], { reject: false }).then((r) => ({ expected: `code ${code}`, got: describe(r) })),
          `code ${code}`,
        ),
      ),
      withDeadline(
        killed.then((r) => ({ expected: 'signal SIGTERM', got: describe(r) })),
        'signal SIGTERM',
      ),
    ]);
    total += results.length;
    wrong.push(...results.filter((r) => r.expected !== r.got));
  }
  hammering = false;
  return { total, wrong };
}

const sleepFor = scenario === 'pid1' ? '0.2' : '30';
// Each ( … & ) subshell exits at once, so its sleep is orphaned: to PID 1 (us) in the namespace,
// or to the nearest subreaper (us) otherwise. Output goes to /dev/null so that execa does not
// wait for the orphans to close its pipes.
const maker = execa('sh', ['-c', `for i in $(seq ${ORPHANS}); do (sleep ${sleepFor} >/dev/null 2>&1 &) ; done`]);
const [, checks] = await Promise.all([maker, exitChecks()]);

let orphansReparented: number | null = null;
let scanMicros: Record<string, number> | null = null;
if (scenario === 'subreaper') {
  // The sleeps run 30 s: all of them must now be ours, by PPid, while they live.
  const orphans = foreignChildren();
  orphansReparented = orphans.filter((pid) => {
    const stat = readOrNull(`/proc/${pid}/stat`);
    return stat !== null && stat.includes('(sleep)') && parseStat(stat)?.ppid === process.pid;
  }).length;
  // For the lead's information: one scan over ~200 live children (waitpid answers "running").
  const samples: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = process.hrtime.bigint();
    reaper.reapNow();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  scanMicros = { children: orphans.length, median: Math.round(samples[10]!), max: Math.round(samples[20]!) };
  for (const pid of orphans) process.kill(pid, 'SIGTERM');
}

// Every orphan has been reparented by now (each subshell was waited for by the maker), so once
// no foreign child is left, every one of them was reaped.
await until('all orphans to be reaped', () => foreignChildren().length === 0);
const all = processes();
const zombies =
  scenario === 'pid1'
    ? all.filter((p) => p.state === 'Z').length // the whole namespace
    : all.filter((p) => p.state === 'Z' && p.ppid === process.pid).length;
const reaped = logLines.filter((l) => l.msg === 'reaped orphan');
const ends: Record<string, number> = {};
for (const l of reaped) {
  const end = l.signal === null ? `code ${String(l.code)}` : `signal ${String(l.signal)}`;
  ends[end] = (ends[end] ?? 0) + 1;
}
clearTimeout(watchdog);
reaper.stop();
finish({ exitChecks: checks, orphansReparented, reapedOrphans: { count: reaped.length, ends }, zombies, scanMicros });
