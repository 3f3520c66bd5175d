/**
 * The idle pilot: haproxy-pilot running the demo with a KV source polled every 5 s (seed 002's
 * default), measured for a while after it settled: RSS (sampled every 5 s) and CPU seconds per
 * minute of the pilot process, next to a bare Node process (`node -e 'setInterval(()=>{},1e9)'`)
 * measured the same way over the same minutes; HAProxy's and the demo program's figures apart.
 * Then, in a second run with a probe preloaded, what the pilot holds: memory by kind, heap, and
 * the modules it loaded (by package). Writes the section between the idle markers.
 *
 *   npx tsc -p . && node dist/bench/idle.js [--quick]
 *
 * Environment: BENCH_IDLE_SECONDS (measured window, 300), BENCH_NO_DOC=1. Root (network namespace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startConsulKvFixture } from '../e2e/support/sources-consul-kv-fixture.js';
import { childrenOf } from '../e2e/support/pilot-process.js';
import { conditions, inNetns, num, procUsage, sleep, stats, writeSection } from './support-doc.js';
import { PILOT_MAIN } from './support-pilot.js';

const SELF = fileURLToPath(import.meta.url);
const PROBE = new URL('./support-idle-probe.js', import.meta.url).href;
const quick = process.argv.includes('--quick');
const WINDOW_S = quick ? 20 : Number(process.env.BENCH_IDLE_SECONDS ?? 300);
const SETTLE_S = quick ? 5 : 30;
const TOKEN = 'bench-token';

interface Measured {
  rss: number[];
  cpuPerMin: number;
}

interface Holdings {
  memory: NodeJS.MemoryUsage;
  heap: { total_heap_size: number; used_heap_size: number };
  spaces: { name: string; used: number; size: number }[];
  scripts: string[];
  builtins: string[];
  snapshot: string;
  /** Filled from the snapshot: self sizes by kind of node. */
  summary?: { kind: string; bytes: number; count: number }[];
}

/** A heap snapshot's self sizes by node type (code, strings, …; objects by constructor), largest first. */
async function summarize(path: string): Promise<{ kind: string; bytes: number; count: number }[]> {
  const snap = JSON.parse(await readFile(path, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const groups = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType]!]!;
    const kind = type === 'object' ? `object ${snap.strings[snap.nodes[i + iName]!]}` : type === 'closure' ? 'closures (functions)' : type === 'code' ? 'code (bytecode, compiled code, scope info)' : type === 'string' || type === 'concatenated string' || type === 'sliced string' ? 'strings' : `${type}`;
    const g = groups.get(kind) ?? { bytes: 0, count: 0 };
    g.bytes += snap.nodes[i + iSize]!;
    g.count++;
    groups.set(kind, g);
  }
  return [...groups].map(([kind, g]) => ({ kind, ...g })).sort((a, b) => b.bytes - a.bytes);
}

function startPilot(env: Record<string, string>, nodeArgs: string[] = []): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(process.execPath, [...nodeArgs, PILOT_MAIN], {
    env: { PATH: process.env.PATH, HAPROXY_LOG_FORMAT: 'none', ...env },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  return { child, exited: new Promise((r) => child.on('exit', () => r())) };
}

async function healthy(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await fetch('http://127.0.0.1:7778/health').then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) throw new Error('haproxy-pilot not healthy');
    await sleep(100);
  }
}

