/**
 * The scenarios of bench/change-latency.ts: one system (haproxy-pilot on a store, a confd-style
 * watcher on the same store, or a Data-Plane-API-style caller) goes through the same cycle of
 * server-level changes on one backend, and every change is timed from the write (or the API
 * call) to the moment traffic shows it:
 *
 *   add      a server with a new name at a new address        → until it answers
 *   address  that server moves to another address            → until the new one answers
 *   weight   a server at weight 0 gets weight 1 (file only)   → until it answers
 *   remove   the server leaves                                → until its last answer
 *   re-add   the same name and address come back             → until it answers
 *
 * An anchor server stays in the backend throughout (round robin over 2–3 servers, one request
 * per new connection, back to back). A random pause before each change spreads the writes over
 * whatever periodic work the system does. Reloads are counted per change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { firstServedBy, lastServedBy, sleep, type NamedServers } from './support-latency-probe.js';
import type { ServerSet, ServerSpec, Store } from './support-latency-stores.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export type Kind = 'add' | 'address' | 'weight' | 'remove' | 're-add';
export const KINDS: readonly Kind[] = ['address', 'add', 'remove', 're-add', 'weight'];

export interface Sample {
  kind: Kind;
  ms: number;
  reloads: number;
}

/** What the cycle drives. */
export interface System {
  apply(set: ServerSet): Promise<void>;
  /** Reloads so far. */
  reloads(): Promise<number>;
  /** HAProxy worker pids (the pilot: from /status), to show the worker survived; undefined when not tracked. */
  workers?(): Promise<string>;
  port: number;
  weights: boolean;
  stop(): Promise<void>;
}

export interface PilotHandle {
  status(): Promise<{ apply: { reloads: number; runtimeOps: number }; haproxy: { workers: number[] } }>;
  stop(): Promise<void>;
}

export async function startPilot(env: Record<string, string>): Promise<PilotHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-bench-'));
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PILOT_RUN_DIR: dir, PILOT_LOG_LEVEL: 'warn', HAPROXY_LOG_FORMAT: 'none', STATS_PASSWORD: 'bench', PILOT_STOP_TIMEOUT: '3s', ...env },
    // HAProxy's notices would drown the bench's output; kept for a failure message.
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
    status: async () => (await (await fetch('http://127.0.0.1:7778/status')).json()) as Awaited<ReturnType<PilotHandle['status']>>,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function pilotSystem(store: Store, extraEnv: Record<string, string> = {}): Promise<System> {
  const pilot = await startPilot({ ...store.pilotEnv, PILOT_DEMO: 'off', ...extraEnv });
  return {
    apply: (set) => store.write(set),
    reloads: async () => (await pilot.status()).apply.reloads,
    workers: async () => (await pilot.status()).haproxy.workers.join(','),
    port: store.port,
    weights: store.weights,
    stop: () => pilot.stop(),
  };
}

const pauseMs = ([min, max]: [number, number]): number => min + Math.random() * (max - min);

/**
 * `cycles` rounds of add, address, (weight), remove, re-add; servers s0 (anchor), s1 (weight),
 * then two fresh ones per cycle. Returns every timed change.
 */
export async function runCycles(system: System, servers: NamedServers, cycles: number, pause: [number, number], log: (line: string) => void = () => undefined): Promise<{ samples: Sample[]; workersSame?: boolean }> {
  const target = { port: system.port };
  const set = new Map<string, ServerSpec>([['a0', { port: servers.port('s0') }]]);
  if (system.weights) set.set('wt', { port: servers.port('s1'), weight: 0 });
  await system.apply(new Map(set));
  await firstServedBy('s0', target, 30_000, 20);
  // The first write may add the backend (a reload): let its confirmation land before noting the worker.
  await sleep(1000);
  const workers = await system.workers?.();
  const out: Sample[] = [];
  const timed = async (kind: Kind, change: () => void, until: (t0: number) => Promise<number>): Promise<void> => {
    await sleep(pauseMs(pause));
    const before = await system.reloads();
    change();
    const t0 = performance.now();
    await system.apply(new Map(set));
    const at = await until(t0);
    const ms = at - t0;
    out.push({ kind, ms, reloads: (await system.reloads()) - before });
  };
  const served = (name: string) => (): Promise<number> => firstServedBy(name, target, 30_000);
  const gone = (name: string) => (): Promise<number> => lastServedBy(name, target, 30_000);
  for (let k = 0; k < cycles; k++) {
    const p = `s${2 + 2 * k}`;
    const q = `s${3 + 2 * k}`;
    const name = `n${k}`;
    await timed('add', () => set.set(name, { port: servers.port(p) }), served(p));
    await timed('address', () => set.set(name, { port: servers.port(q) }), served(q));
    if (system.weights) {
      await timed('weight', () => set.set('wt', { port: servers.port('s1'), weight: 1 }), served('s1'));
      set.set('wt', { port: servers.port('s1'), weight: 0 });
      await system.apply(new Map(set));
      await gone('s1')();
    }
    await timed('remove', () => set.delete(name), gone(q));
    await timed('re-add', () => set.set(name, { port: servers.port(q) }), served(q));
    // Back to the anchor alone (not timed), so the next cycle starts from the same backend.
    set.delete(name);
    await system.apply(new Map(set));
    await gone(q)();
    if ((k + 1) % 10 === 0) log(`${k + 1}/${cycles} cycles`);
  }
  const after = await system.workers?.();
  return { samples: out, ...(workers !== undefined ? { workersSame: workers === after } : {}) };
}

/** Servers a run of `cycles` needs. */
export const serversFor = (cycles: number): number => 4 + 2 * cycles;
