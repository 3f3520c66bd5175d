/**
 * Seed 004 (ProxyMgr) from ZooKeeper: the children of ZK_PATH are services (see
 * proxymgr-layout.ts); each service's watcher says where its servers are. Everything is watched
 * (no polling): the children of ZK_PATH and each service node's data; for `zookeeper` and
 * `campanjazk` watchers the children (and, for `zookeeper`, their data) of the watcher's path,
 * on the watcher's own ensemble when its `server` differs (one session per distinct connect
 * string); for `file` watchers the file. Any creation, change or deletion leads to a new whole
 * snapshot as soon as every outstanding read has answered (no debounce: the pipeline coalesces).
 *
 * Faults:
 *  - ZooKeeper unreachable at start: sink.error after the session timeout; the client keeps
 *    trying; the first whole read after it connects is the first snapshot.
 *  - Connection loss: the session survives it (the client resumes it on another server and
 *    restores the watches); we keep the last good data, emit nothing meanwhile, and re-read
 *    everything once connected.
 *  - Session expiry: a new session, every watch re-established by re-reading the whole tree
 *    once, so a change made during the outage is seen. The last good data is kept until then.
 *  - Structural sharing: a service whose inputs did not change keeps its backend object.
 * The digest password (ZK_AUTH_FILE) never reaches a log or an error.
 */
import type { Logger } from '../../log.js';
import { describeError, PilotError } from '../../errors.js';
import type { DiscoveredBackend } from '../../state/model.js';
import type { Skipped } from '../../state/layout.js';
import type { Source, SourceSink, Snapshot } from '../source.js';
import { redact, systemClock, type SourceClock } from '../common.js';
import { readZookeeperAuth, type ZookeeperAuth, type ZookeeperSettings } from './settings.js';
import { ZkConnection, type ZkModule } from './conn.js';
import { ChildrenTree } from './tree.js';
import { FileWatch } from './file-watch.js';
import { layoutService, proxymgrLayout, watchTargetOf, type ServiceNode, type ServiceResult, type WatcherData } from './proxymgr-layout.js';

export interface ZookeeperSourceDeps {
  log: Logger;
  clock?: SourceClock;
  /** Snapshot source name (default `zookeeper`). */
  name?: string;
  /** Report an unreachable ensemble after this long (default: the session timeout). */
  errorAfterMs?: number;
  /** The client module (tests); default `await import('node-zookeeper-client')`. */
  zk?: ZkModule;
  /** Reads ZK_AUTH_FILE (tests). */
  readFile?: (path: string) => string;
}

interface Memo {
  fingerprint: string;
  result: ServiceResult;
}

