/**
 * The one declarative table of environment variables: name, yaml path, default, meaning and
 * parser. The loader (load.ts) reads values through it and README.md's variable table is
 * generated from it (renderEnvTableMarkdown; a unit test keeps them equal).
 * Defaults are written as the text a user would type, and parsed by the same parser.
 */
import type { LevelWithSilent } from 'pino';
import type { RestartPolicy } from './types.js';
import {
  absPath, bindAddr, bool, configError, controlAddr, duration, hostPort, int, list, oneOf, port, portOrZero, scalar, str,
  type Parser,
} from './parse.js';
import { validFilePath, validIp, validName, validUri } from '../state/validate.js';

export interface EnvRow<T> {
  /** yaml path (dotted) that sets the same value; the env var wins over it. */
  yaml?: string;
  default?: string;
  meaning: string;
  parse: Parser<T>;
  /** Never logged, never passed to templates' `env`. */
  secret?: boolean;
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;

const logLevel = oneOf<LevelWithSilent>('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent');
const restart = oneOf<RestartPolicy>('on-failure', 'always', 'never');
const filePath: Parser<string> = (raw, what) => validFilePath(what, scalar(raw, what));
/**
 * HAProxy reads the sockets in the run directory (`-S <dir>/master.sock,mode,600`, `stats socket
 * <dir>/worker.sock`) as bind addresses: a comma starts the next address, and 2.6.12 refuses a
 * socket path over 97 bytes ("too long (max 97)"), so the directory takes 85 at most.
 */
const runDir: Parser<string> = (raw, what) => {
  const dir = filePath(raw, what);
  if (dir.includes(',') || Buffer.byteLength(dir) > 85) throw configError(what, raw, 'an absolute path of 85 bytes at most, without a comma (HAProxy reads the sockets there as bind addresses, and refuses socket paths over 97 bytes)');
  return dir;
};
const demo = oneOf('auto', 'on', 'off', '1', '0', 'true', 'false');
const strList: Parser<string[]> = (raw) => list(raw);
const name: Parser<string> = (raw, what) => validName(what, scalar(raw, what));
/** A service's listen address: HAProxy resolves a name in `bind` once, at parse time, and refuses the config when it cannot, so only IPs. */
const serviceBind: Parser<{ address: string; port: number }> = (raw, what) => {
  const b = bindAddr(raw, what);
  if (b.address !== '') validIp(what, b.address);
  return b;
};

export const ENV_TABLE = {
  PILOT_CONFIG: row({ default: '/etc/haproxy-pilot/pilot.yaml', meaning: 'yaml settings file; the default path is read only when it exists', parse: absPath }),
  PILOT_LOG_LEVEL: row({ yaml: 'log.level', default: 'info', meaning: 'fatal, error, warn, info, debug, trace or silent', parse: logLevel }),
  PILOT_LOG_FORMAT: row({ yaml: 'log.format', default: 'json', meaning: '`json` lines or `pretty`', parse: oneOf('json', 'pretty') }),
  PILOT_RUN_DIR: row({ yaml: 'pilot.run_dir', default: '/run/haproxy-pilot', meaning: 'runtime files: rendered config, master and worker sockets, server state; unset and the default not writable: `$XDG_RUNTIME_DIR/haproxy-pilot` or `/tmp/haproxy-pilot-<uid>`; an absolute path of 85 bytes at most, without a comma', parse: runDir }),
  PILOT_STOP_DELAY: row({ yaml: 'pilot.stop_delay', default: '0', meaning: 'on a graceful stop, keep serving this long before soft-stopping HAProxy', parse: duration }),
  PILOT_STOP_TIMEOUT: row({ yaml: 'pilot.stop_timeout', default: '8s', meaning: 'hard-kill what is left this long after a stop began', parse: duration }),
  PILOT_RELOAD_TIMEOUT: row({ yaml: 'pilot.reload_timeout', default: '10s', meaning: 'how long a reload may take to be confirmed by the master', parse: duration }),
  PILOT_CONTROL_ADDR: row({ yaml: 'pilot.control_addr', default: '127.0.0.1:7778', meaning: 'control HTTP (/health /status /metrics) address, `off` disables', parse: controlAddr }),
  PILOT_QUIET_MIN: row({ yaml: 'pilot.quiet_min', default: '200ms', meaning: 'apply a change after discovery was quiet this long…', parse: duration }),
  PILOT_QUIET_MAX: row({ yaml: 'pilot.quiet_max', default: '2s', meaning: '…but never wait longer than this', parse: duration }),
  PILOT_TEMPLATES: row({ yaml: 'pilot.templates', meaning: 'directory whose `haproxy.cfg.hbs` and/or `partials/*.hbs` replace the embedded ones', parse: absPath }),
  PILOT_STALE_AFTER: row({ yaml: 'pilot.stale_after', default: '30s', meaning: '/health turns unhealthy when a source has failed this long', parse: duration }),
  PILOT_DEMO: row({ yaml: 'pilot.demo', default: 'auto', meaning: 'demo frontend served by a helper program: `on`, `off`, or `auto` (on when nothing else is configured)', parse: demo }),
  PILOT_DEMO_PORT: row({ yaml: 'pilot.demo_port', default: '8080', meaning: 'port of the demo frontend', parse: port }),
  PILOT_PROGRAM_FAILURES: row({ yaml: 'pilot.program_failures', default: '5', meaning: '/health turns unhealthy when a helper program failed to start (or died at once) this many times in a row', parse: int(1, 1000) }),
  HAPROXY_BIN: row({ yaml: 'haproxy.bin', default: 'haproxy', meaning: 'HAProxy binary: a path, or a name looked up on PATH and then in /usr/local/sbin, /usr/sbin and /sbin', parse: str }),
  HAPROXY_CONFIG: row({ yaml: 'haproxy.config', meaning: 'run this haproxy.cfg as it is (program sections lifted) instead of rendering the template; unset, `/usr/local/etc/haproxy/haproxy.cfg` is run when it exists and nothing else is configured (as in the official image)', parse: absPath }),
  HAPROXY_MAXCONN: row({ yaml: 'haproxy.maxconn', default: '4096', meaning: 'global maxconn', parse: int(1, 10_000_000) }),
  HAPROXY_HARD_STOP_AFTER: row({ yaml: 'haproxy.hard_stop_after', default: '30s', meaning: 'old workers are killed this long after a reload or stop', parse: duration }),
  HAPROXY_LOG_FORMAT: row({ yaml: 'haproxy.log_format', default: 'raw', meaning: '`log stdout format <fmt>`: raw, rfc3164, rfc5424, or none (no logging)', parse: oneOf('raw', 'rfc3164', 'rfc5424', 'none') }),
  HAPROXY_MODE: row({ yaml: 'haproxy.mode', default: 'http', meaning: 'default proxy mode: http or tcp', parse: oneOf('http', 'tcp') }),
  HAPROXY_TIMEOUT_CONNECT: row({ yaml: 'haproxy.timeout_connect', default: '5s', meaning: '`timeout connect`', parse: duration }),
  HAPROXY_TIMEOUT_CLIENT: row({ yaml: 'haproxy.timeout_client', default: '30s', meaning: '`timeout client`', parse: duration }),
  HAPROXY_TIMEOUT_SERVER: row({ yaml: 'haproxy.timeout_server', default: '30s', meaning: '`timeout server`', parse: duration }),
  HAPROXY_TIMEOUT_HTTP_REQUEST: row({ yaml: 'haproxy.timeout_http_request', default: '10s', meaning: '`timeout http-request`', parse: duration }),
  HAPROXY_IDLE_CLOSE_ON_RESPONSE: row({ yaml: 'haproxy.idle_close_on_response', default: 'on', meaning: '`option idle-close-on-response`: keep-alive clients see no reset on reload', parse: bool }),
  HAPROXY_SERVER_STATE_FILE: row({ yaml: 'haproxy.server_state_file', default: 'on', meaning: 'keep runtime server state (addresses, drain/maint) across reloads', parse: bool }),
  STATS_PORT: row({ yaml: 'stats.port', default: '1936', meaning: 'stats page port, 0 disables it', parse: portOrZero }),
  STATS_URI: row({ yaml: 'stats.uri', default: '/haproxy?stats', meaning: 'stats page URI', parse: (raw, what) => validUri(what, scalar(raw, what)) }),
  STATS_AUTH: row({ yaml: 'stats.auth', default: 'basic', meaning: '`basic` or `none`', parse: oneOf('basic', 'none') }),
  STATS_USER: row({ yaml: 'stats.user', default: 'admin', meaning: 'stats user', parse: name }),
  STATS_PASSWORD: row({ yaml: 'stats.password', meaning: 'stats password; unset: generated at start and written to `<run dir>/stats-password`', parse: str, secret: true }),
  STATS_PASSWORD_FILE: row({ yaml: 'stats.password_file', meaning: 'file holding the stats password (one trailing newline is trimmed)', parse: absPath }),
  STATS_PROMETHEUS: row({ yaml: 'stats.prometheus', default: 'on', meaning: 'serve the Prometheus exporter at /metrics on the stats port (when HAProxy has it); it answers without credentials unless STATS_PROMETHEUS_AUTH=basic', parse: bool }),
  STATS_PROMETHEUS_AUTH: row({ yaml: 'stats.prometheus_auth', default: 'none', meaning: '`none`: /metrics on the stats port answers anyone who reaches the port; `basic`: it asks for the stats credentials (STATS_USER, STATS_PASSWORD)', parse: oneOf('none', 'basic') }),
} as const;

export type EnvName = keyof typeof ENV_TABLE;

/** Options of a family (`PROGRAM_<NAME>_RESTART`); the key '' is the family variable itself. */
export interface FamilyTable {
  prefix: string;
  yaml: string;
  options: Record<string, EnvRow<unknown>>;
}

export const PROGRAM_FAMILY = {
  prefix: 'PROGRAM_',
  yaml: 'programs',
  options: {
    '': row({ yaml: 'command', meaning: 'helper program supervised by haproxy-pilot: a command line, parsed without a shell (yaml: a string or a list)', parse: (raw) => raw }),
    RESTART: row({ yaml: 'restart', default: 'on-failure', meaning: 'on-failure, always or never', parse: restart }),
    USER: row({ yaml: 'user', meaning: 'run as this user (name or uid)', parse: str }),
    GROUP: row({ yaml: 'group', meaning: 'run with this group (name or gid)', parse: str }),
    START_ON_RELOAD: row({ yaml: 'start_on_reload', default: 'off', meaning: 'restart the program on every HAProxy reload', parse: bool }),
  },
} satisfies FamilyTable;

export const RESOLVER_FAMILY = {
  prefix: 'RESOLVER_',
  yaml: 'resolvers',
  options: {
    '': row({ yaml: 'nameservers', meaning: '`resolvers` block: `ip:port[,ip:port…]`, `aws` (169.254.169.253:53) or `resolv.conf`', parse: (raw) => raw }),
    HOLD_VALID: row({ yaml: 'hold_valid', meaning: '`hold valid`: keep a resolved address this long', parse: duration }),
    ACCEPTED_PAYLOAD_SIZE: row({ yaml: 'accepted_payload_size', meaning: '`accepted_payload_size` (512..65535)', parse: int(512, 65535) }),
  },
} satisfies FamilyTable;

export const SERVICE_FAMILY = {
  prefix: 'SERVICE_',
  yaml: 'services',
  options: {
    BIND: row({ yaml: 'bind', meaning: 'listen address: `127.0.0.1:8081`, `[::1]:8081`, `:8081` or `8081` (required; an IP address, not a name)', parse: serviceBind }),
    MODE: row({ yaml: 'mode', default: 'http', meaning: 'http or tcp', parse: oneOf('http', 'tcp') }),
    SERVERS: row({ yaml: 'servers', meaning: 'static servers `host:port,host:port`', parse: (raw, what) => list(raw).map((s) => hostPort(s, what)) }),
    DNS: row({ yaml: 'dns', meaning: 'or one DNS name `name:port` resolved at run time (server-template)', parse: hostPort }),
    RESOLVERS: row({ yaml: 'resolvers', meaning: 'resolvers block for DNS (default: the first one defined, else one from /etc/resolv.conf)', parse: name }),
    SLOTS: row({ yaml: 'slots', default: '1', meaning: 'server slots for the addresses of the DNS name', parse: int(1, 1024) }),
    RESOLVE_PREFER: row({ yaml: 'resolve_prefer', default: 'ipv4', meaning: 'ipv4 or ipv6', parse: oneOf('ipv4', 'ipv6') }),
    SSL: row({ yaml: 'ssl', default: 'off', meaning: 'TLS to the servers', parse: bool }),
    SSL_VERIFY: row({ yaml: 'ssl_verify', default: 'on', meaning: 'verify server certificates against the system CAs', parse: bool }),
    CHECK: row({ yaml: 'check', default: 'off', meaning: 'health-check the servers', parse: bool }),
    CHECK_PATH: row({ yaml: 'check_path', meaning: 'HTTP check `GET <path>` (implies CHECK)', parse: str }),
    HOST_HEADER: row({ yaml: 'host_header', meaning: 'set the Host header sent to the servers (seed 003)', parse: str }),
    BALANCE: row({ yaml: 'balance', default: 'roundrobin', meaning: 'roundrobin, static-rr, leastconn, first, source or random', parse: oneOf('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random') }),
  },
} satisfies FamilyTable;

const md = (s: string): string => s.replace(/\|/g, '\\|');

/** README.md's variable table (between the env-table markers), generated from the tables above. */
export function renderEnvTableMarkdown(sourceRows: Readonly<Record<string, EnvRow<unknown>>>): string {
  const lines = ['| Variable | Default | yaml | Meaning |', '|---|---|---|---|'];
  const add = (name: string, r: EnvRow<unknown>, yamlPath: string | undefined): void => {
    const def = r.default === undefined ? '' : `\`${r.default}\``;
    const y = yamlPath === undefined ? '' : `\`${yamlPath}\``;
    lines.push(`| \`${name}\` | ${md(def)} | ${y} | ${md(r.meaning)}${r.secret ? ' (secret)' : ''} |`);
  };
  for (const [name, r] of Object.entries({ ...ENV_TABLE, ...sourceRows }) as [string, EnvRow<unknown>][]) add(name, r, r.yaml);
  for (const fam of [PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY] as FamilyTable[]) {
    for (const [opt, r] of Object.entries(fam.options)) {
      add(`${fam.prefix}<NAME>${opt === '' ? '' : '_' + opt}`, r, `${fam.yaml}.<name>.${r.yaml}`);
    }
  }
  lines.push('');
  lines.push('yaml only: `haproxy.global` and `haproxy.defaults` (lists of extra raw lines for those sections).');
  lines.push('A `PROGRAM_<NAME>_RESTART`/`_USER`/`_GROUP`/`_START_ON_RELOAD` (or `RESOLVER_<NAME>_…`) variable is an option');
  lines.push('when `PROGRAM_<NAME>` (`RESOLVER_<NAME>`) exists. Service names, program names and resolver names are lower-cased.');
  lines.push('Durations are `500ms`, `8s`, `2m`, `1h`, `1d` or `0`, at most 24.8 days (2147483647 ms, the longest a timer holds; HAProxy');
  lines.push('has the same limit): a longer one is a configuration error naming the variable. Choices (`on`/`off`, `basic`/`none`, …) are');
  lines.push('taken as written: a value with surrounding spaces is an error, never trimmed into a choice. `HAPROXY_MAXCONN` must fit the');
  lines.push('open files hard limit (about 2 per connection plus 256): `check` and the start fail naming it when it does not.');
  return lines.join('\n');
}
