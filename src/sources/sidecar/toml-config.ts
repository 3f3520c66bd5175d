/**
 * haproxy-api's configuration file (`haproxy-api -f haproxy-api.toml`, HA config.go), read so that
 * `haproxy-pilot -f haproxy-api.toml` is a drop-in. Keys (shared reference A3):
 *
 *   [haproxy_api] bind_ip, bind_port       → the push listener (defaults 0.0.0.0 and 7778, as there)
 *                 logging_level            → our log level (info, warn, error, debug; empty = info)
 *   [sidecar]     state_url                → bootstrap / re-read URL
 *   [haproxy]     bind_ip                  → the IP every Sidecar listen binds (empty = all)
 *                 use_hostnames            → servers at Hostname instead of the port's IP
 *                 user, group              → HAProxy's `global` user/group
 *                 template                 → noted: a Go text/template is not executed
 *                 config_file, pid_file, reload_cmd, verify_cmd → noted and ignored
 *
 * Keys are matched case-insensitively, as BurntSushi/toml (haproxy-api's parser) matches them; that
 * is also how haproxy-api's misspelled `tom:"sidecar"` struct tag still loads `[sidecar]`. Any other
 * key or section is an error naming `file:section.key`, and all errors are reported together.
 * haproxy-api's envconfig overrides (`HAPROXY_API_HAPROXY_BINDIP`, …) are not read: use the
 * SIDECAR_* variables, which win over the file.
 *
 * Parsed with smol-toml (TOML 1.0, no dependencies), loaded only when a file is given.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { LevelWithSilent } from 'pino';
import { PilotError } from '../../errors.js';
import { showValue, validHost, validName } from '../../state/validate.js';

export interface HaproxyApiToml {
  file: string;
  /** `[haproxy_api] bind_ip:bind_port`, with haproxy-api's defaults (0.0.0.0, 7778) for unset or empty values. */
  listen: { host: string; port: number };
  logLevel?: LevelWithSilent;
  stateUrl?: string;
  bindIp?: string;
  useHostnames?: boolean;
  user?: string;
  group?: string;
  template?: string;
  /** One line per key that is read but has no effect here (say them once at start, at info). */
  notes: string[];
}

type Table = Record<string, unknown>;

// Logrus level names (haproxy-api understood info, warn, error, debug; the others were ignored).
const LOG_LEVELS: Record<string, LevelWithSilent> = {
  '': 'info',
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  panic: 'fatal',
};

const IGNORED: Record<string, string> = {
  config_file: 'the rendered configuration lives in PILOT_RUN_DIR',
  pid_file: 'haproxy-pilot runs HAProxy in master-worker mode as its child; there is no pid file',
  reload_cmd: 'changes go through the runtime API, or a reload through the master socket',
  verify_cmd: 'every candidate configuration is checked with `haproxy -c` before it is applied',
};

const KNOWN: Record<string, readonly string[]> = {
  haproxy_api: ['bind_ip', 'bind_port', 'logging_level'],
  sidecar: ['state_url'],
  haproxy: ['bind_ip', 'template', 'user', 'group', 'use_hostnames', ...Object.keys(IGNORED)],
};

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/**
 * Reads and maps the file; PilotError('E_CONFIG') naming `file:section.key` for every problem
 * (`where`, e.g. `-f` or HAPROXY_API_CONFIG_FILE, prefixes an unreadable-file error).
 */
export function readHaproxyApiToml(file: string, readFile: (path: string) => string, where?: string): HaproxyApiToml {
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    const prefix = where === undefined ? '' : `${where}: `;
    throw new PilotError('E_CONFIG', `${prefix}${file}: cannot read haproxy-api's configuration file: ${(err as Error).message}`, { cause: err });
  }
  return parseHaproxyApiToml(text, file);
}

