/**
 * loadConfig: built-in defaults < yaml file (PILOT_CONFIG) < environment → a frozen PilotConfig.
 * Pure apart from the injected file access. Every problem is collected and reported together in
 * one PilotError('E_CONFIG') whose message has one line per problem, each naming the variable
 * or `file:line yaml.path` and the rejected value.
 */
import { PilotError } from '../errors.js';
import { validHost, validHostPort, validRawLine, validSecret, validToken } from '../state/validate.js';
import { ENV_TABLE, PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY } from './env-table.js';
import { spellingWarnings } from './spelling.js';
import { Layers, type FileAccess } from './layers.js';
import { list } from './parse.js';
import { emptyYaml, parseYamlFile, unusedLeaves, type YamlTree } from './yaml-file.js';
import { loadPrograms, loadResolvers, loadServices } from './load-families.js';
import type { PilotConfig, SourcesSettings } from './types.js';
import { openFilesHardLimit } from './limits.js';
import { loadSources as loadSourceKinds, sourceAdjustments, sourceEnvRows } from '../sources/registry.js';

export interface LoadConfigDeps extends FileAccess {
  env: Readonly<Record<string, string | undefined>>;
  /**
   * When PILOT_RUN_DIR is not set and its default cannot be used (not writable for this user):
   * the directory to use instead, or undefined to keep the default (see run/run-dir.ts).
   */
  runDirFallback?: (defaultDir: string) => string | undefined;
}

/** The official haproxy image's config path: run when it exists and nothing else says what to run. */
export const OFFICIAL_CONFIG = '/usr/local/etc/haproxy/haproxy.cfg';

/** Variables whose values are secrets: kept out of `config.env` (templates) and logs. */
export const SECRET_VARS: readonly string[] = Object.entries({ ...ENV_TABLE, ...sourceEnvRows() })
  .filter(([, r]) => (r as { secret?: boolean }).secret)
  .map(([n]) => n);