/** Samples RSS of each pid every 5 s for `seconds`; CPU from the first to the last reading. */
async function measure(pids: Record<string, number>, seconds: number): Promise<Record<string, Measured>> {
  const first: Record<string, { cpuS: number; at: number }> = {};
  const rss: Record<string, number[]> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const u = await procUsage(pid);
    if (!u) throw new Error(`${name} (pid ${pid}) is gone`);
    first[name] = { cpuS: u.cpuS, at: Date.now() };
    rss[name] = [u.rssMiB];
  }
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await sleep(Math.min(5000, Math.max(0, end - Date.now())));
    for (const [name, pid] of Object.entries(pids)) {
      const u = await procUsage(pid);
      if (u) rss[name]!.push(u.rssMiB);
    }
  }
  const out: Record<string, Measured> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const u = (await procUsage(pid))!;
    out[name] = { rss: rss[name]!, cpuPerMin: ((u.cpuS - first[name]!.cpuS) / (Date.now() - first[name]!.at)) * 60_000 };
  }
  return out;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function inside(): Promise<void> {
  const began = Date.now();
  const cond = await conditions();
  const kv = await startConsulKvFixture({ token: TOKEN });
  kv.put('apps/idle/containers/a', '127.0.0.1:9999');
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-idle-'));
  const env = { KV_URL: kv.url, KV_TOKEN: TOKEN, KV_PREFIX: 'apps/idle/containers', PILOT_DEMO: 'on', STATS_PASSWORD: 'bench' };
  let results: Record<string, Measured>;
  let holdings: { pilot: Holdings; bare: Holdings };
  try {
    // 1. RSS and CPU: the pilot and a bare Node side by side, nothing else attached.
    const pilot = startPilot({ ...env, PILOT_RUN_DIR: join(dir, 'run1') });
    const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' });
    try {
      await healthy();
      await sleep(SETTLE_S * 1000);
      // The pilot's children: the HAProxy master (and its worker), the demo program.
      const kids = childrenOf(pilot.child.pid!);
      const master = kids.find((p) => comm(p) === 'haproxy');
      const worker = master !== undefined ? childrenOf(master)[0] : undefined;
      const demo = kids.find((p) => p !== master);
      const pids: Record<string, number> = { pilot: pilot.child.pid!, bare: bare.pid! };
      if (master) pids['HAProxy master'] = master;
      if (worker) pids['HAProxy worker'] = worker;
      if (demo) pids['demo program (node)'] = demo;
      process.stderr.write(`measuring ${Object.keys(pids).join(', ')} for ${WINDOW_S} s…\n`);
      results = await measure(pids, WINDOW_S);
    } finally {
      bare.kill('SIGTERM');
      pilot.child.kill('SIGTERM');
      await pilot.exited;
    }

    // 2. What they hold: the same two processes with the probe preloaded.
    const probeOut = (name: string): string => join(dir, `${name}.json`);
    const probeEnv = (name: string) => ({ IDLE_PROBE_OUT: probeOut(name), IDLE_PROBE_AFTER_MS: String((SETTLE_S + 10) * 1000) });
    const pilot2 = startPilot({ ...env, PILOT_RUN_DIR: join(dir, 'run2'), ...probeEnv('pilot') }, ['--import', PROBE]);
    const bare2 = spawn(process.execPath, ['--import', PROBE, '-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore', env: { ...process.env, ...probeEnv('bare') } });
    try {
      await healthy();
      await sleep((SETTLE_S + 15) * 1000);
      holdings = {
        pilot: JSON.parse(await readFile(probeOut('pilot'), 'utf8')) as Holdings,
        bare: JSON.parse(await readFile(probeOut('bare'), 'utf8')) as Holdings,
      };
      holdings.pilot.summary = await summarize(holdings.pilot.snapshot);
      holdings.bare.summary = await summarize(holdings.bare.snapshot);
    } finally {
      bare2.kill('SIGTERM');
      pilot2.child.kill('SIGTERM');
      await pilot2.exited;
    }
  } finally {
    await kv.close();
    await rm(dir, { recursive: true, force: true });
  }
  const section = await format(results, holdings, cond, (Date.now() - began) / 1000);
  process.stdout.write(`${section}\n`);
  if (!quick && !process.env.BENCH_NO_DOC) await writeSection('idle', section);
}

/** Scripts by where they come from: the pilot's own files, each npm package, Node's built-ins. */
async function byPackage(scripts: string[]): Promise<{ name: string; files: number; bytes: number }[]> {
  const groups = new Map<string, { files: number; bytes: number }>();
  for (const url of scripts) {
    let name: string;
    let bytes = 0;
    if (url.startsWith('file://')) {
      const path = fileURLToPath(url);
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
      name = m ? m[1]! : path.includes('/dist/bench/') ? '(bench probe)' : 'haproxy-pilot (dist/src)';
      bytes = (await stat(path).catch(() => ({ size: 0 }))).size;
    } else if (url.startsWith('node:')) name = 'Node built-ins (node:*)';
    else continue;
    const g = groups.get(name) ?? { files: 0, bytes: 0 };
    g.files++;
    g.bytes += bytes;
    groups.set(name, g);
  }
  return [...groups].map(([name, g]) => ({ name, ...g })).sort((a, b) => b.bytes - a.bytes || b.files - a.files);
}

const mib = (b: number): string => num(b / 2 ** 20, 1);

const WHY: Record<string, string> = {
  'haproxy-pilot (dist/src)': 'the pilot itself',
  undici: 'the KV source\'s HTTP client',
  handlebars: 'templates',
  yaml: 'pilot.yaml and discovery files',
  execa: 'spawning HAProxy, `haproxy -c` and programs',
  pino: 'logging',
  koffi: 'the native binding the reaper uses for waitpid/prctl',
  'signal-exit': 'killing HAProxy if Node dies',
  'prom-client': '`/metrics`',
  'smol-toml': 'haproxy-api\'s TOML files',
};
const ABSENT = ['etcd3', '@grpc/grpc-js', 'node-zookeeper-client', 'pino-pretty', 'smol-toml'];

