/**
 * Fleet convergence: how long three haproxy-pilot instances take to serve a change made in the
 * etcd cluster they follow, with the cluster healthy and right after its leader was killed.
 *
 *   node dist/bench/fleet-converge.js          (as root: it makes network namespaces)
 *
 * The network of e2e/fleet-etcd.test.ts (e2e/support/fleet.ts): a store namespace with a bridge,
 * a 3-member etcd cluster (Debian's etcd 3.4, default heartbeat 100 ms / election timeout
 * 1000 ms) and the backend servers; three pilots, each PID 1 of its own namespaces with real
 * HAProxy, linked to the bridge by veth pairs, following one prefix (`ETCD_LAYOUT=containers`).
 * Every pilot is under light wrk load (BENCH_WRK_CONNECTIONS per pilot, 1 by default; 0 = none)
 * during each sample. Two kinds of change:
 *
 *   address   one server key gets another address: a runtime API change, no reload
 *   server    a server key replaced by another (one etcd transaction): a new server, a reload
 *
 * and two conditions, side by side in one run:
 *
 *   healthy        the change is written to a healthy cluster
 *   leader killed  the leader is the member most pilots watch through (moved there first with
 *                  `etcdctl move-leader`), it is killed (SIGKILL), the change is written as soon as
 *                  the survivors have elected a new leader; the member is restarted after the sample
 *
 * Converge time = from the commit of the write (its answer to the writer) to the first answer of
 * the new server through a pilot (probes ask every ~5 ms on fresh connections, inside each
 * pilot's namespace). The figures go to docs/benchmarks.md between the bench:fleet-converge markers.
 *
 * Environment: BENCH_SAMPLES (10 per row), BENCH_WRK_CONNECTIONS (1), BENCH_NO_DOC=1.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Etcd3 } from 'etcd3';
import { startPilot, type Netns, type PilotProcess } from '../e2e/support/pilot-process.js';
import { startServersIn, type NetnsProcess } from '../e2e/support/seeds-netns.js';
import { writeSection } from './support-doc.js';
import { connectedTo, createFleetNet, probeUntil, startEtcdClusterIn, startWrkIn, waitUntil, type NetnsEtcdCluster, type WrkResult } from '../e2e/support/fleet.js';

const SELF = fileURLToPath(import.meta.url);

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 10);
const WRK_CONNECTIONS = Number(process.env.BENCH_WRK_CONNECTIONS ?? 1);
const PILOTS = 3;
const MEMBERS = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];
const SERVERS: Record<string, string> = { x: '10.77.0.21', y: '10.77.0.22', p: '10.77.0.23', q: '10.77.0.24' };
const PREFIX = '/fleet/web';
const FRONTEND = 'http://127.0.0.1:5000/';

type Kind = 'address' | 'server';
type Condition = 'healthy' | 'leader killed';

interface Sample {
  kind: Kind;
  condition: Condition;
  /** Per pilot: ms from the commit to its first answer from the new server. */
  converge: number[];
  /** Kill → a new leader seen (leader killed only). */
  electionMs?: number;
  /** Write sent → committed. */
  writeMs: number;
  /** Pilots that watched through the killed member. */
  cut?: number;
  wrk: WrkResult[];
}

