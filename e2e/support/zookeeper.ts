/**
 * Real ZooKeeper for the e2e tests: Debian's `zookeeper` package (the jar in /usr/share/java,
 * whose manifest carries its own classpath), run as
 * `java -cp zookeeper.jar:slf4j-simple.jar org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg`
 * with a generated config in a temp dir, on free 127.0.0.1 ports. One server, or an ensemble
 * whose members can be killed, paused (SIGSTOP) and restarted. Stopped by pid, never by name.
 * Readiness is the `srvr` four-letter word answering a `Mode:` line (serving, in a quorum).
 * `enter` runs the members inside a network namespace (seeds-zookeeper.ts), where a pilot
 * started in that namespace reaches them on its own 127.0.0.1.
 *
 * Also a promise-style admin client (the same npm client the source uses) to write nodes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type * as ZK from 'node-zookeeper-client';
import { freePort } from './ports.js';

const JARS = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-simple.jar'];
const require = createRequire(import.meta.url);

export interface ZkMember {
  id: number;
  clientPort: number;
  /** `127.0.0.1:<clientPort>` */
  address: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a frozen server whose sockets stay open. */
  pause(): void;
  resume(): void;
  /** Resolves when `srvr` says the member serves (standalone, leader or follower). */
  ready(ms?: number): Promise<void>;
  stderr(): string;
}

export interface ZkEnsemble {
  members: ZkMember[];
  /** `127.0.0.1:p1,127.0.0.1:p2,…` */
  connectString: string;
  /** A four-letter word against one member (whitelisted: srvr, ruok, mntr, cons, stat). */
  fourLetter(member: ZkMember, word: string): Promise<string>;
  close(): Promise<void>;
}

export function zookeeperAvailable(): boolean {
  return JARS.every((j) => existsSync(j));
}

/** Sends a four-letter word and returns the whole answer ('' when nothing listens). */
export function fourLetterWord(port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = tcpConnect(port, '127.0.0.1');
    let out = '';
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('connect', () => sock.write(word));
    sock.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    sock.on('end', done);
    sock.on('error', done);
  });
}

