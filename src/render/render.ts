/**
 * renderConfig: templates + desired state → haproxy.cfg text. Pure: no I/O, no clock.
 * A failing template becomes PilotError('E_TEMPLATE') naming the file and Handlebars' message;
 * an unsafe value stays E_VALUE (naming the value's origin) with the file added.
 */
import { PilotError, isPilotError } from '../errors.js';
import { TEMPLATE_FILE, type Templates } from './templates.js';
import { buildView, type RenderInput } from './view.js';

export type { RenderInput } from './view.js';
export { loadTemplates, EMBEDDED_TEMPLATES_DIR, type Templates } from './templates.js';

export function renderConfig(templates: Templates, input: RenderInput): string {
  const view = buildView(input); // value errors here are E_VALUE about the input, not a template
  let text: string;
  try {
    text = templates.main(view);
  } catch (err) {
    const file = (err as { [TEMPLATE_FILE]?: string })?.[TEMPLATE_FILE] ?? templates.files.main;
    if (isPilotError(err, 'E_VALUE')) throw new PilotError('E_VALUE', `${file}: ${err.message}`, { cause: err, details: { file } });
    throw new PilotError('E_TEMPLATE', `${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { file } });
  }
  return tidy(text);
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
