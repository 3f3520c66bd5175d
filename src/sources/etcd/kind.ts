/** etcd v3 (seed 001's haproxy-confd): `ETCD_ENDPOINTS` or `ETCD_NODE`, auth, TLS, `HAPROXY_ID`. */
import { absPath, list, str } from '../../config/parse.js';
import type { EnvRow } from '../../config/env-table.js';
import type { Layers } from '../../config/layers.js';
import { validHost, validHostPort, validName } from '../../state/validate.js';
import { scalar } from '../../config/parse.js';
import { layoutFor, parseLayoutName, type LayoutName } from '../layouts.js';
import type { SourceKind } from '../kind.js';

export interface EtcdSourceSettings {
  endpoints: string[]; // ETCD_ENDPOINTS (comma list) or ETCD_NODE
  user?: string;
  password?: string; // never logged
  tls?: { ca?: string; cert?: string; key?: string };
  prefix: string; // /haproxy-<HAPROXY_ID> when HAPROXY_ID is set, else ETCD_PREFIX
  haproxyId?: string;
  layout: LayoutName;
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;
const name = (raw: Parameters<typeof scalar>[0], what: string): string => validName(what, scalar(raw, what));
const strList = (raw: Parameters<typeof list>[0]): string[] => list(raw);

export const ETCD_ENV = {
  ETCD_ENDPOINTS: row({ yaml: 'etcd.endpoints', meaning: 'comma list of etcd endpoints (`host:port` or URLs)', parse: strList }),
  ETCD_NODE: row({ meaning: 'seed 001 name: one etcd host (port 2379 unless given)', parse: str }),
  ETCD_USER: row({ yaml: 'etcd.user', meaning: 'etcd user', parse: str }),
  ETCD_PASSWORD: row({ yaml: 'etcd.password', meaning: 'etcd password', parse: str, secret: true }),
  ETCD_PASSWORD_FILE: row({ yaml: 'etcd.password_file', meaning: 'file holding the etcd password', parse: absPath }),
  ETCD_CA: row({ yaml: 'etcd.ca', meaning: 'CA certificate file (PEM) for etcd TLS', parse: absPath }),
  ETCD_CERT: row({ yaml: 'etcd.cert', meaning: 'client certificate file (PEM)', parse: absPath }),
  ETCD_KEY: row({ yaml: 'etcd.key', meaning: 'client key file (PEM)', parse: absPath }),
  ETCD_PREFIX: row({ yaml: 'etcd.prefix', default: '/', meaning: 'key prefix when HAPROXY_ID is not set', parse: str }),
  ETCD_LAYOUT: row({ yaml: 'etcd.layout', default: 'confd', meaning: 'how keys become backends: `confd` (seed 001) or `containers` (seed 002: every value under the prefix is a `host:port` server)', parse: parseLayoutName }),
  HAPROXY_ID: row({ yaml: 'etcd.haproxy_id', meaning: 'seed 001: read `/haproxy-<id>/…` from etcd', parse: name }),
  'HAPROXY-ID': row({ meaning: 'seed 001 spelling of HAPROXY_ID', parse: name }),
} as const;

function load(L: Layers<typeof ETCD_ENV>): EtcdSourceSettings | undefined {
  // ETCD_NODE (seed 001) is one host; it counts when ETCD_ENDPOINTS is not set in the environment.
  const found = L.find('ETCD_ENDPOINTS', 'ETCD_NODE');
  if (!found) return undefined;
  const ca = L.opt('ETCD_CA');
  const cert = L.opt('ETCD_CERT');
  const key = L.opt('ETCD_KEY');
  const tls = ca !== undefined || cert !== undefined || key !== undefined;
  if ((cert === undefined) !== (key === undefined)) L.errors.push('ETCD_CERT: ETCD_CERT and ETCD_KEY go together');
  const endpoints: string[] = [];
  for (const item of list(found.raw)) {
    try {
      if (/^https?:\/\//.test(item)) {
        const u = new URL(item);
        validHost(found.where, u.hostname.replace(/^\[|\]$/g, ''));
        endpoints.push(`${u.protocol}//${u.host}`);
      } else {
        const hp = /:\d+$/.test(item) ? validHostPort(found.where, item) : { host: validHost(found.where, item), port: 2379 };
        endpoints.push(`${tls ? 'https' : 'http'}://${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`);
      }
    } catch (err) {
      L.fail(err, found.where);
    }
  }
  const user = L.opt('ETCD_USER');
  const pw = L.secret('ETCD_PASSWORD', 'ETCD_PASSWORD_FILE');
  if (pw && /[\0\n\r]/.test(pw.value)) L.errors.push(`${pw.where}: the password contains a newline or NUL`);
  const haproxyId = L.opt('HAPROXY_ID', 'HAPROXY-ID');
  let prefix = L.get('ETCD_PREFIX');
  if (haproxyId !== undefined) prefix = `/haproxy-${haproxyId}`;
  else if (!prefix.startsWith('/') || /[\s#?]/.test(prefix)) L.errors.push(`ETCD_PREFIX: ${JSON.stringify(prefix.slice(0, 80))} is not a key prefix starting with "/"`);
  return {
    endpoints,
    ...(user === undefined ? {} : { user }),
    ...(pw === undefined ? {} : { password: pw.value }),
    ...(tls ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {}),
    prefix: prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix,
    ...(haproxyId === undefined ? {} : { haproxyId }),
    layout: L.get('ETCD_LAYOUT'),
  };
}

export const etcdKind: SourceKind<EtcdSourceSettings, typeof ETCD_ENV> = {
  kind: 'etcd',
  env: ETCD_ENV,
  load,
  async create(settings, deps) {
    // etcd3 (and grpc-js under it) is 25 MB of code: loaded only when etcd is configured.
    const { createEtcdSource } = await import('./transport.js');
    return createEtcdSource(settings, { ...deps, layout: layoutFor(settings.layout, settings.prefix, 'etcd') });
  },
};
