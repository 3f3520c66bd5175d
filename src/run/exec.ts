/**
 * A command that is not haproxy-pilot's own (`docker run … haproxy-pilot sh`, `haproxy -vv`) runs
 * as it is, as the official image's entrypoint runs it with `exec "$@"`. Node cannot exec(2)
 * itself away, so haproxy-pilot stays as its init: the command inherits stdin, stdout and stderr,
 * signals sent to haproxy-pilot are passed on, orphans are reaped, and haproxy-pilot exits with
 * the command's code (128+n when a signal n ended it; 127 when it does not exist, 126 when it
 * cannot be run, as a shell says).
 */
import { spawn } from 'node:child_process';
import { childExitCode } from '../init/exit-code.js';
import type { Logger } from '../log.js';
import { createReaper } from '../init/reaper.js';
import { loadLibc } from '../init/libc.js';

/** Signals passed on to the command. SIGINT/SIGQUIT from a terminal already reach it (same process group): not passed twice then. */
const RELAYED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGTTIN', 'SIGTTOU', 'SIGINT', 'SIGQUIT', 'SIGPWR' as NodeJS.Signals];
const FROM_TERMINAL = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT', 'SIGWINCH']);

export interface ExecIo {
  stderr: NodeJS.WritableStream;
  log: Logger;
  /** Whether haproxy-pilot's stdin is a terminal (then terminal signals reach the command directly). */
  tty: boolean;
}

export async function execAsIs(file: string, args: readonly string[], io: ExecIo): Promise<number> {
  const reaper = createReaper({ libc: loadLibc, log: io.log.child({ component: 'reaper' }) });
  reaper.start();
  const child = spawn(file, [...args], { stdio: 'inherit' });
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of RELAYED) {
    const relay = (): void => {
      if (io.tty && FROM_TERMINAL.has(sig)) return;
      try {
        child.kill(sig);
      } catch {
        /* gone */
      }
    };
    try {
      process.on(sig, relay);
      handlers.set(sig, relay);
    } catch {
      /* a signal this platform does not have */
    }
  }
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'not found' : err.code === 'EACCES' ? 'permission denied' : err.message;
      io.stderr.write(`haproxy-pilot: ${file}: ${why} (not a haproxy-pilot command either: run, render, check, plan, healthcheck, version, help)\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (c, signal) => resolve(childExitCode(c, signal)));
  });
  for (const [sig, fn] of handlers) process.off(sig, fn);
  reaper.stop();
  return code;
}
