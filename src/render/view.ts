/**
 * The template context: PilotConfig and discovered backends turned into plain view objects whose
 * every string has passed src/state/validate.ts here (again, for discovered data: rendering must
 * never emit a value the validators would reject). Objects carry every key (null when absent) so
 * templates can run in Handlebars' strict mode.
 */
import { isIP } from 'node:net';
import { PilotError } from '../errors.js';
import type { PilotConfig, ResolverSpec, ServiceSpec } from '../config/types.js';
import { dnsSlotPrefix, type DiscoveredBackend, type DiscoveredServer } from '../state/model.js';
import { templateEnv } from './env-values.js';
import { PASSWORD_PLACEHOLDER } from '../run/stats-password.js';
import {
  showValue, validConfigPath, validFilePath, validHost, validHostPort, validIp, validName, validPath, validPort, validRawLine, validSecret, validServerName, validUri,
} from '../state/validate.js';

export interface RenderInput {
  config: PilotConfig;
  backends: DiscoveredBackend[];
  /** Merged raw keys of all sources (for confd-style helpers). */
  keys: Record<string, string>;
  /** The stats password to use when config.stats.password is unset (generated at start). */
  statsPassword?: string;
  /** Directory of PEM files for the HTTP frontend's `bind :443 ssl crt <dir>` (relative: HAProxy runs with `-C`). */
  certsDir?: string;
  /** The HAProxy binary has the Prometheus exporter (`haproxy -vv`). */
  hasPrometheus: boolean;
  demo?: { port: number; backendPort: number };
  /** global maxconn when the open files limit cannot hold HAPROXY_MAXCONN with this many servers (candidate.ts). */
  maxconn?: number;
  /** Views of backends already built with the same config (one cache per builder): unchanged backends are not validated again. */
  cache?: WeakMap<DiscoveredBackend, BackendView>;
}

/** Port of seed 002's frontend for backends without a route. */
export const DEFAULT_FRONTEND_PORT = 5000;
/**
 * Seed 002's health check `option httpchk HEAD / HTTP/1.1\r\nHost:localhost`, in the form
 * HAProxy 2.2+ wants: the old one warns "hiding headers … in the version string is deprecated".
 */
export const SEED_HTTPCHK = 'meth HEAD uri / ver HTTP/1.1 hdr Host localhost';

/** HAProxy time format: 30000 → `30s`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new PilotError('E_VALUE', `duration: ${ms} is not a whole number of milliseconds`);
  if (ms === 0) return '0';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A validated `host:port` as it goes into haproxy.cfg (IPv6 bracketed). */
export function validHostPortText(what: string, value: string): string {
  const hp = validHostPort(what, value);
  return addr(hp.host, hp.port);
}

export const addr = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

const bindText = (b: { address: string; port: number }): string => (b.address === '' ? `:${b.port}` : addr(b.address, b.port));

function logOption(config: PilotConfig, mode: 'http' | 'tcp'): string | null {
  if (config.global.logFormat === 'none') return null;
  // defaults already carry the option matching its own mode; other modes need their own
  // (HAProxy warns about httplog on a tcp proxy and falls back to tcplog).
  return mode === config.defaults.mode ? null : mode === 'http' ? 'httplog' : 'tcplog';
}

/**
 * `option idle-close-on-response` is set in defaults when defaults are http; HAProxy warns
 * ("ignored … requires HTTP mode") for every tcp proxy that inherits it, so those turn it off,
 * and when defaults are tcp the http frontends turn it on themselves.
 */
function idleClose(config: PilotConfig, mode: 'http' | 'tcp'): string | null {
  if (!config.defaults.idleCloseOnResponse) return null;
  if (config.defaults.mode === 'http') return mode === 'tcp' ? 'no option idle-close-on-response' : null;
  return mode === 'http' ? 'option idle-close-on-response' : null;
}

/**
 * DNS-resolved server-template slots start from the address the server-state file saved before
 * the reload (`last`), else empty until the resolvers answer. Measured on 2.6.12: with `init-addr
 * none` alone HAProxy ignores the saved address, so a reload while DNS is slow or down left every
 * slot without an address (503) until the resolvers answered.
 */
const TEMPLATE_INIT_ADDR = 'last,none';

/** Servers named by DNS are resolved by libc at start; one that fails must not stop HAProxy. */
const initAddr = (host: string): string[] => (isIP(host) === 0 ? ['init-addr last,libc,none'] : []);

