/**
 * Loads the embedded templates (templates/haproxy.cfg.hbs + templates/partials/*.hbs) and lets a
 * user directory (PILOT_TEMPLATES) replace the main template and/or single partials by file name.
 * Syntax errors surface here, as PilotError('E_TEMPLATE') naming the file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { PilotError } from '../errors.js';
import { registerHelpers } from './helpers.js';

/** Compiled from dist/src/render/*.js: the package root is three levels up (works installed too). */
export const EMBEDDED_TEMPLATES_DIR = fileURLToPath(new URL('../../../templates/', import.meta.url));
export const MAIN_TEMPLATE = 'haproxy.cfg.hbs';

type Compiled = (context: unknown, options?: Handlebars.RuntimeOptions) => string;

export interface Templates {
  /** Renders the main template; errors carry the file they happened in (see renderConfig). */
  readonly main: Compiled;
  /** File of the main template and of each partial, for messages and /status. */
  readonly files: { readonly main: string; readonly partials: Readonly<Record<string, string>> };
}

/** Marks an error with the template file it was thrown in (innermost file wins). */
export const TEMPLATE_FILE = Symbol('templateFile');

function compileFile(hb: typeof Handlebars, file: string): Compiled {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PilotError('E_TEMPLATE', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  try {
    hb.parse(source); // compile() is lazy: parse now so syntax errors name the file at load time
  } catch (err) {
    throw new PilotError('E_TEMPLATE', `${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  // noEscape: this is haproxy.cfg, not HTML. strict: a misspelt {{field}} fails instead of
  // rendering nothing (helper arguments and #if stay lenient, so optional values still work).
  const fn = hb.compile(source, { noEscape: true, strict: true });
  return (context, options) => {
    try {
      return fn(context, options);
    } catch (err) {
      if (err !== null && typeof err === 'object' && !(TEMPLATE_FILE in err)) {
        Object.defineProperty(err, TEMPLATE_FILE, { value: file, enumerable: false });
      }
      throw err;
    }
  };
}

/** A template whose output depends only on its context object: rendered once per object. */
function memoized(fn: Compiled): Compiled {
  const memo = new WeakMap<object, string>();
  return (context, options) => {
    if (context === null || typeof context !== 'object') return fn(context, options);
    let out = memo.get(context);
    if (out === undefined) {
      out = fn(context, options);
      memo.set(context, out);
    }
    return out;
  };
}

function hbsFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.hbs')) out.set(f.slice(0, -'.hbs'.length), join(dir, f));
  }
  return out;
}

/**
 * Compiles the embedded templates, with `dir`'s `haproxy.cfg.hbs` and `partials/<name>.hbs`
 * replacing (or adding to) them. Each call gets its own Handlebars environment.
 */
export function loadTemplates(dir?: string, embeddedDir: string = EMBEDDED_TEMPLATES_DIR): Templates {
  if (dir !== undefined && !(existsSync(dir) && statSync(dir).isDirectory())) {
    throw new PilotError('E_TEMPLATE', `PILOT_TEMPLATES: ${JSON.stringify(dir)} is not a directory`);
  }
  const hb = Handlebars.create();
  registerHelpers(hb);
  const partialFiles = hbsFiles(join(embeddedDir, 'partials'));
  let mainFile = join(embeddedDir, MAIN_TEMPLATE);
  if (dir !== undefined) {
    for (const [name, file] of hbsFiles(join(dir, 'partials'))) partialFiles.set(name, file);
    if (existsSync(join(dir, MAIN_TEMPLATE))) mainFile = join(dir, MAIN_TEMPLATE);
  }
  const partials: Record<string, string> = {};
  for (const [name, file] of partialFiles) {
    const compiled = compileFile(hb, file);
    // The embedded `backend` partial depends on its backend's view only, and views are reused
    // while their backend is unchanged (render/view.ts): each backend is rendered once, so a pass
    // that changes one server renders one section. An operator's own partial is rendered afresh.
    hb.registerPartial(name, (name === 'backend' && file.startsWith(embeddedDir) ? memoized(compiled) : compiled) as unknown as Handlebars.Template);
    partials[name] = file;
  }
  return { main: compileFile(hb, mainFile), files: { main: mainFile, partials } };
}
