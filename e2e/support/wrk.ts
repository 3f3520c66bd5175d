/**
 * wrk (Debian's) as the load generator of the reload benchmark and the zero-reload tests: started with a long duration and
 * stopped with SIGINT when the changes are done (wrk then prints its summary as usual), its
 * output parsed into requests, socket errors and non-2xx/3xx answers.
 */
import { spawn } from 'node:child_process';

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** wrk counts answers with a status above 399 ("Non-2xx or 3xx responses"). */
  badStatus: number;
  /** socket errors + bad statuses. */
  failed: number;
  raw: string;
}

export function parseWrk(text: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const m = /^\s*(\d+) requests in ([\d.]+)(ms|s|m)/m.exec(text);
  if (!m) throw new Error(`wrk printed no summary:\n${text}`);
  const unit = m[3] === 'ms' ? 0.001 : m[3] === 'm' ? 60 : 1;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = se ? { connect: Number(se[1]), read: Number(se[2]), write: Number(se[3]), timeout: Number(se[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 };
  const badStatus = num(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requests: Number(m[1]),
    durationS: Number(m[2]) * unit,
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    socketErrors,
    badStatus,
    failed: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout + badStatus,
    raw: text,
  };
}

export interface WrkRun {
  pid: number;
  /** SIGINT: wrk stops, prints its summary and exits. */
  stop(): Promise<WrkResult>;
}

/** `enter`: a command prefix that runs wrk inside a network namespace (`ip netns exec <name>`). */
export function startWrk(url: string, options: { connections: number; threads: number; close: boolean; maxSeconds: number; enter?: readonly string[] }): WrkRun {
  const args = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${options.maxSeconds}s`, '--timeout', '5s', ...(options.close ? ['-H', 'Connection: close'] : []), url];
  const full = [...(options.enter ?? []), 'wrk', ...args];
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      return parseWrk(out);
    },
  };
}