async function format(results: Record<string, Measured>, holdings: { pilot: Holdings; bare: Holdings }, cond: string, seconds: number): Promise<string> {
  const rows = Object.entries(results).map(([name, m]) => {
    const s = stats(m.rss);
    return `| ${name === 'bare' ? 'bare Node (`node -e \'setInterval(()=>{},1e9)\'`)' : name === 'pilot' ? '**haproxy-pilot** (node)' : name} | ${s.n} | ${num(s.median, 1)} | ${num(s.min, 1)}–${num(s.max, 1)} | ${num(m.cpuPerMin, 3)} |`;
  });
  const p = results.pilot!;
  const b = results.bare!;
  const mem = (h: Holdings): string => `RSS ${mib(h.memory.rss)}, V8 heap used ${mib(h.memory.heapUsed)} of ${mib(h.memory.heapTotal)}, external ${mib(h.memory.external)} (array buffers ${mib(h.memory.arrayBuffers)})`;
  const spaces = (h: Holdings): string => h.spaces.filter((s) => s.used > 512 * 1024).map((s) => `${s.name.replace(/_space$/, '')} ${mib(s.used)}`).join(', ');
  const pkgs = await byPackage(holdings.pilot.scripts);
  const bareBuiltins = new Set(holdings.bare.builtins);
  const extraBuiltins = holdings.pilot.builtins.filter((m) => m.startsWith('NativeModule ') && !bareBuiltins.has(m)).length;
  return [
    '## Idle process',
    '',
    `haproxy-pilot serving the demo with a key/value source polled every 5 s (\`KV_URL\`, the default \`KV_INTERVAL\`; the`,
    'Consul KV protocol fixture, one key), left alone: the processes\' RSS sampled every 5 s and their CPU time',
    `(user + system, from /proc) over the same ${num(WINDOW_S)} s, after ${SETTLE_S} s of settling. The bare Node process runs at the`,
    'same time, so both see the same machine.',
    '',
    '| process | RSS samples | RSS median MiB | RSS min–max MiB | CPU s per minute |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    `Against issue 9's goal (RSS ≤ 60 MB, CPU ≤ 0.01 s/min): RSS ${num(stats(p.rss).median, 1)} MiB (${stats(p.rss).median * 1.048576 <= 60 ? 'met' : '**not met**'}; the bare Node floor`,
    `here is ${num(stats(b.rss).median, 1)} MiB), CPU ${num(p.cpuPerMin, 3)} s/min (${p.cpuPerMin <= 0.01 ? 'met' : '**not met**'}; bare Node ${num(b.cpuPerMin, 3)} s/min).`,
    '',
    'What the pilot holds at idle (a second run with a probe preloaded that, after the same settling, reads',
    '`process.memoryUsage()`, V8\'s heap spaces, and every script V8 compiled, as the inspector lists them; the',
    'inspector and the heap snapshot make RSS higher there than in the table above):',
    '',
    `- haproxy-pilot: ${mem(holdings.pilot)}; heap spaces over 0.5 MiB: ${spaces(holdings.pilot)}.`,
    `- bare Node: ${mem(holdings.bare)}; heap spaces over 0.5 MiB: ${spaces(holdings.bare)}.`,
    `- Node built-in modules loaded beyond the bare process's: ${extraBuiltins}.`,
    '',
    'The V8 heap by kind (self sizes from a heap snapshot taken at the same moment; MiB):',
    '',
    '| kind | haproxy-pilot | bare Node |',
    '|---|---|---|',
    ...(holdings.pilot.summary ?? []).slice(0, 10).map((g) => `| ${g.kind} | ${mib(g.bytes)} (${g.count.toLocaleString('en-US')}) | ${mib(holdings.bare.summary?.find((x) => x.kind === g.kind)?.bytes ?? 0)} |`),
    '',
    '| loaded from | scripts | source size |',
    '|---|---|---|',
    ...pkgs.filter((g, i) => i < 14 || g.name.startsWith('Node ')).map((g) => `| ${g.name} | ${g.files} | ${g.bytes ? `${num(g.bytes / 1024)} KiB` : '–'} |`),
    ...(() => {
      const rest = pkgs.filter((g, i) => i >= 14 && !g.name.startsWith('Node '));
      return rest.length ? [`| ${rest.length} more packages (${rest.map((g) => g.name).join(', ')}) | ${rest.reduce((a, g) => a + g.files, 0)} | ${num(rest.reduce((a, g) => a + g.bytes, 0) / 1024)} KiB |`] : [];
    })(),
    '',
    `Why each package is there: ${pkgs.filter((g) => WHY[g.name]).map((g) => `${g.name} (${WHY[g.name]})`).join('; ')}; the rest are their`,
    `dependencies. Not loaded: ${ABSENT.filter((a) => !pkgs.some((g) => g.name === a)).join(', ')} (source kinds load their clients only when configured;`,
    'undici is the KV source\'s HTTP client here).',
    '',
    `${cond} The whole run took ${num(seconds)} s.`,
    '',
    'Run: `npx tsc -p . && node dist/bench/idle.js` (root; `BENCH_IDLE_SECONDS` sets the measured window; `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

if (process.argv.includes('--inside')) await inside();
else process.exitCode = await inNetns(SELF, process.argv.slice(2));