function resolverView(r: ResolverSpec) {
  const what = `resolvers ${r.name}`;
  return {
    name: validName(what, r.name),
    nameservers: r.nameservers.map((ns, i) => ({ name: `ns${i + 1}`, address: addr(validIp(what, ns.host), validPort(what, ns.port)) })),
    parseResolvConf: r.parseResolvConf,
    holdValid: r.holdValidMs === undefined ? null : formatDuration(r.holdValidMs),
    acceptedPayloadSize: r.acceptedPayloadSize ?? null,
  };
}

function serviceView(s: ServiceSpec, config: PilotConfig) {
  const what = `service ${s.name} (${s.origin})`;
  const sni = s.hostHeader?.replace(/:\d+$/, '') ?? s.dns?.name ?? s.servers.find((x) => !/^[\d.:]+$/.test(x.host))?.host;
  const params: string[] = [];
  if (s.dns) params.push(`resolvers ${validName(what, s.dns.resolvers)}`, `resolve-prefer ${s.dns.preferIpv4 ? 'ipv4' : 'ipv6'}`, `init-addr ${TEMPLATE_INIT_ADDR}`);
  if (s.ssl) {
    // verify required needs CA files; @system-ca is the OS bundle (HAProxy 2.6+).
    params.push('ssl', s.sslVerify ? 'verify required ca-file @system-ca' : 'verify none');
    if (sni) params.push(`sni str(${validHost(what, sni)})`);
  }
  if (s.check) params.push('check');
  if (!/^(roundrobin|static-rr|leastconn|first|source|random)$/.test(s.balance)) {
    throw new PilotError('E_VALUE', `${what}: balance ${JSON.stringify(s.balance.slice(0, 40))} is not a known algorithm`);
  }
  const balance = s.balance;
  const hostHeader = s.hostHeader === undefined ? null : /:\d+$/.test(s.hostHeader) ? validHostPortText(what, s.hostHeader) : validHost(what, s.hostHeader);
  return {
    name: validName(what, s.name),
    origin: validRawLine(what, s.origin),
    bind: bindText({ address: s.bind.address === '' ? '' : validIp(what, s.bind.address), port: validPort(what, s.bind.port) }),
    mode: s.mode,
    logOption: logOption(config, s.mode),
    idleClose: idleClose(config, s.mode),
    balance,
    checkPath: s.checkPath === undefined ? null : validPath(what, s.checkPath),
    hostHeader,
    servers: s.servers.map((x, i) => ({
      name: `srv${i + 1}`,
      address: addr(validHost(what, x.host), validPort(what, x.port)),
      params: [...params, ...initAddr(x.host)].join(' '),
    })),
    serverTemplate: s.dns
      ? { prefix: 'srv', slots: s.dns.slots, address: addr(validHost(what, s.dns.name), validPort(what, s.dns.port)), params: params.join(' ') }
      : null,
  };
}

/** A store's server keywords (already allow-listed by the layout): visible ASCII words only. */
const WORD = /^[\x21-\x7e]{1,256}$/;

/** The server keywords of a backend: a source that gives some (ProxyMgr's server_options, even none) decides about `check` itself. */
function serverKeywords(b: DiscoveredBackend, what: string): string[] {
  if (b.serverOptions === undefined) return ['check'];
  return b.serverOptions.map((w) => {
    if (!WORD.test(w) || w.includes('#')) throw new PilotError('E_VALUE', `${what}: server option ${showValue(w)} is not one word of visible characters`);
    return w;
  });
}

function serverView(b: DiscoveredBackend, s: DiscoveredServer) {
  const what = `backend ${b.name} server ${s.name} (source ${b.source})`;
  const params = [...serverKeywords(b, what), ...initAddr(s.host)];
  if (s.state === 'maint') params.push('disabled');
  // A config cannot say "drain": weight 0 is its form, and the planner (apply/plan.ts) applies a
  // change to it at run time as HAProxy's drain state.
  if (s.state === 'drain') params.push('weight 0');
  else if (s.weight !== undefined) {
    if (!Number.isInteger(s.weight) || s.weight < 0 || s.weight > 256) throw new PilotError('E_VALUE', `${what}: weight ${s.weight} is not 0..256`);
    params.push(`weight ${s.weight}`);
  }
  return { name: validServerName(what, s.name), address: addr(validHost(what, s.host), validPort(what, s.port)), params: params.join(' ') };
}

