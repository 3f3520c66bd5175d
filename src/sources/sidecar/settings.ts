/**
 * Settings of the `sidecar` source kind (seed 000, haproxy-api compatibility).
 *
 * Where a value comes from, strongest first: haproxy-api's command-line flags (`-F host:port`,
 * `-f file`), then the environment / pilot yaml (`SIDECAR_*`, `HAPROXY_API_*`, yaml `sidecar.*`),
 * then haproxy-api.toml (when `-f` / HAPROXY_API_CONFIG_FILE names one), then the defaults.
 * The kind is configured when a state URL, follower mode or a haproxy-api.toml is given; any
 * other SIDECAR_* variable alone is an error (it would silently do nothing).
 *
 * `sidecarSettings` is pure apart from the injected readFile (the push token file); the TOML
 * file is read beforehand by `loadSidecarSettings`.
 */
import type { LevelWithSilent } from 'pino';
import { PilotError } from '../../errors.js';
import type { EnvRow } from '../../config/env-table.js';
import { absPath, bindAddr, bool, configError, hostPort, scalar, type Parser, type Raw } from '../../config/parse.js';
import { showValue, validToken } from '../../state/validate.js';
import { isIP } from 'node:net';
import { readHaproxyApiToml, type HaproxyApiToml } from './toml-config.js';

export interface SidecarSettings {
  /** GET here at start and whenever a push cannot be used. Follower mode: `http://<follow>/api/state.json`. */
  stateUrl: string;
  /** Follower mode (`-F` / HAPROXY_API_FOLLOW): hold `GET http://<host:port>/api/watch` open. */
  follow?: { host: string; port: number };
  /** Where Sidecar's pushes arrive (SIDECAR_LISTEN, or haproxy-api.toml [haproxy_api]). */
  listen: { host: string; port: number };
  /** IP every Sidecar listen section binds to; absent = all addresses. */
  bindIp?: string;
  useHostnames: boolean;
  /** Shared token required as `?token=` on pushes (SIDECAR_PUSH_TOKEN_FILE). A secret. */
  pushToken?: string;
  /** From haproxy-api.toml `[haproxy_api] logging_level`: use when PILOT_LOG_LEVEL is not set. */
  logLevel?: LevelWithSilent;
  /** From haproxy-api.toml `[haproxy] user/group`: HAProxy's `global` user and group. */
  haproxyUser?: string;
  haproxyGroup?: string;
  /** The haproxy-api.toml that was read, if any. */
  configFile?: string;
  /** One-line notes to log at info at start (ignored TOML keys, unused values). */
  notes: string[];
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;

const listenAddr: Parser<{ host: string; port: number }> = (raw, what) => {
  const b = bindAddr(raw, what);
  return { host: b.address === '' ? '0.0.0.0' : b.address, port: b.port };
};

const httpUrl: Parser<string> = (raw, what) => {
  const text = scalar(raw, what).trim();
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || !['http:', 'https:'].includes(url.protocol) || /\s/.test(text)) throw configError(what, raw, 'an http(s) URL');
  return text;
};

const ipAddr: Parser<string> = (raw, what) => {
  const text = scalar(raw, what).trim();
  if (isIP(text) === 0) throw configError(what, raw, 'an IP address');
  return text;
};

const filePath: Parser<string> = (raw, what) => {
  const text = scalar(raw, what);
  if (text.trim() === '' || /[\0\r\n]/.test(text)) throw configError(what, raw, 'a file path');
  return text;
};

/** The kind's rows, in the shape of src/config/env-table.ts (the lead adds them to ENV_TABLE). */
export const SIDECAR_ENV = {
  SIDECAR_STATE_URL: row({ yaml: 'sidecar.state_url', meaning: "Sidecar's state, read at start and after a push that cannot be used, e.g. `http://localhost:7777/api/state.json` (haproxy-api `[sidecar] state_url`)", parse: httpUrl }),
  SIDECAR_LISTEN: row({ yaml: 'sidecar.listen', default: '0.0.0.0:7778', meaning: "address Sidecar pushes to: `POST /update` and `/sidecar/update` (haproxy-api `[haproxy_api] bind_ip/bind_port`)", parse: listenAddr }),
  SIDECAR_BIND_IP: row({ yaml: 'sidecar.bind_ip', meaning: "IP the Sidecar services' listen sections bind to; unset: all addresses (haproxy-api `[haproxy] bind_ip`)", parse: ipAddr }),
  SIDECAR_USE_HOSTNAMES: row({ yaml: 'sidecar.use_hostnames', default: 'off', meaning: "servers at the service's Hostname instead of the port's IP (haproxy-api `use_hostnames`)", parse: bool }),
  SIDECAR_PUSH_TOKEN_FILE: row({ yaml: 'sidecar.push_token_file', meaning: 'file holding a token that pushes must carry as `?token=`; unset: the push endpoint is open', parse: absPath, secret: true }),
  HAPROXY_API_FOLLOW: row({ yaml: 'sidecar.follow', meaning: "follower mode: `host:port` of a Sidecar whose `/api/watch` stream is followed (haproxy-api `-F`)", parse: hostPort }),
  HAPROXY_API_CONFIG_FILE: row({ yaml: 'sidecar.config_file', meaning: "haproxy-api's TOML configuration file to read (haproxy-api `-f`)", parse: filePath }),
} as const;

