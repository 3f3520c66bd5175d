/**
 * What a render must look like, computed independently of the templates from what was accepted
 * (the loaded PilotConfig and the merged backends):
 *
 *  - the sections are exactly the expected ones (global, defaults, stats, one `resolvers` per
 *    resolver, one `listen` per service, fe_http / fe_default when backends need them, one
 *    `backend` or `listen` per backend, the demo);
 *  - per section, as many `server`, `server-template`, `nameserver`, `use_backend` and `bind`
 *    lines as the accepted entries have;
 *  - every line starts with a directive the templates write, and every word of every line is
 *    a fixed word of the templates or a value the validators accepted (so nothing added an
 *    argument, a comment or an expansion);
 *  - the text is printable ASCII lines, and no hostile input that holds a line break appears in
 *    it (a value never spans a newline).
 */
import type { PilotConfig } from '../../../src/config/types.js';
import type { DiscoveredBackend } from '../../../src/state/model.js';
import { configSections } from '../../../src/haproxy/config-words.js';
import { addr, formatDuration } from '../../../src/render/view.js';

export interface RenderFacts {
  config: PilotConfig;
  backends: readonly DiscoveredBackend[];
  /** Certificates were staged (fe_http then binds :443 too). */
  hasCerts: boolean;
  demo?: { port: number; backendPort: number };
  statsPassword?: string;
}

const DIRECTIVES = new Set([
  'log', 'maxconn', 'hard-stop-after', 'server-state-file', 'mode', 'option', 'no', 'timeout', 'load-server-state-from-file',
  'bind', 'balance', 'server', 'server-template', 'http-check', 'http-request', 'use_backend', 'default_backend', 'stats',
  'nameserver', 'parse-resolv-conf', 'hold', 'accepted_payload_size', 'fullconn', 'retries', 'hash-type', 'user', 'group',
]);

const FIXED = new Set([
  'global', 'defaults', 'frontend', 'backend', 'listen', 'resolvers', ...DIRECTIVES,
  'stdout', 'format', 'raw', 'rfc3164', 'rfc5424', 'local0', 'http', 'tcp', 'httplog', 'tcplog', 'dontlognull', 'connect', 'client',
  'http-request', 'idle-close-on-response', 'roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random', 'httpchk', 'send',
  'meth', 'HEAD', 'GET', 'uri', 'ver', 'HTTP/1.1', 'hdr', 'Host', 'localhost', 'check', 'init-addr', 'last,libc,none', 'none',
  'weight', 'disabled', 'resolve-prefer', 'ipv4', 'ipv6', 'ssl', 'verify', 'required', 'ca-file', '@system-ca', 'sni', 'if', '{', '}',
  'hdr(host),field(1,:)', '-i', 'path_beg', 'enable', 'refresh', '10s', 'auth', 'use-service', 'prometheus-exporter', 'path',
  '/metrics', 'crt', 'certs', 'valid', 'fe_http', 'fe_default', 'demo', 'demo_backend', 'set-header', ':80', ':443', ':5000',
  '/', '0', 'socket', '600', 'level', 'admin', 'last,none',
]);

/** Fields of the config that never reach haproxy.cfg as words. */
const SKIP = new Set(['env', 'sources', 'programs', 'notes', 'log', 'control', 'apply', 'origin', 'source', 'passwordFile', 'bin', 'configPath', 'masterSocket', 'userConfig', 'templatesDir', 'password']);
/** Fields whose value is several words (lines of options). */
const MULTI = new Set(['options', 'extraGlobal', 'extraDefaults']);

function walk(value: unknown, key: string, words: Set<string>, bad: string[], path: string): void {
  if (SKIP.has(key)) return;
  if (typeof value === 'string') {
    if (MULTI.has(key)) {
      if (!/^[\x20-\x7e\t]+$/.test(value)) bad.push(`${path}: ${JSON.stringify(value)} is not one printable line`);
      for (const w of value.split(/[ \t]+/)) if (w !== '') words.add(w);
    } else {
      // Every accepted single value is one visible word (bind addresses may be '').
      if (!/^[\x21-\x7e]*$/.test(value)) bad.push(`${path}: ${JSON.stringify(value)} is not one visible word`);
      words.add(value);
    }
    return;
  }
  if (typeof value === 'number') {
    words.add(String(value));
    if (Number.isInteger(value) && value >= 0) words.add(formatDuration(value));
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, MULTI.has(key) ? key : '', words, bad, `${path}[${i}]`));
    return;
  }
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const p = o.port;
    if (typeof p === 'number') {
      for (const h of [o.host, o.address, o.name, o.bindAddress]) if (typeof h === 'string' && h !== '') words.add(addr(h, p));
      words.add(`:${p}`);
    }
    for (const [k, v] of Object.entries(o)) walk(v, k, words, bad, `${path}.${k}`);
  }
}

