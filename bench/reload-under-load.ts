/**
 * Reload under load: does a config change that needs a reload drop requests?
 *
 *   node dist/bench/reload-under-load.js          (as root: it makes a network namespace)
 *
 * In a fresh network namespace, haproxy-pilot runs with DISCOVERY_FILE naming a few backend
 * servers (one node process listening on several ports). Two wrk clients drive the frontend at the
 * same time, one opening a new connection per request (`Connection: close`) and one on keep-alive
 * connections, while the benchmark applies CHANGES real changes that each need a reload (a backend
 * with a new name replaces the previous extra one), waiting for each to be confirmed on /status
 * before the next. The baseline, in the same run, is a plain HAProxy serving the same config
 * text, restarted the confd-era way (`haproxy -f cfg -p pid -D -sf <old pids>`) for each of the
 * same number of changes (one every BENCH_BASELINE_INTERVAL_MS, 100 ms), under the same load.
 * Failed requests are wrk's socket errors plus answers with a status above 399. Medians over REPS
 * repetitions go to docs/benchmarks.md between the bench:reload-under-load markers.
 *
 * Environment: BENCH_CHANGES (1000), BENCH_REPS (1), BENCH_CONNECTIONS (per wrk, 16),
 * BENCH_BASELINE_INTERVAL_MS (100, or `pilot`), BENCH_NO_DOC=1 to print without writing the doc.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { cpuShare, writeSection } from './support-doc.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startWrk, type WrkResult } from '../e2e/support/wrk.js';
import { startBenchPilot, PILOT_MAIN } from './support-pilot.js';
import { startConfdStyle } from './support-baseline.js';

const SELF = fileURLToPath(import.meta.url);
const BACKEND = fileURLToPath(new URL('../e2e/support/render-backend.js', import.meta.url));

const CHANGES = Number(process.env.BENCH_CHANGES ?? 1000);
const REPS = Number(process.env.BENCH_REPS ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
/**
 * Spacing of the baseline's restarts: 100 ms by default (each `-sf` start returns in a few tens
 * of ms, so the old process has handed over long before the next one), or `pilot` to pace them at
 * haproxy-pilot's measured interval (fairer in time, but the run takes about 2 minutes longer).
 */
const BASELINE_INTERVAL = process.env.BENCH_BASELINE_INTERVAL_MS ?? '100';
const BACKEND_PORTS = [9101, 9102, 9103];
const FRONTEND = 'http://127.0.0.1:5000/';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

interface RunResult {
  system: 'haproxy-pilot' | 'confd-style -sf';
  rep: number;
  changes: number;
  reloads: number;
  seconds: number;
  close: WrkResult;
  keepalive: WrkResult;
}

