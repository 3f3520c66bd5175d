/**
 * Ports below 1024 in a locked-down container. HAProxy runs as haproxy-pilot's child with the
 * same user (uid 99 in the image), so it may bind a port below
 * net.ipv4.ip_unprivileged_port_start (1024 unless the runtime lowers it) only with
 * CAP_NET_BIND_SERVICE, and it gets that capability only:
 *
 *   - as root: from the bounding set (`--cap-drop=ALL` empties it);
 *   - as another user: from the ambient set (podman puts `--cap-add` capabilities there for a
 *     non-root user; Docker and Kubernetes do not), or from a file capability on the haproxy
 *     binary (`setcap cap_net_bind_service=+ep`), limited by the bounding set.
 *
 * HAProxy keeps what it gets when it does not change user itself (measured on 3.0: CapEff 0x400 in
 * the master and the workers with `--cap-drop=ALL --cap-add=NET_BIND_SERVICE` under podman).
 * Without it, HAProxy stops at start with "cannot bind socket (Permission denied)" and the pilot
 * with it; this module says before that which port, which proxy and how to fix it, and refuses a
 * later candidate that adds such a port (as the port preflight refuses a busy one).
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, isAbsolute, join } from 'node:path';
import { PilotError } from '../errors.js';
import { configSections } from '../haproxy/config-words.js';
import { bindPorts, checkPortsFree, portKey, type BindPort } from '../apply/ports.js';

const CAP_NET_BIND_SERVICE = 10;

/** What decides whether HAProxy, started by this process, may bind a port below 1024. */
export interface BindAbility {
  /** net.ipv4.ip_unprivileged_port_start of this network namespace (1024 when unreadable). */
  unprivilegedPortStart: number;
  euid: number;
  /** CapBnd, CapAmb and CapInh of this process have CAP_NET_BIND_SERVICE. */
  bounding: boolean;
  ambient: boolean;
  inheritable: boolean;
  /** The haproxy binary carries CAP_NET_BIND_SERVICE as a file capability with the effective bit; undefined: unknown. */
  fileCap: boolean | undefined;
  /** The haproxy binary, resolved. */
  haproxyPath?: string;
}

/** Whether HAProxy, our child, can bind `port`. */
export function canBind(port: number, a: BindAbility): boolean {
  if (port >= a.unprivilegedPortStart) return true;
  // root: execve gives root the bounding set (and what it inherits).
  if (a.euid === 0) return a.bounding || a.inheritable;
  if (a.ambient) return true;
  // A file capability with the effective bit: granted when the bounding set allows it. Unknown
  // (the binding to libc failed): assume it may, and let HAProxy say.
  return a.fileCap === undefined ? true : a.fileCap && a.bounding;
}

export interface LowPort {
  port: BindPort;
  /** `frontend web`, `listen stats`, … (unknown at the preflight, which sees ports only). */
  proxy?: string;
}

/** The ports of `cfgText` HAProxy could not bind, with the proxy that binds each. */
export function deniedPorts(cfgText: string, a: BindAbility, among?: readonly BindPort[]): LowPort[] {
  const wanted = among ? new Set(among.map(portKey)) : undefined;
  const out: LowPort[] = [];
  for (const s of configSections(cfgText)) {
    if (!s.body.some((l) => l.words[0] === 'bind')) continue;
    for (const p of bindPorts([s.header.raw, ...s.body.map((l) => l.raw)].join('\n'))) {
      if (wanted && !wanted.has(portKey(p))) continue;
      if (!canBind(p.port, a)) out.push({ port: p, proxy: `${s.keyword} ${s.name}`.trim() });
    }
  }
  return out;
}

