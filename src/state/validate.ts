/**
 * Validators for every value that can reach haproxy.cfg from the environment or from discovery.
 * They accept a strict grammar (no spaces, quotes, '#', newlines or control characters), so a
 * value that passes cannot add a line, a directive or an argument to the config.
 * Each returns the normalised value or throws PilotError('E_VALUE') naming `what` (a variable,
 * yaml path or store key) and the rejected value (shortened).
 */
import { isIP } from 'node:net';
import { PilotError } from '../errors.js';

const MAX_SHOWN = 80;

/** The rejected value as shown in errors: shortened, control characters made visible. */
export function showValue(value: string): string {
  const visible = JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value);
  return visible;
}

/**
 * A store key as messages show it: as it is when it is visible ASCII, else JSON-quoted and
 * shortened, so a hostile key (a newline, an escape sequence) cannot forge a log line.
 */
export function shownKey(key: string): string {
  return /^[\x21-\x7e]{1,200}$/.test(key) ? key : showValue(key);
}

/** Text made one line: control characters (and U+2028/2029) escaped, e.g. a parser's message quoting its input. */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function reject(what: string, value: string, expected: string): never {
  throw new PilotError('E_VALUE', `${what}: ${showValue(value)} is not ${expected}`, {
    details: { what, expected },
  });
}

// HAProxy proxy/server names: letters, digits, '-', '_', '.', ':' (cfgparse invalid_char()).
// We leave ':' out: it confuses `backend/server` addressing on the runtime API.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
// RFC 1123 host names, with an optional trailing dot; underscores allowed (SRV-style labels).
const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

export function validName(what: string, value: string): string {
  if (!NAME.test(value)) reject(what, value, 'a name of letters, digits, "-", "_" or "." (at most 63, starting with a letter or digit)');
  return value;
}

/**
 * A server name: the proxy-name grammar plus ':', which HAProxy allows and ProxyMgr uses
 * (`10.0.0.1:8080` names the server at that address). `backend/server` on the runtime API splits
 * at the first '/', so ':' is unambiguous there.
 */
const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/;

export function validServerName(what: string, value: string): string {
  if (!SERVER_NAME.test(value)) reject(what, value, 'a server name of letters, digits, "-", "_", "." or ":" (at most 63, starting with a letter or digit)');
  return value;
}

/**
 * An IP address literal (for bind addresses). Node's isIP takes IPv6 zone ids (`fe80::1%eth0`,
 * `::%ffff:10.0.0.1`); HAProxy does not ("could not resolve address"), so neither do we.
 */
export function validIp(what: string, value: string): string {
  if (isIP(value) === 0 || value.includes('%')) reject(what, value, 'an IP address');
  return value;
}

/** A name made safe: anything outside the grammar becomes '_' (for names derived from keys). */
export function toName(raw: string): string {
  const cleaned = raw.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return cleaned.length > 0 ? cleaned : '_';
}

export function validHost(what: string, value: string): string {
  if (isIP(value) !== 0 && !value.includes('%')) return value; // no IPv6 zone id: see validIp
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => LABEL.test(l))) {
    reject(what, value, 'an IP address or a DNS name');
  }
  return value;
}

export function validPort(what: string, value: string | number, { allowZero = false } = {}): number {
  const text = String(value);
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= (allowZero ? 0 : 1) && n <= 65535)) reject(what, text, `a port number (${allowZero ? 0 : 1}..65535)`);
  return n;
}

/** `host:port`, `[v6]:port`; IPv6 without brackets is ambiguous and rejected. */
export function validHostPort(what: string, value: string): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(value) ?? /^([^:\s]+):(\d+)$/.exec(value);
  if (!m) reject(what, value, 'host:port');
  const host = m[1]!;
  if (value.startsWith('[') && isIP(host) !== 6) reject(what, value, 'host:port');
  return { host: validHost(what, host), port: validPort(what, m[2]!) };
}

/** URL path (for path-prefix routing): printable, no spaces, quotes or '#'. */
export function validPath(what: string, value: string): string {
  if (!/^\/[A-Za-z0-9._~!$&()*+,;=:@%/-]{0,1023}$/.test(value)) reject(what, value, 'a URL path starting with "/"');
  return value;
}

/** A free-text value that ends up inside a double-quoted haproxy.cfg argument (e.g. a header). */
export function validText(what: string, value: string, max = 1024): string {
  // Printable ASCII except '"' and '\\' (quoting), '#' (comments) and '$' (env expansion, which
  // HAProxy performs inside double quotes).
  if (value.length === 0 || value.length > max || !/^[\x20-\x7e]*$/.test(value) || /["\\#$]/.test(value)) {
    reject(what, value, `printable text without quotes, backslashes, "#" or "$" (at most ${max} characters)`);
  }
  return value;
}

/** A stats URI (`/haproxy?stats`): a path with an optional query, no spaces, quotes, '#' or '$'. */
export function validUri(what: string, value: string): string {
  if (!/^\/[A-Za-z0-9._~!&()*+,;=:@%/?-]{0,255}$/.test(value)) reject(what, value, 'a URI path starting with "/" (query allowed, no spaces, quotes, "#" or "$")');
  return value;
}

/**
 * A password that is written unquoted into haproxy.cfg (`stats auth user:password`): printable,
 * no spaces, quotes, backslashes (HAProxy unescapes them), '#' (comment) or '$' (env expansion).
 */
export function validSecret(what: string, value: string, max = 256): string {
  if (value.length === 0 || value.length > max || !/^[\x21-\x7e]*$/.test(value) || /["'\\#$]/.test(value)) {
    // Never echo a secret back: only its length.
    throw new PilotError('E_VALUE', `${what}: the value (${value.length} characters) is not printable text without spaces, quotes, backslashes, "#" or "$" (at most ${max} characters)`, {
      details: { what },
    });
  }
  return value;
}

/** An HTTP bearer token: visible ASCII only (no spaces, no control characters that could split a header). */
export function validToken(what: string, value: string, max = 4096): string {
  if (value.length === 0 || value.length > max || !/^[\x21-\x7e]*$/.test(value)) {
    throw new PilotError('E_VALUE', `${what}: the value (${value.length} characters) is not a token of visible ASCII characters (at most ${max})`, {
      details: { what },
    });
  }
  return value;
}

/** An absolute file or directory path written unquoted into haproxy.cfg. */
export function validFilePath(what: string, value: string): string {
  if (!/^\/[A-Za-z0-9._+,=@/-]{0,1023}$/.test(value) || /(^|\/)\.\.(\/|$)/.test(value)) {
    reject(what, value, 'an absolute path of letters, digits and "._+,=@/-"');
  }
  return value;
}

/** A path written unquoted into haproxy.cfg, absolute or relative to HAProxy's `-C` folder. */
export function validConfigPath(what: string, value: string): string {
  if (!/^[A-Za-z0-9._+,=@/-]{1,1024}$/.test(value) || /(^|\/)\.\.(\/|$)/.test(value)) {
    reject(what, value, 'a path of letters, digits and "._+,=@/-"');
  }
  return value;
}

/**
 * One raw configuration line from the operator's yaml (haproxy.global / haproxy.defaults): any
 * printable text, but a single line: no newline or other control character.
 */
export function validRawLine(what: string, value: string, max = 2048): string {
  if (value.trim().length === 0 || value.length > max || !/^[\x20-\x7e\t]*$/.test(value)) {
    reject(what, value, `one line of printable text (at most ${max} characters)`);
  }
  return value;
}
