import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config/load.js';
import { createBuilder, describeOrigin } from './candidate.js';
import { EMBEDDED_TEMPLATES_DIR } from './render/render.js';
import { join } from 'node:path';

const empty = { keys: {}, backends: [], files: {}, excluded: [] };

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
