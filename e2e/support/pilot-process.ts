/**
 * Runs the real haproxy-pilot binary as PID 1 of fresh PID, mount and network namespaces
 * (`unshare --pid --fork --mount-proc --net`), like a container without a container engine.
 * The network namespace gives every test its own :8080 and :1936; HTTP goes in through
 * `nsenter --net`. Everything is stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

export interface PilotProcess {
  /** Host pid of the `unshare` process. */
  unsharePid: number;
  /** Host pid of haproxy-pilot (PID 1 in its namespace). */
  pid(): Promise<number>;
  /** JSON log lines so far, and every raw stdout/stderr line. */
  logs: LogLine[];
  lines: string[];
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  waitForLine(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with unshare's exit code (haproxy-pilot's, since unshare --fork passes it on). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(sig: NodeJS.Signals): Promise<void>;
  /** Run a command inside the namespaces (nsenter --net --pid), e.g. curl. */
  exec(args: string[], options?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  http(path: string, port?: number, extra?: string[]): Promise<{ status: number; body: string }>;
  kill(): Promise<void>;
}

export interface StartOptions {
  /** false: only a network namespace, so haproxy-pilot is not PID 1 (it becomes a subreaper). */
  pid1?: boolean;
  args?: string[];
  /** Run in this existing network namespace (see createNetns) instead of a new one, so servers started there first are reachable. */
  netns?: Netns;
  /** The Node.js binary to run haproxy-pilot with (default: the one running the tests). */
  node?: string;
  /** The script to run instead of dist/src/main.js (a wrapper around it). */
  main?: string;
  /** Run haproxy-pilot as this uid (and gid), without root (setpriv, after the namespaces are made). */
  user?: number;
  /** Shell commands run inside the namespaces before haproxy-pilot (pid1 only: a private mount namespace, e.g. a bind mount). */
  setup?: string;
}

/** A named network namespace (`ip netns add`) with loopback up: start stores in it before haproxy-pilot. */
export interface Netns {
  name: string;
  /** Command prefix that runs a command inside it. */
  enter: string[];
  remove(): Promise<void>;
}

export async function createNetns(): Promise<Netns> {
  const name = `pilot-e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await execa('ip', ['netns', 'add', name]);
  await execa('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return { name, enter: ['ip', 'netns', 'exec', name], remove: async () => void (await execa('ip', ['netns', 'delete', name], { reject: false })) };
}

export function startPilot(env: Record<string, string>, { pid1 = true, args = [], netns, node = process.execPath, main = MAIN, user, setup }: StartOptions = {}): PilotProcess {
  const drop = user === undefined ? '' : `setpriv --reuid=${user} --regid=${user} --clear-groups `;
  const script = `PATH="/usr/sbin:/sbin:$PATH" ip link set lo up && ${setup ? `${setup} && ` : ''}exec ${drop}"$0" "$@"`;
  const namespaces = [...(pid1 ? ['--pid', '--fork', '--mount-proc'] : []), ...(netns ? [] : ['--net'])];
  // dash drops variables whose names are not shell names (seed 001's `HAPROXY-ID`): pass those
  // through env(1) after the shell, as a container runtime would pass them.
  const unshellable = Object.entries(env).filter(([k]) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  const viaEnv = unshellable.length > 0 ? ['env', ...unshellable.map(([k, v]) => `${k}=${v}`)] : [];
  const command = [...(netns?.enter ?? []), 'unshare', ...namespaces, 'sh', '-c', script, ...viaEnv, node, main, ...args];
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PILOT_LOG_LEVEL: 'debug', ...Object.fromEntries(Object.entries(env).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const feed = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (process.env.PILOT_E2E_VERBOSE) process.stderr.write(`  | ${line}\n`);
        if (line.startsWith('{')) {
          try {
            logs.push(JSON.parse(line) as LogLine);
          } catch {
            /* not ours */
          }
        }
        for (const w of waiters) w();
      }
    });
  };
  feed(child.stdout!);
  feed(child.stderr!);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    }),
  );
  let ended = false;
  void exited.then(() => (ended = true));

  function waitFor<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          cleanup();
          resolve(found);
        } else if (ended) {
          cleanup();
          reject(new Error(`haproxy-pilot exited while waiting for ${what}; output:\n${lines.slice(-40).join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; output:\n${lines.slice(-40).join('\n')}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  async function pid(): Promise<number> {
    // Without --fork, `ip netns exec`, unshare and sh exec into node: same pid.
    if (!pid1) return child.pid!;
    // unshare --fork: its only child is the namespace's PID 1 (sh, which exec'd node).
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      // (`ip netns exec` execs into unshare, so child.pid is unshare's pid either way.)
      const kids = childrenOf(child.pid!);
      if (kids.length > 0) return kids[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('haproxy-pilot did not start');
  }

  async function exec(args: string[], { timeoutMs = 15_000 } = {}) {
    const target = await pid();
    const r = await execa('nsenter', ['--target', String(target), '--net', ...(pid1 ? ['--pid'] : []), ...args], { reject: false, timeout: timeoutMs });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  }

  return {
    unsharePid: child.pid!,
    pid,
    logs,
    lines,
    waitForLog: (pred, timeoutMs = 20_000) => waitFor(() => logs.find(pred), 'a log line', timeoutMs),
    waitForLine: (pred, timeoutMs = 20_000) => waitFor(() => lines.find(pred), 'an output line', timeoutMs),
    exited,
    signal: async (sig) => void process.kill(await pid(), sig),
    exec,
    http: async (path, port = 8080, extra = []) => {
      const r = await exec(['curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '10', ...extra, `http://127.0.0.1:${port}${path}`]);
      const at = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(at + 1)) || 0, body: r.stdout.slice(0, Math.max(0, at)) };
    },
    kill: async () => {
      if (ended) return;
      // SIGKILL to the namespace's PID 1 kills every process in the namespace (kernel rule).
      // Not PID 1, its descendants would be orphaned (and hold our pipes open): kill them all.
      const root = await pid().catch(() => undefined);
      const tree = root === undefined ? [] : [root, ...(pid1 ? [] : descendants(root).map((d) => d.pid))];
      for (const p of tree) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Direct children of a host pid. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const task of safeReaddir(`/proc/${pid}/task`)) {
    const text = safeRead(`/proc/${pid}/task/${task}/children`);
    for (const p of text.split(' ')) if (p.trim()) out.push(Number(p));
  }
  return out;
}

/** Every descendant of a host pid with its state letter (R, S, Z, …) and command name. */
export function descendants(pid: number): { pid: number; state: string; comm: string }[] {
  const out: { pid: number; state: string; comm: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const kid of childrenOf(queue.shift()!)) {
      const stat = safeRead(`/proc/${kid}/stat`);
      const m = /^\d+ \((.*)\) (\S)/s.exec(stat);
      if (!m) continue;
      out.push({ pid: kid, comm: m[1]!, state: m[2]! });
      queue.push(kid);
    }
  }
  return out;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export async function eventually<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}${last ? ` (${String(last)})` : ''}`);
}
