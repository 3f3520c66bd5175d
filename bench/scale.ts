/**
 * Scale: the pipeline at 100, 1,000 and 5,000 backends × 20 servers, in one run.
 *
 * In process, the real stages one after the other, timed apart: the discovery file's read step
 * (parse + layout, as the file source does it, JSON and yaml), then what the reconcile loop does
 * with the snapshot (internBackends, mergeSnapshots, createBuilder().build, planApply), then the
 * runtime apply (createTransaction().apply against a real HAProxy running the config: the
 * batched runtime commands and the rewrite of the live file). Rows: the first build (cold, full
 * render + a plan that compares every section), one server change, 1,000 server changes in one
 * snapshot.
 *
 * End to end, the real binary on a discovery file (JSON and yaml) of each size: spawn → started,
 * one server change and 1,000 server changes (file renamed into place → the `applied (runtime)`
 * log line), the pilot's RSS.
 *
 *   npx tsc -p . && node dist/bench/scale.js [--quick]
 *
 * Environment: BENCH_SIZES (100,1000,5000), BENCH_NO_DOC=1. Root (network namespace).
 *
 * Servers have no health checks here (a template partial drops `check`, another keeps maxconn
 * at 4096): 1,000 × 20 checked servers need more file descriptors than this machine's hard limit
 * of 20,000 allows.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { createBuilder } from '../src/candidate.js';
import { mergeSnapshots } from '../src/state/merge.js';
import { internBackends } from '../src/state/intern.js';
import { planApply } from '../src/apply/plan.js';
import { createTransaction, installFirst } from '../src/apply/transaction.js';
import { createGenerations } from '../src/apply/generations.js';
import { createHaproxyMaster } from '../src/supervise/haproxy.js';
import { parseDiscoveryFile } from '../src/sources/file/transport.js';
import { fileLayout, flattenKeys } from '../src/sources/file/layout.js';
import { snapshotOf } from '../src/sources/common.js';
import { silentLogger } from '../src/log.js';
import type { Snapshot } from '../src/sources/source.js';
import type { DiscoveredServer } from '../src/state/model.js';
import { conditions, inNetns, num, procUsage, sleep, stats, writeSection } from './support-doc.js';
import { startLoggedPilot } from './support-pilot-log.js';

const SELF = fileURLToPath(import.meta.url);
const EMBEDDED_PARTIALS = fileURLToPath(new URL('../../templates/partials/', import.meta.url));
const quick = process.argv.includes('--quick');
const SIZES = (process.env.BENCH_SIZES ?? (quick ? '100,1000' : '100,1000,5000')).split(',').map(Number);
const SERVERS = 20;
const BULK = 1000;
const REPS = { first: quick ? 1 : 3, one: quick ? 3 : 15, bulk: quick ? 2 : 7, e2eOne: quick ? 2 : 7, e2eBulk: quick ? 1 : 4 };

// ------------------------------------------------------------------ the discovery file

/** Which servers currently sit at their second address (`198.19…` instead of `198.18…`). */
type Flipped = Set<number>;
const key = (b: number, s: number): number => b * SERVERS + s;

function address(b: number, s: number, flipped: Flipped): string {
  // 198.18.0.0/15 (benchmarking addresses): no route in the namespace, nothing is ever contacted.
  return `198.${flipped.has(key(b, s)) ? 19 : 18}.${b % 250}.${1 + s}:${8000 + Math.floor(b / 250)}`;
}

function json(n: number, flipped: Flipped): string {
  const services: Record<string, { servers: string[] }> = {};
  for (let b = 0; b < n; b++) services[`svc${b}`] = { servers: Array.from({ length: SERVERS }, (_, s) => address(b, s, flipped)) };
  return JSON.stringify({ services });
}

function yaml(n: number, flipped: Flipped): string {
  const out = ['services:'];
  for (let b = 0; b < n; b++) {
    out.push(`  svc${b}:`, '    servers:');
    for (let s = 0; s < SERVERS; s++) out.push(`      - "${address(b, s, flipped)}"`);
  }
  return `${out.join('\n')}\n`;
}

