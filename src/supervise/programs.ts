/**
 * Helper programs next to HAProxy (what `program` sections did, which 3.1 deprecates and 3.3
 * removes): started without a shell, output prefixed per line, restarted by policy with
 * exponential backoff, restarted on HAProxy reloads when asked, stopped in reverse order.
 */
import type { Logger } from '../log.js';
import type { ProgramSpec } from '../config/types.js';
import { PilotError, describeError } from '../errors.js';
import { spawnWithExeca, type ChildExit, type ChildHandle, type SpawnFn } from './child.js';
import { readIdentityFiles, resolveIdentity, type IdentityFiles } from './identity.js';
import { pipeLines, type LineSink } from './line-prefix.js';
import type { ExitInfo } from '../haproxy/master.js';
import { processOutput } from '../output.js';

export type ProgramState = 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited' | 'failed';

export interface ProgramStatus {
  name: string;
  pid?: number;
  /** Restarts after an exit (by the restart policy); reload restarts are not counted. */
  restarts: number;
  lastExit?: ExitInfo;
  state: ProgramState;
  origin: string;
  /** Failed starts in a row: the process could not be started, or ended in failure before running resetAfterMs. */
  failures: number;
  /** Why the last failed start failed (`spawn /x ENOENT`, `exited with code 1`). */
  lastError?: string;
  /** The program will not be tried again: it cannot start (unknown user, empty command) or its policy says so. */
  gaveUp?: boolean;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface BackoffPolicy {
  /** First restart delay; doubles per consecutive failure. */
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the backoff. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 10_000 };

export interface ProgramSupervisorOptions {
  log: Logger;
  specs: ProgramSpec[];
  spawn?: SpawnFn;
  clock?: Clock;
  backoff?: Partial<BackoffPolicy>;
  /** Where prefixed lines go (default: process.stdout / process.stderr). */
  output?: { stdout: LineSink; stderr: LineSink };
  /** /etc/passwd and /etc/group contents (default: read when a program has user/group). */
  identityFiles?: () => IdentityFiles;
  /** On a reload restart, SIGKILL a program that ignores SIGTERM after this long. Default 10 s. */
  restartStopTimeoutMs?: number;
  /** Called for each restart after an exit (for metrics). */
  onRestart?: (name: string) => void;
}

export interface ProgramSupervisor {
  /** Replace the program list. Before start(): just stored. After: removed/changed ones are stopped, new/changed ones started. */
  setSpecs(specs: ProgramSpec[]): void;
  /** Start every program (in list order). Never throws: a program that cannot start is retried or marked failed. */
  start(): void;
  /** SIGTERM in reverse start order; SIGKILL (process group) what is left at the deadline. */
  stopAll(timeoutMs: number): Promise<void>;
  /** Restart the `startOnReload` programs (HAProxy reloaded). */
  onHaproxyReload(): void;
  status(): ProgramStatus[];
}

interface Proc {
  spec: ProgramSpec;
  child?: ChildHandle;
  exited?: Promise<ChildExit>;
  restarts: number;
  lastExit?: ExitInfo;
  state: ProgramState;
  startedAt: number;
  failures: number;
  timer?: unknown;
  /** Failed starts in a row (for /health); `failures` is the backoff's count. */
  streak: number;
  lastError?: string;
  gaveUp?: boolean;
  /** Relaunch right after the current instance exits (reload restart / changed spec). */
  relaunch?: ProgramSpec;
  removed?: boolean;
}

export function createProgramSupervisor(options: ProgramSupervisorOptions): ProgramSupervisor {
  const log = options.log;
  const spawn = options.spawn ?? spawnWithExeca;
  const clock = options.clock ?? systemClock;
  const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...options.backoff };
  // Bounded and asynchronous like the log: a stalled reader drops lines, it never blocks us.
  const output = options.output ?? { stdout: processOutput(1), stderr: processOutput(2) };
  const identityFiles = options.identityFiles ?? (() => readIdentityFiles());
  const restartStopTimeoutMs = options.restartStopTimeoutMs ?? 10_000;

  let specs = [...options.specs];
  let started = false;
  let stopping = false;
  /** In start order; the order stopAll reverses. */
  let procs: Proc[] = [];
  /** Exited instances whose process group still has members (a background child holding the pipes): killed at stopAll. */
  const leftovers = new Set<ChildHandle>();

