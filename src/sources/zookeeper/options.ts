/**
 * ProxyMgr's `listen_options` (config lines) and `server_options` (server keywords) come from
 * ZooKeeper, so they are untrusted: anyone who can write a znode must not be able to add a line,
 * a directive or a sample expression to haproxy.cfg. They are parsed, never pasted: each line is
 * split into tokens, the directive must be on the allow-list below and every argument must match
 * its grammar. The output is rebuilt from the accepted tokens (single spaces), so what reaches
 * haproxy.cfg is exactly what the grammar allows. docs/zookeeper.md lists the same allow-list.
 *
 * Tokens are printable ASCII without quotes, backslashes, '#', '$' or '%' (HAProxy would treat
 * those as quoting, escapes, comments, environment expansion and log-format/sample expressions).
 */

export type Mode = 'http' | 'tcp';

export interface ListenOptions {
  /** From `mode http|tcp`; undefined when the lines do not say. */
  mode?: Mode;
  /** The accepted lines, normalised (one space between tokens), without the `mode` line. */
  lines: string[];
}

/** Thrown for a rejected option; `message` names the option (shortened) and why. */
export class OptionError extends Error {}

const MAX_LINE = 256;
const MAX_LINES = 64;
const MAX_SERVER_TOKENS = 64;
const SAFE_LINE = /^[\x20-\x7e\t]*$/;
const UNSAFE_CHARS = /["'\\#$%`]/;

// Argument grammars.
const INT = /^\d{1,9}$/;
/** HAProxy time: a number with an optional unit (default ms). */
const TIME = /^\d{1,9}(?:us|ms|s|m|h|d)?$/;
const URI = /^\/[A-Za-z0-9._~!&()*+,;=:@/?-]{0,255}$/;
const TOKEN = /^[A-Za-z0-9._-]{1,64}$/;
const HEADER_VALUE = /^[A-Za-z0-9._:/-]{1,128}$/;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const METHOD = /^(?:GET|HEAD|OPTIONS|POST|PUT)$/;
const HTTP_VERSION = /^HTTP\/1\.[01]$/;
const STATUS = /^[1-5]\d\d$/;
const ALPN = /^[a-z0-9./-]{1,32}(?:,[a-z0-9./-]{1,32}){0,7}$/;
const INIT_ADDR = /^(?:last|libc|none)(?:,(?:last|libc|none)){0,2}$/;

function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function intIn(what: string, value: string | undefined, min: number, max: number): string {
  if (value === undefined || !INT.test(value) || Number(value) < min || Number(value) > max) {
    throw new OptionError(`${what} needs an integer ${min}..${max}${value === undefined ? '' : `, not ${show(value)}`}`);
  }
  return String(Number(value));
}

function match(what: string, value: string | undefined, re: RegExp, expected: string): string {
  if (value === undefined || !re.test(value)) throw new OptionError(`${what} needs ${expected}${value === undefined ? '' : `, not ${show(value)}`}`);
  return value;
}

/** Splits one untrusted line into safe tokens or throws. */
function tokens(raw: unknown, what: string): string[] {
  if (typeof raw !== 'string') throw new OptionError(`${what} is not a string`);
  if (raw.length > MAX_LINE) throw new OptionError(`${what} is longer than ${MAX_LINE} characters`);
  if (!SAFE_LINE.test(raw)) throw new OptionError(`${what} ${show(raw)} has a newline or another control or non-ASCII character`);
  if (UNSAFE_CHARS.test(raw)) throw new OptionError(`${what} ${show(raw)} has a quote, backslash, "#", "$", "%" or "\`"`);
  return raw.split(/[ \t]+/).filter((t) => t !== '');
}

// ---------------------------------------------------------------------------------------------
// listen_options
// ---------------------------------------------------------------------------------------------

const BALANCE_ALGOS = new Set(['roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random', 'uri']);
/** `option <name>` without arguments. */
const FLAG_OPTIONS = new Set([
  'httplog', 'tcplog', 'dontlognull', 'log-health-checks', 'redispatch', 'abortonclose', 'allbackups',
  'http-server-close', 'httpclose', 'http-keep-alive', 'tcpka', 'clitcpka', 'srvtcpka', 'tcp-check',
  'ssl-hello-chk', 'persist',
]);
const TIMEOUTS = new Set(['connect', 'client', 'server', 'queue', 'check', 'tunnel', 'http-request', 'http-keep-alive', 'client-fin', 'server-fin']);

type LineParser = (args: string[], line: string) => string[];

function noMore(args: string[], from: number, line: string): void {
  if (args.length > from) throw new OptionError(`${show(line)}: unexpected ${show(args[from]!)}`);
}

const LISTEN_DIRECTIVES: Record<string, LineParser> = {
  balance(args, line) {
    const algo = args[0];
    if (algo !== undefined && BALANCE_ALGOS.has(algo)) {
      noMore(args, 1, line);
      return ['balance', algo];
    }
    if (algo === 'url_param') {
      noMore(args, 2, line);
      return ['balance', 'url_param', match('balance url_param', args[1], TOKEN, 'a parameter name')];
    }
    const hdr = algo === undefined ? null : /^hdr\(([A-Za-z0-9-]{1,64})\)$/.exec(algo);
    if (hdr) {
      noMore(args, 1, line);
      return ['balance', algo!];
    }
    throw new OptionError(`${show(line)}: balance takes one of ${[...BALANCE_ALGOS].join(', ')}, url_param <name> or hdr(<name>)`);
  },
  option(args, line) {
    const name = args[0];
    if (name !== undefined && FLAG_OPTIONS.has(name)) {
      noMore(args, 1, line);
      return ['option', name];
    }
    if (name === 'forwardfor') {
      if (args.length === 2 && args[1] === 'if-none') return ['option', 'forwardfor', 'if-none'];
      noMore(args, 1, line);
      return ['option', 'forwardfor'];
    }
    if (name === 'httpchk') {
      // option httpchk | httpchk <uri> | httpchk <method> <uri> [<version>]
      const rest = args.slice(1);
      if (rest.length === 0) return ['option', 'httpchk'];
      if (rest.length === 1) return ['option', 'httpchk', match('option httpchk', rest[0], URI, 'a URI path')];
      if (rest.length <= 3) {
        const out = ['option', 'httpchk', match('option httpchk', rest[0], METHOD, 'a method (GET, HEAD, OPTIONS, POST, PUT)'), match('option httpchk', rest[1], URI, 'a URI path')];
        if (rest[2] !== undefined) out.push(match('option httpchk', rest[2], HTTP_VERSION, 'HTTP/1.0 or HTTP/1.1'));
        return out;
      }
      throw new OptionError(`${show(line)}: too many arguments to option httpchk`);
    }
    throw new OptionError(`${show(line)}: option ${show(name ?? '')} is not on the allow-list`);
  },
  timeout(args, line) {
    const which = args[0];
    if (which === undefined || !TIMEOUTS.has(which)) throw new OptionError(`${show(line)}: timeout takes one of ${[...TIMEOUTS].join(', ')}`);
    noMore(args, 2, line);
    return ['timeout', which, match(`timeout ${which}`, args[1], TIME, 'a time (e.g. 5s, 500ms)')];
  },
  maxconn(args, line) {
    noMore(args, 1, line);
    return ['maxconn', intIn('maxconn', args[0], 1, 10_000_000)];
  },
  fullconn(args, line) {
    noMore(args, 1, line);
    return ['fullconn', intIn('fullconn', args[0], 1, 10_000_000)];
  },
  retries(args, line) {
    noMore(args, 1, line);
    return ['retries', intIn('retries', args[0], 0, 100)];
  },
  'hash-type'(args, line) {
    const method = match('hash-type', args[0], /^(?:map-based|consistent)$/, 'map-based or consistent');
    const out = ['hash-type', method];
    if (args[1] !== undefined) out.push(match('hash-type', args[1], /^(?:sdbm|djb2|wt6|crc32)$/, 'sdbm, djb2, wt6 or crc32'));
    if (args[2] !== undefined) out.push(match('hash-type', args[2], /^avalanche$/, 'avalanche'));
    noMore(args, 3, line);
    return out;
  },
  'http-check'(args, line) {
    const sub = args[0];
    if (sub === 'disable-on-404' || sub === 'send-state') {
      noMore(args, 1, line);
      return ['http-check', sub];
    }
    if (sub === 'expect') {
      let i = 1;
      const out = ['http-check', 'expect'];
      if (args[i] === '!') out.push(args[i++]!);
      const kind = args[i++];
      if (kind === 'status') out.push('status', match('http-check expect status', args[i++], STATUS, 'an HTTP status code'));
      else if (kind === 'string') out.push('string', match('http-check expect string', args[i++], HEADER_VALUE, 'a word of letters, digits and "._:/-"'));
      else throw new OptionError(`${show(line)}: http-check expect takes status <code> or string <word>`);
      noMore(args, i, line);
      return out;
    }
    if (sub === 'send') {
      // http-check send [meth <method>] [uri <uri>] [ver <version>] [hdr <name> <value>]...
      const out = ['http-check', 'send'];
      let i = 1;
      while (i < args.length) {
        const key = args[i++];
        if (key === 'meth') out.push('meth', match('http-check send meth', args[i++], METHOD, 'a method'));
        else if (key === 'uri') out.push('uri', match('http-check send uri', args[i++], URI, 'a URI path'));
        else if (key === 'ver') out.push('ver', match('http-check send ver', args[i++], HTTP_VERSION, 'HTTP/1.0 or HTTP/1.1'));
        else if (key === 'hdr') {
          out.push('hdr', match('http-check send hdr', args[i++], /^[A-Za-z0-9-]{1,64}$/, 'a header name'));
          out.push(match('http-check send hdr', args[i++], HEADER_VALUE, 'a value of letters, digits and "._:/-"'));
        } else throw new OptionError(`${show(line)}: http-check send takes meth, uri, ver and hdr`);
      }
      if (out.length === 2) throw new OptionError(`${show(line)}: http-check send needs meth, uri, ver or hdr`);
      return out;
    }
    throw new OptionError(`${show(line)}: http-check takes disable-on-404, send-state, expect or send`);
  },
};

/**
 * Parses `listen_options` (a JSON array of lines). `mode http|tcp` is taken out (the model
 * carries the mode); every other line must be on the allow-list. Throws OptionError naming the
 * first rejected line.
 */
export function parseListenOptions(raw: unknown): ListenOptions {
  if (raw === undefined || raw === null) return { lines: [] };
  if (!Array.isArray(raw)) throw new OptionError('listen_options is not an array of lines');
  if (raw.length > MAX_LINES) throw new OptionError(`listen_options has more than ${MAX_LINES} lines`);
  const out: ListenOptions = { lines: [] };
  raw.forEach((entry: unknown, i) => {
    const what = `listen_options[${i}]`;
    const toks = tokens(entry, what);
    if (toks.length === 0) return; // a blank line adds nothing
    const [directive, ...args] = toks as [string, ...string[]];
    if (directive === 'mode') {
      if (args.length !== 1 || (args[0] !== 'http' && args[0] !== 'tcp')) throw new OptionError(`${what} ${show(entry as string)}: mode takes http or tcp`);
      if (out.mode !== undefined && out.mode !== args[0]) throw new OptionError(`${what}: mode is set twice (${out.mode}, ${args[0]})`);
      out.mode = args[0];
      return;
    }
    const parser = Object.prototype.hasOwnProperty.call(LISTEN_DIRECTIVES, directive) ? LISTEN_DIRECTIVES[directive] : undefined;
    if (parser === undefined) throw new OptionError(`${what} ${show(entry as string)}: directive ${show(directive)} is not on the allow-list`);
    try {
      out.lines.push(parser(args, entry as string).join(' '));
    } catch (err) {
      throw new OptionError(`${what} ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// server_options
// ---------------------------------------------------------------------------------------------

/** Server keywords without an argument. */
const SERVER_FLAGS = new Set([
  'check', 'backup', 'ssl', 'check-ssl', 'no-check-ssl', 'send-proxy', 'send-proxy-v2', 'check-send-proxy',
  'agent-check', 'non-stick', 'no-send-proxy', 'no-ssl', 'tfo', 'allow-0rtt',
]);

type ArgGrammar = (value: string | undefined, kw: string) => string;
const time: ArgGrammar = (v, kw) => match(kw, v, TIME, 'a time (e.g. 2000, 2s)');
const int = (min: number, max: number): ArgGrammar => (v, kw) => intIn(kw, v, min, max);
const oneOf = (...values: string[]): ArgGrammar => (v, kw) => {
  if (v === undefined || !values.includes(v)) throw new OptionError(`${kw} takes ${values.join(', ')}${v === undefined ? '' : `, not ${show(v)}`}`);
  return v;
};

/** Server keywords with exactly one argument, and its grammar. */
const SERVER_ARGS: Record<string, ArgGrammar> = {
  inter: time,
  fastinter: time,
  downinter: time,
  slowstart: time,
  'agent-inter': time,
  'pool-purge-delay': time,
  rise: int(1, 1000),
  fall: int(1, 1000),
  weight: int(0, 256),
  maxconn: int(0, 10_000_000),
  maxqueue: int(0, 10_000_000),
  minconn: int(0, 10_000_000),
  'pool-max-conn': int(0, 10_000_000),
  'error-limit': int(1, 1000),
  port: int(1, 65535),
  'agent-port': int(1, 65535),
  verify: oneOf('none', 'required'),
  observe: oneOf('layer4', 'layer7'),
  'on-error': oneOf('fastinter', 'fail-check', 'sudden-death', 'mark-down'),
  'on-marked-down': oneOf('shutdown-sessions'),
  'on-marked-up': oneOf('shutdown-backup-sessions'),
  'ssl-min-ver': oneOf('TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'),
  'ssl-max-ver': oneOf('TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'),
  proto: oneOf('h1', 'h2'),
  // Only the system's CA bundle: a path from ZooKeeper must not choose files on this machine.
  'ca-file': oneOf('@system-ca'),
  'check-sni': (v, kw) => match(kw, v, DNS_NAME, 'a DNS name'),
  alpn: (v, kw) => match(kw, v, ALPN, 'a comma list of protocol names (h2,http/1.1)'),
  'check-alpn': (v, kw) => match(kw, v, ALPN, 'a comma list of protocol names (h2,http/1.1)'),
  'init-addr': (v, kw) => match(kw, v, INIT_ADDR, 'last, libc and/or none, comma separated'),
  // `sni` takes a sample expression; only two fixed shapes are allowed.
  sni: (v, kw) => {
    if (v === 'req.hdr(host)') return v;
    const m = v === undefined ? null : /^str\(([^()]+)\)$/.exec(v);
    if (m && DNS_NAME.test(m[1]!)) return v!;
    throw new OptionError(`${kw} takes str(<dns name>) or req.hdr(host)${v === undefined ? '' : `, not ${show(v)}`}`);
  },
};

/**
 * Parses `server_options` (a JSON array of strings, each one or more keywords; ProxyMgr joined
 * them with spaces). Returns the accepted tokens; throws OptionError naming the first rejected one.
 * `mode` is the service's mode: keywords that only work in one mode are checked against it.
 */
export function parseServerOptions(raw: unknown, mode: Mode = 'tcp'): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new OptionError('server_options is not an array of strings');
  const toks: string[] = [];
  raw.forEach((entry: unknown, i) => toks.push(...tokens(entry, `server_options[${i}]`)));
  if (toks.length > MAX_SERVER_TOKENS) throw new OptionError(`server_options has more than ${MAX_SERVER_TOKENS} keywords`);
  const out: string[] = [];
  const given = new Map<string, string | true>();
  for (let i = 0; i < toks.length; i++) {
    const kw = toks[i]!;
    if (SERVER_FLAGS.has(kw)) {
      out.push(kw);
      given.set(kw, true);
      continue;
    }
    const grammar = Object.prototype.hasOwnProperty.call(SERVER_ARGS, kw) ? SERVER_ARGS[kw] : undefined;
    if (grammar === undefined) throw new OptionError(`server_options: keyword ${show(kw)} is not on the allow-list`);
    try {
      const value = grammar(toks[++i], kw);
      out.push(kw, value);
      given.set(kw, value);
    } catch (err) {
      throw new OptionError(`server_options: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  checkCombinations(given, mode);
  return out;
}

const TLS_ORDER = ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Keyword combinations HAProxy refuses when it loads the config (measured with `haproxy -c` on
 * 2.6.12): one such blob would make every candidate fail its check and block every other change,
 * so the service is skipped here instead, naming the reason.
 */
function checkCombinations(given: ReadonlyMap<string, string | true>, mode: Mode): void {
  if ((given.has('ssl') || given.has('check-ssl')) && !(given.get('verify') === 'none' || (given.get('verify') === 'required' && given.has('ca-file')))) {
    throw new OptionError('server_options: ssl and check-ssl need "verify none" or "verify required ca-file @system-ca" (HAProxy refuses TLS to servers without a CA file)');
  }
  if (given.has('proto') && mode !== 'http') throw new OptionError(`server_options: proto ${String(given.get('proto'))} needs "mode http" in listen_options`);
  if (given.has('agent-check') && !given.has('agent-port')) throw new OptionError('server_options: agent-check needs agent-port <port>');
  const min = given.get('ssl-min-ver');
  const max = given.get('ssl-max-ver');
  if (typeof min === 'string' && typeof max === 'string' && TLS_ORDER.indexOf(min) > TLS_ORDER.indexOf(max)) {
    throw new OptionError(`server_options: ssl-min-ver ${min} is above ssl-max-ver ${max}`);
  }
}

/** The allow-lists, for docs and tests. */
export const ALLOWED = {
  listenDirectives: ['mode', ...Object.keys(LISTEN_DIRECTIVES)],
  options: [...FLAG_OPTIONS, 'forwardfor', 'httpchk'],
  balance: [...BALANCE_ALGOS, 'url_param', 'hdr(<name>)'],
  timeouts: [...TIMEOUTS],
  serverFlags: [...SERVER_FLAGS],
  serverArgs: Object.keys(SERVER_ARGS),
} as const;
