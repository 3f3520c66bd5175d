/**
 * Seed 004 (ProxyMgr): each child of the service_config path is a service. Its node name is the
 * listen section's name, its data a JSON blob:
 *
 *   {"type": "zookeeper", "server": "zk:2181", "path": "/services/web", "port": 8080,
 *    "listen_options": ["mode http"], "server_options": ["check inter 2000"]}
 *
 * ProxyMgr's template (etc/haproxy.cfg.erb) rendered, per service:
 *
 *   listen <name> 0.0.0.0:<port>
 *     <listen_options, one per line>
 *     server <addr:port> <addr:port> <server_options joined with spaces>
 *
 * with no `mode` line of its own, and ProxyMgr's default `defaults` had none either, so a service
 * was TCP unless its listen_options (or the operator's defaults) said `mode http`. We follow
 * that: mode comes from `listen_options` `mode http|tcp`, else tcp. The listen binds `port` on all
 * addresses (route.port). Servers keep ProxyMgr's `address:port` names.
 *
 * Watchers: `zookeeper` (children of `path` hold {"address","port"}), `campanjazk` (child names
 * are the hosts; port `remote_port`, else `port`), `dns` (`backends: [{name, port}]`, resolved at
 * run time by HAProxy's resolvers: the model's `dns` list), `file` (one host:port per line).
 *
 * Everything here is untrusted. A service whose blob, name, port or options are wrong is skipped
 * whole (Skipped names its node path and the reason); one bad server node is skipped alone.
 * Pure: the source feeds it what it read and logs what it skipped.
 */
import { isIP } from 'node:net';
import type { DiscoveredBackend, DiscoveredServer } from '../../state/model.js';
import type { Skipped } from '../../state/layout.js';
import { describeError } from '../../errors.js';
import { showValue, validHost, validHostPort, validName, validPort } from '../../state/validate.js';
import { parseListenOptions, parseServerOptions, type Mode } from './options.js';
import { connectString, isServerName, parseConnectString, serverName, shownChildPath, validZnodePath } from './znode.js';

export const WATCHER_TYPES = ['zookeeper', 'campanjazk', 'dns', 'file'] as const;
export type WatcherType = (typeof WATCHER_TYPES)[number];

/** Largest service blob accepted (ZooKeeper allows 1 MiB; a service needs far less). */
export const MAX_BLOB_BYTES = 64 * 1024;
/** Largest server node accepted. */
export const MAX_SERVER_BYTES = 4096;
/** Largest `file` watcher file accepted. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** server-template slots per DNS name when the blob does not say (`slots`, our extension). */
export const DEFAULT_DNS_SLOTS = 8;

/** What a watcher needs the source to watch. `servers` undefined: the service_config ensemble. */
export type WatchTarget =
  | { type: 'zookeeper' | 'campanjazk'; servers?: string; path: string }
  | { type: 'file'; file: string }
  | { type: 'dns' };

export interface ServiceSpec {
  name: string;
  type: WatcherType;
  port: number;
  mode: Mode;
  options: string[];
  serverOptions: string[];
  target: WatchTarget;
  /** campanjazk: the servers' port (remote_port, else port). */
  remotePort?: number;
  /** dns: names resolved at run time, and IP entries that are plain servers. */
  dns?: { name: string; port: number; slots: number }[];
  staticServers?: { host: string; port: number }[];
}

/** One child of a watcher path: its data (zookeeper watcher), or why it could not be read. */
export interface ChildData {
  data?: string;
  error?: string;
}

/** What the source read for a service's watcher. */
export interface WatcherData {
  /** zookeeper / campanjazk: children of the watcher path by name; {} when the path is missing. */
  children?: Readonly<Record<string, ChildData>>;
  /** The watcher path could not be read (e.g. NO_AUTH): the service is skipped. */
  error?: string;
  /** file: the file's text, or why it could not be read. */
  file?: { content?: string; error?: string };
}

export interface ServiceNode {
  /** Parent path (ZK_PATH). */
  parent: string;
  /** Node name as stored (untrusted). */
  name: string;
  /** Node data as UTF-8 text; undefined with `error` when unreadable, undefined alone: not read yet. */
  data?: string;
  error?: string;
  /** undefined: not read yet (its ensemble is unreachable) — the service is left out for now. */
  watcher?: WatcherData;
}

/** The model's backend: `dns` list, allow-listed `options` and `serverOptions`. */
export type ZkBackend = DiscoveredBackend;

export interface ZkLayoutResult {
  backends: ZkBackend[];
  skipped: Skipped[];
}

export interface ProxymgrLayoutOptions {
  source: string;
}

class ServiceError extends Error {}

function fail(message: string): never {
  throw new ServiceError(message);
}

