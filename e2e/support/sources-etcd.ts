/**
 * Real etcd for the sources e2e tests: Debian's etcd 3.4 binary on free loopback ports in a temp
 * data dir, stopped by pid. Also a pausable TCP proxy, to cut a client off from a running etcd
 * (so the store can change, and be compacted, while the client is away).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

import { freePort } from './ports.js';

export { freePort };

export interface EtcdMember {
  name: string;
  clientUrl: string;
  running: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  endpoints: string[];
  /** etcdctl against the given endpoints (default: the running members). */
  ctl(args: string[], opts?: { endpoints?: string[]; user?: string }): Promise<string>;
  close(): Promise<void>;
}

async function healthy(url: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`etcd at ${url} not healthy within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-etcd-'));
  const specs = [];
  for (let i = 0; i < size; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const token = `pilot-${specs[0]!.peer}`; // one token for the whole cluster
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const members: EtcdMember[] = specs.map((s) => {
    let proc: ChildProcess | undefined;
    let stderr = '';
    const clientUrl = `http://127.0.0.1:${s.client}`;
    const args = [
      '--name', s.name,
      '--data-dir', join(dir, s.name),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', `http://127.0.0.1:${s.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peer}`,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-level', 'error',
    ];
    const member: EtcdMember = {
      name: s.name,
      clientUrl,
      running: false,
      async start() {
        stderr = '';
        proc = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
        proc.stderr!.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-4000);
        });
        proc.on('exit', () => {
          member.running = false;
        });
        member.running = true;
      },
      async stop() {
        const p = proc;
        if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        member.running = false;
      },
    };
    Object.defineProperty(member, 'stderr', { get: () => stderr });
    return member;
  });
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async ctl(args, opts = {}) {
      const endpoints = opts.endpoints ?? members.filter((m) => m.running).map((m) => m.clientUrl);
      const user = opts.user ? ['--user', opts.user] : [];
      const { stdout } = await execa('etcdctl', ['--endpoints', endpoints.join(','), '--command-timeout', '5s', ...user, ...args], {
        env: { ETCDCTL_API: '3' },
      });
      return stdout;
    },
    async close() {
      await Promise.all(members.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) await m.start();
    await Promise.all(members.map((m) => healthy(m.clientUrl, 20_000)));
  } catch (err) {
    const logs = members.map((m) => `${m.name}: ${(m as unknown as { stderr: string }).stderr}`).join('\n');
    await cluster.close();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}

/** Restart one member and wait until it is healthy again. */
export async function restartMember(m: EtcdMember): Promise<void> {
  await m.stop();
  await m.start();
  await healthy(m.clientUrl, 20_000);
}

export async function waitHealthy(m: EtcdMember): Promise<void> {
  await healthy(m.clientUrl, 20_000);
}

export interface TcpProxy {
  url: string;
  /** Drop every connection and refuse new ones (the port stays ours). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server;
  const listen = async (port: number): Promise<number> => {
    server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return (server.address() as AddressInfo).port;
  };
  const port = await listen(0);
  const down = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    pause: down,
    resume: async () => {
      await listen(port);
    },
    close: async () => {
      if (server.listening) await down();
    },
  };
}

/**
 * Remote loopback ports this process has established TCP connections to (from /proc: the
 * socket inodes among our fds, matched in /proc/self/net/tcp). Tells which etcd member a client
 * in this process is talking to.
 */
export async function connectedPorts(): Promise<Set<number>> {
  const { readdir, readlink, readFile } = await import('node:fs/promises');
  const inodes = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  const ports = new Set<number>();
  for (const line of (await readFile('/proc/self/net/tcp', 'utf8')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // f[2] = remote "HEXIP:HEXPORT", f[3] = state (01 established), f[9] = inode
    if (f.length > 9 && f[3] === '01' && inodes.has(f[9]!)) ports.add(parseInt(f[2]!.split(':')[1]!, 16));
  }
  return ports;
}
