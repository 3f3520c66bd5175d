/**
 * `haproxy -c`: the gate every candidate config passes before it may replace the running one.
 * It parses the whole file and resolves what it can, but it does not bind listeners (a busy
 * port is caught by ports.ts instead). HAProxy prints its verdict on stderr as lines like
 * `[ALERT]    (123) : config : parsing [/run/x.cfg:10] : unknown keyword 'foo' in 'frontend' section`.
 */
import { execa } from 'execa';
import { PilotError } from '../errors.js';

export interface CheckOptions {
  /** HAProxy binary. */
  bin: string;
  /** The config file to check. */
  path: string;
  /** HAProxy's `-C`: the folder relative paths in the config (certificates) resolve against. */
  chdir?: string;
  /** Kill `haproxy -c` after this long (a config with many resolvable names can be slow). */
  timeoutMs?: number;
}

export interface CheckResult {
  /** Everything HAProxy printed (stdout then stderr). */
  output: string;
  /** `[WARNING]` lines of an accepted config, for the log. */
  warnings: string[];
}

/** The checker the applier calls; tests inject a fake. Throws PilotError('E_CHECK') on rejection. */
export type ConfigChecker = (options: CheckOptions) => Promise<CheckResult>;

const DEFAULT_TIMEOUT_MS = 30_000;

/** The first `[ALERT]` line without its `[ALERT]    (pid) : ` prefix, or undefined. */
export function firstAlert(output: string): string | undefined {
  for (const line of output.split('\n')) {
    const m = /^\[ALERT\]\s*(?:\(\d+\)\s*)?:\s*(.*)$/.exec(line.trim());
    if (m?.[1]) return m[1].trim();
  }
  return undefined;
}

/** The `file:line` of the first `parsing [file:line]` mention, if HAProxy gave one. */
export function alertLocation(output: string): { file: string; line: number } | undefined {
  const m = /parsing \[([^\]\n]+):(\d+)\]/.exec(output);
  if (!m?.[1] || !m[2]) return undefined;
  return { file: m[1], line: Number(m[2]) };
}

export const checkConfig: ConfigChecker = async ({ bin, path, chdir, timeoutMs = DEFAULT_TIMEOUT_MS }) => {
  let result;
  try {
    // -q is not used: it also hides the ALERT lines we need to explain a rejection.
    result = await execa(bin, ['-c', ...(chdir ? ['-C', chdir] : []), '-f', path], {
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
      env: { LC_ALL: 'C' },
      extendEnv: true,
    });
  } catch (err) {
    throw new PilotError('E_CHECK', `could not run ${bin} -c -f ${path}: ${(err as Error).message}`, { cause: err, details: { file: path } });
  }
  const output = [result.stdout, result.stderr].filter((s) => typeof s === 'string' && s.length > 0).join('\n');
  if (result.failed) {
    let why: string;
    if (result.timedOut) why = `timed out after ${timeoutMs} ms`;
    else if (result.exitCode === undefined) why = result.shortMessage ?? 'could not run it';
    else why = firstAlert(output) ?? `exit code ${result.exitCode}`;
    const location = alertLocation(output);
    throw new PilotError('E_CHECK', `haproxy -c rejected ${path}: ${why}`, {
      details: { file: path, ...(location ? { line: location.line } : {}), exitCode: result.exitCode, output },
    });
  }
  const warnings = output.split('\n').filter((l) => l.startsWith('[WARNING]'));
  return { output, warnings };
};
