/**
 * The planner (pure): what is the least disruptive way to go from what HAProxy runs to what is
 * desired? Server address/port, weight and admin-state changes go through the runtime API with no
 * reload; a server that disappears is put in maint (as ProxyMgr does) and dropped at the next
 * reload, since the written file no longer has it; a server that comes back is made ready again.
 * Anything the runtime API cannot express (a new server or backend, a DNS host name, a route,
 * a mode, anything else in the file) needs a reload.
 */
import { isIP } from 'node:net';
import type { DiscoveredBackend, DiscoveredServer } from '../state/model.js';
import { SECTION_KEYWORDS } from '../haproxy/config-words.js';

export type ServerState = 'ready' | 'drain' | 'maint';

export interface RuntimeOp {
  backend: string;
  server: string;
  kind: 'addr' | 'state' | 'weight';
  /** The runtime API command (`set server b/s …`). */
  command: string;
}

export type Plan = { kind: 'none' } | { kind: 'runtime'; ops: RuntimeOp[] } | { kind: 'reload'; reason: string };

/**
 * A server as the running HAProxy has it. `removed`: no longer desired, kept by HAProxy in maint
 * until the next reload.
 */
export interface RunningServer extends DiscoveredServer {
  removed?: boolean;
}

export interface RunningBackend extends Omit<DiscoveredBackend, 'servers'> {
  servers: RunningServer[];
}

export interface PlanInput {
  /** What the running HAProxy holds (after earlier runtime ops), from runningAfter(). */
  running: readonly RunningBackend[];
  next: readonly DiscoveredBackend[];
  /** Whether anything in the rendered file other than server lines changed (configSkeleton). */
  restChanged: boolean;
}

const stateOf = (s: DiscoveredServer): ServerState => s.state ?? 'ready';
// HAProxy's default weight when the line has none.
const weightOf = (s: DiscoveredServer): number => s.weight ?? 1;

function sameRoute(a: DiscoveredBackend['route'], b: DiscoveredBackend['route']): boolean {
  return (a?.domain ?? null) === (b?.domain ?? null) && (a?.pathPrefix ?? null) === (b?.pathPrefix ?? null) && (a?.port ?? null) === (b?.port ?? null);
}

function sameDns(a: DiscoveredBackend['dns'], b: DiscoveredBackend['dns']): boolean {
  const key = (d: DiscoveredBackend['dns']): string => (d ?? []).map((x) => `${x.name}:${x.port}/${x.slots}`).join(',');
  return key(a) === key(b);
}

function cmd(backend: string, server: string, rest: string): string {
  return `set server ${backend}/${server} ${rest}`;
}

function serverOps(backend: string, have: RunningServer, want: DiscoveredServer): RuntimeOp[] {
  const ops: RuntimeOp[] = [];
  const op = (kind: RuntimeOp['kind'], rest: string) => ops.push({ backend, server: want.name, kind, command: cmd(backend, want.name, rest) });
  // A removed server sits in maint whatever its last desired state was.
  const haveState = have.removed ? 'maint' : stateOf(have);
  const wantState = stateOf(want);
  // Taking traffic away goes first and giving it back goes last, so that no request reaches a
  // server at an address or weight that is about to change.
  const stateChange = haveState !== wantState;
  if (stateChange && wantState !== 'ready') op('state', `state ${wantState}`);
  if (have.host !== want.host || have.port !== want.port) op('addr', `addr ${want.host} port ${want.port}`);
  if (weightOf(have) !== weightOf(want)) op('weight', `weight ${weightOf(want)}`);
  if (stateChange && wantState === 'ready') op('state', 'state ready');
  return ops;
}