export function loadConfig(deps: LoadConfigDeps): PilotConfig {
  const errors: string[] = [];
  const yaml = readYaml(deps, errors);
  const L = new Layers(deps.env, yaml, deps);
  L.errors.push(...errors);

  const warnings = spellingWarnings(deps.env, { names: [...Object.keys(ENV_TABLE), ...Object.keys(sourceEnvRows())], families: [PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY] });
  let runDir = L.get('PILOT_RUN_DIR');
  if (!L.find('PILOT_RUN_DIR') && deps.runDirFallback) {
    const fallback = deps.runDirFallback(runDir);
    if (fallback !== undefined && fallback !== runDir) {
      warnings.push(`PILOT_RUN_DIR: ${runDir} is not writable for this user: using ${fallback} instead (set PILOT_RUN_DIR to choose)`);
      runDir = fallback;
    }
  }
  const rawLines = (path: string): string[] => {
    const found = L.yamlValue(path);
    if (!found) return [];
    const lines = Array.isArray(found.raw) ? found.raw : [found.raw];
    const out: string[] = [];
    lines.forEach((line, i) => {
      try {
        out.push(validRawLine(`${found.where}[${i}]`, line));
      } catch (err) {
        L.fail(err);
      }
    });
    return out;
  };

  const resolvers = loadResolvers(L);
  const services = loadServices(L, resolvers);
  const programs = loadPrograms(L);
  const sources = loadSources(L);
  const adjusted = sourceAdjustments(sources.configured);
  let userConfig = L.opt('HAPROXY_CONFIG');
  const templatesDir = L.opt('PILOT_TEMPLATES');
  const notes: string[] = [];

  const statsPassword = L.secret('STATS_PASSWORD', 'STATS_PASSWORD_FILE');
  let password: string | undefined;
  if (statsPassword) {
    try {
      password = validSecret(statsPassword.where, statsPassword.value);
    } catch (err) {
      L.fail(err);
    }
  }

  const demoMode = L.get('PILOT_DEMO');
  const demoPort = L.get('PILOT_DEMO_PORT');
  let nothingElse = services.length === 0 && sources.configured.length === 0 && userConfig === undefined;
  // Like the official image: its config path runs when nothing else says what to run (no
  // HAPROXY_CONFIG, service, source, own template, or demo asked for).
  if (nothingElse && !L.find('PILOT_DEMO') && !hasOwnTemplates(deps, templatesDir) && !L.find('HAPROXY_CONFIG') && deps.fileExists(OFFICIAL_CONFIG)) {
    userConfig = OFFICIAL_CONFIG;
    nothingElse = false;
    notes.push(`running ${OFFICIAL_CONFIG} as it is (the official image's config path; nothing else is configured): set HAPROXY_CONFIG, a service, a source or PILOT_DEMO=on to run something else`);
  }
  const demoOn = demoMode === 'auto' ? nothingElse : ['on', '1', 'true'].includes(demoMode);

  const config: PilotConfig = {
    // haproxy-api.toml's logging_level counts when PILOT_LOG_LEVEL is not set.
    log: { level: L.find('PILOT_LOG_LEVEL') ? L.get('PILOT_LOG_LEVEL') : (adjusted.logLevel ?? L.get('PILOT_LOG_LEVEL')), format: L.get('PILOT_LOG_FORMAT') },
    haproxy: {
      bin: L.get('HAPROXY_BIN'),
      ...(userConfig === undefined ? {} : { userConfig }),
      runDir,
      masterSocket: `${runDir}/master.sock`,
      workerSocket: `${runDir}/worker.sock`,
      configPath: `${runDir}/haproxy.cfg`,
      stopDelayMs: L.get('PILOT_STOP_DELAY'),
      stopTimeoutMs: L.get('PILOT_STOP_TIMEOUT'),
      reloadTimeoutMs: L.get('PILOT_RELOAD_TIMEOUT'),
    },
    programs,
    control: L.get('PILOT_CONTROL_ADDR'),
    apply: { quietMinMs: L.get('PILOT_QUIET_MIN'), quietMaxMs: L.get('PILOT_QUIET_MAX') },
    ...(templatesDir === undefined ? {} : { templatesDir }),
    global: {
      maxconn: L.get('HAPROXY_MAXCONN'),
      hardStopAfterMs: L.get('HAPROXY_HARD_STOP_AFTER'),
      logFormat: L.get('HAPROXY_LOG_FORMAT'),
      serverStateFile: L.get('HAPROXY_SERVER_STATE_FILE'),
      extraGlobal: [...rawLines('haproxy.global'), ...adjusted.globalLines],
    },
    defaults: {
      mode: L.get('HAPROXY_MODE'),
      timeoutConnectMs: L.get('HAPROXY_TIMEOUT_CONNECT'),
      timeoutClientMs: L.get('HAPROXY_TIMEOUT_CLIENT'),
      timeoutServerMs: L.get('HAPROXY_TIMEOUT_SERVER'),
      timeoutHttpRequestMs: L.get('HAPROXY_TIMEOUT_HTTP_REQUEST'),
      idleCloseOnResponse: L.get('HAPROXY_IDLE_CLOSE_ON_RESPONSE'),
      extraDefaults: rawLines('haproxy.defaults'),
    },
    stats: {
      port: L.get('STATS_PORT'),
      uri: L.get('STATS_URI'),
      auth: L.get('STATS_AUTH'),
      user: L.get('STATS_USER'),
      ...(password === undefined ? {} : { password }),
      passwordFile: `${runDir}/stats-password`,
      prometheus: L.get('STATS_PROMETHEUS'),
      prometheusAuth: L.get('STATS_PROMETHEUS_AUTH'),
    },
    resolvers,
    services,
    sources,
    ...(demoOn ? { demo: { port: demoPort } } : {}),
    env: publicEnv(deps.env),
    notes: [...yaml.notes, ...adjusted.notes, ...notes],
    warnings,
    health: { programFailures: L.get('PILOT_PROGRAM_FAILURES') },
  };

  const q = config.apply;
  if (q.quietMinMs > q.quietMaxMs) L.errors.push(`PILOT_QUIET_MIN: ${q.quietMinMs}ms is longer than PILOT_QUIET_MAX (${q.quietMaxMs}ms)`);
  const h = config.haproxy;
  // The master is armed to be SIGKILLed at the stop timeout: a delay that long never soft-stops HAProxy.
  if (h.stopDelayMs >= h.stopTimeoutMs) {
    L.errors.push(`PILOT_STOP_DELAY: ${h.stopDelayMs}ms is not shorter than PILOT_STOP_TIMEOUT (${h.stopTimeoutMs}ms); HAProxy would be killed before its soft-stop`);
  }
  if (userConfig === undefined) {
    const problem = maxconnProblem(config.global.maxconn, openFilesHardLimit(deps));
    if (problem) L.errors.push(problem);
  }
  if (config.stats.prometheusAuth === 'basic' && (config.stats.auth !== 'basic' || config.stats.port === 0)) {
    L.errors.push(`STATS_PROMETHEUS_AUTH: basic needs the stats page's credentials (STATS_AUTH=basic and a STATS_PORT)`);
  }
  L.errors.push(...unusedLeaves(yaml));
  if (L.errors.length > 0) {
    // A misspelt option can be what made a value invalid (RESOLVER_X_HOLD_VALDI=10s is read as a resolver of its own).
    L.errors.push(...warnings.filter((w) => w.includes('did you mean')));
    throw new PilotError('E_CONFIG', L.errors.join('\n'), { details: { errors: [...L.errors] } });
  }
  return deepFreeze(config);
}

