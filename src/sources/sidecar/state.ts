/**
 * Sidecar's `ServicesState` (seed 000) as it arrives over the network: decoded from untrusted JSON
 * into typed objects, field by field, in Sidecar's own key order so that `GET /state` can encode
 * it back "like state.json" (see shared reference A1: top level `Servers, LastChanged,
 * ClusterName, Hostname`; server `Name, Services, LastUpdated, LastChanged`; service `ID, Name,
 * Image, Created, Hostname, Ports, Updated, ProxyMode, Status`; port `Type, Port, ServicePort, IP`).
 *
 * Strictness: a document whose top level is wrong (not an object, no usable `LastChanged`, wrong
 * types) is refused whole, because we could not order it against the state we hold. A single
 * server or service with wrong types is left out with a `Skipped` entry naming its path
 * (`Servers/<host>/Services/<id>`), so one bad record never hides the others. Go's decoder would
 * refuse the whole document instead; being per-record is strictly more forgiving.
 * Semantic checks (names, port ranges, addresses) happen in layout.ts. Pure: no I/O, no clock.
 */
import type { Skipped } from '../../state/layout.js';
import { oneLine, showValue } from '../../state/validate.js';

export interface SidecarPort {
  Type: string;
  Port: number;
  ServicePort: number;
  IP: string;
}

export interface SidecarService {
  ID: string;
  Name: string;
  Image: string;
  Created: string;
  Hostname: string;
  Ports: SidecarPort[];
  Updated: string;
  ProxyMode: string;
  Status: number;
}

export interface SidecarServer {
  Name: string;
  Services: Record<string, SidecarService>;
  LastUpdated: string;
  LastChanged: string;
}

export interface ServicesState {
  Servers: Record<string, SidecarServer>;
  LastChanged: string;
  ClusterName: string;
  Hostname: string;
}

/** Sidecar's service.Status values (SC service/service.go). Any other integer prints as Tombstone. */
export const STATUS = { ALIVE: 0, TOMBSTONE: 1, UNHEALTHY: 2, UNKNOWN: 3, DRAINING: 4 } as const;

export function statusName(status: number): string {
  return ['Alive', 'Tombstone', 'Unhealthy', 'Unknown', 'Draining'][status] ?? 'Tombstone';
}

export interface DecodedState {
  state: ServicesState;
  /** LastChanged as nanoseconds since the Unix epoch (Go timestamps carry nanoseconds). */
  lastChangedNs: bigint;
  /** Records left out because their types were wrong. */
  skipped: Skipped[];
}

/** What Sidecar POSTs to its listeners (SC catalog/url_listener.go). */
export interface DecodedEvent extends DecodedState {
  /** ChangeEvent.Service when it decodes (shown by /health as last_service_changed), else null. */
  changedService: SidecarService | null;
}

export class SidecarStateError extends Error {
  override name = 'SidecarStateError';
}

// Go's time.Time JSON (RFC 3339 with up to 9 fraction digits). Go never writes a leap second.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** A Go RFC 3339 timestamp → nanoseconds since the epoch; undefined when it is not one. */
export function parseGoTime(text: unknown): bigint | undefined {
  if (typeof text !== 'string' || text.length > 40) return undefined;
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return undefined;
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0..99 to 1900..1999, and Go's zero time is year 1.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  if (date.getUTCDate() !== d) return undefined; // 31 February and friends
  let ms = date.getTime();
  if (m[8] !== undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) return undefined;
    ms -= (m[8] === '+' ? 1 : -1) * (oh * 60 + om) * 60_000;
  }
  return BigInt(ms) * 1_000_000n + BigInt((m[7] ?? '').padEnd(9, '0'));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(obj: Record<string, unknown>, key: string, path: string, { required = false } = {}): string {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw new SidecarStateError(`${path}: ${key} is missing`);
    return '';
  }
  if (typeof v !== 'string') throw new SidecarStateError(`${path}: ${key} is not a string (${typeOf(v)})`);
  return v;
}

