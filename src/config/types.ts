/**
 * The typed, frozen configuration haproxy-pilot runs with: built-in defaults < yaml file
 * (PILOT_CONFIG) < environment. Produced by src/config/load.ts, read by everything else.
 * Durations are milliseconds, sizes are plain numbers.
 */
import type { LevelWithSilent } from 'pino';
import type { ConfiguredSource } from '../sources/kind.js';

export type RestartPolicy = 'on-failure' | 'always' | 'never';

export interface ProgramSpec {
  /** Lower-case name from PROGRAM_<NAME> or the `program <name>` section. */
  name: string;
  /** argv: the command and its arguments (parsed without a shell). */
  command: string[];
  restart: RestartPolicy;
  user?: string;
  group?: string;
  /** From HAProxy's `start-on-reload`: restart the program on every HAProxy reload. */
  startOnReload: boolean;
  /** Where the spec came from, for logs: `env PROGRAM_WEB` or `/path/haproxy.cfg:12`. */
  origin: string;
}

export interface HaproxySettings {
  /** HAProxy binary (HAPROXY_BIN, default `haproxy` from PATH). */
  bin: string;
  /** HAPROXY_CONFIG: a user file run as it is (program sections lifted). Unset: render the template. */
  userConfig?: string;
  /** Directory for runtime files: rendered config, candidates, master socket, state file. */
  runDir: string;
  /** Master CLI socket (`-S`). */
  masterSocket: string;
  /** The worker's stats socket the rendered config declares, for runtime batches. */
  workerSocket: string;
  /** The config HAProxy actually runs (rendered, or the user's config with programs lifted). */
  configPath: string;
  /** Graceful stop: keep serving this long before soft-stop (PILOT_STOP_DELAY, default 0). */
  stopDelayMs: number;
  /** Hard-kill what is left this long after the stop began (PILOT_STOP_TIMEOUT, default 8s). */
  stopTimeoutMs: number;
  /** How long to wait for a reload to be confirmed by the master. */
  reloadTimeoutMs: number;
}

export interface StatsSettings {
  port: number; // STATS_PORT, default 1936; 0 disables the stats listener
  uri: string; // STATS_URI, default /haproxy?stats (seed 002)
  auth: 'basic' | 'none'; // STATS_AUTH=none turns auth off explicitly
  user: string; // STATS_USER, default admin
  /** STATS_PASSWORD / STATS_PASSWORD_FILE; undefined: generated at start and written to passwordFile. */
  password?: string;
  /** Where a generated password is written (mode 0600). */
  passwordFile: string;
  /** Serve HAProxy's Prometheus exporter at /metrics on the stats port when the binary has it. */
  prometheus: boolean;
  /** STATS_PROMETHEUS_AUTH: `basic` puts /metrics behind the stats credentials. */
  prometheusAuth: 'none' | 'basic';
}

export interface GlobalSettings {
  maxconn: number;
  hardStopAfterMs: number;
  logFormat: 'raw' | 'rfc3164' | 'rfc5424' | 'none'; // `log stdout format <fmt>`; none: no log line
  serverStateFile: boolean; // keep runtime server state across reloads
  extraGlobal: string[]; // yaml only: extra lines for the global section
}

export interface DefaultsSettings {
  mode: 'http' | 'tcp';
  timeoutConnectMs: number;
  timeoutClientMs: number;
  timeoutServerMs: number;
  timeoutHttpRequestMs: number;
  idleCloseOnResponse: boolean; // needed for zero-drop reloads with keep-alive clients (HAProxy 2.6+)
  extraDefaults: string[]; // yaml only
}

export interface ResolverSpec {
  name: string;
  nameservers: { host: string; port: number }[];
  parseResolvConf: boolean;
  holdValidMs?: number;
  acceptedPayloadSize?: number;
}

export interface ServiceServer {
  host: string;
  port: number;
}

export interface ServiceSpec {
  name: string;
  mode: 'http' | 'tcp';
  bind: { address: string; port: number };
  /** Static servers (host:port list). */
  servers: ServiceServer[];
  /** Or one DNS name resolved at run time through a resolvers block (server-template). */
  dns?: { name: string; port: number; resolvers: string; slots: number; preferIpv4: boolean };
  ssl: boolean;
  sslVerify: boolean;
  check: boolean;
  checkPath?: string;
  /** Set the Host header to this value (seed 003's `http-request set-header Host`). */
  hostHeader?: string;
  balance: string;
  origin: string;
  /** Where the bind address was set (`SERVICE_WEB_BIND`, `pilot.yaml:4 services.web.bind`), for messages about its port. */
  bindWhere?: string;
}

export interface SourcesSettings {
  /** The source kinds turned on, with their settings (src/sources/registry.ts). */
  configured: ConfiguredSource[];
  /** /health turns unhealthy when a source has been failing this long (PILOT_STALE_AFTER). */
  staleAfterMs: number;
}

export interface PilotConfig {
  log: { level: LevelWithSilent; format: 'json' | 'pretty' };
  haproxy: HaproxySettings;
  programs: ProgramSpec[];
  control: {
    host: string;
    port: number;
    /** PILOT_CONTROL_ADDR=off: no control HTTP server (port is then 0). Added by config/load. */
    disabled?: boolean;
  }; // PILOT_CONTROL_ADDR, default 127.0.0.1:7778
  apply: { quietMinMs: number; quietMaxMs: number }; // PILOT_QUIET_MIN / PILOT_QUIET_MAX
  /** PILOT_TEMPLATES: a directory whose haproxy.cfg.hbs and/or partials/*.hbs replace the embedded ones. */
  templatesDir?: string;
  global: GlobalSettings;
  defaults: DefaultsSettings;
  stats: StatsSettings;
  resolvers: ResolverSpec[];
  services: ServiceSpec[];
  sources: SourcesSettings;
  /**
   * PILOT_DEMO (on, or auto with nothing else configured): serve a demo frontend on `port`
   * (PILOT_DEMO_PORT, 8080) from a helper program; the caller picks the helper's port and passes
   * both to renderConfig as `demo`. Absent: no demo.
   */
  demo?: { port: number };
  /** The raw environment (already filtered of secrets where they are used), for templates' `env`. */
  env: Readonly<Record<string, string>>;
  /** One-line notes for the log at start: keys of a foreign config (proxymgr.yml, haproxy-api.toml) that were ignored. */
  notes: string[];
  /** Warnings for the log at start: misspelt variables, a run directory that had to fall back. */
  warnings: string[];
  /** /health: a helper program that failed to start this many times in a row is reported (PILOT_PROGRAM_FAILURES). */
  health: { programFailures: number };
}
