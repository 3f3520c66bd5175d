/**
 * A protocol fixture for the Consul KV HTTP API as seed 002's Container Cloud key/value endpoint
 * speaks it. Neither Consul nor Container Cloud can be installed on this machine, so the e2e
 * tests run against this small server, which follows the documented API
 * (https://developer.hashicorp.com/consul/api-docs/kv and …/features/blocking):
 *  - GET /v1/kv/<prefix>?recurse → 200 JSON array [{LockIndex, Key, Flags, Value (base64), CreateIndex, ModifyIndex}]
 *    sorted by key, or 404 with an empty body when nothing is under the prefix;
 *  - X-Consul-Index on every answer (the highest modify index under the prefix, tombstones included);
 *  - blocking queries: `index=<n>&wait=<dur>` holds the answer until the index moves past n or
 *    the wait ends (then answers the unchanged data);
 *  - `Authorization: Bearer <token>` required when a token is set (401 otherwise);
 *  - faults to inject: 500s, garbage bodies, wrong shapes, hangs, an answer that drips one byte
 *    every `dripMs` (a slow store or link); and an index reset (a store
 *    restored from an older snapshot: held queries are abandoned and answer with the lower index).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type KvFault = 'none' | '500' | 'garbage' | 'shape' | 'hang' | 'drip';

export interface SeenRequest {
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
}

export interface ConsulKvFixture {
  url: string;
  requests: SeenRequest[];
  fault: KvFault;
  /** 'drip': one body byte every this many ms (default 500). */
  dripMs: number;
  put(key: string, value: string): void;
  delete(key: string): void;
  /** The store comes back with a lower index (as after a restore): every index restarts from `to`. */
  resetIndex(to?: number): void;
  close(): Promise<void>;
}

interface Entry {
  value: Buffer;
  createIndex: number;
  modifyIndex: number;
}

function parseWait(text: string | undefined): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(text ?? '');
  if (!m) return 5 * 60_000;
  const n = Number(m[1]);
  return Math.min(10 * 60_000, m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

export async function startConsulKvFixture(options: { token?: string } = {}): Promise<ConsulKvFixture> {
  const entries = new Map<string, Entry>();
  const tombstones = new Map<string, number>();
  let raftIndex = 1;
  // Bumped by resetIndex: Consul abandons every held blocking query when a snapshot is restored,
  // so they answer at once with the new, lower index.
  let epoch = 0;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };

  const indexOf = (prefix: string): number => {
    let max = 0;
    for (const [k, e] of entries) if (k.startsWith(prefix)) max = Math.max(max, e.modifyIndex);
    for (const [k, i] of tombstones) if (k.startsWith(prefix)) max = Math.max(max, i);
    return max > 0 ? max : raftIndex;
  };

  const listing = (prefix: string, recurse: boolean): object[] =>
    [...entries.entries()]
      .filter(([k]) => (recurse ? k.startsWith(prefix) : k === prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, e]) => ({ LockIndex: 0, Key: k, Flags: 0, Value: e.value.toString('base64'), CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex }));

  const fixture: ConsulKvFixture = {
    url: '',
    requests: [],
    fault: 'none',
    dripMs: 500,
    put(key, value) {
      raftIndex += 1;
      const old = entries.get(key);
      entries.set(key, { value: Buffer.from(value), createIndex: old?.createIndex ?? raftIndex, modifyIndex: raftIndex });
      tombstones.delete(key);
      wake();
    },
    delete(key) {
      raftIndex += 1;
      entries.delete(key);
      tombstones.set(key, raftIndex);
      wake();
    },
    resetIndex(to = 1) {
      raftIndex = to;
      epoch += 1;
      for (const e of entries.values()) {
        e.createIndex = Math.min(e.createIndex, to);
        e.modifyIndex = Math.min(e.modifyIndex, to);
      }
      tombstones.clear();
      wake();
    },
    close: async () => {
      for (const w of [...waiters]) w();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  // Read through a function: TypeScript keeps narrowing a property across an await.
  const currentFault = (): KvFault => fixture.fault;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const query = Object.fromEntries(url.searchParams.entries());
    fixture.requests.push({ path: url.pathname, query, authorization: req.headers.authorization });
    if (req.method !== 'GET' || !url.pathname.startsWith('/v1/kv/')) {
      res.writeHead(405).end();
      return;
    }
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
      return;
    }
    if (fixture.fault === 'hang') return; // never answers; the client's timeout must fire
    if (fixture.fault === '500') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('rpc error: No cluster leader');
      return;
    }
    const prefix = decodeURIComponent(url.pathname.slice('/v1/kv/'.length));
    const recurse = url.searchParams.has('recurse');
    const want = Number(url.searchParams.get('index') ?? '0');
    if (want > 0 && indexOf(prefix) <= want) {
      // Blocking query: hold until the prefix's index moves past `want` or the wait ends.
      const heldEpoch = epoch;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (indexOf(prefix) > want || res.destroyed || epoch !== heldEpoch) done();
        };
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(done, parseWait(url.searchParams.get('wait') ?? undefined));
        waiters.add(check);
        res.on('close', done);
      });
      if (res.destroyed) return;
      // A fault injected while the query was held applies to its answer.
      const late: KvFault = currentFault();
      if (late === 'hang') return;
      if (late === '500') {
        res.writeHead(500).end('rpc error');
        return;
      }
    }
    const headers = { 'content-type': 'application/json', 'x-consul-index': String(indexOf(prefix)), 'x-consul-knownleader': 'true' };
    if (fixture.fault === 'garbage') {
      res.writeHead(200, headers).end('<html>502 Bad Gateway</html>');
      return;
    }
    if (fixture.fault === 'shape') {
      res.writeHead(200, headers).end(JSON.stringify({ Key: 'apps/x', Value: 'not a list' }));
      return;
    }
    const list = listing(prefix, recurse);
    if (currentFault() === 'drip') {
      // 200 and the headers at once, then the body one byte at a time.
      const body = Buffer.from(JSON.stringify(list));
      res.writeHead(200, { ...headers, 'content-length': String(body.length) });
      for (let i = 0; i < body.length && !res.destroyed; i++) {
        res.write(body.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, fixture.dripMs));
      }
      res.end();
      return;
    }
    if (list.length === 0) {
      res.writeHead(404, headers).end();
      return;
    }
    res.writeHead(200, headers).end(JSON.stringify(list));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fixture.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fixture;
}
