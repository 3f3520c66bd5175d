/**
 * The zookeeper source kind's settings: env rows (ZK_*, yaml `zookeeper.*`), the pure function
 * that turns their parsed values into ZookeeperSettings, the digest-auth file reader, and the
 * mapping from ProxyMgr's own proxymgr.yml shape (seed 004) to pilot.yaml paths.
 */
import { readFileSync } from 'node:fs';
import { PilotError } from '../../errors.js';
import type { EnvRow } from '../../config/env-table.js';
import { absPath, configError, duration, type Parser, type Raw } from '../../config/parse.js';
import { showValue, validRawLine } from '../../state/validate.js';
import { connectString, parseConnectString, validZnodePath, type ZkServer } from './znode.js';

export interface ZookeeperSettings {
  /** The service_config ensemble. */
  servers: ZkServer[];
  /** `host:port,…`, as the client gets it. */
  connectString: string;
  /** The service_config path: its children are services. */
  path: string;
  sessionTimeoutMs: number;
  /** File holding `user:password` for digest auth (read when the source starts). */
  authFile?: string;
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;

/** Wraps validate.ts's E_VALUE into the loader's E_CONFIG, keeping the message (it names `what`). */
function asConfig<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PilotError && err.code === 'E_VALUE') throw new PilotError('E_CONFIG', err.message, { cause: err, details: err.details });
    throw err;
  }
}

const servers: Parser<ZkServer[]> = (raw, what) => asConfig(() => parseConnectString(what, Array.isArray(raw) ? raw.join(',') : raw));
const znodePath: Parser<string> = (raw, what) => {
  if (Array.isArray(raw)) throw configError(what, raw, 'a single znode path (got a list)');
  return asConfig(() => validZnodePath(what, raw.trim()));
};
const sessionTimeout: Parser<number> = (raw, what) => {
  const ms = duration(raw, what);
  // ZooKeeper negotiates the timeout into [2, 20] ticks; below 1 s a GC pause expires sessions.
  if (ms < 1000 || ms > 600_000) throw configError(what, raw, 'a duration between 1s and 10m');
  return ms;
};

const DEFAULT_SESSION_TIMEOUT = '10s';

export const ZOOKEEPER_ENV = {
  ZK_SERVERS: row({ yaml: 'zookeeper.servers', meaning: 'ZooKeeper ensemble `host:port,host:port` holding the service nodes (ProxyMgr `service_config.servers`)', parse: servers }),
  ZK_PATH: row({ yaml: 'zookeeper.path', meaning: 'znode whose children are services, e.g. `/service_config` (ProxyMgr `service_config.path`)', parse: znodePath }),
  ZK_SESSION_TIMEOUT: row({ yaml: 'zookeeper.session_timeout', default: DEFAULT_SESSION_TIMEOUT, meaning: 'ZooKeeper session timeout (1s..10m); the ensemble may narrow it', parse: sessionTimeout }),
  ZK_AUTH_FILE: row({ yaml: 'zookeeper.auth_file', meaning: 'file holding `user:password` for ZooKeeper digest auth (never logged)', parse: absPath, secret: true }),
} as const;

export type ZookeeperEnvName = keyof typeof ZOOKEEPER_ENV;

/** Parsed values of the rows (undefined: not set). */
export interface ZookeeperValues {
  ZK_SERVERS?: ZkServer[];
  ZK_PATH?: string;
  ZK_SESSION_TIMEOUT?: number;
  ZK_AUTH_FILE?: string;
}

/** The kind's settings, or undefined when ZooKeeper is not configured. Throws E_CONFIG naming the variable. */
export function zookeeperSettings(v: ZookeeperValues): ZookeeperSettings | undefined {
  if (v.ZK_SERVERS === undefined && v.ZK_PATH === undefined) {
    if (v.ZK_AUTH_FILE !== undefined) throw new PilotError('E_CONFIG', 'ZK_AUTH_FILE: set, but ZK_SERVERS and ZK_PATH are not');
    return undefined;
  }
  if (v.ZK_SERVERS === undefined) throw new PilotError('E_CONFIG', 'ZK_SERVERS: required when ZK_PATH is set (the ZooKeeper ensemble, host:port,host:port)');
  if (v.ZK_PATH === undefined) throw new PilotError('E_CONFIG', 'ZK_PATH: required when ZK_SERVERS is set (the znode holding the services, e.g. /service_config)');
  const sessionTimeoutMs = v.ZK_SESSION_TIMEOUT ?? sessionTimeout(DEFAULT_SESSION_TIMEOUT, 'default of ZK_SESSION_TIMEOUT');
  return {
    servers: v.ZK_SERVERS,
    connectString: connectString(v.ZK_SERVERS),
    path: v.ZK_PATH,
    sessionTimeoutMs,
    ...(v.ZK_AUTH_FILE === undefined ? {} : { authFile: v.ZK_AUTH_FILE }),
  };
}

export interface ZookeeperAuth {
  user: string;
  password: string;
}

/**
 * Reads ZK_AUTH_FILE: one line `user:password` (one trailing newline trimmed). Errors name the
 * variable and the file, never the content.
 */
export function readZookeeperAuth(file: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ZookeeperAuth {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new PilotError('E_CONFIG', `ZK_AUTH_FILE: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { details: { what: 'ZK_AUTH_FILE' } });
  }
  const line = text.replace(/\r?\n$/, '');
  const colon = line.indexOf(':');
  if (colon <= 0 || colon === line.length - 1 || !/^[\x21-\x7e]+$/.test(line)) {
    throw new PilotError('E_CONFIG', `ZK_AUTH_FILE: ${file} does not hold one line "user:password" (${line.length} characters, printable, no spaces)`, {
      details: { what: 'ZK_AUTH_FILE' },
    });
  }
  return { user: line.slice(0, colon), password: line.slice(colon + 1) };
}