// ---------------------------------------------------------------- outer: namespace + doc

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (the benchmark makes a network namespace)');
  const ns = `pilot-reload-bench-${process.pid}`;
  const resultFile = join(tmpdir(), `${ns}.json`);
  await execa('ip', ['netns', 'add', ns]);
  try {
    const inNs = (args: string[]) => execa('ip', ['netns', 'exec', ns, ...args]);
    await inNs(['ip', 'link', 'set', 'lo', 'up']);
    // A new connection per request for minutes: let connect() reuse TIME_WAIT ports and use the
    // whole port range (per-namespace settings), or the clients run out of ports, not HAProxy.
    await inNs(['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF], { stdio: 'inherit', env: { ...process.env, BENCH_INNER: '1', BENCH_RESULT: resultFile } });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    if (code !== 0) throw new Error(`benchmark failed (exit ${code})`);
    const { runs, meta } = JSON.parse(await readFile(resultFile, 'utf8')) as { runs: RunResult[]; meta: Meta };
    const section = formatSection(runs, meta);
    process.stdout.write(`\n${section}\n`);
    if (!process.env.BENCH_NO_DOC) {
      await writeSection('reload-under-load', section);
    }
  } finally {
    await rm(resultFile, { force: true });
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}

interface Meta {
  date: string;
  machine: string;
  haproxy: string;
  node: string;
  wrk: string;
  totalSeconds: number;
  load: string;
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—';
}

function ratio(a: number, b: number): string {
  if (b === 0) return a === 0 ? '1 (both 0)' : '∞ (0 for haproxy-pilot)';
  return `${fmt(a / b, 2)}×`;
}

export function formatSection(runs: RunResult[], meta: Meta): string {
  const systems = ['haproxy-pilot', 'confd-style -sf'] as const;
  const modes = [['close', 'new connection per request (`Connection: close`)'], ['keepalive', 'keep-alive']] as const;
  const med = (system: string, f: (r: RunResult) => number) => median(runs.filter((r) => r.system === system).map(f));
  const rows: string[] = [];
  for (const [mode, label] of modes) {
    for (const system of systems) {
      const all = runs.filter((r) => r.system === system);
      rows.push(
        `| ${system} | ${label} | ${fmt(med(system, (r) => r.changes))} | ${fmt(med(system, (r) => r.reloads))} | ${fmt(med(system, (r) => r[mode].requests))} | ` +
          `**${fmt(med(system, (r) => r[mode].failed))}** (${all.map((r) => r[mode].failed).join(', ')}) | ${fmt(med(system, (r) => r[mode].requestsPerSec))} | ${fmt(med(system, (r) => r.seconds), 1)} |`,
      );
    }
  }
  const ratios = modes.map(([mode, label]) => {
    const pf = med('haproxy-pilot', (r) => r[mode].failed);
    const bf = med('confd-style -sf', (r) => r[mode].failed);
    const pr = med('haproxy-pilot', (r) => r[mode].requestsPerSec);
    const br = med('confd-style -sf', (r) => r[mode].requestsPerSec);
    return `| ${label} | ${ratio(bf, pf)} | ${fmt(pr / br, 2)}× |`;
  });
  const errorsDetail = runs
    .map((r) => `${r.system} rep ${r.rep}: close ${describeErrors(r.close)}; keep-alive ${describeErrors(r.keepalive)}`)
    .join('\n');
  return [
    '## Reload under load',
    '',
    `Measured ${meta.date} on ${meta.machine}; HAProxy ${meta.haproxy}, Node ${meta.node}, ${meta.wrk}. ${meta.load}`,
    `Each repetition applies ${CHANGES} changes that each need a reload (a backend with a new name replaces the previous`,
    'extra one in the discovery file: a section added and one removed; server-level changes no longer reload) while two wrk',
    `clients (1 thread, ${CONNECTIONS} connections each) load the frontend at the same time:`,
    'one with a new connection per request, one with keep-alive. haproxy-pilot waits for each reload to be confirmed',
    'on `/status` before the next change (`PILOT_QUIET_MIN=0`, everything else default: `option idle-close-on-response`,',
    '`hard-stop-after 30s`, reloads through the master CLI). The baseline serves the same config text with a plain',
    'HAProxy restarted the confd-era way, `haproxy -f cfg -p pid -D -sf $(cat pid)`, for the same number of changes,',
    `one every ${BASELINE_INTERVAL === 'pilot' ? 'interval haproxy-pilot needed in the same repetition' : `${BASELINE_INTERVAL} ms`} (each start returns within a few tens of ms). Failed = wrk's socket errors (connect, read,`,
    `write, timeout) + answers with a status above 399. Medians over ${REPS} repetitions (each repetition's failures in`,
    `parentheses); the whole run took ${fmt(meta.totalSeconds)} s, on a 2-core machine other work may share: compare rows of`,
    'the same run, not runs.',
    '',
    `haproxy-pilot needed a median ${fmt(med('haproxy-pilot', (r) => (r.seconds * 1000) / r.changes))} ms per change from the file write to the reload confirmed`,
    '(the renamed file read at once, render, `haproxy -c`, reload through the master, new worker seen in `show proc`, polled',
    'every 5 ms for 200 ms, then less often, on 2.6), so it served more requests per run than the faster-paced baseline; compare failures per',
    'reload. The baseline\'s failures are read/write errors on connections the old process had accepted into its',
    "listening socket's queue when it closed it (no listener hand-over with `-sf` alone); haproxy-pilot's master",
    'passes the listeners to the new worker, and `option idle-close-on-response` lets keep-alive clients finish.',
    '',
    '| system | traffic | changes | reloads | requests | failed requests | requests/s | seconds |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '| traffic | failed requests, baseline / haproxy-pilot | requests/s, haproxy-pilot / baseline |',
    '|---|---|---|',
    ...ratios,
    '',
    'Failures by kind, per run:',
    '',
    '```',
    errorsDetail,
    '```',
    '',
    'Run it (as root; about 8 minutes with the defaults; `BENCH_CHANGES`, `BENCH_REPS`, `BENCH_CONNECTIONS` change the',
    'load, `BENCH_NO_DOC=1` prints without rewriting this section):',
    '',
    '```sh',
    'npx tsc -p tsconfig.json && node dist/bench/reload-under-load.js',
    '```',
  ].join('\n');
}

function describeErrors(w: WrkResult): string {
  const s = w.socketErrors;
  return `${w.requests} req, connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}, status>399 ${w.badStatus}`;
}


// ---------------------------------------------------------------- inner: inside the namespace

/**
 * The discovery file: backend web, and for change i an extra backend x<i> (a new section, so a
 * reload: server-level changes no longer reload) replacing x<i-1>.
 */
function discovery(extra: number | undefined): string {
  const servers = BACKEND_PORTS.map((port, i) => `      - { name: s${i}, address: "127.0.0.1:${port}" }\n`);
  const x = extra === undefined ? '' : `  x${extra}:\n    servers:\n      - { name: s0, address: "127.0.0.1:${BACKEND_PORTS[extra % BACKEND_PORTS.length]}" }\n`;
  return `services:\n  web:\n    servers:\n${servers.join('')}${x}`;
}

/** The same change in the baseline's config text: the extra backend section at the end. */
function baselineText(base: string, extra: number): string {
  if (!/^backend web\b/m.test(base)) throw new Error('rendered config has no backend web');
  return `${base.trimEnd()}\n\nbackend x${extra}\n    mode http\n    server s0 127.0.0.1:${BACKEND_PORTS[extra % BACKEND_PORTS.length]} check\n`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function startLoad() {
  const seconds = 3600;
  return [
    startWrk(FRONTEND, { connections: CONNECTIONS, threads: 1, close: true, maxSeconds: seconds }),
    startWrk(FRONTEND, { connections: CONNECTIONS, threads: 1, close: false, maxSeconds: seconds }),
  ] as const;
}

async function waitServing(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(FRONTEND, { headers: { connection: 'close' } })).status === 200) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`${FRONTEND} not serving`);
}

