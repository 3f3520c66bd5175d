/**
 * Real ZooKeeper (Debian's, see zookeeper.ts) inside a test's network namespace, for the seed 004
 * tests: a haproxy-pilot started there (startPilot with `netns`) reaches it on its own 127.0.0.1.
 * The members run through the namespace's `enter` prefix; everything that talks to them from
 * the test (four-letter words, the admin client that writes nodes, a TCP proxy the test can cut)
 * runs in a helper process inside the namespace (seeds-zookeeper-main.ts). Stopped by pid.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Netns } from './pilot-process.js';
import { spawnInNetns, type NetnsProcess } from './seeds-netns.js';
import { startZookeeper, type ZkEnsemble, type ZkMember } from './zookeeper.js';

const HELPER = fileURLToPath(new URL('./seeds-zookeeper-main.js', import.meta.url));

export interface NetnsProxy {
  /** `127.0.0.1:<port>` inside the namespace. */
  address: string;
  /** Close the listener and every connection through it (nothing gets through until resume). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export interface NetnsZookeeper {
  ensemble: ZkEnsemble;
  /** `127.0.0.1:p1,…` as seen inside the namespace. */
  connectString: string;
  helper: NetnsProcess;
  put(path: string, data: string | object): Promise<void>;
  remove(path: string): Promise<void>;
  removeTree(path: string): Promise<void>;
  fourLetter(member: ZkMember, word: string): Promise<string>;
  /** Sessions the member holds (`mntr` zk_global_sessions: the whole ensemble's count). */
  sessions(member?: ZkMember): Promise<number>;
  /** A TCP proxy in the namespace to a member, which the test can cut. */
  proxy(member?: ZkMember): Promise<NetnsProxy>;
  close(): Promise<void>;
}

export async function startZookeeperIn(netns: Netns, size = 1): Promise<NetnsZookeeper> {
  const helper = spawnInNetns(netns, [process.execPath, HELPER]);
  await helper.waitFor((m) => m.ready === true);
  let next = 1;
  const call = async (cmd: object, timeoutMs = 20_000): Promise<Record<string, unknown>> => {
    const id = next++;
    helper.send({ id, ...cmd });
    const answer = await helper.waitFor((m) => m.id === id, timeoutMs);
    if (answer.ok !== true) throw new Error(`zookeeper helper: ${JSON.stringify(cmd).slice(0, 200)}: ${String(answer.error)}`);
    return answer;
  };
  const fourLetter = async (port: number, word: string): Promise<string> => String((await call({ op: 'fourLetter', port, word })).answer);
  let ensemble: ZkEnsemble;
  try {
    ensemble = await startZookeeper(size, { enter: netns.enter, fourLetter });
  } catch (err) {
    await helper.stop();
    throw err;
  }
  const close = async (): Promise<void> => {
    await helper.stop();
    await ensemble.close();
  };
  try {
    await call({ op: 'connect', connect: ensemble.connectString }, 30_000);
  } catch (err) {
    await close();
    throw err;
  }
  const first = (): ZkMember => ensemble.members.find((m) => m.running) ?? ensemble.members[0]!;
  return {
    ensemble,
    connectString: ensemble.connectString,
    helper,
    put: async (path, data) => void (await call({ op: 'put', path, data })),
    remove: async (path) => void (await call({ op: 'remove', path })),
    removeTree: async (path) => void (await call({ op: 'removeTree', path })),
    fourLetter: (member, word) => fourLetter(member.clientPort, word),
    sessions: async (member = first()) => Number(/zk_global_sessions\s+(\d+)/.exec(await fourLetter(member.clientPort, 'mntr'))?.[1] ?? NaN),
    proxy: async (member = first()) => {
      const r = await call({ op: 'proxy', port: member.clientPort });
      return {
        address: `127.0.0.1:${Number(r.port)}`,
        pause: async () => void (await call({ op: 'proxyPause', proxy: r.proxy })),
        resume: async () => void (await call({ op: 'proxyResume', proxy: r.proxy })),
      };
    },
    close,
  };
}

/**
 * Loopback ports a process (by host pid) has established TCP connections to: its socket inodes
 * (/proc/<pid>/fd) matched in its network namespace's table (/proc/<pid>/net/tcp). Tells which
 * ensemble member a haproxy-pilot in a namespace is connected to.
 */
export async function connectedPortsOf(pid: number): Promise<Set<number>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const ports = new Set<number>();
  for (const line of (await readFile(`/proc/${pid}/net/tcp`, 'utf8')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // f[2] = remote "HEXIP:HEXPORT", f[3] = state (01 established), f[9] = inode
    if (f.length > 9 && f[3] === '01' && inodes.has(f[9]!)) ports.add(parseInt(f[2]!.split(':')[1]!, 16));
  }
  return ports;
}