function backendView(b: DiscoveredBackend, config: PilotConfig, resolver: string) {
  const what = `backend ${b.name} (source ${b.source})`;
  const route = b.route ?? {};
  return {
    name: validName(what, b.name),
    source: validRawLine(what, b.source),
    mode: b.mode,
    listenPort: route.port === undefined ? null : validPort(`${what} route port`, route.port),
    listenBind: route.port === undefined ? null : bindText({ address: route.bindAddress === undefined ? '' : validIp(`${what} route bind address`, route.bindAddress), port: route.port }),
    logOption: route.port === undefined ? null : logOption(config, b.mode),
    idleClose: route.port === undefined ? null : idleClose(config, b.mode),
    domain: route.domain === undefined ? null : validHost(`${what} route domain`, route.domain),
    pathPrefix: route.pathPrefix === undefined ? null : validPath(`${what} route path`, route.pathPrefix),
    // A source that gives its own section lines (ProxyMgr's listen_options) decides about
    // balance and health checks itself.
    balance: b.options?.some((l) => /^balance\s/.test(l)) ? null : 'roundrobin',
    httpchk: b.mode === 'http' && !b.options ? SEED_HTTPCHK : null,
    options: (b.options ?? []).map((l, i) => validRawLine(`${what} option ${i + 1}`, l)),
    servers: b.servers.map((s) => serverView(b, s)),
    serverTemplates: (b.dns ?? []).map((d, i) => ({
      prefix: dnsSlotPrefix(i),
      slots: d.slots,
      address: addr(validHost(what, d.name), validPort(what, d.port)),
      params: [...serverKeywords(b, what), 'resolvers', resolver, 'init-addr', TEMPLATE_INIT_ADDR].join(' '),
    })),
  };
}

export type BackendView = ReturnType<typeof backendView>;

/** use_backend rules, most specific first: host+path, then path (longest first), then host. */
function httpRoutes(backends: BackendView[]) {
  const routed = backends.filter((b) => b.listenPort === null && (b.domain !== null || b.pathPrefix !== null));
  const rank = (b: BackendView): number => (b.domain !== null && b.pathPrefix !== null ? 0 : b.pathPrefix !== null ? 1 : 2);
  return routed
    .sort((a, b) => rank(a) - rank(b) || (b.pathPrefix?.length ?? 0) - (a.pathPrefix?.length ?? 0) || a.name.localeCompare(b.name))
    .map((b) => {
      const conds: string[] = [];
      // field(1,:) drops a port from the Host header (`example.org:80`).
      if (b.domain !== null) conds.push(`{ hdr(host),field(1,:) -i ${b.domain} }`);
      if (b.pathPrefix !== null) conds.push(`{ path_beg ${b.pathPrefix} }`);
      return { backend: b.name, condition: conds.join(' ') };
    });
}

