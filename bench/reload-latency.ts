/**
 * Forced reloads: SIGHUP and `POST /reload` to haproxy-pilot → the reload confirmed (a new
 * worker seen by the pilot, the pass finished), next to a raw reload of the same config through
 * the master CLI (`echo reload | socat - unix:master.sock`, then `show proc` every 2 ms until the
 * new worker is listed), for two configs: the demo (a few sections) and a discovery file of
 * 400 backends × 20 servers with health checks. Writes the section between the reload-latency markers.
 *
 *   npx tsc -p . && node dist/bench/reload-latency.js [--quick]
 *
 * Environment: BENCH_SAMPLES (30; the 1,000-backend rows take a third), BENCH_NO_DOC=1.
 * Root: runs in a network namespace.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { masterCommand, parseShowProc } from '../src/haproxy/master-cli.js';
import { conditions, inNetns, num, sleep, stats, writeSection } from './support-doc.js';
import { startLoggedPilot } from './support-pilot-log.js';

const SELF = fileURLToPath(import.meta.url);
const quick = process.argv.includes('--quick');
const SAMPLES = quick ? 3 : Number(process.env.BENCH_SAMPLES ?? 30);
/** 20,000 servers with checks would need more descriptors than the machine's hard limit (20,000) holds. */
const BIG = { backends: 400, servers: 20 };

interface Row {
  config: string;
  what: string;
  samples: number[];
}

async function workers(socket: string): Promise<string> {
  return parseShowProc(await masterCommand(socket, 'show proc')).workers.map((w) => w.pid).join(',');
}

