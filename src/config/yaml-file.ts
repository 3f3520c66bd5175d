/**
 * The operator's pilot.yaml, flattened into leaves keyed by their dotted path, each with the
 * line it came from, so every error can say `pilot.yaml:12 stats.port`. The loader marks the
 * leaves it reads; whatever is left unread is an unknown key and reported as such.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { Raw } from './parse.js';

export interface YamlLeaf {
  value: Raw;
  line: number;
}

export interface YamlTree {
  file: string;
  leaves: Map<string, YamlLeaf>;
  /** Names of the entries of a map at `path` (e.g. `services` → ['myservice']), with their lines. */
  mapKeys: Map<string, { name: string; line: number }[]>;
  used: Set<string>;
  /** Notes about keys that were mapped or ignored (ProxyMgr's shape). */
  notes: string[];
}

export function emptyYaml(file = ''): YamlTree {
  return { file, leaves: new Map(), mapKeys: new Map(), used: new Set(), notes: [] };
}

/** Parses `text`; pushes `file:line: message` for syntax and shape errors into `errors`. */
export function parseYamlFile(file: string, text: string, errors: string[]): YamlTree {
  const tree = emptyYaml(file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    errors.push(`${file}:${line}: ${e.message.split('\n')[0]}`);
  }
  if (doc.errors.length > 0) return tree;
  const lineOf = (node: Node | null | undefined): number => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);

  const walk = (node: unknown, path: string[]): void => {
    const where = path.join('.');
    if (node == null || (isScalar(node) && node.value == null)) return; // `key:` with nothing: same as absent
    if (isMap(node)) {
      const keys: { name: string; line: number }[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : '';
        if (key === '' || key.includes('.')) {
          errors.push(`${file}:${lineOf(keyNode)} ${where}: keys must be non-empty names without "."`);
          continue;
        }
        keys.push({ name: key, line: lineOf(keyNode) });
        walk(pair.value, [...path, key]);
      }
      tree.mapKeys.set(where, keys);
      return;
    }
    if (isSeq(node)) {
      const items: string[] = [];
      for (const item of node.items) {
        if (isScalar(item) && item.value != null && typeof item.value !== 'object') items.push(String(item.value));
        else errors.push(`${file}:${lineOf(item as Node)} ${where}: list items must be plain values`);
      }
      tree.leaves.set(where, { value: items, line: lineOf(node) });
      return;
    }
    if (isScalar(node)) {
      tree.leaves.set(where, { value: String(node.value), line: lineOf(node) });
      return;
    }
    errors.push(`${file}:${lineOf(node as Node)} ${where}: unsupported yaml value`);
  };
  const root = doc.contents;
  if (root != null && !isMap(root)) {
    errors.push(`${file}:${lineOf(root)}: the top level must be a map of settings`);
    return tree;
  }
  walk(root, []);
  carryProxymgrKeys(tree, errors);
  return tree;
}

/**
 * ProxyMgr's proxymgr.yml shape, so that file carries over with at most a rename:
 * `service_config: {type: zookeeper, servers, path}` is the ZooKeeper source, `haproxy.path` the
 * binary; `haproxy.global` / `haproxy.defaults` are ours already. Its file and socket paths mean
 * nothing here (haproxy-pilot runs HAProxy itself): noted and left out.
 */
const PROXYMGR_ALIASES: Record<string, string> = { 'service_config.servers': 'zookeeper.servers', 'service_config.path': 'zookeeper.path', 'haproxy.path': 'haproxy.bin' };
const PROXYMGR_IGNORED: Record<string, string> = {
  'haproxy.config_path': 'haproxy-pilot writes the config to PILOT_RUN_DIR itself',
  'haproxy.socket_path': 'haproxy-pilot talks to HAProxy through its master CLI',
};

/**
 * `haproxy.global` lines of a proxymgr.yml that fight the pilot running HAProxy (master-worker in
 * the foreground, its own master socket): 2.5+ refuses `nbproc`, a `pidfile` or `stats socket`
 * in a directory the container lacks fails the start.
 */
const PROXYMGR_GLOBAL_DROPPED = /^\s*(daemon|master-worker|pidfile|nbproc|stats\s+socket)(\s|$)/;

function carryProxymgrKeys(tree: YamlTree, errors: string[]): void {
  const global = tree.leaves.get('haproxy.global');
  if (global !== undefined && [...tree.leaves.keys()].some((k) => k.startsWith('service_config.'))) {
    const lines = Array.isArray(global.value) ? global.value : [global.value];
    const kept = lines.filter((line) => {
      const m = PROXYMGR_GLOBAL_DROPPED.exec(line);
      if (m) tree.notes.push(`${tree.file}:${global.line} haproxy.global: ${JSON.stringify(line)} (ProxyMgr) is left out: haproxy-pilot runs HAProxy itself (master-worker, in the foreground, its own master socket)`);
      return !m;
    });
    tree.leaves.set('haproxy.global', { ...global, value: kept });
  }
  const type = tree.leaves.get('service_config.type');
  if (type !== undefined) {
    tree.leaves.delete('service_config.type');
    if (type.value !== 'zookeeper') errors.push(`${tree.file}:${type.line} service_config.type: ${JSON.stringify(type.value)} is not zookeeper (the only service_config type ProxyMgr has)`);
  }
  for (const [from, to] of Object.entries(PROXYMGR_ALIASES)) {
    const leaf = tree.leaves.get(from);
    if (leaf === undefined) continue;
    tree.leaves.delete(from);
    if (tree.leaves.has(to)) errors.push(`${tree.file}:${leaf.line} ${from}: set twice, here and as ${to}`);
    else tree.leaves.set(to, leaf);
  }
  for (const [key, why] of Object.entries(PROXYMGR_IGNORED)) {
    const leaf = tree.leaves.get(key);
    if (leaf === undefined) continue;
    tree.leaves.delete(key);
    tree.notes.push(`${tree.file}:${leaf.line} ${key} (ProxyMgr) is ignored: ${why}`);
  }
}

/** `file:line path` for error messages. */
export function yamlWhere(tree: YamlTree, path: string): string {
  const leaf = tree.leaves.get(path);
  return `${tree.file}:${leaf?.line ?? 1} ${path}`;
}

/** Every leaf the loader never read: unknown keys (typos), reported with their lines. */
export function unusedLeaves(tree: YamlTree): string[] {
  const out: string[] = [];
  for (const [path, leaf] of tree.leaves) {
    if (!tree.used.has(path)) out.push(`${tree.file}:${leaf.line} ${path}: unknown setting`);
  }
  return out;
}