export type SidecarEnvName = keyof typeof SIDECAR_ENV;

/** A value found for a variable: raw text (or yaml list) and where it came from (`NAME` or `file:line path`). */
export interface Found {
  raw: Raw;
  where: string;
}

/** Looks up an explicitly set value (environment, then yaml); undefined when unset. */
export type SidecarLookup = (name: SidecarEnvName) => Found | undefined;

/** A lookup over environment variables only ('' counts as unset, as in src/config/layers.ts). */
export function envLookup(env: Readonly<Record<string, string | undefined>>): SidecarLookup {
  return (name) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : { raw: v, where: name };
  };
}

export interface SidecarArgs {
  /** `-F host:port` / `--follow`. */
  follow?: string;
  /** `-f file` / `--config-file`. */
  configFile?: string;
  /** The arguments that are not haproxy-api flags, in order (the pilot's command). */
  rest: string[];
}

const FLAGS: Record<string, 'follow' | 'configFile'> = { '-F': 'follow', '--follow': 'follow', '-f': 'configFile', '--config-file': 'configFile' };

/**
 * haproxy-api's flags (kingpin: `-f/--config-file`, `-F/--follow`), in any of the spellings
 * kingpin accepts: `-F x`, `-Fx`, `--follow x`, `--follow=x`. Everything else is left in `rest`.
 */
export function parseSidecarArgs(argv: readonly string[]): SidecarArgs {
  const out: SidecarArgs = { rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let flag: string | undefined;
    let value: string | undefined;
    if (arg in FLAGS) {
      flag = arg;
      value = argv[i + 1];
      if (value === undefined || value === '' || (value.startsWith('-') && value.length > 1)) {
        throw new PilotError('E_CONFIG', `${arg}: needs a value (${FLAGS[arg] === 'follow' ? 'host:port of a Sidecar' : "haproxy-api's TOML file"})`);
      }
      i++;
    } else if (/^--(follow|config-file)=/.test(arg)) {
      flag = arg.slice(0, arg.indexOf('='));
      value = arg.slice(arg.indexOf('=') + 1);
    } else if (/^-[fF]./.test(arg)) {
      flag = arg.slice(0, 2);
      value = arg.slice(2);
    }
    if (flag === undefined || value === undefined) {
      out.rest.push(arg);
      continue;
    }
    if (value === '') throw new PilotError('E_CONFIG', `${flag}: needs a value`);
    const key = FLAGS[flag]!;
    if (out[key] !== undefined) throw new PilotError('E_CONFIG', `${flag}: given twice`);
    out[key] = value;
  }
  return out;
}

/** Which haproxy-api.toml to read, if any: `-f` wins over HAPROXY_API_CONFIG_FILE. */
export function sidecarConfigFile(lookup: SidecarLookup, args: SidecarArgs = { rest: [] }): { path: string; where: string } | undefined {
  if (args.configFile !== undefined) return { path: filePath(args.configFile, '-f'), where: '-f' };
  const found = lookup('HAPROXY_API_CONFIG_FILE');
  if (found === undefined) return undefined;
  return { path: SIDECAR_ENV.HAPROXY_API_CONFIG_FILE.parse(found.raw, found.where), where: found.where };
}

export interface SidecarSettingsInput {
  lookup: SidecarLookup;
  args?: SidecarArgs;
  /** haproxy-api.toml as read by readHaproxyApiToml, when sidecarConfigFile named one. */
  toml?: HaproxyApiToml;
  /** Reads SIDECAR_PUSH_TOKEN_FILE. */
  readFile(path: string): string;
}

/**
 * The kind's settings, or undefined when it is not configured. Every problem is reported in one
 * PilotError('E_CONFIG'), one line each, naming the variable, flag or yaml path.
 */
