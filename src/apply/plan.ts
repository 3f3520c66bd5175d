/**
 * The planner (pure): what is the least disruptive way to go from the config HAProxy runs to the
 * candidate? It compares the two texts section by section, so it holds for the embedded
 * templates, an operator's templates and HAPROXY_CONFIG alike, and its cost follows what changed:
 * sections whose text is unchanged are not parsed.
 *
 * Server lines are what the runtime API can change without a reload (HAProxy 2.6+):
 *   address/port (an IP)  → set server <b>/<s> addr <ip> port <p>
 *   weight                → set server <b>/<s> weight <n>
 *   `disabled` or not     → set server <b>/<s> state maint | ready
 *   `weight 0`            → set server <b>/<s> state drain: a config cannot say "drain", so a
 *                           drained server is rendered `weight 0`; at run time HAProxy's own
 *                           drain state does it (in-flight and persistent requests finish, no
 *                           new ones, shown as DRAIN, its weight kept), and leaving it is
 *                           `state ready` after the weight it should have
 *   a new server          → add server <b>/<s> <addr> <keywords>, enable health/agent, ready (or drain)
 *   a removed server      → state maint (no new connections, in-flight ones finish), then
 *                           `del server` once it holds none (the transaction retries it)
 * `add server` needs a backend with a dynamic balance algorithm (roundrobin, leastconn, first,
 * random, or a hash with `hash-type consistent`), inherits nothing from `default-server`, and
 * refuses some keywords (`resolvers`, `init-addr`, …): where that does not hold, or anything
 * else changed, the plan is a reload. See the reference, section C1/C2.
 */
import { isIP } from 'node:net';
import { SECTION_KEYWORDS, splitConfigWords, isServerSection } from '../haproxy/config-words.js';

export interface RuntimeOp {
  backend: string;
  server: string;
  kind: 'addr' | 'state' | 'weight' | 'add' | 'health' | 'agent';
  /** The runtime API command. */
  command: string;
}

/** A server HAProxy still holds after it left the config: in maint, deleted once it is idle. */
export interface Lingering {
  backend: string;
  server: string;
  /** Its server line as HAProxy loaded or added it. */
  line: ServerLine;
}

export type Plan =
  | { kind: 'none' }
  | { kind: 'runtime'; ops: RuntimeOp[]; removed: Lingering[]; returned: string[] }
  | { kind: 'reload'; reason: string };

export interface ServerLine {
  name: string;
  host: string;
  port: number;
  /** The keywords after the address, without `weight N` and `disabled`/`enabled`. */
  rest: string[];
  weight?: number;
  disabled: boolean;
}

interface Section {
  keyword: string;
  name: string;
  /** The section's text, from its header to the next section. */
  text: string;
}

/** Section keywords by their first character, for a scan that allocates nothing per line. */
const KEYWORDS_BY_CHAR = new Map<number, string[]>();
for (const k of SECTION_KEYWORDS) KEYWORDS_BY_CHAR.set(k.charCodeAt(0), [...(KEYWORDS_BY_CHAR.get(k.charCodeAt(0)) ?? []), k]);

/** The keyword that opens a section at `i` (followed by a blank or the line's end), if any. */
function keywordAt(text: string, i: number, lineEnd: number): string | undefined {
  for (const k of KEYWORDS_BY_CHAR.get(text.charCodeAt(i)) ?? []) {
    const after = i + k.length;
    if (after <= lineEnd && text.startsWith(k, i) && (after === lineEnd || text[after] === ' ' || text[after] === '\t')) return k;
  }
  return undefined;
}

let lastIndex: { text: string; sections: Section[] } | undefined;

/**
 * The config split into sections, cheaply: only the first word of each line is looked at, and
 * the running config's index is kept for the next plan (it is the same string until an apply).
 */
export function indexSections(text: string): Section[] {
  if (lastIndex?.text === text) return lastIndex.sections;
  const sections: Section[] = [];
  let start = -1;
  let current: { keyword: string; name: string } | undefined;
  let pos = 0;
  while (pos <= text.length) {
    const end = text.indexOf('\n', pos);
    const lineEnd = end < 0 ? text.length : end;
    // A section keyword is the first word of its line (HAProxy allows indentation).
    let i = pos;
    while (i < lineEnd && (text[i] === ' ' || text[i] === '\t')) i++;
    const word = i < lineEnd ? keywordAt(text, i, lineEnd) : undefined;
    if (word) {
      if (current) sections.push({ ...current, text: text.slice(start, pos) });
      current = { keyword: word, name: splitConfigWords(text.slice(i, lineEnd))[1] ?? '' };
      start = pos;
    }
    if (end < 0) break;
    pos = end + 1;
  }
  if (current) sections.push({ ...current, text: text.slice(start) });
  lastIndex = { text, sections };
  return sections;
}

