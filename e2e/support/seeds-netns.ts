/**
 * Helpers for the seed end-to-end tests: processes started inside a test's network namespace
 * (`netns.enter` prefix, see pilot-process.ts createNetns), talking JSON lines on stdin/stdout,
 * stopped by pid. `ip netns exec` execs into the command, so the child's pid is the process's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Netns } from './pilot-process.js';
import type { KvFault, SeenRequest } from './sources-consul-kv-fixture.js';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

export interface NetnsProcess {
  pid: number;
  /** JSON lines printed so far. */
  messages: Record<string, unknown>[];
  stderr(): string;
  send(message: object): void;
  waitFor(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<void>;
  /** SIGTERM (or `signal`) by pid, SIGKILL after 3 s, and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnInNetns(netns: Netns, command: string[]): NetnsProcess {
  const full = [...netns.enter, ...command];
  const child: ChildProcess = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const messages: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  let ended = false;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a message */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => child.on('exit', () => ((ended = true), resolve())));
  return {
    pid: child.pid!,
    messages,
    stderr: () => err,
    send: (message) => void child.stdin!.write(`${JSON.stringify(message)}\n`),
    waitFor: (pred, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const tick = (): void => {
          const hit = messages.find(pred);
          if (hit) return resolve(hit);
          if (ended || Date.now() > deadline) return reject(new Error(`${command.join(' ')}: no matching message (${ended ? 'exited' : 'timeout'}); stderr: ${err}`));
          setTimeout(tick, 10);
        };
        tick();
      }),
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (ended) return;
      try {
        process.kill(child.pid!, signal);
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface NetnsKvFixture {
  url: string;
  port: number;
  proc: NetnsProcess;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  batch(ops: ({ op: 'put'; key: string; value: string } | { op: 'delete'; key: string })[]): Promise<void>;
  fault(fault: KvFault): Promise<void>;
  requests(): Promise<SeenRequest[]>;
}

/** The Consul KV protocol fixture in the netns (no Consul / Container Cloud server can be installed here). */
export async function startKvFixtureIn(netns: Netns, token: string): Promise<NetnsKvFixture> {
  const proc = spawnInNetns(netns, [process.execPath, here('./seeds-kv-fixture-main.js'), token]);
  const hello = await proc.waitFor((m) => typeof m.url === 'string');
  const url = hello.url as string;
  let next = 1;
  const call = async (cmd: object): Promise<Record<string, unknown>> => {
    const id = next++;
    proc.send({ id, ...cmd });
    const answer = await proc.waitFor((m) => m.id === id);
    if (answer.ok !== true) throw new Error(`kv fixture: ${String(answer.error)}`);
    return answer;
  };
  return {
    url,
    port: Number(new URL(url).port),
    proc,
    put: async (key, value) => void (await call({ op: 'put', key, value })),
    delete: async (key) => void (await call({ op: 'delete', key })),
    batch: async (ops) => void (await call({ op: 'batch', ops })),
    fault: async (fault) => void (await call({ op: 'fault', fault })),
    requests: async () => (await call({ op: 'requests' })).requests as SeenRequest[],
  };
}

export type ServerSpec = { kind: 'http' | 'sick' | 'echo'; name: string; host: string; port: number };

/** Small HTTP servers answering their own name (`sick`: 503 on /health), and TCP echo servers, inside the netns. */
export async function startServersIn(netns: Netns, specs: ServerSpec[]): Promise<NetnsProcess> {
  const proc = spawnInNetns(netns, [process.execPath, here('./seeds-servers-main.js'), ...specs.map((s) => `${s.kind}:${s.name}@${s.host}:${s.port}`)]);
  await proc.waitFor((m) => m.ready === true);
  return proc;
}
