import { createRequire } from 'node:module';
import { PilotError } from '../errors.js';

/** A reaped child: its exit code, or the signal that killed it (the other one is null). */
export interface WaitResult {
  pid: number;
  code: number | null;
  signal: number | null;
}

/**
 * The two libc calls PID-1 duties need and Node does not expose. An interface so tests (and
 * platforms without libc) can inject a fake.
 */
export interface Libc {
  /** prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our subtree are reparented to us. */
  setChildSubreaper(): boolean;
  /**
   * waitpid(pid, &status, WNOHANG): the child's end if it had exited (and is now reaped), null
   * while it still runs, 'ECHILD' when it is not (or no longer) our child.
   */
  waitpidNoHang(pid: number): WaitResult | null | 'ECHILD';
}

// <linux/prctl.h>, <sys/wait.h>, <errno.h> (same on every Linux architecture Node supports).
const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const ECHILD = 10;
const EINTR = 4;

/** Decodes a wait status like the W* macros of <sys/wait.h>. */
export function decodeWaitStatus(pid: number, status: number): WaitResult {
  const low = status & 0x7f;
  if (low === 0) return { pid, code: (status >> 8) & 0xff, signal: null }; // WIFEXITED
  if (low !== 0x7f) return { pid, code: null, signal: low }; // WIFSIGNALED (core flag is 0x80)
  // WIFSTOPPED/WIFCONTINUED: only reported with WUNTRACED/WCONTINUED, which we never pass.
  return { pid, code: null, signal: null };
}

type Koffi = typeof import('koffi');

/**
 * Binds libc through koffi (prebuilt binaries, no compiler in the image). Loaded on demand so a
 * process that never reaps (CLI subcommands) does not pay for the native module.
 */
export function loadLibc(): Libc {
  let koffi: Koffi;
  let prctl: (...args: unknown[]) => number;
  let waitpid: (pid: number, status: number[], options: number) => number;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load('libc.so.6');
    // prctl is variadic in glibc; declaring it so keeps the x86-64 varargs ABI (%al) right.
    prctl = lib.func('int prctl(int option, ...)') as (...args: unknown[]) => number;
    waitpid = lib.func('int waitpid(int pid, _Out_ int *status, int options)') as typeof waitpid;
  } catch (cause) {
    throw new PilotError('E_INTERNAL', 'cannot bind libc.so.6 through koffi (needed to reap orphans as PID 1)', {
      cause,
    });
  }
  return {
    setChildSubreaper() {
      const ul = 'unsigned long';
      return prctl(PR_SET_CHILD_SUBREAPER, ul, 1, ul, 0, ul, 0, ul, 0) === 0;
    },
    waitpidNoHang(pid) {
      const status = [0];
      for (;;) {
        const r = waitpid(pid, status, WNOHANG);
        if (r > 0) return decodeWaitStatus(r, status[0] ?? 0);
        if (r === 0) return null;
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        if (errno === ECHILD) return 'ECHILD';
        throw new PilotError('E_INTERNAL', `waitpid(${pid}, WNOHANG) failed with errno ${errno}`, {
          details: { pid, errno },
        });
      }
    },
  };
}
