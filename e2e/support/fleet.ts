/**
 * A small network for fleet tests: one "store" network namespace with a bridge, holding a real
 * etcd cluster (Debian's etcd 3.4, one address per member on the bridge) and the backend servers,
 * and one network namespace per haproxy-pilot, each linked to the bridge by a veth pair. Every
 * pilot reaches every member as it would across a LAN; killing a member (by pid) is a member
 * gone for all of them. Also wrk run inside a pilot's namespace, and a prober that reports when
 * a pilot first serves a given answer.
 *
 *   store netns:  br0 10.77.0.1/24, members .11 .12 .13 (client :2379, peer :2380), servers .21 .22 …
 *   pilot i:      eth0 10.77.0.(101 + i)/24  <— veth —>  vp<i> on br0
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createNetns, type Netns } from './pilot-process.js';
import { spawnInNetns, type NetnsProcess } from './seeds-netns.js';

const SUBNET = '10.77.0';
const PROBE = fileURLToPath(new URL('./fleet-probe-main.js', import.meta.url));

export interface FleetNet {
  store: Netns;
  pilots: Netns[];
  /** Addresses added to the bridge (members, servers). */
  storeIps: string[];
  remove(): Promise<void>;
}

const ip = (args: string[]) => execa('ip', args);

/** The store namespace with its bridge and `storeIps`, and `pilots` namespaces linked to it. */
export async function createFleetNet(pilots: number, storeIps: string[]): Promise<FleetNet> {
  const store = await createNetns();
  const made: Netns[] = [];
  const remove = async (): Promise<void> => {
    for (const n of made) await n.remove();
    await store.remove();
  };
  try {
    await ip(['-n', store.name, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', store.name, 'addr', 'add', `${SUBNET}.1/24`, 'dev', 'br0']);
    for (const a of storeIps) await ip(['-n', store.name, 'addr', 'add', `${a}/24`, 'dev', 'br0']);
    await ip(['-n', store.name, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < pilots; i++) {
      const ns = await createNetns();
      made.push(ns);
      await ip(['-n', store.name, 'link', 'add', `vp${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      await ip(['-n', store.name, 'link', 'set', `vp${i}`, 'master', 'br0', 'up']);
      await ip(['-n', ns.name, 'addr', 'add', `${SUBNET}.${101 + i}/24`, 'dev', 'eth0']);
      await ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
      // wrk and the probes open many connections for a few seconds: reuse TIME_WAIT ports.
      await execa('ip', ['netns', 'exec', ns.name, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { store, pilots: made, storeIps, remove };
}

export interface NetnsEtcdMember {
  name: string;
  ip: string;
  clientUrl: string;
  /** Host pid while it runs. */
  pid(): number | undefined;
  running(): boolean;
  start(): Promise<void>;
  /** SIGKILL by pid: the member vanishes without a goodbye, as a crashed machine would. */
  kill(): Promise<void>;
}

export interface NetnsEtcdCluster {
  members: NetnsEtcdMember[];
  endpoints: string[];
  /** etcdctl (v3) in the store namespace against the running members (or `endpoints`). */
  ctl(args: string[], opts?: { endpoints?: string[]; timeoutMs?: number }): Promise<string>;
  /** The member that leads, asked of the running ones. */
  leader(): Promise<NetnsEtcdMember>;
  /** Hands the leadership to `to` (etcdctl move-leader), and waits until it leads. */
  moveLeader(to: NetnsEtcdMember): Promise<void>;
  close(): Promise<void>;
}

/** A real etcd cluster, one member per address, in `netns`; data in a temp dir; stopped by pid. */
export async function startEtcdClusterIn(netns: Netns, ips: string[]): Promise<NetnsEtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-fleet-etcd-'));
  const initialCluster = ips.map((a, i) => `m${i}=http://${a}:2380`).join(',');
  const members: NetnsEtcdMember[] = ips.map((a, i) => {
    let proc: NetnsProcess | undefined;
    const name = `m${i}`;
    const clientUrl = `http://${a}:2379`;
    const member: NetnsEtcdMember = {
      name,
      ip: a,
      clientUrl,
      pid: () => proc?.pid,
      running: () => proc !== undefined,
      async start() {
        if (proc) return;
        proc = spawnInNetns(netns, [
          'etcd', '--name', name, '--data-dir', join(dir, name),
          '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
          '--listen-peer-urls', `http://${a}:2380`, '--initial-advertise-peer-urls', `http://${a}:2380`,
          '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `fleet-${process.pid}`,
          '--logger', 'zap', '--log-level', 'error',
        ]);
        const p = proc;
        void p.exited.then(() => {
          if (proc === p) proc = undefined;
        });
      },
      async kill() {
        const p = proc;
        if (!p) return;
        await p.stop('SIGKILL');
        proc = undefined;
      },
    };
    return member;
  });
  const running = () => members.filter((m) => m.running()).map((m) => m.clientUrl);
  const ctl = async (args: string[], opts: { endpoints?: string[]; timeoutMs?: number } = {}): Promise<string> => {
    const r = await execa('ip', ['netns', 'exec', netns.name, 'etcdctl', '--endpoints', (opts.endpoints ?? running()).join(','), '--command-timeout', '5s', ...args], {
      env: { ETCDCTL_API: '3' },
      timeout: opts.timeoutMs ?? 15_000,
    });
    return r.stdout;
  };
  /** `endpoint status -w simple`: endpoint, ID, version, db size, is leader, is learner, raft term, … */
  const status = async (): Promise<{ member: NetnsEtcdMember; id: string; leader: boolean }[]> => {
    const out = await ctl(['endpoint', 'status', '-w', 'simple']);
    const rows: { member: NetnsEtcdMember; id: string; leader: boolean }[] = [];
    for (const line of out.split('\n')) {
      const f = line.split(', ');
      const member = members.find((x) => x.clientUrl === f[0]);
      if (member && f[1]) rows.push({ member, id: f[1], leader: f[4] === 'true' });
    }
    return rows;
  };
  const cluster: NetnsEtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    ctl,
    async leader() {
      const leader = (await status()).find((s) => s.leader);
      if (!leader) throw new Error('no leader among the running members');
      return leader.member;
    },
    async moveLeader(to) {
      const all = await status();
      const from = all.find((s) => s.leader);
      const target = all.find((s) => s.member === to);
      if (!from || !target) throw new Error(`move-leader: no leader, or ${to.name} does not run`);
      if (from.member === to) return;
      await ctl(['move-leader', target.id], { endpoints: [from.member.clientUrl] });
      await waitUntil(`${to.name} to lead`, async () => (await cluster.leader()) === to, 15_000);
    },
    async close() {
      for (const m of members) await m.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) await m.start();
    // etcdctl prints health on stderr; a non-zero exit (an unhealthy member) throws and retries.
    await waitUntil('the etcd cluster to be healthy', async () => (await ctl(['endpoint', 'health']), true), 30_000);
    await cluster.leader();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface WrkResult {
  requests: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Answers with a status above 399 ("Non-2xx or 3xx responses"). */
  badStatus: number;
  /** socket errors + bad statuses */
  failed: number;
  raw: string;
}

export function parseWrk(text: string): WrkResult {
  const m = /^\s*(\d+) requests in /m.exec(text);
  if (!m) throw new Error(`wrk printed no summary:\n${text}`);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = se ? { connect: Number(se[1]), read: Number(se[2]), write: Number(se[3]), timeout: Number(se[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 };
  const badStatus = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { requests: Number(m[1]), socketErrors, badStatus, failed: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout + badStatus, raw: text };
}

export interface WrkRun {
  /** SIGINT by pid: wrk prints its summary and exits. */
  stop(): Promise<WrkResult>;
}

/** wrk inside `netns` against `url` until stopped (at most `maxSeconds`). */
export function startWrkIn(netns: Netns, url: string, { connections = 4, threads = 1, maxSeconds = 60 } = {}): WrkRun {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns.name, 'wrk', '-t', String(threads), '-c', String(connections), '-d', `${maxSeconds}s`, '--timeout', '5s', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    async stop() {
      // `ip netns exec` execs into wrk: the child's pid is wrk's.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      return parseWrk(out);
    },
  };
}

export interface Probe {
  /** When (Date.now() of this machine) each probe first got `answer`, in the order of `netns`. */
  firstSeen: Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * Probes inside each namespace ask `url` on a fresh connection every few ms and report the first
 * time the body is `answer`. Started before a change, they time when each pilot serves it.
 */
export async function probeUntil(namespaces: Netns[], url: string, answer: string, timeoutMs = 60_000): Promise<Probe> {
  const procs = namespaces.map((ns) => spawnInNetns(ns, [process.execPath, PROBE, url, answer, String(timeoutMs)]));
  await Promise.all(procs.map((p) => p.waitFor((m) => m.ready === true)));
  const firstSeen = Promise.all(
    procs.map(async (p) => {
      const m = await p.waitFor((x) => typeof x.seenAt === 'number' || typeof x.error === 'string', timeoutMs + 5000);
      if (typeof m.error === 'string') throw new Error(`probe in its namespace: ${m.error}`);
      return m.seenAt as number;
    }),
  );
  return { firstSeen, stop: async () => void (await Promise.all(procs.map((p) => p.stop()))) };
}

/**
 * Remote `ip:port`s a process has established TCP connections to (its socket inodes matched in
 * the /proc/<pid>/net/tcp of its network namespace).
 */
export async function connectedTo(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const line of (await readFile(`/proc/${pid}/net/tcp`, 'utf8')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length <= 9 || f[3] !== '01' || !inodes.has(f[9]!)) continue;
    const [hexIp, hexPort] = f[2]!.split(':');
    const n = parseInt(hexIp!, 16); // little-endian on x86
    out.push(`${n & 255}.${(n >> 8) & 255}.${(n >> 16) & 255}.${(n >>> 24) & 255}:${parseInt(hexPort!, 16)}`);
  }
  return out;
}