async function pilotRun(dir: string, rep: number, env: Record<string, string>): Promise<RunResult & { intervalMs: number }> {
  const file = env.DISCOVERY_FILE!;
  await writeAtomic(file, discovery(undefined));
  const pilot = await startBenchPilot(env, join(dir, `pilot-${rep}.log`));
  try {
    await waitServing();
    const [close, keepalive] = startLoad();
    await sleep(1000);
    const before = await pilot.status();
    const t0 = Date.now();
    let expected = before.apply.reloads;
    for (let i = 1; i <= CHANGES; i++) {
      await writeAtomic(file, discovery(i));
      expected++;
      const deadline = Date.now() + 15_000;
      for (;;) {
        const s = await pilot.status();
        if (s.apply.reloads >= expected) break;
        if (s.apply.lastApply && !s.apply.lastApply.ok) throw new Error(`change ${i} failed: ${s.apply.lastApply.error?.message}`);
        if (Date.now() > deadline) throw new Error(`change ${i} not confirmed within 15 s (reloads ${s.apply.reloads}, expected ${expected})`);
        await sleep(20);
      }
    }
    const seconds = (Date.now() - t0) / 1000;
    await sleep(1000);
    const [c, k] = await Promise.all([close.stop(), keepalive.stop()]);
    const after = await pilot.status();
    return { system: 'haproxy-pilot', rep, changes: CHANGES, reloads: after.apply.reloads - before.apply.reloads, seconds, close: c, keepalive: k, intervalMs: (seconds * 1000) / CHANGES };
  } finally {
    await pilot.stop();
  }
}