/** The one message for every place that refuses: which port, why, and the fixes. */
export function deniedMessage(denied: readonly LowPort[], a: BindAbility): string {
  const list = denied.map((d) => (d.proxy ? `${portKey(d.port)} (${d.proxy})` : portKey(d.port))).join(', ');
  const who = a.euid === 0 ? 'root without CAP_NET_BIND_SERVICE in its bounding set' : `uid ${a.euid} without CAP_NET_BIND_SERVICE`;
  return (
    `HAProxy cannot listen on ${list}: ports below ${a.unprivilegedPortStart} (net.ipv4.ip_unprivileged_port_start) need CAP_NET_BIND_SERVICE, and HAProxy runs as ${who}. ` +
    'Fix: run the container with --sysctl net.ipv4.ip_unprivileged_port_start=0 (Docker, podman; Kubernetes: securityContext.sysctls), ' +
    'or with --cap-add=NET_BIND_SERVICE where the runtime passes it to a non-root user (podman does; Docker and Kubernetes do not), ' +
    'or listen on a port of 1024 or more and publish it as the low one (-p 80:8080)'
  );
}

function capBit(status: string, field: string): boolean {
  const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)`, 'mi').exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << BigInt(CAP_NET_BIND_SERVICE))) !== 0n;
}

/** `bin` as execvp would find it. */
export function resolveBin(bin: string, path = process.env.PATH ?? ''): string | undefined {
  if (bin.includes('/')) return isAbsolute(bin) ? bin : join(process.cwd(), bin);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * security.capability of a file (struct vfs_cap_data: le32 magic_etc, then le32 permitted and
 * inheritable per 32 capabilities): whether it grants CAP_NET_BIND_SERVICE, effective.
 * undefined when it cannot be read (no libc binding).
 */
export function fileHasBindCap(path: string): boolean | undefined {
  let getxattr: (path: string, name: string, value: Buffer, size: number) => number;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    getxattr = koffi.load('libc.so.6').func('long getxattr(const char *path, const char *name, _Out_ void *value, size_t size)') as typeof getxattr;
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(24);
  const n = getxattr(path, 'security.capability', buf, buf.length);
  if (n < 8) return false; // -1: ENODATA (no file capabilities), or nothing usable
  return parseVfsCap(buf.subarray(0, n));
}

export function parseVfsCap(data: Buffer): boolean {
  if (data.length < 8) return false;
  const magic = data.readUInt32LE(0);
  const effective = (magic & 0x000001) !== 0;
  const permitted = data.readUInt32LE(4);
  return effective && (permitted & (1 << CAP_NET_BIND_SERVICE)) !== 0;
}

export function readBindAbility(haproxyBin: string): BindAbility {
  let start = 1024;
  try {
    start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    /* kernels before 4.11: the classic 1024 */
  }
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    /* not Linux: treat as no capability */
  }
  const haproxyPath = resolveBin(haproxyBin);
  return {
    unprivilegedPortStart: Number.isFinite(start) ? start : 1024,
    euid: process.geteuid?.() ?? 0,
    bounding: capBit(status, 'CapBnd'),
    ambient: capBit(status, 'CapAmb'),
    inheritable: capBit(status, 'CapInh'),
    fileCap: haproxyPath ? fileHasBindCap(haproxyPath) : false,
    ...(haproxyPath ? { haproxyPath } : {}),
  };
}

/** At start: the first config's ports HAProxy could not bind are a configuration error (exit 78). */
export function assertCanBind(cfgText: string, a: BindAbility): void {
  const denied = deniedPorts(cfgText, a);
  if (denied.length === 0) return;
  throw new PilotError('E_CONFIG', deniedMessage(denied, a), { details: { denied: denied.map((d) => ({ port: portKey(d.port), proxy: d.proxy })), ability: a } });
}

/**
 * The port preflight of later candidates (transaction's `ports`): a new port HAProxy could not
 * bind is refused like a busy one (E_PORT_BUSY, with the same details), before any reload.
 */
export function privilegedPortChecker(a: BindAbility): (next: BindPort[], current: BindPort[]) => Promise<unknown> {
  return async (next, current) => {
    // Ports the running HAProxy holds are passed to the new worker: only new ones need binding.
    const have = new Set(current.map((p) => p.port));
    const added = next.filter((p) => !have.has(p.port) && !canBind(p.port, a));
    if (added.length > 0) {
      throw new PilotError('E_PORT_BUSY', `candidate config: ${deniedMessage(added.map((port) => ({ port })), a)}; not reloading`, {
        details: { busy: added.map((p) => ({ port: portKey(p), error: 'EACCES' })) },
      });
    }
    return checkPortsFree(next, current);
  };
}
