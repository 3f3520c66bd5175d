import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PilotError } from './errors.js';
import { reportError } from './report.js';

const capture = (isTTY: boolean) => {
  const out: string[] = [];
  return { out, target: { isTTY, write: (s: string) => out.push(s) } };
};
const config = new PilotError('E_CONFIG', 'STATS_PORT: bad\nPILOT_STOP_TIMEOUT: bad', { details: { errors: ['STATS_PORT: bad', 'PILOT_STOP_TIMEOUT: bad'] } });

test('on a terminal: one readable line per problem, no stack', () => {
  const { out, target } = capture(true);
  reportError(config, target);
  assert.deepEqual(out, ['haproxy-pilot: error: STATS_PORT: bad\n', 'haproxy-pilot: error: PILOT_STOP_TIMEOUT: bad\n']);
});

test('otherwise: one JSON line per problem in the log shape; PILOT_LOG_FORMAT=pretty reads like a terminal', () => {
  const { out, target } = capture(false);
  reportError(config, target, { now: () => 5 });
  assert.deepEqual(out.map((l) => JSON.parse(l) as unknown), [
    { level: 50, time: 5, name: 'haproxy-pilot', code: 'E_CONFIG', msg: 'STATS_PORT: bad' },
    { level: 50, time: 5, name: 'haproxy-pilot', code: 'E_CONFIG', msg: 'PILOT_STOP_TIMEOUT: bad' },
  ]);
  const pretty = capture(false);
  reportError(new PilotError('E_HAPROXY', 'HAProxy not found'), pretty.target, { format: 'pretty' });
  assert.deepEqual(pretty.out, ['haproxy-pilot: error: HAProxy not found\n']);
});

test('an unexpected error (a bug) keeps its stack', () => {
  const { out, target } = capture(false);
  reportError(new TypeError('x is undefined'), target);
  const line = JSON.parse(out[0]!) as { code: string; stack: string };
  assert.equal(line.code, 'E_INTERNAL');
  assert.match(line.stack, /TypeError: x is undefined/);
});