export interface Expectation {
  sections: Map<string, Partial<Record<'server' | 'server-template' | 'nameserver' | 'use_backend' | 'bind', number>>>;
  words: Set<string>;
  /** Accepted values that are not one visible word: each is a finding. */
  unclean: string[];
}

export function expectFrom(f: RenderFacts): Expectation {
  const { config, backends } = f;
  const words = new Set(FIXED);
  const unclean: string[] = [];
  walk({ global: config.global, defaults: config.defaults, stats: config.stats, resolvers: config.resolvers, services: config.services, runDir: config.haproxy.runDir }, '', words, unclean, 'config');
  walk(backends, '', words, unclean, 'backends');
  words.add(`${config.haproxy.runDir}/server-state`);
  words.add(config.haproxy.workerSocket);
  // A service's TLS SNI is its Host header without the port.
  for (const s of config.services) if (s.hostHeader !== undefined) words.add(s.hostHeader.replace(/:\d+$/, ''));
  const password = f.statsPassword;
  if (password !== undefined) words.add(`${config.stats.user}:${password}`);
  if (f.demo) {
    words.add(`:${f.demo.port}`);
    words.add(`127.0.0.1:${f.demo.backendPort}`);
  }

  const sections: Expectation['sections'] = new Map();
  const add = (key: string, counts: Expectation['sections'] extends Map<string, infer V> ? V : never): void => {
    if (sections.has(key)) unclean.push(`section ${key} is expected twice`);
    sections.set(key, counts);
  };
  add('global', {});
  add('defaults', {});
  if (config.stats.port !== 0) add('frontend stats', { bind: 1 });
  const resolvers = [...config.resolvers];
  if (resolvers.length === 0 && backends.some((b) => (b.dns?.length ?? 0) > 0)) resolvers.push({ name: 'system', nameservers: [], parseResolvConf: true });
  for (const r of resolvers) {
    add(`resolvers ${r.name}`, { nameserver: r.nameservers.length });
    words.add(r.name);
  }
  for (const s of config.services) add(`listen ${s.name}`, { bind: 1, server: s.servers.length, 'server-template': s.dns ? 1 : 0 });
  const listening = (b: DiscoveredBackend): boolean => b.route?.port !== undefined;
  const routed = backends.filter((b) => !listening(b) && (b.route?.domain !== undefined || b.route?.pathPrefix !== undefined));
  const unrouted = backends.filter((b) => !listening(b) && b.route?.domain === undefined && b.route?.pathPrefix === undefined);
  if (routed.length > 0) add('frontend fe_http', { bind: f.hasCerts ? 2 : 1, use_backend: routed.length });
  if (unrouted.length > 0) add('frontend fe_default', { bind: 1 });
  for (const b of backends) {
    add(`${listening(b) ? 'listen' : 'backend'} ${b.name}`, { bind: listening(b) ? 1 : 0, server: b.servers.length, 'server-template': b.dns?.length ?? 0 });
  }
  if (f.demo) {
    add('frontend demo', { bind: 1 });
    add('backend demo_backend', { server: 1 });
  }
  return { sections, words, unclean };
}

const STR = /^str\((.+)\)$/;
const NS = /^ns\d+$/;
const TEMPLATE_PREFIX = /^srv(\d+_?)?$/;

