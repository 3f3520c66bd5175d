/**
 * Seed 001 (haproxy-confd) keys under `/haproxy-<id>`:
 *
 *   services/<name>/port        required: the port the service's containers listen on
 *   services/<name>/domain      optional: Host header routed to it
 *   services/<name>/url_beg     optional: path prefix routed to it
 *   tcp-services/<name>/external_port   required: HAProxy listens here (a listen of its own)
 *   tcp-services/<name>/internal_port   required: the containers' port
 *   certs/<name>                a PEM holding a certificate chain and its private key
 *                               (haproxy-confd kept certificates in etcd; the seed does not name
 *                               the key, this is haproxy-pilot's layout) → file `<name>.pem`
 *
 * Backends are found through DNS by service name (the seed relied on weave/Kontena DNS), so each
 * backend carries `dns: {name, port, slots}` for a server-template instead of a server list.
 * A service with a missing or invalid key is skipped as a whole; the others are unaffected.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { DiscoveredBackend } from './model.js';
import { showValue, shownKey, validHost, validName, validPath, validPort } from './validate.js';
import { absolutePrefix, type LayoutResult, type Skipped } from './layout.js';
import { describeError } from '../errors.js';

export interface ConfdLayoutOptions {
  /** `/haproxy-<id>`. */
  prefix: string;
  source: string;
  /** server-template slots per DNS-discovered backend (default 10). */
  dnsSlots?: number;
}

/** Backend names of tcp-services get this prefix so `services/x` and `tcp-services/x` can coexist. */
export const TCP_BACKEND_PREFIX = 'tcp-';

type Fields = Map<string, string>;

// PEM: armour lines and base64 body lines only, so nothing else can travel in a "certificate".
const PEM_LINE = /^(-----(BEGIN|END) [A-Z0-9 ]{1,40}-----|[A-Za-z0-9+/=]{1,128}|[A-Za-z-]{1,40}: [\x20-\x7e]{1,200}|)$/;

function collect(keys: Readonly<Record<string, string>>, base: string, dir: string): Map<string, Fields> {
  const out = new Map<string, Fields>();
  const start = `${base}/${dir}/`;
  for (const key of Object.keys(keys).sort()) {
    if (!key.startsWith(start)) continue;
    const parts = key.slice(start.length).split('/');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') continue; // folders, deeper keys
    const fields = out.get(parts[0]!) ?? new Map<string, string>();
    fields.set(parts[1]!, keys[key]!);
    out.set(parts[0]!, fields);
  }
  return out;
}

function required(fields: Fields, key: string, field: string): string {
  const value = fields.get(field);
  if (value === undefined) throw new Error(`${key}/${field}: missing`);
  return value;
}

/**
 * A PEM bundle HAProxy loads: armour and base64 lines only (so nothing else can travel in a
 * "certificate"), every CERTIFICATE block a certificate, one unencrypted private key, and that
 * key the certificate's (HAProxy refuses the whole config otherwise).
 */
export function validPem(what: string, value: string): string {
  // Never show the value: it holds a private key.
  if (value.length > 256 * 1024) throw new Error(`${what}: larger than 256 KiB, not a PEM bundle`);
  const text = value.replace(/\r\n/g, '\n');
  const bad = text.split('\n').findIndex((l) => !PEM_LINE.test(l));
  if (bad >= 0) throw new Error(`${what}: line ${bad + 1} is not PEM (armour or base64)`);
  const certs = text.match(/^-----BEGIN CERTIFICATE-----\n[\s\S]*?\n-----END CERTIFICATE-----$/gm) ?? [];
  const keys = text.match(/^-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----\n[\s\S]*?\n-----END \1-----$/gm) ?? [];
  if (certs.length === 0 || keys.length !== 1) {
    throw new Error(`${what}: a PEM bundle needs a CERTIFICATE block and one unencrypted PRIVATE KEY block`);
  }
  let leaf: X509Certificate | undefined;
  for (const [i, block] of certs.entries()) {
    try {
      const cert = new X509Certificate(block);
      leaf ??= cert;
    } catch {
      throw new Error(`${what}: CERTIFICATE block ${i + 1} is not a certificate`);
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keys[0]!);
  } catch {
    throw new Error(`${what}: the PRIVATE KEY block is not a private key`);
  }
  if (!leaf!.checkPrivateKey(key)) throw new Error(`${what}: the private key is not the first certificate's`);
  return value.endsWith('\n') ? value : `${value}\n`;
}