// Every member started by this process, killed by pid if the test process exits early.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) {
    try {
      process.kill(p.pid!, 'SIGCONT');
      process.kill(p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export interface StartZookeeperOptions {
  tickMs?: number;
  /** Command prefix that runs the members elsewhere, e.g. a network namespace's `ip netns exec <name>` (it execs: the pid stays java's). */
  enter?: readonly string[];
  /** How to send a four-letter word where the members listen (default: a TCP connection from this process). */
  fourLetter?: (port: number, word: string) => Promise<string>;
}

/**
 * Starts `size` members (1: standalone). `tickMs` sets tickTime, which bounds session timeouts to
 * [2, 20] ticks unless min/maxSessionTimeout say otherwise (we allow 2 ticks .. 60 s).
 */
export async function startZookeeper(size = 1, opts: StartZookeeperOptions = {}): Promise<ZkEnsemble> {
  const tick = opts.tickMs ?? 100;
  const four = opts.fourLetter ?? ((port: number, word: string) => fourLetterWord(port, word, 1000));
  const dir = await mkdtemp(join(tmpdir(), 'pilot-zk-'));
  const specs: { id: number; client: number; peer: number; election: number }[] = [];
  for (let i = 1; i <= size; i++) specs.push({ id: i, client: await freePort(), peer: await freePort(), election: await freePort() });
  const servers = size > 1 ? specs.map((s) => `server.${s.id}=127.0.0.1:${s.peer}:${s.election}`) : [];

  const members: ZkMember[] = [];
  for (const s of specs) {
    const data = join(dir, `m${s.id}`);
    await mkdir(data, { recursive: true });
    if (size > 1) await writeFile(join(data, 'myid'), `${s.id}\n`);
    const cfg = join(dir, `zoo-${s.id}.cfg`);
    await writeFile(
      cfg,
      [
        `tickTime=${tick}`,
        'initLimit=100',
        'syncLimit=20',
        `dataDir=${data}`,
        `clientPort=${s.client}`,
        'clientPortAddress=127.0.0.1',
        `minSessionTimeout=${2 * tick}`,
        'maxSessionTimeout=60000',
        'admin.enableServer=false',
        '4lw.commands.whitelist=srvr,ruok,mntr,cons,stat',
        // Fsync is the slowest part of a write on a shared CI disk and buys nothing in a test.
        'forceSync=no',
        ...servers,
        '',
      ].join('\n'),
    );
    let proc: ChildProcess | undefined;
    let stderr = '';
    const member: ZkMember = {
      id: s.id,
      clientPort: s.client,
      address: `127.0.0.1:${s.client}`,
      get pid() {
        return proc?.pid;
      },
      get running() {
        return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
      },
      async start() {
        if (member.running) return;
        stderr = '';
        const enter = opts.enter ?? [];
        proc = spawn(
          enter[0] ?? 'java',
          [
            ...(enter.length > 0 ? [...enter.slice(1), 'java'] : []),
            '-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto',
            '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
            '-Dzookeeper.admin.enableServer=false',
            '-cp', JARS.join(':'),
            'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const p = proc;
        live.add(p);
        const keep = (d: Buffer): void => {
          stderr = (stderr + d.toString()).slice(-6000);
        };
        p.stdout!.on('data', keep);
        p.stderr!.on('data', keep);
        p.on('exit', () => live.delete(p));
      },
      async stop() {
        await end(proc, 'SIGTERM');
      },
      async kill() {
        await end(proc, 'SIGKILL');
      },
      pause() {
        if (member.running) proc!.kill('SIGSTOP');
      },
      resume() {
        if (member.running) proc!.kill('SIGCONT');
      },
      async ready(ms = 30_000) {
        const deadline = Date.now() + ms;
        for (;;) {
          if (!member.running) throw new Error(`zookeeper member ${s.id} exited:\n${stderr}`);
          const answer = await four(s.client, 'srvr');
          if (/^Mode: (standalone|leader|follower)$/m.test(answer)) return;
          if (Date.now() > deadline) throw new Error(`zookeeper member ${s.id} not serving within ${ms} ms (srvr: ${JSON.stringify(answer.slice(0, 200))})\n${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      stderr: () => stderr,
    };
    members.push(member);
  }

  const ensemble: ZkEnsemble = {
    members,
    connectString: members.map((m) => m.address).join(','),
    fourLetter: (m, word) => four(m.clientPort, word),
    async close() {
      await Promise.all(members.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) await m.start();
    await Promise.all(members.map((m) => m.ready()));
  } catch (err) {
    await ensemble.close();
    throw err;
  }
  return ensemble;
}

async function end(proc: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  try {
    proc.kill('SIGCONT'); // a paused JVM cannot act on SIGTERM
  } catch {
    // gone
  }
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Admin client
// ---------------------------------------------------------------------------------------------

export interface ZkAdmin {
  client: ZK.Client;
  /** Creates the node (and missing parents) or sets its data. */
  put(path: string, data: string | object, acls?: ZK.ACL[]): Promise<void>;
  remove(path: string): Promise<void>;
  removeTree(path: string): Promise<void>;
  children(path: string): Promise<string[]>;
  /** Closes the session (once; later calls do nothing). */
  close(): Promise<void>;
}

export function zkModule(): typeof ZK {
  return require('node-zookeeper-client') as typeof ZK;
}

/** A connected admin client (session timeout 30 s). */
export async function zkAdmin(connect: string, opts: { auth?: string } = {}): Promise<ZkAdmin> {
  const zk = zkModule();
  const client = zk.createClient(connect, { sessionTimeout: 30_000, spinDelay: 100, retries: 3 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`admin client: no connection to ${connect} within 20 s`)), 20_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  if (opts.auth !== undefined) client.addAuthInfo('digest', Buffer.from(opts.auth));
  const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
  let closedOnce = false;
  const noNode = (err: unknown): boolean => (err as { getCode?: () => number }).getCode?.() === zk.Exception.NO_NODE;
  const admin: ZkAdmin = {
    client,
    async put(path, data, acls) {
      const buf = Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
      try {
        await cb<unknown>((d) => client.setData(path, buf, -1, d as never));
      } catch (err) {
        if (!noNode(err)) throw err;
        const parent = path.slice(0, path.lastIndexOf('/'));
        if (parent !== '') await cb<unknown>((d) => client.mkdirp(parent, d as never));
        if (acls) await cb<unknown>((d) => client.create(path, buf, acls, zk.CreateMode.PERSISTENT, d as never));
        else await cb<unknown>((d) => client.create(path, buf, d as never));
      }
    },
    async remove(path) {
      await cb<unknown>((d) => client.remove(path, -1, d as never));
    },
    async removeTree(path) {
      await cb<unknown>((d) => (client as unknown as { removeRecursive(p: string, v: number, cb: unknown): void }).removeRecursive(path, -1, d)).catch((err) => {
        if (!noNode(err)) throw err;
      });
    },
    children: (path) => cb<string[]>((d) => client.getChildren(path, d as never)),
    async close() {
      if (closedOnce) return;
      closedOnce = true;
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        client.once('disconnected', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      client.close();
      await closed;
    },
  };
  return admin;
}
