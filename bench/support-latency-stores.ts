/**
 * The stores bench/change-latency.ts writes to, behind one interface: the discovery file, the
 * Consul-style KV endpoint (the e2e protocol fixture) and etcd (real), each holding the servers
 * of one backend. `write(set)` turns the store into that set in one step (one rename, one
 * fixture tick, one etcd transaction), as an orchestrator would. Each store can also be read
 * the way a confd-style watcher reads it (`watch`): wait for a change, then read everything.
 */
import { watch as fsWatch } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { ConsulKvFixture } from '../e2e/support/sources-consul-kv-fixture.js';
import type { ZkAdmin } from '../e2e/support/zookeeper.js';

export interface ServerSpec {
  port: number;
  weight?: number;
}

/** A backend's servers by name, in order. */
export type ServerSet = ReadonlyMap<string, ServerSpec>;

export interface Watching {
  stop(): Promise<void>;
}

export interface Store {
  kind: 'file' | 'kv' | 'etcd' | 'zookeeper';
  /** haproxy-pilot's variables for this store. */
  pilotEnv: Record<string, string>;
  /** Where haproxy-pilot serves the backend (the default frontend's :5000, or the service's own listen). */
  port: number;
  /** Whether the store's layout carries weights (the file does; a KV or etcd value is `host:port`). */
  weights: boolean;
  write(set: ServerSet): Promise<void>;
  /** A confd-style watch: `onChange` gets the whole set once at start, then after every change (a full re-read, as confd does). */
  watch(onChange: (set: ServerSet) => void): Watching;
  close(): Promise<void>;
}

const hostPort = (port: number): string => `127.0.0.1:${port}`;

// ------------------------------------------------------------------ file

export function fileStore(path: string): Store {
  const render = (set: ServerSet): string =>
    `services:\n  web:\n    servers:\n${[...set]
      .map(([name, s]) => `      - { name: ${name}, address: "${hostPort(s.port)}"${s.weight !== undefined ? `, weight: ${s.weight}` : ''} }\n`)
      .join('')}`;
  const parse = (text: string): ServerSet => {
    const out = new Map<string, ServerSpec>();
    for (const m of text.matchAll(/name: (\S+), address: "127\.0\.0\.1:(\d+)"(?:, weight: (\d+))?/g)) {
      out.set(m[1]!, { port: Number(m[2]), ...(m[3] !== undefined ? { weight: Number(m[3]) } : {}) });
    }
    return out;
  };
  return {
    kind: 'file',
    pilotEnv: { DISCOVERY_FILE: path },
    port: 5000,
    weights: true,
    async write(set) {
      await writeFile(`${path}.tmp`, render(set));
      await rename(`${path}.tmp`, path);
    },
    watch(onChange) {
      // confd's file backend with -watch: an inotify event, then a read of the whole file.
      let reading = false;
      let again = false;
      const read = async (): Promise<void> => {
        if (reading) return void (again = true);
        reading = true;
        try {
          do {
            again = false;
            const text = await readFile(path, 'utf8').catch(() => '');
            onChange(parse(text));
          } while (again);
        } finally {
          reading = false;
        }
      };
      const w = fsWatch(dirname(path), (_e, f) => {
        if (f === basename(path)) void read();
      });
      void read();
      return { stop: async () => w.close() };
    },
    close: async () => undefined,
  };
}

// ------------------------------------------------------------------ KV (Consul API fixture)

export function kvStore(kv: ConsulKvFixture, token: string, prefix: string): Store {
  let held = new Map<string, string>();
  return {
    kind: 'kv',
    pilotEnv: { KV_URL: kv.url, KV_TOKEN: token, KV_PREFIX: prefix, KV_WATCH: '1' },
    port: 5000,
    weights: false,
    async write(set) {
      // One tick: deletes and puts land before any held blocking query answers.
      const next = new Map([...set].map(([name, s]) => [`${prefix}/${name}`, hostPort(s.port)]));
      for (const key of held.keys()) if (!next.has(key)) kv.delete(key);
      for (const [key, value] of next) if (held.get(key) !== value) kv.put(key, value);
      held = next;
    },
    watch(onChange) {
      // confd's consul backend with -watch: blocking queries on the prefix, then the whole listing.
      const controller = new AbortController();
      const loop = (async () => {
        let index = 0;
        while (!controller.signal.aborted) {
          try {
            const res = await fetch(`${kv.url}/v1/kv/${prefix}?recurse${index > 0 ? `&index=${index}&wait=60s` : ''}`, {
              headers: { authorization: `Bearer ${token}` },
              signal: controller.signal,
            });
            const next = Number(res.headers.get('x-consul-index') ?? 0);
            const list = res.status === 404 ? [] : ((await res.json()) as { Key: string; Value: string | null }[]);
            if (next !== index) {
              const out = new Map<string, ServerSpec>();
              for (const e of list) {
                if (e.Value === null) continue;
                const value = Buffer.from(e.Value, 'base64').toString('utf8');
                out.set(e.Key.split('/').pop()!, { port: Number(value.split(':')[1]) });
              }
              onChange(out);
            }
            index = next;
          } catch {
            if (!controller.signal.aborted) await new Promise((r) => setTimeout(r, 100));
          }
        }
      })();
      return {
        stop: async () => {
          controller.abort();
          await loop;
        },
      };
    },
    close: async () => {
      for (const key of held.keys()) kv.delete(key);
      held.clear();
    },
  };
}

