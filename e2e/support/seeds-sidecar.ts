/**
 * Seed 000 in a test's network namespace: the Sidecar protocol fixture (a fixture that follows
 * Sidecar's wire format, not a real Sidecar: see support/sidecar-fixture.ts) and the containers
 * it announces, each in a process of its own (support/seeds-sidecar-main.ts), driven over
 * stdin/stdout and stopped by pid. A second address on a veth interface of the namespace stands
 * for "another host": pushes and requests from it are not loopback.
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Netns } from './pilot-process.js';
import { spawnInNetns, type NetnsProcess } from './seeds-netns.js';
import type { Delivery, FixtureService, FixtureServiceInput, FixtureState, StateFault } from './sidecar-fixture.js';

const MAIN = fileURLToPath(new URL('./seeds-sidecar-main.js', import.meta.url));

function caller(proc: NetnsProcess) {
  let next = 1;
  return async (cmd: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const id = next++;
    proc.send({ id, ...cmd });
    const answer = await proc.waitFor((m) => m.id === id, 20_000);
    if (answer.ok !== true) throw new Error(`${String(cmd.op)}: ${String(answer.error)}`);
    return answer;
  };
}

export interface NetnsSidecar {
  url: string;
  port: number;
  /** `127.0.0.1:<port>`, what `-F` takes. */
  hostPort: string;
  proc: NetnsProcess;
  add(service: FixtureServiceInput): Promise<FixtureService>;
  setStatus(id: string, status: number): Promise<void>;
  remove(id: string): Promise<void>;
  inject(host: string, id: string, record: unknown): Promise<void>;
  addListener(url: string): Promise<void>;
  failNextAttempts(url: string, n: number): Promise<void>;
  hold(): Promise<void>;
  release(): Promise<void>;
  settle(): Promise<void>;
  fault(fault: StateFault): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  state(): Promise<FixtureState>;
  eventBody(id: string): Promise<string>;
  deliveries(): Promise<Delivery[]>;
  requests(): Promise<string[]>;
}

export async function startSidecarIn(netns: Netns): Promise<NetnsSidecar> {
  const proc = spawnInNetns(netns, [process.execPath, MAIN, 'sidecar']);
  const hello = await proc.waitFor((m) => typeof m.url === 'string');
  const call = caller(proc);
  const port = Number(hello.port);
  return {
    url: String(hello.url),
    port,
    hostPort: `127.0.0.1:${port}`,
    proc,
    add: async (service) => (await call({ op: 'add', service })).service as FixtureService,
    setStatus: async (id, status) => void (await call({ op: 'status', serviceId: id, status })),
    remove: async (id) => void (await call({ op: 'remove', serviceId: id })),
    inject: async (host, id, record) => void (await call({ op: 'inject', host, serviceId: id, record })),
    addListener: async (url) => void (await call({ op: 'listener', url })),
    failNextAttempts: async (url, n) => void (await call({ op: 'fail', url, n })),
    hold: async () => void (await call({ op: 'hold' })),
    release: async () => void (await call({ op: 'release' })),
    settle: async () => void (await call({ op: 'settle' })),
    fault: async (fault) => void (await call({ op: 'fault', fault })),
    stop: async () => void (await call({ op: 'stop' })),
    start: async () => void (await call({ op: 'start' })),
    state: async () => (await call({ op: 'state' })).state as FixtureState,
    eventBody: async (id) => String((await call({ op: 'event', serviceId: id })).body),
    deliveries: async () => (await call({ op: 'deliveries' })).deliveries as Delivery[],
    requests: async () => (await call({ op: 'requests' })).requests as string[],
  };
}

export interface NetnsBackends {
  proc: NetnsProcess;
  /** Requests each server received so far. */
  counts(): Promise<Record<string, number>>;
  /** Requests to `/hold` each server holds open. */
  held(): Promise<Record<string, number>>;
  /** Answers every held request. */
  release(): Promise<void>;
}

/** HTTP servers `<name>@<ip>:<port>` answering their name, inside the netns. */
export async function startBackendsIn(netns: Netns, specs: string[]): Promise<NetnsBackends> {
  const proc = spawnInNetns(netns, [process.execPath, MAIN, 'backends', ...specs]);
  await proc.waitFor((m) => m.ready === true);
  const call = caller(proc);
  return {
    proc,
    counts: async () => (await call({ op: 'counts' })).counts as Record<string, number>,
    held: async () => (await call({ op: 'held' })).held as Record<string, number>,
    release: async () => void (await call({ op: 'release' })),
  };
}

/**
 * A second address in the namespace, on a veth interface (this kernel has no dummy interfaces):
 * connections to it stay in the namespace, but come from a non-loopback address, as from
 * another host.
 */
export async function addOtherAddress(netns: Netns, address = '10.78.0.1'): Promise<string> {
  const run = (args: string[]) => execa(netns.enter[0]!, [...netns.enter.slice(1), ...args]);
  await run(['ip', 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
  await run(['ip', 'addr', 'add', `${address}/24`, 'dev', 'other0']);
  await run(['ip', 'link', 'set', 'other0', 'up']);
  await run(['ip', 'link', 'set', 'other1', 'up']);
  return address;
}