/** A plain master-worker HAProxy on the pilot's live generation; raw reloads through its master CLI. */
async function rawReloads(liveDir: string, n: number): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-raw-'));
  await cp(liveDir, join(dir, 'live'), { recursive: true, dereference: true });
  const socket = join(dir, 'master.sock');
  const master = spawn('haproxy', ['-W', '-db', '-S', socket, '-C', join(dir, 'live'), '-f', join(dir, 'live', 'haproxy.cfg')], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => master.on('exit', () => r()));
  try {
    for (let i = 0; i < 600 && (await workers(socket).catch(() => '')) === ''; i++) await sleep(50);
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      await sleep(300);
      const before = await workers(socket);
      const t0 = performance.now();
      await masterCommand(socket, 'reload').catch(() => undefined);
      for (;;) {
        const now = await workers(socket).catch(() => before);
        if (now !== '' && now !== before) break;
        await sleep(2);
      }
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    master.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

function bigDiscovery(backends: number, servers: number): string {
  const services: Record<string, { servers: string[] }> = {};
  for (let b = 0; b < backends; b++) {
    const list: string[] = [];
    // 198.18.0.0/15 (benchmarking addresses) has no route in the namespace: checks fail at connect().
    for (let s = 0; s < servers; s++) list.push(`198.18.${b % 250}.${1 + s}:${8000 + Math.floor(b / 250)}`);
    services[`svc${b}`] = { servers: list };
  }
  return JSON.stringify({ services });
}

async function measure(config: string, env: Record<string, string>, runDir: string, n: number): Promise<Row[]> {
  const pilot = await startLoggedPilot({ PILOT_RUN_DIR: runDir, ...env });
  const sighup: number[] = [];
  const post: number[] = [];
  try {
    for (let k = 0; k < n; k++) {
      await sleep(300);
      const t0 = performance.now();
      pilot.child.kill('SIGHUP');
      sighup.push((await pilot.waitFor('applied (reload)', t0)).at - t0);
    }
    for (let k = 0; k < n; k++) {
      await sleep(1100); // POST /reload starts at most one reload a second
      const t0 = performance.now();
      const res = await fetch('http://127.0.0.1:7778/reload', { method: 'POST' });
      const body = (await res.json()) as { ok?: boolean };
      if (!body.ok) throw new Error(`POST /reload answered ${res.status} ${JSON.stringify(body)}`);
      post.push(performance.now() - t0);
    }
  } finally {
    await pilot.stop();
  }
  // The raw reload runs the same generation the pilot ran (copied before the pilot's stop removed nothing: the run dir stays).
  const raw = await rawReloads(join(runDir, 'live'), n);
  return [
    { config, what: 'haproxy-pilot: SIGHUP → reload confirmed, pass done', samples: sighup },
    { config, what: 'haproxy-pilot: `POST /reload` → answer (reload confirmed)', samples: post },
    { config, what: 'raw: master CLI `reload` → new worker in `show proc`', samples: raw },
  ];
}

async function inside(): Promise<void> {
  const began = Date.now();
  const cond = await conditions();
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-reload-latency-'));
  const rows: Row[] = [];
  try {
    rows.push(...(await measure('demo (`npm start`\'s config)', {}, join(dir, 'run-demo'), SAMPLES)));
    const file = join(dir, 'discovery.json');
    await writeFile(file, bigDiscovery(BIG.backends, BIG.servers));
    rows.push(...(await measure(`discovery file, ${BIG.backends} backends × ${BIG.servers} servers`, { DISCOVERY_FILE: file, PILOT_DEMO: 'off' }, join(dir, 'run-big'), quick ? 2 : Math.max(5, Math.round(SAMPLES / 3)))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const section = format(rows, cond, (Date.now() - began) / 1000);
  process.stdout.write(`${section}\n`);
  if (!quick && !process.env.BENCH_NO_DOC) await writeSection('reload-latency', section);
}

function format(rows: Row[], cond: string, seconds: number): string {
  const table = rows.map((r) => {
    const s = stats(r.samples);
    const raw = stats(rows.find((x) => x.config === r.config && x.what.startsWith('raw'))!.samples).median;
    return `| ${r.config} | ${r.what} | ${s.n} | ${num(s.median)} | ${num(s.p90)} | ${num(s.p99)} | ${num(s.min)}–${num(s.max)} | ${num(s.median / raw, 2)}× |`;
  });
  return [
    '## Forced reload (SIGHUP, POST /reload) next to a raw reload',
    '',
    'SIGHUP or `POST /reload` make haproxy-pilot re-read its settings and templates and render; a render identical',
    'to the generation that runs (checked when it was installed) is reloaded as it is, anything else is staged and',
    'checked (`haproxy -c`) first; then the server state is saved, HAProxy reloaded through the master and the new',
    'worker confirmed (on 2.6: `show proc` every 5 ms for 200 ms, then less often); no quiet wait. SIGHUP is timed',
    'to the `applied (reload)` log line, `POST /reload` to its answer (one a second at most, so the',
    'samples are spaced by 1.1 s). The raw reload is what a script can do at best on the same files:',
    'a plain `haproxy -W -db -S` master on a copy of the pilot\'s live generation, `reload` on the master',
    'CLI, then `show proc` every 2 ms until a new worker is listed.',
    `The ${BIG.backends} × ${BIG.servers} config has ${(BIG.backends * BIG.servers).toLocaleString('en-US')} servers with health checks (to addresses with no route, so`,
    'a check fails at once); 1,000 × 20 with checks needs more descriptors than this machine\'s hard',
    'limit of 20,000 allows (and `CAP_SYS_RESOURCE` to raise it is not available here).',
    'Issue 9\'s goal: the pilot\'s forced reload ≤ 1.5× the raw one.',
    '',
    '| config | what | samples | median ms | p90 ms | p99 ms | min–max ms | median vs raw |',
    '|---|---|---|---|---|---|---|---|',
    ...table,
    '',
    `${cond} The whole run took ${num(seconds)} s.`,
    '',
    'Run: `npx tsc -p . && node dist/bench/reload-latency.js` (root; `BENCH_SAMPLES` sets the samples, `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

if (process.argv.includes('--inside')) await inside();
else process.exitCode = await inNetns(SELF, process.argv.slice(2));
