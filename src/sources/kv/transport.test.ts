import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeConsulKv } from './transport.js';
import { redact, backoffMs } from '../common.js';

test('Consul KV entries decode to absolute keys; folders (null) are left out', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.deepEqual(
    decodeConsulKv([
      { Key: 'apps/myapp/containers/', Value: null, ModifyIndex: 1 },
      { Key: 'apps/myapp/containers/one', Value: b64('10.9.1.1:32001'), ModifyIndex: 2 },
    ]),
    { '/apps/myapp/containers/one': '10.9.1.1:32001' },
  );
});

test('wrong shapes are errors', () => {
  assert.throws(() => decodeConsulKv({ Key: 'x' }), /not a JSON array/);
  assert.throws(() => decodeConsulKv([null]), /entry 0 is not an object/);
  assert.throws(() => decodeConsulKv([{ Value: 'eA==' }]), /entry 0 has no string Key/);
  assert.throws(() => decodeConsulKv([{ Key: 'a', Value: 'not base64!' }]), /not base64/);
  assert.throws(() => decodeConsulKv([{ Key: 'a', Value: 42 }]), /not base64/);
});

test('redact hides every occurrence of a secret; backoff grows, is capped and jittered', () => {
  assert.equal(redact('Bearer tok-123 and tok-123', ['tok-123', undefined]), 'Bearer <redacted> and <redacted>');
  assert.equal(backoffMs(0, 500, 5000, () => 0.5), 500);
  assert.equal(backoffMs(3, 500, 5000, () => 0.5), 4000);
  assert.equal(backoffMs(10, 500, 5000, () => 0.5), 5000);
  assert.equal(backoffMs(10, 500, 5000, () => 0), 4000);
});