// ------------------------------------------------------------------ etcd

export function etcdStore(endpoint: string, prefix: string): Store {
  const client = new Etcd3({ hosts: endpoint });
  let held = new Map<string, string>();
  return {
    kind: 'etcd',
    pilotEnv: { ETCD_ENDPOINTS: endpoint, ETCD_PREFIX: prefix, ETCD_LAYOUT: 'containers' },
    port: 5000,
    weights: false,
    async write(set) {
      // One transaction, one revision: the watch sees the change as one event batch.
      const next = new Map([...set].map(([name, s]) => [`${prefix}/${name}`, hostPort(s.port)]));
      const ops = [
        ...[...held.keys()].filter((k) => !next.has(k)).map((k) => client.delete().key(k)),
        ...[...next].filter(([k, v]) => held.get(k) !== v).map(([k, v]) => client.put(k).value(v)),
      ];
      held = next;
      if (ops.length === 0) return;
      await client.if(`${prefix}/`, 'Version', '>', -1).then(...ops).commit();
    },
    watch(onChange) {
      // confd's etcdv3 backend with -watch: a watch on the prefix, then a full read of it.
      let stopped = false;
      const readAll = async (): Promise<void> => {
        const all = await client.getAll().prefix(`${prefix}/`).strings();
        const out = new Map<string, ServerSpec>();
        for (const [k, v] of Object.entries(all)) out.set(k.slice(prefix.length + 1), { port: Number(v.split(':')[1]) });
        if (!stopped) onChange(out);
      };
      let reading: Promise<void> = readAll();
      const watcher = client.watch().prefix(`${prefix}/`).create();
      void watcher.then((w) =>
        w.on('data', () => {
          reading = reading.then(readAll, readAll);
        }),
      );
      return {
        stop: async () => {
          stopped = true;
          await (await watcher).cancel();
          await reading.catch(() => undefined);
        },
      };
    },
    close: async () => {
      await client.delete().prefix(`${prefix}/`).catch(() => undefined);
      held.clear();
      client.close();
    },
  };
}

// ------------------------------------------------------------------ ZooKeeper (ProxyMgr's schema)

/**
 * Service `web` (a listen on `port`) under `<root>/service_config`, its server nodes under
 * `<root>/web/<name>` holding `{address, port}`; one ZooKeeper transaction per write. HAProxy's
 * server is named after the node's address and port, so a new address is a new server (removed
 * and added at runtime), as ProxyMgr had it.
 */
export async function zkStore(admin: ZkAdmin, connect: string, root: string, port: number): Promise<Store> {
  await admin.put(`${root}/service_config/web`, { type: 'zookeeper', path: `${root}/web`, port, listen_options: ['mode http'] });
  await admin.put(`${root}/web`, '');
  let held = new Map<string, number>();
  const data = (p: number): Buffer => Buffer.from(JSON.stringify({ address: '127.0.0.1', port: p }));
  return {
    kind: 'zookeeper',
    pilotEnv: { ZK_SERVERS: connect, ZK_PATH: `${root}/service_config` },
    port,
    weights: false,
    async write(set) {
      const tx = admin.client.transaction();
      let ops = 0;
      for (const name of held.keys()) if (!set.has(name)) (tx.remove(`${root}/web/${name}`, -1), ops++);
      for (const [name, s] of set) {
        const was = held.get(name);
        if (was === undefined) (tx.create(`${root}/web/${name}`, data(s.port)), ops++);
        else if (was !== s.port) (tx.setData(`${root}/web/${name}`, data(s.port), -1), ops++);
      }
      held = new Map([...set].map(([n, s]) => [n, s.port]));
      if (ops === 0) return;
      await new Promise<void>((resolve, reject) => tx.commit((err) => (err ? reject(err) : resolve())));
    },
    watch() {
      throw new Error('no confd-style watcher for ZooKeeper in this benchmark');
    },
    close: async () => {
      await admin.removeTree(root).catch(() => undefined);
      held.clear();
    },
  };
}