  function launch(p: Proc): void {
    const { spec } = p;
    const what = `program ${spec.name} (${spec.origin})`;
    let identity = {};
    try {
      identity = spec.user !== undefined || spec.group !== undefined ? resolveIdentity(spec.user, spec.group, identityFiles(), what) : {};
    } catch (err) {
      // Retrying cannot help: the user/group does not exist.
      p.state = 'failed';
      p.gaveUp = true;
      p.streak++;
      p.lastError = describeError(err);
      log.error({ program: spec.name, origin: spec.origin, code: 'E_PROGRAM', err: describeError(err) }, `${what} cannot start`);
      return;
    }
    const [file, ...args] = spec.command;
    if (file === undefined) {
      p.state = 'failed';
      p.gaveUp = true;
      p.streak++;
      p.lastError = 'empty command';
      log.error({ program: spec.name, code: 'E_PROGRAM' }, `${what} has an empty command`);
      return;
    }
    const child = spawn(file, args, { stdio: 'pipe', detached: true, ...identity });
    p.child = child;
    p.exited = child.exited;
    p.state = 'running';
    p.gaveUp = false;
    p.startedAt = clock.now();
    if (child.stdout) pipeLines(child.stdout, `[${spec.name}] `, output.stdout);
    if (child.stderr) pipeLines(child.stderr, `[${spec.name}] `, output.stderr);
    if (child.pid !== undefined) log.info({ program: spec.name, pid: child.pid, command: spec.command }, 'program started');
    void child.exited.then((e) => onExit(p, child, e));
  }

  function onExit(p: Proc, child: ChildHandle, e: ChildExit): void {
    if (child.signalGroup?.(0)) {
      leftovers.add(child);
      log.debug({ program: p.spec.name, pgid: child.pid }, 'program exited, leaving processes in its group');
    }
    if (p.child !== child) return;
    p.child = undefined;
    p.exited = undefined;
    p.lastExit = { code: e.code, signal: e.signal };
    const name = p.spec.name;
    if (e.error) {
      const err = new PilotError('E_PROGRAM', `program ${name} (${p.spec.origin}) could not be started: ${e.error.message}`, { cause: e.error });
      log.error({ program: name, code: err.code, err: err.message }, 'program could not be started');
    }
    if (p.removed) {
      p.state = 'stopped';
      replaceProc(p, stopping ? undefined : p.relaunch);
      return;
    }
    if (stopping || p.state === 'stopping') {
      if (p.relaunch && !stopping) {
        p.spec = p.relaunch;
        p.relaunch = undefined;
        p.failures = 0;
        log.info({ program: name }, 'restarting program');
        launch(p);
        return;
      }
      p.state = 'stopped';
      return;
    }
    const failed = e.error !== undefined || e.signal !== null || e.code !== 0;
    // A run that lasted resetAfterMs was a start that worked: the streak of failures is over.
    const ranLong = e.error === undefined && clock.now() - p.startedAt >= backoff.resetAfterMs;
    if (ranLong) p.streak = 0;
    if (failed) {
      p.streak++;
      // execa: "Command failed with ENOENT: /x\nspawn /x ENOENT": its last line says it all.
      p.lastError = e.error ? (e.error.message.trim().split('\n').pop() ?? e.error.message) : e.signal !== null ? `killed by ${e.signal}` : `exited with code ${e.code}`;
    }
    const policy = p.spec.restart;
    if (policy === 'never' || (policy === 'on-failure' && !failed)) {
      p.state = failed ? 'failed' : 'exited';
      if (failed) p.gaveUp = true;
      log.warn({ program: name, code: e.code, signal: e.signal, restart: policy }, 'program exited; not restarting');
      return;
    }
    if (clock.now() - p.startedAt >= backoff.resetAfterMs) p.failures = 0;
    const delayMs = Math.min(backoff.maxMs, backoff.initialMs * 2 ** p.failures);
    p.failures++;
    p.state = 'backoff';
    log.warn({ program: name, code: e.code, signal: e.signal, delayMs }, 'program exited; restarting after backoff');
    p.timer = clock.setTimeout(() => {
      p.timer = undefined;
      if (stopping || p.state !== 'backoff') return;
      p.restarts++;
      options.onRestart?.(p.spec.name);
      launch(p);
    }, delayMs);
  }

  function newProc(spec: ProgramSpec): Proc {
    return { spec, restarts: 0, state: 'stopped', startedAt: 0, failures: 0, streak: 0 };
  }

  /** Drop `p` from the list and, when `spec` is given, launch a fresh instance of it (at the end of the start order). */
  function replaceProc(p: Proc, spec: ProgramSpec | undefined): void {
    procs = procs.filter((q) => q !== p);
    if (!spec) return;
    const fresh = newProc(spec);
    procs.push(fresh);
    launch(fresh);
  }

  /** Ask the current instance to end (SIGTERM) and SIGKILL its group if it ignores that. */
  function terminate(p: Proc, timeoutMs: number): void {
    const child = p.child;
    if (!child) return;
    p.state = 'stopping';
    child.signal('SIGTERM');
    const t = clock.setTimeout(() => {
      if (p.child === child) {
        log.warn({ program: p.spec.name, pid: child.pid }, 'program ignored SIGTERM: SIGKILL');
        child.killTree();
      }
    }, timeoutMs);
    void p.exited?.then(() => clock.clearTimeout(t));
  }

