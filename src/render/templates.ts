/**
 * Loads the embedded templates (templates/haproxy.cfg.hbs + templates/partials/*.hbs) and lets a
 * user directory (PILOT_TEMPLATES) replace the main template and/or single partials by file name.
 * Syntax errors surface here, as PilotError('E_TEMPLATE') naming the file; so does a file there
 * that would replace nothing (`partials/default.hbs` for `defaults.hbs`).
 *
 * Every compiled template and partial marks its output (see source-map.ts) so that a line of the
 * rendered config can be traced back to the file that wrote it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { PilotError } from '../errors.js';
import { closest } from '../config/spelling.js';
import { registerHelpers } from './helpers.js';
import { markOutput } from './source-map.js';

/** Compiled from dist/src/render/*.js: the package root is three levels up (works installed too). */
export const EMBEDDED_TEMPLATES_DIR = fileURLToPath(new URL('../../../templates/', import.meta.url));
export const MAIN_TEMPLATE = 'haproxy.cfg.hbs';

type Compiled = (context: unknown, options?: Handlebars.RuntimeOptions) => string;

export interface Templates {
  /** Renders the main template; errors carry the file they happened in (see renderConfig). */
  readonly main: Compiled;
  /** File of the main template and of each partial, for messages and /status. */
  readonly files: { readonly main: string; readonly partials: Readonly<Record<string, string>> };
  /** Each file's text, by path (for messages that name a line). */
  readonly sources: Readonly<Record<string, string>>;
  /** Every file, numbered as their output is marked (see source-map.ts). */
  readonly order: readonly string[];
}

/** Marks an error with the template file it was thrown in (innermost file wins). */
export const TEMPLATE_FILE = Symbol('templateFile');

