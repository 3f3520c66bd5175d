/**
 * The discovery file (DISCOVERY_FILE, yaml or json), parsed already; this checks its schema:
 *
 *   services:
 *     web:
 *       mode: http                 # http (default) or tcp
 *       servers:                   # "host:port" strings or {address, name?, weight?, state?}
 *         - 10.0.0.1:80
 *         - { address: "web-2:8080", name: b, weight: 50, state: drain }
 *       dns: { name: web.internal, port: 80, slots: 10 }   # instead of (or with) servers
 *       route: { domain: example.org, path: /api, port: 8443 }
 *
 * A tcp service needs `route.port` (a listen of its own) and takes no domain or path: HAProxy's
 * HTTP frontends cannot use a tcp backend. A server may not be named like a DNS slot (`srv1`…).
 * Servers without a name are named after their address (`10.0.0.1:80` → `10.0.0.1_80`) so a
 * name stays with its server when others are added or removed (runtime API changes, no reload).
 * A service with an invalid or unknown field is skipped as a whole; the others are unaffected.
 */
import { dnsSlotPrefix, isDnsSlotName, type DiscoveredBackend, type DiscoveredServer } from '../../state/model.js';
import { showValue, shownKey, toName, validHost, validHostPort, validName, validPath, validPort, validServerName } from '../../state/validate.js';
import type { LayoutResult, Skipped } from '../../state/layout.js';
import { describeError } from '../../errors.js';

export interface FileLayoutOptions {
  source: string;
  /** Where a yaml path is in the file (`/etc/d.yaml:12`), for messages; default the source name. */
  locate?: (path: readonly (string | number)[]) => string;
  /**
   * Servers given as `"host:port"` parsed by the previous read, by that text: a file re-read for
   * one changed line validates that line, not 100,000. Filled with this read's servers.
   */
  memo?: { previous: ReadonlyMap<string, DiscoveredServer>; next: Map<string, DiscoveredServer> };
}

const SERVICE_FIELDS = new Set(['mode', 'servers', 'dns', 'route']);
const SERVER_FIELDS = new Set(['address', 'name', 'weight', 'state']);
const ROUTE_FIELDS = new Set(['domain', 'path', 'port']);
const DNS_FIELDS = new Set(['name', 'port', 'slots']);

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(what: string, message: string): never {
  throw new Error(`${what}: ${message}`);
}

function checkFields(what: string, v: Record<string, unknown>, allowed: Set<string>): void {
  for (const k of Object.keys(v)) if (!allowed.has(k)) fail(what, `unknown field ${showValue(k)} (expected ${[...allowed].join(', ')})`);
}

/** Any parsed value as text for a message (a prototype-less object has no String()). */
function asText(v: unknown): string {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return typeof v;
  }
}

function str(what: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  return fail(what, `${showValue(asText(v))} is not a string`);
}

function server(what: string, raw: unknown, memo: FileLayoutOptions['memo']): DiscoveredServer {
  if (typeof raw === 'string') {
    let s = memo?.previous.get(raw);
    if (!s) {
      const { host, port } = validHostPort(what, raw);
      s = { name: validName(what, toName(raw)), host, port };
    }
    memo?.next.set(raw, s);
    return s;
  }
  if (!isMap(raw)) fail(what, 'a server is "host:port" or {address, name?, weight?, state?}');
  checkFields(what, raw, SERVER_FIELDS);
  const address = str(`${what}.address`, raw.address);
  const { host, port } = validHostPort(`${what}.address`, address);
  const out: DiscoveredServer = {
    // HAProxy server names may hold ':' (`10.0.0.1:80`), as ProxyMgr's do.
    name: raw.name === undefined ? validName(what, toName(address)) : validServerName(`${what}.name`, str(`${what}.name`, raw.name)),
    host,
    port,
  };
  if (raw.weight !== undefined) {
    const w = raw.weight;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 256) fail(`${what}.weight`, `${showValue(asText(w))} is not 0..256`);
    out.weight = w;
  }
  if (raw.state !== undefined) {
    if (raw.state !== 'ready' && raw.state !== 'drain' && raw.state !== 'maint') fail(`${what}.state`, `${showValue(asText(raw.state))} is not ready, drain or maint`);
    out.state = raw.state;
  }
  return out;
}

