import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFeatures, probeHaproxy } from './haproxy-features.js';
import { isPilotError } from '../errors.js';

test('parses version and the Prometheus exporter from haproxy -vv', () => {
  assert.deepEqual(parseFeatures('HAProxy version 3.0.11-1 2025/06/04 - https://haproxy.org/\nBuilt with the Prometheus exporter as a service\n'), { version: '3.0.11-1', prometheus: true });
  assert.deepEqual(parseFeatures('HA-Proxy version 2.6.12 2023/03/10\nBuilt with Lua\n'), { version: '2.6.12', prometheus: false });
});

test('probes the real binary, and names a missing one', async () => {
  const features = await probeHaproxy('haproxy');
  assert.match(features.version, /^\d+\.\d+/);
  await assert.rejects(probeHaproxy('/nonexistent/haproxy'), (e) => isPilotError(e, 'E_HAPROXY') && /HAPROXY_BIN/.test(e.message));
});

test('HAPROXY_BIN: a path, else PATH, then the sbin directories; not found is one line saying where it looked', async () => {
  const { resolveHaproxyBin } = await import('./haproxy-features.js');
  const have = new Set(['/usr/sbin/haproxy', '/opt/hap/bin/haproxy']);
  const exec = (f: string) => have.has(f);
  assert.equal(resolveHaproxyBin('haproxy', '/usr/bin:/bin', exec), '/usr/sbin/haproxy');
  assert.equal(resolveHaproxyBin('haproxy', '/opt/hap/bin:/usr/bin', exec), '/opt/hap/bin/haproxy');
  assert.equal(resolveHaproxyBin('/opt/hap/bin/haproxy', '', exec), '/opt/hap/bin/haproxy');
  assert.throws(() => resolveHaproxyBin('haproxy', '/usr/bin:/bin', () => false), (e: unknown) => {
    assert.ok(isPilotError(e, 'E_HAPROXY'));
    assert.equal(e.message, 'HAProxy not found: no "haproxy" on PATH (/usr/bin:/bin) nor in /usr/local/sbin, /usr/sbin, /sbin: install HAProxy (apt-get install haproxy) or set HAPROXY_BIN to its path');
    return true;
  });
  assert.throws(() => resolveHaproxyBin('/nope/haproxy', '', exec), /HAPROXY_BIN=\/nope\/haproxy is not an executable file/);
});
