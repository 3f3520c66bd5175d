/**
 * Start-up: spawn → the first request served through HAProxy, for haproxy-pilot's demo (what
 * `npm start` runs), next to a plain HAProxy running the same rendered config: with the demo's
 * backend already up, and with the backend started at the same moment. Also where the pilot's
 * start-up time goes (its log lines, timed as they arrive). Writes the startup section.
 *
 *   npx tsc -p . && node dist/bench/startup.js [--quick]
 *
 * Environment: BENCH_SAMPLES (15), BENCH_NO_DOC=1. Root (network namespace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { conditions, inNetns, num, sleep, stats, writeSection } from './support-doc.js';
import { PILOT_MAIN } from './support-pilot.js';

const SELF = fileURLToPath(import.meta.url);
const DEMO_BACKEND = fileURLToPath(new URL('../src/demo/main.js', import.meta.url));
const quick = process.argv.includes('--quick');
const SAMPLES = quick ? 3 : Number(process.env.BENCH_SAMPLES ?? 15);

/** GET :8080/ until a 200 (new connection each time, every 2 ms); the time it arrived. */
let lastStatus = 0;
async function firstServed(deadlineMs = 30_000): Promise<number> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port: 8080, path: '/', agent: false, timeout: 1000 }, (res) => {
        res.resume();
        res.on('end', () => { lastStatus = res.statusCode ?? 0; resolve(res.statusCode === 200); });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return performance.now();
    if (performance.now() > deadline) throw new Error(`nothing served on :8080 (last status ${lastStatus})`);
    await sleep(2);
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  child.kill(signal);
  await exited;
}

interface PilotSample {
  total: number;
  /** Log line → ms after spawn. */
  steps: Record<string, number>;
}

async function pilotOnce(runDir: string): Promise<PilotSample> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [PILOT_MAIN], {
    env: { PATH: process.env.PATH, PILOT_RUN_DIR: runDir, HAPROXY_LOG_FORMAT: 'none' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const steps: Record<string, number> = {};
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const at = performance.now() - t0;
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const msg = String((JSON.parse(line) as { msg?: string }).msg);
        const key = msg.startsWith('started:') ? 'started: (summary logged)' : msg.startsWith('PILOT_CONTROL_ADDR') ? 'control listener open' : msg.replace(/ in \/.*$/, '');
        steps[key] ??= at;
      } catch {
        /* a program's line */
      }
    }
  });
  try {
    const total = (await firstServed()) - t0;
    // What happened before the first request was served (not the stop that follows).
    return { total, steps: Object.fromEntries(Object.entries(steps).filter(([, at]) => at <= total)) };
  } finally {
    await stop(child);
  }
}

async function plainOnce(cfg: string, startBackend: boolean): Promise<number> {
  const t0 = performance.now();
  const backend = startBackend ? spawn(process.execPath, [DEMO_BACKEND, '8081'], { stdio: 'ignore' }) : undefined;
  const haproxy = spawn('haproxy', ['-W', '-db', '-f', cfg], { stdio: 'ignore' });
  try {
    return (await firstServed()) - t0;
  } finally {
    await stop(haproxy);
    if (backend) await stop(backend);
  }
}

async function inside(): Promise<void> {
  const began = Date.now();
  const cond = await conditions();
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-startup-'));
  const pilot: PilotSample[] = [];
  const warm: number[] = [];
  const cold: number[] = [];
  try {
    // The config the demo renders, for the plain HAProxy (the password fixed, as it would be in a file).
    const rendered = await execa(process.execPath, [PILOT_MAIN, 'render'], { env: { PATH: process.env.PATH, STATS_PASSWORD: 'bench', PILOT_RUN_DIR: join(dir, 'render') }, extendEnv: false });
    const cfg = join(dir, 'plain.cfg');
    await writeFile(cfg, `${rendered.stdout.replace(/server-state-file \S+/, `server-state-file ${join(dir, 'state')}`)}\n`);
    await writeFile(join(dir, 'state'), '1\n');
    const demo = spawn(process.execPath, [DEMO_BACKEND, '8081'], { stdio: 'ignore' });
    try {
      await sleep(500);
      for (let k = 0; k < SAMPLES; k++) {
        await sleep(300);
        warm.push(await plainOnce(cfg, false));
      }
    } finally {
      await stop(demo);
    }
    for (let k = 0; k < SAMPLES; k++) {
      await sleep(300);
      cold.push(await plainOnce(cfg, true));
      await sleep(300);
      pilot.push(await pilotOnce(join(dir, `run-${k}`)));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const section = format(pilot, warm, cold, cond, (Date.now() - began) / 1000);
  process.stdout.write(`${section}\n`);
  if (!quick && !process.env.BENCH_NO_DOC) await writeSection('startup', section);
}

function format(pilot: PilotSample[], warm: number[], cold: number[], cond: string, seconds: number): string {
  const row = (what: string, xs: number[]): string => {
    const s = stats(xs);
    return `| ${what} | ${s.n} | ${num(s.median)} | ${num(s.p90)} | ${num(s.p99)} | ${num(s.min)}–${num(s.max)} |`;
  };
  // The timeline of the sample whose total is the median one (medians per line would mix samples).
  const byTotal = [...pilot].sort((a, b) => a.total - b.total);
  const mid = byTotal[Math.floor((byTotal.length - 1) / 2)]!;
  const steps = Object.entries(mid.steps)
    .sort((a, b) => a[1] - b[1])
    .map(([k, ms]) => `| ${k} | ${num(ms)} |`);
  const p = stats(pilot.map((x) => x.total)).median;
  return [
    '## Start-up',
    '',
    'Spawn → the first `200` on :8080 (a new connection every 2 ms). haproxy-pilot runs the demo, what `npm start` runs',
    '(a frontend on :8080 in front of a helper program on :8081, the stats page on :1936): it loads its settings, opens',
    'its control listener, renders, stages and checks (`haproxy -c`) the config, starts the helper program and waits',
    'for its port, starts HAProxy in master-worker mode and waits for the worker. The plain HAProxy runs the same rendered',
    'config (`haproxy -W -db -f`), with the demo\'s backend already listening, and with the backend spawned at the same',
    'moment (what the pilot has to do). Samples alternate between the pilot and the plain HAProxy with its backend.',
    '',
    '| what | samples | median ms | p90 ms | p99 ms | min–max ms |',
    '|---|---|---|---|---|---|',
    row('**haproxy-pilot**, demo', pilot.map((x) => x.total)),
    row('plain HAProxy, same config, backend already up', warm),
    row('plain HAProxy + the demo backend spawned together', cold),
    '',
    'Spawned together, HAProxy\'s first health check usually finds the backend not listening yet, marks it down, and',
    'serves 503 until two checks 2 s apart pass (`rise 2`, `inter 2s`): that is why the pilot starts the helper program',
    'and waits for its port before it starts HAProxy.',
    '',
    `Against issue 9's goal (≤ 300 ms): ${num(p)} ms, ${p <= 300 ? 'met' : '**not met**'}.`,
    '',
    `Where the pilot's start-up goes: the log lines of the median sample (${num(mid.total)} ms to the first request), as they arrived:`,
    '',
    '| log line | ms after spawn |',
    '|---|---|',
    ...steps,
    `| first request served | ${num(mid.total)} |`,
    '',
    `${cond} The whole run took ${num(seconds)} s.`,
    '',
    'Run: `npx tsc -p . && node dist/bench/startup.js` (root; `BENCH_SAMPLES` sets the samples; `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

if (process.argv.includes('--inside')) await inside();
else process.exitCode = await inNetns(SELF, process.argv.slice(2));
