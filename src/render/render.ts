/**
 * renderConfig: templates + desired state → haproxy.cfg text. Pure: no I/O, no clock.
 * A failing template becomes PilotError('E_TEMPLATE') naming the file, the line and what went
 * wrong in words; an unsafe value stays E_VALUE (naming the value's origin) with the file added.
 */
import { PilotError, isPilotError } from '../errors.js';
import { SECRET_VARS } from '../config/load.js';
import { TEMPLATE_FILE, type Templates } from './templates.js';
import { HELPER_LOC } from './helpers.js';
import { templateLineFor, unmarkAndTidy } from './source-map.js';
import { buildView, type RenderInput } from './view.js';

export type { RenderInput } from './view.js';
export { loadTemplates, EMBEDDED_TEMPLATES_DIR, type Templates } from './templates.js';

export interface RenderedConfig {
  text: string;
  /** For each line of `text` (0-based), the template file that wrote it. */
  origins: (string | undefined)[];
}

/**
 * Readability only: no trailing spaces, at most one blank line in a row, one final newline.
 * Linear in the text (a config of 5,000 backends is several MB): no per-line arrays, and no
 * end-anchored pattern that V8 would retry at every position.
 */
function tidy(text: string): string {
  const parts: string[] = [];
  let blank = 0;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let last = end;
    while (last > pos && (text.charCodeAt(last - 1) === 32 || text.charCodeAt(last - 1) === 9)) last--;
    if (last === pos) blank++;
    else {
      // Blank lines between two lines are kept (one at most); before the first line, none.
      if (blank > 0 && parts.length > 0) parts.push('');
      blank = 0;
      parts.push(text.slice(pos, last));
    }
    pos = end + 1;
  }
  return `${parts.join('\n')}\n`;
}

/** The config text (the pass that runs on every change: no origin markers). */
export function renderConfig(templates: Templates, input: RenderInput): string {
  const view = buildView(input); // value errors here are E_VALUE about the input, not a template
  try {
    return tidy(templates.main(view));
  } catch (err) {
    throw templateError(templates, err);
  }
}

export function renderConfigMapped(templates: Templates, input: RenderInput): RenderedConfig {
  const view = buildView(input); // value errors here are E_VALUE about the input, not a template
  let marked: string;
  try {
    marked = templates.main(view, { data: { mark: true } });
  } catch (err) {
    throw templateError(templates, err);
  }
  const { text, origins } = unmarkAndTidy(marked);
  return { text, origins: origins.map((i) => templates.order[i]) };
}

/** Where a rendered line came from: `file line N` (best match of its static text), or the file. */
export function originOf(templates: Pick<Templates, 'sources'>, rendered: RenderedConfig, line: number): { file: string; line?: number } | undefined {
  const file = rendered.origins[line - 1];
  if (file === undefined) return undefined;
  const text = rendered.text.split('\n')[line - 1] ?? '';
  const at = templateLineFor(templates.sources[file] ?? '', text);
  return { file, ...(at === undefined ? {} : { line: at }) };
}

/** The first line of `source` that mentions `name` inside a `{{…}}` (for errors that carry no location). */
function lineMentioning(source: string | undefined, name: string): number | undefined {
  if (source === undefined) return undefined;
  const re = new RegExp(`\\{\\{[^}]*(?<![\\w-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`);
  const i = source.split('\n').findIndex((l) => re.test(l));
  return i < 0 ? undefined : i + 1;
}

function templateError(templates: Templates, err: unknown): PilotError {
  const file = (err as { [TEMPLATE_FILE]?: string })?.[TEMPLATE_FILE] ?? templates.files.main;
  const source = templates.sources[file];
  const e = err as { message?: unknown; lineNumber?: unknown; [HELPER_LOC]?: { start: { line: number } } };
  const raw = typeof e?.message === 'string' ? e.message : String(err);
  let line = typeof e?.lineNumber === 'number' ? e.lineNumber : e?.[HELPER_LOC]?.start.line;
  let message = raw;
  // Handlebars' strict mode: `"bar" not defined in [object Object] - 2:2`.
  const notDefined = /^"(.+)" not defined in [\s\S]* - \d+:\d+$/.exec(raw);
  // A lookup into a string or number: `Cannot use 'in' operator to search for 'bar' in 1`.
  const notObject = /^Cannot use 'in' operator to search for '(.+)' in ([\s\S]*)$/.exec(raw);
  const noPartial = /^The partial (.+) could not be found$/.exec(raw);
  if (notDefined) {
    const name = notDefined[1]!;
    message = SECRET_VARS.includes(name)
      ? `"${name}" is withheld from templates: it is a secret`
      : `unknown name "${name}": no such field here, and no helper of that name (write {{this.${name}}} for a field a helper name shadows)`;
  } else if (notObject) {
    message = `unknown name "${notObject[1]}": the value it is looked up in (${notObject[2]!.slice(0, 40)}) has no fields`;
    line ??= lineMentioning(source, notObject[1]!);
  } else if (noPartial) {
    const known = Object.keys(templates.files.partials).sort();
    message = `unknown partial "${noPartial[1]}" (the partials are ${known.join(', ')})`;
    line ??= lineMentioning(source, noPartial[1]!);
  } else if (isPilotError(err) && typeof err.details?.['variable'] === 'string') {
    line ??= lineMentioning(source, err.details['variable'] as string);
  }
  const where = line === undefined ? file : `${file}:${line}`;
  const details = { file, ...(line === undefined ? {} : { line }) };
  if (isPilotError(err, 'E_VALUE')) return new PilotError('E_VALUE', `${where}: ${message}`, { cause: err, details: { ...err.details, ...details } });
  return new PilotError('E_TEMPLATE', `${where}: ${message}`, { cause: err, details });
}
