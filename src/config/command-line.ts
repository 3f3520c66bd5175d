/**
 * Command lines for helper programs (PROGRAM_<NAME>, yaml `programs`, and HAProxy `program`
 * sections' `command`) are split with HAProxy's own word grammar, so a command copied from a
 * `program` section means the same thing in an environment variable. No shell is involved.
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
