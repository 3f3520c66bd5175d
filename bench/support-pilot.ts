/**
 * haproxy-pilot for the reload benchmark: the real binary as PID 1 of its own PID namespace
 * (`unshare --pid --fork --mount-proc`), in the benchmark's network namespace, its output
 * going to a log file. Stopped by pid (SIGTERM to the namespace's PID 1, SIGKILL after a while).
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PILOT_MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface BenchPilot {
  status(): Promise<PilotStatus>;
  stop(): Promise<void>;
}

export interface PilotStatus {
  haproxy: { workers: number[]; reloads: number; version?: string };
  apply: { reloads: number; runtimeOps: number; applyFailures: number; lastApply?: { ok: boolean; kind: string; error?: { message: string } } };
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const p of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (p.trim()) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startBenchPilot(env: Record<string, string>, logFile: string, controlPort = 7778): Promise<BenchPilot> {
  const fd = openSync(logFile, 'a');
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, PILOT_MAIN], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exited = false;
  const done = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const base = `http://127.0.0.1:${controlPort}`;
  const status = async (): Promise<PilotStatus> => {
    const res = await fetch(`${base}/status`);
    if (!res.ok) throw new Error(`/status answered ${res.status}`);
    return (await res.json()) as PilotStatus;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`haproxy-pilot exited at start; see ${logFile}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`haproxy-pilot not healthy after 30 s; see ${logFile}`);
    await sleep(50);
  }
  return {
    status,
    stop: async () => {
      if (exited) return;
      const pid1 = childrenOf(child.pid!)[0];
      if (pid1) process.kill(pid1, 'SIGTERM');
      const timer = setTimeout(() => {
        // SIGKILL to the namespace's PID 1 takes every process in the namespace with it.
        if (pid1) {
          try {
            process.kill(pid1, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }, 15_000);
      await done;
      clearTimeout(timer);
    },
  };
}
