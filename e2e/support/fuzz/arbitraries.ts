/**
 * Value generators for the fuzz suite: valid grammars (what HAProxy accepts, so a value that is
 * dropped is a finding too) and the hostile mix every field gets: valid-looking values, boundary
 * numbers, unicode, control characters, newlines followed by directives, quotes, '#', '$', '%',
 * very long strings and, for JSON stores, values of the wrong JSON type.
 */
import fc from 'fast-check';

// ---------------------------------------------------------------------------------------------
// Valid grammars
// ---------------------------------------------------------------------------------------------

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';

/** A DNS label HAProxy and every resolver accept: letters, digits, inner '-'. */
export const label: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/) },
);

/** A DNS name (at most 253 characters), sometimes with a trailing dot. */
export const dnsName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.')) },
  { weight: 2, arbitrary: fc.domain() },
  { weight: 1, arbitrary: fc.constantFrom('localhost', 'example.org', 'api.example.com', 'web', 'a', `${'a'.repeat(63)}.example.org`, `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(61)}`) },
  { weight: 1, arbitrary: fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `${ls.join('.')}.`) },
).filter((n) => n.replace(/\.$/, '').length <= 253);

export const ipv4: fc.Arbitrary<string> = fc.oneof(fc.ipV4(), fc.constantFrom('0.0.0.0', '127.0.0.1', '10.0.0.1', '255.255.255.255', '169.254.169.253'));
export const ipv6: fc.Arbitrary<string> = fc.oneof(fc.ipV6(), fc.constantFrom('::', '::1', 'fe80::1', '2001:db8::42', '::ffff:10.0.0.1'));
export const ip: fc.Arbitrary<string> = fc.oneof({ weight: 3, arbitrary: ipv4 }, { weight: 1, arbitrary: ipv6 });
export const host: fc.Arbitrary<string> = fc.oneof({ weight: 2, arbitrary: ip }, { weight: 2, arbitrary: dnsName });

export const port: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 65535 }) },
  { weight: 1, arbitrary: fc.constantFrom(1, 80, 443, 1936, 5000, 8080, 65535) },
);

export const bracket = (h: string): string => (h.includes(':') ? `[${h}]` : h);
export const hostPort: fc.Arbitrary<string> = fc.tuple(host, port).map(([h, p]) => `${bracket(h)}:${p}`);
export const ipPort: fc.Arbitrary<string> = fc.tuple(ip, port).map(([h, p]) => `${bracket(h)}:${p}`);

/** An HAProxy proxy name (the validators' NAME grammar). */
export const name: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/) },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{62}$/) },
  { weight: 1, arbitrary: fc.constantFrom('web', 'api', 'srv1', 'srv', 'srv2_1', 'stats', 'fe_http', 'fe_default', 'demo', 'x', '0', 'a.b', 'a-b', 'a_b') },
);

/** A URL path for path_beg / httpchk. */
export const urlPath: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.array(label, { maxLength: 4 }).map((ls) => `/${ls.join('/')}`) },
  { weight: 1, arbitrary: fc.stringMatching(/^\/[A-Za-z0-9._~!$&()*+,;=:@%/-]{0,40}$/) },
  { weight: 1, arbitrary: fc.constantFrom('/', '/api', '/api/', '/health', '/a%20b', '/$x', '/a;b', '/~user', '/a:b@c') },
);

/** HAProxy-style durations as the env parsers accept them. */
export const duration: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom('ms', 's', 'm', 'h', 'd')).map(([n, u]) => `${n}${u}`),
  fc.constantFrom('0', '1ms', '500ms', '1s', '1.5s', '30s', '2m', '1h', '1d', '24d', '999999999ms', '0.001s'),
);

export const boolWord: fc.Arbitrary<string> = fc.constantFrom('1', '0', 'true', 'false', 'yes', 'no', 'on', 'off', 'ON', ' on ');

// ---------------------------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------------------------

/** Pieces that would add a line, a directive, an argument or an expansion if pasted. */
export const INJECTIONS: readonly string[] = [
  '\n    server evil 6.6.6.6:1',
  '\nglobal\n    daemon',
  '\r\n    option httpchk',
  '\nbackend evil',
  '\u2028server evil 6.6.6.6:1',
  ' # comment',
  '#',
  ' ',
  '\t',
  '"',
  "'",
  '\\',
  '\\n',
  '${HOME}',
  '"${HOME}"',
  '$',
  '%[src]',
  '%',
  '`',
  '{',
  '}',
  ';',
  '|',
  '\0',
  '\x7f',
  '\x1b[31m',
  '..',
  '/../',
  ':',
  '[',
  ']',
  ',',
  '/',
  '\u00a0',
  'é',
  'ﬀ',
  '日本',
  '\ud83d\ude00',
  '\ud800',
];

/** Numbers as text at and around the limits HAProxy and the validators care about. */
export const BOUNDARY_NUMBERS: readonly string[] = [
  '-1', '0', '1', '2', '63', '64', '255', '256', '511', '512', '513', '1000', '1023', '1024', '1025', '4096', '8192', '65534', '65535',
  '65536', '99999', '100000', '1000000', '9999999', '10000000', '10000001', '2147483647', '2147483648', '4294967295', '4294967296',
  '9007199254740993', '1e3', '1.5', '0x50', '080', '+80', '-0', ' 80', '80 ', '٨٠', '８０', 'NaN', 'Infinity', '', ' ',
];

/** One of `valid`, or it spoiled: an injection inserted, boundary numbers, unicode, control characters, long strings. */
export function hostile(valid: fc.Arbitrary<string>, validWeight = 10): fc.Arbitrary<string> {
  const inserted = fc.tuple(valid, fc.constantFrom(...INJECTIONS), fc.nat()).map(([v, piece, at]) => {
    const i = v.length === 0 ? 0 : at % (v.length + 1);
    return v.slice(0, i) + piece + v.slice(i);
  });
  return fc.oneof(
    { weight: validWeight, arbitrary: valid },
    { weight: 4, arbitrary: inserted },
    { weight: 1, arbitrary: fc.constantFrom(...BOUNDARY_NUMBERS) },
    { weight: 1, arbitrary: fc.constantFrom(...INJECTIONS) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 24 }) },
    { weight: 1, arbitrary: fc.tuple(valid, fc.integer({ min: 200, max: 3000 })).map(([v, n]) => (v.length === 0 ? 'x' : v).repeat(Math.ceil(n / Math.max(1, v.length))).slice(0, n)) },
    { weight: 1, arbitrary: valid.map((v) => ` ${v} `) },
    { weight: 1, arbitrary: valid.map((v) => v.toUpperCase()) },
  );
}

/** A JSON value of any type (for fields a store should hold as one type). */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(0, -1, 1.5, 65536, 1e21, Number.MAX_SAFE_INTEGER),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

/** A field that should hold `valid` of some JSON type: mostly that, sometimes any JSON value. */
export function hostileJson<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: anyJson });
}

/** A string field of a JSON store: hostile text, or a value of the wrong type. */
export function hostileJsonString(valid: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return hostileJson(hostile(valid));
}

export { LOWER, DIGITS };