function int(obj: Record<string, unknown>, key: string, path: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new SidecarStateError(`${path}: ${key} is not an integer (${typeOf(v)}${typeof v === 'number' ? ` ${v}` : ''})`);
  return v;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** One service record; throws SidecarStateError naming the field. */
export function decodeService(raw: unknown, path: string): SidecarService {
  if (!isObject(raw)) throw new SidecarStateError(`${path}: not an object (${typeOf(raw)})`);
  const portsRaw = raw.Ports ?? [];
  if (!Array.isArray(portsRaw)) throw new SidecarStateError(`${path}: Ports is not an array (${typeOf(portsRaw)})`);
  const Ports = portsRaw.map((p, i): SidecarPort => {
    const where = `${path}: Ports[${i}]`;
    if (!isObject(p)) throw new SidecarStateError(`${where} is not an object (${typeOf(p)})`);
    return { Type: str(p, 'Type', where), Port: int(p, 'Port', where), ServicePort: p.ServicePort === undefined ? 0 : int(p, 'ServicePort', where), IP: str(p, 'IP', where) };
  });
  return {
    ID: str(raw, 'ID', path, { required: true }),
    Name: str(raw, 'Name', path, { required: true }),
    Image: str(raw, 'Image', path),
    Created: str(raw, 'Created', path),
    Hostname: str(raw, 'Hostname', path, { required: true }),
    Ports,
    Updated: str(raw, 'Updated', path),
    ProxyMode: str(raw, 'ProxyMode', path),
    Status: int(raw, 'Status', path),
  };
}

/** Path segment for keys and messages: hostile names are shown quoted and shortened, on one line. */
export function pathPart(name: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(name) && !name.includes('/') ? name : showValue(name);
}

/**
 * Decodes a ServicesState. Throws SidecarStateError for a document that cannot be used at all;
 * records with wrong types are returned in `skipped`.
 */
export function decodeServicesState(raw: unknown, where = 'State'): DecodedState {
  if (!isObject(raw)) throw new SidecarStateError(`${where} is not a JSON object (${typeOf(raw)})`);
  const lastChangedNs = parseGoTime(raw.LastChanged);
  if (lastChangedNs === undefined) {
    throw new SidecarStateError(`${where}.LastChanged is not an RFC 3339 timestamp (${typeof raw.LastChanged === 'string' ? showValue(raw.LastChanged) : typeOf(raw.LastChanged)})`);
  }
  const serversRaw = raw.Servers ?? {}; // Go encodes a nil map as null
  if (!isObject(serversRaw)) throw new SidecarStateError(`${where}.Servers is not an object (${typeOf(serversRaw)})`);
  for (const key of ['ClusterName', 'Hostname'] as const) {
    const v = raw[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw new SidecarStateError(`${where}.${key} is not a string (${typeOf(v)})`);
  }
  const skipped: Skipped[] = [];
  // Prototype-less maps: a host or ID named "__proto__" is data, not a prototype switch.
  const Servers: Record<string, SidecarServer> = Object.create(null) as Record<string, SidecarServer>;
  for (const host of Object.keys(serversRaw)) {
    const hostPath = `Servers/${pathPart(host)}`;
    const server = serversRaw[host];
    try {
      if (!isObject(server)) throw new SidecarStateError(`${hostPath}: not an object (${typeOf(server)})`);
      const servicesRaw = server.Services ?? {};
      if (!isObject(servicesRaw)) throw new SidecarStateError(`${hostPath}: Services is not an object (${typeOf(servicesRaw)})`);
      const Services: Record<string, SidecarService> = Object.create(null) as Record<string, SidecarService>;
      for (const id of Object.keys(servicesRaw)) {
        const key = `${hostPath}/Services/${pathPart(id)}`;
        try {
          Services[id] = decodeService(servicesRaw[id], key);
        } catch (err) {
          if (!(err instanceof SidecarStateError)) throw err;
          skipped.push({ key, reason: err.message });
        }
      }
      Servers[host] = {
        Name: str(server, 'Name', hostPath),
        Services,
        LastUpdated: str(server, 'LastUpdated', hostPath),
        LastChanged: str(server, 'LastChanged', hostPath),
      };
    } catch (err) {
      if (!(err instanceof SidecarStateError)) throw err;
      skipped.push({ key: hostPath, reason: err.message });
    }
  }
  const state: ServicesState = {
    Servers,
    LastChanged: raw.LastChanged as string,
    ClusterName: typeof raw.ClusterName === 'string' ? raw.ClusterName : '',
    Hostname: typeof raw.Hostname === 'string' ? raw.Hostname : '',
  };
  return { state, lastChangedNs, skipped };
}

/** A StateChangedEvent `{State, ChangeEvent: {Service, PreviousStatus, Time}}`. The State decides. */
export function decodeStateChangedEvent(raw: unknown): DecodedEvent {
  if (!isObject(raw)) throw new SidecarStateError(`the body is not a JSON object (${typeOf(raw)})`);
  if (raw.State === undefined || raw.State === null) throw new SidecarStateError('the body has no State');
  const decoded = decodeServicesState(raw.State, 'State');
  let changedService: SidecarService | null = null;
  const change = raw.ChangeEvent;
  if (isObject(change) && change.Service !== undefined) {
    try {
      changedService = decodeService(change.Service, 'ChangeEvent.Service');
    } catch (err) {
      // Only informative (/health): a bad ChangeEvent does not refuse a good State.
      if (!(err instanceof SidecarStateError)) throw err;
      decoded.skipped.push({ key: 'ChangeEvent.Service', reason: err.message });
    }
  }
  return { ...decoded, changedService };
}

/** Parses a JSON body; SidecarStateError for empty or malformed text. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new SidecarStateError('the body is empty');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SidecarStateError(`the body is not JSON (${oneLine((err as Error).message.slice(0, 120))})`);
  }
}
