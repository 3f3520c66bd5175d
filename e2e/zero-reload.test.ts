/**
 * Server changes with zero reloads, from every watching source, under load: the real binary as
 * PID 1 in a network namespace, real HAProxy, wrk driving :5000 the whole time. Servers are
 * added, removed, re-added and moved; each step must reach traffic, and at the end wrk saw no
 * failed request and HAProxy still runs the worker it started with (no reload).
 *
 * Sources: the discovery file, the key/value endpoint with blocking queries (the Consul KV
 * protocol fixture: no Consul can be installed here) and etcd (real, in the namespace) with the
 * `containers` layout (every value under the prefix is a server, like seed 002).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, eventually, startPilot, type Netns, type PilotProcess } from './support/pilot-process.js';
import { startKvFixtureIn, startServersIn } from './support/seeds-netns.js';
import { startEtcdIn } from './support/seeds-etcd.js';
import { distinct, sample, status } from './support/seeds-traffic.js';
import { startWrk } from './support/wrk.js';
import { runtimeCommand } from '../src/haproxy/master-cli.js';

const FRONTEND = 'http://127.0.0.1:5000/';
const SERVERS = { one: 8001, two: 8002, three: 8003 } as const;
type Name = keyof typeof SERVERS;

/** What a source is told: the servers that should exist, by name → port. */
type Apply = (servers: Partial<Record<Name, number>>) => Promise<void>;

interface World {
  netns: Netns;
  pilot: PilotProcess;
  apply: Apply;
  runDir: string;
}

async function world(t: { after(fn: () => Promise<void> | void): void }, source: 'file' | 'kv' | 'etcd'): Promise<World> {
  const netns = await createNetns();
  t.after(() => netns.remove());
  const dir = await mkdtemp(join(tmpdir(), `pilot-zero-reload-${source}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const servers = await startServersIn(netns, Object.entries(SERVERS).map(([name, port]) => ({ kind: 'http' as const, name, host: '127.0.0.1', port })));
  t.after(() => servers.stop());

  let env: Record<string, string>;
  let apply: Apply;
  if (source === 'file') {
    const file = join(dir, 'discovery.yaml');
    apply = async (s) => {
      const lines = Object.entries(s).map(([name, port]) => `      - { name: ${name}, address: "127.0.0.1:${port}" }`);
      await writeFile(`${file}.tmp`, `services:\n  web:\n    servers:\n${lines.join('\n')}\n`);
      await rename(`${file}.tmp`, file);
    };
    await apply({ one: SERVERS.one });
    env = { DISCOVERY_FILE: file };
  } else if (source === 'kv') {
    const kv = await startKvFixtureIn(netns, 'token');
    t.after(() => kv.proc.stop());
    let held = new Set<string>();
    apply = async (s) => {
      const ops = [
        ...[...held].filter((n) => !(n in s)).map((n) => ({ op: 'delete' as const, key: `apps/web/${n}` })),
        ...Object.entries(s).map(([n, port]) => ({ op: 'put' as const, key: `apps/web/${n}`, value: `127.0.0.1:${port}` })),
      ];
      await kv.batch(ops);
      held = new Set(Object.keys(s));
    };
    await apply({ one: SERVERS.one });
    env = { KV_URL: kv.url, KV_TOKEN: 'token', KV_PREFIX: 'apps/web', KV_WATCH: 'on' };
  } else {
    const etcd = await startEtcdIn(netns);
    t.after(() => etcd.close());
    let held = new Set<string>();
    apply = async (s) => {
      for (const n of [...held].filter((n) => !(n in s))) await etcd.ctl(['del', `/apps/web/${n}`]);
      for (const [n, port] of Object.entries(s)) await etcd.ctl(['put', `/apps/web/${n}`, `127.0.0.1:${port}`]);
      held = new Set(Object.keys(s));
    };
    await apply({ one: SERVERS.one });
    env = { ETCD_ENDPOINTS: etcd.endpoint, ETCD_PREFIX: '/apps/web', ETCD_LAYOUT: 'containers' };
  }
  const runDir = join(dir, 'run');
  const pilot = startPilot({ ...env, STATS_AUTH: 'none', PILOT_RUN_DIR: runDir }, { netns });
  t.after(() => pilot.kill());
  await pilot.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
  return { netns, pilot, apply, runDir };
}

const serving = (pilot: PilotProcess, want: string) => eventually(`traffic reaches ${want}`, async () => (distinct(await sample(pilot, FRONTEND, 12)).join() === want ? true : undefined), 15_000);

async function haproxyState(pilot: PilotProcess): Promise<{ workers: number[]; reloads: number }> {
  const s = await status(pilot);
  return { workers: (s.haproxy as { workers: number[] }).workers, reloads: (s.apply as { reloads: number }).reloads };
}

for (const source of ['file', 'kv', 'etcd'] as const) {
  test(`${source}: servers added, removed, re-added and moved under load: 0 failed requests, 0 reloads`, async (t) => {
    const { netns, pilot, apply, runDir } = await world(t, source);
    await serving(pilot, 'one');
    const before = await haproxyState(pilot);
    const wrk = startWrk(FRONTEND, { connections: 8, threads: 1, close: false, maxSeconds: 120, enter: netns.enter });
    t.after(() => void wrk.stop().catch(() => undefined));

    await apply({ one: SERVERS.one, two: SERVERS.two });
    await serving(pilot, 'one,two');
    await apply({ two: SERVERS.two });
    await serving(pilot, 'two');
    await apply({ one: SERVERS.one, two: SERVERS.two });
    await serving(pilot, 'one,two');
    // "two" now answers at three's address: the same server name, a new address.
    await apply({ one: SERVERS.one, two: SERVERS.three });
    await serving(pilot, 'one,three');
    await apply({ one: SERVERS.one });
    await serving(pilot, 'one');

    const load = await wrk.stop();
    const after = await haproxyState(pilot);
    assert.ok(load.requests > 100, `wrk ran: ${load.requests} requests`);
    assert.equal(load.failed, 0, `no failed request:\n${load.raw}`);
    assert.deepEqual(after.workers, before.workers, 'the same HAProxy worker served throughout');
    assert.equal(after.reloads, before.reloads, 'no reload');
    const applied = pilot.logs.filter((l) => l.msg === 'applied (runtime)').length;
    assert.ok(applied >= 4, `every step went through the runtime API (${applied} runtime applies)`);
    // The removed server went to maint and, once idle, was deleted from the running HAProxy.
    await eventually('the removed server is deleted', async () => {
      const state = await runtimeCommand(join(runDir, 'master.sock'), 'show servers state');
      const left = ((await status(pilot)).apply as { removing: string[] }).removing;
      return !/^\d+ \S+ \d+ two /m.test(state) && left.length === 0 ? true : undefined;
    }, 15_000);
  });
}