/** File descriptors HAProxy needs beyond 2 per connection (listeners, per-thread pollers, sockets): a generous estimate. */
export const MAXCONN_FD_RESERVE = 256;

/**
 * HAProxy raises its open files limit to about 2 * maxconn plus a few, and cannot start when
 * the hard limit is lower ("Cannot raise FD limit"), which `haproxy -c` does not check.
 */
export function maxconnProblem(maxconn: number, hardLimit: number | undefined): string | undefined {
  if (hardLimit === undefined) return undefined;
  const needs = 2 * maxconn + MAXCONN_FD_RESERVE;
  if (needs <= hardLimit) return undefined;
  const fits = Math.max(0, Math.floor((hardLimit - MAXCONN_FD_RESERVE) / 2));
  return (
    `HAPROXY_MAXCONN: ${maxconn} needs about ${needs} file descriptors (2 per connection and some for listeners), ` +
    `but the open files limit (RLIMIT_NOFILE hard limit) is ${hardLimit}: lower HAPROXY_MAXCONN to ${fits} or less, or raise the limit (ulimit -n, --ulimit nofile)`
  );
}

function readYaml(deps: LoadConfigDeps, errors: string[]): YamlTree {
  const explicit = deps.env.PILOT_CONFIG;
  const path = explicit === undefined || explicit === '' ? (ENV_TABLE.PILOT_CONFIG.default ?? '/etc/haproxy-pilot/pilot.yaml') : explicit;
  if (!path.startsWith('/')) {
    errors.push(`PILOT_CONFIG: ${JSON.stringify(path)} is not an absolute path`);
    return emptyYaml();
  }
  if (!deps.fileExists(path)) {
    if (explicit) errors.push(`PILOT_CONFIG: ${JSON.stringify(path)} does not exist`);
    return emptyYaml(path);
  }
  let text: string;
  try {
    text = deps.readFile(path);
  } catch (err) {
    errors.push(`PILOT_CONFIG: cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    return emptyYaml(path);
  }
  return parseYamlFile(path, text, errors);
}

/** Whether PILOT_TEMPLATES holds a template of its own (the image sets it to an empty directory). */
function hasOwnTemplates(deps: LoadConfigDeps, dir: string | undefined): boolean {
  if (dir === undefined) return false;
  return deps.fileExists(`${dir}/haproxy.cfg.hbs`) || deps.fileExists(`${dir}/partials`);
}

function publicEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !SECRET_VARS.includes(k)) out[k] = v;
  return out;
}

function loadSources(L: Layers): SourcesSettings {
  return { staleAfterMs: L.get('PILOT_STALE_AFTER'), configured: loadSourceKinds(L) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
