import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsSlotPrefix, isDnsSlotName } from './model.js';

test('DNS slot names are the ones HAProxy gives a server-template: srv1…srvN, then srv2_1…', () => {
  assert.deepEqual([0, 1, 2].map(dnsSlotPrefix), ['srv', 'srv2_', 'srv3_']);
  const dns = [{ slots: 4 }, { slots: 2 }];
  for (const n of ['srv1', 'srv4', 'srv2_1', 'srv2_2']) assert.equal(isDnsSlotName(n, dns), true, n);
  for (const n of ['srv', 'srv0', 'srv5', 'srv01', 'srv2_3', 'srv2_0', 'srv3_1', 'web', 'srv1x']) assert.equal(isDnsSlotName(n, dns), false, n);
  assert.equal(isDnsSlotName('srv1', []), false);
});
