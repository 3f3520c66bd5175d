/**
 * Which template wrote which line of the rendered config, so that `haproxy -c` complaining about
 * line 42 can be told as "templates/partials/defaults.hbs line 6". Every compiled template wraps
 * its output in two markers (control characters no value can contain: helpers and the view refuse
 * them); unmark() removes them and notes, for each output line, the innermost template that
 * wrote its first character. The text without markers is exactly the text rendered before.
 */

const START = '\u0001';
const SEP = '\u0002';
const END = '\u0003';
const MARKERS = /[\u0001-\u0003]/;

/** Wraps one template's output; the end marker goes before a final newline so that Handlebars' partial indentation stays as it was. */
export function markOutput(index: number, text: string): string {
  const body = text.endsWith('\n') ? `${text.slice(0, -1)}${END}\n` : `${text}${END}`;
  return `${START}${index}${SEP}${body}`;
}

export interface Mapped {
  text: string;
  /** For each line of `text` (0-based), the index of the template that wrote it, or -1. */
  origins: number[];
}

/** Removes the markers; readability as before: no trailing spaces, at most one blank line in a row, one final newline. */
export function unmarkAndTidy(marked: string): Mapped {
  const stack: number[] = [];
  const lines: { text: string; origin: number }[] = [];
  for (const raw of marked.split('\n')) {
    let text = '';
    let origin: number | undefined;
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (c === START) {
        const sep = raw.indexOf(SEP, i);
        stack.push(Number(raw.slice(i + 1, sep)));
        i = sep;
      } else if (c === END) stack.pop();
      else {
        if (origin === undefined && c !== ' ' && c !== '\t') origin = stack[stack.length - 1] ?? -1;
        text += c;
      }
    }
    lines.push({ text: text.replace(/[ \t]+$/, ''), origin: origin ?? stack[stack.length - 1] ?? -1 });
  }
  const out: { text: string; origin: number }[] = [];
  for (const l of lines) {
    if (l.text === '' && (out.length === 0 || out[out.length - 1]!.text === '')) continue;
    out.push(l);
  }
  while (out.length > 0 && out[out.length - 1]!.text === '') out.pop();
  return { text: `${out.map((l) => l.text).join('\n')}\n`, origins: out.map((l) => l.origin) };
}

/** Whether a string carries a marker (values never may). */
export const hasMarker = (s: string): boolean => MARKERS.test(s);

/**
 * The line of `source` (1-based) that most likely wrote `line`: static text must match around
 * the `{{…}}` parts; the candidate with the most static text wins (ties: the first).
 */
export function templateLineFor(source: string, line: string): number | undefined {
  const target = line.trim();
  let best: number | undefined;
  let bestStatic = -1;
  source.split('\n').forEach((tpl, i) => {
    const t = tpl.trim();
    if (t === '' || /^\{\{[#/^!>~]/.test(t) || /^\{\{else/.test(t)) return;
    const parts = t.split(/\{\{\{?[^}]*\}?\}\}/);
    const statics = parts.join('').length;
    const re = new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?')}$`);
    if (re.test(target) && statics > bestStatic) {
      best = i + 1;
      bestStatic = statics;
    }
  });
  return best;
}
