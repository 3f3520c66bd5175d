/**
 * Sidecar state → backends, grouped exactly as haproxy-api groups it (shared reference A3, "How
 * services become frontends/backends"), with three deliberate differences:
 *
 *  1. Status. haproxy-api keeps only Alive instances. Here Alive (0) is a ready server, Draining (4)
 *     a server in `drain` (in-flight requests finish, no new ones), and Unhealthy (2), Unknown (3)
 *     and Tombstone (1, and any unknown integer, which Sidecar also prints as Tombstone) a server
 *     in `maint`: an instance that comes back is a runtime state change, not a reload.
 *     Tombstones are dropped once they are TOMBSTONE_KEEP_MS older than the state's LastChanged
 *     (Sidecar itself keeps them 3 h; a redeploy creates new IDs, so keeping every old ID for 3 h
 *     would pile up dead servers). Measured against the state's own LastChanged, not our clock:
 *     the layout stays pure and a tombstone only leaves when something else changed anyway.
 *  2. Order. haproxy-api walks Go maps (random order), so "the first instance" of a service and
 *     the winning ProxyMode are arbitrary. Here instances are visited sorted by host, then ID, and
 *     the reference instance of a service is its first Alive one (else Draining, else any), so a
 *     leftover tombstone with old ports cannot push the live instances out.
 *  3. Conflicts. Where haproxy-api would write a config HAProxy refuses (two services on one
 *     ServicePort, two names sanitising to the same proxy name, which implies the same port,
 *     duplicate server names), the later one (by name) is skipped with a reason and the rest is served.
 *
 * Naming: proxy `sanitize(Name)-ServicePort`, sanitize = every char outside [a-z0-9-] → '-'
 * (haproxy-api's sanitizeName). HAProxy-pilot's names must start with a letter or digit, so the
 * leading dashes such a name can get (`_svc`, `Orders`) are dropped: `Orders` → `rders-8080`, where
 * haproxy-api wrote `-rders-8080`. Servers are `<Hostname>-<ID>` made safe with toName().
 *
 * Instances with no tcp port whose ServicePort is non-zero are not proxied (Sidecar's "not exported
 * through the proxy") and are not reported as skipped: that is the normal case for most containers.
 * Pure: never logs, never reads a clock.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DiscoveredBackend, DiscoveredServer } from '../../state/model.js';
import type { LayoutResult, Skipped } from '../../state/layout.js';
import { showValue, toName, validHost, validName, validPort } from '../../state/validate.js';
import { describeError } from '../../errors.js';
import { parseGoTime, pathPart, statusName, STATUS, type ServicesState, type SidecarService } from './state.js';

/** A backend with the contract's `route.bindAddress` (src/state/model.ts gains it in the refactor). */
export type SidecarBackend = DiscoveredBackend & {
  route?: NonNullable<DiscoveredBackend['route']> & { port?: number; bindAddress?: string };
};

export interface SidecarLayoutOptions {
  /** Snapshot source name stamped on the backends (`sidecar`). */
  source: string;
  /** haproxy-api's `[haproxy] bind_ip` / SIDECAR_BIND_IP: the IP each listen binds; absent = all. */
  bindIp?: string;
  /** haproxy-api's `use_hostnames`: servers at the service's Hostname instead of the port's IP. */
  useHostnames?: boolean;
  /** The previous result's backends: an unchanged backend is returned as the same object. */
  previous?: readonly DiscoveredBackend[];
}

export interface SidecarLayoutResult extends LayoutResult {
  backends: SidecarBackend[];
}

/** How long a tombstone stays as a `maint` server (see the file comment). */
export const TOMBSTONE_KEEP_MS = 10 * 60_000;

/** haproxy-api's sanitizeName. */
export function sanitizeName(name: string): string {
  return name.replace(/[^a-z0-9-]/g, '-');
}