export function buildView(input: RenderInput) {
  const { config } = input;
  const resolvers = config.resolvers.map(resolverView);
  const needsResolver = input.backends.some((b) => (b.dns?.length ?? 0) > 0);
  if (needsResolver && resolvers.length === 0) {
    resolvers.push(resolverView({ name: 'system', nameservers: [], parseResolvConf: true }));
  }
  const resolver = resolvers[0]?.name ?? 'system';
  const backends = input.backends.map((b) => {
    let view = input.cache?.get(b);
    if (view === undefined) {
      view = backendView(b, config, resolver);
      input.cache?.set(b, view);
    }
    return view;
  });
  const services = config.services.map((s) => serviceView(s, config));
  const routes = httpRoutes(backends);
  const unrouted = backends.filter((b) => b.listenPort === null && b.domain === null && b.pathPrefix === null);
  const certsDir = input.certsDir === undefined ? null : validConfigPath('certsDir', input.certsDir);

  let stats = null;
  if (config.stats.port !== 0) {
    let auth = null;
    if (config.stats.auth === 'basic') {
      const password = config.stats.password ?? input.statsPassword;
      if (password === undefined) throw new PilotError('E_VALUE', 'STATS_PASSWORD: stats auth is basic but no password was given or generated');
      auth = {
        user: validName('STATS_USER', config.stats.user),
        password: validSecret('STATS_PASSWORD', password),
        // render/check without a password file: a marked placeholder (run/stats-password.ts).
        placeholder: config.stats.password === undefined && password === PASSWORD_PLACEHOLDER,
      };
    }
    stats = {
      port: validPort('STATS_PORT', config.stats.port),
      uri: validUri('STATS_URI', config.stats.uri),
      auth,
      prometheus: config.stats.prometheus && input.hasPrometheus,
      // STATS_PROMETHEUS_AUTH=basic: /metrics asks for the stats credentials too (a userlist, since `stats auth` covers only the stats URI).
      prometheusAuth: config.stats.prometheus && input.hasPrometheus && config.stats.prometheusAuth === 'basic' && auth !== null,
      runDir: validFilePath('PILOT_RUN_DIR', config.haproxy.runDir),
      logOption: logOption(config, 'http'),
      idleClose: idleClose(config, 'http'),
    };
  }

  const demo = input.demo
    ? { port: validPort('PILOT_DEMO_PORT', input.demo.port), backendPort: validPort('demo backendPort', input.demo.backendPort), logOption: logOption(config, 'http'), idleClose: idleClose(config, 'http') }
    : null;

  const g = config.global;
  const d = config.defaults;
  const runDir = validFilePath('PILOT_RUN_DIR', config.haproxy.runDir);
  // Values with a control character stay out of reach of the output (env-values.ts).
  const env = templateEnv(config.env);
  const view = {
    env,
    config: { ...config, env },
    keys: input.keys,
    certsDir,
    hasPrometheus: input.hasPrometheus,
    global: {
      log: g.logFormat === 'none' ? null : `stdout format ${g.logFormat} local0`,
      maxconn: input.maxconn ?? g.maxconn,
      hardStopAfter: g.hardStopAfterMs > 0 ? formatDuration(g.hardStopAfterMs) : null,
      serverStateFile: g.serverStateFile ? `${runDir}/server-state` : null,
      workerSocket: validFilePath('PILOT_RUN_DIR', config.haproxy.workerSocket),
      extra: g.extraGlobal.map((l, i) => validRawLine(`haproxy.global[${i}]`, l)),
    },
    defaults: {
      log: g.logFormat !== 'none',
      mode: d.mode,
      logOption: g.logFormat === 'none' ? null : d.mode === 'http' ? 'httplog' : 'tcplog',
      timeoutConnect: formatDuration(d.timeoutConnectMs),
      timeoutClient: formatDuration(d.timeoutClientMs),
      timeoutServer: formatDuration(d.timeoutServerMs),
      timeoutHttpRequest: formatDuration(d.timeoutHttpRequestMs),
      idleCloseOnResponse: d.idleCloseOnResponse && d.mode === 'http',
      loadServerState: g.serverStateFile,
      extra: d.extraDefaults.map((l, i) => validRawLine(`haproxy.defaults[${i}]`, l)),
    },
    stats,
    resolvers,
    services,
    backends,
    http: routes.length > 0 ? { port: 80, tlsPort: certsDir === null ? null : 443, certsDir, routes, logOption: logOption(config, 'http'), idleClose: idleClose(config, 'http') } : null,
    defaultFrontend: unrouted.length > 0
      ? { port: DEFAULT_FRONTEND_PORT, backend: unrouted[0]!.name, others: unrouted.slice(1).map((b) => b.name), logOption: logOption(config, 'http'), idleClose: idleClose(config, 'http') }
      : null,
    demo,
  };
  checkUniqueNames(view);
  return view;
}

export type View = ReturnType<typeof buildView>;

/** Proxy names share one namespace in HAProxy: a duplicate fails `haproxy -c`; say which ones clash. */
function checkUniqueNames(view: View): void {
  const seen = new Map<string, string>();
  const add = (name: string, what: string): void => {
    const prev = seen.get(name);
    if (prev !== undefined) throw new PilotError('E_VALUE', `proxy name "${name}" is used twice: ${prev} and ${what}`);
    seen.set(name, what);
  };
  if (view.stats) add('stats', 'the stats frontend');
  if (view.http) add('fe_http', 'the HTTP routing frontend');
  if (view.defaultFrontend) add('fe_default', `the :${DEFAULT_FRONTEND_PORT} frontend`);
  if (view.demo) {
    add('demo', 'the demo frontend');
    add('demo_backend', 'the demo backend');
  }
  for (const s of view.services) add(s.name, `service ${s.name} (${s.origin})`);
  for (const b of view.backends) add(b.name, `backend ${b.name} (source ${b.source})`);
}