export function planApply({ running, next, restChanged }: PlanInput): Plan {
  if (restChanged) return { kind: 'reload', reason: 'the config changed beyond server addresses, weights and states' };
  const runningByName = new Map(running.map((b) => [b.name, b]));
  const nextNames = new Set(next.map((b) => b.name));
  for (const b of running) if (!nextNames.has(b.name)) return { kind: 'reload', reason: `backend ${b.name} removed` };
  const ops: RuntimeOp[] = [];
  for (const b of next) {
    const have = runningByName.get(b.name);
    if (!have) return { kind: 'reload', reason: `backend ${b.name} added` };
    if (have.mode !== b.mode) return { kind: 'reload', reason: `backend ${b.name} mode changed` };
    if (!sameRoute(have.route, b.route)) return { kind: 'reload', reason: `backend ${b.name} route changed` };
    if (!sameDns(have.dns, b.dns)) return { kind: 'reload', reason: `backend ${b.name} DNS discovery changed` };
    const haveServers = new Map(have.servers.map((s) => [s.name, s]));
    const wantNames = new Set(b.servers.map((s) => s.name));
    for (const s of b.servers) {
      const h = haveServers.get(s.name);
      if (!h) return { kind: 'reload', reason: `server ${b.name}/${s.name} added` };
      // `set server … addr` takes an IP only (2.6 answers "Invalid addr" for a name).
      if ((h.host !== s.host || h.port !== s.port) && isIP(s.host) === 0) {
        return { kind: 'reload', reason: `server ${b.name}/${s.name} moved to host name ${s.host}` };
      }
      ops.push(...serverOps(b.name, h, s));
    }
    for (const h of have.servers) {
      if (wantNames.has(h.name) || h.removed || stateOf(h) === 'maint') continue;
      ops.push({ backend: b.name, server: h.name, kind: 'state', command: cmd(b.name, h.name, 'state maint') });
    }
  }
  return ops.length === 0 ? { kind: 'none' } : { kind: 'runtime', ops };
}

const clone = (b: DiscoveredBackend): RunningBackend => ({ ...b, servers: b.servers.map((s) => ({ ...s })) });

/**
 * What HAProxy holds once `next` is applied: after a reload exactly `next`; after runtime ops
 * `next` plus the servers it dropped, still configured in the worker and now in maint.
 */
export function runningAfter(kind: 'reload' | 'runtime', running: readonly RunningBackend[], next: readonly DiscoveredBackend[]): RunningBackend[] {
  const out = next.map(clone);
  if (kind === 'reload') return out;
  const before = new Map(running.map((b) => [b.name, b]));
  for (const b of out) {
    const wanted = new Set(b.servers.map((s) => s.name));
    for (const h of before.get(b.name)?.servers ?? []) {
      if (!wanted.has(h.name)) b.servers.push({ ...h, removed: true });
    }
  }
  return out;
}

/**
 * The rendered file with the server lines of discovered backends reduced to their shape: name,
 * address, `weight N` and `disabled` masked, and identical masked lines kept once per section.
 * Two renders whose skeletons are equal differ only in what the runtime API can change (and in
 * which servers exist, which planApply() judges from the backend lists).
 */
export function configSkeleton(text: string, backendNames: Iterable<string>): string {
  const names = new Set(backendNames);
  const out: string[] = [];
  let inDiscovered = false;
  let seen = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const [kind = '', name = ''] = line.split(/\s+/);
    if (SECTION_KEYWORDS.has(kind)) {
      inDiscovered = (kind === 'backend' || kind === 'listen') && names.has(name);
      seen = new Set();
      out.push(line);
      continue;
    }
    if (inDiscovered && /^server\s/.test(line)) {
      const tokens = line.split(/\s+/);
      const rest: string[] = [];
      for (let i = 3; i < tokens.length; i++) {
        const t = tokens[i] as string;
        if (t === 'weight') i++;
        else if (t !== 'disabled' && t !== 'enabled') rest.push(t);
      }
      const masked = ['server', '<name>', '<addr>', ...rest].join(' ');
      if (!seen.has(masked)) out.push(masked);
      seen.add(masked);
      continue;
    }
    if (line !== '' && !line.startsWith('#')) out.push(line);
  }
  return out.join('\n');
}