export function createZookeeperSource(settings: ZookeeperSettings, deps: ZookeeperSourceDeps): Source {
  const name = deps.name ?? 'zookeeper';
  const clock = deps.clock ?? systemClock;
  const log = deps.log.child({ component: `source-${name}` });
  const root = settings.path;

  let sink: SourceSink | undefined;
  let zk: ZkModule | undefined;
  let auth: ZookeeperAuth | undefined;
  let stopped = false;
  let main: ZkConnection | undefined;
  let services: ChildrenTree | undefined;
  const conns = new Map<string, ZkConnection>();
  const trees = new Map<string, ChildrenTree>();
  const files = new Map<string, FileWatch>();
  const memo = new Map<string, Memo>();
  let logged = new Set<string>();
  let dirty = false;
  let mustEmit = false; // after a reported outage: the next whole read is announced even if unchanged
  let emitQueued = false;
  let rootState = '';

  const secrets = (): (string | undefined)[] => [auth?.password];

  function connFor(connect: string): ZkConnection {
    let c = conns.get(connect);
    if (c !== undefined) return c;
    const conn: ZkConnection = new ZkConnection(
      { zk: zk!, connect, sessionTimeoutMs: settings.sessionTimeoutMs, ...(auth ? { auth } : {}), log, clock, name, ...(deps.errorAfterMs === undefined ? {} : { errorAfterMs: deps.errorAfterMs }) },
      {
        connected: (newSession) => {
          if (newSession && conn === main) log.info(`${name}: session on ${connect} established; reading ${root} and every watched path`);
          for (const t of [services, ...trees.values()]) if (t !== undefined && t.conn === conn) t.refresh();
          schedule();
        },
        disconnected: () => undefined,
        outage: (error) => {
          mustEmit = true;
          sink?.error(error);
        },
        settled: () => schedule(),
      },
    );
    c = conn;
    conns.set(connect, c);
    c.start();
    return c;
  }

  function changed(): void {
    dirty = true;
    schedule();
  }

  /** Emit on the next turn (responses that arrive together make one snapshot). */
  function schedule(): void {
    if (emitQueued || stopped) return;
    emitQueued = true;
    setImmediate(() => {
      emitQueued = false;
      reconcile();
      tryEmit();
    });
  }

  /** Watch what the current service blobs point at; drop what they no longer do. */
  function reconcile(): void {
    if (services === undefined || stopped) return;
    const wantTrees = new Map<string, { connect: string; path: string; withData: boolean }>();
    const wantFiles = new Set<string>();
    for (const [child, cd] of services.children) {
      const target = watchTargetOf(child, cd.data);
      if (target === undefined) continue;
      if (target.type === 'zookeeper' || target.type === 'campanjazk') {
        const connect = target.servers ?? settings.connectString;
        const withData = target.type === 'zookeeper';
        wantTrees.set(treeKey(connect, target.path, withData), { connect, path: target.path, withData });
      } else if (target.type === 'file') wantFiles.add(target.file);
    }
    for (const [key, w] of wantTrees) {
      if (trees.has(key)) continue;
      const conn = connFor(w.connect);
      const tree = new ChildrenTree(conn, w.path, w.withData, zk!, changed);
      trees.set(key, tree);
      if (conn.connected) tree.refresh();
    }
    for (const [key, tree] of trees) {
      if (wantTrees.has(key)) continue;
      tree.active = false;
      trees.delete(key);
    }
    for (const file of wantFiles) {
      if (files.has(file)) continue;
      const fw = new FileWatch(file, changed);
      files.set(file, fw);
      fw.start();
    }
    for (const [file, fw] of files) {
      if (wantFiles.has(file)) continue;
      fw.stop();
      files.delete(file);
    }
    // Sessions nobody uses any more (a service moved to another ensemble or went away).
    for (const [connect, conn] of conns) {
      if (conn === main || [...trees.values()].some((t) => t.conn === conn)) continue;
      conns.delete(connect);
      void conn.close();
    }
  }

  function watcherData(child: string, data: string | undefined): WatcherData | undefined {
    const target = watchTargetOf(child, data);
    if (target === undefined || target.type === 'dns') return undefined;
    if (target.type === 'file') {
      const fw = files.get(target.file);
      if (fw === undefined || !fw.loaded) return undefined;
      return { file: { ...(fw.content === undefined ? {} : { content: fw.content }), ...(fw.error === undefined ? {} : { error: fw.error }) } };
    }
    const tree = trees.get(treeKey(target.servers ?? settings.connectString, target.path, target.type === 'zookeeper'));
    if (tree === undefined || !tree.loaded) return undefined;
    if (tree.error !== undefined) return { error: tree.error };
    const children: Record<string, { data?: string; error?: string }> = {};
    for (const k of [...tree.children.keys()].sort()) children[k] = tree.children.get(k)!;
    return { children };
  }

  /** Every read on a connected session has answered, and the service_config ensemble is up. */
  function whole(): boolean {
    if (main === undefined || services === undefined || !main.connected || !services.loaded) return false;
    for (const c of conns.values()) if (c.connected && c.pending > 0) return false;
    for (const f of files.values()) if (f.pending > 0) return false;
    return true;
  }

  function tryEmit(): void {
    if (stopped || sink === undefined || !(dirty || mustEmit) || !whole()) return;
    dirty = false;
    mustEmit = false;
    const tree = services!;
    const state = tree.error !== undefined ? `error ${tree.error}` : tree.exists === false ? 'missing' : 'ok';
    if (tree.error !== undefined) {
      // The service_config path itself cannot be read: a failed read, not "no services".
      sink.error(new PilotError('E_SOURCE', redact(`${name}: ${root} on ${settings.connectString} cannot be read (${tree.error})`, secrets()), { details: { source: name } }));
      rootState = state;
      return;
    }
    if (state !== rootState && state === 'missing') log.warn(`${name}: ${root} does not exist (yet); no services until it does`);
    rootState = state;

    const nodes: ServiceNode[] = [];
    for (const [child, cd] of tree.children) {
      const node: ServiceNode = { parent: root, name: child, ...cd };
      const w = watcherData(child, cd.data);
      if (w !== undefined) node.watcher = w;
      nodes.push(node);
    }
    const seen = new Set<string>();
    const result = proxymgrLayout(nodes, { source: name }, (node) => {
      // Structural sharing: the same inputs give the same backend object.
      seen.add(node.name);
      const fingerprint = JSON.stringify([node.data, node.error, node.watcher]);
      const m = memo.get(node.name);
      if (m !== undefined && m.fingerprint === fingerprint) return m.result;
      const r = layoutService(node, { source: name });
      memo.set(node.name, { fingerprint, result: r });
      return r;
    });
    for (const k of [...memo.keys()]) if (!seen.has(k)) memo.delete(k);
    logSkipped(result.skipped);
    const snapshot: Snapshot = {
      source: name,
      at: clock.now(),
      keys: {},
      // The contract's backend shape (see ZkBackend); model.ts catches up in the core refactor.
      backends: result.backends,
    };
    sink.snapshot(snapshot);
  }

  /** Each skipped node is logged once while it stays wrong (not on every snapshot). */
  function logSkipped(skipped: Skipped[]): void {
    const now = new Set<string>();
    for (const s of skipped) {
      const id = `${s.key}\u0000${s.reason}`;
      now.add(id);
      if (!logged.has(id)) log.warn({ key: s.key }, `${name}: skipped ${s.reason}`);
    }
    logged = now;
  }

  async function init(): Promise<void> {
    if (deps.zk !== undefined) zk = deps.zk;
    else {
      // Loaded only when ZooKeeper is configured. It is CommonJS: the namespace's default is the module.
      const mod = (await import('node-zookeeper-client')) as unknown as { default?: ZkModule };
      zk = mod.default ?? (mod as unknown as ZkModule);
    }
    if (stopped) return;
    main = connFor(settings.connectString);
    services = new ChildrenTree(main, root, true, zk, changed);
    log.info({ servers: settings.connectString, path: root, sessionTimeoutMs: settings.sessionTimeoutMs, auth: auth === undefined ? 'none' : 'digest' }, `${name}: watching ${root}`);
    if (main.connected) services.refresh();
  }

  return {
    name,
    start(s: SourceSink): void {
      if (sink !== undefined) throw new PilotError('E_INTERNAL', `${name}: source started twice`);
      sink = s;
      // A missing or malformed auth file is the operator's configuration: fail the start.
      if (settings.authFile !== undefined) auth = readZookeeperAuth(settings.authFile, deps.readFile);
      void init().catch((err) => {
        sink?.error(new PilotError('E_SOURCE', redact(`${name}: cannot start: ${describeError(err)}`, secrets()), { details: { source: name } }));
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const t of trees.values()) t.active = false;
      if (services) services.active = false;
      for (const f of files.values()) f.stop();
      await Promise.all([...conns.values()].map((c) => c.close()));
      conns.clear();
    },
  };
}

function treeKey(connect: string, path: string, withData: boolean): string {
  return `${connect}\u0000${path}\u0000${withData ? 'data' : 'names'}`;
}
