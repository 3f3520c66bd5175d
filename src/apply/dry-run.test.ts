import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DiscoveredBackend } from '../state/model.js';
import { dryRunPlan } from './dry-run.js';
import { runningAfter } from './plan.js';

const backend = (host: string, extra: Partial<DiscoveredBackend> = {}): DiscoveredBackend => ({ name: 'web', mode: 'http', source: 'file', servers: [{ name: 's1', host, port: 80 }], ...extra });
const cfg = (host: string) => `global\n    maxconn 100\nbackend web\n    server s1 ${host}:80 check\n`;

test('dry run: nothing, runtime commands, or the reason for a reload', () => {
  const installed = { text: cfg('10.0.0.1'), files: {}, running: runningAfter('reload', [], [backend('10.0.0.1')]) };
  assert.deepEqual(dryRunPlan(installed, { text: cfg('10.0.0.1'), files: {}, backends: [backend('10.0.0.1')] }), { kind: 'none', commands: [] });
  const moved = dryRunPlan(installed, { text: cfg('10.0.0.2'), files: {}, backends: [backend('10.0.0.2')] });
  assert.equal(moved.kind, 'runtime');
  assert.deepEqual(moved.commands, ['set server web/s1 addr 10.0.0.2 port 80']);
  const rest = dryRunPlan(installed, { text: cfg('10.0.0.1').replace('maxconn 100', 'maxconn 200'), files: {}, backends: [backend('10.0.0.1')] });
  assert.equal(rest.kind, 'reload');
  assert.match(rest.kind === 'reload' ? rest.reason : '', /the config changed beyond server/);
  const certs = dryRunPlan(installed, { text: cfg('10.0.0.1'), files: { 'certs/a.pem': 'x' }, backends: [backend('10.0.0.1')] });
  assert.deepEqual(certs, { kind: 'reload', reason: 'certificates or other files changed', commands: [] });
});
