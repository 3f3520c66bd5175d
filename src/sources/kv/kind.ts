/**
 * The key/value endpoint (seed 002's Container Cloud service, or Consul): `KV_URL` or
 * `KV_IP` + `KV_PORT`, a bearer token, a prefix, polling or blocking queries.
 */
import { PilotError } from '../../errors.js';
import { absPath, bool, duration, port, str } from '../../config/parse.js';
import type { EnvRow } from '../../config/env-table.js';
import type { Layers } from '../../config/layers.js';
import { validHost, validToken } from '../../state/validate.js';
import { layoutFor, parseLayoutName, type LayoutName } from '../layouts.js';
import type { SourceKind } from '../kind.js';

export interface KvSourceSettings {
  url: string; // KV_URL, or http://KV_IP:KV_PORT
  token?: string; // KV_TOKEN / KV_TOKEN_FILE / OCCS_API_TOKEN: never logged
  prefix: string; // KV_PREFIX / OCCS_BACKEND_KEY
  intervalMs: number; // KV_INTERVAL, default 5s
  watch: boolean; // KV_WATCH: Consul blocking queries
  timeoutMs: number;
  layout: LayoutName;
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;

export const KV_ENV = {
  KV_URL: row({ yaml: 'kv.url', meaning: 'Consul-style KV endpoint, e.g. `http://10.0.0.1:8500`', parse: str }),
  KV_IP: row({ yaml: 'kv.ip', meaning: 'KV endpoint host (seed 002); with KV_PORT, instead of KV_URL', parse: str }),
  KV_PORT: row({ yaml: 'kv.port', default: '9109', meaning: 'KV endpoint port (seed 002)', parse: port }),
  KV_TOKEN: row({ yaml: 'kv.token', meaning: 'bearer token for the KV endpoint', parse: str, secret: true }),
  KV_TOKEN_FILE: row({ yaml: 'kv.token_file', meaning: 'file holding the KV token', parse: absPath }),
  OCCS_API_TOKEN: row({ meaning: 'seed 002 name for KV_TOKEN', parse: str, secret: true }),
  KV_PREFIX: row({ yaml: 'kv.prefix', meaning: 'key prefix to read, e.g. `apps/myapp/containers`', parse: str }),
  OCCS_BACKEND_KEY: row({ meaning: 'seed 002 name for KV_PREFIX', parse: str }),
  KV_LAYOUT: row({ yaml: 'kv.layout', default: 'containers', meaning: 'how keys become backends: `containers` (seed 002: every value under the prefix is a `host:port` server) or `confd` (seed 001\'s `services/` and `tcp-services/` keys)', parse: parseLayoutName }),
  KV_INTERVAL: row({ yaml: 'kv.interval', default: '5s', meaning: 'poll interval', parse: duration }),
  KV_WATCH: row({ yaml: 'kv.watch', default: 'off', meaning: 'use Consul blocking queries instead of polling', parse: bool }),
  KV_TIMEOUT: row({ yaml: 'kv.timeout', default: '10s', meaning: 'bound on a whole request, headers and body (a blocking query: its wait plus this)', parse: duration }),
} as const;

function load(L: Layers<typeof KV_ENV>): KvSourceSettings | undefined {
  const envUrl = L.envValue('KV_URL');
  const envIp = L.envValue('KV_IP');
  if (envUrl !== undefined && envIp !== undefined) {
    L.errors.push('KV_URL: set either KV_URL or KV_IP (+ KV_PORT), not both');
    return undefined;
  }
  const urlFound = envIp !== undefined ? undefined : L.find('KV_URL');
  const ipFound = urlFound ? undefined : L.find('KV_IP');
  if (!urlFound && !ipFound) return undefined;
  let url = '';
  try {
    if (urlFound) {
      const text = typeof urlFound.raw === 'string' ? urlFound.raw : '';
      let u: URL | undefined;
      try {
        u = new URL(text);
      } catch {
        u = undefined;
      }
      if (!u || !/^https?:$/.test(u.protocol) || /\s/.test(text)) {
        throw new PilotError('E_CONFIG', `${urlFound.where}: ${JSON.stringify(text.slice(0, 80))} is not an http(s) URL`);
      }
      url = text.replace(/\/+$/, '');
    } else if (ipFound) {
      const host = validHost(ipFound.where, typeof ipFound.raw === 'string' ? ipFound.raw : '');
      url = `http://${host.includes(':') ? `[${host}]` : host}:${L.get('KV_PORT')}`;
    }
  } catch (err) {
    L.fail(err);
  }
  let token: string | undefined;
  const tok = L.secret('KV_TOKEN', 'KV_TOKEN_FILE', 'OCCS_API_TOKEN');
  if (tok) {
    try {
      token = validToken(tok.where, tok.value);
    } catch (err) {
      L.fail(err);
    }
  }
  let prefix = '';
  const pf = L.find('KV_PREFIX', 'OCCS_BACKEND_KEY');
  if (pf) {
    const text = typeof pf.raw === 'string' ? pf.raw.trim() : '';
    if (!/^[\x21-\x7e]{0,512}$/.test(text) || /[?#]/.test(text)) L.errors.push(`${pf.where}: ${JSON.stringify(text.slice(0, 80))} is not a key prefix (visible characters, no "?" or "#")`);
    // Consul KV paths have no leading slash (`GET /v1/kv/apps/myapp/containers`): normalise both ends.
    else prefix = text.replace(/^\/+|\/+$/g, '');
  }
  return {
    url,
    ...(token === undefined ? {} : { token }),
    prefix,
    intervalMs: L.get('KV_INTERVAL'),
    watch: L.get('KV_WATCH'),
    timeoutMs: L.get('KV_TIMEOUT'),
    layout: L.get('KV_LAYOUT'),
  };
}

export const kvKind: SourceKind<KvSourceSettings, typeof KV_ENV> = {
  kind: 'kv',
  env: KV_ENV,
  load,
  async create(settings, deps) {
    const { createKvSource } = await import('./transport.js');
    return createKvSource(settings, { ...deps, layout: layoutFor(settings.layout, settings.prefix, 'kv') });
  },
};
