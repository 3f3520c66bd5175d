/**
 * Change latency: time from a store write to the first request that shows the change through
 * HAProxy, per source (discovery file, Consul-style KV with blocking queries, etcd watch) and per
 * server-level change (address, add, remove, re-add, weight), with the reloads each change cost
 * (ZooKeeper too, with ProxyMgr's schema, when Debian's zookeeper and java are installed);
 * next to a confd-style baseline on the same stores (watch, render everything, `haproxy -c`,
 * reload) and a Data-Plane-API-style baseline (the API call: write the file, `haproxy -c`,
 * runtime API for what DPA does at runtime, a reload for a server delete). One run, one machine.
 * Writes the section between the change-latency markers of docs/benchmarks.md.
 *
 *   npx tsc -p . && node dist/bench/change-latency.js [--quick]
 *
 * Environment: BENCH_CYCLES (pilot rows, 40), BENCH_BASELINE_CYCLES (20), BENCH_NO_DOC=1.
 * Runs in a network namespace of its own (root), so :5000, :1936 and :7778 are free. Needs
 * haproxy and etcd (and ZooKeeper). The Consul-style KV endpoint is the protocol fixture of the e2e tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startConsulKvFixture } from '../e2e/support/sources-consul-kv-fixture.js';
import { startEtcd } from '../e2e/support/sources-etcd.js';
import { startNamedServers, type NamedServers } from './support-latency-probe.js';
import { etcdStore, fileStore, kvStore, zkStore, type Store } from './support-latency-stores.js';
import { startZookeeper, zkAdmin, zookeeperAvailable, type ZkAdmin, type ZkEnsemble } from '../e2e/support/zookeeper.js';
import { startConfdStyle, startDpaStyle, type BaselineSystem } from './support-latency-baseline.js';
import { KINDS, pilotSystem, runCycles, serversFor, type Kind, type Sample, type System } from './support-latency-scenarios.js';
import { conditions, inNetns, num, stats, writeSection } from './support-doc.js';

const SELF = fileURLToPath(import.meta.url);
const quick = process.argv.includes('--quick');
const CYCLES = quick ? 2 : Number(process.env.BENCH_CYCLES ?? 40);
const BASE_CYCLES = quick ? 2 : Number(process.env.BENCH_BASELINE_CYCLES ?? 20);
const TOKEN = 'bench-token';
const PAUSE: [number, number] = [150, 450];

interface Row {
  system: string;
  source: string;
  samples: Sample[];
  workersSame?: boolean;
  seconds: number;
}

function baselineAsSystem(b: BaselineSystem, port: number, weights: boolean): System {
  return { apply: (set) => b.apply(set), reloads: async () => b.reloads(), port, weights, stop: () => b.stop() };
}

async function inside(): Promise<void> {
  const began = Date.now();
  const cond = await conditions({ etcd: true });
  const kv = await startConsulKvFixture({ token: TOKEN });
  const servers: NamedServers = await startNamedServers(serversFor(Math.max(CYCLES, BASE_CYCLES)), 9100);
  const etcd = await startEtcd(1);
  const zk: ZkEnsemble | undefined = zookeeperAvailable() ? await startZookeeper(1) : undefined;
  const admin: ZkAdmin | undefined = zk ? await zkAdmin(zk.connectString) : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-latency-'));
  const rows: Row[] = [];
  let n = 0;
  const stores: Record<string, () => Store | Promise<Store>> = {
    file: () => fileStore(join(dir, `discovery-${++n}.yaml`)),
    'KV blocking': () => kvStore(kv, TOKEN, `apps/bench${++n}/containers`),
    etcd: () => etcdStore(etcd.endpoints[0]!, `/apps/bench${++n}/web`),
    ...(zk && admin ? { ZooKeeper: () => zkStore(admin, zk.connectString, `/bench${++n}`, 5400) } : {}),
  };
  /** confd has no ZooKeeper watch worth comparing with ProxyMgr's; the confd-style rows cover the others. */
  const confdSources = ['file', 'KV blocking', 'etcd'];
  const run = async (system: string, source: string, cycles: number, start: () => Promise<System>): Promise<void> => {
    const t0 = Date.now();
    process.stderr.write(`${system} / ${source}: ${cycles} cycles… `);
    const sys = await start();
    try {
      const { samples, workersSame } = await runCycles(sys, servers, cycles, PAUSE);
      rows.push({ system, source, samples, ...(workersSame !== undefined ? { workersSame } : {}), seconds: (Date.now() - t0) / 1000 });
      const s = stats(samples.map((x) => x.ms));
      process.stderr.write(`median ${num(s.median)} ms, p99 ${num(s.p99)} ms, ${samples.reduce((a, x) => a + x.reloads, 0)} reloads (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    } finally {
      await sys.stop();
    }
  };
  try {
    for (const source of Object.keys(stores)) {
      const store = await stores[source]!();
      try {
        await run('haproxy-pilot', source, CYCLES, () => pilotSystem(store));
      } finally {
        await store.close();
      }
    }
    for (const source of confdSources) {
      const store = await stores[source]!();
      try {
        await run('confd-style', source, BASE_CYCLES, async () => baselineAsSystem(await startConfdStyle(store, { port: 5100, dir }), 5100, store.weights));
      } finally {
        await store.close();
      }
    }
    await run('Data-Plane-API-style', 'API call', BASE_CYCLES, async () => baselineAsSystem(await startDpaStyle({ port: 5200, dir }), 5200, true));
  } finally {
    await admin?.close();
    await zk?.close();
    await etcd.close();
    await servers.close();
    await kv.close();
    await rm(dir, { recursive: true, force: true });
  }
  const section = format(rows, cond, (Date.now() - began) / 1000);
  process.stdout.write(`${section}\n`);
  if (!quick && !process.env.BENCH_NO_DOC) await writeSection('change-latency', section);
}

const reloadsPer = (xs: Sample[]): string => (xs.length ? num(xs.reduce((a, x) => a + x.reloads, 0) / xs.length, 2) : '–');

function format(rows: Row[], cond: string, seconds: number): string {
  const lines: string[] = [];
  for (const row of rows) {
    for (const kind of KINDS) {
      const xs = row.samples.filter((x) => x.kind === kind);
      if (xs.length === 0) continue;
      const s = stats(xs.map((x) => x.ms));
      lines.push(`| ${row.system} | ${row.source} | ${kind} | ${s.n} | ${num(s.median)} | ${num(s.p90)} | ${num(s.p99)} | ${num(s.min)}–${num(s.max)} | ${reloadsPer(xs)} |`);
    }
  }
  const pilotAll = rows.filter((r) => r.system === 'haproxy-pilot');
  const goal = pilotAll.map((r) => {
    const s = stats(r.samples.map((x) => x.ms));
    const reloads = r.samples.reduce((a, x) => a + x.reloads, 0);
    const met = s.median <= 20 && s.p99 <= 100;
    return `| ${r.source} | ${s.n} | ${num(s.median)} | ${num(s.p99)} | ${met ? 'met' : '**not met**'} | ${reloads} | ${r.workersSame === undefined ? '–' : r.workersSame ? 'yes' : '**no**'} |`;
  });
  const byKind = (system: string, kind: Kind): string => {
    const xs = rows.filter((r) => r.system === system).flatMap((r) => r.samples.filter((x) => x.kind === kind));
    return xs.length ? num(stats(xs.map((x) => x.ms)).median) : '–';
  };
  const versus = KINDS.map((k) => `| ${k} | ${byKind('haproxy-pilot', k)} | ${byKind('confd-style', k)} | ${byKind('Data-Plane-API-style', k)} |`);
  return [
    '## Change latency',
    '',
    'Time from a store write (or, for the Data-Plane-API-style baseline, the start of the API call) to',
    'the first request through HAProxy that shows the change, for each server-level change on one',
    'backend: **add** a server with a new name and address (until it answers), move it to another',
    '**address** (until the new one answers), raise a server\'s **weight** from 0 to 1 (until it answers;',
    'the file only: KV and etcd values are `host:port`, ZooKeeper nodes `{address, port}`), **remove** it',
    '(until its last answer), **re-add** the same name and address 150–450 ms later (until it answers).',
    'An anchor server stays in the',
    'backend; probes are back-to-back requests on new connections (about 1–2 ms each, so that is the',
    'resolution); a random pause of 150–450 ms precedes every change. Reloads are counted per change',
    '(haproxy-pilot: `/status` before and after).',
    '',
    '- **haproxy-pilot**: defaults (`PILOT_QUIET_MIN` 200 ms applies only to reloads); the discovery',
    '  file (yaml, replaced by rename), the KV endpoint with `KV_WATCH=1`, etcd with',
    '  `ETCD_LAYOUT=containers` (each key under the prefix is a server; one transaction per change),',
    '  ZooKeeper with ProxyMgr\'s schema (`ZK_SERVERS`, `ZK_PATH`: a service node with a listen port,',
    '  `{address, port}` server nodes; one ZooKeeper transaction per change; HAProxy\'s server is named',
    '  after address and port, so an address change is a server removed and one added, at runtime).',
    '  Sidecar\'s push → traffic rows are in their own section below.',
    '- **confd-style**: the file, KV and etcd stores watched the way confd `-watch` does (inotify,',
    '  blocking queries, an etcd watch), every change read in full, a whole config rendered, `haproxy -c`,',
    '  and a reload (SIGUSR2 to a master-worker master, not confirmed): what seed 002\'s image and',
    '  haproxy-confd did.',
    '- **Data-Plane-API-style** (reference section C4, DPA v3 without a transaction): each call writes',
    '  the whole file and validates it with `haproxy -c`; add = `add server` + `enable health` + `state',
    '  ready`, address and weight = `set server`, each on its own master CLI connection; a server',
    '  delete is a reload (DPA always reloads for a delete), done at once as with `force_reload=true`',
    '  (DPA\'s default `reload-delay` of 5 s would add up to 5 s to each delete).',
    '',
    '| system | source | change | samples | median ms | p90 ms | p99 ms | min–max ms | reloads per change |',
    '|---|---|---|---|---|---|---|---|---|',
    ...lines,
    '',
    'Medians by change kind, all sources together:',
    '',
    '| change | haproxy-pilot ms | confd-style ms | Data-Plane-API-style ms |',
    '|---|---|---|---|',
    ...versus,
    '',
    'Against issue 9\'s goal (store write → first request, p50 ≤ 20 ms, p99 ≤ 100 ms; 0 reloads for',
    'server-level changes), haproxy-pilot, all change kinds of a source together:',
    '',
    '| source | samples | median ms | p99 ms | latency goal | reloads | same HAProxy worker throughout |',
    '|---|---|---|---|---|---|---|',
    ...goal,
    '',
    `${cond} The whole run took ${num(seconds)} s. The KV endpoint is the Consul KV API protocol fixture of the e2e tests (no Consul or Container Cloud server can be installed here). p99 is by nearest rank: below 100 samples it is the largest sample.`,
    '',
    'Run: `npx tsc -p . && node dist/bench/change-latency.js` (root: it makes a network namespace; `BENCH_CYCLES`, `BENCH_BASELINE_CYCLES` set the samples; `--quick` for a smoke run that writes nothing).',
  ].join('\n');
}

if (process.argv.includes('--inside')) await inside();
else process.exitCode = await inNetns(SELF, process.argv.slice(2));
