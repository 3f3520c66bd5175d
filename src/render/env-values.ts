/**
 * The environment as templates see it (`env`, `config.env`, `getenv`): secrets are withheld
 * (config/load.ts leaves them out), and a value with a control character (a newline above all)
 * can be tested but never printed: printing it would add a line to haproxy.cfg.
 */
import { PilotError } from '../errors.js';

const CONTROL = /[\x00-\x1f\x7f]/;

/** `newline`, `tab`, `U+0001` …: the first control character of `s`, in words; undefined when there is none. */
export function controlCharacter(s: string): string | undefined {
  const m = CONTROL.exec(s);
  if (!m) return undefined;
  const c = m[0];
  return c === '\n' ? 'a newline' : c === '\r' ? 'a carriage return' : c === '\t' ? 'a tab' : `the control character U+${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
}

export function unprintable(variable: string, what: string): PilotError {
  return new PilotError('E_VALUE', `${variable}: its value has ${what}, which cannot go into haproxy.cfg (it would split the line)`, { details: { variable } });
}

/** Stands for an environment value that may not be printed; using it as text throws, naming the variable. */
export class UnprintableValue {
  constructor(
    readonly variable: string,
    private readonly what: string,
  ) {}
  [Symbol.toPrimitive](): never {
    throw unprintable(this.variable, this.what);
  }
  toString(): never {
    throw unprintable(this.variable, this.what);
  }
  toJSON(): string {
    return `<${this.variable}: unprintable>`;
  }
}

/** The environment for templates: values with a control character replaced by an UnprintableValue. */
export function templateEnv(env: Readonly<Record<string, string>>): Record<string, string | UnprintableValue> {
  const out: Record<string, string | UnprintableValue> = {};
  for (const [k, v] of Object.entries(env)) {
    const what = controlCharacter(v);
    out[k] = what === undefined ? v : new UnprintableValue(k, what);
  }
  return out;
}
