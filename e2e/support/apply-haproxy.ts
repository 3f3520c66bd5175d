/**
 * A minimal HaproxyMaster for the applier's e2e tests: real `haproxy -W -db -S <sock> -f <cfg>`,
 * reload = SIGUSR2 then poll `show proc` on the master CLI until a new worker pid appears (the
 * 2.6 way: its master CLI has no `reload` command that answers). Not the product's supervisor
 * (src/supervise/), just enough to drive src/apply against a real HAProxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import type { ExitInfo, HaproxyMaster, MasterStatus, ReloadResult } from '../../src/haproxy/master.js';

export interface ShowProc {
  masterPid?: number;
  reloads: number;
  failedReloads: number;
  workers: number[];
  oldWorkers: number[];
}

/** Parses 2.6's `show proc`: the master line, then `# workers`, `# old workers`, `# programs`. */
export function parseShowProc(text: string): ShowProc {
  const out: ShowProc = { reloads: 0, failedReloads: 0, workers: [], oldWorkers: [] };
  let section: 'head' | 'workers' | 'old' | 'other' = 'head';
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      if (/^# workers/.test(line)) section = 'workers';
      else if (/^# old workers/.test(line)) section = 'old';
      else if (!line.startsWith('#<PID>')) section = 'other';
      continue;
    }
    const cols = line.trim().split(/\s+/);
    const pid = Number(cols[0]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (cols[1] === 'master') {
      out.masterPid = pid;
      out.reloads = Number(cols[2]) || 0;
      const failed = /\[failed: (\d+)\]/.exec(line);
      out.failedReloads = failed?.[1] ? Number(failed[1]) : 0;
    } else if (section === 'workers') out.workers.push(pid);
    else if (section === 'old') out.oldWorkers.push(pid);
  }
  return out;
}

/** One master CLI command: write it, half-close (the master then answers and closes), read all. */
export function masterCli(socket: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let data = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`master CLI ${JSON.stringify(command)}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.end(`${command}\n`));
    conn.on('data', (d: string) => (data += d));
    conn.on('end', () => {
      clearTimeout(timer);
      resolve(data);
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export interface TestMaster extends HaproxyMaster {
  readonly child: ChildProcess;
  showProc(): Promise<ShowProc>;
  /** Everything HAProxy printed, for failure messages. */
  output(): string;
}

export function createTestMaster(opts: { bin?: string; configPath: string; socket: string; timeoutMs?: number }): TestMaster {
  const bin = opts.bin ?? 'haproxy';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let out = '';
  let status: MasterStatus = { workers: [], oldWorkers: [], reloads: 0 };
  let exitedResolve!: (e: ExitInfo) => void;
  const exited = new Promise<ExitInfo>((r) => (exitedResolve = r));
  let reloading: Promise<unknown> = Promise.resolve();

  const showProc = async () => {
    const p = parseShowProc(await masterCli(opts.socket, 'show proc'));
    status = { ...status, ...(p.masterPid ? { masterPid: p.masterPid } : {}), workers: p.workers, oldWorkers: p.oldWorkers, reloads: p.reloads };
    return p;
  };

  async function doReload(): Promise<ReloadResult> {
    const started = Date.now();
    const before = await showProc();
    child?.kill('SIGUSR2');
    try {
      const after = await until('a new worker after SIGUSR2', timeoutMs, async () => {
        const p = await showProc();
        if (p.failedReloads > before.failedReloads) return p;
        return p.reloads > before.reloads && p.workers.some((w) => !before.workers.includes(w)) ? p : undefined;
      });
      if (after.failedReloads > before.failedReloads) {
        return { ok: false, workers: after.workers, reloads: after.reloads, error: 'the master reports a failed reload', durationMs: Date.now() - started };
      }
      status.lastReloadAt = Date.now();
      return { ok: true, workers: after.workers, reloads: after.reloads, durationMs: Date.now() - started };
    } catch (err) {
      return { ok: false, workers: status.workers, error: (err as Error).message, durationMs: Date.now() - started };
    }
  }

  const master: TestMaster = {
    get child() {
      if (!child) throw new Error('not started');
      return child;
    },
    exited,
    output: () => out,
    showProc,
    async start() {
      child = spawn(bin, ['-W', '-db', '-S', opts.socket, '-f', opts.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code, signal) => exitedResolve({ code, signal }));
      await until('the HAProxy master and a worker', timeoutMs, async () => ((await showProc()).workers.length > 0 ? true : undefined));
    },
    reload(reason) {
      void reason;
      const run = reloading.then(doReload, doReload);
      reloading = run.catch(() => undefined);
      return run;
    },
    runtime: (command) => masterCli(opts.socket, `@1 ${command}`),
    masterCommand: (command) => masterCli(opts.socket, command),
    status: () => status,
    async stop(mode) {
      if (!child || child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(mode === 'graceful' ? 'SIGUSR1' : 'SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), timeoutMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
    signal(sig) {
      child?.kill(sig);
    },
  };
  return master;
}