export function confdLayout(keys: Readonly<Record<string, string>>, options: ConfdLayoutOptions): LayoutResult {
  const base = absolutePrefix(options.prefix);
  const slots = options.dnsSlots ?? 10;
  const backends: DiscoveredBackend[] = [];
  const skipped: Skipped[] = [];
  const names = new Set<string>();
  const tcpPorts = new Map<number, string>();

  for (const [svc, fields] of collect(keys, base, 'services')) {
    const rawKey = `${base}/services/${svc}`;
    const key = shownKey(rawKey);
    try {
      const name = validName(key, svc);
      const dnsName = validHost(key, svc);
      const port = validPort(`${key}/port`, required(fields, key, 'port'));
      const route: NonNullable<DiscoveredBackend['route']> = {};
      const domain = fields.get('domain');
      if (domain !== undefined) route.domain = validHost(`${key}/domain`, domain);
      const urlBeg = fields.get('url_beg');
      if (urlBeg !== undefined) route.pathPrefix = validPath(`${key}/url_beg`, urlBeg);
      if (names.has(name)) throw new Error(`${key}: backend name ${showValue(name)} is already used`);
      names.add(name);
      backends.push({
        name,
        mode: 'http',
        servers: [],
        dns: [{ name: dnsName, port, slots }],
        ...(route.domain !== undefined || route.pathPrefix !== undefined ? { route } : {}),
        source: options.source,
      });
    } catch (err) {
      skipped.push({ key: rawKey, reason: describeError(err) });
    }
  }

  for (const [svc, fields] of collect(keys, base, 'tcp-services')) {
    const rawKey = `${base}/tcp-services/${svc}`;
    const key = shownKey(rawKey);
    try {
      const name = validName(key, `${TCP_BACKEND_PREFIX}${svc}`);
      const dnsName = validHost(key, svc);
      const external = validPort(`${key}/external_port`, required(fields, key, 'external_port'));
      const internal = validPort(`${key}/internal_port`, required(fields, key, 'internal_port'));
      const holder = tcpPorts.get(external);
      if (holder !== undefined) throw new Error(`${key}/external_port: port ${external} is already used by ${holder}`);
      if (names.has(name)) throw new Error(`${key}: backend name ${showValue(name)} is already used`);
      names.add(name);
      tcpPorts.set(external, key);
      backends.push({
        name,
        mode: 'tcp',
        servers: [],
        dns: [{ name: dnsName, port: internal, slots }],
        route: { port: external },
        source: options.source,
      });
    } catch (err) {
      skipped.push({ key: rawKey, reason: describeError(err) });
    }
  }

  const files: Record<string, string> = {};
  const certStart = `${base}/certs/`;
  for (const key of Object.keys(keys).sort()) {
    if (!key.startsWith(certStart)) continue;
    const certName = key.slice(certStart.length);
    if (certName === '' || certName.includes('/')) continue;
    const what = shownKey(key);
    try {
      // The name becomes a file name: the NAME grammar has no '/' and cannot be '.' or '..'; the
      // file name with its `.pem` must be one too (the builder checks it: at most 63 characters).
      files[validName(what, `${validName(what, certName)}.pem`)] = validPem(what, keys[key]!);
    } catch (err) {
      skipped.push({ key, reason: describeError(err) });
    }
  }
  return { backends, files, skipped };
}
