/**
 * haproxy.cfg's word grammar, in one place: the planner, the port preflight, the server-state
 * filter and program lifting all read the config through it, and helper programs' command lines
 * (PROGRAM_<NAME>, yaml `programs`) are split with it too, so a command copied from a `program`
 * section means the same thing in an environment variable. No shell is involved.
 */

/**
 * Split a config line into words like HAProxy's parse_line(): blanks separate words, `#` starts
 * a comment, "…" and '…' quote (single quotes are literal), backslash escapes (`\ `, `\#`, `\\`,
 * `\"`, `\'`, `\r`, `\n`, `\t`, `\xHH`). `$VAR`/`${VAR}`/`${VAR-default}` are expanded inside
 * double quotes when `env` is given (HAProxy expands environment variables only there).
 */
export function splitConfigWords(line: string, env?: Readonly<Record<string, string | undefined>>): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      const n = line[i + 1]!;
      inWord = true;
      if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
        cur += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
        i += 3;
        continue;
      }
      cur += n === 'r' ? '\r' : n === 'n' ? '\n' : n === 't' ? '\t' : n;
      i++;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '$' && env) {
        const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(line.slice(i));
        if (m) {
          const name = (m[1] ?? m[3])!;
          const value = env[name];
          cur += value !== undefined && value !== '' ? value : (m[2] ?? '');
          i += m[0].length - 1;
        } else cur += c;
      } else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (c === '#') break;
    if (c === ' ' || c === '\t' || c === '\r') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (inWord) words.push(cur);
  return words;
}

/** Keywords that open a section (HAProxy 2.0–3.x, cfgparse registrations). */
export const SECTION_KEYWORDS: ReadonlySet<string> = new Set([
  'global', 'defaults', 'frontend', 'backend', 'listen', 'resolvers', 'peers', 'userlist', 'program',
  'mailers', 'http-errors', 'ring', 'cache', 'fcgi-app', 'log-forward', 'namespace_list', 'traces',
  'crt-store', 'acme',
]);

export interface ConfigLine {
  /** 1-based line number. */
  line: number;
  /** The line's words (comments dropped); never empty. */
  words: string[];
  /** The raw text of the line. */
  raw: string;
}

export interface ConfigSection {
  /** `global`, `backend`, … */
  keyword: string;
  /** The section's name (`backend web` → `web`); '' for unnamed sections. */
  name: string;
  /** The section's own line. */
  header: ConfigLine;
  /** The lines inside the section that carry words. */
  body: ConfigLine[];
}

/** The first word of a plain line without tokenizing it, or undefined when quotes or escapes need the tokenizer. */
function plainFirstWord(trimmed: string): string | undefined {
  let end = 0;
  while (end < trimmed.length) {
    const c = trimmed[end]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '#') break;
    if (c === '"' || c === "'" || c === '\\') return undefined;
    end++;
  }
  return trimmed.slice(0, end);
}

/**
 * The config as sections of word lines. Section keywords open a section indented or not, as
 * HAProxy reads them; lines before the first section are ignored (HAProxy rejects them anyway).
 * `only`: keep just the body lines whose first word is one of these (`bind`, `server`): the
 * other lines are not tokenized, which matters for configs of 100,000 lines.
 */
export function configSections(text: string, only?: ReadonlySet<string>): ConfigSection[] {
  const sections: ConfigSection[] = [];
  let current: ConfigSection | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    // Fast path: blank and comment-only lines carry no words.
    const trimmed = raw.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (only) {
      const first = plainFirstWord(trimmed);
      if (first !== undefined && !only.has(first) && !SECTION_KEYWORDS.has(first)) continue;
    }
    const words = splitConfigWords(raw);
    if (only && !only.has(words[0] ?? '') && !SECTION_KEYWORDS.has(words[0] ?? '')) continue;
    if (words.length === 0) continue;
    const line: ConfigLine = { line: i + 1, words, raw };
    if (SECTION_KEYWORDS.has(words[0]!)) {
      current = { keyword: words[0]!, name: words[1] ?? '', header: line, body: [] };
      sections.push(current);
    } else current?.body.push(line);
  }
  return sections;
}

/** Proxies that hold servers. */
export const isServerSection = (s: Pick<ConfigSection, 'keyword'>): boolean => s.keyword === 'backend' || s.keyword === 'listen';
