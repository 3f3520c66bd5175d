/**
 * The scenarios of bench/change-latency.ts. Each one starts what it measures (haproxy-pilot with
 * some settings, or the confd-style baseline), then repeats: write to the store, note the time,
 * probe HAProxy until the new server answers. A random pause between samples spreads the writes
 * over the poll phase, so polling latencies are sampled fairly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import type { ConsulKvFixture } from '../e2e/support/sources-consul-kv-fixture.js';
import { firstServedBy, sleep, type NamedServers } from './support-latency-probe.js';
import { startBaseline } from './support-latency-baseline.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
export const TOKEN = 'bench-token';
export const PREFIX = 'apps/bench/containers';

export interface Env {
  kv: ConsulKvFixture;
  servers: NamedServers;
  etcdEndpoint: string;
  dnsPort: number;
}

export interface Scenario {
  name: string;
  how: string;
  samples: number;
  /** The pause between samples: uniform in [min, max] ms. */
  pause: [number, number];
  run(env: Env, samples: number, pause: [number, number]): Promise<number[]>;
}

interface Pilot {
  stop(): Promise<void>;
}

export async function startPilot(env: Record<string, string>): Promise<Pilot> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-'));
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PILOT_RUN_DIR: dir, PILOT_LOG_LEVEL: 'warn', HAPROXY_LOG_FORMAT: 'none', STATS_PASSWORD: 'bench', PILOT_STOP_TIMEOUT: '3s', ...env },
    // HAProxy's notices (every reload) would drown the bench's output; kept for a failure message.
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-3000)));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch('http://127.0.0.1:7778/health').then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy-pilot did not become healthy:\n${stderr}`);
    await sleep(100);
  }
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const pauseMs = ([min, max]: [number, number]): number => min + Math.random() * (max - min);

/**
 * KV samples: sample k replaces server s<k-1> by s<k> (one delete and one put in the same tick,
 * as an orchestrator moving a container does) and waits for s<k> to answer on :<port>.
 * `sameKey`: instead one key's value moves to the new server's address (runtime API material).
 */
async function kvSamples(env: Env, port: number, samples: number, pause: [number, number], sameKey = false): Promise<number[]> {
  const { kv, servers } = env;
  const key = (k: number): string => `${PREFIX}/${sameKey ? 'web' : `s${k}`}`;
  kv.put(key(0), `127.0.0.1:${servers.port('s0')}`);
  await firstServedBy('s0', { port }, 30_000, 20);
  const out: number[] = [];
  for (let k = 1; k <= samples; k++) {
    await sleep(pauseMs(pause));
    const t0 = performance.now();
    if (!sameKey) kv.delete(key(k - 1));
    kv.put(key(k), `127.0.0.1:${servers.port(`s${k}`)}`);
    out.push((await firstServedBy(`s${k}`, { port }, 30_000)) - t0);
  }
  kv.delete(key(samples));
  return out;
}

export function pilotKv(name: string, how: string, samples: number, pause: [number, number], env: Record<string, string>, sameKey = false): Scenario {
  return {
    name,
    how,
    samples,
    pause,
    async run(e, n, p) {
      const pilot = await startPilot({ KV_IP: '127.0.0.1', KV_PORT: new URL(e.kv.url).port, OCCS_API_TOKEN: TOKEN, OCCS_BACKEND_KEY: PREFIX, ...env });
      try {
        return await kvSamples(e, 5000, n, p, sameKey);
      } finally {
        await pilot.stop();
      }
    },
  };
}

export function baselineKv(name: string, how: string, samples: number, pause: [number, number], intervalMs: number): Scenario {
  return {
    name,
    how,
    samples,
    pause,
    async run(e, n, p) {
      const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-baseline-'));
      const baseline = await startBaseline({ kvUrl: e.kv.url, token: TOKEN, prefix: PREFIX, port: 5100, intervalMs, dir });
      try {
        return await kvSamples(e, 5100, n, p);
      } finally {
        await baseline.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * etcd (seed 001 layout): sample k adds service svc<k> (url_beg /svc<k>, its port) and removes
 * svc<k-1> in one etcd transaction; DNS (dnsmasq) names every svc<k> 127.0.0.1, so the new
 * route's server is s<k>. Timed to the first answer of s<k> on :80/svc<k>, which includes
 * HAProxy's first DNS resolution of the new server-template.
 */
export function pilotEtcd(name: string, how: string, samples: number, pause: [number, number]): Scenario {
  return {
    name,
    how,
    samples,
    pause,
    async run(e, n, p) {
      const base = '/haproxy-bench/services';
      const client = new Etcd3({ hosts: e.etcdEndpoint });
      const put = (k: number) => [
        client.put(`${base}/svc${k}/url_beg`).value(`/svc${k}`),
        client.put(`${base}/svc${k}/port`).value(String(e.servers.port(`s${k}`))),
      ];
      await client.delete().prefix(`${base}/`);
      await client.if(`${base}/svc0/port`, 'Version', '==', 0).then(...put(0)).commit();
      const pilot = await startPilot({
        ETCD_ENDPOINTS: e.etcdEndpoint,
        HAPROXY_ID: 'bench',
        RESOLVER_BENCH: `127.0.0.1:${e.dnsPort}`,
      });
      try {
        await firstServedBy('s0', { port: 80, path: '/svc0' }, 30_000, 20);
        const out: number[] = [];
        for (let k = 1; k <= n; k++) {
          await sleep(pauseMs(p));
          const t0 = performance.now();
          await client.if(`${base}/svc${k}/port`, 'Version', '==', 0).then(...put(k), client.delete().prefix(`${base}/svc${k - 1}/`)).commit();
          out.push((await firstServedBy(`s${k}`, { port: 80, path: `/svc${k}` }, 30_000)) - t0);
        }
        return out;
      } finally {
        await pilot.stop();
        await client.delete().prefix(`${base}/`).catch(() => undefined);
        client.close();
      }
    },
  };
}