interface Meta {
  date: string;
  machine: string;
  haproxy: string;
  etcd: string;
  node: string;
  totalSeconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const quantile = (xs: number[], q: number): number => {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  // nearest rank: with fewer than 100 samples the p99 is the maximum
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const median = (xs: number[]): number => {
  const s = sorted(xs);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
const fmt = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : String(Math.round(n)));

// ---------------------------------------------------------------- outer: namespaces + doc

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (the benchmark makes network namespaces)');
  const net = await createFleetNet(PILOTS, [...MEMBERS, ...Object.values(SERVERS)]);
  const resultFile = join(tmpdir(), `fleet-converge-${process.pid}.json`);
  try {
    const env = { ...process.env, BENCH_INNER: '1', BENCH_RESULT: resultFile, BENCH_NETNS: JSON.stringify({ store: net.store.name, pilots: net.pilots.map((p) => p.name) }) };
    // The writer (an etcd client) runs in the store namespace, next to the members.
    const child = spawn('ip', ['netns', 'exec', net.store.name, process.execPath, SELF], { stdio: 'inherit', env });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    if (code !== 0) throw new Error(`benchmark failed (exit ${code})`);
    const { samples, meta } = JSON.parse(await readFile(resultFile, 'utf8')) as { samples: Sample[]; meta: Meta };
    const section = formatSection(samples, meta);
    process.stdout.write(`\n${section}\n`);
    if (!process.env.BENCH_NO_DOC) {
      await writeSection('fleet-converge', section);
    }
  } finally {
    await rm(resultFile, { force: true });
    await net.remove();
  }
}

export function formatSection(samples: Sample[], meta: Meta): string {
  const rows: string[] = [];
  for (const kind of ['address', 'server'] as const) {
    for (const condition of ['healthy', 'leader killed'] as const) {
      const s = samples.filter((x) => x.kind === kind && x.condition === condition);
      if (s.length === 0) continue;
      const perPilot = [0, 1, 2].map((i) => fmt(median(s.map((x) => x.converge[i]!))));
      const fleet = s.map((x) => Math.max(...x.converge));
      const all = s.flatMap((x) => x.converge);
      const failed = s.reduce((n, x) => n + x.wrk.reduce((m, w) => m + w.failed, 0), 0);
      const requests = s.reduce((n, x) => n + x.wrk.reduce((m, w) => m + w.requests, 0), 0);
      const election = condition === 'leader killed' ? `${fmt(median(s.map((x) => x.electionMs ?? NaN)))} (${fmt(Math.max(...s.map((x) => x.electionMs ?? 0)))})` : '—';
      const cut = condition === 'leader killed' ? fmt(median(s.map((x) => x.cut ?? 0))) : '—';
      rows.push(
        `| ${kind === 'address' ? 'address change (runtime API)' : 'new server (reload)'} | ${condition} | ${cut} | ${s.length} | ${perPilot.join(' / ')} | ` +
          `**${fmt(median(fleet))}** | ${fmt(quantile(all, 0.99))} | ${fmt(quantile(fleet, 0.99))} | ${fmt(median(s.map((x) => x.writeMs)))} | ${election} | ${requests.toLocaleString('en-US')} / **${failed}** |`,
      );
    }
  }
  return [
    '## Fleet convergence (etcd leader killed)',
    '',
    `Measured ${meta.date} on ${meta.machine}; HAProxy ${meta.haproxy}, ${meta.etcd}, Node ${meta.node}; the run took ${meta.totalSeconds} s.`,
    'Three haproxy-pilot instances, each PID 1 in its own namespaces with its own HAProxy, follow one prefix of a',
    '3-member etcd cluster across veth links to a bridge (the network of `e2e/fleet-etcd.test.ts`), each under wrk',
    `load (${WRK_CONNECTIONS} keep-alive connection per pilot) during every sample. A change is either a server's new address (runtime`,
    'API, no reload) or a server replaced by another (one etcd transaction; a reload). "Leader killed": the leader is',
    'first moved (`etcdctl move-leader`) to the member most pilots watch through, then killed with SIGKILL; the change',
    'is written as soon as the survivors have elected a new leader, so the pilots that watched through it must notice',
    'the loss and reconnect to a survivor before they can see it. Converge = from the commit (the write\'s answer) to',
    "the pilot's first answer from the new server, probed every ~5 ms inside each pilot's namespace. p99 is the",
    'nearest-rank p99, which with these sample counts is the maximum. The machine has 2 cores that other work may',
    'share: compare rows of one run.',
    '',
    '| change | condition | pilots that watched through the killed leader (median) | samples | converge median per pilot, ms (1 / 2 / 3) | fleet converged, median ms (slowest of 3) | p99 any pilot, ms | p99 fleet, ms | write commit, median ms | kill → new leader, median (max) ms | requests / failed under load |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Failed = wrk\'s socket errors plus answers above 399, over all samples of the row and all three pilots: every',
    'pilot served through every kill.',
    '',
    'With the cluster healthy a change reaches the pilots through their watch at once; an address change then goes',
    'straight to the runtime API, a new server waits for `PILOT_QUIET_MIN` (200 ms), `haproxy -c` and a new worker',
    '(slower here than in the change-latency section, which measures one pilot on an idle machine: three pilots,',
    'three HAProxy and three wrk clients share 2 cores). Killing the leader costs the election first (etcd\'s 1 s',
    'election timeout plus a round; the write cannot commit before). A pilot cut off by the kill reconnects its watch',
    "with etcd3's backoff (200 ms doubling to 5 s, jittered, to a member picked at random, the dead one included) and",
    'resumes from the revision it had, so it misses nothing. Most reconnect during the election, before the write',
    'commits, and then converge as fast as with a healthy cluster (the medians); one whose attempts kept failing',
    'waits out a longer backoff step: that is the tail (p99) of the leader-killed rows, bounded by the 5 s cap.',
    '',
    'Run it (as root; about 3 minutes with the defaults; `BENCH_SAMPLES`, `BENCH_WRK_CONNECTIONS`, `BENCH_NO_DOC=1`):',
    '',
    '```sh',
    'npx tsc -p tsconfig.json && node dist/bench/fleet-converge.js',
    '```',
  ].join('\n');
}


// ---------------------------------------------------------------- inner: in the store namespace

async function inner(): Promise<void> {
  const t0 = Date.now();
  const names = JSON.parse(process.env.BENCH_NETNS!) as { store: string; pilots: string[] };
  const netns = (name: string): Netns => ({ name, enter: ['ip', 'netns', 'exec', name], remove: async () => {} });
  const store = netns(names.store);
  const pilotNs = names.pilots.map(netns);
  const runDirs: string[] = [];
  const pilots: PilotProcess[] = [];
  let etcd: NetnsEtcdCluster | undefined;
  let servers: NetnsProcess | undefined;
  let client: Etcd3 | undefined;
  const samples: Sample[] = [];
  try {
    etcd = await startEtcdClusterIn(store, MEMBERS);
    servers = await startServersIn(store, Object.entries(SERVERS).map(([name, host]) => ({ kind: 'http' as const, name, host, port: 8080 })));
    client = new Etcd3({ hosts: etcd.endpoints, dialTimeout: 2000 });
    await client.put(`${PREFIX}/s`).value(`${SERVERS.x}:8080`);
    for (let i = 0; i < PILOTS; i++) {
      runDirs.push(await mkdtemp(join(tmpdir(), `fleet-bench-${i}-`)));
      pilots.push(
        startPilot(
          { ETCD_ENDPOINTS: etcd.endpoints.join(','), ETCD_PREFIX: PREFIX, ETCD_LAYOUT: 'containers', STATS_PASSWORD: 'bench', PILOT_RUN_DIR: runDirs[i]!, PILOT_LOG_LEVEL: 'warn' },
          { netns: pilotNs[i]! },
        ),
      );
    }
    // (PILOT_LOG_LEVEL=warn: the start line is info; wait for the frontend instead.)
    await Promise.all(pilotNs.map(async (ns) => (await probeUntil([ns], FRONTEND, 'x', 60_000)).firstSeen));

    /** The write of one sample: the next server for `kind`, and the answer that shows it. */
    const current = { address: 'x', server: '' };
    const write = async (kind: Kind): Promise<{ answer: string; run: () => Promise<unknown> }> => {
      if (kind === 'address') {
        const next = current.address === 'x' ? 'y' : 'x';
        current.address = next;
        return { answer: next, run: async () => client!.put(`${PREFIX}/s`).value(`${SERVERS[next]}:8080`).exec() };
      }
      const prev = current.server;
      const next = prev === 'p' ? 'q' : 'p';
      current.server = next;
      // One transaction: the old server (or the address phase's `s`) goes, the new one comes.
      const gone = prev === '' ? 's' : prev;
      return { answer: next, run: () => client!.if(`${PREFIX}/${gone}`, 'Create', '>', 0).then(client!.delete().key(`${PREFIX}/${gone}`), client!.put(`${PREFIX}/${next}`).value(`${SERVERS[next]}:8080`)).else(client!.put(`${PREFIX}/${next}`).value(`${SERVERS[next]}:8080`)).commit() };
    };

    const commit = async (run: () => Promise<unknown>): Promise<number> => {
      // The writer's own connection may have been to the killed member: retry until a survivor commits.
      for (let attempt = 0; ; attempt++) {
        try {
          await run();
          return Date.now();
        } catch (err) {
          if (attempt > 50) throw err;
          await sleep(20);
        }
      }
    };

    const one = async (kind: Kind, condition: Condition): Promise<Sample> => {
      const wrks = WRK_CONNECTIONS > 0 ? pilotNs.map((ns) => startWrkIn(ns, FRONTEND, { connections: WRK_CONNECTIONS, maxSeconds: 60 })) : [];
      let electionMs: number | undefined;
      let cut: number | undefined;
      let killed: NetnsEtcdCluster['members'][number] | undefined;
      let result!: Omit<Sample, 'wrk'>;
      let wrk: WrkResult[] = [];
      try {
        if (condition === 'leader killed') {
          const watched = await Promise.all(pilots.map(async (p) => (await connectedTo(await p.pid())).filter((a) => a.endsWith(':2379')).map((a) => a.split(':')[0]!)));
          const count = (m: { ip: string }) => watched.filter((w) => w.includes(m.ip)).length;
          const busiest = [...etcd!.members].sort((a, b) => count(b) - count(a))[0]!;
          await etcd!.moveLeader(busiest);
          cut = count(busiest);
        }
        const { answer, run } = await write(kind);
        const probe = await probeUntil(pilotNs, FRONTEND, answer, 60_000);
        await sleep(300); // wrk and the probes running
        if (condition === 'leader killed') {
          killed = await etcd!.leader();
          const killedAt = Date.now();
          await killed.kill();
          await waitUntil('a new leader', async () => (await etcd!.leader()) !== killed, 30_000, 20);
          electionMs = Date.now() - killedAt;
        }
        const sentAt = Date.now();
        const committedAt = await commit(run);
        const seen = await probe.firstSeen;
        await probe.stop();
        await sleep(300);
        result = { kind, condition, converge: seen.map((s) => s - committedAt), writeMs: committedAt - sentAt, ...(electionMs !== undefined ? { electionMs, cut } : {}) };
      } finally {
        wrk = await Promise.all(wrks.map((w) => w.stop()));
        if (killed) {
          await killed.start();
          await waitUntil('the cluster to be whole again', async () => (await etcd!.ctl(['endpoint', 'health']), true), 30_000, 100);
          // every pilot back on a healthy watch before the next sample
          await sleep(500);
        }
      }
      return { ...result, wrk };
    };

    for (const kind of ['address', 'server'] as const) {
      for (let i = 0; i < SAMPLES; i++) {
        for (const condition of ['healthy', 'leader killed'] as const) {
          const s = await one(kind, condition);
          samples.push(s);
          const failed = s.wrk.reduce((n, w) => n + w.failed, 0);
          process.stdout.write(`${kind} ${condition} #${i + 1}: converge ${s.converge.join(' / ')} ms after the commit (write ${s.writeMs} ms${s.electionMs !== undefined ? `, election ${s.electionMs} ms, ${s.cut} pilot(s) cut off` : ''}), failed requests ${failed}\n`);
        }
      }
    }

    const haproxy = (await execa('haproxy', ['-v'])).stdout.split('\n')[0]!.replace(/^HAProxy version /, '');
    const etcdVersion = (await execa('etcd', ['--version'])).stdout.split('\n')[0]!.replace(/^etcd Version: /, 'etcd ');
    const cpu = cpus();
    const meta: Meta = {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      machine: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
      haproxy,
      etcd: etcdVersion,
      node: process.version,
      totalSeconds: Math.round((Date.now() - t0) / 1000),
    };
    await writeFile(process.env.BENCH_RESULT!, JSON.stringify({ samples, meta }));
  } finally {
    client?.close();
    for (const p of pilots) await p.kill();
    await servers?.stop();
    await etcd?.close();
    for (const d of runDirs) await rm(d, { recursive: true, force: true });
  }
}

if (process.env.BENCH_INNER) await inner();
else await outer();