/** A section's lines as words, comments and blank lines dropped. */
function lines(section: Section): string[][] {
  return section.text
    .split('\n')
    .slice(1)
    .map((l) => splitConfigWords(l))
    .filter((w) => w.length > 0);
}

export function parseServerLine(words: readonly string[]): ServerLine | undefined {
  if (words[0] !== 'server' || words.length < 3) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+|[0-9A-Fa-f:.]+?)):(\d+)$/.exec(words[2]!);
  if (!m) return undefined;
  const rest: string[] = [];
  let weight: number | undefined;
  let disabled = false;
  for (let i = 3; i < words.length; i++) {
    const w = words[i]!;
    if (w === 'weight' && i + 1 < words.length) weight = Number(words[++i]);
    else if (w === 'disabled') disabled = true;
    else if (w !== 'enabled') rest.push(w);
  }
  return { name: words[1]!, host: m[1] ?? m[2]!, port: Number(m[3]), rest, ...(weight !== undefined ? { weight } : {}), disabled };
}

const DYNAMIC_BALANCE = new Set(['roundrobin', 'leastconn', 'first', 'random']);
/**
 * Server keywords `add server` refuses (srv_kws with dynamic_ok = 0 in src/server.c, src/check.c
 * and src/cfgparse-ssl.c, 2.6 → 3.2; each one measured on 2.6.12), or that we do not risk.
 */
const NOT_DYNAMIC = new Set([
  'resolvers', 'resolve-net', 'resolve-opts', 'resolve-prefer', 'init-addr', 'redir', 'namespace', 'stick', 'non-stick',
  'socks4', 'max-reuse', 'log-proto', 'cookie', 'track', 'id',
  'no-ssl', 'no-check-ssl', 'no-check', 'no-agent-check', 'no-check-send-proxy', 'no-send-proxy-v2-ssl', 'no-send-proxy-v2-ssl-cn',
]);

interface ServerSection {
  /** Everything but the server lines, as words joined per line. */
  other: string[];
  servers: Map<string, ServerLine>;
  balance?: string[];
  hashConsistent: boolean;
  defaultServer: boolean;
}

function serverSection(section: Section): ServerSection {
  const out: ServerSection = { other: [], servers: new Map(), hashConsistent: false, defaultServer: false };
  for (const words of lines(section)) {
    const server = parseServerLine(words);
    if (server) out.servers.set(server.name, server);
    else {
      out.other.push(words.join(' '));
      if (words[0] === 'balance') out.balance = words.slice(1);
      if (words[0] === 'hash-type' && words[1] === 'consistent') out.hashConsistent = true;
      if (words[0] === 'default-server') out.defaultServer = true;
    }
  }
  return out;
}

/** Why `add server` cannot take this server into this backend, or undefined when it can. */
function cannotAdd(s: ServerLine, section: ServerSection, defaults: ServerSection | undefined): string | undefined {
  const balance = section.balance ?? defaults?.balance ?? ['roundrobin'];
  const consistent = section.hashConsistent || (section.balance === undefined && defaults?.hashConsistent === true);
  if (!DYNAMIC_BALANCE.has(balance[0]!) && !consistent) return `balance ${balance[0]} is not dynamic`;
  if (section.defaultServer || defaults?.defaultServer) return 'default-server settings are not inherited by added servers';
  if (isIP(s.host) === 0) return `${s.host} is a host name`;
  const refused = s.rest.find((w) => NOT_DYNAMIC.has(w));
  if (refused) return `"${refused}" cannot be given to an added server`;
  return undefined;
}

/** What a server line asks of HAProxy's admin state: `disabled` is maint, `weight 0` drain. */
function adminState(s: ServerLine, lingering: boolean): 'maint' | 'drain' | 'ready' {
  if (s.disabled || lingering) return 'maint';
  return s.weight === 0 ? 'drain' : 'ready';
}