function field<T>(blob: Record<string, unknown>, key: string, check: (v: unknown) => v is T, expected: string): T | undefined {
  const v = blob[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) fail(`"${key}" is not ${expected}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);

/** `port` as ProxyMgr wanted it (an integer 1..65535); a string of digits is accepted too. */
function portOf(what: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return validPort(what, v);
  if (typeof v === 'string' && /^\d{1,5}$/.test(v)) return validPort(what, v);
  return fail(`"${what}" is ${v === undefined ? 'missing' : `not a port number (${showValue(JSON.stringify(v) ?? String(v))})`}`);
}

/** The service's blob → its spec, or throws ServiceError / PilotError with a one-line reason. */
export function parseService(name: string, data: string): ServiceSpec {
  validName('node name', name);
  if (Buffer.byteLength(data, 'utf8') > MAX_BLOB_BYTES) fail(`data is larger than ${MAX_BLOB_BYTES} bytes`);
  let blob: unknown;
  try {
    blob = JSON.parse(data);
  } catch (err) {
    fail(`data is not JSON (${(err as Error).message.slice(0, 100)})`);
  }
  if (typeof blob !== 'object' || blob === null || Array.isArray(blob)) fail('data is not a JSON object');
  const b = blob as Record<string, unknown>;
  const type = b.type;
  if (typeof type !== 'string' || !(WATCHER_TYPES as readonly string[]).includes(type)) {
    fail(`"type" ${type === undefined ? 'is missing' : `${showValue(String(type))} is not one of ${WATCHER_TYPES.join(', ')}`}`);
  }
  const port = portOf('port', b.port);
  const listen = parseListenOptions(b.listen_options);
  const serverOptions = parseServerOptions(b.server_options, listen.mode ?? 'tcp');
  const spec: ServiceSpec = {
    name,
    type: type as WatcherType,
    port,
    mode: listen.mode ?? 'tcp',
    options: listen.lines,
    serverOptions,
    target: { type: 'dns' },
  };
  switch (spec.type) {
    case 'zookeeper':
    case 'campanjazk': {
      const path = field(b, 'path', isString, 'a string');
      if (path === undefined) fail('"path" is missing');
      validZnodePath('"path"', path);
      const server = field(b, 'server', isString, 'a string');
      spec.target = { type: spec.type, path, ...(server === undefined ? {} : { servers: connectString(parseConnectString('"server"', server)) }) };
      if (spec.type === 'campanjazk') spec.remotePort = b.remote_port === undefined || b.remote_port === null ? port : portOf('remote_port', b.remote_port);
      break;
    }
    case 'file': {
      const file = field(b, 'file', isString, 'a string');
      if (file === undefined) fail('"file" is missing');
      if (!/^\/[A-Za-z0-9._+,=@/-]{0,1023}$/.test(file) || /(^|\/)\.\.(\/|$)/.test(file)) fail(`"file" ${showValue(file)} is not an absolute path`);
      spec.target = { type: 'file', file };
      break;
    }
    case 'dns': {
      const backends = field(b, 'backends', isArray, 'an array');
      if (backends === undefined || backends.length === 0) fail('"backends" is missing or empty');
      if (backends.length > 64) fail('"backends" has more than 64 entries');
      spec.dns = [];
      spec.staticServers = [];
      backends.forEach((entry, i) => {
        if (typeof entry !== 'object' || entry === null) fail(`backends[${i}] is not an object`);
        const e = entry as Record<string, unknown>;
        if (typeof e.name !== 'string') fail(`backends[${i}].name is not a string`);
        const host = validHost(`backends[${i}].name`, e.name);
        const p = portOf(`backends[${i}].port`, e.port);
        if (isIP(host) !== 0) {
          spec.staticServers!.push({ host, port: p });
          return;
        }
        let slots = DEFAULT_DNS_SLOTS;
        if (e.slots !== undefined) {
          if (typeof e.slots !== 'number' || !Number.isInteger(e.slots) || e.slots < 1 || e.slots > 64) fail(`backends[${i}].slots is not an integer 1..64`);
          slots = e.slots;
        }
        spec.dns!.push({ name: host.replace(/\.$/, ''), port: p, slots });
      });
      break;
    }
  }
  return spec;
}

/** What the source must watch for a blob; undefined when the blob is not usable (the layout says why). */
export function watchTargetOf(name: string, data: string | undefined): WatchTarget | undefined {
  if (data === undefined) return undefined;
  try {
    return parseService(name, data).target;
  } catch {
    return undefined;
  }
}

export interface ServiceResult {
  backend?: ZkBackend;
  skipped: Skipped[];
}

class ServerList {
  readonly servers: DiscoveredServer[] = [];
  private readonly seen = new Map<string, string>();
  constructor(private readonly skipped: Skipped[]) {}

  add(key: string, host: string, port: number): void {
    const name = serverName(host, port);
    if (!isServerName(name)) {
      this.skipped.push({ key, reason: `${key}: server name ${showValue(name)} is not usable` });
      return;
    }
    const first = this.seen.get(name);
    if (first !== undefined) {
      this.skipped.push({ key, reason: `${key}: ${name} is already listed by ${first}` });
      return;
    }
    this.seen.set(name, key);
    this.servers.push({ name, host, port });
  }
}

function zookeeperServers(spec: ServiceSpec, w: WatcherData, list: ServerList, skipped: Skipped[]): void {
  const base = (spec.target as { path: string }).path;
  for (const child of Object.keys(w.children ?? {}).sort()) {
    const key = shownChildPath(base, child);
    const c = w.children![child]!;
    try {
      if (spec.type === 'campanjazk') {
        list.add(key, validHost(key, child), spec.remotePort!);
        continue;
      }
      if (c.data === undefined && c.error === undefined) continue; // not read yet: left out for now
      if (c.data === undefined) throw new ServiceError(`data cannot be read (${c.error})`);
      if (Buffer.byteLength(c.data, 'utf8') > MAX_SERVER_BYTES) throw new ServiceError(`data is larger than ${MAX_SERVER_BYTES} bytes`);
      let blob: unknown;
      try {
        blob = JSON.parse(c.data);
      } catch {
        throw new ServiceError(`data ${showValue(c.data)} is not JSON`);
      }
      if (typeof blob !== 'object' || blob === null || Array.isArray(blob)) throw new ServiceError('data is not a JSON object');
      const { address, port } = blob as { address?: unknown; port?: unknown };
      if (typeof address !== 'string') throw new ServiceError('"address" is missing or not a string');
      list.add(key, validHost(`${key}: address`, address), portOf('port', port));
    } catch (err) {
      const why = describeError(err);
      skipped.push({ key, reason: why.startsWith(key) ? why : `${key}: ${why}` });
    }
  }
}

function fileServers(spec: ServiceSpec, w: WatcherData, list: ServerList, skipped: Skipped[]): void {
  const file = (spec.target as { file: string }).file;
  const f = w.file;
  if (f?.content === undefined) fail(`file ${file} cannot be read (${f?.error ?? 'not read'})`);
  if (Buffer.byteLength(f.content, 'utf8') > MAX_FILE_BYTES) fail(`file ${file} is larger than ${MAX_FILE_BYTES} bytes`);
  f.content.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const key = `${file}:${i + 1}`;
    try {
      const { host, port } = validHostPort(key, line);
      list.add(key, host, port);
    } catch {
      // The file is named by the store: never echo its content (it may not be ours to show).
      skipped.push({ key, reason: `${key}: line ${i + 1} is not host:port` });
    }
  });
}

/** One service node → its backend (or nothing, with the reasons). */
export function layoutService(node: ServiceNode, options: ProxymgrLayoutOptions): ServiceResult {
  const key = shownChildPath(node.parent, node.name);
  const skipped: Skipped[] = [];
  try {
    if (node.data === undefined && node.error === undefined) return { skipped }; // not read yet
    if (node.data === undefined) fail(`data cannot be read (${node.error})`);
    const spec = parseService(node.name, node.data);
    const w = node.watcher;
    if (w === undefined && spec.type !== 'dns') return { skipped };
    if (w?.error !== undefined) fail(`watcher path cannot be read (${w.error})`);
    const list = new ServerList(skipped);
    const backend: ZkBackend = {
      name: spec.name,
      mode: spec.mode,
      servers: list.servers,
      route: { port: spec.port },
      source: options.source,
    };
    if (spec.type === 'zookeeper' || spec.type === 'campanjazk') zookeeperServers(spec, w!, list, skipped);
    else if (spec.type === 'file') fileServers(spec, w!, list, skipped);
    else {
      for (const s of spec.staticServers ?? []) list.add(`${key} backends`, s.host, s.port);
      if (spec.dns!.length > 0) backend.dns = spec.dns!;
    }
    // Always set, even empty: the service's lines and keywords are all it gets, as in ProxyMgr's
    // template (no health check or `option httpchk` of the pilot's own: a ProxyMgr service
    // without `check` was never checked, and one with `check` got a TCP check unless its
    // listen_options said otherwise).
    backend.options = spec.options;
    backend.serverOptions = spec.serverOptions;
    return { backend, skipped };
  } catch (err) {
    const why = describeError(err).replace(/^node name: /, 'node name ');
    return { skipped: [...skipped, { key, reason: `${key}: ${why}; service skipped` }] };
  }
}

/**
 * Services → backends. Two services may not bind the same port: the first by name keeps it.
 * `cache` lets the source reuse per-service results (structural sharing); the layout stays pure.
 */
export function proxymgrLayout(
  nodes: readonly ServiceNode[],
  options: ProxymgrLayoutOptions,
  perService: (node: ServiceNode) => ServiceResult = (n) => layoutService(n, options),
): ZkLayoutResult {
  const backends: ZkBackend[] = [];
  const skipped: Skipped[] = [];
  const ports = new Map<number, string>();
  for (const node of [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const r = perService(node);
    skipped.push(...r.skipped);
    const b = r.backend;
    if (b === undefined) continue;
    const port = b.route!.port!;
    const owner = ports.get(port);
    if (owner !== undefined) {
      const key = shownChildPath(node.parent, node.name);
      skipped.push({ key, reason: `${key}: port ${port} is already bound by service ${owner}; service skipped` });
      continue;
    }
    ports.set(port, b.name);
    backends.push(b);
  }
  return { backends, skipped };
}

