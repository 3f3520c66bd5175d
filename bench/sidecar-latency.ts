/**
 * Sidecar push → traffic (seed 000): time from Sidecar sending a StateChangedEvent to the first
 * request served by the new instance through HAProxy, and reloads per instance change, for
 * haproxy-pilot's sidecar source next to a haproxy-api-style baseline (5 s hold-down, write,
 * `haproxy -c`, `-sf` reload: bench/support-sidecar-baseline.ts), in one run on one machine.
 * Writes its table to docs/benchmarks.md between the bench:sidecar markers.
 *
 *   npx tsc -p . && node dist/bench/sidecar-latency.js [--quick]
 *
 * Runs in a network namespace of its own (created here, deleted at the end). Needs root (ip
 * netns) and haproxy. Sidecar is the protocol fixture of the e2e tests
 * (e2e/support/sidecar-fixture.ts: it follows Sidecar's wire format; Sidecar itself cannot be
 * installed here), pushing to each system's `/update` as a Sidecar with LISTENERS_URLS would.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { startSidecarFixture, type FixtureServiceInput, type SidecarFixture } from '../e2e/support/sidecar-fixture.js';
import { firstServedBy, sleep, startNamedServers, stats, type NamedServers } from './support-latency-probe.js';
import { startBenchPilot } from './support-pilot.js';
import { startHaproxyApiBaseline } from './support-sidecar-baseline.js';

const SELF = fileURLToPath(import.meta.url);
const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
const START = '<!-- bench:sidecar:start -->';
const END = '<!-- bench:sidecar:end -->';

const quick = process.argv.includes('--quick');
const N = quick ? 2 : 12;
const N_SERVICES = quick ? 2 : 6;
/** Pauses between samples span the baseline's 5 s hold-down, so its phase is sampled fairly. */
const PAUSE: [number, number] = [200, 5200];
const SERVICE_PORT = 10100;

interface Row {
  name: string;
  how: string;
  samples: number[];
  changes: number;
  reloads: number;
}

const pause = (): Promise<void> => sleep(PAUSE[0] + Math.random() * (PAUSE[1] - PAUSE[0]));
const inst = (servers: NamedServers, k: number, name = 'bench', servicePort = SERVICE_PORT): FixtureServiceInput => ({
  host: `host-${k}`,
  id: `c${k}`,
  name,
  ports: [{ Port: servers.port(`s${k}`), ServicePort: servicePort, IP: '127.0.0.1' }],
});

/**
 * Instance changes: sample k replaces instance k-1 by instance k (tombstoned and announced, in one
 * push: the fixture encodes the state when it sends) and waits for s<k> to answer on the ServicePort.
 */
async function instanceChanges(sc: SidecarFixture, servers: NamedServers, first: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let k = first + 1; k <= first + n; k++) {
    await pause();
    sc.hold();
    sc.remove(`c${k - 1}`);
    sc.add(inst(servers, k));
    const t0 = performance.now();
    sc.release();
    out.push((await firstServedBy(`s${k}`, { port: SERVICE_PORT }, 30_000)) - t0);
  }
  return out;
}