function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PilotError('E_TEMPLATE', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

function parse(hb: typeof Handlebars, file: string, source: string): hbs.AST.Program {
  try {
    return hb.parse(source); // compile() is lazy: parse now so syntax errors name the file at load time
  } catch (err) {
    throw new PilotError('E_TEMPLATE', `${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
}

function compileFile(hb: typeof Handlebars, file: string, source: string, index: number): Compiled {
  // noEscape: this is haproxy.cfg, not HTML. strict: a misspelt {{field}} fails instead of
  // rendering nothing (helper arguments and #if stay lenient, so optional values still work).
  const fn = hb.compile(source, { noEscape: true, strict: true });
  return (context, options) => {
    try {
      // Markers (for `check` to tell which template wrote a refused line) only when asked for:
      // the pass that runs every change renders without them.
      const out = fn(context, options);
      return (options?.data as { mark?: boolean } | undefined)?.mark ? markOutput(index, out) : out;
    } catch (err) {
      if (err !== null && typeof err === 'object' && !(TEMPLATE_FILE in err)) {
        Object.defineProperty(err, TEMPLATE_FILE, { value: file, enumerable: false });
      }
      throw err;
    }
  };
}

/** A template whose output depends only on its context object: rendered once per object (and marking). */
function memoized(fn: Compiled): Compiled {
  const plain = new WeakMap<object, string>();
  const marked = new WeakMap<object, string>();
  return (context, options) => {
    if (context === null || typeof context !== 'object') return fn(context, options);
    const memo = (options?.data as { mark?: boolean } | undefined)?.mark ? marked : plain;
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

/** Where a helper call's result is printed (a `{{helper …}}`, not a `(helper …)` argument), by its loc. */
export const locKey = (loc: { start: { line: number; column: number }; end: { line: number; column: number } }): string =>
  `${loc.start.line}:${loc.start.column}-${loc.end.line}:${loc.end.column}`;

/** The locs of `{{name args…}}` statements: calls whose value goes into the output. */
export function printedCalls(ast: hbs.AST.Node, into: Set<string>): void {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      const n = node as { type?: string; loc?: Parameters<typeof locKey>[0] };
      if (n.type === 'MustacheStatement' && n.loc) into.add(locKey(n.loc));
      for (const [k, v] of Object.entries(node)) if (k !== 'loc') walk(v);
    }
  };
  walk(ast);
}

/** Names of the partials a template uses (`{{> name}}`, `{{#> name}}`). */
export function partialsUsed(ast: hbs.AST.Node): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      const n = node as { type?: string; name?: { original?: unknown; value?: unknown } };
      if ((n.type === 'PartialStatement' || n.type === 'PartialBlockStatement') && n.name) {
        const name = n.name.original ?? n.name.value;
        if (typeof name === 'string') out.add(name);
      }
      for (const [k, v] of Object.entries(node)) if (k !== 'loc') walk(v);
    }
  };
  walk(ast);
  return out;
}

/**
 * Compiles the embedded templates, with `dir`'s `haproxy.cfg.hbs` and `partials/<name>.hbs`
 * replacing them. A user partial of a new name is fine when a template uses it; one that neither
 * replaces an embedded partial nor is used anywhere is a mistake, and an error.
 * Each call gets its own Handlebars environment.
 */
export function loadTemplates(dir?: string, embeddedDir: string = EMBEDDED_TEMPLATES_DIR): Templates {
  if (dir !== undefined && !(existsSync(dir) && statSync(dir).isDirectory())) {
    throw new PilotError('E_TEMPLATE', `PILOT_TEMPLATES: ${JSON.stringify(dir)} is not a directory`);
  }
  const hb = Handlebars.create();
  const embedded = hbsFiles(join(embeddedDir, 'partials'));
  const partialFiles = new Map(embedded);
  const userPartials = dir === undefined ? new Map<string, string>() : hbsFiles(join(dir, 'partials'));
  let mainFile = join(embeddedDir, MAIN_TEMPLATE);
  if (dir !== undefined) {
    for (const [name, file] of userPartials) partialFiles.set(name, file);
    if (existsSync(join(dir, MAIN_TEMPLATE))) mainFile = join(dir, MAIN_TEMPLATE);
    // A partial put beside haproxy.cfg.hbs instead of in partials/ would be ignored.
    for (const [name, file] of hbsFiles(dir)) {
      if (`${name}.hbs` === MAIN_TEMPLATE) continue;
      const hint = partialFiles.has(name) ? `put it in ${join(dir, 'partials', `${name}.hbs`)}` : `only ${MAIN_TEMPLATE} and partials/<name>.hbs are read`;
      throw new PilotError('E_TEMPLATE', `PILOT_TEMPLATES: ${file} is not used: ${hint}`, { details: { file } });
    }
  }
  const files = [mainFile, ...partialFiles.values()];
  const sources: Record<string, string> = {};
  const used = new Set<string>();
  const printed = new Set<string>();
  for (const file of files) {
    sources[file] = readSource(file);
    const ast = parse(hb, file, sources[file]);
    for (const name of partialsUsed(ast)) used.add(name);
    printedCalls(ast, printed);
  }
  for (const [name, file] of userPartials) {
    if (embedded.has(name) || used.has(name)) continue;
    const known = [...embedded.keys()];
    const near = closest(name, known);
    throw new PilotError(
      'E_TEMPLATE',
      `PILOT_TEMPLATES: ${file}: no partial is named "${name}"${near ? ` (did you mean ${near}.hbs?)` : ''}; the partials are ${known.join(', ')} (a partial of your own must be used by a template, {{> ${name}}})`,
      { details: { file, known } },
    );
  }
  // (A loc printed in one file and an argument in another counts as printed: checked, never missed.)
  registerHelpers(hb, (loc) => printed.has(locKey(loc)));
  const partials: Record<string, string> = {};
  for (const [name, file] of partialFiles) {
    const compiled = compileFile(hb, file, sources[file]!, files.indexOf(file));
    // The embedded `backend` partial depends on its backend's view only, and views are reused
    // while their backend is unchanged (render/view.ts): each backend is rendered once, so a pass
    // that changes one server renders one section. An operator's own partial is rendered afresh.
    hb.registerPartial(name, (name === 'backend' && file.startsWith(embeddedDir) ? memoized(compiled) : compiled) as unknown as Handlebars.Template);
    partials[name] = file;
  }
  return { main: compileFile(hb, mainFile, sources[mainFile]!, 0), files: { main: mainFile, partials }, sources, order: files };
}
