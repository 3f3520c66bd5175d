/**
 * The smallest process handle the supervisors need, so tests can inject fakes and the real one
 * stays a thin wrapper over execa.
 */
import { execa } from 'execa';
import type { Readable } from 'node:stream';
import type { ExitInfo } from '../haproxy/master.js';

export interface ChildExit extends ExitInfo {
  /** Set when the process could not be started at all (ENOENT, EACCES, bad uid…). */
  error?: Error;
}

export interface ChildHandle {
  /** Undefined when the spawn failed synchronously (then `exited` resolves with `error`). */
  readonly pid: number | undefined;
  readonly stdout?: Readable | null;
  readonly stderr?: Readable | null;
  /** Resolves once, when the process has ended (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Send a signal to the process (ignored once it is gone). */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL its process group (it was spawned detached) and the process itself. */
  killTree(): void;
  /**
   * Signal the process group of a detached child, also after the child itself exited (what it
   * left behind, e.g. a background child holding its stdout). Signal 0 probes. Returns whether
   * the group still had members. Optional: fakes in unit tests leave it out.
   */
  signalGroup?(signal: NodeJS.Signals | 0): boolean;
}

export interface SpawnOptions {
  /** Inherit the parent's stdout/stderr (HAProxy) or pipe them (programs, to prefix lines); or each its own way. */
  stdio: 'inherit' | 'pipe' | { stdout: 'inherit' | 'pipe'; stderr: 'inherit' | 'pipe' };
  /** Own process group (setsid), so what is left can be SIGKILLed as a group. */
  detached: boolean;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

export type SpawnFn = (file: string, args: readonly string[], options: SpawnOptions) => ChildHandle;

/** execa without a shell; stdin is never given to children (PID 1 has nothing to give). */
export const spawnWithExeca: SpawnFn = (file, args, options) => {
  const sub = execa(file, [...args], {
    stdin: 'ignore',
    stdout: typeof options.stdio === 'string' ? options.stdio : options.stdio.stdout,
    stderr: typeof options.stdio === 'string' ? options.stdio : options.stdio.stderr,
    detached: options.detached,
    // Our own signal-exit hook (haproxy.ts) and stopAll (programs.ts) decide how children end.
    cleanup: false,
    reject: false,
    buffer: false,
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
    ...(options.env ? { env: options.env, extendEnv: false } : {}),
  });
  // The process's exit, not the end of its output: execa's promise also waits for stdout and
  // stderr to close, which a leftover child holding them can postpone forever.
  const exitEvent = new Promise<ChildExit>((resolve) => {
    sub.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const settled = sub.then(
    (r): ChildExit => {
      const signal = (r.signal ?? null) as NodeJS.Signals | null;
      const code = r.exitCode ?? null;
      if (code === null && signal === null && r.failed) {
        return { code, signal, error: r instanceof Error ? r : new Error(String(r.message ?? 'spawn failed')) };
      }
      return { code, signal };
    },
    (err: unknown): ChildExit => ({ code: null, signal: null, error: err instanceof Error ? err : new Error(String(err)) }),
  );
  // A spawn that fails (ENOENT, EACCES…) emits no 'exit': execa's result carries the error.
  const exited = Promise.race([exitEvent, settled]);
  let done = false;
  void exited.then(() => (done = true));
  const pid = sub.pid;
  return {
    pid,
    stdout: sub.stdout,
    stderr: sub.stderr,
    exited,
    // Once reaped, the pid may belong to someone else: never signal it again.
    signal: (sig) => {
      if (pid !== undefined && !done) sendSignal(pid, sig);
    },
    killTree: () => {
      if (pid !== undefined && !done) killGroup(pid, 'SIGKILL');
    },
    ...(options.detached
      ? {
          // A group id is not reused while the group has members, so this is safe after the exit.
          signalGroup: (sig: NodeJS.Signals | 0) => pid !== undefined && signalGroupOf(pid, sig),
        }
      : {}),
  };
};

/** process.kill that ignores ESRCH (the process is already gone). Returns whether it was sent. */
export function sendSignal(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** SIGKILL a detached child's whole process group, then the child itself (if not a leader). */
export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  sendSignal(-pid, signal);
  sendSignal(pid, signal);
}

/** Signal (or, with 0, probe) process group `pgid`; whether it had members. EPERM counts as present. */
export function signalGroupOf(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
