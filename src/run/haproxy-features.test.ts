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
