/**
 * Parsers for configuration values. Each takes the raw value (a string from the environment, or
 * a yaml scalar turned into a string, or a yaml list) and `what` (the variable name or
 * `file:line yaml.path`) and returns the typed value or throws PilotError('E_CONFIG') that names
 * `what` and the rejected value. Values that reach haproxy.cfg are additionally checked by
 * src/state/validate.ts (E_VALUE), which the loader folds into its E_CONFIG report.
 */
import { PilotError } from '../errors.js';
import { showValue, validHostPort, validPort } from '../state/validate.js';

/** A value as found in a layer: env values are strings, yaml lists arrive as string arrays. */
export type Raw = string | string[];
export type Parser<T> = (raw: Raw, what: string) => T;

export function configError(what: string, raw: Raw, expected: string): PilotError {
  const shown = Array.isArray(raw) ? showValue(raw.join(',')) : showValue(raw);
  return new PilotError('E_CONFIG', `${what}: ${shown} is not ${expected}`, { details: { what } });
}

export function scalar(raw: Raw, what: string): string {
  if (Array.isArray(raw)) throw configError(what, raw, 'a single value (got a list)');
  return raw;
}

/** Comma list from env (`a,b`), or a yaml list. Empty items are dropped. */
export function list(raw: Raw): string[] {
  const items = Array.isArray(raw) ? raw : raw.split(',');
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

export const str: Parser<string> = (raw, what) => scalar(raw, what);

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); longer ones fire after
 * 1 ms. HAProxy's own timeouts have the same limit. Durations above it are rejected at parse time.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `8s`, `500ms`, `2m`, `1h`, `1d`, `1.5s`, or `0`. A bare number other than 0 is ambiguous (ms? s?) and rejected. */
export const duration: Parser<number> = (raw, what) => {
  const text = scalar(raw, what).trim();
  if (text === '0') return 0;
  const m = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw configError(what, raw, 'a duration (e.g. 8s, 500ms)');
  const ms = Math.round(Number(m[1]) * UNITS[m[2]!]!);
  if (ms > MAX_TIMER_MS) {
    throw new PilotError('E_CONFIG', `${what}: ${showValue(text)} is longer than 24.8 days (${MAX_TIMER_MS} ms), the longest a timer can hold`, { details: { what } });
  }
  return ms;
};

/**
 * Choices (enums, booleans) are matched as written: a value with surrounding whitespace is
 * rejected rather than trimmed, so `" none "` can never quietly become `none` (auth off).
 */
function choiceText(raw: Raw, what: string, expected: string): string {
  const text = scalar(raw, what);
  if (text !== text.trim()) throw configError(what, raw, `${expected} (surrounding whitespace is not trimmed)`);
  return text;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

const BOOL_EXPECTED = 'a boolean (1/0, true/false, yes/no, on/off)';

export const bool: Parser<boolean> = (raw, what) => {
  const text = choiceText(raw, what, BOOL_EXPECTED).toLowerCase();
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  throw configError(what, raw, BOOL_EXPECTED);
};

export function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw, what) => {
    const text = choiceText(raw, what, `one of ${values.join(', ')}`);
    if ((values as string[]).includes(text)) return text as T;
    throw configError(what, raw, `one of ${values.join(', ')}`);
  };
}

export function int(min: number, max: number): Parser<number> {
  return (raw, what) => {
    const text = scalar(raw, what).trim();
    const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
    if (!(n >= min && n <= max)) throw configError(what, raw, `an integer between ${min} and ${max}`);
    return n;
  };
}

export const port: Parser<number> = (raw, what) => validPort(what, scalar(raw, what).trim());
export const portOrZero: Parser<number> = (raw, what) => validPort(what, scalar(raw, what).trim(), { allowZero: true });

export const hostPort: Parser<{ host: string; port: number }> = (raw, what) => validHostPort(what, scalar(raw, what).trim());

/**
 * A listen address: `127.0.0.1:8081`, `[::1]:8081`, `*:8081`, `:8081` or `8081`.
 * Address '' means all addresses (rendered `bind :8081`).
 */
export const bindAddr: Parser<{ address: string; port: number }> = (raw, what) => {
  const text = scalar(raw, what).trim();
  if (/^\d+$/.test(text)) return { address: '', port: validPort(what, text) };
  const any = /^\*?:(\d+)$/.exec(text);
  if (any) return { address: '', port: validPort(what, any[1]!) };
  const { host, port: p } = validHostPort(what, text);
  return { address: host, port: p };
};

/** `host:port` control address, or `off`. */
export const controlAddr: Parser<{ host: string; port: number; disabled?: boolean }> = (raw, what) => {
  const text = scalar(raw, what).trim();
  if (text === 'off') return { host: '127.0.0.1', port: 0, disabled: true };
  const b = bindAddr(text, what);
  return { host: b.address === '' ? '0.0.0.0' : b.address, port: b.port };
};

/** An absolute path (not written into haproxy.cfg; those use validFilePath). */
export const absPath: Parser<string> = (raw, what) => {
  const text = scalar(raw, what);
  if (!text.startsWith('/') || /[\0\n\r]/.test(text)) throw configError(what, raw, 'an absolute path');
  return text;
};