function service(name: string, raw: unknown, where: string, source: string, memo?: FileLayoutOptions['memo']): DiscoveredBackend {
  const what = where === '' ? `services.${shownKey(name)}` : `${where} services.${shownKey(name)}`;
  const backendName = validName(what, name);
  if (!isMap(raw)) fail(what, 'a service is a mapping of mode, servers, dns, route');
  checkFields(what, raw, SERVICE_FIELDS);
  const mode = raw.mode ?? 'http';
  if (mode !== 'http' && mode !== 'tcp') fail(`${what}.mode`, `${showValue(asText(mode))} is not http or tcp`);
  const rawServers = raw.servers ?? [];
  if (!Array.isArray(rawServers)) fail(`${what}.servers`, 'not a list');
  const servers = rawServers.map((s, i) => server(`${what}.servers[${i}]`, s, memo));
  const names = new Set<string>();
  for (const s of servers) {
    if (names.has(s.name)) fail(`${what}.servers`, `server name ${showValue(s.name)} appears twice`);
    names.add(s.name);
  }
  const backend: DiscoveredBackend = { name: backendName, mode, servers, source };
  if (raw.dns !== undefined) {
    if (!isMap(raw.dns)) fail(`${what}.dns`, 'not a mapping of name, port, slots');
    checkFields(`${what}.dns`, raw.dns, DNS_FIELDS);
    const slots = raw.dns.slots === undefined ? 10 : validPort(`${what}.dns.slots`, str(`${what}.dns.slots`, raw.dns.slots));
    if (slots > 1000) fail(`${what}.dns.slots`, `${slots} is more than 1000`);
    backend.dns = [{
      name: validHost(`${what}.dns.name`, str(`${what}.dns.name`, raw.dns.name)),
      port: validPort(`${what}.dns.port`, str(`${what}.dns.port`, raw.dns.port)),
      slots,
    }];
  }
  if (raw.route !== undefined) {
    if (!isMap(raw.route)) fail(`${what}.route`, 'not a mapping of domain, path, port');
    checkFields(`${what}.route`, raw.route, ROUTE_FIELDS);
    const route: NonNullable<DiscoveredBackend['route']> = {};
    if (raw.route.domain !== undefined) route.domain = validHost(`${what}.route.domain`, str(`${what}.route.domain`, raw.route.domain));
    if (raw.route.path !== undefined) route.pathPrefix = validPath(`${what}.route.path`, str(`${what}.route.path`, raw.route.path));
    if (raw.route.port !== undefined) route.port = validPort(`${what}.route.port`, str(`${what}.route.port`, raw.route.port));
    backend.route = route;
  }
  // What HAProxy refuses, said here so the rest of the file applies: its HTTP frontends cannot
  // use a tcp backend, and a server may not take the name of a DNS slot of its backend.
  if (mode === 'tcp') {
    if (backend.route?.domain !== undefined || backend.route?.pathPrefix !== undefined) fail(`${what}.route`, 'domain and path route HTTP requests: a tcp service takes route.port only');
    if (backend.route?.port === undefined) fail(`${what}.route.port`, 'missing: a tcp service needs a listen port of its own (HTTP frontends cannot use a tcp backend)');
  }
  const slot = backend.dns ? servers.find((s) => isDnsSlotName(s.name, backend.dns!)) : undefined;
  if (slot) fail(`${what}.servers`, `server name ${showValue(slot.name)} is the name of one of the DNS slots (${dnsSlotPrefix(0)}1..${dnsSlotPrefix(0)}${backend.dns![0]!.slots})`);
  return backend;
}

/**
 * Throws (a whole-file error) when the document is not a mapping with a `services` mapping;
 * an empty document is an empty discovery file.
 */
export function fileLayout(doc: unknown, options: FileLayoutOptions): LayoutResult {
  const locate = options.locate ?? (() => options.source);
  if (doc === null || doc === undefined) return { backends: [], skipped: [] };
  if (!isMap(doc)) throw new Error(`${locate([])}: the document is not a mapping with "services"`);
  const skipped: Skipped[] = [];
  for (const k of Object.keys(doc)) {
    if (k !== 'services') skipped.push({ key: shownKey(k), reason: `${locate([k])}: unknown top-level field ${shownKey(k)} ignored` });
  }
  const services = doc.services ?? {};
  if (!isMap(services)) throw new Error(`${locate(['services'])}: "services" is not a mapping`);
  const backends: DiscoveredBackend[] = [];
  for (const [name, raw] of Object.entries(services)) {
    try {
      backends.push(service(name, raw, '', options.source, options.memo));
    } catch {
      // Locating a node costs a walk of its parent's entries: only an error pays it, so a file
      // of thousands of services stays linear.
      try {
        service(name, raw, locate(['services', name]), options.source);
      } catch (err) {
        skipped.push({ key: `services.${shownKey(name)}`, reason: describeError(err) });
      }
    }
  }
  return { backends, skipped };
}

/** Scalar leaves as '/'-keys (`/services/web/servers/0`), for confd-style template helpers. */
export function flattenKeys(doc: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}/${i}`));
    else if (isMap(v)) for (const [k, x] of Object.entries(v)) walk(x, `${path}/${k}`);
    else if (v !== null && v !== undefined && path !== '') out[path] = String(v);
  };
  walk(doc, '');
  return out;
}