interface Instance {
  key: string;
  svc: SidecarService;
  mode: 'http' | 'tcp';
  state?: 'drain' | 'maint';
  rank: number;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function modeOf(proxyMode: string): 'http' | 'tcp' | undefined {
  // Sidecar's default is http (no ProxyMode label); an empty value comes from older Sidecars.
  if (proxyMode === '' || proxyMode === 'http' || proxyMode === 'ws') return 'http';
  if (proxyMode === 'tcp') return 'tcp';
  return undefined;
}

function servicePortsKey(svc: SidecarService): string {
  return svc.Ports.map((p) => p.ServicePort)
    .sort((a, b) => a - b)
    .join(',');
}

export function sidecarLayout(state: ServicesState, options: SidecarLayoutOptions): SidecarLayoutResult {
  const skipped: Skipped[] = [];
  const skip = (key: string, reason: string): void => void skipped.push({ key, reason: `${key}: ${reason}` });
  const refNs = parseGoTime(state.LastChanged) ?? 0n;
  const keepNs = BigInt(TOMBSTONE_KEEP_MS) * 1_000_000n;

  // 1. Instances, sorted by host then ID, with their mode and state.
  const byName = new Map<string, Instance[]>();
  for (const host of Object.keys(state.Servers).sort(byText)) {
    const services = state.Servers[host]!.Services;
    for (const id of Object.keys(services).sort(byText)) {
      const svc = services[id]!;
      const key = `Servers/${pathPart(host)}/Services/${pathPart(id)}`;
      if (!svc.Ports.some((p) => p.Type === 'tcp' && p.ServicePort !== 0)) continue;
      const alive = svc.Status === STATUS.ALIVE;
      const draining = svc.Status === STATUS.DRAINING;
      const tombstone = !alive && !draining && svc.Status !== STATUS.UNHEALTHY && svc.Status !== STATUS.UNKNOWN;
      if (tombstone) {
        const updated = parseGoTime(svc.Updated);
        if (updated === undefined || refNs - updated > keepNs) continue;
      }
      const mode = modeOf(svc.ProxyMode);
      if (mode === undefined) {
        skip(key, `ProxyMode ${showValue(svc.ProxyMode)} is not http, tcp or ws`);
        continue;
      }
      const inst: Instance = { key, svc, mode, rank: alive ? 0 : draining ? 1 : tombstone ? 3 : 2 };
      if (draining) inst.state = 'drain';
      else if (!alive) inst.state = 'maint';
      const list = byName.get(svc.Name) ?? [];
      list.push(inst);
      byName.set(svc.Name, list);
    }
  }

  // 2. Per service name: the reference instance fixes the ServicePorts and the mode.
  const backends: SidecarBackend[] = [];
  const portOwner = new Map<number, string>();
  for (const name of [...byName.keys()].sort(byText)) {
    const group = byName.get(name)!;
    const ref = [...group].sort((a, b) => a.rank - b.rank)[0]!;
    const refPorts = servicePortsKey(ref.svc);
    const members: Instance[] = [];
    for (const inst of group) {
      if (servicePortsKey(inst.svc) !== refPorts) {
        skip(inst.key, `service ${showValue(name)} has ServicePorts [${servicePortsKey(inst.svc)}] but ${ref.key} has [${refPorts}] (haproxy-api's mismatched-ports rule)`);
        continue;
      }
      members.push(inst);
    }
    const exported = [...new Set(ref.svc.Ports.filter((p) => p.Type === 'tcp' && p.ServicePort !== 0).map((p) => p.ServicePort))].sort((a, b) => a - b);
    for (const servicePort of exported) {
      let proxyName: string;
      try {
        validPort(`ServicePort`, servicePort);
        proxyName = validName('proxy name', `${sanitizeName(name)}-${servicePort}`.replace(/^-+/, ''));
      } catch (err) {
        skip(ref.key, `service ${showValue(name)} port ${servicePort}: ${describeError(err)}`);
        continue;
      }
      const takenPort = portOwner.get(servicePort);
      if (takenPort !== undefined) {
        skip(ref.key, `service ${showValue(name)}: ServicePort ${servicePort} is already served by backend ${takenPort}`);
        continue;
      }
      // The proxy name ends in the ServicePort, so two names that sanitise alike collide here too.
      portOwner.set(servicePort, proxyName);
      backends.push(buildBackend(proxyName, servicePort, ref.mode, members, options, skip));
    }
  }

  // 3. Structural sharing: an unchanged backend is the previous object.
  const previous = new Map((options.previous ?? []).map((b) => [b.name, b]));
  const shared = backends.map((b) => {
    const old = previous.get(b.name);
    return old !== undefined && isDeepStrictEqual(old, b) ? (old as SidecarBackend) : b;
  });
  return { backends: shared, skipped };
}

function buildBackend(
  name: string,
  servicePort: number,
  mode: 'http' | 'tcp',
  members: readonly Instance[],
  options: SidecarLayoutOptions,
  skip: (key: string, reason: string) => void,
): SidecarBackend {
  const servers: DiscoveredServer[] = [];
  const seen = new Set<string>();
  for (const inst of members) {
    const { svc } = inst;
    // haproxy-api's portFor/ipFor: the first tcp port carrying this ServicePort.
    const port = svc.Ports.find((p) => p.Type === 'tcp' && p.ServicePort === servicePort);
    if (port === undefined) continue;
    try {
      const serverName = validName('server name', toName(`${svc.Hostname}-${svc.ID}`));
      if (seen.has(serverName)) {
        skip(inst.key, `backend ${name}: server name ${serverName} is already used by another instance`);
        continue;
      }
      const address = options.useHostnames || port.IP === '' ? svc.Hostname : port.IP;
      const host = validHost(options.useHostnames || port.IP === '' ? 'Hostname' : 'IP', address);
      const p = validPort('Port', port.Port);
      seen.add(serverName);
      const server: DiscoveredServer = { name: serverName, host, port: p };
      if (inst.state !== undefined) server.state = inst.state;
      servers.push(server);
    } catch (err) {
      skip(inst.key, `backend ${name} (${statusName(svc.Status)}): ${describeError(err)}`);
    }
  }
  servers.sort((a, b) => byText(a.name, b.name));
  const route: NonNullable<SidecarBackend['route']> = { port: servicePort };
  if (options.bindIp !== undefined && options.bindIp !== '') route.bindAddress = options.bindIp;
  return { name, mode, servers, route, source: options.source };
}