/** The servers that change in change number `k` (`count` of them, spread over the backends). */
function changeSet(n: number, count: number, flipped: Flipped): void {
  for (let i = 0; i < count; i++) {
    const k = key(i % n, Math.floor(i / n) % SERVERS);
    if (flipped.has(k)) flipped.delete(k);
    else flipped.add(k);
  }
}

// ------------------------------------------------------------------ in process

interface Timing {
  parse: number;
  layout: number;
  build: number;
  plan?: number;
  apply?: number;
  total: number;
}

interface InProcessRow {
  size: number;
  what: string;
  timings: Timing[];
  ops?: number;
}

/** The file source's read step: parse, layout (with the memo of server texts), raw keys, snapshot. */
function readStep(path: string, text: string, memo: { previous: ReadonlyMap<string, DiscoveredServer> }): { snapshot: Snapshot; parse: number; layout: number; next: Map<string, DiscoveredServer> } {
  const t0 = performance.now();
  const { doc, locate } = parseDiscoveryFile(path, text);
  const t1 = performance.now();
  const m = { previous: memo.previous, next: new Map<string, DiscoveredServer>() };
  const result = fileLayout(doc, { source: 'file', locate, memo: m });
  const snapshot = snapshotOf('file', Date.now(), flattenKeys(doc), result, silentLogger());
  const t2 = performance.now();
  return { snapshot, parse: t1 - t0, layout: t2 - t1, next: m.next };
}

