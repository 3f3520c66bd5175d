/**
 * Helpers for e2e/render-apply.test.ts and e2e/cli-commands.test.ts, on top of
 * pilot-process.ts: a pilot in its own named network namespace with everything cleaned up
 * by pid, its /status and /health read from inside the namespace, a self-signed certificate
 * made with openssl, the backend and poller helper scripts, and atomic discovery-file writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createNetns, startPilot, MAIN, type Netns, type PilotProcess } from './pilot-process.js';

export { MAIN };

/** The compiled helper scripts (dist/e2e/support/…). */
export const BACKEND_SCRIPT = fileURLToPath(new URL('./render-backend.js', import.meta.url));
export const POLLER_SCRIPT = fileURLToPath(new URL('./render-poller.js', import.meta.url));

/** Cleanup registration, as node:test's `t.after` (kept structural so any runner fits). */
export interface Cleanup {
  after(fn: () => unknown): void;
}

export async function tempDir(t: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function netnsFor(t: Cleanup): Promise<Netns> {
  const netns = await createNetns();
  t.after(() => netns.remove());
  return netns;
}

/** `PROGRAM_…` command line for a render-backend helper. */
export function backendCommand(name: string, port: number, tls?: { cert: string; key: string }): string {
  return [process.execPath, BACKEND_SCRIPT, '--name', name, '--port', String(port), ...(tls ? ['--cert', tls.cert, '--key', tls.key] : [])].join(' ');
}

export interface PilotStatus {
  haproxy: { masterPid?: number; workers: number[]; oldWorkers?: number[]; reloads: number; version?: string };
  apply: {
    configPath: string;
    configHash?: string;
    reloads: number;
    runtimeOps: number;
    applyFailures: number;
    lastApply?: { ok: boolean; kind: string; reason: string; error?: { code: string; message: string } };
    rejectedPath?: string;
  };
  sources: { name: string; ok: boolean; stale: boolean }[];
  programs: { name: string; pid?: number; state: string }[];
  [key: string]: unknown;
}

export interface RunningPilot {
  p: PilotProcess;
  netns: Netns;
  runDir: string;
  status(): Promise<PilotStatus>;
  health(): Promise<{ status: number; body: { ok: boolean; reasons?: string[] } }>;
}

export const CONTROL_PORT = 7778;

/**
 * Starts haproxy-pilot as PID 1 in `netns` (a new one when not given) with PILOT_RUN_DIR in a
 * fresh temp dir, waits until its control server listens, and stops it (SIGKILL to the
 * namespace's PID 1 takes every process in it) when the test ends.
 */
export async function launchPilot(t: Cleanup, env: Record<string, string>, options: { netns?: Netns } = {}): Promise<RunningPilot> {
  const netns = options.netns ?? (await netnsFor(t));
  const runDir = env.PILOT_RUN_DIR ?? join(await tempDir(t, 'pilot-render-run-'), 'run');
  const p = startPilot({ PILOT_RUN_DIR: runDir, ...env }, { netns });
  t.after(() => p.kill());
  await p.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
  const status = async (): Promise<PilotStatus> => {
    const r = await p.http('/status', CONTROL_PORT);
    if (r.status !== 200) throw new Error(`/status answered ${r.status}: ${r.body}`);
    return JSON.parse(r.body) as PilotStatus;
  };
  const health = async () => {
    const r = await p.http('/health', CONTROL_PORT);
    return { status: r.status, body: JSON.parse(r.body || '{}') as { ok: boolean; reasons?: string[] } };
  };
  return { p, netns, runDir, status, health };
}

/** A self-signed certificate (EC P-256) for `cn`, made by openssl at test time. */
export async function selfSignedCert(dir: string, cn: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await execa('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
  ]);
  return { cert, key };
}

/** Replaces the file by renaming a complete new one over it, as config-management tools do. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export interface Poller {
  /** Stops polling and returns what the poller saw. */
  stop(): Promise<{ ok: number; failed: number; errors: string[] }>;
}

/** A render-poller process inside `netns` polling `url` (new connection per request) until stopped. */
export function startPoller(t: Cleanup, netns: Netns, url: string): Poller {
  const child: ChildProcess = spawn(netns.enter[0]!, [...netns.enter.slice(1), process.execPath, POLLER_SCRIPT, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      const line = out.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) throw new Error(`poller printed no result: ${JSON.stringify(out)}`);
      return JSON.parse(line) as { ok: number; failed: number; errors: string[] };
    },
  };
}

/** Runs haproxy-pilot with a command (render, check, …) as a plain process with exactly `env`. */
export async function runPilotCommand(args: string[], env: Record<string, string>, options: { timeoutMs?: number } = {}) {
  const r = await execa(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    extendEnv: false,
    reject: false,
    timeout: options.timeoutMs ?? 30_000,
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Parsed JSON log lines of a command's output (stdout and stderr). */
export function jsonLines(text: string): { level?: number; msg?: string; [k: string]: unknown }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { level?: number; msg?: string }];
      } catch {
        return [];
      }
    });
}
