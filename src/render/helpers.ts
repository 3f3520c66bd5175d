/**
 * Template helpers: confd-style key access (getv, gets, getvs, ls, lsdir, exists, base, dir,
 * json, split) and config-safe emitters (q, name, host, port, hostport, path, dur). Raw key values
 * come back unchanged from getv/gets; to put one into haproxy.cfg, pass it through an emitter,
 * which throws PilotError('E_VALUE') instead of ever emitting a newline, '#', quote or space
 * where HAProxy would read it as syntax.
 *
 * Helpers find the keys and env of the current render in `options.data.root`, so one compiled
 * template set can be used for many renders without shared state.
 */
import { posix } from 'node:path';
import type Handlebars from 'handlebars';
import { PilotError } from '../errors.js';
import { validHost, validName, validPath, validPort, validText } from '../state/validate.js';
import { formatDuration, validHostPortText } from './view.js';
import { SECRET_VARS } from '../config/load.js';
import { controlCharacter, UnprintableValue } from './env-values.js';

interface HelperOptions {
  data: { root: { keys: Record<string, string>; env: Record<string, string | UnprintableValue> } };
  hash: Record<string, unknown>;
  loc?: { start: { line: number; column: number }; end: { line: number; column: number } };
}

/** Marks an error with the template location of the helper call that threw it. */
export const HELPER_LOC = Symbol('helperLoc');


/** Splits Handlebars' trailing options argument from the positional ones. */
function args(all: unknown[]): { pos: unknown[]; options: HelperOptions } {
  return { pos: all.slice(0, -1), options: all[all.length - 1] as HelperOptions };
}

function needString(helper: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof UnprintableValue) return String(v); // throws, naming the variable
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  // Handlebars passes its options object in place of a missing argument. Note that a helper
  // name shadows a context field of the same name: write {{this.name}} for the field.
  const missing = v !== null && typeof v === 'object' && 'hash' in v && 'data' in v;
  const shown = missing ? 'no argument' : v === undefined ? 'undefined' : (JSON.stringify(v) ?? typeof v).slice(0, 80);
  throw new PilotError('E_VALUE', `${helper}: expected a string, got ${shown}`);
}

/** confd's path.Match subset: `*` matches within one path segment, `?` one character. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/** Keys are stored with a leading '/'; accept patterns and keys written without it (`apps/x`). */
const abs = (key: string): string => (key.startsWith('/') ? key : `/${key}`);

function lookup(keys: Record<string, string>, key: string): string | undefined {
  const k = abs(key);
  return Object.prototype.hasOwnProperty.call(keys, k) ? keys[k] : undefined;
}

function children(keys: Record<string, string>, dir: string, onlyDirs: boolean): string[] {
  const base = abs(dir).replace(/\/+$/, '') + '/';
  const out = new Set<string>();
  for (const k of Object.keys(keys)) {
    if (!k.startsWith(base)) continue;
    const rest = k.slice(base.length);
    const slash = rest.indexOf('/');
    if (onlyDirs ? slash > 0 : rest.length > 0) out.add(slash >= 0 ? rest.slice(0, slash) : rest);
  }
  return [...out].sort();
}

type Loc = NonNullable<HelperOptions['loc']>;

/**
 * `printed(loc)`: whether the call at `loc` prints its value (`{{getv …}}`) rather than passing it
 * to another helper (`(getv …)`): a printed string with a control character is refused. Unknown
 * (no loc): refused too.
 */
