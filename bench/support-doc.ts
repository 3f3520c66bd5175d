/**
 * Shared pieces of the benchmarks: statistics (median, p90, p99 by nearest rank), the machine and
 * versions line, and writing one marked section of docs/benchmarks.md (the other sections stay
 * as they are, so benchmarks run at different times and by different people keep their rows).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

export interface Stats {
  n: number;
  median: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Median (mean of the middle two for even n); p90 and p99 by nearest rank (p99 is the max below 100 samples). */
export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n, median: NaN, p90: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
  const rank = (p: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  const median = n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { n, median, p90: rank(0.9), p99: rank(0.99), min: s[0]!, max: s[n - 1]!, mean: s.reduce((a, b) => a + b, 0) / n };
}

/** A number for a table: integers above 10, one decimal below (NaN → –). */
export function num(x: number, digits?: number): string {
  if (!Number.isFinite(x)) return '–';
  const d = digits ?? (Math.abs(x) >= 10 ? 0 : 1);
  return x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false });
  return `${r.stdout}\n${r.stderr}`.trim().split('\n')[0] ?? '';
}

/** The share of one core a busy loop gets for `ms`: 1 on an idle machine, less when others compete. */
export function cpuShare(ms = 1000): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let x = 0;
  while (performance.now() - t0 < ms) x += Math.sqrt(x + 1);
  const c = process.cpuUsage(c0);
  return x > 0 ? (c.user + c.system) / 1000 / (performance.now() - t0) : 0;
}

/** "Run <date> UTC on <machine>; <versions>", the load average and the CPU share when the run began. */
export async function conditions(extra: { etcd?: boolean; wrk?: boolean; java?: boolean } = {}): Promise<string> {
  const cpu = cpus();
  const haproxy = (await firstLine(process.env.HAPROXY_BIN ?? 'haproxy', ['-v'])).replace(/ - https.*$/, '').replace(/^HAProxy version /, '');
  const parts = [`HAProxy ${haproxy}`, `Node ${process.version}`];
  if (extra.etcd) parts.push((await firstLine('etcd', ['--version'])).replace(/^etcd Version: /, 'etcd '));
  if (extra.wrk) parts.push((await firstLine('wrk', ['-v'])).replace(/ \[.*$/, '').trim());
  const load = loadavg().map((l) => l.toFixed(1)).join(' / ');
  return (
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}; ${parts.join(', ')}. Load average at the start ${load}; ` +
    `a busy loop got ${Math.round(cpuShare() * 100)} % of a core then (the machine is shared with other engineers' test runs: ` +
    'figures are noisy, compare rows of the same run).'
  );
}

/** Replaces the section between `<!-- bench:<name>:start -->` and its end marker (or appends it). */
export async function writeSection(name: string, body: string): Promise<void> {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  let doc = await readFile(DOC, 'utf8').catch(() => '');
  if (!doc) doc = '# Benchmarks\n\nFigures written by the scripts in `bench/`; each section says how to run it.\n';
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  doc = a >= 0 && b > a ? `${doc.slice(0, a)}${block}${doc.slice(b + end.length)}` : `${doc.trimEnd()}\n\n${block}\n`;
  await mkdir(dirname(DOC), { recursive: true });
  const tmp = `${DOC}.tmp-${process.pid}`;
  await writeFile(tmp, doc);
  await rename(tmp, DOC);
  process.stderr.write(`wrote section ${name} of ${DOC}\n`);
}

/** Resident set size (kB → MiB) and CPU seconds (user + system) of a pid, from /proc. */
export async function procUsage(pid: number): Promise<{ rssMiB: number; cpuS: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime: fields 14 and 15 of stat (11 and 12 after the command name and state).
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssMiB: rss, cpuS: ticks / 100 };
  } catch {
    return undefined;
  }
}

/** Runs `inner` (this script again, with --inside) in a fresh network namespace with loopback up; root only. */
export async function inNetns(self: string, args: string[], options: { sysctls?: string[]; env?: Record<string, string> } = {}): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('run as root (the benchmark makes a network namespace)');
  const ns = `pilot-bench-${process.pid}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    if (options.sysctls?.length) await execa('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...options.sysctls]);
    const { spawn } = await import('node:child_process');
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, self, '--inside', ...args], {
      stdio: 'inherit',
      env: { ...process.env, ...options.env },
    });
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}
