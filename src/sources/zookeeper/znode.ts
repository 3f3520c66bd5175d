/**
 * Grammar shared by the settings and the layout: ZooKeeper connect strings, znode paths, and the
 * `address:port` server names ProxyMgr used. Pure.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { PilotError } from '../../errors.js';
import { validHostPort, showValue } from '../../state/validate.js';

export interface ZkServer {
  host: string;
  port: number;
}

/** ZooKeeper's own default client port, used when a connect-string entry has none. */
export const ZK_DEFAULT_PORT = 2181;

/**
 * `host:port[,host:port…]` (a bare host means port 2181). A chroot suffix (`…/chroot`) is refused:
 * give the full path instead, so every path in logs is the path as stored.
 * Throws PilotError('E_VALUE') naming `what`.
 */
export function parseConnectString(what: string, text: string): ZkServer[] {
  const items = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || items.some((s) => s === '')) throw valueError(what, text, 'a comma list of host:port');
  if (items.some((s) => s.includes('/'))) throw valueError(what, text, 'a comma list of host:port (a chroot suffix is not supported: use the full path)');
  if (items.length > 32) throw valueError(what, text, 'a list of at most 32 servers');
  return items.map((item) => {
    const bare = isIP(item) === 4 || /^[A-Za-z0-9_.-]+$/.test(item);
    return validHostPort(what, bare ? `${item}:${ZK_DEFAULT_PORT}` : item);
  });
}

/** The connect string the client gets: `host:port,…` in the given order, IPv6 in brackets. */
export function connectString(servers: readonly ZkServer[]): string {
  return servers.map((s) => `${isIP(s.host) === 6 ? `[${s.host}]` : s.host}:${s.port}`).join(',');
}

/**
 * An absolute znode path: '/', or '/a/b' without a trailing '/', empty, '.' or '..' segments,
 * of printable ASCII without spaces (stricter than ZooKeeper, so a path is safe in every log line).
 */
export function validZnodePath(what: string, value: string): string {
  const ok =
    value === '/' ||
    (/^(?:\/[\x21-\x7e]+)+$/.test(value) && value.length <= 1024 && !value.split('/').slice(1).some((s) => s === '.' || s === '..' || s === ''));
  if (!ok) throw valueError(what, value, 'an absolute znode path such as /service_config');
  return value;
}

/** `parent/child` for znode paths (the root has no trailing slash to add). */
export function childPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/**
 * A child's path as shown in keys and logs: the child name is JSON-quoted when it is not a plain
 * word, so a hostile name (newline, spaces) cannot forge a log line.
 */
export function shownChildPath(parent: string, child: string): string {
  return childPath(parent, /^[\x21-\x7e]{1,200}$/.test(child) ? child : showValue(child));
}

const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/;

/**
 * ProxyMgr named each server `address:port` (the same string as its address), which is what
 * let its runtime diff match `show stat` names; we keep that name. HAProxy allows ':' in names.
 * Names longer than 63 characters (long DNS names) are shortened with a hash suffix so they stay
 * unique; an IPv6 address starting with ':' gets a leading '0' (same address, valid first char).
 */
export function serverName(host: string, port: number): string {
  const h = host.startsWith(':') ? `0${host}` : host;
  const full = `${h}:${port}`;
  if (full.length <= 63) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  const tail = `-${hash}:${port}`;
  return `${h.slice(0, 63 - tail.length).replace(/[^A-Za-z0-9]+$/, '')}${tail}`;
}

export function isServerName(name: string): boolean {
  return SERVER_NAME.test(name);
}

function valueError(what: string, value: string, expected: string): PilotError {
  return new PilotError('E_VALUE', `${what}: ${showValue(value)} is not ${expected}`, { details: { what, expected } });
}
