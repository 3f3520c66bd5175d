import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneLine, shownKey, validHost, validIp, validHostPort, validName, validPort, validPath, validText, toName } from './validate.js';
import { isPilotError } from '../errors.js';

const rejects = (fn: () => unknown, what: string) =>
  assert.throws(fn, (e: unknown) => isPilotError(e, 'E_VALUE') && e.message.startsWith(`${what}:`));

test('host:port accepts IPv4, DNS names and bracketed IPv6', () => {
  assert.deepEqual(validHostPort('k', '10.9.1.1:32001'), { host: '10.9.1.1', port: 32001 });
  assert.deepEqual(validHostPort('k', 'web-1.example.org:80'), { host: 'web-1.example.org', port: 80 });
  assert.deepEqual(validHostPort('k', '[::1]:8080'), { host: '::1', port: 8080 });
});

test('injection attempts are rejected with the key named', () => {
  for (const bad of ['10.0.0.1:80\n  server evil 1.2.3.4:80', '10.0.0.1:80 #', '"a":80', 'a b:80', '10.0.0.1:0', '10.0.0.1:70000', 'x'.repeat(300) + ':80', '::1:80', '']) {
    rejects(() => validHostPort('apps/x/one', bad), 'apps/x/one');
  }
  for (const bad of ['a\nb', 'a b', 'a#b', '-x', 'x'.repeat(64), '']) rejects(() => validName('NAME', bad), 'NAME');
  for (const bad of ['h\nx', 'h;x', 'a..b', '-a.b']) rejects(() => validHost('H', bad), 'H');
  for (const bad of ['0', '65536', '1e3', ' 80', '-1']) rejects(() => validPort('P', bad), 'P');
  for (const bad of ['api', '/a b', '/a#', '/a"']) rejects(() => validPath('U', bad), 'U');
  for (const bad of ['a"b', 'a\\b', 'a#b', 'a${X}', 'a\nb', '']) rejects(() => validText('T', bad), 'T');
});

test('toName makes any key a safe name', () => {
  assert.equal(toName('one'), 'one');
  assert.equal(toName('a b\nc#'), 'a_b_c_');
  assert.equal(validName('n', toName('--x')), 'x');
});

test('shownKey and oneLine keep hostile text on one line', () => {
  assert.equal(shownKey('/apps/x/one'), '/apps/x/one');
  assert.equal(shownKey('/apps/x/\n'), '"/apps/x/\\n"');
  assert.equal(shownKey('a b'), '"a b"');
  assert.equal(oneLine('a\nb\u2028c\x1b'), 'a\\u000ab\\u2028c\\u001b');
});

test('IPv6 zone ids are refused: HAProxy cannot resolve them (fuzz regression)', () => {
  // Shrunk from the Sidecar family: Hostname "::%ffff:10.0.0.1", which Node's isIP takes.
  for (const bad of ['::%ffff:10.0.0.1', 'fe80::1%eth0', 'fe80::1%25eth0']) {
    rejects(() => validHost('H', bad), 'H');
    rejects(() => validIp('I', bad), 'I');
  }
  assert.equal(validHost('H', 'fe80::1'), 'fe80::1');
  assert.equal(validIp('I', '::ffff:10.0.0.1'), '::ffff:10.0.0.1');
});