async function inProcess(n: number, dir: string, tplDir: string): Promise<{ rows: InProcessRow[]; yamlParse: number[]; jsonParse: number[] }> {
  const runDir = join(dir, `run-${n}`);
  await mkdir(runDir, { recursive: true });
  const path = join(dir, `discovery-${n}.json`);
  const env = { DISCOVERY_FILE: path, PILOT_DEMO: 'off', STATS_PASSWORD: 'bench', PILOT_RUN_DIR: runDir, PILOT_TEMPLATES: tplDir, HAPROXY_LOG_FORMAT: 'none' };
  const config = loadConfig({ env, readFile: (p) => readFileSync(p, 'utf8'), fileExists: (p) => existsSync(p) });
  const settings = { config, statsPassword: 'bench', hasPrometheus: true };
  const flipped: Flipped = new Set();
  const rows: InProcessRow[] = [];

  // yaml next to JSON: the same document, parsed the way the file source parses it.
  const jsonParse: number[] = [];
  const yamlParse: number[] = [];
  const jtext = json(n, flipped);
  const ytext = yaml(n, flipped);
  // The first parse of each kind compiles the parser's code: warm both up on this document first.
  readStep(path, jtext, { previous: new Map() });
  readStep(join(dir, 'd.yaml'), ytext, { previous: new Map() });
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    jsonParse.push(readStep(path, jtext, { previous: new Map() }).parse);
    yamlParse.push(readStep(join(dir, 'd.yaml'), ytext, { previous: new Map() }).parse);
  }

  // First build: a fresh builder (nothing memoized), the whole config rendered, then planned
  // against a running config that differs by one server (every section is compared).
  const first: Timing[] = [];
  let firstCandidate;
  const other = new Set<number>([key(0, 0)]);
  for (let r = 0; r < REPS.first; r++) {
    const t0 = performance.now();
    const read = readStep(path, jtext, { previous: new Map() });
    const builder = createBuilder(settings);
    const t1 = performance.now();
    const cand = await builder.build(mergeSnapshots([read.snapshot], builder.reserved));
    const t2 = performance.now();
    if (r === 0) {
      // The running config for the plan: the same with one server elsewhere (built outside the timing).
      const otherRead = readStep(path, json(n, other), { previous: new Map() });
      const otherText = (await createBuilder(settings).build(mergeSnapshots([otherRead.snapshot], builder.reserved))).text;
      firstCandidate = { cand, otherText };
    }
    const t3 = performance.now();
    const plan = planApply({ running: firstCandidate!.otherText, next: cand.text, lingering: new Map() });
    const t4 = performance.now();
    if (plan.kind !== 'runtime') throw new Error(`first plan: ${plan.kind}`);
    first.push({ parse: read.parse, layout: read.layout, build: t2 - t1, plan: t4 - t3, total: read.parse + read.layout + (t2 - t1) + (t4 - t3) });
    void t0;
  }
  rows.push({ size: n, what: 'first build: full render + plan', timings: first });

  // A real HAProxy running the first candidate, and the pilot's transaction in front of it.
  const generations = createGenerations(runDir);
  const checkDeps = { bin: 'haproxy', generations, relativePaths: true, log: silentLogger() };
  const candidate = firstCandidate!.cand;
  await installFirst(checkDeps, candidate);
  const master = createHaproxyMaster({
    bin: 'haproxy',
    configPath: generations.liveConfig,
    chdir: generations.liveDir,
    masterSocket: config.haproxy.masterSocket,
    workerSocket: config.haproxy.workerSocket,
    stopDelayMs: 0,
    stopTimeoutMs: 10_000,
    reloadTimeoutMs: 60_000,
    startTimeoutMs: 300_000,
    log: silentLogger(),
  });
  await master.start();
  const transaction = createTransaction({ ...checkDeps, master, initial: candidate });
  try {
    const builder = createBuilder(settings);
    let memo: ReadonlyMap<string, DiscoveredServer> = new Map();
    let previous: Snapshot['backends'] | undefined;
    // Warm the builder's memo and the source's memo with the running state.
    {
      const read = readStep(path, json(n, flipped), { previous: memo });
      memo = read.next;
      previous = read.snapshot.backends;
      await builder.build(mergeSnapshots([read.snapshot], builder.reserved));
    }
    const change = async (count: number): Promise<{ timing: Timing; ops: number }> => {
      changeSet(n, count, flipped);
      const text = json(n, flipped);
      const t0 = performance.now();
      const read = readStep(path, text, { previous: memo });
      const t1 = performance.now();
      memo = read.next;
      // What pilot.onSnapshot and the loop do: keep unchanged backends' objects, merge, build.
      const backends = internBackends(read.snapshot.backends, previous);
      previous = backends;
      const cand = await builder.build(mergeSnapshots([{ ...read.snapshot, backends }], builder.reserved));
      const t2 = performance.now();
      const result = await transaction.apply(cand, 'bench');
      const t3 = performance.now();
      if (!result.ok || result.kind !== 'runtime') throw new Error(`change of ${count}: ${result.kind} ${result.error?.message ?? ''}`);
      return { timing: { parse: read.parse, layout: read.layout, build: t2 - t1, apply: t3 - t2, total: t3 - t0 }, ops: result.ops?.length ?? 0 };
    };
    for (const [what, count, reps] of [['one server change', 1, REPS.one], [`${BULK.toLocaleString('en-US')} server changes in one snapshot`, BULK, REPS.bulk]] as const) {
      const timings: Timing[] = [];
      let ops = 0;
      for (let r = 0; r < reps; r++) {
        // Removed servers are deleted by a sweep 200 ms later: let it run outside the timing.
        await sleep(count > 1 ? 1500 : 400);
        const c = await change(count);
        timings.push(c.timing);
        ops = c.ops;
      }
      rows.push({ size: n, what, timings, ops });
    }
    const status = master.status();
    if (transaction.status().reloads !== 0) throw new Error(`${transaction.status().reloads} reloads`);
    void status;
  } finally {
    transaction.close();
    await master.stop('fast');
  }
  return { rows, yamlParse, jsonParse };
}

// ------------------------------------------------------------------ end to end

interface E2eRow {
  size: number;
  format: 'JSON' | 'yaml';
  startMs: number;
  rssStartMiB: number;
  one: number[];
  bulk: number[];
  rssEndMiB: number;
  peakMiB: number;
  reloads: number;
}