  function start(): void {
    if (started) return;
    started = true;
    procs = specs.map(newProc);
    for (const p of procs) launch(p);
  }

  function setSpecs(next: ProgramSpec[]): void {
    if (!started) {
      specs = [...next];
      return;
    }
    specs = [...next];
    if (stopping) return;
    const byName = new Map(next.map((s) => [s.name, s]));
    for (const p of [...procs]) {
      const want = byName.get(p.spec.name);
      if (p.removed) {
        // The old instance is still stopping (removed procs always have a child: without one they
        // are dropped at once). What comes up once it exits is whatever this list says, even when
        // `want` equals the spec it was removed with.
        if (want) {
          p.removed = false;
          p.relaunch = want;
        } else p.relaunch = undefined;
        continue;
      }
      if (want && JSON.stringify(want) === JSON.stringify(p.spec)) continue;
      p.removed = true;
      if (want) p.relaunch = want;
      if (p.timer !== undefined) clock.clearTimeout(p.timer);
      p.timer = undefined;
      if (p.child) terminate(p, restartStopTimeoutMs);
      else replaceProc(p, want);
    }
    // A relaunch always carries its proc's name, so `known` covers pending relaunches too.
    const known = new Set(procs.map((p) => p.spec.name));
    for (const s of next) {
      if (known.has(s.name)) continue;
      const fresh = newProc(s);
      procs.push(fresh);
      launch(fresh);
    }
  }

  function onHaproxyReload(): void {
    if (!started || stopping) return;
    for (const p of procs) {
      if (!p.spec.startOnReload || p.removed) continue;
      if (p.child) {
        // Keep a relaunch already pending (a re-added program whose old instance is stopping).
        p.relaunch ??= p.spec;
        terminate(p, restartStopTimeoutMs);
      } else if (p.state !== 'stopping') {
        if (p.timer !== undefined) clock.clearTimeout(p.timer);
        p.timer = undefined;
        p.failures = 0;
        launch(p);
      }
    }
  }

  async function stopAll(timeoutMs: number): Promise<void> {
    stopping = true;
    const running: Proc[] = [];
    for (const p of [...procs].reverse()) {
      if (p.timer !== undefined) clock.clearTimeout(p.timer);
      p.timer = undefined;
      p.relaunch = undefined;
      if (p.child) {
        p.state = 'stopping';
        p.child.signal('SIGTERM');
        // The whole group: what the program started goes too, whoever holds its pipes.
        p.child.signalGroup?.('SIGTERM');
        running.push(p);
      } else if (p.state === 'backoff' || p.state === 'running') p.state = 'stopped';
    }
    for (const child of leftovers) child.signalGroup?.('SIGTERM');
    if (running.length === 0 && leftovers.size === 0) return;
    log.info({ programs: running.map((p) => p.spec.name), timeoutMs }, 'stopping programs');
    const all = Promise.all(running.map((p) => p.exited));
    let timer: unknown;
    const deadline = new Promise<'timeout'>((r) => (timer = clock.setTimeout(() => r('timeout'), timeoutMs)));
    let outcome = await Promise.race([all.then(() => 'done' as const), deadline]);
    // Programs exit on their own events (not when their pipes close); then wait for what they left in their groups.
    while (outcome === 'done' && [...leftovers].some((c) => c.signalGroup?.(0))) {
      outcome = await Promise.race([new Promise<'done'>((r) => setTimeout(() => r('done'), 50)), deadline]);
    }
    clock.clearTimeout(timer);
    if (outcome === 'timeout') {
      const left = running.filter((p) => p.child !== undefined);
      log.warn({ programs: left.map((p) => p.spec.name), leftovers: leftovers.size }, 'programs did not stop in time: SIGKILL');
      for (const p of left) p.child?.killTree();
      for (const child of leftovers) child.signalGroup?.('SIGKILL');
      await all;
    }
    leftovers.clear();
  }

  function status(): ProgramStatus[] {
    return procs.map((p) => ({
      name: p.spec.name,
      ...(p.child?.pid !== undefined ? { pid: p.child.pid } : {}),
      restarts: p.restarts,
      ...(p.lastExit ? { lastExit: p.lastExit } : {}),
      state: p.state,
      origin: p.spec.origin,
      failures: p.streak,
      ...(p.lastError !== undefined ? { lastError: p.lastError } : {}),
      ...(p.gaveUp ? { gaveUp: true } : {}),
    }));
  }

  return { setSpecs, start, stopAll, onHaproxyReload, status };
}