async function baseline(servers: NamedServers, first: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-haproxy-api-'));
  const sc = await startSidecarFixture();
  const api = await startHaproxyApiBaseline({ port: 7779, dir });
  try {
    sc.addListener(api.url);
    sc.add(inst(servers, first)); // haproxy-api starts HAProxy with it
    await firstServedBy(`s${first}`, { port: SERVICE_PORT }, 30_000, 20);
    const reloads = api.reloads();
    const samples = await instanceChanges(sc, servers, first, N);
    return { name: 'baseline: haproxy-api style', how: 'push to `/update`; 5 s hold-down, write, `haproxy -c`, `-sf` reload', samples, changes: N, reloads: api.reloads() - reloads };
  } finally {
    await sc.close();
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function withPilot<T>(sc: SidecarFixture, fn: (reloads: () => Promise<number>) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-pilot-sidecar-'));
  const pilot = await startBenchPilot(
    { SIDECAR_STATE_URL: `${sc.url}/api/state.json`, PILOT_RUN_DIR: join(dir, 'run'), PILOT_LOG_LEVEL: 'warn', HAPROXY_LOG_FORMAT: 'none', STATS_PASSWORD: 'bench', PILOT_STOP_TIMEOUT: '3s' },
    join(dir, 'pilot.log'),
  );
  try {
    sc.addListener('http://127.0.0.1:7778/update');
    // A new listen answers as soon as the new worker runs, before the pilot has confirmed the
    // reload: read the count once it has settled.
    const reloads = async (): Promise<number> => {
      let last = -1;
      for (;;) {
        const now = (await pilot.status()).apply.reloads;
        if (now === last) return now;
        last = now;
        await sleep(1000);
      }
    };
    return await fn(reloads);
  } finally {
    await pilot.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function pilotInstances(servers: NamedServers, first: number): Promise<Row> {
  const sc = await startSidecarFixture();
  sc.add(inst(servers, first)); // read from the state URL at start
  try {
    return await withPilot(sc, async (reloads) => {
      await firstServedBy(`s${first}`, { port: SERVICE_PORT }, 30_000, 20);
      const before = await reloads();
      const samples = await instanceChanges(sc, servers, first, N);
      return { name: 'haproxy-pilot sidecar source', how: 'the same pushes to `/update` (defaults); runtime API', samples, changes: N, reloads: (await reloads()) - before };
    });
  } finally {
    await sc.close();
  }
}

/** New services: sample k announces service svc<k> on ServicePort 10200+k (a new listen: a reload). */
async function pilotServices(servers: NamedServers, first: number): Promise<Row> {
  const sc = await startSidecarFixture();
  sc.add(inst(servers, first));
  try {
    return await withPilot(sc, async (reloads) => {
      await firstServedBy(`s${first}`, { port: SERVICE_PORT }, 30_000, 20);
      const before = await reloads();
      const samples: number[] = [];
      for (let k = first + 1; k <= first + N_SERVICES; k++) {
        await pause();
        const port = 10200 + k - first;
        const t0 = performance.now();
        sc.add(inst(servers, k, `svc${k}`, port));
        samples.push((await firstServedBy(`s${k}`, { port }, 30_000)) - t0);
      }
      return { name: 'haproxy-pilot, a new service', how: 'a new (service, ServicePort): a new listen, one reload', samples, changes: N_SERVICES, reloads: (await reloads()) - before };
    });
  } finally {
    await sc.close();
  }
}

/** p99 by nearest rank (the maximum below 100 samples). */
function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)] ?? NaN;
}

const ms = (x: number): string => (Number.isFinite(x) ? `${Math.round(x)}` : '–');

async function section(rows: Row[], seconds: number): Promise<string> {
  const haproxy = ((await execa('haproxy', ['-v'], { reject: false })).stdout.split('\n')[0] ?? '').replace(/ - https.*$/, '');
  const cpu = cpus();
  return [
    '## Sidecar push → traffic (seed 000)',
    '',
    'Time from Sidecar sending a StateChangedEvent (`POST /update`) to the first request served by',
    'the new instance through HAProxy (fresh connection per probe, one every ~5 ms), and reloads per',
    'change. An instance change replaces the running instance of a service by a new one (the old one',
    'tombstoned, the new one Alive: Sidecar sends one event for each, the first already carrying both),',
    "after a random pause of 0.2–5.2 s so pushes land at random points of the baseline's hold-down.",
    "A new service adds a (service, ServicePort). The baseline is haproxy-api's way, rebuilt small",
    "(`bench/support-sidecar-baseline.ts`): Sidecar's receiver (newer-wins, ShouldNotify) and its",
    'processing loop with the 5 s hold-down, haproxy-api\'s template, write, `haproxy -c`, then',
    '`haproxy -f cfg -p pid -D -sf <old pids>`. haproxy-pilot runs with its defaults.',
    '',
    '| scenario | setup | samples | median ms | p99 ms | min–max ms | reloads per change |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const s = stats(r.samples);
      return `| ${r.name} | ${r.how} | ${s.n} | ${ms(s.median)} | ${ms(p99(r.samples))} | ${ms(s.min)}–${ms(s.max)} | ${(r.reloads / r.changes).toFixed(2)} (${r.reloads}/${r.changes}) |`;
    }),
    '',
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}; ` +
      `Node ${process.version}; ${haproxy}. Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (${Math.round(seconds)} s), ` +
      'while other work ran on the machine (2 cores): single figures are noisy, compare rows of the same run. ' +
      'p99 is by nearest rank, so with these sample counts it is the slowest sample.',
    'Sidecar is the protocol fixture of the e2e tests (it follows Sidecar\'s wire format; Sidecar cannot be installed here).',
    '',
    'Run: `npx tsc -p . && node dist/bench/sidecar-latency.js` (root: it makes a network namespace; about 3 minutes; `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

async function writeDoc(table: string): Promise<void> {
  const block = `${START}\n${table}\n${END}`;
  const doc = await readFile(DOC, 'utf8').catch(() => '# Benchmarks\n\nFigures written by the scripts in `bench/`; each section says how to run it.\n\n');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  const next = a >= 0 && b > a ? `${doc.slice(0, a)}${block}${doc.slice(b + END.length)}` : `${doc.replace(/\n*$/, '\n\n')}${block}\n`;
  await mkdir(dirname(DOC), { recursive: true });
  await writeFile(DOC, next);
  process.stderr.write(`wrote ${DOC}\n`);
}

async function inside(): Promise<void> {
  const began = performance.now();
  const servers = await startNamedServers(3 * (N + 1) + N_SERVICES + 1, 9100);
  const rows: Row[] = [];
  try {
    for (const [label, run] of [
      ['baseline', () => baseline(servers, 0)],
      ['pilot instances', () => pilotInstances(servers, N + 1)],
      ['pilot services', () => pilotServices(servers, 2 * (N + 1))],
    ] as const) {
      const t = performance.now();
      process.stderr.write(`${label}… `);
      const row = await run();
      rows.push(row);
      process.stderr.write(`median ${stats(row.samples).median.toFixed(0)} ms, ${row.reloads}/${row.changes} reloads (${((performance.now() - t) / 1000).toFixed(0)} s)\n`);
    }
  } finally {
    await servers.close();
  }
  const table = await section(rows, (performance.now() - began) / 1000);
  process.stdout.write(`${table}\n`);
  if (!quick) await writeDoc(table);
}

async function outside(): Promise<void> {
  const ns = `pilot-bench-sc-${process.pid}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, SELF, '--inside', ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}

if (process.argv.includes('--inside')) await inside();
else await outside();
