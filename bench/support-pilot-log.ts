/**
 * haproxy-pilot as a plain child process (not PID 1) whose JSON log lines are timed as they
 * arrive, for benchmarks that time "something → a log line" (a forced reload, a file change
 * applied). Stopped with SIGTERM by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { PILOT_MAIN } from './support-pilot.js';
import { sleep } from './support-doc.js';

export interface LoggedLine {
  msg: string;
  at: number;
  fields: Record<string, unknown>;
}

export interface LoggedPilot {
  child: ChildProcess;
  pid: number;
  lines: LoggedLine[];
  /** The first line whose msg starts with `msg` that arrived at or after `after` (performance.now()). */
  waitFor(msg: string, after: number, timeoutMs?: number): Promise<LoggedLine>;
  stop(): Promise<void>;
}

export async function startLoggedPilot(env: Record<string, string>, options: { nodeArgs?: string[]; startTimeoutMs?: number } = {}): Promise<LoggedPilot> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), PILOT_MAIN], {
    env: { PATH: process.env.PATH, PILOT_LOG_LEVEL: 'info', HAPROXY_LOG_FORMAT: 'none', STATS_PASSWORD: 'bench', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LoggedLine[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const at = performance.now();
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.startsWith('{')) continue;
      try {
        const fields = JSON.parse(line) as Record<string, unknown>;
        lines.push({ msg: String(fields.msg), at, fields });
      } catch {
        /* not ours */
      }
    }
  });
  let stderr = '';
  // HAProxy's notices go to stderr: keep the tail for a failure message, drop the rest.
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const waitFor = async (msg: string, after: number, timeoutMs = 120_000): Promise<LoggedLine> => {
    const deadline = performance.now() + timeoutMs;
    for (let from = 0; ; ) {
      for (; from < lines.length; from++) {
        const l = lines[from]!;
        if (l.at >= after && l.msg.startsWith(msg)) return l;
      }
      if (child.exitCode !== null) throw new Error(`haproxy-pilot exited while waiting for "${msg}":\n${stderr}`);
      if (performance.now() > deadline) throw new Error(`no "${msg}" log line within ${timeoutMs} ms`);
      await sleep(1);
    }
  };
  await waitFor('started:', 0, options.startTimeoutMs ?? 300_000);
  return {
    child,
    pid: child.pid!,
    lines,
    waitFor,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
