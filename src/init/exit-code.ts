import { constants } from 'node:os';
import { isPilotError } from '../errors.js';

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

/** Errors found before HAProxy runs a config are configuration errors (78); the rest are internal (70). */
export function exitCodeFor(err: unknown): number {
  if (isPilotError(err, 'E_CONFIG') || isPilotError(err, 'E_TEMPLATE') || isPilotError(err, 'E_VALUE') || isPilotError(err, 'E_CHECK')) return ExitCode.CONFIG;
  if (isPilotError(err, 'E_HAPROXY')) {
    // The master exited before it was ready: its own code; HAProxy missing: EX_UNAVAILABLE.
    const exit = err.details as { code?: number | null; signal?: NodeJS.Signals | null } | undefined;
    return exit && (typeof exit.code === 'number' || exit.signal) ? childExitCode(exit.code ?? null, exit.signal ?? null) : ExitCode.UNAVAILABLE;
  }
  return ExitCode.INTERNAL;
}
