/**
 * The baselines for bench/change-latency.ts.
 *
 * confd-style (what seed 002's image and haproxy-confd did): watch the store (confd -watch:
 * blocking queries, an etcd watch, inotify), read the whole prefix on every change, render a
 * whole haproxy.cfg with every server, check it (`haproxy -c`, confd's check_cmd), and reload
 * HAProxy (confd's reload_cmd; here SIGUSR2 to a master-worker master, the cheapest plain
 * reload HAProxy 2.6 has). No runtime API, no coalescing, no confirmation.
 *
 * Data-Plane-API-style (reference section C4, DPA v3 without a transaction): every call writes
 * the whole config file and validates it with `haproxy -c`; a new server is added with the
 * runtime API (`add server`, then `enable health` and `state ready`), an address or weight is
 * set with the runtime API, and a deleted server is a reload (DPA always reloads for a server
 * delete). Each runtime command on its own master CLI connection, as DPA's runtime client does.
 * The reload is done at once (DPA's `force_reload=true`); with DPA's default `reload-delay` of
 * 5 s a delete would wait up to 5 s more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { masterCommand, parseShowProc } from '../src/haproxy/master-cli.js';
import { ask, sleep } from './support-latency-probe.js';
import type { ServerSet, Store, Watching } from './support-latency-stores.js';

export interface BaselineSystem {
  /** The change: for confd-style a store write (the watcher does the rest), for DPA-style the API call. */
  apply(set: ServerSet): Promise<void>;
  reloads(): number;
  stop(): Promise<void>;
}

/** The config both baselines serve: the frontend on `port`, one backend with every server (as the pilot renders it: `check`, weights). */
export function renderBaselineConfig(port: number, servers: ServerSet): string {
  return [
    'global',
    '    maxconn 4096',
    '    hard-stop-after 30s',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    'frontend fe',
    `    bind :${port}`,
    '    default_backend web',
    'backend web',
    '    balance roundrobin',
    '    mode http',
    ...[...servers].map(([name, s]) => `    server ${name} 127.0.0.1:${s.port} check${s.weight !== undefined ? ` weight ${s.weight}` : ''}`),
    '',
  ].join('\n');
}

async function startMaster(cfg: string, socket: string | undefined, port: number): Promise<{ master: ChildProcess; exited: Promise<void> }> {
  const master = spawn('haproxy', ['-W', '-db', ...(socket ? ['-S', socket] : []), '-f', cfg], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => master.on('exit', () => r()));
  // Up when the frontend answers (503: no server yet).
  for (let i = 0; i < 400 && (await ask(port, '/')).status === 0; i++) await sleep(25);
  return { master, exited };
}

export async function startConfdStyle(store: Store, options: { port: number; dir: string }): Promise<BaselineSystem> {
  const cfg = join(options.dir, 'confd.cfg');
  let last = renderBaselineConfig(options.port, new Map());
  await writeFile(cfg, last);
  const { master, exited } = await startMaster(cfg, undefined, options.port);
  let reloads = 0;
  // One change at a time, as confd processes its template resources.
  let chain: Promise<void> = Promise.resolve();
  const watching: Watching = store.watch((set) => {
    chain = chain.then(async () => {
      const text = renderBaselineConfig(options.port, set);
      if (text === last) return;
      try {
        await writeFile(`${cfg}.new`, text);
        await execa('haproxy', ['-c', '-q', '-f', `${cfg}.new`]);
        await rename(`${cfg}.new`, cfg);
        master.kill('SIGUSR2');
        reloads++;
        last = text;
      } catch {
        // confd logs the failed check and keeps the running config
      }
    });
  });
  return {
    apply: (set) => store.write(set),
    reloads: () => reloads,
    stop: async () => {
      await watching.stop();
      await chain;
      master.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startDpaStyle(options: { port: number; dir: string }): Promise<BaselineSystem> {
  const cfg = join(options.dir, 'dpa.cfg');
  const socket = join(options.dir, 'dpa-master.sock');
  let running: ServerSet = new Map();
  await writeFile(cfg, renderBaselineConfig(options.port, running));
  const { master, exited } = await startMaster(cfg, socket, options.port);
  let reloads = 0;
  const runtime = async (command: string): Promise<void> => {
    const answer = (await masterCommand(socket, `@1 ${command}`)).trim();
    if (answer !== '' && !/^New server registered|IP changed from|no need to change/.test(answer)) throw new Error(`${command}: ${answer}`);
  };
  const workers = async (): Promise<string> => parseShowProc(await masterCommand(socket, 'show proc')).workers.map((w) => w.pid).join(',');
  const reload = async (): Promise<void> => {
    const before = await workers();
    // 2.6's master CLI `reload` answers nothing: confirm the new worker through `show proc`.
    await masterCommand(socket, 'reload').catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await sleep(5);
      const now = await workers().catch(() => before);
      if (now !== '' && now !== before) break;
    }
    reloads++;
  };
  return {
    async apply(set) {
      // The call: write the whole file, validate it, then runtime commands or a reload.
      const text = renderBaselineConfig(options.port, set);
      await writeFile(`${cfg}.tmp`, text);
      await execa('haproxy', ['-c', '-q', '-f', `${cfg}.tmp`]);
      await rename(`${cfg}.tmp`, cfg);
      const removed = [...running.keys()].filter((n) => !set.has(n));
      const before = running;
      running = set;
      if (removed.length > 0) return reload();
      for (const [name, s] of set) {
        const was = before.get(name);
        if (!was) {
          await runtime(`add server web/${name} 127.0.0.1:${s.port} check${s.weight !== undefined ? ` weight ${s.weight}` : ''}`);
          await runtime(`enable health web/${name}`);
          await runtime(`set server web/${name} state ready`);
          continue;
        }
        if (was.port !== s.port) await runtime(`set server web/${name} addr 127.0.0.1 port ${s.port}`);
        if ((was.weight ?? 1) !== (s.weight ?? 1)) await runtime(`set server web/${name} weight ${s.weight ?? 1}`);
      }
    },
    reloads: () => reloads,
    stop: async () => {
      master.kill('SIGTERM');
      await exited;
    },
  };
}
