/**
 * The proxy names and listening ports the configuration itself uses, with who uses them, derived
 * in one place from what the templates render: the stats page, the services, the demo, the
 * frontends discovered backends share (seed 001's :80/:443, seed 002's :5000) and the pilot's
 * own listeners. Discovery may not take them (state/merge.ts), and two of the operator's own
 * settings on one port are a configuration error naming both.
 */
import { PilotError } from '../errors.js';
import type { PilotConfig } from '../config/types.js';

/** Seed 002's frontend for backends without a route. */
export const DEFAULT_FRONTEND_PORT = 5000;
/** Seed 001's routing frontend. */
export const HTTP_ROUTES_PORT = 80;
export const HTTPS_ROUTES_PORT = 443;

export interface PortUse {
  /** '' for all addresses. */
  address: string;
  port: number;
  /** Who binds it, for messages: `the stats page (STATS_PORT)`. */
  owner: string;
}

export interface Reserved {
  /** Proxy name → who uses it. */
  names: ReadonlyMap<string, string>;
  ports: readonly PortUse[];
}

const isAny = (a: string): boolean => a === '' || a === '0.0.0.0' || a === '::' || a === '*';

/** Whether two binds collide: same port, and the same address or a wildcard on either side. */
export function portsCollide(a: Pick<PortUse, 'address' | 'port'>, b: Pick<PortUse, 'address' | 'port'>): boolean {
  return a.port === b.port && (a.address === b.address || isAny(a.address) || isAny(b.address));
}

/** The user of `port` (on `address`), if any. */
export function portOwner(reserved: Reserved, use: Pick<PortUse, 'address' | 'port'>): string | undefined {
  return reserved.ports.find((p) => portsCollide(p, use))?.owner;
}

/**
 * What the configuration reserves. `listeners` are the pilot's own HTTP listeners (control
 * server, push endpoints). Throws E_CONFIG when two of the operator's settings bind one port.
 */
export function reservedBy(
  config: Pick<PilotConfig, 'services' | 'stats'>,
  demo: { port: number; backendPort: number } | undefined,
  listeners: readonly PortUse[] = [],
): Reserved {
  const names = new Map<string, string>();
  const ports: PortUse[] = [];
  const clashes: string[] = [];
  const listenerUses = new Set<PortUse>();
  const bind = (use: PortUse): void => {
    const other = ports.find((p) => portsCollide(p, use));
    if (other) clashes.push(`port ${use.port} is used twice: by ${other.owner} and by ${use.owner}`);
    else ports.push(use);
  };
  const name = (n: string, owner: string): void => void names.set(n, owner);

  if (config.stats.port > 0) {
    name('stats', 'the stats page');
    bind({ address: '', port: config.stats.port, owner: 'the stats page (STATS_PORT)' });
  }
  for (const s of config.services) {
    name(s.name, `service ${s.name}`);
    bind({ address: s.bind.address, port: s.bind.port, owner: `service ${s.name} (${s.bindWhere ?? s.origin})` });
  }
  if (demo) {
    name('demo', 'the demo frontend');
    name('demo_backend', 'the demo backend');
    bind({ address: '', port: demo.port, owner: 'the demo frontend (PILOT_DEMO_PORT)' });
    bind({ address: '127.0.0.1', port: demo.backendPort, owner: 'the demo helper program' });
  }
  for (const l of listeners) {
    // Listeners on one address and port are one server (control/listeners.ts shares it: the
    // control server and Sidecar's pushes both default to 7778): one use, with both owners.
    const shared = ports.find((p) => listenerUses.has(p) && p.address === l.address && p.port === l.port);
    if (shared) {
      shared.owner = `${shared.owner} and ${l.owner}`;
      continue;
    }
    const use = { ...l };
    listenerUses.add(use);
    bind(use);
  }
  if (clashes.length > 0) throw new PilotError('E_CONFIG', clashes.join('\n'), { details: { errors: clashes } });

  // Shared by discovered backends: not the operator's, so a service may use them when no
  // discovered backend needs them — but discovery never takes them for a listen of its own.
  name('fe_http', "haproxy-pilot's HTTP routing frontend");
  name('fe_default', `haproxy-pilot's :${DEFAULT_FRONTEND_PORT} frontend`);
  for (const [port, owner] of [
    [HTTP_ROUTES_PORT, 'the HTTP routing frontend (seed 001)'],
    [HTTPS_ROUTES_PORT, 'the HTTPS routing frontend (seed 001)'],
    [DEFAULT_FRONTEND_PORT, `the :${DEFAULT_FRONTEND_PORT} frontend (seed 002)`],
  ] as const) {
    if (!ports.some((p) => portsCollide(p, { address: '', port }))) ports.push({ address: '', port, owner });
  }
  return { names, ports };
}
