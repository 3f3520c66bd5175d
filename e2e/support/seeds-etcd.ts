/**
 * Real etcd (Debian's etcd 3.4) inside a test's network namespace, for the seed 001 tests:
 * sources-etcd.ts starts etcd on the host, where a haproxy-pilot in its own netns cannot reach
 * it. Here etcd and etcdctl run through the netns `enter` prefix, on etcd's usual ports (the
 * namespace has its own), with a temp data dir; stopped by pid.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Netns } from './pilot-process.js';
import { spawnInNetns, type NetnsProcess } from './seeds-netns.js';

export interface NetnsEtcd {
  /** Client URL as seen from inside the netns. */
  endpoint: string;
  proc: NetnsProcess;
  /** etcdctl (API v3) inside the netns. */
  ctl(args: string[], input?: string): Promise<string>;
  /** Kill etcd (SIGKILL by pid: the store vanishes without a goodbye). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

export async function startEtcdIn(netns: Netns, { clientPort = 2379, peerPort = 2380 } = {}): Promise<NetnsEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-seeds-etcd-'));
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = spawnInNetns(netns, [
    'etcd', '--name', 'm0', '--data-dir', join(dir, 'm0'),
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `m0=${peer}`, '--initial-cluster-state', 'new',
    '--logger', 'zap', '--log-level', 'error',
  ]);
  const ctl = async (args: string[], input?: string): Promise<string> => {
    const r = await execa(netns.enter[0]!, [...netns.enter.slice(1), 'etcdctl', '--endpoints', endpoint, '--command-timeout', '5s', ...args], {
      env: { ETCDCTL_API: '3' },
      ...(input === undefined ? {} : { input }),
    });
    return r.stdout;
  };
  const close = async (): Promise<void> => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await ctl(['endpoint', 'health']);
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await close();
        throw new Error(`etcd in ${netns.name} did not become healthy: ${String(err)}\n${proc.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return { endpoint, proc, ctl, kill: () => proc.stop('SIGKILL'), close };
}
