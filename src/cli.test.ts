import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHaproxyApiFlag } from './cli.js';
import { maskSecrets } from './run/planner.js';

test("haproxy-api's -F and -f <file>.toml stay ours; any other first option goes to HAProxy", () => {
  for (const argv of [['-F', 'sidecar:7777'], ['-Fsidecar:7777'], ['--follow=sidecar:7777'], ['-f', '/etc/haproxy-api.toml'], ['-f/x.toml', 'run'], ['--config-file=/x.toml'], ['--follow', 'sidecar:7777'], ['--config-file', '/x.toml']]) {
    assert.equal(isHaproxyApiFlag(argv), true, argv.join(' '));
  }
  for (const argv of [['-f', '/usr/local/etc/haproxy/haproxy.cfg'], ['-f/x.cfg'], ['-vv'], ['-c', '-f', '/x.toml'], ['-d']]) {
    assert.equal(isHaproxyApiFlag(argv), false, argv.join(' '));
  }
});

test('maskSecrets: passwords become a keyed hash, equal for equal passwords', () => {
  const key = Buffer.from('k');
  const text = '    stats auth admin:s3cret\nuserlist u\n    user admin insecure-password s3cret\n    user b password $6$abc\n';
  const masked = maskSecrets(text, key);
  assert.doesNotMatch(masked, /s3cret|\$6\$abc/);
  const hashes = [...masked.matchAll(/<hidden:([0-9a-f]{8})>/g)].map((m) => m[1]);
  assert.equal(hashes.length, 3);
  assert.equal(hashes[0], hashes[1]);
  assert.notEqual(hashes[0], hashes[2]);
  assert.match(masked, /^\s+stats auth admin:<hidden:/m);
});
