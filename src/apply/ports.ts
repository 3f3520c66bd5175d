/**
 * Bind-port preflight. `haproxy -c` does not bind, so a candidate that listens on a port some
 * other process holds passes the check, and the reload then fails to bind: HAProxy 2.6 pauses
 * every listener of the running worker for about 2 s while the new one retries, then keeps the
 * old one (measured here, DESIGN.md). So before a reload we try to bind, ourselves, each TCP
 * port the candidate adds; ports the running config already binds are HAProxy's own and are
 * passed to the new worker.
 */
import { createServer } from 'node:net';
import { PilotError } from '../errors.js';
import { configSections } from '../haproxy/config-words.js';

export interface BindPort {
  /** Normalised address: '0.0.0.0' for `:80`/`*:80`, '::' for `:::80`, else the literal. */
  address: string;
  port: number;
}

/** Try to bind `p` and release it at once; rejects with the socket error when it cannot. */
export type TryBind = (p: BindPort) => Promise<void>;

const SKIPPED_PREFIX = /^(unix|abns|fd|sockpair|udp[46]?|quic[46]?|rhttp|uxst|uxdg)@/i;
const TCP_PREFIX = /^(ipv4|ipv6|tcp|tcp4|tcp6)@/i;
// Port ranges are legal (`:8000-8010`); cap the expansion so a typo cannot make us bind 60k ports.
const MAX_RANGE = 256;

function normaliseAddress(raw: string, family: 'ipv4' | 'ipv6' | undefined): string {
  let a = raw;
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a === '' || a === '*') return family === 'ipv6' ? '::' : '0.0.0.0';
  return a.toLowerCase();
}

/** One address of a bind line (`:80`, `0.0.0.0:80`, `:::443`, `ipv6@::1:8080`), or [] when not TCP. */
function parseBindAddress(token: string): BindPort[] {
  let t = token;
  // A `$` left after word splitting is an environment expansion HAProxy would do: unknowable here.
  if (t === '' || t.includes('$')) return [];
  if (t.startsWith('/') || SKIPPED_PREFIX.test(t)) return [];
  let family: 'ipv4' | 'ipv6' | undefined;
  const prefix = TCP_PREFIX.exec(t);
  if (prefix?.[1]) {
    const p = prefix[1].toLowerCase();
    if (p.endsWith('6')) family = 'ipv6';
    else if (p.endsWith('4')) family = 'ipv4';
    t = t.slice(prefix[0].length);
  }
  // HAProxy splits at the last ':' (str2sa_range), which is how `:::443` means [::]:443.
  const colon = t.lastIndexOf(':');
  if (colon < 0) return [];
  const address = normaliseAddress(t.slice(0, colon), family);
  const portText = t.slice(colon + 1);
  const range = /^(\d+)(?:-(\d+))?$/.exec(portText);
  if (!range?.[1]) return [];
  const low = Number(range[1]);
  const high = range[2] === undefined ? low : Number(range[2]);
  if (low < 1 || high > 65535 || high < low || high - low >= MAX_RANGE) return [];
  const out: BindPort[] = [];
  for (let port = low; port <= high; port++) out.push({ address, port });
  return out;
}

const BIND: ReadonlySet<string> = new Set(['bind']);

/** Every TCP address:port that a `bind` line of `cfgText` listens on, deduplicated, in order. */
export function bindPorts(cfgText: string): BindPort[] {
  const seen = new Set<string>();
  const out: BindPort[] = [];
  for (const section of configSections(cfgText, BIND)) {
    for (const { words } of section.body) {
      if (words[0] !== 'bind' || words[1] === undefined) continue;
      for (const token of words[1].split(',')) {
        for (const p of parseBindAddress(token)) {
          const key = portKey(p);
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(p);
        }
      }
    }
  }
  return out;
}

export function portKey(p: BindPort): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

const isWildcard = (a: string): boolean => a === '0.0.0.0' || a === '::';

/**
 * Whether the running config already holds this port: the same address, or a wildcard on either
 * side. HAProxy binds with SO_REUSEPORT and hands its listeners to the new worker, while our test
 * bind cannot set SO_REUSEPORT (Node 20) and would collide with HAProxy itself.
 */
function coveredBy(p: BindPort, current: readonly BindPort[]): boolean {
  return current.some((c) => c.port === p.port && (c.address === p.address || isWildcard(c.address) || isWildcard(p.address)));
}

export interface PortCheckOptions {
  tryBind?: TryBind;
}

/**
 * Refuses a candidate whose new ports are taken: PilotError('E_PORT_BUSY') naming the first busy
 * address:port (and all of them in details). Returns the ports it tested.
 */
export async function checkPortsFree(
  newPorts: readonly BindPort[],
  currentPorts: readonly BindPort[],
  options: PortCheckOptions = {},
): Promise<BindPort[]> {
  const tryBind = options.tryBind ?? tryBindTcp;
  const toTest = newPorts.filter((p) => !coveredBy(p, currentPorts));
  const busy: { port: string; error: string }[] = [];
  for (const p of toTest) {
    try {
      await tryBind(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EACCES (a port < 1024 while we are not root) is not proof that HAProxy cannot bind it: it
      // may have CAP_NET_BIND_SERVICE. EADDRINUSE/EADDRNOTAVAIL would fail HAProxy's bind too.
      if (code === 'EACCES' || code === 'EPERM') continue;
      busy.push({ port: portKey(p), error: code ?? (err as Error).message });
    }
  }
  const first = busy[0];
  if (first) {
    const why = first.error === 'EADDRINUSE' ? 'is already in use by another process' : `cannot be bound (${first.error})`;
    throw new PilotError('E_PORT_BUSY', `candidate config binds ${first.port}, which ${why}; not reloading (HAProxy would pause all listeners while retrying)`, {
      details: { busy },
    });
  }
  return toTest;
}

/** The real probe: listen on the address:port without SO_REUSEPORT, then close. */
export const tryBindTcp: TryBind = (p) =>
  new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: p.address, port: p.port, exclusive: true, ipv6Only: false }, () => {
      server.close(() => resolve());
    });
  });
