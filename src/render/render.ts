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

/** Readability only: no trailing spaces, at most one blank line in a row, one final newline. */
function tidy(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.replace(/[ \t]+$/, ''))
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .replace(/^\n+/, '')
      .replace(/\n*$/, '\n')
  );
}