export function registerHelpers(hb: typeof Handlebars, printed: (loc: Loc) => boolean = () => true): void {
  // Every helper: an error carries the line of the call; a printed string with a control
  // character is refused (it would add a line to haproxy.cfg).
  const reg = (name: string, fn: (...a: unknown[]) => unknown): void =>
    void hb.registerHelper(name, function (this: unknown, ...all: unknown[]) {
      const loc = (all[all.length - 1] as HelperOptions | undefined)?.loc as Loc | undefined;
      try {
        const result = fn.apply(this, all);
        const what = typeof result === 'string' && (loc === undefined || printed(loc)) ? controlCharacter(result) : undefined;
        if (what !== undefined) throw new PilotError('E_VALUE', `${name}: the value it gives has ${what}, which cannot go into haproxy.cfg`);
        return result;
      } catch (err) {
        if (loc && err !== null && typeof err === 'object' && !(HELPER_LOC in err)) Object.defineProperty(err, HELPER_LOC, { value: loc, enumerable: false });
        throw err;
      }
    } as Handlebars.HelperDelegate);

  reg('getv', (...all) => {
    const { pos, options } = args(all);
    const key = needString('getv', pos[0]);
    const v = lookup(options.data.root.keys, key);
    if (v !== undefined) return v;
    if (pos.length > 1) return needString('getv default', pos[1]);
    // A missing key is a template error (confd: "key does not exist"), not an unsafe value.
    throw new Error(`getv: key ${JSON.stringify(abs(key))} does not exist`);
  });
  reg('gets', (...all) => {
    const { pos, options } = args(all);
    const re = globToRegExp(abs(needString('gets', pos[0])));
    const keys = options.data.root.keys;
    return Object.keys(keys).filter((k) => re.test(k)).sort().map((k) => ({ Key: k, Value: keys[k]! }));
  });
  reg('getvs', (...all) => {
    const { pos, options } = args(all);
    const re = globToRegExp(abs(needString('getvs', pos[0])));
    const keys = options.data.root.keys;
    return Object.keys(keys).filter((k) => re.test(k)).sort().map((k) => keys[k]!);
  });
  reg('ls', (...all) => {
    const { pos, options } = args(all);
    return children(options.data.root.keys, needString('ls', pos[0]), false);
  });
  reg('lsdir', (...all) => {
    const { pos, options } = args(all);
    return children(options.data.root.keys, needString('lsdir', pos[0]), true);
  });
  reg('exists', (...all) => {
    const { pos, options } = args(all);
    const key = needString('exists', pos[0]);
    return lookup(options.data.root.keys, key) !== undefined || children(options.data.root.keys, key, false).length > 0;
  });
  reg('getenv', (...all) => {
    const { pos, options } = args(all);
    const name = needString('getenv', pos[0]);
    if (SECRET_VARS.includes(name)) throw new PilotError('E_VALUE', `getenv: ${name} is withheld from templates: it is a secret`, { details: { variable: name } });
    const v = options.data.root.env[name];
    if (v instanceof UnprintableValue) return String(v); // throws, naming the variable
    if (v !== undefined) return v;
    if (pos.length > 1) return needString('getenv default', pos[1]);
    throw new PilotError('E_TEMPLATE', `getenv: ${name} is not set (give a default: {{getenv "${name}" "value"}})`, { details: { variable: name } });
  });
  reg('base', (p) => posix.basename(needString('base', p)));
  reg('dir', (p) => posix.dirname(needString('dir', p)));
  reg('split', (s, sep) => needString('split', s).split(needString('split separator', sep)));
  reg('json', (s) => {
    const text = needString('json', s);
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new PilotError('E_VALUE', `json: ${JSON.stringify(text.slice(0, 80))} is not JSON (${(err as Error).message})`);
    }
  });
  reg('eq', (a, b) => a === b);
  reg('ne', (a, b) => a !== b);
  reg('not', (a) => !a);
  reg('and', (...all) => args(all).pos.every(Boolean));
  reg('or', (...all) => args(all).pos.some(Boolean));

  // Emitters: validate, then return the text exactly as it goes into haproxy.cfg.
  reg('q', (v) => `"${validText('q', needString('q', v))}"`);
  reg('name', (v) => validName('name', needString('name', v)));
  reg('host', (v) => validHost('host', needString('host', v)));
  reg('port', (v) => String(validPort('port', needString('port', v))));
  reg('hostport', (v) => validHostPortText('hostport', needString('hostport', v)));
  reg('path', (v) => validPath('path', needString('path', v)));
  reg('dur', (v) => {
    if (typeof v !== 'number') throw new PilotError('E_VALUE', `dur: expected milliseconds, got ${JSON.stringify(v)}`);
    return formatDuration(v);
  });
}
