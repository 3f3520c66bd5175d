/**
 * Drives podman/buildah for e2e/image.test.ts. No Docker engine runs on the CI machine: images
 * are built by scripts/image-build.sh (buildah, chroot isolation) and run by podman on runc,
 * with the private store and containers.conf that scripts/image-env.sh describes.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../..', import.meta.url)); // dist/e2e/support → repo

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (callers assert on `code`). */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: opts.env, cwd: opts.cwd ?? REPO, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && typeof err.code !== 'number' ? String(err.message) : '') });
    });
  });
}

/** KEY=VALUE lines printed by scripts/image-env.sh, merged over this process's environment. */
export async function imageEnv(): Promise<NodeJS.ProcessEnv & { PILOT_TEST_TAG: string; HAPROXY_BASE_TAG: string; IMAGE_CACHE: string }> {
  const out = await run('bash', ['scripts/image-env.sh']);
  if (out.code !== 0) throw new Error(`scripts/image-env.sh failed: ${out.stderr}`);
  const env: Record<string, string> = {};
  for (const line of out.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { ...process.env, ...env } as NodeJS.ProcessEnv & { PILOT_TEST_TAG: string; HAPROXY_BASE_TAG: string; IMAGE_CACHE: string };
}

/** Why podman cannot run containers here, or undefined when the tools are all present. */
export async function missingTools(): Promise<string | undefined> {
  for (const tool of ['podman', 'buildah', 'mmdebstrap', 'runc']) {
    const found = await run('sh', ['-c', `command -v ${tool}`]);
    if (found.code !== 0) return `${tool} is not installed (scripts/ensure-deps.sh test installs it)`;
  }
  if (process.getuid?.() !== 0) return 'the image test builds root-mode base images with mmdebstrap and runs rootful podman: run it as root';
  return undefined;
}

export class Podman {
  constructor(readonly env: NodeJS.ProcessEnv) {}

  run(args: readonly string[], timeoutMs = 60_000): Promise<ExecResult> {
    return run('podman', args, { env: this.env, timeoutMs });
  }

  async ok(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Host port that container port `port`/tcp is published on (127.0.0.1). */
  async hostPort(name: string, port: number): Promise<number> {
    const out = await this.ok(['port', name, `${port}/tcp`]);
    const m = /:(\d+)\s*$/m.exec(out.trim());
    if (!m) throw new Error(`podman port ${name} ${port}: unexpected answer ${JSON.stringify(out)}`);
    return Number(m[1]);
  }

  async inspect(name: string, format: string): Promise<string> {
    return (await this.ok(['inspect', '--format', format, name])).trim();
  }

  /** Every process in the container, read from its /proc by the image's own node. */
  async processes(name: string): Promise<ProcInfo[]> {
    const out = await this.ok(['exec', name, 'node', '-e', PROC_SCRIPT]);
    return JSON.parse(out) as ProcInfo[];
  }

  /** `podman logs`, stdout and stderr kept apart. */
  async logs(name: string): Promise<{ stdout: string; stderr: string }> {
    const r = await this.run(['logs', name]);
    return { stdout: r.stdout, stderr: r.stderr };
  }

  /** Removes containers left by an earlier run of this test whose process is gone. */
  async removeStale(label: string): Promise<void> {
    const out = await this.run(['ps', '-a', '--filter', `label=${label}`, '--format', `{{.Names}} {{index .Labels "${label}"}}`]);
    for (const line of out.stdout.split('\n')) {
      const [cname, owner] = line.trim().split(' ');
      if (!cname || !owner) continue;
      if (!(await pidAlive(Number(owner)))) await this.run(['rm', '-f', '-t', '0', cname]);
    }
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
  uid: number;
  user: string;
  cmdline: string[];
}

// Runs inside the container: no ps there (and none needed).
const PROC_SCRIPT = `
const fs = require('fs');
const users = new Map(fs.readFileSync('/etc/passwd', 'utf8').split('\\n').filter(Boolean).map((l) => { const f = l.split(':'); return [Number(f[2]), f[0]]; }));
const out = [];
for (const d of fs.readdirSync('/proc')) {
  if (!/^\\d+$/.test(d) || Number(d) === process.pid) continue;
  try {
    const stat = fs.readFileSync('/proc/' + d + '/stat', 'utf8');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    const uid = Number(/^Uid:\\s+(\\d+)/m.exec(fs.readFileSync('/proc/' + d + '/status', 'utf8'))[1]);
    const cmdline = fs.readFileSync('/proc/' + d + '/cmdline', 'utf8').split('\\0').filter(Boolean);
    out.push({ pid: Number(d), ppid: Number(rest[1]), state: rest[0], comm: stat.slice(stat.indexOf('(') + 1, close), uid, user: users.get(uid) ?? String(uid), cmdline });
  } catch { /* exited while we looked */ }
}
process.stdout.write(JSON.stringify(out));
`;

async function pidAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Thrown by a probe to stop waiting at once (the condition can no longer come true). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns a value that is not undefined, or fails after `deadlineMs`.
 * A probe that throws is retried (the thing may not be up yet), unless it throws GiveUp.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs scripts/image-build.sh (bases on first use, then buildah bud of the Dockerfile). */
export function buildImage(env: NodeJS.ProcessEnv, onLine: (line: string) => void): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['scripts/image-build.sh'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      for (const l of b.toString().split('\n')) if (l.startsWith('image-')) onLine(l);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** `buildah bud` (chroot isolation, docker format so HEALTHCHECK survives) with the image env. */
export function buildahBud(env: NodeJS.ProcessEnv, args: readonly string[]): Promise<ExecResult> {
  return run('buildah', ['bud', '--isolation', 'chroot', '--format', 'docker', ...args], { env, timeoutMs: 10 * 60_000 });
}