export function parseHaproxyApiToml(text: string, file: string): HaproxyApiToml {
  // Configuration loading is synchronous: smol-toml (no dependencies) is required here, only
  // when a haproxy-api.toml is given.
  const { parse, TomlError } = createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
  let doc: Table;
  try {
    // 'throw' on __proto__/constructor keys: they are never haproxy-api keys anyway.
    doc = parse(text, { unsafeKeyBehaviour: 'throw' }) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new PilotError('E_CONFIG', `${file}:${err.line}:${err.column}: not valid TOML: ${err.message.split('\n')[0]}`, { cause: err });
    }
    throw new PilotError('E_CONFIG', `${file}: not valid TOML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }

  const errors: string[] = [];
  const values = new Map<string, { value: unknown; where: string }>();
  for (const [sectionRaw, body] of Object.entries(doc)) {
    const section = sectionRaw.toLowerCase();
    const where = `${file}:${sectionRaw}`;
    if (!(section in KNOWN)) {
      errors.push(`${where}: unknown ${isTable(body) ? 'section' : 'key'} (haproxy-api.toml has [haproxy_api], [sidecar] and [haproxy])`);
      continue;
    }
    if (!isTable(body)) {
      errors.push(`${where}: must be a section ([${section}])`);
      continue;
    }
    for (const [keyRaw, value] of Object.entries(body)) {
      const key = keyRaw.toLowerCase();
      const keyWhere = `${file}:${sectionRaw}.${keyRaw}`;
      if (!KNOWN[section]!.includes(key)) {
        errors.push(`${keyWhere}: unknown key (known in [${section}]: ${KNOWN[section]!.join(', ')})`);
        continue;
      }
      if (values.has(`${section}.${key}`)) {
        errors.push(`${keyWhere}: set twice (keys are case-insensitive)`);
        continue;
      }
      values.set(`${section}.${key}`, { value, where: keyWhere });
    }
  }

  const out: HaproxyApiToml = { file, listen: { host: '0.0.0.0', port: 7778 }, notes: [] };
  const get = (path: string): { value: unknown; where: string } | undefined => values.get(path);
  const string = (path: string, check?: (where: string, v: string) => string): string | undefined => {
    const found = get(path);
    if (found === undefined) return undefined;
    if (typeof found.value !== 'string') {
      errors.push(`${found.where}: must be a string`);
      return undefined;
    }
    if (found.value === '' || check === undefined) return found.value;
    try {
      return check(found.where, found.value);
    } catch (err) {
      errors.push((err as Error).message);
      return undefined;
    }
  };

  const apiIp = string('haproxy_api.bind_ip', (where, v) => validHost(where, v));
  if (apiIp !== undefined && apiIp !== '') out.listen.host = apiIp;
  const apiPort = get('haproxy_api.bind_port');
  if (apiPort !== undefined) {
    const v = apiPort.value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) errors.push(`${apiPort.where}: ${showValue(String(v))} is not a port number (0..65535; 0 means 7778)`);
    else if (v !== 0) out.listen.port = v;
  }
  const level = string('haproxy_api.logging_level');
  if (level !== undefined) {
    const mapped = LOG_LEVELS[level.toLowerCase()];
    if (mapped === undefined) errors.push(`${get('haproxy_api.logging_level')!.where}: ${showValue(level)} is not a log level (info, warn, error, debug)`);
    else out.logLevel = mapped;
  }

  const stateUrl = string('sidecar.state_url', (where, v) => {
    let url: URL | undefined;
    try {
      url = new URL(v);
    } catch {
      url = undefined;
    }
    if (url === undefined || !['http:', 'https:'].includes(url.protocol) || /[\s]/.test(v)) throw new Error(`${where}: ${showValue(v)} is not an http(s) URL`);
    return v;
  });
  if (stateUrl !== undefined && stateUrl !== '') out.stateUrl = stateUrl;

  const bindIp = string('haproxy.bind_ip', (where, v) => {
    if (isIP(v) === 0) throw new Error(`${where}: ${showValue(v)} is not an IP address`);
    return v;
  });
  if (bindIp !== undefined && bindIp !== '') out.bindIp = bindIp;
  const hostnames = get('haproxy.use_hostnames');
  if (hostnames !== undefined) {
    if (typeof hostnames.value !== 'boolean') errors.push(`${hostnames.where}: must be true or false`);
    else out.useHostnames = hostnames.value;
  }
  for (const key of ['user', 'group'] as const) {
    const v = string(`haproxy.${key}`, (where, value) => validName(where, value));
    if (v !== undefined && v !== '') out[key] = v;
  }
  const template = string('haproxy.template');
  if (template !== undefined && template !== '') {
    out.template = template;
    out.notes.push(
      `${get('haproxy.template')!.where}: ${showValue(template)} is a Go text/template and is not executed; haproxy-pilot renders the same frontends and backends itself (PILOT_TEMPLATES replaces its templates)`,
    );
  }
  for (const [key, why] of Object.entries(IGNORED)) {
    if (string(`haproxy.${key}`) !== undefined) out.notes.push(`${get(`haproxy.${key}`)!.where} is ignored: ${why}`);
  }

  if (errors.length > 0) throw new PilotError('E_CONFIG', errors.join('\n'), { details: { errors } });
  return out;
}