async function vmHwm(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

async function endToEnd(n: number, format: 'JSON' | 'yaml', dir: string, tplDir: string): Promise<E2eRow> {
  const path = join(dir, `e2e-${n}.${format === 'JSON' ? 'json' : 'yaml'}`);
  const flipped: Flipped = new Set();
  const render = (): string => (format === 'JSON' ? json(n, flipped) : yaml(n, flipped));
  const write = async (): Promise<void> => {
    await writeFile(`${path}.tmp`, render());
    await rename(`${path}.tmp`, path);
  };
  await write();
  const runDir = join(dir, `e2e-run-${n}-${format}`);
  const t0 = performance.now();
  const pilot = await startLoggedPilot({ DISCOVERY_FILE: path, PILOT_DEMO: 'off', PILOT_RUN_DIR: runDir, PILOT_TEMPLATES: tplDir, STATS_PORT: '0' });
  const startMs = performance.now() - t0;
  try {
    await sleep(2000);
    const rssStartMiB = (await procUsage(pilot.pid))?.rssMiB ?? NaN;
    const timed = async (count: number): Promise<number> => {
      changeSet(n, count, flipped);
      const text = render();
      await writeFile(`${path}.tmp`, text);
      const t = performance.now();
      await rename(`${path}.tmp`, path);
      const line = await pilot.waitFor('applied (', t, 300_000);
      if (line.msg !== 'applied (runtime)') throw new Error(`${format} ${n}: ${line.msg} (${JSON.stringify(line.fields.planReason ?? '')})`);
      return line.at - t;
    };
    const one: number[] = [];
    for (let r = 0; r < REPS.e2eOne; r++) {
      await sleep(500);
      one.push(await timed(1));
    }
    const bulk: number[] = [];
    for (let r = 0; r < REPS.e2eBulk; r++) {
      await sleep(2000);
      bulk.push(await timed(BULK));
    }
    await sleep(1000);
    const status = (await (await fetch('http://127.0.0.1:7778/status')).json()) as { apply: { reloads: number } };
    return { size: n, format, startMs, rssStartMiB, one, bulk, rssEndMiB: (await procUsage(pilot.pid))?.rssMiB ?? NaN, peakMiB: await vmHwm(pilot.pid), reloads: status.apply.reloads };
  } finally {
    await pilot.stop();
    await rm(runDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ run and report

async function inside(): Promise<void> {
  const began = Date.now();
  const cond = await conditions();
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-scale-'));
  // The embedded partials, with two edits (see the header): servers without `check`, and
  // maxconn kept at 4096 (the pilot would lower it to fit every server as if it were checked).
  // Inside the embedded templates folder, so the loader memoizes the backend partial per backend
  // as it does the embedded one (an operator's own partial is rendered afresh on every pass).
  const tplDir = join(EMBEDDED_PARTIALS, '..', `.bench-scale-${process.pid}`);
  await mkdir(join(tplDir, 'partials'), { recursive: true });
  const edit = async (name: string, from: string, to: string): Promise<void> => {
    const text = await readFile(join(EMBEDDED_PARTIALS, name), 'utf8');
    if (!text.includes(from)) throw new Error(`the embedded partial ${name} changed: update the bench`);
    await writeFile(join(tplDir, 'partials', name), text.replace(from, to));
  };
  await edit('backend.hbs', '    server {{this.name}} {{address}} {{params}}', '    server {{this.name}} {{address}}{{#each (split params " ")}}{{#if (ne this "check")}} {{this}}{{/if}}{{/each}}');
  await edit('global.hbs', '    maxconn {{global.maxconn}}', '    maxconn 4096');
  const inRows: InProcessRow[] = [];
  const parse: { size: number; json: number[]; yaml: number[] }[] = [];
  const e2e: E2eRow[] = [];
  try {
    for (const n of SIZES) {
      process.stderr.write(`in process, ${n} × ${SERVERS}… `);
      const r = await inProcess(n, dir, tplDir);
      inRows.push(...r.rows);
      parse.push({ size: n, json: r.jsonParse, yaml: r.yamlParse });
      process.stderr.write(r.rows.map((x) => `${x.what}: ${num(stats(x.timings.map((t) => t.total)).median)} ms`).join('; ') + '\n');
    }
    for (const n of SIZES) {
      for (const format of ['JSON', 'yaml'] as const) {
        process.stderr.write(`end to end, ${format} ${n} × ${SERVERS}… `);
        const row = await endToEnd(n, format, dir, tplDir);
        e2e.push(row);
        process.stderr.write(`start ${num(row.startMs)} ms, one ${num(stats(row.one).median)} ms, ${BULK} ${num(stats(row.bulk).median)} ms, RSS ${num(row.rssEndMiB)} MiB (peak ${num(row.peakMiB)})\n`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(tplDir, { recursive: true, force: true });
  }
  const section = format(inRows, parse, e2e, cond, (Date.now() - began) / 1000);
  process.stdout.write(`${section}\n`);
  if (!quick && !process.env.BENCH_NO_DOC) await writeSection('scale', section);
}

const med = (xs: number[]): string => num(stats(xs).median);

function format(rows: InProcessRow[], parse: { size: number; json: number[]; yaml: number[] }[], e2e: E2eRow[], cond: string, seconds: number): string {
  const size = (n: number): string => `${n.toLocaleString('en-US')} × ${SERVERS}`;
  const inTable = rows.map((r) => {
    const m = (f: (t: Timing) => number | undefined): string => {
      const xs = r.timings.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? med(xs) : '–';
    };
    const total = stats(r.timings.map((t) => t.total));
    return `| ${size(r.size)} | ${r.what} | ${r.timings.length} | ${m((t) => t.parse)} | ${m((t) => t.layout)} | ${m((t) => t.build)} | ${m((t) => t.plan)} | ${m((t) => t.apply)}${r.ops ? ` (${r.ops.toLocaleString('en-US')} ops)` : ''} | **${num(total.median)}** | ${num(total.p99)} |`;
  });
  const parseTable = parse.map((p) => `| ${size(p.size)} | ${med(p.json)} | ${med(p.yaml)} | ${num(stats(p.yaml).median / stats(p.json).median, 1)}× |`);
  const e2eTable = e2e.map((r) => {
    const one = stats(r.one);
    const bulk = stats(r.bulk);
    return `| ${size(r.size)} | ${r.format} | ${num(r.startMs)} | ${one.n} | **${num(one.median)}** | ${num(one.p99)} | ${bulk.n} | **${num(bulk.median)}** | ${num(bulk.p99)} | ${r.reloads} | ${num(r.rssStartMiB)} | ${num(r.rssEndMiB)} | ${num(r.peakMiB)} |`;
  });
  const goal = (n: number, what: string): string => {
    const r = rows.find((x) => x.size === n && x.what.startsWith(what));
    return r ? num(stats(r.timings.map((t) => t.total)).median) : '–';
  };
  const e2eGoal = (n: number, f: 'JSON' | 'yaml', pick: (r: E2eRow) => number): string => {
    const r = e2e.find((x) => x.size === n && x.format === f);
    return r ? num(pick(r)) : '–';
  };
  return [
    '## Scale: 100, 1,000 and 5,000 backends × 20 servers',
    '',
    '**In process**, the real stages timed apart (medians; ms): the file source\'s read step',
    '(`parseDiscoveryFile` of a JSON file, then `fileLayout` with its memo of server texts, the raw keys',
    'and the snapshot), then what the loop does with it (`internBackends`, `mergeSnapshots`,',
    '`createBuilder(…).build`, i.e. merge and render), the plan (`planApply`), and the runtime apply',
    '(`createTransaction(…).apply` against a real HAProxy 2.6 running the config: planning, the runtime',
    'commands batched on the worker\'s stats socket, the live file rewritten with two fsyncs). The first',
    'build uses a fresh builder (nothing memoized) and plans against a running config that differs by',
    'one server, so every section is compared. A server change replaces a server by one at a new',
    'address: servers given as `"host:port"` strings are named after their address, so that is a',
    '`set server … state maint` (deleted by a sweep later) and an `add server` + `state ready`. The',
    `${BULK.toLocaleString('en-US')} changed servers are spread over the backends. No change reloads (checked).`,
    '',
    '| size | what | samples | parse | layout | merge + render | plan | runtime apply | total | p99 total |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...inTable,
    '',
    'Parsing the same document (ms, median): yaml costs what the table says more than JSON, on every',
    're-read of the file (the layout after it is the same):',
    '',
    '| size | JSON.parse | yaml (`parseDocument`, line counter, `toJS`) | yaml / JSON |',
    '|---|---|---|---|',
    ...parseTable,
    '',
    '**End to end**, the real binary with `DISCOVERY_FILE` (JSON or yaml) of each size: spawn → the',
    '`started:` log line; a change is the whole file written and renamed into place, timed to the',
    '`applied (runtime)` log line (traffic follows the runtime commands, which come before the log',
    'line); RSS of the haproxy-pilot process (HAProxy not included) 2 s after start, at the end, and its',
    'peak (VmHWM).',
    '',
    '| size | file | spawn → started ms | samples | one change ms | p99 | samples | 1,000 changes ms | p99 | reloads | RSS at start MiB | RSS at end MiB | peak RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...e2eTable,
    '',
    'Against issue 9\'s goals:',
    '',
    '| goal | measured |',
    '|---|---|',
    `| 1,000 × 20: render + plan ≤ 50 ms | first build ${goal(1000, 'first build')} ms in process (parse and layout included) |`,
    `| 1,000 server changes in one snapshot, no reload, ≤ 300 ms | in process ${goal(1000, `${BULK.toLocaleString('en-US')} server`)} ms at 1,000 × 20, ${goal(5000, `${BULK.toLocaleString('en-US')} server`)} ms at 5,000 × 20; end to end (JSON) ${e2eGoal(1000, 'JSON', (r) => stats(r.bulk).median)} / ${e2eGoal(5000, 'JSON', (r) => stats(r.bulk).median)} ms |`,
    `| 5,000 × 20: one server change ≤ 200 ms | in process ${goal(5000, 'one server')} ms; end to end ${e2eGoal(5000, 'JSON', (r) => stats(r.one).median)} ms (JSON), ${e2eGoal(5000, 'yaml', (r) => stats(r.one).median)} ms (yaml) |`,
    `| 5,000 × 20: RSS ≤ 250 MB | peak ${e2eGoal(5000, 'JSON', (r) => r.peakMiB)} MiB (JSON), ${e2eGoal(5000, 'yaml', (r) => r.peakMiB)} MiB (yaml) |`,
    '',
    `${cond} The whole run took ${num(seconds)} s. Servers carry no health checks in this benchmark (\`PILOT_TEMPLATES\` with the`,
    'embedded `backend` partial minus `check`, put inside the embedded templates folder so that it is memoized per backend like',
    'the embedded one; an operator\'s own `backend` partial is rendered afresh for every backend on every pass): 1,000 × 20 checked servers need more descriptors than the 20,000 this machine\'s',
    'hard limit allows (and raising it needs `CAP_SYS_RESOURCE`, which is not available here). The pilot counts every discovered',
    'server as checked when it fits `maxconn` to that limit, so the `global` partial keeps `maxconn 4096` too (otherwise it would',
    'be lowered to 1 at 1,000 × 20, with a warning).',
    '',
    'Run: `npx tsc -p . && node dist/bench/scale.js` (root; `BENCH_SIZES=100,1000` for fewer sizes; `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

if (process.argv.includes('--inside')) await inside();
else process.exitCode = await inNetns(SELF, process.argv.slice(2));
