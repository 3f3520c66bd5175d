import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { loadConfig } from './config/load.js';
import { createBuilder, describeOrigin, fitMaxconn } from './candidate.js';
import { EMBEDDED_TEMPLATES_DIR } from './render/render.js';
import { join } from 'node:path';
import type { DiscoveredBackend } from './state/model.js';

const config = (env: Record<string, string> = {}) =>
  loadConfig({ env: { PILOT_RUN_DIR: '/tmp/pilot-candidate-test', STATS_PORT: '0', PILOT_DEMO: 'off', ...env }, readFile: (p) => readFileSync(p, 'utf8'), fileExists: existsSync });
const backends = (n: number, servers: number): DiscoveredBackend[] =>
  Array.from({ length: n }, (_, i) => ({ name: `b${i}`, mode: 'http' as const, source: 'kv', route: { port: 10000 + i }, servers: Array.from({ length: servers }, (_, j) => ({ name: `s${j}`, host: '10.0.0.1', port: 1000 + j })) }));

test('fitMaxconn: maxconn is kept when the open files limit holds it, lowered (with a warning naming the numbers) when not', () => {
  const c = config({ HAPROXY_MAXCONN: '4096' });
  assert.deepEqual(fitMaxconn(c, backends(10, 20), undefined), {}, 'unlimited');
  assert.deepEqual(fitMaxconn(c, backends(10, 20), 65536), {});
  // 1,000 × 20 checked servers + 2 × 4096 + 256 = 28,448 > 20,000 (the 1,000 × 20 case of issue 9).
  assert.equal(fitMaxconn(c, backends(500, 20), 20000).maxconn, undefined, '8,192 + 10,000 + 256 fit in 20,000');
  const low = fitMaxconn(c, backends(700, 20), 20000);
  assert.equal(low.maxconn, (20000 - 14000 - 256) / 2);
  assert.match(low.warning ?? '', /HAPROXY_MAXCONN 4096 lowered to 2872 .* 14000 servers .* need 22448 .* limit \(RLIMIT_NOFILE hard\) is 20000; raise it \(docker run --ulimit nofile=22448\)/);
  assert.equal(fitMaxconn(c, backends(1000, 20), 20000).maxconn, 1, 'never 0 or less');
});

test('the rendered config carries the lowered maxconn, and the candidate the warning', async () => {
  const builder = createBuilder({ config: config({ HAPROXY_MAXCONN: '4096' }), hasPrometheus: false, fdLimit: 4000 });
  const candidate = await builder.build({ keys: {}, backends: backends(10, 20), files: {}, fileSources: {}, excluded: [] });
  assert.match(candidate.text, /^\s+maxconn 1772$/m);
  assert.equal(candidate.warnings.length, 1);
});

const empty = { keys: {}, backends: [], files: {}, fileSources: {}, excluded: [] };

test("a candidate's line names what wrote it: the template and its line, or pilot.yaml's key", async () => {
  const yaml = 'haproxy:\n  global:\n    - nbthread 2\n    - bogus_directive on\n';
  const config = loadConfig({ env: { STATS_PASSWORD: 'pw', PILOT_DEMO: 'off' }, readFile: () => yaml, fileExists: (p) => p === '/etc/haproxy-pilot/pilot.yaml' });
  const candidate = await createBuilder({ config, statsPassword: 'pw', hasPrometheus: false }).build(empty);
  const lines = candidate.text.split('\n');
  const bogus = lines.findIndex((l) => l.includes('bogus_directive')) + 1;
  assert.equal(describeOrigin(candidate.origin!(bogus)!), 'haproxy.global[1] in the yaml file (PILOT_CONFIG)');
  const maxconn = lines.findIndex((l) => l.trim().startsWith('maxconn')) + 1;
  const global = join(EMBEDDED_TEMPLATES_DIR, 'partials', 'global.hbs');
  assert.deepEqual(candidate.origin!(maxconn), { file: global, line: 5 });
});
