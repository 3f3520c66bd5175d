import { constants } from 'node:os';

/**
 * haproxy-pilot's exit codes (documented in the README):
 * - HAProxy exited on its own: HAProxy's own code, or 128+n when it was killed by signal n.
 * - 0 after a requested clean stop (SIGTERM/SIGUSR1/SIGINT/SIGQUIT).
 * - 78 (EX_CONFIG, sysexits.h) for a configuration error found before start: bad env/yaml,
 *   a template that does not render, a config `haproxy -c` rejects.
 * - 70 (EX_SOFTWARE) for an internal error (uncaught exception) after an orderly stop.
 * - 64 (EX_USAGE) for a bad command line.
 * - 69 (EX_UNAVAILABLE) when HAProxy could not be started at all (binary missing).
 */
export const ExitCode = {
  OK: 0,
  USAGE: 64,
  UNAVAILABLE: 69,
  INTERNAL: 70,
  CONFIG: 78,
} as const;

/** The shell convention for a child's end: its code, or 128 + the signal number. */
export function childExitCode(code: number | null, signal: NodeJS.Signals | null | undefined): number {
  if (code !== null && code !== undefined) return code;
  if (signal) {
    const n = (constants.signals as Record<string, number>)[signal];
    if (n !== undefined) return 128 + n;
  }
  return ExitCode.INTERNAL;
}