const sameRest = (a: ServerLine, b: ServerLine): boolean => a.rest.length === b.rest.length && a.rest.every((w, i) => w === b.rest[i]);
const addr = (s: ServerLine): string => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`);

export interface PlanInput {
  running: string;
  next: string;
  /** Servers HAProxy still holds in maint, by `backend/server`. */
  lingering: ReadonlyMap<string, Lingering>;
}

export function planApply({ running, next, lingering }: PlanInput): Plan {
  if (running === next) return { kind: 'none' };
  const before = indexSections(running);
  const after = indexSections(next);
  const key = (s: Section): string => `${s.keyword} ${s.name}`;
  if (before.length !== after.length || before.some((s, i) => key(s) !== key(after[i]!))) {
    const names = new Set(before.map(key));
    const added = after.find((s) => !names.has(key(s)));
    const nextNames = new Set(after.map(key));
    const removed = before.find((s) => !nextNames.has(key(s)));
    return { kind: 'reload', reason: added ? `${key(added)} added` : removed ? `${key(removed)} removed` : 'sections moved' };
  }

  const ops: RuntimeOp[] = [];
  const removed: Lingering[] = [];
  const returned: string[] = [];
  let defaults: Section | undefined;
  for (let i = 0; i < after.length; i++) {
    const was = before[i]!;
    const now = after[i]!;
    if (now.keyword === 'defaults') defaults = now;
    if (was.text === now.text) continue;
    if (!isServerSection(now)) {
      // Comments and spacing are not HAProxy's concern.
      if (lines(was).join('\n') === lines(now).join('\n')) continue;
      return { kind: 'reload', reason: `${key(now)} changed` };
    }
    const old = serverSection(was);
    const cur = serverSection(now);
    if (old.other.join('\n') !== cur.other.join('\n')) return { kind: 'reload', reason: `${key(now)} changed beyond its servers` };
    const b = now.name;
    const set = (s: string, kind: RuntimeOp['kind'], rest: string): void => void ops.push({ backend: b, server: s, kind, command: `set server ${b}/${s} ${rest}` });

    for (const [name, want] of cur.servers) {
      const have = old.servers.get(name) ?? lingering.get(`${b}/${name}`)?.line;
      if (!have) {
        const why = cannotAdd(want, cur, defaults && serverSection(defaults));
        if (why) return { kind: 'reload', reason: `server ${b}/${name} added (${why})` };
        const kw = [...want.rest, ...(want.weight !== undefined ? ['weight', String(want.weight)] : [])];
        ops.push({ backend: b, server: name, kind: 'add', command: `add server ${b}/${name} ${addr(want)}${kw.length ? ` ${kw.join(' ')}` : ''}` });
        // Added servers start in maintenance with their checks off (src/server.c).
        if (want.rest.includes('check')) ops.push({ backend: b, server: name, kind: 'health', command: `enable health ${b}/${name}` });
        if (want.rest.includes('agent-check')) ops.push({ backend: b, server: name, kind: 'agent', command: `enable agent ${b}/${name}` });
        if (!want.disabled) set(name, 'state', want.weight === 0 ? 'state drain' : 'state ready');
        continue;
      }
      if (!sameRest(have, want)) return { kind: 'reload', reason: `server ${b}/${name} changed its settings` };
      if (!old.servers.has(name)) returned.push(`${b}/${name}`);
      const from = adminState(have, !old.servers.has(name));
      const to = adminState(want, false);
      // Taking traffic away goes first and giving it back last, so no request reaches a server
      // at an address or weight that is about to change.
      if (to !== from && to !== 'ready') set(name, 'state', `state ${to}`);
      if (have.host !== want.host || have.port !== want.port) {
        // `set server … addr` takes an IP (2.6 answers "Invalid addr" for a name).
        if (isIP(want.host) === 0) return { kind: 'reload', reason: `server ${b}/${name} moved to host name ${want.host}` };
        set(name, 'addr', `addr ${want.host} port ${want.port}`);
      }
      // Weight 0 is the drain state (kept above): the weight it will come back with is set then.
      if ((have.weight ?? 1) !== (want.weight ?? 1) && want.weight !== 0) set(name, 'weight', `weight ${want.weight ?? 1}`);
      if (to === 'ready' && from !== 'ready') set(name, 'state', 'state ready');
    }
    for (const [name, have] of old.servers) {
      if (cur.servers.has(name)) continue;
      if (!have.disabled) set(name, 'state', 'state maint');
      removed.push({ backend: b, server: name, line: have });
    }
  }
  return ops.length === 0 && removed.length === 0 ? { kind: 'none' } : { kind: 'runtime', ops, removed, returned };
}
