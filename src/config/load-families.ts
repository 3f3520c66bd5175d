/** PilotConfig's programs, resolvers and services, from their env families and yaml maps. */
import { validHost, validHostPort, validName, validPath } from '../state/validate.js';
import { PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY } from './env-table.js';
import { findOption, members, option, optionWhere, parseCommand, type Member } from './families.js';
import type { Layers } from './layers.js';
import { list } from './parse.js';
import type { ProgramSpec, ResolverSpec, RestartPolicy, ServiceSpec } from './types.js';

/** AWS's VPC resolver, reachable from every instance (seed 003). */
export const AWS_RESOLVER = { host: '169.254.169.253', port: 53 } as const;
/** Name of the resolvers block added when a DNS service names none and none is defined. */
export const SYSTEM_RESOLVER = 'system';

function checkedName(L: Layers, m: Member): boolean {
  try {
    validName(m.origin.replace(/^env /, ''), m.name);
    return true;
  } catch (err) {
    L.fail(err);
    return false;
  }
}

export function loadPrograms(L: Layers): ProgramSpec[] {
  const out: ProgramSpec[] = [];
  for (const m of members(L, PROGRAM_FAMILY)) {
    if (!checkedName(L, m)) continue;
    const found = findOption(L, PROGRAM_FAMILY, m, '');
    if (!found) {
      L.errors.push(`${optionWhere(L, PROGRAM_FAMILY, m, '')}: a program needs a command`);
      continue;
    }
    let command: string[] = [];
    try {
      command = parseCommand(found);
    } catch (err) {
      L.fail(err, found.where);
    }
    if (command.length === 0) {
      L.errors.push(`${found.where}: empty command`);
      continue;
    }
    if (command.some((a) => a.includes('\0'))) {
      L.errors.push(`${found.where}: the command contains a NUL character`);
      continue;
    }
    const restart = option<RestartPolicy>(L, PROGRAM_FAMILY, m, 'RESTART') ?? 'on-failure';
    const user = option<string>(L, PROGRAM_FAMILY, m, 'USER');
    const group = option<string>(L, PROGRAM_FAMILY, m, 'GROUP');
    out.push({
      name: m.name,
      command,
      restart,
      ...(user === undefined ? {} : { user }),
      ...(group === undefined ? {} : { group }),
      startOnReload: option<boolean>(L, PROGRAM_FAMILY, m, 'START_ON_RELOAD') ?? false,
      origin: m.origin,
    });
  }
  return out;
}

export function loadResolvers(L: Layers): ResolverSpec[] {
  const out: ResolverSpec[] = [];
  for (const m of members(L, RESOLVER_FAMILY)) {
    if (!checkedName(L, m)) continue;
    const found = findOption(L, RESOLVER_FAMILY, m, '');
    if (!found) {
      L.errors.push(`${optionWhere(L, RESOLVER_FAMILY, m, '')}: a resolvers block needs nameservers (ip:port list, aws or resolv.conf)`);
      continue;
    }
    const spec: ResolverSpec = { name: m.name, nameservers: [], parseResolvConf: false };
    for (const item of list(found.raw)) {
      if (item === 'aws') spec.nameservers.push({ ...AWS_RESOLVER });
      else if (item === 'resolv.conf') spec.parseResolvConf = true;
      else {
        try {
          spec.nameservers.push(validHostPort(found.where, item));
        } catch (err) {
          L.fail(err);
        }
      }
    }
    if (spec.nameservers.length === 0 && !spec.parseResolvConf) {
      L.errors.push(`${found.where}: no nameserver (ip:port list, aws or resolv.conf)`);
    }
    const hold = option<number>(L, RESOLVER_FAMILY, m, 'HOLD_VALID');
    if (hold !== undefined) spec.holdValidMs = hold;
    const payload = option<number>(L, RESOLVER_FAMILY, m, 'ACCEPTED_PAYLOAD_SIZE');
    if (payload !== undefined) spec.acceptedPayloadSize = payload;
    out.push(spec);
  }
  return out;
}

/**
 * Services (one `listen` each). `resolvers` may gain the implicit `system` block
 * (parse-resolv-conf) when a DNS service needs one and none is defined.
 */