async function baselineRun(dir: string, rep: number, baseText: string, intervalMs: number): Promise<RunResult> {
  const haproxy = await startConfdStyle({ bin: process.env.HAPROXY_BIN ?? 'haproxy', configPath: join(dir, 'baseline.cfg'), pidFile: join(dir, 'baseline.pid'), text: baseText });
  try {
    await waitServing();
    const [close, keepalive] = startLoad();
    await sleep(1000);
    const t0 = Date.now();
    for (let i = 1; i <= CHANGES; i++) {
      const next = t0 + i * intervalMs;
      await haproxy.reload(baselineText(baseText, i));
      if (next > Date.now()) await sleep(next - Date.now());
    }
    const seconds = (Date.now() - t0) / 1000;
    await sleep(1000);
    const [c, k] = await Promise.all([close.stop(), keepalive.stop()]);
    return { system: 'confd-style -sf', rep, changes: CHANGES, reloads: CHANGES, seconds, close: c, keepalive: k };
  } finally {
    await haproxy.stop();
  }
}

async function inner(): Promise<void> {
  const t0 = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-reload-'));
  const backend = spawn(process.execPath, [BACKEND, '--name', 'bench', '--port', BACKEND_PORTS.join(',')], { stdio: 'ignore' });
  let ok = false;
  try {
    const env = {
      PILOT_RUN_DIR: join(dir, 'run'),
      DISCOVERY_FILE: join(dir, 'discovery.yaml'),
      PILOT_QUIET_MIN: '0ms',
      PILOT_LOG_LEVEL: 'warn',
      // No per-request log lines in either system: the benchmark measures the reload, not logging.
      HAPROXY_LOG_FORMAT: 'none',
      STATS_PORT: '0',
      PILOT_DEMO: 'off',
    };
    // The baseline serves exactly what haproxy-pilot renders for the initial state.
    await writeAtomic(env.DISCOVERY_FILE, discovery(undefined));
    const rendered = await execa(process.execPath, [PILOT_MAIN, 'render'], { env: { PATH: process.env.PATH, ...env }, extendEnv: false });
    const baseText = `${rendered.stdout.trimEnd()}\n`;
    const version = (await execa(process.env.HAPROXY_BIN ?? 'haproxy', ['-v'])).stdout.split('\n')[0]!.replace(/^HAProxy version /i, '').replace(/ - https.*$/, '');
    const wrkVersion = (await execa('wrk', ['-v'], { reject: false })).stdout.split('\n')[0]!.replace(/ \[.*$/, '').trim() || 'wrk';
    const load = `Load average at the start ${loadavg().map((l) => l.toFixed(1)).join(' / ')}; a busy loop got ${Math.round(cpuShare() * 100)} % of a core (the machine is shared).`;
    const runs: RunResult[] = [];
    for (let rep = 1; rep <= REPS; rep++) {
      const p = await pilotRun(dir, rep, env);
      log(p);
      runs.push(p);
      const b = await baselineRun(dir, rep, baseText, BASELINE_INTERVAL === 'pilot' ? p.intervalMs : Number(BASELINE_INTERVAL));
      log(b);
      runs.push(b);
    }
    const cpu = cpus();
    const meta: Meta = {
      date: new Date().toISOString().slice(0, 10),
      machine: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()} (${hostname()})`,
      haproxy: version,
      node: process.version,
      wrk: wrkVersion,
      totalSeconds: (Date.now() - t0) / 1000,
      load,
    };
    await writeFile(process.env.BENCH_RESULT!, JSON.stringify({ runs: runs.map(({ close, keepalive, ...r }) => ({ ...r, close: { ...close, raw: '' }, keepalive: { ...keepalive, raw: '' } })), meta }));
    ok = true;
  } finally {
    backend.kill('SIGTERM');
    // Keep the pilot logs when something went wrong.
    if (ok) await rm(dir, { recursive: true, force: true });
    else process.stderr.write(`logs kept in ${dir}\n`);
  }
}

function log(r: RunResult): void {
  process.stdout.write(
    `${r.system.padEnd(16)} rep ${r.rep}: ${r.changes} changes, ${r.reloads} reloads in ${r.seconds.toFixed(1)} s; ` +
      `close: ${r.close.requests} req, ${r.close.failed} failed, ${r.close.requestsPerSec.toFixed(0)}/s; ` +
      `keep-alive: ${r.keepalive.requests} req, ${r.keepalive.failed} failed, ${r.keepalive.requestsPerSec.toFixed(0)}/s\n`,
  );
}

if (process.env.BENCH_INNER) await inner();
else await outer();