/** Problems with a render against the expectation; [] when it holds. */
export function checkRender(text: string, e: Expectation, hostileInputs: readonly string[] = []): string[] {
  const problems = [...e.unclean];
  if (!/^[\t\x20-\x7e\n]*$/.test(text)) problems.push('the render holds a character that is not printable ASCII');
  for (const s of hostileInputs) {
    // A line break inside the value (edges alone are covered by the section and word checks).
    const inner = s.trim();
    if (/[\r\n\u2028\u2029]/.test(inner) && text.includes(inner)) {
      problems.push(`the input ${JSON.stringify(s.slice(0, 80))} appears in the render across a line break`);
    }
  }
  const found = new Map<string, Map<string, number>>();
  for (const s of configSections(text)) {
    const key = s.name === '' ? s.keyword : `${s.keyword} ${s.name}`;
    if (s.header.words.length > (s.name === '' ? 1 : 2)) problems.push(`line ${s.header.line}: section header ${JSON.stringify(s.header.raw)} has extra words`);
    if (found.has(key)) problems.push(`line ${s.header.line}: section ${key} appears twice`);
    const counts = new Map<string, number>();
    found.set(key, counts);
    for (const line of s.body) {
      const d = line.words[0]!;
      if (!DIRECTIVES.has(d)) problems.push(`line ${line.line}: ${JSON.stringify(line.raw)} starts with an unexpected directive`);
      counts.set(d, (counts.get(d) ?? 0) + 1);
      for (const w of line.words) {
        if (e.words.has(w) || NS.test(w) || TEMPLATE_PREFIX.test(w)) continue;
        const m = STR.exec(w);
        if (m && e.words.has(m[1]!)) continue;
        problems.push(`line ${line.line}: word ${JSON.stringify(w)} of ${JSON.stringify(line.raw)} is neither a template word nor an accepted value`);
      }
    }
  }
  for (const [key, want] of e.sections) {
    const got = found.get(key);
    if (!got) {
      problems.push(`section ${key} is missing`);
      continue;
    }
    for (const [d, n] of Object.entries(want)) {
      if ((got.get(d) ?? 0) !== n) problems.push(`section ${key}: ${got.get(d) ?? 0} ${d} line(s), expected ${n}`);
    }
  }
  for (const key of found.keys()) if (!e.sections.has(key)) problems.push(`unexpected section ${key}`);
  return problems;
}

/**
 * The render's shape: its distinct lines, each prefixed by its section's keyword, with every
 * value replaced by its class (`*`, or wordClass() when `fine`), template words kept, and a
 * backend a frontend uses replaced by that backend's mode. `haproxy -c` checks renders until
 * every line shape was in one of them; value diversity is checked by the shared candidates.
 */
export function shapeOf(text: string, fine: boolean): string[] {
  const sections = configSections(text);
  const modes = new Map(sections.map((s) => [s.name, s.body.find((l) => l.words[0] === 'mode')?.words[1] ?? 'default']));
  const shapes = new Set<string>();
  for (const s of sections) {
    for (const l of [s.header, ...s.body]) {
      const line = l.words
        .map((w, i) => {
          if (i > 0 && (l.words[i - 1] === 'default_backend' || l.words[i - 1] === 'use_backend')) return `->${modes.get(w) ?? '?'}`;
          if (i === 0 || FIXED.has(w)) return w;
          if (fine) return wordClass(w);
          // Boundary numbers keep their value (a port of 1 or 65535 gets a check of its own).
          const num = /^(:?)(\d+)$/.exec(w);
          return num && NUMBER_EDGES.has(Number(num[2])) ? w : '*';
        })
        .join(' ')
        .replace(/\*( \*)+/g, '*+');
      shapes.add(`${s.keyword}| ${line}`);
    }
  }
  return [...shapes];
}

const NUMBER_EDGES = new Set([0, 1, 2, 63, 64, 255, 256, 511, 512, 1000, 1023, 1024, 4096, 65535, 1_000_000, 10_000_000]);

/** A value's class: exact for boundary numbers, else its characters' kinds and its length. */
export function wordClass(w: string): string {
  if (/^\d+$/.test(w)) return NUMBER_EDGES.has(Number(w)) ? w : `n${w.length}`;
  const kinds = new Set<string>();
  for (const c of w) kinds.add(/[a-z]/.test(c) ? 'a' : /[A-Z]/.test(c) ? 'A' : /[0-9]/.test(c) ? '9' : c);
  const len = w.length <= 2 ? String(w.length) : w.length < 63 ? 'm' : w.length === 63 ? '63' : w.length < 253 ? 'l' : 'xl';
  const edge = (c: string | undefined): string => (c === undefined ? '' : /[a-z]/i.test(c) ? 'a' : /\d/.test(c) ? '9' : c);
  return `${edge(w[0])}${[...kinds].sort().join('')}${edge(w[w.length - 1])}${len}`;
}