export function loadServices(L: Layers, resolvers: ResolverSpec[]): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  const opt = <T>(m: Member, o: string): T | undefined => option<T>(L, SERVICE_FAMILY, m, o);
  const where = (m: Member, o: string): string => optionWhere(L, SERVICE_FAMILY, m, o);
  for (const m of members(L, SERVICE_FAMILY)) {
    if (!checkedName(L, m)) continue;
    const errorsBefore = L.errors.length;
    const bind = opt<{ address: string; port: number }>(m, 'BIND');
    if (!bind && !findOption(L, SERVICE_FAMILY, m, 'BIND')) L.errors.push(`${where(m, 'BIND')}: required (e.g. 127.0.0.1:8081)`);
    const mode = opt<'http' | 'tcp'>(m, 'MODE') ?? 'http';
    const servers = opt<{ host: string; port: number }[]>(m, 'SERVERS') ?? [];
    const dnsTarget = opt<{ host: string; port: number }>(m, 'DNS');
    const hasServers = findOption(L, SERVICE_FAMILY, m, 'SERVERS') !== undefined;
    const hasDns = findOption(L, SERVICE_FAMILY, m, 'DNS') !== undefined;
    if (hasServers === hasDns) L.errors.push(`${where(m, 'SERVERS')}: set either ${where(m, 'SERVERS')} or ${where(m, 'DNS')} (exactly one)`);
    let dns: ServiceSpec['dns'];
    if (dnsTarget) {
      let r = opt<string>(m, 'RESOLVERS');
      if (r === undefined) {
        r = resolvers[0]?.name ?? SYSTEM_RESOLVER;
        if (resolvers.length === 0) resolvers.push({ name: SYSTEM_RESOLVER, nameservers: [], parseResolvConf: true });
      } else if (!resolvers.some((x) => x.name === r)) {
        L.errors.push(`${where(m, 'RESOLVERS')}: resolvers "${r}" is not defined (e.g. RESOLVER_${r.toUpperCase()}=aws)`);
      }
      try {
        validHost(where(m, 'DNS'), dnsTarget.host);
      } catch (err) {
        L.fail(err);
      }
      dns = {
        name: dnsTarget.host,
        port: dnsTarget.port,
        resolvers: r,
        slots: opt<number>(m, 'SLOTS') ?? 1,
        preferIpv4: (opt<string>(m, 'RESOLVE_PREFER') ?? 'ipv4') === 'ipv4',
      };
    }
    let checkPath = opt<string>(m, 'CHECK_PATH');
    if (checkPath !== undefined) {
      try {
        checkPath = validPath(where(m, 'CHECK_PATH'), checkPath);
      } catch (err) {
        L.fail(err);
      }
    }
    let hostHeader = opt<string>(m, 'HOST_HEADER');
    if (hostHeader !== undefined) {
      try {
        // A Host header is a host name with an optional port: nothing else, so no log-format (%[…]) either.
        if (/:\d+$/.test(hostHeader) && !hostHeader.includes('[')) validHostPort(where(m, 'HOST_HEADER'), hostHeader);
        else validHost(where(m, 'HOST_HEADER'), hostHeader);
      } catch (err) {
        L.fail(err);
        hostHeader = undefined;
      }
    }
    if (mode === 'tcp') {
      if (hostHeader !== undefined) L.errors.push(`${where(m, 'HOST_HEADER')}: needs ${where(m, 'MODE')}=http`);
      if (checkPath !== undefined) L.errors.push(`${where(m, 'CHECK_PATH')}: needs ${where(m, 'MODE')}=http`);
    }
    if (L.errors.length > errorsBefore || !bind) continue;
    out.push({
      name: m.name,
      mode,
      bind,
      servers,
      ...(dns ? { dns } : {}),
      ssl: opt<boolean>(m, 'SSL') ?? false,
      sslVerify: opt<boolean>(m, 'SSL_VERIFY') ?? true,
      check: (opt<boolean>(m, 'CHECK') ?? false) || checkPath !== undefined,
      ...(checkPath === undefined ? {} : { checkPath }),
      ...(hostHeader === undefined ? {} : { hostHeader }),
      balance: opt<string>(m, 'BALANCE') ?? 'roundrobin',
      origin: m.origin,
      bindWhere: where(m, 'BIND'),
    });
  }
  return out;
}
