import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDirFallback, type RunDirProbe } from './run-dir-fallback.js';

const probe = (over: Partial<RunDirProbe> & { writableDirs?: string[] } = {}): RunDirProbe => ({
  env: {},
  uid: 1000,
  tmp: '/tmp',
  writable: (p) => (over.writableDirs ?? ['/tmp']).some((d) => p === d || p.startsWith(`${d}/`)),
  ownedPrivateDir: () => 'missing',
  ...over,
});

test('a writable default run directory is kept', () => {
  assert.equal(runDirFallback('/run/haproxy-pilot', probe({ writableDirs: ['/run'] })), undefined);
});

test('not writable: $XDG_RUNTIME_DIR/haproxy-pilot, else <tmp>/haproxy-pilot-<uid>', () => {
  assert.equal(runDirFallback('/run/haproxy-pilot', probe({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, writableDirs: ['/run/user/1000', '/tmp'] })), '/run/user/1000/haproxy-pilot');
  assert.equal(runDirFallback('/run/haproxy-pilot', probe()), '/tmp/haproxy-pilot-1000');
  // A directory of that name that is not ours (or a symlink) is never used.
  assert.equal(runDirFallback('/run/haproxy-pilot', probe({ ownedPrivateDir: () => false })), undefined);
  assert.equal(runDirFallback('/run/haproxy-pilot', probe({ ownedPrivateDir: () => true })), '/tmp/haproxy-pilot-1000');
});
