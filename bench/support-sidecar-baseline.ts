/**
 * The baseline for bench/sidecar-latency.ts: what haproxy-api does with a Sidecar push (shared
 * reference A3, Sidecar's receiver package and haproxy-api's haproxy.go), rebuilt small:
 *
 *  - `POST /update` with a StateChangedEvent: the state is kept when its LastChanged is strictly
 *    newer; the event counts when ShouldNotify says so (new status Alive, Tombstone or Draining;
 *    Unknown or Unhealthy only after Alive); answered with an empty 200.
 *  - The processing loop is Sidecar's ProcessUpdates on director's immediate TimedLooper with
 *    haproxy-api's 5 s interval: an iteration waits for the first queued event, renders the
 *    latest state and drops the rest; the next iteration starts at the next tick of a 5 s ticker
 *    (one tick buffered, as Go's time.Ticker channel), so events closer than 5 s to the previous
 *    processing wait for the tick (the "hold-down").
 *  - Each processing: render haproxy-api's template (a frontend and a backend per (service,
 *    ServicePort), Alive instances only), write the file, `haproxy -c`, then the `-sf` reload
 *    (`haproxy -f cfg -p pid -D -sf <old pids>`: bench/support-baseline.ts, as for the confd-era
 *    baseline of the reload benchmark). Nothing is compared with the previous rendering.
 */
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startConfdStyle, type ConfdStyleHaproxy } from './support-baseline.js';
import { sleep } from './support-latency-probe.js';

interface Port {
  Type: string;
  Port: number;
  ServicePort: number;
  IP: string;
}
interface Service {
  ID: string;
  Name: string;
  Hostname: string;
  Ports: Port[];
  ProxyMode: string;
  Status: number;
}
interface State {
  Servers: Record<string, { Services: Record<string, Service> }>;
  LastChanged: string;
}

const ALIVE = 0;
const TOMBSTONE = 1;
const UNHEALTHY = 2;
const UNKNOWN = 3;
const DRAINING = 4;
const HOLD_DOWN_MS = 5000;

/** Sidecar's receiver.ShouldNotify. */
function shouldNotify(previous: number, next: number): boolean {
  if (next === ALIVE || next === TOMBSTONE || next === DRAINING) return true;
  if (next === UNKNOWN || next === UNHEALTHY) return previous === ALIVE;
  return false;
}

const sanitize = (name: string): string => name.replace(/[^a-z0-9-]/g, '-');

/** haproxy-api's template (views/haproxy.cfg), without the syslog and stats sections. */
export function renderHaproxyApi(state: State, bindIp: string): string {
  const byName = new Map<string, Service[]>();
  for (const server of Object.values(state.Servers)) {
    for (const svc of Object.values(server.Services)) {
      if (svc.Status !== ALIVE || svc.Ports.length === 0) continue;
      byName.set(svc.Name, [...(byName.get(svc.Name) ?? []), svc]);
    }
  }
  const out = [
    'global',
    '    maxconn 4096',
    'defaults',
    '    option dontlognull',
    '    maxconn 4096',
    '    retries 3',
    '    timeout connect 5s',
    '    timeout client 1m',
    '    timeout server 1m',
    '    option redispatch',
    '    balance roundrobin',
  ];
  for (const [name, list] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const mode = list[0]!.ProxyMode === 'tcp' ? 'tcp' : 'http';
    const servicePorts = [...new Set(list[0]!.Ports.filter((p) => p.Type === 'tcp' && p.ServicePort !== 0).map((p) => p.ServicePort))];
    for (const sp of servicePorts) {
      const proxy = `${sanitize(name)}-${sp}`;
      out.push(`frontend ${proxy}`, `    mode ${mode}`, `    bind ${bindIp}:${sp}`, `    default_backend ${proxy}`);
      out.push(`backend ${proxy}`, `    mode ${mode}`);
      for (const svc of list) {
        const port = svc.Ports.find((p) => p.ServicePort === sp);
        if (port) out.push(`    server ${svc.Hostname}-${svc.ID} ${port.IP || svc.Hostname}:${port.Port} cookie ${svc.Hostname}-${port.Port}`);
      }
    }
  }
  return `${out.join('\n')}\n`;
}

export interface HaproxyApiBaseline {
  url: string;
  /** `-sf` reloads done so far (the first processing starts HAProxy and is not one). */
  reloads(): number;
  stop(): Promise<void>;
}

const goNs = (t: string): bigint => {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(t);
  if (!m) return 0n;
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
};

export async function startHaproxyApiBaseline(options: { port: number; dir: string; bindIp?: string }): Promise<HaproxyApiBaseline> {
  const bindIp = options.bindIp ?? '0.0.0.0';
  const configPath = join(options.dir, 'haproxy-api.cfg');
  let current: State | undefined;
  let reloads = 0;
  let stopped = false;
  let haproxy: ConfdStyleHaproxy | undefined;
  const queue: number[] = [];
  let wake: (() => void) | undefined;
  const next = (): Promise<void> => new Promise((r) => (wake = r));

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/update') return void res.writeHead(404).end();
      let event: { State: State; ChangeEvent: { Service: Service; PreviousStatus: number } };
      try {
        event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof event;
      } catch {
        return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":["unreadable"]}');
      }
      if (current === undefined || goNs(event.State.LastChanged) > goNs(current.LastChanged)) current = event.State;
      if (shouldNotify(event.ChangeEvent.PreviousStatus, event.ChangeEvent.Service.Status) && queue.length < 256) {
        queue.push(Date.now());
        wake?.();
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));

  // director's TimedLooper: a ticker every 5 s whose channel buffers one tick.
  let tick = false;
  let tickWake: (() => void) | undefined;
  const ticker = setInterval(() => {
    tick = true;
    tickWake?.();
  }, HOLD_DOWN_MS);
  const waitTick = async (): Promise<void> => {
    while (!tick && !stopped) await new Promise<void>((r) => (tickWake = r));
    tick = false;
  };

  /** haproxy-api's WriteAndReload: write, verify_cmd, reload_cmd (the first one starts HAProxy). */
  async function writeAndReload(state: State): Promise<void> {
    const text = renderHaproxyApi(state, bindIp);
    if (haproxy === undefined) {
      haproxy = await startConfdStyle({ bin: 'haproxy', configPath, pidFile: join(options.dir, 'haproxy-api.pid'), text });
      return;
    }
    await writeFile(configPath, text);
    await execa('haproxy', ['-c', '-q', '-f', configPath]);
    await haproxy.reload(text);
    reloads++;
  }

  const loop = (async () => {
    let first = true;
    while (!stopped) {
      if (!first) await waitTick();
      first = false;
      while (queue.length === 0 && !stopped) await next();
      if (stopped) break;
      const pending = queue.length - 1;
      const state = structuredClone(current!);
      await writeAndReload(state).catch(() => undefined);
      queue.splice(0, pending + 1);
    }
  })();

  return {
    url: `http://127.0.0.1:${options.port}/update`,
    reloads: () => reloads,
    stop: async () => {
      stopped = true;
      clearInterval(ticker);
      wake?.();
      tickWake?.();
      await loop;
      await new Promise<void>((r) => server.close(() => r()));
      await haproxy?.stop();
      await sleep(0);
    },
  };
}