export function sidecarSettings(input: SidecarSettingsInput): SidecarSettings | undefined {
  const { lookup, toml } = input;
  const args = input.args ?? { rest: [] };
  const errors: string[] = [];
  const notes: string[] = [...(toml?.notes ?? [])];
  function parse<T>(name: SidecarEnvName, found: Found): T | undefined {
    try {
      return (SIDECAR_ENV[name] as unknown as EnvRow<T>).parse(found.raw, found.where);
    } catch (err) {
      errors.push((err as Error).message);
      return undefined;
    }
  }
  const opt = <T>(name: SidecarEnvName): { value: T | undefined; where: string } | undefined => {
    const found = lookup(name);
    return found === undefined ? undefined : { value: parse<T>(name, found), where: found.where };
  };

  let follow: { host: string; port: number } | undefined;
  let followWhere: string | undefined;
  if (args.follow !== undefined) {
    follow = parse('HAPROXY_API_FOLLOW', { raw: args.follow, where: '-F' });
    followWhere = '-F';
  } else {
    const f = opt<{ host: string; port: number }>('HAPROXY_API_FOLLOW');
    follow = f?.value;
    followWhere = f?.where;
  }
  const configWhere = args.configFile !== undefined ? '-f' : lookup('HAPROXY_API_CONFIG_FILE')?.where;
  const stateFound = opt<string>('SIDECAR_STATE_URL');
  const listen = opt<{ host: string; port: number }>('SIDECAR_LISTEN');
  const bindIp = opt<string>('SIDECAR_BIND_IP');
  const hostnames = opt<boolean>('SIDECAR_USE_HOSTNAMES');
  const tokenFile = opt<string>('SIDECAR_PUSH_TOKEN_FILE');

  const configured = followWhere !== undefined || configWhere !== undefined || stateFound !== undefined;
  if (!configured) {
    const stray = [listen, bindIp, hostnames, tokenFile].find((x) => x !== undefined);
    if (stray === undefined) return undefined;
    throw new PilotError('E_CONFIG', `${stray.where}: the sidecar source also needs SIDECAR_STATE_URL, HAPROXY_API_FOLLOW (-F) or HAPROXY_API_CONFIG_FILE (-f)`);
  }
  if (configWhere !== undefined && toml === undefined) {
    throw new PilotError('E_INTERNAL', `${configWhere}: haproxy-api.toml was not read before sidecarSettings (use loadSidecarSettings)`);
  }

  let stateUrl = stateFound?.value ?? toml?.stateUrl;
  if (follow !== undefined) {
    const host = follow.host.includes(':') ? `[${follow.host}]` : follow.host;
    // haproxy-api builds the same URL from -F and ignores state_url in follower mode.
    const followUrl = `http://${host}:${follow.port}/api/state.json`;
    if (stateUrl !== undefined) notes.push(`${stateFound?.where ?? `${toml?.file}:sidecar.state_url`} is not used in follower mode: the state is read from ${followUrl}`);
    stateUrl = followUrl;
  }
  if (stateUrl === undefined && stateFound === undefined && follow === undefined && errors.length === 0) {
    errors.push(`${configWhere}: ${toml?.file ?? 'haproxy-api.toml'} sets no [sidecar] state_url; set it, SIDECAR_STATE_URL or HAPROXY_API_FOLLOW (-F)`);
  }

  let pushToken: string | undefined;
  if (tokenFile?.value !== undefined) {
    const path = tokenFile.value;
    try {
      pushToken = validToken(`${tokenFile.where} (${path})`, input.readFile(path).replace(/\r?\n$/, ''));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      errors.push(err instanceof PilotError ? err.message : `${tokenFile.where}: cannot read ${showValue(path)}: ${code ?? (err as Error).message}`);
    }
  }

  if (errors.length > 0 || stateUrl === undefined) throw new PilotError('E_CONFIG', errors.join('\n'), { details: { errors } });
  const settings: SidecarSettings = {
    stateUrl,
    listen: listen?.value ?? toml?.listen ?? listenAddr(SIDECAR_ENV.SIDECAR_LISTEN.default ?? '0.0.0.0:7778', 'default of SIDECAR_LISTEN'),
    useHostnames: hostnames?.value ?? toml?.useHostnames ?? false,
    notes,
  };
  if (follow !== undefined) settings.follow = follow;
  const ip = bindIp?.value ?? toml?.bindIp;
  if (ip !== undefined) settings.bindIp = ip;
  if (pushToken !== undefined) settings.pushToken = pushToken;
  if (toml !== undefined) {
    settings.configFile = toml.file;
    if (toml.logLevel !== undefined) settings.logLevel = toml.logLevel;
    if (toml.user !== undefined) settings.haproxyUser = toml.user;
    if (toml.group !== undefined) settings.haproxyGroup = toml.group;
  }
  return settings;
}

/** Reads haproxy-api.toml when one is named, then sidecarSettings. */
export function loadSidecarSettings(input: Omit<SidecarSettingsInput, 'toml'>): SidecarSettings | undefined {
  const file = sidecarConfigFile(input.lookup, input.args);
  const toml = file === undefined ? undefined : readHaproxyApiToml(file.path, input.readFile, file.where);
  return sidecarSettings({ ...input, ...(toml === undefined ? {} : { toml }) });
}
